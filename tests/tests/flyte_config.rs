//! The user's Flyte config through the binary: `endpoint = "flyte-config"` with a file as
//! `flytectl config init` writes it deploys with nothing else set; the flytekit variables
//! win over the file; a bad or missing file is exit 2 naming the file and the key; a hung
//! endpoint fails within 30 s naming it.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{flytekit_python, SandboxProcess, TempRepo};

/// A FlyteAdmin at an address: the sandbox as its own process, stopped on drop.
struct Sandbox {
    process: SandboxProcess,
    _data: tempfile::TempDir,
}

impl Sandbox {
    fn start() -> Sandbox {
        let data = tempfile::tempdir().unwrap();
        Sandbox { process: SandboxProcess::start("127.0.0.1:0", data.path()), _data: data }
    }

    /// `127.0.0.1:PORT`.
    fn host_port(&self) -> &str {
        self.process.host_port()
    }
}

/// The examples with `[flyte] endpoint = "flyte-config"`.
fn repo_using_flyte_config() -> TempRepo {
    let repo = TempRepo::with_examples();
    let toml = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    assert!(toml.contains("endpoint = \"sandbox\""));
    repo.write("deploy.toml", &toml.replace("endpoint = \"sandbox\"", "endpoint = \"flyte-config\""));
    repo.write(".gitignore", ".flyte/\n");
    repo.commit("endpoint from the Flyte config");
    repo
}

fn row(json: &Value, name: &str) -> Value {
    json["workflows"].as_array().unwrap().iter().find(|w| w["name"] == name).cloned().unwrap_or(Value::Null)
}

#[test]
fn a_flytectl_config_init_file_is_all_a_deploy_needs() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let sandbox = Sandbox::start();
    let repo = repo_using_flyte_config();
    // What `flytectl config init --host=127.0.0.1:PORT --insecure` writes, in a HOME of its own.
    let home = tempfile::tempdir().unwrap();
    let config = format!(
        "admin:\n  # For GRPC endpoints you might want to use dns:///flyte.myexample.com\n  endpoint: dns:///{}\n  authType: Pkce\n  insecure: true\nlogger:\n  show-source: true\n  level: 0\n",
        sandbox.host_port()
    );
    std::fs::create_dir_all(home.path().join(".flyte")).unwrap();
    std::fs::write(home.path().join(".flyte/config.yaml"), &config).unwrap();
    let home_path = home.path().to_string_lossy().into_owned();
    let args = ["deploy", "--format", "json", "--domain", "development", "--workflow", "hello"];
    let env = [("HOME", home_path.as_str()), ("FLYTE_DEPLOY_PYTHON", python.as_str()), ("CI", "false")];
    let json = repo.xtask_env(&args, &env).json();
    assert_eq!(row(&json, "hello")["outcome"], "registered", "{json:#}");

    // The same through FLYTECTL_CONFIG, with FLYTE_PLATFORM_URL winning over a wrong file.
    let other = tempfile::tempdir().unwrap();
    let wrong = other.path().join("team.yaml");
    std::fs::write(&wrong, "admin:\n  endpoint: dns:///127.0.0.1:1\n  insecure: true\n").unwrap();
    let wrong = wrong.to_string_lossy().into_owned();
    let url = format!("dns:///{}", sandbox.host_port());
    let mut env = env.to_vec();
    env.extend([("FLYTECTL_CONFIG", wrong.as_str()), ("FLYTE_PLATFORM_URL", url.as_str())]);
    let json = repo.xtask_env(&args, &env).json();
    assert_eq!(row(&json, "hello")["outcome"], "already-registered", "{json:#}");

    // Without the variable the file's endpoint is used: nothing listens there, named.
    env.pop();
    let run = repo.xtask_env(&args, &env);
    assert_ne!(run.status, Some(0));
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("127.0.0.1:1") && said.contains("nothing listens"), "{said}");
}

#[test]
fn a_bad_or_missing_flyte_config_is_exit_2_naming_the_file_and_key() {
    let repo = repo_using_flyte_config();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yaml");
    std::fs::write(&file, "admin:\n  endpoint: dns:///flyte.example.com\n  insecure: maybe\n").unwrap();
    let file = file.to_string_lossy().into_owned();
    let said =
        repo.xtask_env(&["deploy", "--domain", "development"], &[("FLYTECTL_CONFIG", &file)]).user_error().to_string();
    assert!(said.contains(&file) && said.contains("admin.insecure"), "{said}");

    let missing = dir.path().join("nope.yaml").to_string_lossy().into_owned();
    let said = repo
        .xtask_env(&["deploy", "--domain", "development"], &[("FLYTECTL_CONFIG", &missing)])
        .user_error()
        .to_string();
    assert!(said.contains(&missing) && said.contains("cannot read"), "{said}");

    // No file at all (an empty HOME) and no variable: says where it looked.
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_string_lossy().into_owned();
    let said = repo.xtask_env(&["deploy", "--domain", "development"], &[("HOME", &home)]).user_error().to_string();
    assert!(said.contains("flyte-config") && said.contains("~/.flyte/config.yaml"), "{said}");
}

#[test]
fn a_hung_endpoint_fails_the_deploy_within_30_seconds_naming_it() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming() {
            held.push(stream);
        }
    });
    let repo = TempRepo::with_examples();
    let started = Instant::now();
    let run = repo.xtask_env(
        &["deploy", "--domain", "development", "--workflow", "hello"],
        &[("FLYTE_ENDPOINT", &endpoint), ("FLYTE_DEPLOY_PYTHON", &python), ("CI", "false")],
    );
    let took = started.elapsed();
    assert_ne!(run.status, Some(0));
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains(&endpoint) && said.contains("did not answer"), "{said}");
    assert!(took < Duration::from_secs(30), "took {took:?}");
    eprintln!("a hung endpoint failed the deploy in {took:?}");
}
