//! Fault injection: a deploy killed at random points, and the sandbox it talks to killed at
//! random points, then the deploy run again: the state reached must be the fault-free one
//! (the same entities, the same launch plans active, every workflow's version recorded: a
//! run cut between creating and activating is recorded again when the re-run activates).
//! The points come from a seed printed by the test (`FLYTE_DEPLOY_FAULT_SEED` replays one).

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use flyte_api::admin as pb;
use flyte_api::{Kind, Message};
use flyte_deploy::config::Config;
use flyte_deploy::registration::admin::Admin;
use serde_json::Value;
use tests::{flytekit_python, SandboxProcess, TempRepo};

const PROJECT: &str = "flytesnacks";
/// Kill points per kind of fault and run.
const TRIALS: usize = 10;
/// main's pipeline: staging, which activates.
const TRUNK: [(&str, &str); 2] = [("CI", "true"), ("GITHUB_REF_NAME", "main")];

/// Everything a deploy leaves in staging: every task, workflow and launch plan version, and
/// whether each launch plan is active.
type State = BTreeMap<(String, String, String), bool>;

fn state(repo: &TempRepo) -> State {
    let path = repo.path().join("deploy.toml");
    let config = Config::parse(&path, &std::fs::read_to_string(&path).unwrap()).unwrap();
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let admin = Admin::connect(&config, repo.path()).await.unwrap();
        let mut out = BTreeMap::new();
        for kind in [Kind::Task, Kind::Workflow, Kind::LaunchPlan] {
            for name in admin.list_names(kind, PROJECT, "staging").await.unwrap() {
                for bytes in admin.list(kind, PROJECT, "staging", &name).await.unwrap() {
                    let (version, active) = match kind {
                        Kind::LaunchPlan => {
                            let lp = pb::LaunchPlan::decode(bytes.as_slice()).unwrap();
                            let active = lp.closure.is_some_and(|c| c.state == pb::LaunchPlanState::Active as i32);
                            (lp.id.unwrap().version, active)
                        }
                        _ => (version_of(&bytes), false),
                    };
                    out.insert((format!("{kind:?}"), name.clone(), version), active);
                }
            }
        }
        admin.close().await.unwrap();
        out
    })
}

/// The version of a stored task or workflow (`id` is field 1 of both, `version` field 5 of
/// the identifier).
fn version_of(entity: &[u8]) -> String {
    let id = flyte_api::wire::last_len(entity, 1).unwrap().expect("an id");
    flyte_api::wire::string(id, 5).unwrap().unwrap_or_default()
}

/// Each workflow's number of staging records of the version `report` deployed.
fn records_of(repo: &TempRepo, report: &Value) -> BTreeMap<String, usize> {
    let records = repo.xtask(&["history", "--domain", "staging", "--format", "json"]).json();
    let records = records.as_array().unwrap();
    report["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            let n = records.iter().filter(|r| r["workflow"] == w["name"] && r["version"] == w["version"]).count();
            (w["name"].as_str().unwrap().to_string(), n)
        })
        .collect()
}

fn deploy(repo: &TempRepo, python: &str) -> Command {
    let mut cmd = Command::new(tests::xtask_bin());
    cmd.current_dir(repo.path())
        .args(["deploy", "--all", "--format", "json"])
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .env("FLYTE_DEPLOY_PYTHON", python)
        .envs(TRUNK)
        .env_remove("GITHUB_ACTIONS");
    cmd
}

/// A deploy run to its end: its report.
fn deploy_to_the_end(repo: &TempRepo, python: &str) -> Value {
    let out = deploy(repo, python).output().unwrap();
    assert!(
        out.status.success(),
        "the deploy failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A deploy killed (SIGKILL) `after` it started, or left to finish if it ends before.
fn deploy_killed_after(repo: &TempRepo, python: &str, after: Duration) {
    let mut child = deploy(repo, python).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let started = Instant::now();
    while started.elapsed() < after {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().ok();
    child.wait().unwrap();
}

/// Each workflow's version in a deploy report.
fn versions(report: &Value) -> BTreeMap<String, String> {
    report["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| (w["name"].as_str().unwrap().to_string(), w["version"].as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The seed of this run's kill points: `FLYTE_DEPLOY_FAULT_SEED`, else the clock.
fn seed() -> u64 {
    let seed = std::env::var("FLYTE_DEPLOY_FAULT_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
    });
    eprintln!("fault points from seed {seed} (FLYTE_DEPLOY_FAULT_SEED={seed} replays them)");
    seed
}

/// Kill points in [0, span), from a xorshift64* stream.
fn points(seed: u64, span: Duration) -> Vec<Duration> {
    let mut x = seed | 1;
    (0..TRIALS)
        .map(|_| {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            let r = (x.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
            span.mul_f64(r)
        })
        .collect()
}

/// The examples on main, deployed once fault-free (which also warms the serialization cache):
/// the repository, the Python, the reference state and report, and how long a warm deploy takes.
fn reference() -> Option<(TempRepo, String, State, Value, Duration)> {
    let python = flytekit_python()?.to_string_lossy().into_owned();
    let repo = TempRepo::with_examples();
    repo.write(".gitignore", ".flyte/\n");
    repo.commit("ignore .flyte");
    deploy_to_the_end(&repo, &python);
    // Timed warm, as every trial runs.
    std::fs::remove_dir_all(repo.path().join(".flyte/sandbox")).unwrap();
    let started = Instant::now();
    let report = deploy_to_the_end(&repo, &python);
    let took = started.elapsed();
    let reference = state(&repo);
    assert!(reference.values().any(|active| *active), "staging activates: {reference:?}");
    Some((repo, python, reference, report, took))
}

#[test]
fn a_deploy_killed_anywhere_converges_when_run_again() {
    let Some((repo, python, reference, report, took)) = reference() else { return };
    for (trial, at) in points(seed(), took.mul_f64(1.2)).into_iter().enumerate() {
        std::fs::remove_dir_all(repo.path().join(".flyte/sandbox")).unwrap();
        deploy_killed_after(&repo, &python, at);
        let again = deploy_to_the_end(&repo, &python);
        assert_eq!(state(&repo), reference, "trial {trial}: killed after {at:?}, run again");
        for (name, n) in records_of(&repo, &again) {
            assert!(n >= 1, "trial {trial} (killed after {at:?}): {name}'s version is not recorded");
        }
        assert_eq!(versions(&again), versions(&report), "trial {trial}: the same versions");
    }
}

/// `cargo xtask sandbox` on `port` with its data in `data`, once it says it listens.
fn sandbox(port: u16, data: &std::path::Path) -> SandboxProcess {
    SandboxProcess::start(&format!("127.0.0.1:{port}"), data)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn a_sandbox_killed_anywhere_during_a_deploy_converges_when_restarted_and_run_again() {
    let Some((repo, python, _, _, took)) = reference() else { return };
    // The same deploys against a sandbox of its own process (records in git notes).
    let port = free_port();
    let data = tempfile::tempdir().unwrap();
    let toml = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    let toml = toml.replace("endpoint = \"sandbox\"", &format!("endpoint = \"127.0.0.1:{port}\"\ninsecure = true"));
    repo.write("deploy.toml", &toml);
    repo.commit("deploy to a sandbox at an address");
    let server = sandbox(port, data.path());
    deploy_to_the_end(&repo, &python);
    let reference = state(&repo);
    server.kill();
    for (trial, at) in points(seed().rotate_left(17), took.mul_f64(1.2)).into_iter().enumerate() {
        std::fs::remove_dir_all(data.path()).unwrap();
        repo.git(&["update-ref", "-d", "refs/notes/flyte-deploy"]);
        let server = sandbox(port, data.path());
        let mut child = deploy(&repo, &python).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(at);
        server.kill();
        child.wait().unwrap();
        let server = sandbox(port, data.path());
        let again = deploy_to_the_end(&repo, &python);
        assert_eq!(state(&repo), reference, "trial {trial}: the sandbox killed after {at:?}, restarted");
        for (name, n) in records_of(&repo, &again) {
            assert!(n >= 1, "trial {trial} (sandbox killed after {at:?}): {name}'s version is not recorded");
        }
        server.kill();
    }
}
