//! `cargo xtask deploy` end to end: a temporary copy of the examples, the real pyflyte, the
//! embedded sandbox (its data under the repository's .flyte/), records and history.

use serde_json::Value;
use tests::{flytekit_python, Run, TempRepo};

/// Runs `deploy --format json` with the venv's Python (or `python`) and returns the run.
fn deploy_with(repo: &TempRepo, python: &str, args: &[&str]) -> Run {
    let mut all = vec!["deploy", "--format", "json"];
    all.extend_from_slice(args);
    repo.xtask_env(&all, &[("FLYTE_DEPLOY_PYTHON", python), ("CI", "false")])
}

/// `(name, action, outcome, created, existing)` of every workflow of a deploy report.
fn outcomes(json: &Value) -> Vec<(String, String, String, u64, u64)> {
    json["workflows"]
        .as_array()
        .expect("workflows")
        .iter()
        .map(|w| {
            (
                w["name"].as_str().unwrap().to_string(),
                w["action"].as_str().unwrap().to_string(),
                w["outcome"].as_str().unwrap().to_string(),
                w["entities"]["created"].as_u64().unwrap(),
                w["entities"]["existing"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn row(name: &str, action: &str, outcome: &str, created: u64, existing: u64) -> (String, String, String, u64, u64) {
    (name.into(), action.into(), outcome.into(), created, existing)
}

fn version(json: &Value, name: &str) -> String {
    json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).unwrap()["version"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A repository with the examples on a feature branch, deployed once to development.
fn deployed() -> Option<(TempRepo, String, Value)> {
    let python = flytekit_python()?.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    let first = deploy_with(&repo, &python, &["--all"]).json();
    Some((repo, python, first))
}

#[test]
fn fresh_deploy_registers_everything_and_a_rerun_starts_no_python() {
    let Some((repo, _, first)) = deployed() else { return };
    assert_eq!(first["domain"], "development");
    assert_eq!(
        outcomes(&first),
        vec![
            row("etl", "rebuild", "registered", 5, 0),
            row("features", "fast", "registered", 4, 0),
            row("hello", "fast", "registered", 4, 0),
            row("training", "fast", "registered", 5, 0),
        ]
    );
    // etl's image is not in a registry here: against the sandbox that is only a warning.
    let etl = &first["workflows"][0];
    assert!(etl["warnings"][0].as_str().unwrap().contains("localhost:5000/flyte/etl:"), "{etl}");
    // Second run: the cache names the launch plans, the sandbox has them active. A Python
    // that does not exist proves that pyflyte is not started.
    let again = deploy_with(&repo, "/nonexistent/python", &["--all"]);
    let json = again.json();
    assert!(outcomes(&json).iter().all(|o| o.2 == "already-registered" && o.3 == 0), "{json:#}");
    assert_eq!(version(&json, "hello"), version(&first, "hello"));
}

#[test]
fn code_change_is_fast_and_others_stay() {
    let Some((repo, python, first)) = deployed() else { return };
    let base = repo.git(&["rev-parse", "HEAD"]);
    let greet = std::fs::read_to_string(repo.path().join("workflows/hello/hello/greet.py")).unwrap();
    repo.write("workflows/hello/hello/greet.py", &format!("{greet}\n\n@task\ndef extra() -> int:\n    return 1\n"));
    repo.commit("hello: one more task");
    let json = deploy_with(&repo, &python, &["--base", &base]).json();
    assert_eq!(
        outcomes(&json),
        vec![
            row("etl", "unchanged", "already-registered", 0, 0),
            row("features", "unchanged", "already-registered", 0, 0),
            row("hello", "fast", "registered", 5, 0),
            row("training", "unchanged", "already-registered", 0, 0),
        ]
    );
    assert_ne!(version(&json, "hello"), version(&first, "hello"));
    assert_eq!(version(&json, "etl"), version(&first, "etl"));
}

#[test]
fn requirements_change_takes_the_rebuild_path() {
    let Some((repo, python, first)) = deployed() else { return };
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write("workflows/etl/requirements.txt", "flytekit==1.16.31\nrequests==2.32.3\n");
    repo.commit("etl: a new dependency");
    let json = deploy_with(&repo, &python, &["--base", &base]).json();
    let etl = &json["workflows"][0];
    assert_eq!((etl["action"].as_str(), etl["outcome"].as_str()), (Some("rebuild"), Some("registered")));
    assert_ne!(etl["image"], first["workflows"][0]["image"], "a new image tag");
    assert!(etl["warnings"][0].as_str().unwrap().contains("requirements.txt"), "{etl}");
    assert_eq!(outcomes(&json)[2], row("hello", "unchanged", "already-registered", 0, 0));
}

#[test]
fn shared_library_change_reaches_all_its_users() {
    let Some((repo, python, _)) = deployed() else { return };
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write("libs/flyte_common/extra.py", "X = 1\n");
    repo.commit("shared: extra");
    let json = deploy_with(&repo, &python, &["--base", &base]).json();
    let got: Vec<(String, String)> = outcomes(&json).into_iter().map(|o| (o.0, o.2)).collect();
    assert_eq!(
        got,
        vec![
            ("etl".into(), "already-registered".into()),
            ("features".into(), "registered".into()),
            ("hello".into(), "already-registered".into()),
            ("training".into(), "registered".into()),
        ]
    );
}

#[test]
fn deleted_workflow_has_its_launch_plans_deactivated_where_the_domain_activates() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    // main's pipeline: staging activates (development, where pull requests deploy, does not).
    let staging = |repo: &TempRepo, args: &[&str]| {
        let mut all = vec!["deploy", "--format", "json"];
        all.extend_from_slice(args);
        repo.xtask_env(&all, &[("FLYTE_DEPLOY_PYTHON", &python), ("CI", "true"), ("GITHUB_REF_NAME", "main")]).json()
    };
    staging(&repo, &["--all"]);
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.remove("workflows/training");
    repo.commit("retire training");
    let json = staging(&repo, &["--base", &base]);
    let training = json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == "training").unwrap().clone();
    assert_eq!((training["action"].as_str(), training["outcome"].as_str()), (Some("removed"), Some("deactivated")));
    assert!(training["warnings"][0].as_str().unwrap().starts_with("2 launch plan(s) deactivated"), "{training}");
    // A second run finds nothing left active.
    let again = staging(&repo, &["--base", &base]);
    let training = again["workflows"].as_array().unwrap().iter().find(|w| w["name"] == "training").unwrap().clone();
    assert!(training["warnings"][0].as_str().unwrap().starts_with("0 launch plan(s) deactivated"), "{training}");
}

#[test]
fn one_failing_workflow_leaves_the_others_registered() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    repo.write("workflows/hello/hello/greet.py", "this is not python\n");
    repo.commit("break hello");
    let run = deploy_with(&repo, &python, &["--all"]);
    assert_eq!(run.status, Some(1), "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let rows = outcomes(&json);
    assert_eq!(rows[2].2, "failed");
    let hello = &json["workflows"][2];
    assert!(hello["error"].as_str().unwrap().contains("pyflyte could not serialize hello"), "{hello}");
    for i in [0, 1, 3] {
        assert_eq!(rows[i].2, "registered", "{rows:?}");
    }
    // Fixed and re-run: only hello is registered now, nothing else twice.
    repo.write(
        "workflows/hello/hello/greet.py",
        "from flytekit import task\n\n\n@task\ndef hi() -> int:\n    return 1\n",
    );
    repo.commit("fix hello");
    let json = deploy_with(&repo, &python, &["--all"]).json();
    let rows = outcomes(&json);
    assert_eq!(rows[2], row("hello", "fast", "registered", 1, 0));
    for i in [0, 1, 3] {
        assert_eq!(rows[i].2, "already-registered", "{rows:?}");
    }
}

#[test]
fn interrupted_deploy_completes_on_rerun_without_duplicates() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    // Interrupt the first deploy as soon as it starts registering.
    let mut command = std::process::Command::new(tests::xtask_bin());
    command
        .current_dir(repo.path())
        // -v: a line per step off a terminal, so the kill comes while it registers.
        .args(["deploy", "-v", "--all"])
        .env("FLYTE_DEPLOY_PYTHON", &python)
        .env("CI", "false")
        .stdout(std::process::Stdio::null());
    let (mut child, _) = tests::spawn_until_it_says(command, ": registering");
    child.kill().ok();
    child.wait().unwrap();
    let json = deploy_with(&repo, &python, &["--all"]).json();
    let rows = outcomes(&json);
    // Whatever the first run left, the second completes it: every entity is there exactly
    // once (created now or found), and every workflow ends registered.
    let totals: Vec<u64> = rows.iter().map(|r| r.3 + r.4).collect();
    for r in &rows {
        assert!(r.2 == "registered" || r.2 == "already-registered", "{rows:?}");
    }
    for (r, total) in rows.iter().zip(&totals) {
        if r.2 == "registered" {
            let expected = if r.0 == "etl" || r.0 == "training" { 5 } else { 4 };
            assert_eq!(*total, expected, "{rows:?}");
        }
    }
    let again = deploy_with(&repo, &python, &["--all"]).json();
    assert!(outcomes(&again).iter().all(|o| o.2 == "already-registered"), "{again:#}");
}

#[test]
fn history_lists_each_deploy() {
    let Some((repo, python, first)) = deployed() else { return };
    let base = repo.git(&["rev-parse", "HEAD"]);
    repo.write("workflows/hello/hello/more.py", "X = 2\n");
    repo.commit("hello: more");
    let summary = repo.path().join(".git/step-summary.md");
    let all = ["deploy", "--format", "json", "--base", &base];
    let env = [("FLYTE_DEPLOY_PYTHON", python.as_str()), ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())];
    repo.xtask_env(&all, &env).json();
    let markdown = std::fs::read_to_string(&summary).unwrap();
    assert!(markdown.contains("| hello | fast |"), "{markdown}");
    assert!(markdown.contains("| etl | unchanged |"), "{markdown}");
    let out = repo.xtask(&["history", "hello"]).ok().to_string();
    let lines: Vec<&str> = out.lines().filter(|l| l.contains(" hello ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(out.contains(&version(&first, "hello")), "{out}");
    assert!(out.contains("version "), "{out}");
    let out = repo.xtask(&["history", "--domain", "staging"]).ok().to_string();
    assert_eq!(out, "no deploys recorded\n");
}

#[test]
fn dry_run_prints_versions_and_registers_nothing() {
    let repo = TempRepo::with_examples();
    let json = repo.xtask(&["deploy", "--all", "--dry-run", "--format", "json"]).json();
    assert_eq!(json["domain"], "staging");
    assert!(json["workflows"][0]["version"].as_str().unwrap().len() >= 16);
    assert_eq!(written_besides_the_versions_cache(&repo), Vec::<String>::new(), "nothing started, nothing written");
}

/// The files under `.flyte` other than plan's versions cache (which only saves time).
fn written_besides_the_versions_cache(repo: &TempRepo) -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                walk(&e.path(), out);
            } else {
                out.push(e.path());
            }
        }
    }
    let root = repo.path().join(".flyte");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files
        .iter()
        .map(|f| f.strip_prefix(&root).unwrap().to_string_lossy().into_owned())
        .filter(|f| !f.starts_with("cache/versions/") && f != "cache/.gitignore")
        .collect()
}

#[test]
fn policy_refusals_register_nothing() {
    let repo = TempRepo::with_examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    let err = repo.xtask(&["deploy", "--all", "--domain", "production"]).user_error().to_string();
    assert!(err.contains("domain 'production' takes only promotions from 'staging'"), "{err}");
    let err = repo.xtask(&["deploy", "--all", "--domain", "staging"]).user_error().to_string();
    assert!(err.contains("branch 'feature' may not deploy to domain 'staging'"), "{err}");
    let err = repo.xtask(&["deploy", "--all", "--workflow", "nope"]).user_error().to_string();
    assert!(err.contains("--workflow nope: no such workflow"), "{err}");
    assert_eq!(written_besides_the_versions_cache(&repo), Vec::<String>::new(), "refused before anything started");
}

/// The pull-request pipeline of ci/github/pull-request.yml played locally: the plan job
/// emits the matrix, each entry is deployed by its own process; the registered state is
/// what one `deploy` of the same change registers.
#[test]
fn pull_request_pipeline_matrix_equals_a_single_deploy() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    // Both start from the same state: main deployed to development.
    let change = |repo: &TempRepo| {
        deploy_with(repo, &python, &["--all", "--domain", "development"]).json();
        repo.git(&["checkout", "--quiet", "-b", "feature"]);
        repo.write("workflows/etl/requirements.txt", "flytekit==1.16.31\nrequests==2.32.3\n");
        repo.write("libs/flyte_common/extra.py", "X = 1\n");
        repo.commit("change etl and the shared library");
    };
    // One deploy.
    let single = TempRepo::with_examples();
    change(&single);
    let one = deploy_with(&single, &python, &["--base", "main", "--domain", "development"]).json();

    // The pipeline: plan job, then one process per matrix entry.
    let piped = TempRepo::with_examples();
    change(&piped);
    let output = piped.path().join(".git/github_output");
    let plan = piped.xtask_env(
        &["plan", "--base", "main", "--domain", "development", "--format", "github-matrix"],
        &[("GITHUB_OUTPUT", output.to_str().unwrap())],
    );
    let matrix: Value = serde_json::from_str(plan.ok()).unwrap();
    let outputs = std::fs::read_to_string(&output).unwrap();
    assert!(outputs.contains("any=true"), "{outputs}");
    let entries = matrix["include"].as_array().unwrap();
    let names: Vec<&str> = entries.iter().map(|e| e["workflow"].as_str().unwrap()).collect();
    assert_eq!(names, ["etl", "features", "training"]);
    let mut created = 0;
    for entry in entries {
        let name = entry["workflow"].as_str().unwrap();
        let json =
            deploy_with(&piped, &python, &["--workflow", name, "--base", "main", "--domain", "development"]).json();
        let w = &json["workflows"][0];
        assert_eq!((w["name"].as_str(), w["outcome"].as_str()), (Some(name), Some("registered")), "{json:#}");
        assert_eq!(w["version"], entry["version"], "the matrix entry's version is deployed");
        created += w["entities"]["created"].as_u64().unwrap();
    }
    let single_created: u64 = outcomes(&one).iter().map(|o| o.3).sum();
    assert_eq!(created, single_created, "same entities registered");
    // Nothing is left to do: the matrix registered exactly what the single deploy did.
    let after = deploy_with(&piped, &python, &["--base", "main", "--domain", "development"]).json();
    assert!(outcomes(&after).iter().all(|o| o.2 == "already-registered"), "{after:#}");
    for o in outcomes(&one) {
        assert_eq!(version(&after, &o.0), version(&one, &o.0));
    }
}

#[test]
fn removing_most_workflows_at_once_is_refused_unless_allowed() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    // main's pipeline: staging activates, so a removal there deactivates.
    let staging = |repo: &TempRepo, args: &[&str]| {
        let mut all = vec!["deploy", "--format", "json"];
        all.extend_from_slice(args);
        repo.xtask_env(&all, &[("FLYTE_DEPLOY_PYTHON", &python), ("CI", "true"), ("GITHUB_REF_NAME", "main")])
    };
    staging(&repo, &["--all"]).json();
    let base = repo.git(&["rev-parse", "HEAD"]);
    for name in ["etl", "features", "training"] {
        repo.remove(&format!("workflows/{name}"));
    }
    repo.commit("remove three of four workflows");
    let refused = staging(&repo, &["--base", &base]);
    let message = refused.user_error();
    assert!(message.contains("removes 3 of 4 workflows"), "{message}");
    assert!(message.contains("--allow-mass-removal"), "{message}");
    assert!(refused.stdout.is_empty(), "nothing reported as done: {}", refused.stdout);
    // Nothing was deactivated by the refused run: the allowed one still finds training's
    // two active launch plans.
    let json = staging(&repo, &["--base", &base, "--allow-mass-removal"]).json();
    let training = json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == "training").unwrap().clone();
    assert_eq!((training["action"].as_str(), training["outcome"].as_str()), (Some("removed"), Some("deactivated")));
    assert!(training["warnings"][0].as_str().unwrap().starts_with("2 launch plan(s) deactivated"), "{training}");
}

#[test]
fn a_damaged_serialization_cache_heals_instead_of_failing_every_deploy() {
    let Some((repo, python, first)) = deployed() else { return };
    let cache = repo.path().join(".flyte/cache/serialized");
    let mut damaged = 0;
    for entry in std::fs::read_dir(&cache).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "tgz") {
            let bytes = std::fs::read(&path).unwrap();
            std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
            damaged += 1;
        }
    }
    assert_eq!(damaged, 4, "one entry per workflow");
    // A fresh sandbox, so that what is registered is what this run serialized again.
    std::fs::remove_dir_all(repo.path().join(".flyte/sandbox")).unwrap();
    let again = deploy_with(&repo, &python, &["--all"]).json();
    for name in ["etl", "features", "hello", "training"] {
        assert_eq!(version(&again, name), version(&first, name), "{name}: the same version");
    }
    assert!(outcomes(&again).iter().all(|o| o.2 == "registered"), "{again}");

    // `.flyte/cache` replaced by a file: it is made a folder again, with a note.
    std::fs::remove_dir_all(repo.path().join(".flyte/cache")).unwrap();
    std::fs::write(repo.path().join(".flyte/cache"), "not a folder").unwrap();
    std::fs::remove_dir_all(repo.path().join(".flyte/sandbox")).unwrap();
    let run = deploy_with(&repo, &python, &["--all"]);
    assert_eq!(run.status, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("note: .flyte/cache was not a folder: removed it"), "{}", run.stderr);
    assert!(repo.path().join(".flyte/cache/serialized").is_dir(), "the caches are back");
}
