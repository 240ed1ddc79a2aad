//! The long-lived serializer end to end: one process serializes every example and a
//! generated set of odd cases (two workflows importing one shared library, two shared
//! libraries of one name, module-level side effects on a shared module and on the
//! environment, a workflow importing a library it does not declare after one that does, a
//! package named like an installed one an earlier workflow loaded, a workflow failing to
//! import between two that succeed), and for each writes
//! the same spec files, byte for byte, as the real `pyflyte package` run for that workflow
//! alone. Through deploy: a crash or a hang fails only the workflow being serialized (a hung
//! one is killed with its children) and the next gets a fresh process; a flytekit the
//! serializer does not know is serialized by pyflyte, said once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use flyte_deploy::artifacts::canonical::SpecFile;
use flyte_deploy::artifacts::codeset::CodeSet;
use flyte_deploy::artifacts::serialize::Request;
use flyte_deploy::artifacts::serializer::{Serializer, Served};
use flyte_deploy::workspace::Workflow;
use serde_json::Value;
use tests::{envs_dir, flytekit_python, TempRepo};

const IMAGE: &str = "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31";

const PLAIN: &str = "from flytekit import task, workflow\n\n\n@task\ndef one() -> int:\n    return 1\n\n\n\
                     @workflow\ndef wf() -> int:\n    return one()\n";

/// A workflow folder with one module.
fn write_workflow(repo: &TempRepo, name: &str, module: &str) {
    repo.write(&format!("workflows/{name}/{name}/__init__.py"), "");
    repo.write(&format!("workflows/{name}/{name}/wf.py"), module);
}

/// The odd cases, added to a repository holding the examples.
fn add_odd_cases(repo: &TempRepo) {
    // One shared library, `common`, used by `left` and `middle`: a task, and a list that
    // importers append to (a module-level side effect on a shared module).
    repo.write("libs/v1/common/__init__.py", "");
    repo.write("libs/v1/common/state.py", "SEEN: list = []\n");
    repo.write(
        "libs/v1/common/tasks.py",
        "from flytekit import task\n\n\n@task\ndef clean(x: int) -> int:\n    return abs(x)\n",
    );
    // Another library of the same package name with other code, used by `right`.
    repo.write("libs/v2/common/__init__.py", "");
    repo.write("libs/v2/common/state.py", "SEEN: list = ['v2']\n");
    repo.write(
        "libs/v2/common/tasks.py",
        "from flytekit import task\n\n\n@task(retries=2)\ndef clean(x: int, floor: int = 0) -> int:\n    \
         return max(x, floor)\n",
    );
    for (name, lib, body) in [
        ("left", "v1", "return clean(x=x)"),
        ("middle", "v1", "return clean(x=clean(x=x))"),
        ("right", "v2", "return clean(x=x)"),
    ] {
        let module = format!(
            "from common import state\nfrom common.tasks import clean\nfrom flytekit import workflow\n\n\
             state.SEEN.append(__name__)\n\n\n@workflow\ndef {name}_wf(x: int = -1, seen: int = len(state.SEEN)) -> int:\n    \
             {body}\n"
        );
        write_workflow(repo, name, &module);
        repo.write(&format!("workflows/{name}/workflow.toml"), &format!("shared = [\"libs/{lib}/common\"]\n"));
    }
    // Imports the shared library without declaring it: not in its code set, so it fails, as
    // pyflyte fails on it alone, however many workflows imported `common` before.
    write_workflow(repo, "undeclared", &format!("from common.tasks import clean\n\n{PLAIN}"));
    // Its code set has a package named like an installed one an earlier workflow loaded
    // (pandas, which `stats` imports, loads pytz): its own is the one it imports.
    repo.write("workflows/shadow/pytz/__init__.py", "OWN = 'the code set\\'s own pytz'\n");
    repo.write("workflows/shadow/workflow.toml", "packages = [\"shadow\"]\n");
    write_workflow(
        repo,
        "shadow",
        "import pytz\nfrom flytekit import task, workflow\n\n\n@task\ndef echo(s: str) -> str:\n    return s\n\n\n\
         @workflow\ndef shadow_wf(s: str = getattr(pytz, 'OWN', 'the installed pytz')) -> str:\n    return echo(s=s)\n",
    );
    // Fails to import after touching the shared library and the environment.
    write_workflow(
        repo,
        "broken",
        "import os\n\nfrom common import state\n\nstate.SEEN.append('broken')\nos.environ['FLYTE_DEPLOY_TEST_MARK'] = \
         'broken'\nLIMIT = int(os.environ.get('NOPE', 'ten'))\n",
    );
    repo.write("workflows/broken/workflow.toml", "shared = [\"libs/v1/common\"]\n");
    // Sets a variable at import; `reader` reads it into a default.
    write_workflow(repo, "setter", &format!("import os\n\nos.environ['FLYTE_DEPLOY_TEST_MARK'] = 'setter'\n\n{PLAIN}"));
    write_workflow(
        repo,
        "reader",
        "import os\n\nfrom flytekit import task, workflow\n\nMARK = os.environ.get('FLYTE_DEPLOY_TEST_MARK', 'unset')\n\n\n\
         @task\ndef echo(s: str) -> str:\n    return s\n\n\n@workflow\ndef reader_wf(s: str = MARK) -> str:\n    \
         return echo(s=s)\n",
    );
    repo.commit("odd cases");
}

/// The workflows of the repository's HEAD with their committed code sets, and the Python of
/// `stats`' environment (flytekit 1.16.31 and pandas: every example imports in it).
fn workflows(repo: &TempRepo) -> (Vec<(Workflow, CodeSet)>, PathBuf, flyte_deploy::workspace::repo::Repo) {
    let r = flyte_deploy::workspace::repo::Repo::discover_from(repo.path()).unwrap();
    let (sets, python) = {
        let commit = r.commit("HEAD").unwrap();
        let tree = flyte_deploy::workspace::source::GitTree::at_commit(&r.git, &commit).unwrap();
        let ws = flyte_deploy::workspace::Workspace::load(&tree).unwrap();
        let stats = ws.workflow("stats").unwrap();
        let env = flyte_deploy::workspace::requirements::Environment::of(&tree, &ws.config, stats).unwrap();
        let python = flyte_deploy::artifacts::environment::Envs::at(envs_dir()).ensure(&env).unwrap().python;
        let sets: Vec<(Workflow, CodeSet)> =
            ws.workflows.iter().map(|wf| (wf.clone(), CodeSet::at(&r.git, tree.tree(), wf).unwrap())).collect();
        (sets, python)
    };
    (sets, python, r)
}

/// The real `pyflyte package` of one workflow alone, in `python`'s environment, on its own
/// copy of the code set, with the variables workflow code gets from the tool; the archive,
/// or None when pyflyte failed (its output is returned then).
fn pyflyte_alone(
    python: &Path,
    r: &flyte_deploy::workspace::repo::Repo,
    wf: &Workflow,
    set: &CodeSet,
) -> Result<PathBuf, String> {
    let code = tempfile::tempdir().unwrap();
    set.materialise(&r.git, code.path()).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = home.path().join("package.tgz");
    let mut cmd = Command::new(python.with_file_name("pyflyte"));
    for p in &wf.packages {
        cmd.args(["--pkgs", p]);
    }
    cmd.args(["package", "--image", IMAGE]);
    for (name, uri) in &wf.images {
        cmd.args(["--image", &format!("{name}={uri}")]);
    }
    cmd.args(["--copy", "all", "--source"]).arg(code.path()).args(["--force", "-o"]).arg(&out);
    let output = cmd
        .current_dir(code.path())
        .env_clear()
        .envs(flyte_deploy::artifacts::environment::workflow_env())
        .env("HOME", home.path())
        .env("PYTHONPATH", code.path())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("FLYTE_SDK_LOGGING_LEVEL", "40")
        .output()
        .unwrap();
    let kept = home.keep();
    if output.status.success() && out.is_file() {
        return Ok(kept.join("package.tgz"));
    }
    Err(format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn one_serializer_writes_for_every_workflow_the_specs_pyflyte_package_writes_for_it_alone() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = TempRepo::with_all_examples();
    add_odd_cases(&repo);
    let (sets, python, r) = workflows(&repo);
    let by_name = |n: &str| sets.iter().find(|(wf, _)| wf.name == n).unwrap_or_else(|| panic!("no workflow {n}"));
    // The examples, then the odd cases in an order that lets a leak show: the shared library's
    // two users around a failing import, the library of the same name after them, the
    // variable's reader after its setter, and the first example once more at the end.
    let mut order: Vec<&str> = vec!["batch", "etl", "features", "hello", "spec_images", "stats", "training"];
    order.extend(["left", "undeclared", "broken", "middle", "right", "setter", "reader", "shadow", "batch"]);
    assert_eq!(sets.len(), order.len() - 1, "every workflow of the repository is in the order");

    let out_dir = tempfile::tempdir().unwrap();
    let mut serializer = Serializer::new(&python, Duration::from_secs(600));
    let mut first_pid = None;
    let mut pairs: Vec<(&str, PathBuf, PathBuf)> = Vec::new();
    for (n, name) in order.iter().enumerate() {
        let (wf, set) = by_name(name);
        let code = tempfile::tempdir().unwrap();
        set.materialise(&r.git, code.path()).unwrap();
        let request = Request {
            python: &python,
            code_dir: code.path(),
            set,
            packages: &wf.packages,
            image: IMAGE,
            images: &wf.images,
        };
        let out = out_dir.path().join(format!("{n}-{name}.tgz"));
        let served = serializer.serve(&request, &out);
        let alone = pyflyte_alone(&python, &r, wf, set);
        if *name == "broken" {
            let error = format!("{:#}", served.expect_err("broken does not import"));
            assert!(error.contains("ValueError: invalid literal for int() with base 10: 'ten'"), "{error}");
            assert!(error.contains("at workflows/broken/broken/wf.py:7 in <module>"), "{error}");
            let output = alone.expect_err("pyflyte fails on broken too");
            assert!(output.contains("invalid literal"), "{output}");
            continue;
        }
        if *name == "undeclared" {
            let error = format!("{:#}", served.expect_err("undeclared finds no `common`"));
            assert!(error.contains("No module named 'common'"), "{error}");
            assert!(error.contains("at workflows/undeclared/undeclared/wf.py:1 in <module>"), "{error}");
            let output = alone.expect_err("pyflyte fails on undeclared too");
            assert!(output.contains("No module named 'common'"), "{output}");
            continue;
        }
        assert_eq!(served.unwrap_or_else(|e| panic!("{name}: {e:#}")), Served::Written, "{name}");
        // Every workflow through the one process started first.
        let pid = serializer.pid().expect("the serializer runs");
        assert_eq!(*first_pid.get_or_insert(pid), pid, "{name} was served by another process");
        let alone = alone.unwrap_or_else(|e| panic!("pyflyte package of {name} failed:\n{e}"));
        pairs.push((name, out, alone));
    }
    assert_eq!(serializer.starts(), 1, "one process served every workflow");
    assert_eq!(serializer.served(), order.len());

    // Python's protobuf writes map entries in an order that changes from process to process
    // (two runs of pyflyte package alone differ so): each spec is compared after protobuf's
    // deterministic ordering, and its bytes as written are counted.
    let all: Vec<&Path> = pairs.iter().flat_map(|(_, a, b)| [a.as_path(), b.as_path()]).collect();
    let specs = flyte_deploy::artifacts::canonical::canonical_specs(&python, &all).unwrap();
    let (mut files, mut raw_same) = (0, 0);
    let mut ours_by_name: Vec<(&str, &BTreeMap<String, SpecFile>)> = Vec::new();
    for ((name, _, _), pair) in pairs.iter().zip(specs.chunks(2)) {
        let (ours, theirs) = (&pair[0], &pair[1]);
        assert!(ours.keys().any(|k| k.ends_with("_2.pb")), "{name} has a workflow spec: {:?}", ours.keys());
        assert_eq!(ours.keys().collect::<Vec<_>>(), theirs.keys().collect::<Vec<_>>(), "{name}: file names");
        for (file, spec) in ours {
            assert!(
                spec.canonical == theirs[file].canonical,
                "{name}: {file} differs from what pyflyte package writes for it alone"
            );
            if file.ends_with(".pb") {
                assert!(!spec.canonical.is_empty(), "{name}: {file} decoded");
                files += 1;
                raw_same += usize::from(spec.raw == theirs[file].raw);
            }
        }
        ours_by_name.push((name, ours));
    }
    eprintln!("{files} spec files equal after canonical ordering; {raw_same} of them byte for byte as written");

    // The odd cases are odd: what isolation prevents would have changed these specs.
    let spec = |name: &str, suffix: &str| -> Vec<u8> {
        let (_, files) = ours_by_name.iter().find(|(n, _)| *n == name).unwrap();
        files.iter().find(|(f, _)| f.ends_with(suffix)).map(|(_, s)| s.raw.clone()).unwrap()
    };
    let contains = |haystack: &[u8], needle: &[u8]| haystack.windows(needle.len()).any(|w| w == needle);
    // `right` registers v2's task (retries, a second input), not v1's.
    assert!(contains(&spec("right", "common.tasks.clean_1.pb"), b"floor"));
    assert!(!contains(&spec("left", "common.tasks.clean_1.pb"), b"floor"));
    // `reader` read no variable another workflow set.
    assert!(contains(&spec("reader", "reader.wf.reader_wf_3.pb"), b"unset"));
    assert!(!contains(&spec("reader", "reader.wf.reader_wf_3.pb"), b"setter"));
    // `shadow` imported its own pytz, not the one pandas loaded for `stats`.
    assert!(contains(&spec("shadow", "shadow.wf.shadow_wf_3.pb"), b"own pytz"));
    // The first example once more: the same specs as the first time.
    let batches: Vec<_> = ours_by_name.iter().filter(|(n, _)| *n == "batch").map(|(_, f)| *f).collect();
    let canonical =
        |f: &BTreeMap<String, SpecFile>| f.iter().map(|(k, s)| (k.clone(), s.canonical.clone())).collect::<Vec<_>>();
    assert_eq!(canonical(batches[0]), canonical(batches[1]));
}

/// `deploy --all --format json` on a feature branch, with `env` added.
fn deploy(repo: &TempRepo, args: &[&str], env: &[(&str, &str)]) -> tests::Run {
    repo.git(&["checkout", "--quiet", "-B", "feature"]);
    // -v: a line per step (starting a serializer) even off a terminal.
    let mut all = vec!["deploy", "-v", "--all", "--format", "json"];
    all.extend_from_slice(args);
    let mut vars = vec![("CI", "false")];
    vars.extend_from_slice(env);
    repo.xtask_env(&all, &vars)
}

fn workflow<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap_or_else(|| {
        panic!("no workflow {name} in {report:#}");
    })
}

#[test]
fn a_crash_fails_only_its_workflow_and_the_next_gets_a_fresh_serializer() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "a_first", PLAIN);
    write_workflow(&repo, "b_crash", "import os\n\nprint('about to leave')\nos._exit(3)\n");
    write_workflow(&repo, "c_after", PLAIN);
    repo.commit("a workflow whose import ends the process");
    // One worker: the three are serialized in order, in one environment.
    let run = deploy(&repo, &["--jobs", "1"], &[]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(workflow(&report, "a_first")["outcome"], "registered", "{report:#}");
    assert_eq!(workflow(&report, "c_after")["outcome"], "registered", "{report:#}");
    let crashed = workflow(&report, "b_crash");
    assert_eq!(crashed["outcome"], "failed");
    let error = crashed["error"].as_str().unwrap();
    assert!(error.contains("b_crash") && error.contains("exited with status 3"), "{error}");
    // It was tried once more alone, as `pyflyte package` (which a crash at exit of a native
    // library does not stop), and that failed too.
    assert!(error.contains("(alone, with pyflyte package: pyflyte could not serialize b_crash"), "{error}");
    assert!(error.contains("about to leave"), "the workflow's output is told: {error}");
    // One process for a_first and b_crash, a fresh one for c_after.
    assert_eq!(run.stderr.matches("starting the serializer").count(), 2, "{}", run.stderr);
}

#[test]
fn a_hang_is_stopped_with_its_children_and_the_next_workflow_serializes() {
    if flytekit_python().is_none() {
        return;
    }
    let dump = tempfile::tempdir().unwrap();
    let pid_file = dump.path().join("child.pid");
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    let hang = format!(
        "import subprocess, time\n\nchild = subprocess.Popen(['sleep', '1000'])\nwith open({:?}, 'w') as f:\n    \
         f.write(str(child.pid))\ntime.sleep(1000)\n",
        pid_file.to_str().unwrap()
    );
    write_workflow(&repo, "a_hang", &hang);
    write_workflow(&repo, "b_after", PLAIN);
    repo.commit("a workflow whose import never ends");
    let started = std::time::Instant::now();
    // Long enough for flytekit to start on a busy machine (the start counts against it too).
    let run = deploy(&repo, &[], &[("FLYTE_DEPLOY_SERIALIZE_TIMEOUT", "20")]);
    assert!(started.elapsed() < Duration::from_secs(120), "the timeout stopped it: {:?}", started.elapsed());
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(workflow(&report, "b_after")["outcome"], "registered", "{report:#}");
    let hung = workflow(&report, "a_hang");
    assert_eq!(hung["outcome"], "failed");
    let error = hung["error"].as_str().unwrap();
    assert!(error.contains("took longer than 20s") && error.contains("FLYTE_DEPLOY_SERIALIZE_TIMEOUT"), "{error}");
    // The child the workflow's import started was killed too.
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    let alive = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .is_ok_and(|stat| stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')))
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(), "the hung workflow's child {pid} still runs");
    // A bad timeout is bad input.
    let bad = deploy(&repo, &[], &[("FLYTE_DEPLOY_SERIALIZE_TIMEOUT", "soon")]);
    assert!(bad.user_error().contains("FLYTE_DEPLOY_SERIALIZE_TIMEOUT=soon"), "{}", bad.stderr);
    let zero = repo.xtask(&["deploy", "--jobs", "0", "--dry-run"]);
    assert!(zero.user_error().contains("--jobs"), "{}", zero.stderr);
}

#[test]
fn a_flytekit_the_serializer_does_not_know_is_serialized_by_pyflyte_and_said_once() {
    if flytekit_python().is_none() {
        return;
    }
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    for name in ["older", "oldest"] {
        write_workflow(&repo, name, PLAIN);
        repo.write(&format!("workflows/{name}/requirements.txt"), "flytekit==1.15.4\n");
    }
    write_workflow(&repo, "newer", PLAIN);
    repo.commit("two workflows on flytekit 1.15");
    let run = deploy(&repo, &[], &[]);
    let report = run.json();
    for name in ["older", "oldest", "newer"] {
        assert_eq!(workflow(&report, name)["outcome"], "registered", "{report:#}");
    }
    assert_eq!(run.stderr.matches("flytekit 1.15.4 is not a version the long-lived serializer knows").count(), 1);
    assert_eq!(run.stderr.matches("serializing with pyflyte").count(), 2, "{}", run.stderr);
    assert_eq!(run.stderr.matches("starting the serializer").count(), 1, "newer's environment: {}", run.stderr);
}
