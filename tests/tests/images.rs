//! `cargo xtask build`: images are built only when the registry lacks their tag, reproducibly,
//! and only where building is allowed. Against a real registry (`docker-registry serve` on
//! 127.0.0.1, started and stopped here) and a real buildah (chroot isolation, vfs storage in
//! a temp dir, `FROM scratch` + `COPY` images so nothing is pulled); what an image holds is
//! read back through the registry's API.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{require_tool, Run, TempRepo};

/// A `docker-registry serve` with its own config and storage, killed when dropped.
struct RegistryServer {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// The `Authorization` header the test itself uses, when the registry wants one.
    authorization: Option<&'static str>,
}

/// The one user of the password-protected registry: `tester` / `s3cret` (bcrypt, cost 4).
const HTPASSWD: &str = "tester:$2b$04$zPZmZMwG19KJCw1xgF3pBOOGnpzv6bahTURW7RVqvc941O8/6gAbK\n";
const TESTER_BASIC: &str = "Basic dGVzdGVyOnMzY3JldA==";

impl RegistryServer {
    fn start() -> RegistryServer {
        RegistryServer::start_on(free_port())
    }

    fn start_on(port: u16) -> RegistryServer {
        RegistryServer::launch(port, false)
    }

    /// A registry that answers only `tester` (HTTP Basic, htpasswd).
    fn start_with_password() -> RegistryServer {
        RegistryServer::launch(free_port(), true)
    }

    fn launch(port: u16, password: bool) -> RegistryServer {
        if password {
            let auth = "auth:\n  htpasswd:\n    realm: test\n    path: {dir}/htpasswd\n";
            RegistryServer::launch_with(port, auth, Some(TESTER_BASIC))
        } else {
            RegistryServer::launch_with(port, "", None)
        }
    }

    /// A registry with an `auth:` section (YAML, may be empty; `{dir}` is the registry's own
    /// folder, which holds `htpasswd`); `authorization` is what the test sends itself when it
    /// asks the registry.
    fn launch_with(port: u16, auth: &str, authorization: Option<&'static str>) -> RegistryServer {
        let dir = tempfile::Builder::new().prefix("flyte-deploy-registry").tempdir().unwrap();
        std::fs::write(dir.path().join("htpasswd"), HTPASSWD).unwrap();
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\n  secret: flyte-deploy-test\n{}",
            dir.path().join("data").display(),
            auth.replace("{dir}", &dir.path().display().to_string())
        );
        std::fs::write(&config, yaml).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let mut server = RegistryServer { child, port, dir, authorization };
        server.wait_until_ready();
        server
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self.child.try_wait().unwrap() {
                let log = std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default();
                panic!("docker-registry exited ({status}) before listening:\n{log}");
            }
            assert!(Instant::now() < deadline, "docker-registry did not listen on port {}", self.port);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The digest the registry has for `flyte/<workflow>:<tag>`, asked over plain HTTP.
    fn digest(&self, workflow: &str, tag: &str) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        write!(
            stream,
            "HEAD /v2/flyte/{workflow}/manifests/{tag} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
             Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json\r\n\
             {}Connection: close\r\n\r\n",
            self.port,
            self.authorization.map_or(String::new(), |a| format!("Authorization: {a}\r\n"))
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        let status = answer.split_whitespace().nth(1).unwrap_or_default();
        if status == "404" {
            return None;
        }
        assert_eq!(status, "200", "unexpected answer:\n{answer}");
        answer.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("docker-content-digest").then(|| v.trim().to_string())
        })
    }

    /// The `Env` of the image config of `flyte/<workflow>:<tag>`: the manifest, then the
    /// config blob it names, asked over plain HTTP.
    fn config_env(&self, workflow: &str, tag: &str) -> Vec<String> {
        let base = format!("http://127.0.0.1:{}/v2/flyte/{workflow}", self.port);
        let get = |url: &str, accept: &str| {
            let mut request = ureq::get(url).set("Accept", accept);
            if let Some(authorization) = self.authorization {
                request = request.set("Authorization", authorization);
            }
            let body = request.call().unwrap_or_else(|e| panic!("GET {url}: {e}")).into_string().unwrap();
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_else(|e| panic!("GET {url}: {e}\n{body}"))
        };
        let manifest = get(
            &format!("{base}/manifests/{tag}"),
            "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json",
        );
        let config = manifest["config"]["digest"].as_str().unwrap_or_else(|| panic!("no config in {manifest}"));
        let config = get(&format!("{base}/blobs/{config}"), "*/*");
        let env = config["config"]["Env"].as_array().cloned().unwrap_or_default();
        env.iter().map(|v| v.as_str().expect("Env holds strings").to_string()).collect()
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// buildah's image store in a temp dir: `root` does not exist until buildah runs.
struct Store {
    dir: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store { dir: tempfile::Builder::new().prefix("flyte-deploy-store").tempdir().unwrap() }
    }
    fn root(&self) -> PathBuf {
        self.dir.path().join("root")
    }
    /// True when buildah ever wrote to the store.
    fn touched(&self) -> bool {
        self.root().exists() || self.dir.path().join("runroot").exists()
    }
    fn env(&self, ci: bool) -> Vec<(&'static str, String)> {
        vec![
            ("CI", if ci { "true" } else { "false" }.to_string()),
            ("FLYTE_DEPLOY_STORAGE_DRIVER", "vfs".into()),
            ("FLYTE_DEPLOY_STORAGE_ROOT", self.root().display().to_string()),
            ("FLYTE_DEPLOY_STORAGE_RUNROOT", self.dir.path().join("runroot").display().to_string()),
        ]
    }
}

fn tools() -> bool {
    require_tool("buildah").is_some() && require_tool("docker-registry").is_some()
}

/// A monorepo whose `etl` workflow has its own image (shared library included; its Dockerfile
/// learns its own reference as flytesnacks' do, through `ARG tag`) and whose `hello` uses the
/// default image.
fn monorepo(port: u16) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("deploy.toml", &format!("[images]\nregistry = \"127.0.0.1:{port}/flyte\"\nbuilder = \"buildah\"\n"))
        .write(
            "workflows/etl/Dockerfile",
            "FROM scratch\nCOPY requirements.txt /deps/requirements.txt\nCOPY etl /app/etl\nCOPY common /app/common\n\
             ARG tag\nENV FLYTE_INTERNAL_IMAGE=$tag\n",
        )
        .write("workflows/etl/workflow.toml", "shared = [\"libs/common\"]\n")
        .write("workflows/etl/requirements.txt", "pandas==2.2.2\n")
        .write("workflows/etl/etl/__init__.py", "")
        .write("workflows/etl/etl/wf.py", "X = 1\n")
        .write("workflows/etl/etl/steps/__init__.py", "")
        .write("libs/common/__init__.py", "VALUE = 1\n")
        .write("workflows/hello/hello/__init__.py", "");
    repo.commit("monorepo");
    repo
}

fn build(repo: &TempRepo, args: &[&str], store: &Store, ci: bool) -> Run {
    build_with(repo, args, store, ci, &[])
}

fn build_with(repo: &TempRepo, args: &[&str], store: &Store, ci: bool, extra: &[(&str, &str)]) -> Run {
    let env = store.env(ci);
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.extend_from_slice(extra);
    repo.xtask_env(&[&["build"], args].concat(), &env)
}

/// The image, outcome and digest `build` printed for a workflow.
struct Line {
    tag: String,
    outcome: String,
    digest: String,
}

fn line(stdout: &str, workflow: &str) -> Line {
    let l = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(workflow))
        .unwrap_or_else(|| panic!("no line for {workflow}:\n{stdout}"));
    let words: Vec<&str> = l.split_whitespace().collect();
    let digest = words.last().filter(|w| w.starts_with("sha256:")).map_or(String::new(), |w| w.to_string());
    let end = if digest.is_empty() { words.len() } else { words.len() - 1 };
    Line { tag: words[1].rsplit(':').next().unwrap().to_string(), outcome: words[2..end].join(" "), digest }
}

#[test]
fn build_and_push_then_a_rerun_skips_the_build() {
    if !tools() {
        return;
    }
    let registry = RegistryServer::start();
    let repo = monorepo(registry.port);
    let first = Store::new();
    let run = build(&repo, &["etl", "hello", "--push"], &first, true);
    let out = run.ok();
    let etl = line(out, "etl");
    assert_eq!(etl.outcome, "built and pushed", "{out}");
    assert!(out.contains(&format!("127.0.0.1:{}/flyte/etl:{}", registry.port, etl.tag)), "{out}");
    assert_eq!(registry.digest("etl", &etl.tag).as_deref(), Some(etl.digest.as_str()), "the registry has it");
    assert!(first.touched(), "buildah built into the store");
    // The Dockerfile declares `ARG tag`: the build passed the image's own reference to it.
    let reference = format!("127.0.0.1:{}/flyte/etl:{}", registry.port, etl.tag);
    let env = registry.config_env("etl", &etl.tag);
    assert!(env.contains(&format!("FLYTE_INTERNAL_IMAGE={reference}")), "{env:?}");
    assert_eq!(line(out, "hello").outcome, "default image, nothing to build");

    // Again, with an empty store: the registry's manifest is checked and buildah never runs.
    let second = Store::new();
    let out = build(&repo, &["etl", "--push"], &second, true).ok().to_string();
    let again = line(&out, "etl");
    assert_eq!(again.outcome, "exists in the registry, build skipped", "{out}");
    assert_eq!((again.tag.as_str(), again.digest.as_str()), (etl.tag.as_str(), etl.digest.as_str()));
    assert!(!second.touched(), "the builder was run although the tag exists");

    // Outside CI an existing image needs no building, so no flag is needed either.
    let out = build(&repo, &["etl"], &second, false).ok().to_string();
    assert_eq!(line(&out, "etl").outcome, "exists in the registry, build skipped");

    // A code-only change keeps the dependency hash, so the tag and the image stay.
    repo.write("workflows/etl/etl/wf.py", "X = 2\n");
    repo.commit("code only");
    let out = build(&repo, &["etl", "--push"], &second, true).ok().to_string();
    let code_only = line(&out, "etl");
    assert_eq!(
        (code_only.tag.as_str(), code_only.outcome.as_str()),
        (etl.tag.as_str(), "exists in the registry, build skipped")
    );
    assert!(!second.touched());
}

#[test]
fn a_dependency_change_gives_a_new_tag_and_a_new_image() {
    if !tools() {
        return;
    }
    let registry = RegistryServer::start();
    let repo = monorepo(registry.port);
    let store = Store::new();
    let before = line(build(&repo, &["etl", "--push"], &store, true).ok(), "etl");

    // A comment does not reach the image: same tag.
    repo.write("workflows/etl/requirements.txt", "# data\npandas==2.2.2   \n");
    repo.commit("comment");
    let out = build(&repo, &["etl", "--push"], &store, true).ok().to_string();
    assert_eq!(line(&out, "etl").tag, before.tag, "{out}");

    repo.write("workflows/etl/requirements.txt", "pandas==2.2.3\n");
    repo.commit("bump pandas");
    let out = build(&repo, &["etl", "--push"], &store, true).ok().to_string();
    let after = line(&out, "etl");
    assert_ne!(after.tag, before.tag, "a dependency change must give a new tag");
    assert_eq!(after.outcome, "built and pushed");
    assert_ne!(after.digest, before.digest);
    assert_eq!(registry.digest("etl", &after.tag).as_deref(), Some(after.digest.as_str()));
    assert_eq!(registry.digest("etl", &before.tag).as_deref(), Some(before.digest.as_str()), "the old tag stays");
}

#[test]
fn the_same_inputs_on_two_clones_give_the_same_digest() {
    if !tools() {
        return;
    }
    let port = free_port();
    let first = {
        let registry = RegistryServer::start_on(port);
        let a = monorepo(port);
        // An untracked file in the workflow folder must not reach the image.
        a.write("workflows/etl/etl/.env", "SECRET=1\n");
        let store = Store::new();
        let first = line(build(&a, &["etl", "--push"], &store, true).ok(), "etl");
        assert_eq!(first.outcome, "built and pushed");

        // A second clone, at another path, checked out later (other mtimes), built under
        // another umask into another store and pushed to a fresh registry on the same address.
        drop(registry);
        let registry = RegistryServer::start_on(port);
        let b = TempRepo { dir: tempfile::Builder::new().prefix("flyte-deploy-clone").tempdir().unwrap() };
        clone(a.path(), b.path());
        let other = Store::new();
        let second = line(build_with_umask(&b, "077", &["etl", "--push"], &other).ok(), "etl");
        assert_eq!(second.outcome, "built and pushed", "the fresh registry lacked the tag");
        assert_eq!(second.tag, first.tag);
        assert_eq!(second.digest, first.digest, "same inputs (and reference for ARG tag), same image digest");
        assert_eq!(registry.digest("etl", &second.tag).as_deref(), Some(first.digest.as_str()));
        first
    };
    assert!(first.digest.starts_with("sha256:"));
}

/// `build` with CI=true under another umask: `sh` sets it and execs the binary with our argv.
fn build_with_umask(repo: &TempRepo, umask: &str, args: &[&str], store: &Store) -> Run {
    let out = Command::new("sh")
        .args(["-c", &format!("umask {umask} && exec \"$0\" \"$@\"")])
        .arg(tests::xtask_bin())
        .arg("build")
        .args(args)
        .current_dir(repo.path())
        .envs(store.env(true))
        .output()
        .unwrap();
    Run {
        status: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn clone(from: &Path, to: &Path) {
    let status = Command::new("git")
        .args(["clone", "--quiet"])
        .arg(from)
        .arg(to)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn an_unreachable_registry_is_a_clear_error_and_nothing_is_built() {
    if !tools() {
        return;
    }
    let port = free_port(); // nothing listens there
    let repo = monorepo(port);
    let store = Store::new();
    let run = build(&repo, &["etl", "--push"], &store, true);
    assert_ne!(run.status, Some(0));
    let err = run.user_error();
    assert!(err.contains(&format!("registry 127.0.0.1:{port} is unreachable")), "{err}");
    assert!(err.contains("nothing was built, pushed or registered"), "{err}");
    assert!(!store.touched(), "the builder ran although the registry is down");
}

#[test]
fn outside_ci_building_is_refused_unless_allowed() {
    if !tools() {
        return;
    }
    let registry = RegistryServer::start();
    let repo = monorepo(registry.port);
    let store = Store::new();
    let err = build(&repo, &["etl", "--push"], &store, false).user_error().to_string();
    assert!(err.contains("CI must build the image first"), "{err}");
    assert!(err.contains("workflows/etl/requirements.txt"), "names the dependency files: {err}");
    assert!(err.contains("--allow-local-build"), "{err}");
    assert!(!store.touched(), "nothing may be built when refused");

    let out = build(&repo, &["etl", "--push", "--allow-local-build"], &store, false).ok().to_string();
    let etl = line(&out, "etl");
    assert_eq!(etl.outcome, "built and pushed");
    assert_eq!(registry.digest("etl", &etl.tag).as_deref(), Some(etl.digest.as_str()));
}

#[test]
fn an_unknown_workflow_is_a_user_error() {
    let repo = monorepo(free_port());
    let err = repo.xtask(&["build", "nope"]).user_error().to_string();
    assert!(err.contains("no workflow named 'nope'") && err.contains("etl"), "{err}");
}

#[test]
fn credentials_come_from_docker_config_or_the_environment() {
    if !tools() {
        return;
    }
    let registry = RegistryServer::start_with_password();
    let repo = monorepo(registry.port);
    let store = Store::new();
    let empty = tempfile::tempdir().unwrap();
    let no_config = [("DOCKER_CONFIG", empty.path().to_str().unwrap())];

    // Anonymous: refused, with what to do, and nothing built.
    let err = build_with(&repo, &["etl", "--push"], &store, true, &no_config).user_error().to_string();
    assert!(err.contains(&format!("registry 127.0.0.1:{} refused access to flyte/etl", registry.port)), "{err}");
    assert!(err.contains("docker login") && err.contains("FLYTE_DEPLOY_REGISTRY_USERNAME"), "{err}");
    assert!(err.contains("no credentials for"), "says none were offered: {err}");
    assert!(!store.touched());

    // Docker's config.json (as `docker login` writes it): checked, built and pushed with it.
    let docker = tempfile::tempdir().unwrap();
    std::fs::write(
        docker.path().join("config.json"),
        format!(r#"{{"auths": {{"http://127.0.0.1:{}/v2/": {{"auth": "dGVzdGVyOnMzY3JldA=="}}}}}}"#, registry.port),
    )
    .unwrap();
    let with_config = [("DOCKER_CONFIG", docker.path().to_str().unwrap())];
    let out = build_with(&repo, &["etl", "--push"], &store, true, &with_config).ok().to_string();
    let first = line(&out, "etl");
    assert_eq!(first.outcome, "built and pushed", "{out}");
    assert_eq!(registry.digest("etl", &first.tag).as_deref(), Some(first.digest.as_str()));
    let out = build_with(&repo, &["etl", "--push"], &store, true, &with_config).ok().to_string();
    assert_eq!(line(&out, "etl").outcome, "exists in the registry, build skipped");

    // A credential helper (`credHelpers`), run as `docker-credential-<name> get` with the
    // registry on its input: the check passes with what it answers.
    let helper = tempfile::tempdir().unwrap();
    let script = helper.path().join("docker-credential-flytetest");
    let expected = format!("127.0.0.1:{}", registry.port);
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n[ \"$1\" = get ] && [ \"$(cat)\" = {expected} ] || exit 1\n\
             echo '{{\"ServerURL\":\"{expected}\",\"Username\":\"tester\",\"Secret\":\"s3cret\"}}'\n"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let helped = tempfile::tempdir().unwrap();
    let config = format!(r#"{{"credHelpers": {{"{expected}": "flytetest"}}}}"#);
    std::fs::write(helped.path().join("config.json"), config).unwrap();
    let path = format!("{}:{}", helper.path().display(), std::env::var("PATH").unwrap_or_default());
    let with_helper = [("DOCKER_CONFIG", helped.path().to_str().unwrap()), ("PATH", path.as_str())];
    let out = build_with(&repo, &["etl", "--push"], &store, true, &with_helper).ok().to_string();
    assert_eq!(line(&out, "etl").outcome, "exists in the registry, build skipped", "{out}");

    // The environment's credentials, for the check and the push (no config.json at all).
    repo.write("workflows/etl/requirements.txt", "pandas==2.2.3\n");
    repo.commit("bump");
    let env =
        [no_config[0], ("FLYTE_DEPLOY_REGISTRY_USERNAME", "tester"), ("FLYTE_DEPLOY_REGISTRY_PASSWORD", "s3cret")];
    let out = build_with(&repo, &["etl", "--push"], &store, true, &env).ok().to_string();
    let second = line(&out, "etl");
    assert_eq!(second.outcome, "built and pushed", "{out}");
    assert_eq!(registry.digest("etl", &second.tag).as_deref(), Some(second.digest.as_str()));

    // A wrong password is refused before anything is built.
    repo.write("workflows/etl/requirements.txt", "pandas==2.2.4\n");
    repo.commit("bump again");
    let fresh = Store::new();
    let wrong = [env[0], env[1], ("FLYTE_DEPLOY_REGISTRY_PASSWORD", "wrong")];
    let err = build_with(&repo, &["etl", "--push"], &fresh, true, &wrong).user_error().to_string();
    assert!(err.contains("refused access"), "{err}");
    // The hint names the credentials that were offered, not advice to log in.
    assert!(err.contains("FLYTE_DEPLOY_REGISTRY_USERNAME (user 'tester')"), "{err}");
    assert!(err.contains("offered and refused") && !err.contains("no credentials"), "{err}");
    assert!(!fresh.touched());

    // Wrong credentials in config.json: the hint names that file.
    let stale = tempfile::tempdir().unwrap();
    let stale_json = stale.path().join("config.json");
    std::fs::write(
        &stale_json,
        format!(r#"{{"auths": {{"127.0.0.1:{}": {{"auth": "dGVzdGVyOndyb25n"}}}}}}"#, registry.port),
    )
    .unwrap();
    let err = build_with(&repo, &["etl", "--push"], &fresh, true, &[("DOCKER_CONFIG", stale.path().to_str().unwrap())])
        .user_error()
        .to_string();
    assert!(err.contains(&format!("in {} (user 'tester')", stale_json.display())), "{err}");
    assert!(!fresh.touched());
}

/// A token service for the registry's Bearer challenge, as Docker Hub and most cloud
/// registries run one: it answers `tester` / `s3cret` (HTTP Basic) with a JWT signed by a key
/// the registry trusts, granting what was asked. The registry checks every token itself.
struct TokenService {
    port: u16,
    dir: tempfile::TempDir,
    /// How many tokens were handed out.
    issued: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TokenService {
    fn start() -> TokenService {
        let dir = tempfile::Builder::new().prefix("flyte-deploy-token").tempdir().unwrap();
        let status = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=flyte-deploy-test"])
            .arg("-keyout")
            .arg(dir.path().join("key.pem"))
            .arg("-out")
            .arg(dir.path().join("cert.pem"))
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "openssl could not make a key");
        let der = Command::new("openssl")
            .args(["x509", "-outform", "DER", "-in"])
            .arg(dir.path().join("cert.pem"))
            .output()
            .unwrap()
            .stdout;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let issued = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (key, count) = (dir.path().join("key.pem"), issued.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                answer_token_request(stream, &key, &der, &count);
            }
        });
        TokenService { port, dir, issued }
    }

    fn registry_auth_yaml(&self) -> String {
        format!(
            "auth:\n  token:\n    realm: http://127.0.0.1:{}/token\n    service: test-registry\n    \
             issuer: test-issuer\n    rootcertbundle: {}\n",
            self.port,
            self.dir.path().join("cert.pem").display()
        )
    }
}

fn answer_token_request(mut stream: TcpStream, key: &Path, cert_der: &[u8], issued: &std::sync::atomic::AtomicUsize) {
    use std::io::BufRead;
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    reader.read_line(&mut request_line).unwrap();
    let mut authorized = false;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap() == 0 || header.trim().is_empty() {
            break;
        }
        let (name, value) = header.split_once(':').unwrap_or_default();
        authorized |= name.eq_ignore_ascii_case("authorization") && value.trim() == TESTER_BASIC;
    }
    if !authorized {
        let _ = stream.write_all(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        return;
    }
    let target = request_line.split_whitespace().nth(1).unwrap_or_default();
    let query = target.split_once('?').map_or("", |(_, q)| q);
    let access: Vec<String> = query
        .split('&')
        .filter_map(|p| p.strip_prefix("scope="))
        .map(|s| {
            let scope = percent_decode(s);
            let mut parts = scope.splitn(3, ':');
            let (kind, name, actions) = (parts.next().unwrap(), parts.next().unwrap(), parts.next().unwrap_or(""));
            let actions: Vec<String> = actions.split(',').map(|a| format!("\"{a}\"")).collect();
            format!(r#"{{"type":"{kind}","name":"{name}","actions":[{}]}}"#, actions.join(","))
        })
        .collect();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","x5c":["{}"]}}"#, base64(cert_der, false));
    let claims = format!(
        r#"{{"iss":"test-issuer","sub":"tester","aud":"test-registry","exp":{},"nbf":{},"iat":{},"jti":"{}","access":[{}]}}"#,
        now + 300,
        now - 10,
        now - 10,
        issued.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        access.join(",")
    );
    let signing_input = format!("{}.{}", base64(header.as_bytes(), true), base64(claims.as_bytes(), true));
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    openssl.stdin.take().unwrap().write_all(signing_input.as_bytes()).unwrap();
    let signature = openssl.wait_with_output().unwrap().stdout;
    let body = format!(r#"{{"token":"{signing_input}.{}"}}"#, base64(&signature, true));
    let _ = write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let Ok(b) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(if bytes[i] == b'+' { b' ' } else { bytes[i] });
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// Standard base64 (with padding), or base64url without padding (JWT).
fn base64(bytes: &[u8], url: bool) -> String {
    let alphabet: &[u8] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(alphabet[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
        if !url {
            out.push_str(&"=".repeat(3 - chunk.len()));
        }
    }
    out
}

#[test]
fn the_bearer_token_challenge_is_answered() {
    if !tools() || require_tool("openssl").is_none() {
        return;
    }
    let tokens = TokenService::start();
    let registry = RegistryServer::launch_with(free_port(), &tokens.registry_auth_yaml(), None);
    let repo = monorepo(registry.port);
    let store = Store::new();
    let empty = tempfile::tempdir().unwrap();
    let anonymous = [("DOCKER_CONFIG", empty.path().to_str().unwrap())];
    let err = build_with(&repo, &["etl", "--push"], &store, true, &anonymous).user_error().to_string();
    assert!(err.contains("refused access to flyte/etl"), "the token service wants credentials: {err}");
    assert!(!store.touched());

    let env =
        [anonymous[0], ("FLYTE_DEPLOY_REGISTRY_USERNAME", "tester"), ("FLYTE_DEPLOY_REGISTRY_PASSWORD", "s3cret")];
    let out = build_with(&repo, &["etl", "--push"], &store, true, &env).ok().to_string();
    let etl = line(&out, "etl");
    assert_eq!(etl.outcome, "built and pushed", "{out}");
    let issued = tokens.issued.load(std::sync::atomic::Ordering::SeqCst);
    let out = build_with(&repo, &["etl", "--push"], &store, true, &env).ok().to_string();
    let again = line(&out, "etl");
    assert_eq!(
        (again.outcome.as_str(), again.digest.as_str()),
        ("exists in the registry, build skipped", etl.digest.as_str())
    );
    assert!(tokens.issued.load(std::sync::atomic::Ordering::SeqCst) > issued, "the check went through a token");
}
