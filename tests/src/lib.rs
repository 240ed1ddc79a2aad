//! Helpers for the end-to-end tests: temporary git repositories built in a few lines, the
//! `xtask` binary run inside them, and the real tools the tests need (a missing tool fails
//! the test under `CI=true`, and is reported and skipped elsewhere).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The root of this project (where `workflows/` and `deploy.toml` hold the examples).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `xtask` binary: `FLYTE_DEPLOY_BIN` (set by `cargo xtask test`), else built once.
pub fn xtask_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("FLYTE_DEPLOY_BIN") {
            return PathBuf::from(bin);
        }
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(project_root())
            .args(["build", "--quiet", "--package", "xtask"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the xtask binary failed");
        let target =
            std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| project_root().join("target"));
        target.join("debug/xtask")
    })
    .clone()
}

/// True when running in CI, where a missing tool is a failure, never a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The path of a program on PATH. Under `CI=true` a missing program panics; elsewhere the
/// caller skips, and the skip is printed.
pub fn require_tool(program: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).map(|d| d.join(program)).find(|p| p.is_file()));
    if found.is_none() {
        assert!(!in_ci(), "{program} is not installed; `cargo xtask test` installs it");
        eprintln!("SKIPPED: {program} is not installed (run `cargo xtask test` to install it)");
    }
    found
}

/// The environments folder every test shares: `FLYTE_DEPLOY_ENVS` (set by `cargo xtask
/// test`), else `target/flyte-envs`. Each dependency set is built once, whichever test
/// needs it first (the tool locks each environment while it builds it).
pub fn envs_dir() -> PathBuf {
    std::env::var_os("FLYTE_DEPLOY_ENVS").map(PathBuf::from).unwrap_or_else(|| project_root().join("target/flyte-envs"))
}

/// The Python of the default serialization environment (flytekit 1.16.31 alone):
/// `FLYTE_DEPLOY_TEST_PYTHON` (set by `cargo xtask test`), else built in [`envs_dir`]. When
/// it cannot be built: a failure under `CI=true`, a printed skip elsewhere.
pub fn flytekit_python() -> Option<PathBuf> {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let found = PYTHON.get_or_init(|| {
        if let Some(python) = std::env::var_os("FLYTE_DEPLOY_TEST_PYTHON") {
            return Ok(PathBuf::from(python));
        }
        let envs = flyte_deploy::artifacts::environment::Envs::at(envs_dir());
        let env =
            flyte_deploy::workspace::requirements::Environment::flytekit_only(flyte_deploy::config::DEFAULT_FLYTEKIT);
        envs.ensure(&env).map(|ready| ready.python).map_err(|e| format!("{e:#}"))
    });
    match found {
        Ok(python) => Some(python.clone()),
        Err(e) => {
            assert!(!in_ci(), "the default serialization environment could not be built: {e}");
            eprintln!("SKIPPED: the default serialization environment could not be built: {e}");
            None
        }
    }
}

/// A temporary git repository.
pub struct TempRepo {
    pub dir: tempfile::TempDir,
}

/// The result of one run of the binary.
pub struct Run {
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            status: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(&self) -> &str {
        assert_eq!(self.status, Some(0), "expected success\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stdout
    }

    /// Asserts exit status 2 (bad input) and returns stderr.
    pub fn user_error(&self) -> &str {
        assert_eq!(self.status, Some(2), "expected exit 2\nstdout:\n{}\nstderr:\n{}", self.stdout, self.stderr);
        &self.stderr
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl TempRepo {
    /// An empty repository with a configured identity and `main` as its branch.
    pub fn new() -> TempRepo {
        let dir = tempfile::Builder::new().prefix("flyte-deploy-test").tempdir().expect("creating a temp dir");
        let repo = TempRepo { dir };
        repo.git(&["init", "--quiet", "--initial-branch=main"]);
        repo.git(&["config", "user.email", "test@example.com"]);
        repo.git(&["config", "user.name", "Test"]);
        repo.git(&["config", "commit.gpgsign", "false"]);
        repo
    }

    /// A repository holding a copy of this project's deploy.toml, libs/ and its four
    /// first examples (hello, etl, features, training: flytekit only), committed on `main`.
    pub fn with_examples() -> TempRepo {
        TempRepo::with(&["hello", "etl", "features", "training"])
    }

    /// A repository holding a copy of this project's deploy.toml, libs/ and every example
    /// under workflows/ (those that need third-party packages, ImageSpec and named images
    /// too), committed on `main`.
    pub fn with_all_examples() -> TempRepo {
        let names: Vec<String> = std::fs::read_dir(project_root().join("workflows"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        TempRepo::with(&names.iter().map(String::as_str).collect::<Vec<_>>())
    }

    /// A repository holding deploy.toml, libs/ and the named examples, committed on `main`.
    fn with(examples: &[&str]) -> TempRepo {
        let repo = TempRepo::new();
        let root = project_root();
        for item in ["deploy.toml", "libs"] {
            copy_tree(&root.join(item), &repo.path().join(item));
        }
        for name in examples {
            copy_tree(&root.join("workflows").join(name), &repo.path().join("workflows").join(name));
        }
        repo.commit("examples");
        repo
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders).
    pub fn write(&self, rel: &str, contents: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        self
    }

    /// Writes a file of any bytes (creating folders).
    pub fn write_bytes(&self, rel: &str, contents: &[u8]) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        self
    }

    /// Makes `rel` a symbolic link to `target` (creating folders).
    pub fn symlink(&self, target: &str, rel: &str) -> &Self {
        let path = self.path().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(target, &path).unwrap();
        self
    }

    /// Removes a file or folder.
    pub fn remove(&self, rel: &str) -> &Self {
        let path = self.path().join(rel);
        if path.is_dir() {
            std::fs::remove_dir_all(path).unwrap();
        } else {
            std::fs::remove_file(path).unwrap();
        }
        self
    }

    /// Runs git in the repository and returns its stdout; panics on failure.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .current_dir(self.path())
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .output()
            .expect("running git");
        assert!(out.status.success(), "git {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Stages everything and commits; returns the new commit's SHA.
    pub fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]);
        self.git(&["commit", "--quiet", "--allow-empty", "-m", message]);
        self.git(&["rev-parse", "HEAD"])
    }

    /// Runs the binary inside the repository with a clean CI context.
    pub fn xtask(&self, args: &[&str]) -> Run {
        self.xtask_env(args, &[])
    }

    /// Runs the binary with extra environment variables.
    pub fn xtask_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(xtask_bin());
        cmd.current_dir(self.path()).args(args).env("FLYTE_DEPLOY_ENVS", envs_dir());
        for (key, _) in std::env::vars() {
            if key.starts_with("GITHUB_") || key.starts_with("CI_") || key == "FLYTE_ENDPOINT" {
                cmd.env_remove(key);
            }
        }
        cmd.envs(env.iter().copied());
        Run::from(cmd.output().expect("running xtask"))
    }
}

impl Default for TempRepo {
    fn default() -> Self {
        TempRepo::new()
    }
}

/// Copies a file or folder recursively (skipping `__pycache__`).
pub fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == "__pycache__" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("copying {}: {e}", from.display()));
    }
}

/// Runs the real `pyflyte package` of `pkg` inside `dir` (the examples' shared library on
/// PYTHONPATH) and returns the archive's bytes. The venv must exist (see [`flytekit_python`]).
pub fn pyflyte_package(dir: &Path, pkg: &str) -> Vec<u8> {
    let python = flytekit_python().expect("the caller checked flytekit_python()");
    let out = Command::new(python.with_file_name("pyflyte"))
        .current_dir(dir)
        .env("PYTHONPATH", project_root().join("libs"))
        .args(["--pkgs", pkg, "package", "--image", "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31"])
        .args(["--copy", "all", "-o", "out.tgz", "--force"])
        .output()
        .expect("running pyflyte");
    assert!(out.status.success(), "pyflyte failed on {pkg}: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(dir.join("out.tgz")).unwrap()
}

/// Starts `command` (its stdout piped, its stderr dropped) and waits for its first line,
/// which must start with `prefix`: the child and the rest of that line (an address). Its
/// later output is read and dropped, so it never writes to a closed pipe. Panics naming
/// `what` when it ends or says something else first.
pub fn spawn_announcing(mut command: Command, prefix: &str, what: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let mut lines = std::io::BufReader::new(child.stdout.take().expect("its stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    let Some(rest) = first.strip_prefix(prefix).map(|r| r.trim().to_string()) else {
        child.kill().ok();
        let status = child.wait();
        panic!("{what} did not start ({status:?}): {first:?}");
    };
    std::thread::spawn(move || lines.for_each(drop));
    (child, rest)
}

/// Starts `command` with its stderr piped and reads that until a line contains `says`: the
/// child (its stdout as `command` set it) and what it said up to there. The rest of its
/// stderr is read and dropped, so it never blocks on a full pipe. Panics with what it said
/// when it ends first.
pub fn spawn_until_it_says(mut command: Command, says: &str) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = command.stderr(std::process::Stdio::piped()).spawn().expect("starting the process");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("its stderr"));
    let mut said = String::new();
    while !said.lines().any(|l| l.contains(says)) {
        let mut line = String::new();
        if stderr.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("it ended without saying {says:?}:\n{said}");
        }
        said.push_str(&line);
    }
    std::thread::spawn(move || stderr.lines().for_each(drop));
    (child, said)
}

/// A FlyteAdmin at an address: `cargo xtask sandbox` as its own process on loopback, with
/// its data in `data`; started when it says it listens, killed on drop (or by [`kill`]).
///
/// [`kill`]: SandboxProcess::kill
pub struct SandboxProcess {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
}

impl SandboxProcess {
    /// Starts it on `addr` (`127.0.0.1:0`: any free port).
    pub fn start(addr: &str, data: &Path) -> SandboxProcess {
        SandboxProcess::start_with(addr, data, &[])
    }

    /// Starts it wanting a bearer token from `oidc` for [`OidcServer::AUDIENCE`] on every call.
    pub fn start_requiring_token(data: &Path, oidc: &OidcServer) -> SandboxProcess {
        SandboxProcess::start_requiring_audience(data, oidc, OidcServer::AUDIENCE)
    }

    /// Starts it wanting a bearer token from `oidc` for `audience` on every call.
    pub fn start_requiring_audience(data: &Path, oidc: &OidcServer, audience: &str) -> SandboxProcess {
        SandboxProcess::start_with(
            "127.0.0.1:0",
            data,
            &["--require-token", &oidc.issuer, "--token-audience", audience],
        )
    }

    fn start_with(addr: &str, data: &Path, extra: &[&str]) -> SandboxProcess {
        let mut command = Command::new(xtask_bin());
        command.args(["sandbox", "--addr", addr, "--data"]).arg(data).args(extra);
        let what = format!("the sandbox on {addr}");
        let (child, endpoint) = spawn_announcing(command, "FlyteAdmin sandbox listening on ", &what);
        SandboxProcess { child, endpoint }
    }

    /// `127.0.0.1:PORT`.
    pub fn host_port(&self) -> &str {
        self.endpoint.trim_start_matches("http://")
    }

    /// Kills it (SIGKILL) and waits for it.
    pub fn kill(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Drop for SandboxProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A real OAuth2/OIDC server on loopback: npm's oidc-provider configured by
/// `tests/oidc/server.mjs` (clients, JWT access tokens for [`OidcServer::AUDIENCE`], the
/// development login and consent forms), run by node; killed on drop. The package comes from
/// `FLYTE_DEPLOY_OIDC_PROVIDER` (set by `cargo xtask test`), else where `cargo xtask test`
/// installs it. Missing node or package: a failure under `CI=true`, a printed skip elsewhere.
pub struct OidcServer {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`: the issuer, and the base of every endpoint.
    pub issuer: String,
}

impl OidcServer {
    /// The audience (resource) of its access tokens.
    pub const AUDIENCE: &'static str = "http://flyteadmin.test";
    /// The confidential client of the client-credentials grant, and its secret.
    pub const CI_CLIENT: (&'static str, &'static str) = ("flyte-deploy-ci", "ci-secret");

    /// Starts it (access tokens valid for `ttl_seconds`), or `None` when it cannot run here
    /// (and this is not CI).
    pub fn start(ttl_seconds: u64) -> Option<OidcServer> {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(|d| project_root().join(d))
            .unwrap_or_else(|| project_root().join("target"));
        let package = std::env::var_os("FLYTE_DEPLOY_OIDC_PROVIDER")
            .map(PathBuf::from)
            .unwrap_or_else(|| target.join("npm/node_modules/oidc-provider"));
        if !package.join("package.json").is_file() {
            assert!(
                !in_ci(),
                "oidc-provider is not installed at {}; `cargo xtask test` installs it",
                package.display()
            );
            eprintln!("SKIPPED: oidc-provider is not installed at {} (run `cargo xtask test`)", package.display());
            return None;
        }
        let node = require_tool("node")?;
        let mut command = Command::new(node);
        command
            .arg(project_root().join("tests/oidc/server.mjs"))
            .arg(&package)
            .arg(OidcServer::AUDIENCE)
            .arg(ttl_seconds.to_string());
        let (child, port) = spawn_announcing(command, "listening ", "the OIDC server");
        Some(OidcServer { child, issuer: format!("http://127.0.0.1:{port}") })
    }

    /// An access token of the client-credentials grant.
    pub fn client_credentials_token(&self) -> String {
        let (id, secret) = OidcServer::CI_CLIENT;
        let basic = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, format!("{id}:{secret}"));
        let body = ureq::post(&format!("{}/token", self.issuer))
            .set("Authorization", &format!("Basic {basic}"))
            .send_form(&[("grant_type", "client_credentials"), ("scope", "all")])
            .expect("the token request")
            .into_string()
            .unwrap();
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        json["access_token"].as_str().unwrap_or_else(|| panic!("no access token: {body}")).to_string()
    }
}

impl Drop for OidcServer {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
