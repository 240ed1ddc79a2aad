//! `cargo xtask plan` end to end: one real temporary git repository per scenario, asserting
//! the exact actions and reasons of the plan JSON (base resolution, classification, domain,
//! output formats, and the odd cases: renames, modes, symlinks, submodules, odd names).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use serde_json::{json, Value};
use tests::TempRepo;

const DEPLOY: &str = r#"
project = "flytesnacks"
global = ["deploy.toml", "ci"]

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

/// Writes a workflow folder with a Python package of the same name.
fn workflow(repo: &TempRepo, name: &str) {
    repo.write(&format!("workflows/{name}/{name}/__init__.py"), "");
    repo.write(&format!("workflows/{name}/{name}/main.py"), &format!("# {name}\n"));
}

/// `main` with: `a` (own Dockerfile and requirements.txt), `b` (code only, uses the shared
/// `libs/common`), `c` (code only); then a `feature` branch checked out.
fn monorepo() -> TempRepo {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "true\n");
    repo.write("libs/common/__init__.py", "");
    for name in ["a", "b", "c"] {
        workflow(&repo, name);
    }
    repo.write("workflows/a/Dockerfile", "FROM python:3.11\n");
    repo.write("workflows/a/requirements.txt", "# pinned\nflytekit==1.16.31\npandas==2.2.0\n");
    repo.write("workflows/b/workflow.toml", "shared = [\"libs/common\"]\n");
    repo.commit("monorepo");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo
}

/// One expected workflow of the plan JSON: name, action, reasons as (path, kind).
fn wf(name: &str, action: &str, reasons: &[(&str, &str)]) -> Value {
    json!({
        "name": name,
        "path": format!("workflows/{name}"),
        "project": "flytesnacks",
        "action": action,
        "reasons": reasons.iter().map(|(p, k)| json!({"path": p, "kind": k})).collect::<Vec<_>>(),
        "version": null,
        "image": null,
    })
}

/// Runs `plan --format json` with `args` and returns the JSON.
fn plan(repo: &TempRepo, args: &[&str]) -> Value {
    let mut all = vec!["plan", "--format", "json"];
    all.extend_from_slice(args);
    repo.xtask(&all).json()
}

/// Compares the workflows of a plan with `expected`, apart from `version` and `image`, which
/// must be set (a version of at least 16 characters) for every workflow but a removed one.
fn assert_workflows(json: &Value, expected: Vec<Value>) {
    let mut actual = json["workflows"].as_array().expect("workflows is an array").clone();
    let unversioned = |name: &Value| {
        json["notes"].as_array().is_some_and(|n| {
            n.iter().any(|n| n.as_str().unwrap_or("").starts_with(&format!("{}: no version", name.as_str().unwrap())))
        })
    };
    for w in &mut actual {
        let removed = w["action"] == "removed" || unversioned(&w["name"]);
        let version = w["version"].as_str().map(str::len);
        assert!(if removed { version.is_none() } else { version.is_some_and(|n| n >= 16) }, "version of {w:#}");
        assert_eq!(w["image"].is_string(), !removed, "image of {w:#}");
        w["version"] = Value::Null;
        w["image"] = Value::Null;
    }
    assert_eq!(Value::Array(actual), Value::Array(expected), "full plan:\n{json:#}");
}

#[test]
fn code_change_is_fast_and_the_rest_unchanged() {
    let repo = monorepo();
    let base = repo.git(&["rev-parse", "main"]);
    repo.write("workflows/c/c/main.py", "# changed\n");
    let head = repo.commit("change c");
    let json = plan(&repo, &[]);
    let mut keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["base", "domain", "head", "notes", "workflows"]);
    assert_eq!(json["base"], json!(base));
    assert_eq!(json["head"], json!(head));
    assert_eq!(json["domain"], "development");
    assert_eq!(json["notes"], json!([]));
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/main.py", "code")]),
        ],
    );
}

#[test]
fn requirements_change_is_a_rebuild() {
    let repo = monorepo();
    repo.write("workflows/a/requirements.txt", "# pinned\nflytekit==1.16.31\npandas==2.2.1\n");
    repo.write("workflows/a/a/main.py", "# also code\n");
    repo.commit("bump pandas");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "rebuild", &[("workflows/a/a/main.py", "code"), ("workflows/a/requirements.txt", "dependency")]),
            wf("b", "unchanged", &[]),
            wf("c", "unchanged", &[]),
        ],
    );
}

#[test]
fn dockerfile_change_is_a_rebuild() {
    let repo = monorepo();
    repo.write("workflows/a/Dockerfile", "FROM python:3.12\n");
    repo.commit("new base image");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "rebuild", &[("workflows/a/Dockerfile", "dependency")]),
            wf("b", "unchanged", &[]),
            wf("c", "unchanged", &[]),
        ],
    );
}

#[test]
fn requirements_comment_and_whitespace_changes_give_no_reason() {
    let repo = monorepo();
    repo.write("workflows/a/requirements.txt", "flytekit==1.16.31   # the SDK\n\n\n  pandas==2.2.0\n# end\n");
    repo.commit("reformat requirements");
    assert_workflows(
        &plan(&repo, &[]),
        vec![wf("a", "unchanged", &[]), wf("b", "unchanged", &[]), wf("c", "unchanged", &[])],
    );
}

#[test]
fn exec_bit_only_change_is_code_even_for_a_dependency_file() {
    let repo = monorepo();
    repo.git(&["update-index", "--chmod=+x", "workflows/a/requirements.txt", "workflows/c/c/main.py"]);
    repo.git(&["commit", "--quiet", "-m", "chmod"]);
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "fast", &[("workflows/a/requirements.txt", "code")]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/main.py", "code")]),
        ],
    );
}

#[test]
fn shared_change_reaches_only_the_workflows_declaring_it() {
    let repo = monorepo();
    repo.write("libs/common/util.py", "X = 1\n");
    repo.write("libs/other.py", "Y = 1\n");
    repo.commit("shared code");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "fast", &[("libs/common/util.py", "shared")]),
            wf("c", "unchanged", &[]),
        ],
    );
}

#[test]
fn global_change_reaches_every_workflow() {
    let repo = monorepo();
    repo.write("ci/check.sh", "false\n");
    repo.commit("global");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "fast", &[("ci/check.sh", "global")]),
            wf("b", "fast", &[("ci/check.sh", "global")]),
            wf("c", "fast", &[("ci/check.sh", "global")]),
        ],
    );
}

#[test]
fn deploy_toml_change_is_global() {
    let repo = monorepo();
    repo.write("deploy.toml", &format!("{DEPLOY}\n# tweak\n"));
    repo.commit("tweak deploy.toml");
    let json = plan(&repo, &[]);
    let expected = ["a", "b", "c"].iter().map(|name| wf(name, "fast", &[("deploy.toml", "global")])).collect();
    assert_workflows(&json, expected);
}

#[test]
fn a_file_moved_across_workflows_counts_at_both_ends() {
    let repo = monorepo();
    repo.git(&["mv", "workflows/b/b/main.py", "workflows/c/c/moved.py"]);
    repo.git(&["commit", "--quiet", "-m", "move"]);
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "fast", &[("workflows/b/b/main.py", "code")]),
            wf("c", "fast", &[("workflows/c/c/moved.py", "code")]),
        ],
    );
}

#[test]
fn renames_beyond_git_rename_limits_count_at_both_ends() {
    let repo = monorepo();
    for i in 0..40 {
        repo.write(&format!("workflows/b/b/m{i:02}.py"), &format!("X = {i}\n"));
    }
    repo.commit("many files");
    repo.git(&["config", "diff.renameLimit", "1"]);
    repo.git(&["checkout", "--quiet", "-b", "move-all"]);
    for i in 0..40 {
        repo.git(&["mv", &format!("workflows/b/b/m{i:02}.py"), &format!("workflows/c/c/m{i:02}.py")]);
    }
    repo.git(&["commit", "--quiet", "-m", "move many"]);
    let json = plan(&repo, &["--base", "feature"]);
    let b: Vec<(String, &str)> = (0..40).map(|i| (format!("workflows/b/b/m{i:02}.py"), "code")).collect();
    let c: Vec<(String, &str)> = (0..40).map(|i| (format!("workflows/c/c/m{i:02}.py"), "code")).collect();
    let b: Vec<(&str, &str)> = b.iter().map(|(p, k)| (p.as_str(), *k)).collect();
    let c: Vec<(&str, &str)> = c.iter().map(|(p, k)| (p.as_str(), *k)).collect();
    assert_workflows(&json, vec![wf("a", "unchanged", &[]), wf("b", "fast", &b), wf("c", "fast", &c)]);
}

#[test]
fn case_only_rename_counts_both_names() {
    let repo = monorepo();
    repo.git(&["mv", "workflows/c/c/main.py", "workflows/c/c/Main.py"]);
    repo.git(&["commit", "--quiet", "-m", "case"]);
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/Main.py", "code"), ("workflows/c/c/main.py", "code")]),
        ],
    );
}

#[test]
fn deleted_workflow_is_removed() {
    let repo = monorepo();
    repo.remove("workflows/c");
    repo.commit("drop c");
    assert_workflows(
        &plan(&repo, &[]),
        vec![wf("a", "unchanged", &[]), wf("b", "unchanged", &[]), wf("c", "removed", &[("workflows/c", "removed")])],
    );
}

#[test]
fn new_workflow_with_dockerfile_is_rebuild_without_is_fast() {
    let repo = monorepo();
    workflow(&repo, "d");
    repo.write("workflows/d/Dockerfile", "FROM python:3.11\n");
    workflow(&repo, "e");
    // Without its own image, its requirements have nothing to rebuild: still fast.
    repo.write("workflows/e/requirements.txt", "numpy\n");
    repo.commit("two new workflows");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "unchanged", &[]),
            wf(
                "d",
                "rebuild",
                &[
                    ("workflows/d/Dockerfile", "dependency"),
                    ("workflows/d/d/__init__.py", "code"),
                    ("workflows/d/d/main.py", "code"),
                ],
            ),
            wf(
                "e",
                "fast",
                &[
                    ("workflows/e/e/__init__.py", "code"),
                    ("workflows/e/e/main.py", "code"),
                    ("workflows/e/requirements.txt", "dependency"),
                ],
            ),
        ],
    );
}

#[test]
fn renamed_workflow_folder_is_removed_and_new() {
    let repo = monorepo();
    repo.git(&["mv", "workflows/c", "workflows/c2"]);
    repo.git(&["commit", "--quiet", "-m", "rename c"]);
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "removed", &[("workflows/c", "removed")]),
            wf("c2", "fast", &[("workflows/c2/c/__init__.py", "code"), ("workflows/c2/c/main.py", "code")]),
        ],
    );
}

#[test]
fn extra_dependency_patterns_of_workflow_toml() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "");
    workflow(&repo, "a");
    repo.write("workflows/a/workflow.toml", "dependencies = [\"conda/*.yaml\"]\n");
    repo.write("workflows/a/conda/env.yaml", "a: 1\n");
    repo.write("workflows/a/env.yaml", "a: 1\n");
    repo.commit("init");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("workflows/a/conda/env.yaml", "a: 2\n");
    repo.write("workflows/a/env.yaml", "a: 2\n");
    repo.commit("change");
    assert_workflows(
        &plan(&repo, &[]),
        vec![wf("a", "rebuild", &[("workflows/a/conda/env.yaml", "dependency"), ("workflows/a/env.yaml", "code")])],
    );
}

#[test]
fn symlink_change_counts_at_its_path() {
    let repo = monorepo();
    std::os::unix::fs::symlink("main.py", repo.path().join("workflows/c/c/link.py")).unwrap();
    repo.commit("add link");
    repo.git(&["checkout", "--quiet", "-b", "retarget"]);
    std::fs::remove_file(repo.path().join("workflows/c/c/link.py")).unwrap();
    std::os::unix::fs::symlink("__init__.py", repo.path().join("workflows/c/c/link.py")).unwrap();
    repo.commit("retarget link");
    assert_workflows(
        &plan(&repo, &["--base", "feature"]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/link.py", "code")]),
        ],
    );
}

#[test]
fn submodule_pointer_change_counts_at_its_path() {
    let repo = monorepo();
    let one = "1111111111111111111111111111111111111111";
    let two = "2222222222222222222222222222222222222222";
    // Left out of the code archive by .flyteignore, as a submodule must be.
    repo.write("workflows/b/.flyteignore", "vendor\n");
    repo.git(&["add", "workflows/b/.flyteignore"]);
    repo.git(&["update-index", "--add", "--cacheinfo", &format!("160000,{one},workflows/b/vendor")]);
    repo.git(&["commit", "--quiet", "-m", "submodule"]);
    repo.git(&["checkout", "--quiet", "-b", "bump"]);
    repo.git(&["update-index", "--cacheinfo", &format!("160000,{two},workflows/b/vendor")]);
    repo.git(&["commit", "--quiet", "-m", "bump submodule"]);
    assert_workflows(
        &plan(&repo, &["--base", "feature"]),
        vec![wf("a", "unchanged", &[]), wf("b", "fast", &[("workflows/b/vendor", "code")]), wf("c", "unchanged", &[])],
    );
    // A submodule in the code set cannot go into a code archive: bad input, the whole plan
    // refused (so nothing is registered), naming the workflow and what to do.
    repo.git(&["rm", "--quiet", "workflows/b/.flyteignore"]);
    repo.git(&["commit", "--quiet", "-m", "no .flyteignore"]);
    let run = repo.xtask(&["plan", "--base", "feature", "--format", "json"]);
    let message = run.user_error();
    assert!(message.contains("error: b: workflows/b/vendor is a git submodule"), "{message}");
    assert!(message.contains("list it in the workflow's .flyteignore"), "{message}");
}

#[test]
fn odd_names_are_kept_losslessly() {
    let repo = monorepo();
    let dir = repo.path().join("workflows/c/c");
    std::fs::write(dir.join(std::ffi::OsStr::from_bytes(b"caf\xe9.py")), "").unwrap();
    std::fs::write(dir.join("with space.py"), "").unwrap();
    std::fs::write(dir.join("new\nline.py"), "").unwrap();
    std::fs::write(dir.join("été.py"), "").unwrap();
    repo.commit("odd names");
    let json = plan(&repo, &[]);
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf(
                "c",
                "fast",
                &[
                    ("\"workflows/c/c/caf\\351.py\"", "code"),
                    ("workflows/c/c/new\nline.py", "code"),
                    ("workflows/c/c/with space.py", "code"),
                    ("workflows/c/c/été.py", "code"),
                ],
            ),
        ],
    );
    let text = repo.xtask(&["plan"]);
    assert!(text.ok().contains("\"workflows/c/c/new\\nline.py\" (code)"), "{}", text.stdout);
}

#[test]
fn diff_is_from_the_merge_base_not_the_moving_base() {
    let repo = monorepo();
    let fork = repo.git(&["rev-parse", "HEAD"]);
    repo.write("workflows/c/c/main.py", "# on feature\n");
    repo.commit("feature work");
    repo.git(&["checkout", "--quiet", "main"]);
    repo.write("workflows/a/a/main.py", "# on main since\n");
    repo.commit("main moves on");
    repo.git(&["checkout", "--quiet", "feature"]);
    for args in [&[][..], &["--base", "main"][..]] {
        let json = plan(&repo, args);
        assert_eq!(json["base"], json!(fork));
        assert_workflows(
            &json,
            vec![
                wf("a", "unchanged", &[]),
                wf("b", "unchanged", &[]),
                wf("c", "fast", &[("workflows/c/c/main.py", "code")]),
            ],
        );
    }
}

/// A clone of `origin` (so `origin/main` exists), with extra git arguments for the clone.
fn clone_of(origin: &TempRepo, extra: &[&str]) -> TempRepo {
    let clone = TempRepo::new();
    std::fs::remove_dir_all(clone.path().join(".git")).unwrap();
    let url = format!("file://{}", origin.path().display());
    let mut args = vec!["clone", "--quiet"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[&url, "."]);
    clone.git(&args);
    clone.git(&["config", "user.email", "test@example.com"]);
    clone.git(&["config", "user.name", "Test"]);
    clone
}

#[test]
fn github_pull_request_uses_the_merge_base_with_its_base_branch() {
    let origin = monorepo();
    origin.write("workflows/b/b/main.py", "# pr\n");
    origin.commit("pr change");
    let clone = clone_of(&origin, &["--branch", "feature"]);
    let fork = origin.git(&["rev-parse", "main"]);
    // The local `main` does not exist in the clone; the PR base is found as origin/main.
    let json = clone
        .xtask_env(&["plan", "--format", "json"], &[("GITHUB_BASE_REF", "main"), ("GITHUB_HEAD_REF", "release/2")])
        .json();
    assert_eq!(json["base"], json!(fork));
    assert_eq!(json["domain"], "production");
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "fast", &[("workflows/b/b/main.py", "code")]),
            wf("c", "unchanged", &[]),
        ],
    );
}

fn event(repo: &TempRepo, before: &str) -> String {
    let path = repo.path().join(".git/event.json");
    std::fs::write(&path, json!({"before": before, "repository": {"default_branch": "main"}}).to_string()).unwrap();
    path.to_string_lossy().into_owned()
}

#[test]
fn github_push_uses_the_commit_pushed_over() {
    let repo = monorepo();
    repo.write("workflows/a/a/main.py", "# one\n");
    let before = repo.commit("first push");
    repo.write("workflows/b/b/main.py", "# two\n");
    repo.commit("second push");
    let path = event(&repo, &before);
    let env = [("GITHUB_EVENT_PATH", path.as_str()), ("GITHUB_REF_NAME", "main")];
    let json = repo.xtask_env(&["plan", "--format", "json"], &env).json();
    assert_eq!(json["base"], json!(before));
    assert_eq!(json["domain"], "staging");
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "fast", &[("workflows/b/b/main.py", "code")]),
            wf("c", "unchanged", &[]),
        ],
    );
}

#[test]
fn github_push_of_a_new_branch_or_force_push_falls_back_to_the_default_branch() {
    let repo = monorepo();
    let fork = repo.git(&["rev-parse", "main"]);
    repo.write("workflows/a/a/main.py", "# one\n");
    let rewritten = repo.commit("will be rewritten");
    repo.git(&["reset", "--quiet", "--hard", "main"]);
    repo.write("workflows/b/b/main.py", "# two\n");
    repo.commit("force-pushed");
    for before in ["0000000000000000000000000000000000000000", rewritten.as_str()] {
        let path = event(&repo, before);
        let env = [("GITHUB_EVENT_PATH", path.as_str()), ("GITHUB_REF_NAME", "feature")];
        let json = repo.xtask_env(&["plan", "--format", "json"], &env).json();
        assert_eq!(json["base"], json!(fork), "before = {before}");
        assert_workflows(
            &json,
            vec![
                wf("a", "unchanged", &[]),
                wf("b", "fast", &[("workflows/b/b/main.py", "code")]),
                wf("c", "unchanged", &[]),
            ],
        );
    }
}

#[test]
fn shallow_clone_fails_with_how_to_fetch_or_plans_all() {
    // The fork point is in neither shallow history: main moved on after the branch.
    let origin = monorepo();
    origin.write("workflows/b/b/main.py", "# x\n");
    origin.commit("change");
    origin.git(&["checkout", "--quiet", "main"]);
    origin.write("workflows/a/a/main.py", "# main moves on\n");
    origin.commit("main moves on");
    origin.git(&["checkout", "--quiet", "feature"]);
    let clone = clone_of(&origin, &["--depth", "1", "--branch", "feature", "--no-single-branch"]);
    let pr = [("GITHUB_BASE_REF", "main")];
    let run = clone.xtask_env(&["plan", "--format", "json"], &pr);
    let err = run.user_error();
    assert!(err.contains("cannot be resolved") && err.contains("fetch-depth: 0"), "{err}");
    assert!(run.stdout.is_empty());

    let json = clone.xtask_env(&["plan", "--format", "json", "--on-missing-base", "all"], &pr).json();
    assert_eq!(json["base"], Value::Null);
    let notes = json["notes"].as_array().unwrap();
    assert!(notes.iter().any(|n| n.as_str().unwrap().starts_with("base could not be resolved")), "{notes:?}");
    assert_workflows(
        &json,
        vec![
            wf("a", "rebuild", &[("workflows/a", "code"), ("workflows/a/Dockerfile", "dependency")]),
            wf("b", "fast", &[("workflows/b", "code")]),
            wf("c", "fast", &[("workflows/c", "code")]),
        ],
    );
}

#[test]
fn unrelated_histories_and_unknown_base_are_missing_bases() {
    let repo = monorepo();
    repo.git(&["checkout", "--quiet", "--orphan", "other"]);
    repo.write("workflows/c/c/main.py", "# orphan\n");
    repo.commit("unrelated root");
    let err = repo.xtask(&["plan", "--base", "main"]).user_error().to_string();
    assert!(err.contains("no common history") && err.contains("help:"), "{err}");
    let err = repo.xtask(&["plan", "--base", "no-such-branch"]).user_error().to_string();
    assert!(err.contains("'no-such-branch'"), "{err}");
}

#[test]
fn all_plans_every_workflow() {
    let repo = monorepo();
    let json = plan(&repo, &["--all"]);
    assert_eq!(json["base"], Value::Null);
    assert_eq!(json["notes"], json!(["--all: every workflow planned as changed"]));
    assert_workflows(
        &json,
        vec![
            wf("a", "rebuild", &[("workflows/a", "code"), ("workflows/a/Dockerfile", "dependency")]),
            wf("b", "fast", &[("workflows/b", "code")]),
            wf("c", "fast", &[("workflows/c", "code")]),
        ],
    );
}

#[test]
fn all_with_a_base_reports_the_merge_base() {
    let repo = monorepo();
    workflow(&repo, "d");
    repo.commit("d on the feature branch");
    let main = repo.git(&["rev-parse", "main"]);
    let json = plan(&repo, &["--all", "--base", "main"]);
    assert_eq!(json["base"], json!(main), "the merge-base of main and head, as without --all");
    assert_eq!(json["workflows"].as_array().unwrap().len(), 4, "every workflow planned");
}

#[test]
fn domain_from_flag_branch_or_detached_head() {
    let repo = monorepo();
    assert_eq!(plan(&repo, &[])["domain"], "development");
    assert_eq!(plan(&repo, &["--domain", "staging"])["domain"], "staging");
    repo.git(&["checkout", "--quiet", "-b", "release/1.0"]);
    assert_eq!(plan(&repo, &[])["domain"], "production");
    repo.git(&["checkout", "--quiet", "main"]);
    assert_eq!(plan(&repo, &[])["domain"], "staging");
    repo.git(&["checkout", "--quiet", "--detach"]);
    let json = plan(&repo, &[]);
    assert_eq!(json["domain"], "development");
    assert_eq!(json["notes"], json!(["detached HEAD and no CI branch: domain development"]));
    let run = repo.xtask(&["plan"]);
    assert!(run.stderr.contains("note: detached HEAD and no CI branch: domain development"), "{}", run.stderr);
    // GitLab checks out a detached HEAD: its variables name the branch.
    let gitlab = |env: &[(&str, &str)]| repo.xtask_env(&["plan", "--format", "json"], env).json()["domain"].clone();
    assert_eq!(gitlab(&[("CI_COMMIT_BRANCH", "main")]), "staging");
    assert_eq!(gitlab(&[("CI_COMMIT_BRANCH", "release/2")]), "production");
    assert_eq!(gitlab(&[("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME", "feature")]), "development");

    let err = repo.xtask(&["plan", "--domain", "prod"]).user_error().to_string();
    assert!(err.contains("'prod'") && err.contains("development, staging, production"), "{err}");
}

#[test]
fn no_workflows_and_empty_repository_give_clear_answers() {
    let repo = TempRepo::new();
    let err = repo.xtask(&["plan"]).user_error().to_string();
    assert!(err.contains("no commits yet") && err.contains("help: commit"), "{err}");

    repo.write("deploy.toml", "");
    repo.commit("empty monorepo");
    let json = plan(&repo, &[]);
    assert_eq!(json["workflows"], json!([]));
    assert_eq!(repo.xtask(&["plan"]).ok().lines().nth(1), Some("no workflows"));
}

#[test]
fn text_output_is_a_table_with_reasons() {
    let repo = monorepo();
    repo.write("workflows/a/requirements.txt", "flytekit==1.16.31\n");
    repo.remove("workflows/c");
    repo.commit("change");
    let run = repo.xtask(&["plan"]);
    let out = run.ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("base ") && lines[0].ends_with("domain development"), "{out}");
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["WORKFLOW", "ACTION", "PROJECT", "REASONS"]);
    assert_eq!(
        lines[2].split_whitespace().collect::<Vec<_>>(),
        ["a", "rebuild", "flytesnacks", "workflows/a/requirements.txt", "(dependency)"]
    );
    assert_eq!(lines[3].split_whitespace().collect::<Vec<_>>(), ["b", "unchanged", "flytesnacks", "-"]);
    assert_eq!(
        lines[4].split_whitespace().collect::<Vec<_>>(),
        ["c", "removed", "flytesnacks", "workflows/c", "(removed)"]
    );
    assert_eq!(lines[5], "1 rebuild, 0 fast, 1 unchanged, 1 removed");
}

#[test]
fn github_matrix_chunks_and_outputs() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    for i in 0..300 {
        workflow(&repo, &format!("w{i:03}"));
    }
    repo.write("workflows/w000/requirements.txt", "x\n");
    repo.write("workflows/w299/requirements.txt", "x\n");
    repo.commit("300 workflows");
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    for i in 0..299 {
        repo.write(&format!("workflows/w{i:03}/w{i:03}/main.py"), "# changed\n");
    }
    repo.write("workflows/w000/requirements.txt", "y\n");
    repo.remove("workflows/w299");
    repo.commit("touch 299, remove 1");
    let output = repo.path().join(".git/github_output");
    let out_env = output.to_string_lossy().into_owned();
    let run = repo.xtask_env(&["plan", "--format", "github-matrix", "--chunk", "1"], &[("GITHUB_OUTPUT", &out_env)]);
    let json: Value = serde_json::from_str(run.ok()).unwrap();
    let include = json["include"].as_array().unwrap();
    assert_eq!(include.len(), 300 - 256);
    let mut first = include[0].clone();
    assert!(first["version"].as_str().is_some_and(|v| v.len() >= 16), "{first}");
    first["version"] = Value::Null;
    assert_eq!(
        first,
        json!({"workflow": "w256", "action": "fast", "project": "flytesnacks", "domain": "development", "version": null})
    );
    assert_eq!(include[43]["version"], Value::Null, "a removed workflow has no version");
    assert_eq!(include[43]["workflow"], "w299");
    assert_eq!(include[43]["action"], "removed");
    assert!(run.stderr.contains("chunk 1 of 2 chunk(s) (44 of 300 workflows needing work)"), "{}", run.stderr);
    let written = std::fs::read_to_string(&output).unwrap();
    assert_eq!(written, format!("matrix={}\nany=true\n", run.stdout.trim()));

    let run = repo.xtask(&["plan", "--format", "github-matrix"]);
    let json: Value = serde_json::from_str(run.ok()).unwrap();
    assert_eq!(json["include"].as_array().unwrap().len(), 256);
    assert_eq!(json["include"][0]["action"], "rebuild");
    repo.xtask(&["plan", "--format", "github-matrix", "--chunk", "2"]).user_error();
}

#[test]
fn github_matrix_without_work_is_empty_and_says_so() {
    let repo = monorepo();
    let output = repo.path().join(".git/github_output");
    let out_env = output.to_string_lossy().into_owned();
    let run = repo.xtask_env(&["plan", "--format", "github-matrix"], &[("GITHUB_OUTPUT", &out_env)]);
    assert_eq!(run.ok().trim(), r#"{"include":[]}"#);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), "matrix={\"include\":[]}\nany=false\n");
    assert!(Path::new(&output).exists());
}

#[test]
fn a_dockerfile_named_in_workflow_toml_is_a_dependency() {
    let repo = monorepo();
    repo.write("workflows/c/docker/gpu.Dockerfile", "FROM nvidia/cuda\n");
    repo.write("workflows/c/workflow.toml", "dockerfile = \"docker/gpu.Dockerfile\"\n");
    repo.commit("c gets its own image");
    repo.git(&["checkout", "--quiet", "-b", "gpu"]);
    repo.write("workflows/c/docker/gpu.Dockerfile", "FROM nvidia/cuda:12\n");
    repo.commit("bump cuda");
    assert_workflows(
        &plan(&repo, &["--base", "feature"]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "rebuild", &[("workflows/c/docker/gpu.Dockerfile", "dependency")]),
        ],
    );
}

#[test]
fn renaming_a_workflow_in_its_manifest_removes_the_old_name() {
    let repo = monorepo();
    repo.write("workflows/c/workflow.toml", "name = \"cee\"\n");
    repo.commit("rename c");
    let json = plan(&repo, &[]);
    let mut cee = wf("cee", "fast", &[("workflows/c/workflow.toml", "code")]);
    cee["path"] = json!("workflows/c");
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "removed", &[("workflows/c", "removed")]),
            cee,
        ],
    );
}

#[test]
fn removing_the_dockerfile_is_a_rebuild_and_stray_files_reach_nobody() {
    let repo = monorepo();
    repo.remove("workflows/a/Dockerfile");
    repo.write("workflows/README.md", "# the workflows\n");
    repo.write("docs/index.md", "# docs\n");
    repo.commit("default image for a");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "rebuild", &[("workflows/a/Dockerfile", "dependency")]),
            wf("b", "unchanged", &[]),
            wf("c", "unchanged", &[]),
        ],
    );
}

#[test]
fn a_file_replaced_by_a_folder_counts_every_path() {
    let repo = monorepo();
    repo.remove("workflows/c/c/main.py");
    repo.write("workflows/c/c/main.py/inner.py", "");
    repo.commit("file to folder");
    assert_workflows(
        &plan(&repo, &[]),
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/main.py", "code"), ("workflows/c/c/main.py/inner.py", "code")]),
        ],
    );
}

#[test]
fn head_names_a_branch_and_base_equal_to_head_changes_nothing() {
    let repo = monorepo();
    repo.write("workflows/c/c/main.py", "# changed\n");
    repo.commit("change c");
    repo.git(&["checkout", "--quiet", "main"]);
    let json = plan(&repo, &["--head", "feature", "--base", "main"]);
    assert_eq!(json["domain"], "development", "domain of the branch --head names, not of the checkout");
    assert_workflows(
        &json,
        vec![
            wf("a", "unchanged", &[]),
            wf("b", "unchanged", &[]),
            wf("c", "fast", &[("workflows/c/c/main.py", "code")]),
        ],
    );
    let json = plan(&repo, &["--base", "main"]);
    assert_eq!(json["base"], json["head"]);
    assert_eq!(json["domain"], "staging");
    assert_workflows(&json, vec![wf("a", "unchanged", &[]), wf("b", "unchanged", &[]), wf("c", "unchanged", &[])]);
}

#[test]
fn an_unreadable_base_workspace_is_said_not_hidden() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "");
    workflow(&repo, "a");
    repo.write("workflows/a/workflow.toml", "nme = \"typo\"\n");
    repo.commit("broken manifest on main");
    repo.git(&["checkout", "--quiet", "-b", "fix"]);
    repo.remove("workflows/a/workflow.toml");
    repo.commit("fix it");
    let json = plan(&repo, &[]);
    let notes = json["notes"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note = notes[0].as_str().unwrap();
    assert!(note.contains("workflows/a/workflow.toml:1:1") && note.contains("not detected"), "{note}");
    assert_workflows(&json, vec![wf("a", "fast", &[("workflows/a/workflow.toml", "code")])]);
}

/// The versions cache file of a repository (there is one per configuration).
fn versions_cache(repo: &TempRepo) -> std::path::PathBuf {
    let dir = repo.path().join(".flyte/cache/versions");
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{} is missing: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "tsv"))
        .collect();
    assert_eq!(files.len(), 1, "one cache file per configuration: {files:?}");
    files[0].clone()
}

fn version_of(json: &Value, name: &str) -> String {
    let w = json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap();
    w["version"].as_str().unwrap_or_else(|| panic!("{name} has no version: {json:#}")).to_string()
}

#[test]
fn versions_from_the_cache_equal_fresh_ones_commit_after_commit() {
    let repo = monorepo();
    let first = plan(&repo, &[]);
    let cache = versions_cache(&repo);
    assert_eq!(std::fs::read_to_string(&cache).unwrap().lines().count(), 4, "a header and one line per workflow");
    assert_eq!(repo.git(&["status", "--porcelain"]), "", "the cache stays out of git");

    let steps: [(&str, &str, &str); 4] = [
        ("libs/common/__init__.py", "X = 1\n", "shared library"),
        ("workflows/a/requirements.txt", "flytekit==1.16.31\npandas==2.2.1\n", "dependency"),
        ("workflows/c/c/main.py", "# c, changed\n", "code"),
        ("workflows/b/workflow.toml", "shared = [\"libs/common\"]\nproject = \"other\"\n", "manifest"),
    ];
    let mut before = first;
    for (path, contents, what) in steps {
        repo.write(path, contents);
        repo.commit(what);
        let warm = plan(&repo, &[]);
        std::fs::remove_dir_all(repo.path().join(".flyte/cache/versions")).unwrap();
        let fresh = plan(&repo, &[]);
        assert_eq!(warm, fresh, "after the {what} change, the cached plan differs from a fresh one");
        let changed: Vec<&str> =
            ["a", "b", "c"].into_iter().filter(|n| version_of(&before, n) != version_of(&fresh, n)).collect();
        let expected: &[&str] = match what {
            "shared library" => &["b"],
            "dependency" => &["a"],
            "code" => &["c"],
            _ => &["b"],
        };
        assert_eq!(changed, expected, "new versions after the {what} change");
        before = fresh;
    }
}

/// A repository whose `c` changed, planned once; then its versions cache edited to give
/// `c` the version "from-the-cache", which the next plan reports (proof that the cache is
/// read at all). Returns the repository, the first plan, the cache file and its first text.
fn cache_that_says_from_the_cache() -> (TempRepo, Value, std::path::PathBuf, String) {
    let repo = monorepo();
    repo.write("workflows/c/c/main.py", "# changed\n");
    repo.commit("change c");
    let fresh = plan(&repo, &[]);
    let cache = versions_cache(&repo);
    let text = std::fs::read_to_string(&cache).unwrap();
    let c = version_of(&fresh, "c");
    assert!(text.contains(&c), "the cache holds c's version:\n{text}");
    std::fs::write(&cache, text.replace(&c, "from-the-cache")).unwrap();
    assert_eq!(version_of(&plan(&repo, &[]), "c"), "from-the-cache");
    (repo, fresh, cache, text)
}

#[test]
fn the_plan_reads_versions_from_the_cache_and_survives_a_broken_one() {
    let (repo, fresh, cache, text) = cache_that_says_from_the_cache();

    // Lines that do not parse are misses, a header of another format drops the whole file;
    // either way the plan is the fresh one, and the file is written anew.
    let broken: String = text.lines().map(|l| format!("{}\n", l.replacen('\t', " ", 3))).collect();
    std::fs::write(&cache, &broken).unwrap();
    assert_eq!(plan(&repo, &[]), fresh);
    std::fs::write(&cache, format!("some other cache v9\n{}", text.split_once('\n').unwrap().1)).unwrap();
    assert_eq!(plan(&repo, &[]), fresh);
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), text);

    // A cache that cannot be written is a warning, not a failure.
    std::fs::remove_dir_all(repo.path().join(".flyte/cache/versions")).unwrap();
    std::fs::write(repo.path().join(".flyte/cache/versions"), "not a folder").unwrap();
    let run = repo.xtask(&["plan", "--format", "json"]);
    assert_eq!(run.json(), fresh);
    assert!(run.stderr.contains("warning: the versions cache"), "stderr: {}", run.stderr);
}

#[test]
fn git_sha_versions_do_not_depend_on_the_clone_depth() {
    // git-sha versions name the commit that last changed a workflow's inputs, found by
    // walking history. A shallow clone whose history ends before that commit cannot know
    // it: naming its oldest commit would make the version depend on the depth, so it is bad
    // input with what to do. A clone deep enough, and the clone deepened, agree with a full one.
    let origin = TempRepo::new();
    origin.write("deploy.toml", &format!("version_scheme = \"git-sha\"\n{DEPLOY}"));
    origin.write("ci/check.sh", "true\n");
    workflow(&origin, "a");
    let made = origin.commit("a");
    workflow(&origin, "c");
    let later = origin.commit("c");
    let full = clone_of(&origin, &[]);
    assert!(made.starts_with(&version_of(&plan(&full, &["--all"]), "a")), "a full clone names the commit that made a");
    assert!(later.starts_with(&version_of(&plan(&full, &["--all"]), "c")));

    let shallow = clone_of(&origin, &["--depth", "1"]);
    let run = shallow.xtask(&["plan", "--all", "--format", "json"]);
    let message = run.user_error();
    assert!(message.contains("the git-sha version of 'a'") && message.contains("shallow clone"), "{message}");
    assert!(message.contains("git fetch --unshallow"), "{message}");

    let deep_enough = clone_of(&origin, &["--depth", "2"]);
    assert!(made.starts_with(&version_of(&plan(&deep_enough, &["--all"]), "a")), "depth 2 reaches the change");
    shallow.git(&["fetch", "--quiet", "--unshallow"]);
    assert!(made.starts_with(&version_of(&plan(&shallow, &["--all"]), "a")), "deepened, as a full clone");
}

#[test]
fn caches_committed_to_git_are_not_trusted() {
    let (repo, fresh, cache, _) = cache_that_says_from_the_cache();
    let c = version_of(&fresh, "c");
    // The same file, committed: a commit could bring any version it likes.
    repo.git(&["add", "--force", ".flyte/cache/versions"]);
    repo.commit("commit the caches");
    let json = plan(&repo, &[]);
    assert_eq!(version_of(&json, "c"), c);
    let notes = json["notes"].as_array().unwrap();
    assert!(
        notes.iter().any(|n| n.as_str().unwrap().starts_with(".flyte/cache is tracked by git")
            && n.as_str().unwrap().contains("git rm -r --cached .flyte/cache")),
        "{notes:?}"
    );
    assert!(std::fs::read_to_string(&cache).unwrap().contains("from-the-cache"), "an untrusted cache is not written");
}

/// Writes a workflow folder `workflows/<folder>` whose Python package is `bigquery` (as in
/// flytesnacks' `bigquery_agent` and `bigquery_plugin`).
fn bigquery_workflow(repo: &TempRepo, folder: &str) {
    repo.write(&format!("workflows/{folder}/bigquery/__init__.py"), "");
    repo.write(&format!("workflows/{folder}/bigquery/main.py"), &format!("# {folder}\n"));
}

/// Asserts a user error that names the shared package, the project and both folders.
fn assert_package_clash(run: &tests::Run, what: &str) {
    let err = run.user_error();
    for part in [
        "Python package 'bigquery' is in 2 workflows of project 'flytesnacks'",
        "workflows/bigquery_agent and workflows/bigquery_plugin",
        "help: rename the package in one of them, or set another `project`",
    ] {
        assert!(err.contains(part), "{what}: no '{part}' in:\n{err}");
    }
}

#[test]
fn two_workflows_of_a_project_sharing_a_package_are_refused() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "true\n");
    workflow(&repo, "a");
    bigquery_workflow(&repo, "bigquery_plugin");
    bigquery_workflow(&repo, "bigquery_agent");
    repo.commit("two workflows with one package");
    assert_package_clash(&repo.xtask(&["plan", "--format", "json"]), "plan");
    assert_package_clash(&repo.xtask(&["plan", "--all"]), "plan --all");
    assert_package_clash(&repo.xtask(&["deploy", "--all", "--dry-run"]), "deploy --dry-run");
    assert_package_clash(&repo.xtask(&["list"]), "list");
}

#[test]
fn a_package_clash_is_refused_with_the_versions_cache_warm() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "true\n");
    bigquery_workflow(&repo, "bigquery_agent");
    repo.commit("one workflow");
    plan(&repo, &[]);
    let cache = std::fs::read_to_string(versions_cache(&repo)).unwrap();
    assert!(cache.contains("workflows/bigquery_agent\t"), "the cache knows the first folder:\n{cache}");
    // The first folder is unchanged: the next plan takes it from the cache, reads only the new one.
    bigquery_workflow(&repo, "bigquery_plugin");
    repo.commit("a second workflow with the same package");
    assert_package_clash(&repo.xtask(&["plan", "--format", "json"]), "plan with a warm cache");
}

#[test]
fn workflows_of_other_projects_may_share_a_package() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", DEPLOY);
    repo.write("ci/check.sh", "true\n");
    bigquery_workflow(&repo, "bigquery_agent");
    bigquery_workflow(&repo, "bigquery_plugin");
    repo.commit("two workflows with one package");
    assert_package_clash(&repo.xtask(&["plan"]), "one project");
    // The fix the error suggests: another project for one of them.
    repo.write("workflows/bigquery_plugin/workflow.toml", "project = \"other\"\n");
    repo.commit("bigquery_plugin in its own project");
    let json = plan(&repo, &["--all"]);
    let projects: Vec<(&str, &str)> = json["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap(), w["project"].as_str().unwrap()))
        .collect();
    assert_eq!(projects, [("bigquery_agent", "flytesnacks"), ("bigquery_plugin", "other")]);
    repo.xtask(&["list"]).ok();
}

#[test]
fn a_workflows_root_that_is_not_there_is_bad_input_not_every_workflow_removed() {
    // (Without workflows at base either, as in a new monorepo, there is just nothing to plan:
    // see `no_workflows_and_empty_repository_give_clear_answers`.)
    let repo = monorepo();
    repo.write("deploy.toml", &format!("workflows = \"wokflows\"\n{DEPLOY}"));
    repo.commit("a typo in the workflows root");
    for args in [&["plan", "--format", "json"][..], &["plan"], &["deploy", "--dry-run"]] {
        let run = repo.xtask(args);
        let message = run.user_error();
        assert!(
            message.contains("deploy.toml:1:13: the workflows root 'wokflows' is not a folder in"),
            "{args:?}: {message}"
        );
        assert!(message.contains("correct `workflows` in deploy.toml"), "{args:?}: {message}");
        assert!(run.stdout.is_empty(), "{args:?} printed a plan: {}", run.stdout);
    }
}

#[test]
fn a_folder_name_with_a_newline_is_shown_escaped() {
    let repo = monorepo();
    workflow(&repo, "new\nline");
    repo.commit("a folder whose name holds a newline");
    let run = repo.xtask(&["plan", "--format", "json"]);
    let message = run.user_error();
    assert!(
        message
            .starts_with("error: workflows/new\\nline/workflow.toml:1:1: the folder name 'new\\nline' is not a valid"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 2, "one line, then its help: {message}");
}
