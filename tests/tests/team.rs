//! Team operations end to end (a temporary copy of the examples, the real pyflyte, the
//! embedded sandbox on disk): pull requests sharing development never change each other's
//! launch-plan state while trunk domains activate; rollback; records as changes happen.

use std::collections::BTreeMap;

use flyte_api::admin as pb;
use flyte_api::{Kind, Message};
use flyte_deploy::config::Config;
use flyte_deploy::registration::admin::Admin;
use serde_json::Value;
use tests::{flytekit_python, Run, TempRepo};

const PROJECT: &str = "flytesnacks";

/// `deploy --format json` with the flytekit Python, outside CI unless `env` says otherwise.
fn deploy(repo: &TempRepo, python: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut all = vec!["deploy", "--format", "json"];
    all.extend_from_slice(args);
    let mut vars = vec![("FLYTE_DEPLOY_PYTHON", python), ("CI", "false")];
    vars.extend_from_slice(env);
    repo.xtask_env(&all, &vars)
}

/// `deploy --format json ARGS` in `dir` to the FlyteAdmin at `endpoint`, outside CI, as a
/// process to start (its stdout piped).
fn deploy_to(dir: &std::path::Path, python: &str, endpoint: &str, args: &[&str]) -> std::process::Command {
    let mut command = std::process::Command::new(tests::xtask_bin());
    command
        .current_dir(dir)
        .args(["deploy", "--format", "json"])
        .args(args)
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .env("FLYTE_DEPLOY_PYTHON", python)
        .env("FLYTE_ENDPOINT", endpoint)
        .env("CI", "false")
        .stdout(std::process::Stdio::piped());
    command
}

/// The examples on `main`, with the sandbox's data and the caches ignored by git.
fn examples() -> TempRepo {
    let repo = TempRepo::with_examples();
    repo.write(".gitignore", ".flyte/\n");
    repo.commit("ignore .flyte");
    repo
}

/// A workflow's row of a deploy report.
fn row(json: &Value, name: &str) -> Value {
    json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).cloned().unwrap_or(Value::Null)
}

/// Every launch plan version of `domain` and whether it is active, by (name, version).
fn launch_plans(repo: &TempRepo, domain: &str) -> BTreeMap<(String, String), bool> {
    let path = repo.path().join("deploy.toml");
    let config = Config::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        let mut out = BTreeMap::new();
        for name in admin.list_names(Kind::LaunchPlan, PROJECT, domain).await.unwrap() {
            for bytes in admin.list(Kind::LaunchPlan, PROJECT, domain, &name).await.unwrap() {
                let lp = pb::LaunchPlan::decode(bytes.as_slice()).unwrap();
                let active = lp.closure.is_some_and(|c| c.state == pb::LaunchPlanState::Active as i32);
                out.insert((name.clone(), lp.id.unwrap().version), active);
            }
        }
        admin.close().await.unwrap();
        out
    })
}

fn active(states: &BTreeMap<(String, String), bool>) -> Vec<&(String, String)> {
    states.iter().filter(|(_, a)| **a).map(|(k, _)| k).collect()
}

#[test]
fn pull_requests_in_development_never_change_each_others_launch_plans_and_staging_activates() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    // Pull request A: a change to hello, deployed to development.
    repo.git(&["checkout", "--quiet", "-b", "pr-a"]);
    repo.write("workflows/hello/hello/a.py", "A = 1\n");
    repo.commit("pr-a: hello");
    let a = deploy(&repo, &python, &[], &[]).json();
    assert_eq!(a["domain"], "development");
    assert_eq!(row(&a, "hello")["outcome"], "registered", "{a:#}");
    let after_a = launch_plans(&repo, "development");
    assert!(after_a.keys().any(|(n, _)| n.starts_with("training.")), "{after_a:?}");
    assert_eq!(active(&after_a), Vec::<&(String, String)>::new(), "development activates nothing");
    // A re-run finds A's versions complete (their launch plans exist) and changes nothing.
    let again = deploy(&repo, "/nonexistent/python", &[], &[]).json();
    assert!(again["workflows"].as_array().unwrap().iter().all(|w| w["outcome"] == "already-registered"), "{again:#}");

    // Pull request B, from main: another change to hello, and training deleted.
    repo.git(&["checkout", "--quiet", "main"]);
    repo.git(&["checkout", "--quiet", "-b", "pr-b"]);
    repo.write("workflows/hello/hello/b.py", "B = 2\n");
    repo.remove("workflows/training");
    repo.commit("pr-b: hello, and training retired");
    let b = deploy(&repo, &python, &[], &[]).json();
    assert_eq!(row(&b, "hello")["outcome"], "registered", "{b:#}");
    assert_ne!(row(&b, "hello")["version"], row(&a, "hello")["version"]);
    let training = row(&b, "training");
    assert_eq!((training["action"].as_str(), training["outcome"].as_str()), (Some("removed"), Some("skipped")));
    assert!(training["warnings"][0].as_str().unwrap().contains("does not activate (activate = false)"), "{training}");
    let after_b = launch_plans(&repo, "development");
    for (key, state) in &after_a {
        assert_eq!(after_b.get(key), Some(state), "{key:?}: B changed A's launch plan");
    }
    assert!(after_b.len() > after_a.len(), "B registered its own hello");
    assert_eq!(active(&after_b), Vec::<&(String, String)>::new());

    // main deploys to staging, which activates.
    repo.git(&["checkout", "--quiet", "main"]);
    let trunk = [("CI", "true"), ("GITHUB_REF_NAME", "main")];
    let staging = deploy(&repo, &python, &["--all"], &trunk).json();
    assert_eq!(staging["domain"], "staging");
    let states = launch_plans(&repo, "staging");
    assert!(!states.is_empty());
    assert!(states.values().all(|a| *a), "every launch plan of main is active in staging: {states:?}");
    // Development is still as B left it.
    assert_eq!(launch_plans(&repo, "development"), after_b);
}

/// `history --format json` of the repository.
fn history(repo: &TempRepo, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["history", "--format", "json"];
    all.extend_from_slice(args);
    repo.xtask(&all).json().as_array().unwrap().clone()
}

#[test]
fn rollback_reactivates_the_earlier_version_and_refuses_one_the_domain_never_had() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    let trunk = [("CI", "true"), ("GITHUB_REF_NAME", "main")];
    let old_commit = repo.git(&["rev-parse", "HEAD"]);
    let first = deploy(&repo, &python, &["--all", "--workflow", "hello"], &trunk).json();
    let v1 = row(&first, "hello")["version"].as_str().unwrap().to_string();
    repo.write("workflows/hello/hello/later.py", "LATER = 1\n");
    repo.commit("hello: later");
    let second = deploy(&repo, &python, &["--all", "--workflow", "hello"], &trunk).json();
    let v2 = row(&second, "hello")["version"].as_str().unwrap().to_string();
    assert_ne!(v1, v2);
    let active_versions = |repo: &TempRepo| -> Vec<String> {
        let states = launch_plans(repo, "staging");
        let mut v: Vec<String> = active(&states).into_iter().map(|(_, v)| v.clone()).collect();
        v.dedup();
        v
    };
    assert_eq!(active_versions(&repo), vec![v2.as_str()]);

    // Unknown versions are refused before anything changes, naming those the domain had.
    let err = repo.xtask(&["rollback", "--domain", "staging", "--to", "0123abcd", "hello"]).user_error().to_string();
    assert!(err.contains(&format!("never had version 0123abcd of 'hello' (the versions it had: {v1}, {v2})")), "{err}");
    let err = repo.xtask(&["rollback", "--domain", "staging", "--to", "0123abcd"]).user_error().to_string();
    assert!(err.contains("neither a version domain 'staging' had nor a commit"), "{err}");
    let dev = repo.xtask(&["rollback", "--domain", "staging", "--to", &old_commit, "features"]);
    let err = dev.user_error();
    assert!(err.contains("never had version"), "{err}");
    assert!(err.contains("(the versions it had: none)"), "{err}");
    assert_eq!(active_versions(&repo), vec![v2.as_str()], "a refusal changes nothing");

    // With a console (set at head, where rollback reads deploy.toml), the report links the
    // launch plans made active again.
    let toml = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    repo.write("deploy.toml", &toml.replace("[flyte]\n", "[flyte]\nconsole = \"https://flyte.example.com/console\"\n"));
    repo.commit("a console");

    // Back to the previous commit: its version is the active one again, recorded.
    let run = repo.xtask(&["rollback", "--domain", "staging", "--to", &old_commit, "--format", "json"]);
    let json = run.json();
    let hello = row(&json, "hello");
    assert_eq!((hello["action"].as_str(), hello["outcome"].as_str()), (Some("rollback"), Some("registered")));
    assert_eq!(hello["version"], v1.as_str());
    let url = hello["url"].as_str().unwrap_or_default();
    let page = "https://flyte.example.com/console/projects/flytesnacks/domains/staging/launch_plan/hello.";
    assert!(url.starts_with(page) && url.ends_with(&format!("/version/{v1}")), "{hello}");
    assert_eq!(hello["entities"]["created"], 0, "nothing was missing");
    assert_eq!(active_versions(&repo), vec![v1.as_str()]);
    let records = history(&repo, &["hello", "--domain", "staging"]);
    let last = records.last().unwrap();
    assert_eq!((last["outcome"].as_str(), last["version"].as_str()), (Some("rolled-back"), Some(v1.as_str())));
    assert_eq!(last["commit"], old_commit.as_str());
    let text = repo.xtask(&["history", "hello"]).ok().to_string();
    assert!(text.contains("rolled-back"), "{text}");

    // Again: nothing to do, nothing recorded.
    let again = repo.xtask(&["rollback", "--domain", "staging", "--to", &old_commit, "--format", "json"]).json();
    assert_eq!(row(&again, "hello")["outcome"], "already-registered");
    assert_eq!(history(&repo, &["hello", "--domain", "staging"]).len(), records.len());

    // And forward again, by version.
    repo.xtask(&["rollback", "--domain", "staging", "--to", &v2, "hello"]).ok();
    assert_eq!(active_versions(&repo), vec![v2.as_str()]);
    // Development does not activate: there is nothing to roll back.
    let err = repo.xtask(&["rollback", "--domain", "development", "--to", &v1]).user_error().to_string();
    assert!(err.contains("domain 'development' does not activate launch plans"), "{err}");
}

#[test]
fn a_killed_deploy_and_its_rerun_leave_a_record_of_every_workflow() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    let trunk = [("CI", "true"), ("GITHUB_REF_NAME", "main")];
    // Killed as soon as the first workflow's registration is recorded (a record is written
    // as its change happens, so the history has it although the run never finished).
    let mut command = std::process::Command::new(tests::xtask_bin());
    command
        .current_dir(repo.path())
        // -v: a line per step off a terminal, so the kill comes while it registers.
        .args(["deploy", "-v", "--all"])
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .env("FLYTE_DEPLOY_PYTHON", &python)
        .envs(trunk)
        .stdout(std::process::Stdio::null());
    let (mut child, _) = tests::spawn_until_it_says(command, ": registering");
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().ok();
    child.wait().unwrap();
    let json = deploy(&repo, &python, &["--all"], &trunk).json();
    let records = history(&repo, &["--domain", "staging"]);
    for w in json["workflows"].as_array().unwrap() {
        let name = w["name"].as_str().unwrap();
        let mine: Vec<&Value> =
            records.iter().filter(|r| r["workflow"] == name && r["version"] == w["version"]).collect();
        assert_eq!(mine.len(), 1, "{name}: exactly one record of its version: {records:#?}");
        assert!(matches!(mine[0]["outcome"].as_str(), Some("registered" | "already-registered")), "{mine:?}");
        assert!(!mine[0]["launch_plans"].as_array().unwrap().is_empty(), "{mine:?}");
    }
    // A third run changes nothing and records nothing.
    deploy(&repo, "/nonexistent/python", &["--all"], &trunk).json();
    assert_eq!(history(&repo, &["--domain", "staging"]).len(), records.len());
}

#[test]
fn history_without_the_notes_ref_says_how_to_fetch_it() {
    let repo = TempRepo::new();
    repo.write("deploy.toml", "[flyte]\nendpoint = \"http://127.0.0.1:9\"\ninsecure = true\n");
    repo.write("workflows/.keep", "");
    repo.commit("remote FlyteAdmin: records in git notes");
    let run = repo.xtask(&["history"]);
    assert_eq!(run.ok(), "no deploys recorded\n");
    assert!(run.stderr.contains("git fetch origin refs/notes/flyte-deploy:refs/notes/flyte-deploy"), "{}", run.stderr);
    let run = repo.xtask(&["history", "--format", "json"]);
    assert_eq!(run.json(), serde_json::json!([]));
}

#[test]
fn a_hotfix_on_a_release_branch_reaches_production_through_staging() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    let main_ci = [("CI", "true"), ("GITHUB_REF_NAME", "main")];
    let release_ci = [("CI", "true"), ("GITHUB_REF_NAME", "release/1")];
    deploy(&repo, &python, &["--all", "--workflow", "hello"], &main_ci).json();
    repo.git(&["checkout", "--quiet", "-b", "release/1"]);
    let promote = |repo: &TempRepo| {
        let args = ["promote", "--from", "staging", "--to", "production", "--format", "json", "hello"];
        repo.xtask_env(&args, &release_ci).json()
    };
    assert_eq!(row(&promote(&repo), "hello")["outcome"], "registered");

    // The fix, committed on the release branch only.
    repo.write("workflows/hello/hello/fix.py", "FIXED = True\n");
    repo.commit("hotfix: hello");
    // Promoting it first is refused: staging never ran it.
    let run = repo.xtask_env(&["promote", "--from", "staging", "--to", "production", "hello"], &release_ci);
    assert_eq!(run.status, Some(1), "{}", run.stdout);
    assert!(run.stdout.contains("deploy commit") || run.stderr.contains("deploy commit"), "{}", run.stdout);
    // From a laptop the release branch may not deploy to staging; its pipeline may.
    let err = deploy(&repo, &python, &["--domain", "staging"], &[]).user_error().to_string();
    assert!(err.contains("branch 'release/1' may not deploy to domain 'staging'"), "{err}");
    let staged = deploy(&repo, &python, &["--domain", "staging", "--all", "--workflow", "hello"], &release_ci).json();
    let fixed = row(&staged, "hello")["version"].as_str().unwrap().to_string();
    assert_eq!(row(&staged, "hello")["outcome"], "registered");
    let promoted = promote(&repo);
    assert_eq!(row(&promoted, "hello")["outcome"], "registered", "{promoted:#}");
    assert_eq!(row(&promoted, "hello")["version"], fixed.as_str());
    let states = launch_plans(&repo, "production");
    let live: Vec<&String> = active(&states).into_iter().map(|(_, v)| v).collect();
    assert!(!live.is_empty() && live.iter().all(|v| **v == fixed), "production runs the fix: {states:?}");
}

#[test]
fn uncommitted_changes_are_named_once_and_deploy_dirty_takes_them_to_development_only() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    let greet = std::fs::read_to_string(repo.path().join("workflows/hello/hello/greet.py")).unwrap();
    repo.write("workflows/hello/hello/greet.py", &format!("{greet}\nLOCAL = 1\n"));
    let run = deploy(&repo, &python, &["--all", "--workflow", "hello"], &[]);
    let committed = run.json();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning: uncommitted")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("uncommitted changes to hello (workflows/hello/hello/greet.py) are not deployed"),
        "{}",
        warnings[0]
    );
    assert!(warnings[0].contains("--dirty"), "{}", warnings[0]);
    let out = repo.path().join(".git/packages");
    let run = repo.xtask(&["package", "hello", "etl", "--out", out.to_str().unwrap()]);
    run.ok();
    let warnings: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("warning: uncommitted")).collect();
    assert_eq!(warnings.len(), 1, "{}", run.stderr);
    assert!(
        warnings[0].contains("changes to hello (workflows/hello/hello/greet.py) are not packaged"),
        "{}",
        warnings[0]
    );
    let committed_version = row(&committed, "hello")["version"].as_str().unwrap().to_string();
    assert!(!committed_version.ends_with("-dirty"));

    let run = deploy(&repo, &python, &["--all", "--dirty"], &[]);
    let dirty = run.json();
    assert!(!run.stderr.contains("warning: uncommitted"), "{}", run.stderr);
    let hello = row(&dirty, "hello");
    assert_eq!(hello["outcome"], "registered", "{hello:#}");
    assert!(hello["version"].as_str().unwrap().ends_with("-dirty"), "{hello:#}");
    assert_ne!(hello["version"], format!("{committed_version}-dirty").as_str(), "the edit is in the version");
    // Workflows without uncommitted changes keep their committed versions.
    assert!(!row(&dirty, "etl")["version"].as_str().unwrap().ends_with("-dirty"));
    assert_eq!(repo.git(&["status", "--porcelain"]), "M workflows/hello/hello/greet.py", "index and refs untouched");

    let err = deploy(&repo, &python, &["--dirty", "--domain", "staging"], &[]).user_error().to_string();
    assert!(err.contains("uncommitted work may be deployed only to 'development'"), "{err}");
}

/// A workflow `refs` whose workflow calls hello's `greeting` task by reference, its version
/// left to registration (as flytesnacks' productionizing does).
fn write_referencing_workflow(repo: &TempRepo, marker: &str) {
    repo.write("workflows/refs/refs/__init__.py", "");
    repo.write(
        "workflows/refs/refs/calls.py",
        &format!(
            "from flytekit import reference_task, workflow\n\n\n\
             @reference_task(\n    project=\"{{{{ registration.project }}}}\",\n    \
             domain=\"{{{{ registration.domain }}}}\",\n    name=\"hello.greet.greeting\",\n    \
             version=\"{{{{ registration.version }}}}\",\n)\ndef greeting(name: str) -> str:\n    ...\n\n\n\
             @workflow\ndef calls_hello(name: str = \"{marker}\") -> str:\n    return greeting(name=name)\n"
        ),
    );
}

#[test]
fn a_reference_to_another_workflows_task_resolves_to_its_version_or_fails_before_registering() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    write_referencing_workflow(&repo, "one");
    repo.commit("refs: calls hello's task");
    let json = deploy(&repo, &python, &["--all"], &[]).json();
    let hello_version = row(&json, "hello")["version"].as_str().unwrap().to_string();
    let refs = row(&json, "refs");
    assert_eq!(refs["outcome"], "registered", "{refs:#}");
    let refs_version = refs["version"].as_str().unwrap().to_string();
    assert_ne!(refs_version, hello_version);
    // The registered workflow calls hello's task at hello's version.
    let spec = registered_workflow(&repo, "refs.calls.calls_hello", &refs_version).expect("refs is registered");
    assert!(contains(&spec, hello_version.as_bytes()), "the reference names hello's version");
    assert!(!contains(&spec, b"{{ registration.version }}"));

    // hello broken and refs changed in one commit: hello fails, so refs, which references
    // hello's new version, fails before anything of it is registered.
    repo.write("workflows/hello/hello/greet.py", "this is not python\n");
    write_referencing_workflow(&repo, "two");
    repo.commit("break hello, change refs");
    let run = deploy(&repo, &python, &["--all"], &[]);
    assert_eq!(run.status, Some(1), "{}\n{}", run.stdout, run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(row(&json, "hello")["outcome"], "failed");
    let refs = row(&json, "refs");
    assert_eq!(refs["outcome"], "failed", "{refs:#}");
    let error = refs["error"].as_str().unwrap();
    assert!(error.contains("workflow 'refs' references task 'hello.greet.greeting' of workflow 'hello'"), "{error}");
    assert!(error.contains("nothing of 'refs' was registered"), "{error}");
    assert!(error.contains("deploy 'hello' to 'development' first"), "{error}");
    let new_version = refs["version"].as_str().unwrap();
    assert_ne!(new_version, refs_version);
    assert!(registered_workflow(&repo, "refs.calls.calls_hello", new_version).is_none());

    // A reference the code pins to an entity no workflow here defines, and that is not
    // registered (flytesnacks' productionizing): the workflow fails before any of its own
    // tasks is registered.
    repo.write("workflows/pinned/pinned/__init__.py", "");
    repo.write(
        "workflows/pinned/pinned/wf.py",
        "from flytekit import reference_task, task, workflow\n\n\n\
         @reference_task(project=\"flytesnacks\", domain=\"development\", name=\"elsewhere.tasks.missing\", \
         version=\"v0\")\ndef missing(x: int) -> int:\n    ...\n\n\n\
         @task\ndef double(x: int) -> int:\n    return 2 * x\n\n\n\
         @workflow\ndef uses_missing(x: int = 1) -> int:\n    return missing(x=double(x=x))\n",
    );
    repo.commit("pinned: references a task nobody registered");
    let run = deploy(&repo, &python, &["--all"], &[]);
    assert_eq!(run.status, Some(1), "{}\n{}", run.stdout, run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).unwrap();
    let pinned = row(&json, "pinned");
    assert_eq!(pinned["outcome"], "failed", "{pinned:#}");
    let error = pinned["error"].as_str().unwrap();
    assert!(
        error.contains(
            "references task 'elsewhere.tasks.missing' in flytesnacks/development, which no workflow of this \
             repository defines, at version 'v0'"
        ),
        "{error}"
    );
    assert!(error.contains("nothing of 'pinned' was registered"), "{error}");
    assert_eq!(pinned["entities"]["created"], 0, "{pinned:#}");
    let version = pinned["version"].as_str().unwrap();
    let own_task = registered(&repo, Kind::Task, "development", "pinned.wf.double", version);
    assert!(own_task.is_none(), "its own task is not registered");
}

/// CI matrix entries run at once: the entry deploying `refs` finds hello's task missing
/// while hello's own entry is still running, and waits for it rather than failing.
#[test]
fn a_matrix_entry_waits_for_the_workflow_it_references_that_another_entry_deploys() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    repo.git(&["checkout", "--quiet", "-b", "feature"]);
    write_referencing_workflow(&repo, "matrix");
    repo.write("workflows/hello/hello/matrix.py", "CHANGED = True\n");
    repo.commit("refs calls hello's task; hello changed");
    let data = tempfile::tempdir().unwrap();
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", data.path());
    let entry = |workflow: &str| {
        let args = ["--base", "main", "--domain", "development", "--workflow", workflow];
        let mut command = deploy_to(repo.path(), &python, &sandbox.endpoint, &args);
        command.env("FLYTE_DEPLOY_REFERENCE_WAIT", "300");
        command
    };
    // refs' entry first: it reaches registration, finds hello's task missing, and waits.
    let (refs, said) = tests::spawn_until_it_says(entry("refs"), "waiting up to");
    assert!(said.contains("refs: waiting up to 5m for task 'hello.greet.greeting' of workflow 'hello'"), "{said}");
    // hello's entry, meanwhile.
    let hello = entry("hello").output().unwrap();
    assert!(hello.status.success(), "{}", String::from_utf8_lossy(&hello.stderr));
    let hello_json: Value = serde_json::from_slice(&hello.stdout).unwrap();
    assert_eq!(row(&hello_json, "hello")["outcome"], "registered", "{hello_json:#}");
    let out = refs.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(row(&json, "refs")["outcome"], "registered", "{json:#}");
    sandbox.kill();
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The registered workflow `name` at `version` in development, if any.
fn registered_workflow(repo: &TempRepo, name: &str, version: &str) -> Option<Vec<u8>> {
    registered(repo, Kind::Workflow, "development", name, version)
}

fn registered_workflow_in(repo: &TempRepo, domain: &str, name: &str, version: &str) -> Option<Vec<u8>> {
    registered(repo, Kind::Workflow, domain, name, version)
}

/// The spec of the entity of `kind` registered as `name` at `version` in `domain`, if any.
fn registered(repo: &TempRepo, kind: Kind, domain: &str, name: &str, version: &str) -> Option<Vec<u8>> {
    let path = repo.path().join("deploy.toml");
    let config = Config::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        let id = flyte_api::Identifier::new(kind, PROJECT, domain, name, version);
        let got = admin.get(kind, &id).await.unwrap();
        admin.close().await.unwrap();
        got
    })
}

#[test]
fn eight_concurrent_deploys_from_one_clone_lose_no_record() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    // A FlyteAdmin at an address (the sandbox as its own process): records go to git notes.
    let data = tempfile::tempdir().unwrap();
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", data.path());
    let endpoint = sandbox.endpoint.clone();
    // Eight pull requests, each changing hello its own way.
    let mut heads = Vec::new();
    for i in 0..8 {
        repo.git(&["checkout", "--quiet", "-B", &format!("pr-{i}"), "main"]);
        repo.write("workflows/hello/hello/pr.py", &format!("PR = {i}\n"));
        heads.push(repo.commit(&format!("pr-{i}")));
    }
    repo.git(&["checkout", "--quiet", "main"]);
    let children: Vec<std::process::Child> = (0..8)
        .map(|i| {
            let head = format!("pr-{i}");
            let args = ["--base", "main", "--domain", "development", "--workflow", "hello", "--head", &head];
            deploy_to(repo.path(), &python, &endpoint, &args).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(row(&json, "hello")["outcome"], "registered", "{json:#}");
    }
    let run = repo.xtask_env(&["history", "--format", "json"], &[("FLYTE_ENDPOINT", &endpoint)]);
    let records = run.json().as_array().unwrap().clone();
    sandbox.kill();
    let mut commits: Vec<&str> = records.iter().map(|r| r["commit"].as_str().unwrap()).collect();
    commits.sort();
    let mut expected: Vec<&str> = heads.iter().map(String::as_str).collect();
    expected.sort();
    assert_eq!(commits, expected, "exactly one record per deploy: {records:#?}");
    assert!(records.iter().all(|r| r["workflow"] == "hello" && r["outcome"] == "registered"));
}

#[test]
fn a_referencing_workflow_is_promoted_with_its_references_resolved() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let repo = examples();
    write_referencing_workflow(&repo, "one");
    repo.commit("refs: calls hello's task");
    let main_ci = [("CI", "true"), ("GITHUB_REF_NAME", "main")];
    let staged = deploy(&repo, &python, &["--all", "--workflow", "hello", "--workflow", "refs"], &main_ci).json();
    assert_eq!(row(&staged, "refs")["outcome"], "registered", "{staged:#}");
    let hello_version = row(&staged, "hello")["version"].as_str().unwrap().to_string();
    let refs_version = row(&staged, "refs")["version"].as_str().unwrap().to_string();
    repo.git(&["checkout", "--quiet", "-b", "release/1"]);
    let args = ["promote", "--from", "staging", "--to", "production", "--format", "json", "hello", "refs"];
    let promoted = repo.xtask_env(&args, &[("CI", "true"), ("GITHUB_REF_NAME", "release/1")]).json();
    assert_eq!(row(&promoted, "refs")["outcome"], "registered", "{promoted:#}");
    let spec = registered_workflow_in(&repo, "production", "refs.calls.calls_hello", &refs_version).unwrap();
    assert!(contains(&spec, hello_version.as_bytes()), "production's refs calls hello's version");
}

#[test]
fn eight_concurrent_deploys_from_eight_clones_each_keep_their_record() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let origin = examples();
    let data = tempfile::tempdir().unwrap();
    let sandbox = tests::SandboxProcess::start("127.0.0.1:0", data.path());
    let endpoint = sandbox.endpoint.clone();
    // Eight developers, each with a clone and a change to hello of their own.
    let clones: Vec<TempRepo> = (0..8)
        .map(|i| {
            let clone = TempRepo::new();
            clone.git(&["pull", "--quiet", origin.path().to_str().unwrap(), "main"]);
            clone.git(&["checkout", "--quiet", "-b", &format!("pr-{i}")]);
            clone.write("workflows/hello/hello/pr.py", &format!("PR = {i}\n"));
            clone.commit(&format!("pr-{i}"));
            clone
        })
        .collect();
    let children: Vec<std::process::Child> = clones
        .iter()
        .map(|clone| {
            let args = ["--base", "main", "--workflow", "hello"];
            deploy_to(clone.path(), &python, &endpoint, &args).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    let mut versions = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let json: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(row(&json, "hello")["outcome"], "registered", "{json:#}");
        versions.push(row(&json, "hello")["version"].as_str().unwrap().to_string());
    }
    for (clone, version) in clones.iter().zip(&versions) {
        let run = clone.xtask_env(&["history", "--format", "json"], &[("FLYTE_ENDPOINT", &endpoint)]);
        let records = run.json().as_array().unwrap().clone();
        assert_eq!(records.len(), 1, "{records:#?}");
        assert_eq!(records[0]["version"], version.as_str());
        assert_eq!(records[0]["commit"], clone.git(&["rev-parse", "HEAD"]).as_str());
    }
    sandbox.kill();
    versions.sort();
    versions.dedup();
    assert_eq!(versions.len(), 8, "eight changes, eight versions");
}
