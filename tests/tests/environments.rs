//! Serialization environments end to end: real uv, real PyPI packages, the real pyflyte in
//! each workflow's own environment, the embedded sandbox. Examples that import pandas,
//! declare an ImageSpec or use a named image deploy; a dependency set is built once and
//! shared; a workflow's own flytekit serializes it; a bad requirement fails only its
//! workflow; workflow code sees no secrets; errors name the user's file and line.

use std::path::Path;

use flyte_api::{Kind, Message};
use serde_json::Value;
use tests::{flytekit_python, Run, TempRepo};

/// `deploy --all --format json` on a feature branch (development), with `env` added.
fn deploy(repo: &TempRepo, env: &[(&str, &str)]) -> Run {
    let mut all = vec![("CI", "false")];
    all.extend_from_slice(env);
    // -v: a line per step (building an environment) even off a terminal.
    repo.xtask_env(&["deploy", "-v", "--all", "--format", "json"], &all)
}

fn on_a_branch(repo: &TempRepo) -> &TempRepo {
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo
}

fn workflow<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap_or_else(|| {
        panic!("no workflow {name} in {report:#}");
    })
}

fn strings(value: &Value) -> Vec<String> {
    value.as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()).collect()
}

/// The environments (folders with a manifest) in `dir`.
fn environments(dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .map(|e| e.unwrap().path().join("flyte-deploy-env.json"))
        .filter(|m| m.is_file())
        .map(|m| serde_json::from_slice(&std::fs::read(m).unwrap()).unwrap())
        .collect()
}

/// A workflow folder with one task and a workflow, and the given requirements.txt.
fn write_workflow(repo: &TempRepo, name: &str, requirements: Option<&str>, module: &str) {
    repo.write(&format!("workflows/{name}/{name}/__init__.py"), "");
    repo.write(&format!("workflows/{name}/{name}/wf.py"), module);
    if let Some(text) = requirements {
        repo.write(&format!("workflows/{name}/requirements.txt"), text);
    }
}

const PLAIN: &str = "from flytekit import task, workflow\n\n\n@task\ndef one() -> int:\n    return 1\n\n\n\
                     @workflow\ndef wf() -> int:\n    return one()\n";

#[test]
fn the_examples_that_need_packages_imagespec_and_named_images_deploy() {
    flytekit_python();
    let repo = TempRepo::with_all_examples();
    on_a_branch(&repo);
    let report = deploy(&repo, &[]).json();
    for w in report["workflows"].as_array().unwrap() {
        assert_eq!(w["outcome"], "registered", "{w:#}");
    }
    // stats imports pandas at module level: its environment has it.
    assert_eq!(workflow(&report, "stats")["entities"]["created"], 3, "a task, a workflow, a launch plan");
    // spec_images: the ImageSpec image is named by flytekit's hash, listed, and warned about
    // (nothing was built, and the sandbox runs no executions).
    let spec = workflow(&report, "spec_images");
    let images = strings(&spec["images"]);
    assert_eq!(images.len(), 1, "{spec:#}");
    assert!(images[0].starts_with("localhost:5000/flyte/spec-images-report:"), "{images:?}");
    let warnings = strings(&spec["warnings"]).join("\n");
    assert!(warnings.contains(&images[0]) && warnings.contains("ImageSpec"), "{warnings}");
    // batch: the task in the named image runs in the URI workflow.toml gives, the other in
    // the default image.
    assert_eq!(strings(&workflow(&report, "batch")["images"]), ["cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31"]);
    let hello = workflow(&report, "hello");
    assert_eq!(strings(&hello["images"]), ["cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31"]);
}

#[test]
fn a_named_image_reaches_the_task_and_the_version() {
    flytekit_python();
    let repo = TempRepo::with_examples();
    repo.remove("workflows/etl").remove("workflows/features").remove("workflows/training");
    tests::copy_tree(&tests::project_root().join("workflows/batch"), &repo.path().join("workflows/batch"));
    repo.write("workflows/batch/workflow.toml", "images = { batch = \"ghcr.io/example/batch:1.0\" }\n");
    repo.commit("batch with its own image");
    on_a_branch(&repo);
    let first = deploy(&repo, &[]).json();
    let batch = workflow(&first, "batch");
    assert_eq!(
        strings(&batch["images"]),
        ["cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31", "ghcr.io/example/batch:1.0"]
    );
    // Another URI for the name: a new version for the workflow that names it, and deploy.toml's
    // `[images] named` is overridden by workflow.toml's.
    let config = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    repo.write("deploy.toml", &config.replace("[images]\n", "[images]\nnamed = { batch = \"ghcr.io/x/ignored:0\" }\n"));
    repo.write("workflows/batch/workflow.toml", "images = { batch = \"ghcr.io/example/batch:2.0\" }\n");
    repo.commit("batch: image 2.0");
    let second = deploy(&repo, &[]).json();
    let batch2 = workflow(&second, "batch");
    assert!(strings(&batch2["images"]).contains(&"ghcr.io/example/batch:2.0".to_string()), "{batch2:#}");
    assert_ne!(batch2["version"], batch["version"]);
    // A name the code uses that nothing declares: pyflyte's own message, for that workflow.
    repo.write("workflows/batch/workflow.toml", "");
    repo.write("deploy.toml", &config);
    repo.commit("batch: no image declared");
    let third = deploy(&repo, &[]);
    assert_eq!(third.status, Some(1), "{}", third.stderr);
    let error = workflow(&serde_json::from_str(&third.stdout).unwrap(), "batch")["error"].as_str().unwrap().to_string();
    assert!(error.contains("batch") && error.contains("not found"), "{error}");
}

#[test]
fn one_dependency_set_is_one_environment_built_once_and_a_change_makes_a_new_one() {
    flytekit_python();
    let envs = tempfile::tempdir().unwrap();
    let envs_dir = envs.path().to_str().unwrap();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "alpha", Some("flytekit==1.16.31\ntabulate==0.9.0\n"), PLAIN);
    // The same set, written differently (order of comment and spacing do not matter).
    write_workflow(&repo, "beta", Some("# beta's table printer\nflytekit==1.16.31  \ntabulate==0.9.0\n"), PLAIN);
    repo.commit("two workflows, one dependency set");
    on_a_branch(&repo);
    let run = deploy(&repo, &[("FLYTE_DEPLOY_ENVS", envs_dir)]);
    let first = run.json();
    assert_eq!(run.stderr.matches("building its environment").count(), 1, "{}", run.stderr);
    let built = environments(envs.path());
    assert_eq!(built.len(), 1, "{built:?}");
    assert_eq!(built[0]["flytekit"], "1.16.31");

    // A dependency change: a new environment, and a new version for alpha only.
    repo.write("workflows/alpha/requirements.txt", "flytekit==1.16.31\ntabulate==0.9.0\nsix==1.16.0\n");
    repo.commit("alpha: one more package");
    let run = deploy(&repo, &[("FLYTE_DEPLOY_ENVS", envs_dir)]);
    let second = run.json();
    assert_eq!(run.stderr.matches("building its environment").count(), 1, "{}", run.stderr);
    assert_eq!(environments(envs.path()).len(), 2);
    assert_ne!(workflow(&second, "alpha")["version"], workflow(&first, "alpha")["version"]);
    assert_eq!(workflow(&second, "beta")["version"], workflow(&first, "beta")["version"]);
    assert_eq!(workflow(&second, "alpha")["outcome"], "registered");
    assert_eq!(workflow(&second, "beta")["outcome"], "already-registered");
}

#[test]
fn a_workflow_pinning_another_flytekit_is_serialized_by_it() {
    flytekit_python();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "older", Some("flytekit==1.15.4\n"), PLAIN);
    write_workflow(&repo, "newer", None, PLAIN);
    repo.commit("two flytekits");
    on_a_branch(&repo);
    let report = deploy(&repo, &[]).json();
    assert_eq!(workflow(&report, "older")["outcome"], "registered", "{report:#}");
    // The task specs say which flytekit wrote them (TaskMetadata.runtime.version).
    let mut runtimes = Vec::new();
    for entry in std::fs::read_dir(repo.path().join(".flyte/cache/serialized")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "tgz") {
            let package = flyte_deploy::artifacts::specs::read_package_file(&path).unwrap();
            for e in package.entities.iter().filter(|e| e.kind == Kind::Task) {
                let spec = flyte_api::admin::TaskSpec::decode(e.bytes.as_slice()).unwrap();
                let template = spec.template.unwrap();
                let runtime = template.metadata.unwrap().runtime.unwrap();
                runtimes.push((template.id.unwrap().name, runtime.version));
            }
        }
    }
    runtimes.sort();
    assert_eq!(
        runtimes,
        [("newer.wf.one".to_string(), "1.16.31".to_string()), ("older.wf.one".to_string(), "1.15.4".to_string())]
    );
}

#[test]
fn an_uninstallable_requirement_fails_only_its_workflow() {
    flytekit_python();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "broken", Some("flyte-deploy-no-such-package-anywhere==1.0\n"), PLAIN);
    write_workflow(&repo, "fine", None, PLAIN);
    repo.commit("one bad requirement");
    on_a_branch(&repo);
    let run = deploy(&repo, &[]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(workflow(&report, "fine")["outcome"], "registered");
    let broken = workflow(&report, "broken");
    assert_eq!(broken["outcome"], "failed");
    let error = broken["error"].as_str().unwrap();
    assert!(error.contains("workflows/broken/requirements.txt"), "{error}");
    assert!(error.contains("flyte-deploy-no-such-package-anywhere"), "uv's explanation: {error}");
}

#[test]
fn workflow_code_sees_no_secrets() {
    flytekit_python();
    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("environ.json");
    let module = format!(
        "import json, os\n\nwith open({:?}, 'w') as f:\n    json.dump(dict(os.environ), f)\n\n{PLAIN}",
        file.to_str().unwrap()
    );
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "nosy", None, &module);
    repo.commit("a workflow that reads its environment at import");
    on_a_branch(&repo);
    let secrets = [
        ("FLYTE_TOKEN", "tok-1"),
        ("FLYTE_CLIENT_SECRET", "sec-2"),
        ("FLYTE_CREDENTIALS_CLIENT_SECRET", "sec-3"),
        ("FLYTE_DEPLOY_REGISTRY_PASSWORD", "pw-4"),
        ("GITHUB_TOKEN", "gh-5"),
        ("AWS_SECRET_ACCESS_KEY", "aws-6"),
        ("FLYTE_TEAM_SETTING", "marked-7"),
        ("FLYTE_DEPLOY_SECRET_VARS", "FLYTE_TEAM_SETTING"),
    ];
    let mut env = secrets.to_vec();
    env.push(("FLYTE_SDK_LOGGING_LEVEL_CHECK", "kept"));
    env.push(("FLYTE_USE_OLD_DC_FORMAT", "true"));
    let report = deploy(&repo, &env).json();
    assert_eq!(workflow(&report, "nosy")["outcome"], "registered");
    let seen: serde_json::Map<String, Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    for (name, value) in secrets {
        assert!(!seen.contains_key(name), "{name} reached workflow code");
        assert!(!seen.values().any(|v| v.as_str().is_some_and(|v| v.contains(value))), "{value} reached workflow code");
    }
    assert_eq!(seen["FLYTE_SDK_LOGGING_LEVEL_CHECK"], "kept", "flytekit's logging settings pass");
    assert!(!seen.contains_key("FLYTE_USE_OLD_DC_FORMAT"), "a setting that changes the specs does not");
    assert!(seen.contains_key("PATH"));
    let home = seen["HOME"].as_str().unwrap();
    assert_ne!(Some(home), std::env::var("HOME").ok().as_deref(), "no user configuration is read");
}

#[test]
fn a_serialization_error_names_the_users_file_and_line() {
    flytekit_python();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "oops", None, "import os\n\nLIMIT = int(os.environ.get('NOPE', 'ten'))\n");
    write_workflow(&repo, "fine", None, PLAIN);
    repo.commit("a module that fails at import");
    on_a_branch(&repo);
    let run = deploy(&repo, &[]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(workflow(&report, "fine")["outcome"], "registered");
    let error = workflow(&report, "oops")["error"].as_str().unwrap().to_string();
    assert!(error.contains("ValueError: invalid literal for int() with base 10: 'ten'"), "{error}");
    assert!(error.contains("at workflows/oops/oops/wf.py:3 in <module>"), "{error}");
    assert!(!error.contains("/tmp"), "no temporary path: {error}");
}

#[test]
fn two_workflows_registering_one_name_are_refused_before_anything_is_registered() {
    flytekit_python();
    let module = |wf: &str| {
        format!(
            "from flytekit import ContainerTask, workflow\n\necho = ContainerTask(name=\"shared.echo\", \
             image=\"alpine:3.19\", command=[\"echo\", \"hi\"])\n\n\n@workflow\ndef {wf}():\n    echo()\n"
        )
    };
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    write_workflow(&repo, "first", None, &module("first_wf"));
    write_workflow(&repo, "second", None, &module("second_wf"));
    repo.commit("two workflows, one task name");
    on_a_branch(&repo);
    let run = deploy(&repo, &[]);
    let err = run.user_error();
    assert!(
        err.contains("workflows/first and workflows/second both register task 'shared.echo' in project flytesnacks"),
        "{err}"
    );
    // Nothing was registered: once the clash is gone, the first workflow is created anew.
    repo.write("workflows/second/second/wf.py", &module("second_wf").replace("shared.echo", "second.echo"));
    repo.commit("second: its own task name");
    let report = deploy(&repo, &[]).json();
    assert_eq!(workflow(&report, "first")["outcome"], "registered", "{report:#}");
    assert_eq!(workflow(&report, "first")["entities"]["created"], 3);
}

#[test]
fn a_shared_task_is_no_clash_and_requirements_may_name_other_files() {
    flytekit_python();
    let envs = tempfile::tempdir().unwrap();
    let repo = TempRepo::new();
    repo.write("deploy.toml", "");
    repo.write("libs/common/__init__.py", "");
    repo.write(
        "libs/common/tasks.py",
        "from flytekit import task\n\n\n@task\ndef clean(x: int) -> int:\n    return abs(x)\n",
    );
    // Both workflows use the shared task; their requirements pin through a shared constraints
    // file that only the -c line names.
    repo.write("constraints/pins.txt", "tabulate==0.9.0\n");
    for name in ["left", "right"] {
        let module = format!(
            "from common.tasks import clean\nfrom flytekit import workflow\n\n\n@workflow\ndef {name}_wf(x: int = -1) \
             -> int:\n    return clean(x=x)\n"
        );
        write_workflow(&repo, name, Some("flytekit==1.16.31\ntabulate\n-c ../../constraints/pins.txt\n"), &module);
        repo.write(&format!("workflows/{name}/workflow.toml"), "shared = [\"libs/common\", \"constraints\"]\n");
    }
    repo.commit("two users of a shared task");
    on_a_branch(&repo);
    let report = deploy(&repo, &[("FLYTE_DEPLOY_ENVS", envs.path().to_str().unwrap())]).json();
    assert_eq!(workflow(&report, "left")["outcome"], "registered", "{report:#}");
    assert_eq!(workflow(&report, "right")["outcome"], "registered", "{report:#}");
    let built = environments(envs.path());
    assert_eq!(built.len(), 1, "one dependency set: {built:?}");
    let files = strings(&built[0]["files"]);
    assert!(files.contains(&"constraints/pins.txt".to_string()), "{files:?}");
    // A constraint changed: a new environment, and a new version for both (also when plan
    // reads versions from its cache: the constraints folder is a declared shared path).
    repo.write("constraints/pins.txt", "tabulate==0.8.10\n");
    repo.commit("pins: older tabulate");
    let again = deploy(&repo, &[("FLYTE_DEPLOY_ENVS", envs.path().to_str().unwrap())]).json();
    assert_ne!(workflow(&again, "left")["version"], workflow(&report, "left")["version"]);
    assert_eq!(environments(envs.path()).len(), 2);
    // Undeclared, a file outside the folder is refused where it is named.
    repo.write("workflows/left/workflow.toml", "shared = [\"libs/common\"]\n");
    repo.commit("left: constraints undeclared");
    // (Like every bad input inside one workflow, the plan is refused, naming it: nothing of a
    // tree with bad input is registered.)
    let plan = repo.xtask(&["plan", "--all", "--format", "json"]);
    let err = plan.user_error();
    assert!(err.contains("left: workflows/left/requirements.txt:3: '../../constraints/pins.txt'"), "{err}");
    assert!(err.contains("`shared`"), "{err}");
}
