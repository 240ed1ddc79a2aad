//! The foundation end to end: workflow discovery on the examples, every config error with
//! its place and exit status 2, and the examples being real Flyte workflows for pyflyte.

use std::collections::BTreeMap;
use std::process::Command;

use tests::{flytekit_python, project_root, TempRepo};

#[test]
fn list_json_describes_every_example() {
    let repo = TempRepo::with_examples();
    let json = repo.xtask(&["list", "--format", "json"]).json();
    let list = json.as_array().expect("an array");
    let names: Vec<&str> = list.iter().map(|w| w["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["etl", "features", "hello", "training"]);
    for w in list {
        let mut keys: Vec<&String> = w.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["dependencies", "dockerfile", "images", "name", "packages", "path", "project", "shared"]);
    }
    let etl = &list[0];
    assert_eq!(etl["path"], "workflows/etl");
    assert_eq!(etl["project"], "flytesnacks");
    assert_eq!(etl["packages"], serde_json::json!(["etl"]));
    assert_eq!(etl["dockerfile"], "workflows/etl/Dockerfile");
    assert_eq!(etl["dependencies"], serde_json::json!(["workflows/etl/Dockerfile", "workflows/etl/requirements.txt"]));
    let features = &list[1];
    assert_eq!(features["shared"], serde_json::json!(["libs/flyte_common"]));
    assert_eq!(features["dockerfile"], serde_json::Value::Null);
    assert_eq!(list[2]["shared"], serde_json::json!([]));
    assert_eq!(list[2]["images"], serde_json::json!({}));
}

#[test]
fn list_names_the_images_a_workflow_refers_to_by_name() {
    let repo = TempRepo::with_all_examples();
    let json = repo.xtask(&["list", "--format", "json"]).json();
    let batch = json.as_array().unwrap().iter().find(|w| w["name"] == "batch").expect("the batch example");
    assert_eq!(batch["images"], serde_json::json!({"batch": "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31"}));
}

#[test]
fn list_text_is_a_table() {
    let repo = TempRepo::with_examples();
    let run = repo.xtask(&["list"]);
    let out = run.ok();
    assert!(out.starts_with("WORKFLOW"), "{out}");
    assert!(out.contains("workflows/training"), "{out}");
    assert!(out.ends_with("4 workflows\n"), "{out}");
}

/// A repository with the examples and one file changed; the run must fail with exit 2 and
/// a message starting with `place`.
fn refused(file: &str, contents: &str, place: &str, says: &str) {
    let repo = TempRepo::with_examples();
    repo.write(file, contents);
    let run = repo.xtask(&["list", "--format", "json"]);
    let err = run.user_error();
    assert!(err.starts_with(&format!("error: {place}")), "expected '{place}' first:\n{err}");
    assert!(err.contains(says), "expected '{says}' in:\n{err}");
    assert!(err.contains("help: "), "no help in:\n{err}");
    assert!(run.stdout.is_empty(), "nothing on stdout on error: {}", run.stdout);
}

#[test]
fn unknown_key_in_deploy_toml() {
    refused("deploy.toml", "project = \"p\"\nprojekt = \"q\"\n", "deploy.toml:2:1:", "unknown field `projekt`");
}

#[test]
fn unknown_key_in_workflow_toml() {
    refused(
        "workflows/hello/workflow.toml",
        "name = \"hello\"\nshard = []\n",
        "workflows/hello/workflow.toml:2:1:",
        "unknown field `shard`",
    );
}

#[test]
fn wrong_type() {
    refused("deploy.toml", "[flyte]\ninsecure = \"yes\"\n", "deploy.toml:2:12:", "invalid type");
    refused("deploy.toml", "version_scheme = \"random\"\n", "deploy.toml:1:18:", "unknown variant");
}

#[test]
fn duplicate_workflow_names() {
    refused(
        "workflows/hello/workflow.toml",
        "name = \"etl\"\n",
        "workflows/hello/workflow.toml:1:8:",
        "workflow name 'etl' is already used by workflows/etl",
    );
}

#[test]
fn duplicate_domain_names() {
    refused(
        "deploy.toml",
        "[[domains]]\nname = \"dev\"\nbranches = [\"*\"]\n[[domains]]\nname = \"dev\"\n",
        "deploy.toml:5:8:",
        "domain 'dev' is declared twice",
    );
}

#[test]
fn missing_shared_path() {
    refused(
        "workflows/features/workflow.toml",
        "shared = [\"libs/nope\"]\n",
        "workflows/features/workflow.toml:1:11:",
        "shared path 'libs/nope' does not exist",
    );
}

#[test]
fn missing_dockerfile() {
    refused(
        "workflows/hello/workflow.toml",
        "dockerfile = \"docker/Dockerfile\"\n",
        "workflows/hello/workflow.toml:1:14:",
        "dockerfile 'docker/Dockerfile' does not exist",
    );
}

#[test]
fn paths_that_escape_the_repository() {
    refused(
        "workflows/features/workflow.toml",
        "shared = [\"../../libs\"]\n",
        "workflows/features/workflow.toml:1:11:",
        "escapes the repository",
    );
    refused("deploy.toml", "global = [\"/etc/passwd\"]\n", "deploy.toml:1:11:", "escapes the repository");
    refused(
        "workflows/hello/workflow.toml",
        "dockerfile = \"../../../Dockerfile\"\n",
        "workflows/hello/workflow.toml:1:14:",
        "escapes the repository",
    );
    refused(
        "workflows/hello/workflow.toml",
        "dependencies = [\"../x.txt\"]\n",
        "workflows/hello/workflow.toml:1:17:",
        "escapes",
    );
}

#[test]
fn branch_mapped_to_two_domains() {
    refused(
        "deploy.toml",
        "[[domains]]\nname = \"a\"\nbranches = [\"feature/*\"]\n[[domains]]\nname = \"b\"\nbranches = [\"feature/*\"]\n",
        "deploy.toml:6:13:",
        "matches the same branches as 'feature/*' of domain 'a'",
    );
}

#[test]
fn syntax_error_is_located() {
    refused("deploy.toml", "project = \n", "deploy.toml:1:", "");
}

#[test]
fn outside_a_repository_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(tests::xtask_bin()).current_dir(dir.path()).args(["list"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is not inside a git repository"), "{err}");
}

#[test]
fn missing_deploy_toml_is_a_clear_error() {
    let repo = TempRepo::with_examples();
    repo.remove("deploy.toml");
    let err = repo.xtask(&["list"]).user_error().to_string();
    assert!(err.contains("no deploy.toml at the repository root"), "{err}");
}

/// Every example is a real Flyte workflow: the real pyflyte packages it, writing task (1),
/// workflow (2) and launch plan (3) specs with the image we pass.
#[test]
fn pyflyte_packages_every_example() {
    let Some(python) = flytekit_python() else {
        return;
    };
    let pyflyte = python.with_file_name("pyflyte");
    let root = project_root();
    let image = "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31";
    // (workflow, tasks, workflows, launch plans)
    let expected = [("etl", 3, 1, 1), ("features", 2, 1, 1), ("hello", 2, 1, 1), ("training", 2, 1, 2)];
    for (name, tasks, workflows, launch_plans) in expected {
        let work = tempfile::tempdir().unwrap();
        tests::copy_tree(&root.join("workflows").join(name), work.path());
        let out = Command::new(&pyflyte)
            .current_dir(work.path())
            .env("PYTHONPATH", root.join("libs"))
            .args(["--pkgs", name, "package", "--image", image, "--copy", "all", "-o", "out.tgz", "--force"])
            .output()
            .unwrap();
        assert!(out.status.success(), "pyflyte failed on {name}: {}", String::from_utf8_lossy(&out.stderr));
        let listing = Command::new("tar").current_dir(work.path()).args(["-tzf", "out.tgz"]).output().unwrap();
        let names = String::from_utf8_lossy(&listing.stdout).to_string();
        let mut kinds: BTreeMap<char, usize> = BTreeMap::new();
        for file in names.lines().filter(|f| f.ends_with(".pb")) {
            let kind = file.trim_end_matches(".pb").chars().last().unwrap();
            *kinds.entry(kind).or_default() += 1;
        }
        assert_eq!(
            (kinds.get(&'1').copied(), kinds.get(&'2').copied(), kinds.get(&'3').copied()),
            (Some(tasks), Some(workflows), Some(launch_plans)),
            "{name}: {names}"
        );
        assert!(names.lines().any(|f| f.starts_with("fast") && f.ends_with(".tar.gz")), "{name}: {names}");
        // The task specs carry the image given on the command line.
        let extract = Command::new("tar").current_dir(work.path()).args(["-xzf", "out.tgz"]).status().unwrap();
        assert!(extract.success());
        let task = names.lines().find(|f| f.ends_with("_1.pb")).unwrap();
        let bytes = std::fs::read(work.path().join(task)).unwrap();
        assert!(bytes.windows(image.len()).any(|w| w == image.as_bytes()), "{name}: image not in {task}");
        if name == "training" {
            assert!(names.contains("training_nightly_3.pb"), "the scheduled launch plan: {names}");
        }
    }
}

#[test]
fn github_actions_gets_an_error_annotation_on_the_file_and_line() {
    let repo = TempRepo::with_examples();
    repo.write("deploy.toml", "project = \"p\"\nprojekt = \"q\"\n");
    let run = repo.xtask_env(&["list"], &[("GITHUB_ACTIONS", "true")]);
    let err = run.user_error();
    assert!(err.contains("::error file=deploy.toml,line=2::deploy.toml:2:1: unknown field"), "{err}");
    let run = repo.xtask(&["list"]);
    assert!(!run.user_error().contains("::error"), "only in GitHub Actions");
}
