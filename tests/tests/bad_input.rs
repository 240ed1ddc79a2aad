//! Bad input, as a table: every case is one mistake a user can make in deploy.toml, a
//! workflow.toml, a workflow's files, a ref, a flag, a variable or a cache. Each must give
//! exit status 2, one message that says where (file:line:col, the ref, the flag or the
//! variable) and what to do (`help:`), and leave everything as it was: nothing registered
//! (the embedded sandbox never started), no commit, no note, no change to the working tree.

use std::path::Path;

use tests::TempRepo;

/// A small valid monorepo: two workflows (`a` with a Dockerfile, `b` using `libs/common`),
/// committed on `main`, with a `feature` branch checked out.
const DEPLOY: &str = r#"project = "flytesnacks"
global = ["deploy.toml"]

[flyte]
endpoint = "sandbox"

[[domains]]
name = "development"
branches = ["*"]

[[domains]]
name = "staging"
branches = ["main"]

[[domains]]
name = "production"
branches = ["release/*"]
promote_from = "staging"
"#;

fn monorepo() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("libs/common/__init__.py", "");
    for name in ["a", "b"] {
        repo.write(&format!("workflows/{name}/{name}/__init__.py"), "");
        repo.write(&format!("workflows/{name}/{name}/main.py"), &format!("# {name}\n"));
    }
    repo.write("workflows/a/Dockerfile", "FROM python:3.11\n");
    repo.write("workflows/a/requirements.txt", "flytekit==1.16.31\n");
    repo.write("workflows/b/workflow.toml", "shared = [\"libs/common\"]\n");
    repo.commit("monorepo");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo
}

/// What a case changes before running: files written (path, contents), files removed, then
/// committed when `commit` is set.
struct Case {
    what: &'static str,
    write: &'static [(&'static str, &'static str)],
    remove: &'static [&'static str],
    commit: bool,
    /// Extra setup on the repository (links, submodules, bytes that are not text).
    setup: Option<fn(&TempRepo)>,
    args: &'static [&'static str],
    env: &'static [(&'static str, &'static str)],
    /// What the message must contain: where, and the gist of what is wrong.
    says: &'static [&'static str],
}

const fn case(what: &'static str, args: &'static [&'static str], says: &'static [&'static str]) -> Case {
    Case { what, write: &[], remove: &[], commit: true, setup: None, args, env: &[], says }
}

const DEPLOY_ARGS: &[&str] = &["deploy", "--format", "json"];
const PLAN_ARGS: &[&str] = &["plan", "--format", "json"];

/// deploy.toml with `line` put first (top-level keys must come before any table).
macro_rules! deploy_toml_with {
    ($line:expr) => {
        &[(
            "deploy.toml",
            concat!(
                $line,
                "\n",
                r#"project = "flytesnacks"
global = ["deploy.toml"]
[[domains]]
name = "development"
branches = ["*"]
"#
            ),
        )]
    };
}

fn cases() -> Vec<Case> {
    vec![
        // deploy.toml
        Case {
            write: deploy_toml_with!("projekt = \"x\""),
            ..case("an unknown key", PLAN_ARGS, &["deploy.toml:1:1", "projekt"])
        },
        Case { write: &[("deploy.toml", "project = \n")], ..case("broken TOML", PLAN_ARGS, &["deploy.toml:1:"]) },
        Case {
            write: &[("deploy.toml", "project = \"Bad Project!\"\n")],
            ..case("a project that is no identifier", PLAN_ARGS, &["deploy.toml:1:11"])
        },
        Case {
            write: &[("deploy.toml", "project = \"\"\n")],
            ..case("an empty project", PLAN_ARGS, &["deploy.toml:1:11"])
        },
        Case {
            write: deploy_toml_with!("workflows = \"/abs\""),
            ..case("an absolute workflows root", PLAN_ARGS, &["deploy.toml:1:13", "escapes the repository"])
        },
        Case {
            write: deploy_toml_with!("workflows = \"../out\""),
            ..case("a workflows root above the repository", PLAN_ARGS, &["deploy.toml:1:13"])
        },
        Case {
            write: deploy_toml_with!("workflows = \".\""),
            ..case(
                "the repository root as workflows root",
                PLAN_ARGS,
                &["deploy.toml:1:13", "cannot be the repository root"],
            )
        },
        Case {
            write: deploy_toml_with!("version_scheme = \"semver\""),
            ..case("an unknown version scheme", PLAN_ARGS, &["deploy.toml:1:18", "semver"])
        },
        Case {
            write: &[("deploy.toml", "global = [\"nope\"]\n")],
            ..case(
                "a global path that does not exist",
                PLAN_ARGS,
                &["deploy.toml:1:11", "global path 'nope' does not exist"],
            )
        },
        Case {
            write: &[("deploy.toml", "global = [\"/etc\"]\n")],
            ..case("an absolute global path", PLAN_ARGS, &["deploy.toml:1:11"])
        },
        Case {
            write: &[("deploy.toml", "dependencies = [\"[oops\"]\n")],
            ..case("a dependency pattern that is no glob", PLAN_ARGS, &["deploy.toml:1:17"])
        },
        Case {
            write: &[("deploy.toml", "[flyte]\nendpoint = \"ftp://flyte.example.com\"\n")],
            ..case(
                "an endpoint of another scheme in deploy.toml",
                PLAN_ARGS,
                &["deploy.toml:2:12", "ftp://flyte.example.com", "other than http"],
            )
        },
        Case {
            write: &[("deploy.toml", "[flyte]\nendpoint = \"\"\n")],
            ..case("an empty endpoint", PLAN_ARGS, &["deploy.toml:2:12", "is empty"])
        },
        Case {
            write: &[("deploy.toml", "[flyte]\nconsole = \"flyte.example.com/console\"\n")],
            ..case("a console that is no URL", PLAN_ARGS, &["deploy.toml:2:11", "console", "https://"])
        },
        Case {
            write: &[("deploy.toml", "[flyte]\nendpiont = \"sandbox\"\n")],
            ..case("an unknown [flyte] key", PLAN_ARGS, &["deploy.toml:2:1", "endpiont"])
        },
        Case {
            write: &[("deploy.toml", "[images]\nbuilder = \"podmn\"\n")],
            ..case("an unknown builder", PLAN_ARGS, &["deploy.toml:2:11", "podmn"])
        },
        Case {
            write: &[("deploy.toml", "[images]\nnamed = { \"bad name\" = \"x:1\" }\n")],
            ..case(
                "a named image that is no name",
                PLAN_ARGS,
                &["deploy.toml:2:", "'bad name' is not a name for an image"],
            )
        },
        Case {
            write: &[("deploy.toml", "[python]\nflytekit = \"latest\"\n")],
            ..case("a flytekit that is no version", PLAN_ARGS, &["deploy.toml:2:12", "latest"])
        },
        Case {
            write: &[("deploy.toml", "domains = []\n")],
            ..case("no domains", PLAN_ARGS, &["deploy.toml:1:11", "`domains` is empty"])
        },
        Case {
            write: &[("deploy.toml", "[[domains]]\nbranches = [\"*\"]\n")],
            ..case("a domain without a name", PLAN_ARGS, &["deploy.toml:1:1", "name"])
        },
        Case {
            write: &[("deploy.toml", "[[domains]]\nname = \"dev\"\nbranches = [\"*\"]\n[[domains]]\nname = \"dev\"\n")],
            ..case("two domains of one name", PLAN_ARGS, &["deploy.toml:5:8"])
        },
        Case {
            write: &[("deploy.toml", "[[domains]]\nname = \"p\"\nbranches = [\"*\"]\npromote_from = \"q\"\n")],
            ..case("promotion from an unknown domain", PLAN_ARGS, &["deploy.toml:4:16", "'q'"])
        },
        Case {
            write: &[(
                "deploy.toml",
                "[[domains]]\nname = \"a\"\nbranches = [\"*\"]\n[[domains]]\nname = \"b\"\nbranches = [\"*\"]\n",
            )],
            ..case("one branch pattern in two domains", PLAN_ARGS, &["deploy.toml:", "'*'"])
        },
        Case {
            write: &[("deploy.toml", "[[domains]]\nname = \"Dev Env\"\nbranches = [\"*\"]\n")],
            ..case("a domain name that is no identifier", PLAN_ARGS, &["deploy.toml:2:8"])
        },
        Case {
            write: &[(
                "deploy.toml",
                "[[domains]]\nname = \"development\"\nbranches = [\"*\"]\n[domains.settings]\nservice_acount = \"x\"\n",
            )],
            ..case("an unknown domain setting", PLAN_ARGS, &["deploy.toml:5:1", "service_acount"])
        },
        Case {
            setup: Some(|r| {
                r.write_bytes("deploy.toml", b"project = \"\xff\"\n");
            }),
            ..case("deploy.toml that is not UTF-8", PLAN_ARGS, &["deploy.toml is not UTF-8"])
        },
        Case {
            remove: &["deploy.toml"],
            ..case("no deploy.toml", PLAN_ARGS, &["no deploy.toml at the repository root"])
        },
        Case {
            write: &[("deploy.toml", "project = 1\n")],
            ..case("a project that is no string", PLAN_ARGS, &["deploy.toml:1:11"])
        },
        Case {
            write: &[("deploy.toml", "global = \"deploy.toml\"\n")],
            ..case("global that is no list", PLAN_ARGS, &["deploy.toml:1:10"])
        },
        // workflow.toml and workflow folders
        Case {
            write: &[("workflows/a/workflow.toml", "nmae = \"x\"\n")],
            ..case("an unknown manifest key", PLAN_ARGS, &["workflows/a/workflow.toml:1:1", "nmae"])
        },
        Case {
            write: &[("workflows/a/workflow.toml", "name = \"bad name\"\n")],
            ..case("a workflow name that is no name", PLAN_ARGS, &["workflows/a/workflow.toml:1:8"])
        },
        Case {
            write: &[("workflows/a/workflow.toml", "name = \"b\"\n")],
            ..case(
                "two workflows of one name",
                PLAN_ARGS,
                &["workflows/a/workflow.toml:1:8", "already used by workflows/b"],
            )
        },
        Case {
            write: &[("workflows/a/workflow.toml", "packages = [\"missing\"]\n")],
            ..case(
                "a package that is not there",
                DEPLOY_ARGS,
                &["workflows/a/workflow.toml:1:13", "package 'missing' is not in workflows/a"],
            )
        },
        Case {
            write: &[("workflows/a/workflow.toml", "dockerfile = \"../../../etc/passwd\"\n")],
            ..case(
                "a Dockerfile outside the repository",
                PLAN_ARGS,
                &["workflows/a/workflow.toml:1:14", "escapes the repository"],
            )
        },
        Case {
            write: &[("workflows/a/workflow.toml", "dockerfile = \"Dockerfile.nope\"\n")],
            ..case("a Dockerfile that is not there", DEPLOY_ARGS, &["workflows/a/workflow.toml:1:14", "does not exist"])
        },
        Case {
            write: &[("workflows/b/workflow.toml", "shared = [\"libs/nope\"]\n")],
            ..case(
                "a shared path that is not there",
                DEPLOY_ARGS,
                &["workflows/b/workflow.toml:1:11", "does not exist"],
            )
        },
        Case {
            write: &[("workflows/b/workflow.toml", "shared = [\"workflows\"]\n")],
            ..case(
                "a shared path holding the workflow itself",
                DEPLOY_ARGS,
                &["workflows/b/workflow.toml:1:11", "contains the workflow folder"],
            )
        },
        Case {
            write: &[("workflows/b/workflow.toml", "shared = [\"/etc\"]\n")],
            ..case("an absolute shared path", PLAN_ARGS, &["workflows/b/workflow.toml:1:11"])
        },
        Case {
            write: &[("workflows/b/workflow.toml", "dependencies = [\"[oops\"]\n")],
            ..case("a manifest dependency pattern that is no glob", DEPLOY_ARGS, &["workflows/b/workflow.toml:1:17"])
        },
        Case {
            write: &[("workflows/b/workflow.toml", "images = { \"bad name\" = \"x:1\" }\n")],
            ..case(
                "a manifest image that is no name",
                PLAN_ARGS,
                &["workflows/b/workflow.toml:1:", "'bad name' is not a name for an image"],
            )
        },
        Case {
            setup: Some(|r| {
                r.write_bytes("workflows/b/workflow.toml", b"name = \"\xff\"\n");
            }),
            ..case("workflow.toml that is not UTF-8", PLAN_ARGS, &["workflows/b/workflow.toml is not UTF-8"])
        },
        Case {
            write: &[("workflows/bad name/x/__init__.py", "")],
            ..case(
                "a folder name that is no workflow name",
                PLAN_ARGS,
                &["workflows/bad name/workflow.toml:1:1", "not a valid workflow name"],
            )
        },
        Case {
            write: &[("workflows/c/README.md", "no code\n")],
            ..case("a workflow without a Python package", DEPLOY_ARGS, &["workflows/c: no Python package found"])
        },
        Case {
            write: &[("workflows/c/a/__init__.py", "")],
            ..case(
                "two workflows of a project sharing a package",
                PLAN_ARGS,
                &["Python package 'a' is in 2 workflows of project 'flytesnacks'"],
            )
        },
        Case {
            write: &[(
                "workflows/b/workflow.toml",
                "packages = [\"b\"]\nshared = [\"libs/common\"]\ndockerfile = \"\"\n",
            )],
            ..case("an empty Dockerfile path", PLAN_ARGS, &["workflows/b/workflow.toml:3:14"])
        },
        // paths inside a workflow
        Case {
            setup: Some(|r| {
                r.symlink("../../../deploy.toml", "workflows/a/a/out.toml");
            }),
            ..case(
                "a link out of the code set",
                PLAN_ARGS,
                &["a: workflow 'a': symlink workflows/a/a/out.toml points to '../../../deploy.toml'"],
            )
        },
        Case {
            setup: Some(|r| {
                r.symlink("/etc/passwd", "workflows/a/a/passwd");
            }),
            ..case("an absolute link", PLAN_ARGS, &["symlink workflows/a/a/passwd points to '/etc/passwd'"])
        },
        Case {
            commit: false,
            setup: Some(|r| {
                r.git(&[
                    "update-index",
                    "--add",
                    "--cacheinfo",
                    "160000,1111111111111111111111111111111111111111,workflows/a/vendor",
                ]);
                r.git(&["commit", "--quiet", "-m", "submodule"]);
            }),
            ..case("a submodule in a workflow", PLAN_ARGS, &["a: workflows/a/vendor is a git submodule"])
        },
        Case {
            write: &[
                ("workflows/a/requirements.txt", "flytekit==1.16.31\n-r ../../libs/common/reqs.txt\n"),
                ("libs/common/reqs.txt", "tabulate\n"),
            ],
            ..case(
                "a requirements file naming one outside the folder",
                PLAN_ARGS,
                &["workflows/a/requirements.txt:2", "`shared`"],
            )
        },
        Case {
            write: &[("workflows/a/requirements.txt", "flytekit==1.16.31\n-r nope.txt\n")],
            ..case(
                "a requirements file naming one that is not there",
                PLAN_ARGS,
                &["workflows/a/requirements.txt:2", "nope.txt"],
            )
        },
        // refs
        case("a base that is no ref", &["plan", "--base", "no-such-branch"], &["'no-such-branch'"]),
        case("a head that is no ref", &["plan", "--head", "no-such-branch"], &["'no-such-branch'"]),
        case("a base beyond history", &["plan", "--base", "HEAD~99"], &["'HEAD~99'"]),
        case("an unknown domain", &["plan", "--domain", "nope"], &["nope"]),
        case("an unknown domain, by -d", &["deploy", "-d", "nope"], &["nope"]),
        case(
            "deploying an unknown workflow",
            &["deploy", "--workflow", "nope"],
            &["--workflow nope: no such workflow"],
        ),
        case("packaging an unknown workflow", &["package", "nope"], &["nope"]),
        case(
            "--dirty with another head",
            &["package", "a", "--dirty", "--head", "main~1"],
            &["--dirty packages the working tree"],
        ),
        case("building an unknown workflow", &["build", "nope"], &["nope"]),
        case(
            "promoting into a domain that promotes from none",
            &["promote", "--from", "development", "--to", "staging"],
            &["staging"],
        ),
        case("promoting from an unknown domain", &["promote", "--from", "nope", "--to", "production"], &["nope"]),
        case("promoting into an unknown domain", &["promote", "--from", "staging", "--to", "nope"], &["nope"]),
        case(
            "promoting an unknown commit",
            &["promote", "--from", "staging", "--to", "production", "--commit", "nope"],
            &["'nope'"],
        ),
        // flags
        case("no workers", &["deploy", "--jobs", "0"], &["--jobs"]),
        case("an unknown format", &["plan", "--format", "xml"], &["--format", "xml"]),
        case("an unknown flag", &["plan", "--bsae", "main"], &["--bsae"]),
        case("an unknown command", &["deplyo"], &["deplyo"]),
        case("completions of an unknown shell", &["completions", "powershell"], &["powershell"]),
        case("both -q and -v", &["-q", "-v", "plan"], &["--quiet", "--verbose"]),
        case(
            "the history of no workflow",
            &["history", "nope"],
            &["no workflow named 'nope'", "known workflows: a, b"],
        ),
        case("a sandbox address that is no address", &["sandbox", "--addr", "localhost"], &["--addr \"localhost\""]),
        // policy
        case("deploying to production from a feature branch", &["deploy", "--domain", "production"], &["production"]),
        // variables
        Case {
            write: &[("deploy.toml", "version_scheme = \"git-sha\"\n")],
            env: &[("FLYTE_DEPLOY_SHA_LENGTH", "3")],
            ..case("a git-sha length too short", PLAN_ARGS, &["FLYTE_DEPLOY_SHA_LENGTH='3'"])
        },
        Case {
            env: &[("FLYTE_DEPLOY_SERIALIZE_TIMEOUT", "soon")],
            ..case("a timeout that is no number", DEPLOY_ARGS, &["FLYTE_DEPLOY_SERIALIZE_TIMEOUT"])
        },
        Case {
            env: &[("FLYTE_ENDPOINT", "ftp://flyte.example.com")],
            ..case("an endpoint of another scheme", DEPLOY_ARGS, &["FLYTE_ENDPOINT=\"ftp://flyte.example.com\""])
        },
        // caches and state
        Case {
            setup: Some(|r| {
                // The sandbox's data is never committed: a change to `a` is.
                r.write(".git/info/exclude", ".flyte/\n");
                r.write_bytes(".flyte/sandbox/sandbox.sqlite", b"not a database, just bytes\n");
                r.write("workflows/a/a/main.py", "# a, changed\n");
            }),
            ..case(
                "a damaged sandbox database",
                DEPLOY_ARGS,
                &[".flyte/sandbox/sandbox.sqlite (the embedded sandbox's database) is damaged", "move"],
            )
        },
        Case {
            commit: false,
            setup: Some(|r| {
                r.write_bytes(".flyte/sandbox/records.sqlite", b"not a database, just bytes\n");
            }),
            ..case(
                "damaged sandbox records",
                &["history"],
                &[".flyte/sandbox/records.sqlite (the embedded sandbox's deploy records) is damaged"],
            )
        },
        Case {
            write: &[("deploy.toml", "workflows = \"wokflows\"\n")],
            ..case(
                "a workflows root that is not there",
                PLAN_ARGS,
                &["deploy.toml:1:13", "the workflows root 'wokflows' is not a folder"],
            )
        },
        Case {
            remove: &["workflows/a", "workflows/b"],
            write: &[("workflows/c/c/__init__.py", "")],
            ..case(
                "a change removing most workflows",
                &["deploy", "--base", "main"],
                &["removes 2 of 3 workflows", "--allow-mass-removal"],
            )
        },
    ]
}

impl Case {
    fn prepare(&self, repo: &TempRepo) {
        for (path, text) in self.write {
            repo.write(path, text);
        }
        for path in self.remove {
            repo.remove(path);
        }
        if let Some(setup) = self.setup {
            setup(repo);
        }
        if self.commit {
            repo.commit(self.what);
        }
    }
}

/// What "nothing changed" compares: every ref (branches, notes), the working tree's status
/// apart from `.flyte/cache` (what a plan learns there only saves time; it is keyed by what
/// it was computed from), and whether the sandbox ever started.
fn state(repo: &TempRepo) -> (String, String, String, bool) {
    (
        repo.git(&["for-each-ref", "--format=%(refname) %(objectname)"]),
        repo.git(&["status", "--porcelain", "--untracked-files=all", "--ignored", "--", ".", ":!.flyte/cache"]),
        repo.git(&["stash", "list"]),
        Path::new(&repo.path().join(".flyte/sandbox")).exists(),
    )
}

#[test]
fn every_bad_input_is_one_clear_message_with_exit_2_and_nothing_done() {
    let cases = cases();
    assert!(cases.len() >= 60, "the table holds {} cases", cases.len());
    let mut failures = Vec::new();
    for c in &cases {
        let repo = monorepo();
        c.prepare(&repo);
        let before = state(&repo);
        let run = repo.xtask_env(c.args, c.env);
        let after = state(&repo);
        let mut problems = Vec::new();
        if run.status != Some(2) {
            problems.push(format!("exit {:?}, not 2", run.status));
        }
        let message = run.stderr.trim_end();
        if !message.starts_with("error: ") {
            problems.push("the message does not start with `error: `".to_string());
        }
        for part in c.says {
            if !message.contains(part) {
                problems.push(format!("the message does not say {part:?}"));
            }
        }
        // clap's own messages (unknown flags) say what to do in their usage line.
        if !message.contains("help:") && !message.contains("Usage:") && !message.contains("--help") {
            problems.push("no `help:` saying what to do".to_string());
        }
        if message.lines().filter(|l| l.starts_with("error")).count() != 1 {
            problems.push("not exactly one error".to_string());
        }
        if before != after {
            problems.push(format!("something changed: {before:?} → {after:?}"));
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}):\n  {}\n  stderr: {message}",
                c.what,
                c.args.join(" "),
                problems.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases:\n\n{}", failures.len(), cases.len(), failures.join("\n\n"));
}
