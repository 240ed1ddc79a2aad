//! Sign-in against a real OAuth2/OIDC server on loopback (npm's oidc-provider, configured by
//! `tests/oidc/server.mjs`) and the sandbox started to require its tokens, as a FlyteAdmin
//! with sign-in does: what the sandbox refuses and accepts, and deploys through each flow.

use flyte_api::{method, service, Message};
use flyte_deploy::registration::admin::Admin;
use serde_json::Value;
use tests::{flytekit_python, OidcServer, SandboxProcess, TempRepo};
use tonic::Code;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_requires_a_token_of_its_issuer_and_says_where_to_get_one() {
    let Some(oidc) = OidcServer::start(3600) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);

    // No token, a token that is no JWT, a JWT signed by someone else: UNAUTHENTICATED.
    let anonymous = Admin::remote(&sandbox.endpoint, None).unwrap();
    let status = anonymous.call_raw(method::GET_VERSION, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    let garbage = Admin::remote(&sandbox.endpoint, Some("not-a-token".into())).unwrap();
    assert_eq!(garbage.call_raw(method::LIST_PROJECTS, &[]).await.unwrap_err().code(), Code::Unauthenticated);
    let token = oidc.client_credentials_token();
    let (head, rest) = token.split_once('.').unwrap();
    let (payload, _signature) = rest.split_once('.').unwrap();
    let forged = format!("{head}.{payload}.{}", "A".repeat(342));
    let forged = Admin::remote(&sandbox.endpoint, Some(forged)).unwrap();
    let status = forged.call_raw(method::GET_VERSION, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    // The issuer's token: served.
    let signed_in = Admin::remote(&sandbox.endpoint, Some(token)).unwrap();
    assert!(signed_in.is_sandbox().await.unwrap());

    // How to sign in is open to all, and points at the issuer.
    let meta = anonymous.call_raw(method::GET_OAUTH2_METADATA, &[]).await.unwrap();
    let meta = service::OAuth2MetadataResponse::decode(meta.as_slice()).unwrap();
    assert_eq!(meta.issuer, oidc.issuer);
    assert_eq!(meta.token_endpoint, format!("{}/token", oidc.issuer));
    assert!(meta.authorization_endpoint.starts_with(&oidc.issuer));
    assert!(meta.device_authorization_endpoint.starts_with(&oidc.issuer));
    let public = anonymous.call_raw(method::GET_PUBLIC_CLIENT_CONFIG, &[]).await.unwrap();
    let public = service::PublicClientAuthConfigResponse::decode(public.as_slice()).unwrap();
    assert_eq!(public.client_id, flyte_sandbox::PUBLIC_CLIENT_ID);
    assert_eq!(public.audience, OidcServer::AUDIENCE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_for_another_audience_or_expired_is_refused() {
    // Tokens for one second: expired after the sandbox's leeway (5 s).
    let Some(oidc) = OidcServer::start(1) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let token = oidc.client_credentials_token();
    let admin = Admin::remote(&sandbox.endpoint, Some(token.clone())).unwrap();
    admin.call_raw(method::GET_VERSION, &[]).await.unwrap();
    // A FlyteAdmin that is another audience refuses the same token.
    let other_data = tempfile::tempdir().unwrap();
    let other = SandboxProcess::start_requiring_audience(other_data.path(), &oidc, "http://other.test");
    let status =
        Admin::remote(&other.endpoint, Some(token)).unwrap().call_raw(method::GET_VERSION, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().to_ascii_lowercase().contains("audience"), "{status:?}");
    tokio::time::sleep(std::time::Duration::from_secs(7)).await;
    let status = admin.call_raw(method::GET_VERSION, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("xpired"), "{status:?}");
}

/// The examples, deploying to a FlyteAdmin at an address (given by `FLYTE_ENDPOINT`).
fn repo() -> TempRepo {
    let repo = TempRepo::with_examples();
    repo.write(".gitignore", ".flyte/\n");
    repo.commit("ignore .flyte");
    repo
}

fn outcome(json: &Value, name: &str) -> Value {
    json["workflows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == name)
        .map_or(Value::Null, |w| w["outcome"].clone())
}

#[test]
fn client_credentials_deploy_to_a_flyteadmin_that_requires_sign_in() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let Some(oidc) = OidcServer::start(3600) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let repo = repo();
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_string_lossy().into_owned();
    let args = ["deploy", "--format", "json", "--domain", "development", "--workflow", "hello"];
    let base = [
        ("FLYTE_ENDPOINT", sandbox.endpoint.as_str()),
        ("FLYTE_DEPLOY_PYTHON", python.as_str()),
        ("HOME", home_path.as_str()),
        ("CI", "false"),
    ];

    // No credentials: UNAUTHENTICATED, with the hint saying what to configure.
    let run = repo.xtask_env(&args, &base);
    assert_ne!(run.status, Some(0), "deployed without credentials:\n{}", run.stdout);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("Unauthenticated") && said.contains("hint:") && said.contains("FLYTE_CLIENT_ID"), "{said}");

    // The tool's variables: the token endpoint and scopes discovered through FlyteAdmin.
    let (id, secret) = OidcServer::CI_CLIENT;
    let mut env = base.to_vec();
    env.extend([("FLYTE_CLIENT_ID", id), ("FLYTE_CLIENT_SECRET", secret)]);
    let json = repo.xtask_env(&args, &env).json();
    assert_eq!(outcome(&json, "hello"), "registered", "{json:#}");

    // The Flyte config as a platform team writes it: authType ClientSecret, the secret in a
    // file; applies because it names the endpoint's host.
    std::fs::create_dir_all(home.path().join(".flyte")).unwrap();
    std::fs::write(home.path().join(".flyte/secret"), format!("{secret}\n")).unwrap();
    let config = format!(
        "admin:\n  endpoint: dns:///{}\n  insecure: true\n  authType: ClientSecret\n  clientId: {id}\n  clientSecretLocation: {}\n",
        sandbox.host_port(),
        home.path().join(".flyte/secret").display()
    );
    std::fs::write(home.path().join(".flyte/config.yaml"), config).unwrap();
    let json = repo.xtask_env(&args, &base).json();
    assert_eq!(outcome(&json, "hello"), "already-registered", "{json:#}");

    // A token the FlyteAdmin refuses (it is another audience): said so, with a hint that is
    // not "configure credentials".
    let other_data = tempfile::tempdir().unwrap();
    let other = SandboxProcess::start_requiring_audience(other_data.path(), &oidc, "http://other.test");
    let mut to_other = env.clone();
    to_other[0].1 = other.endpoint.as_str();
    let run = repo.xtask_env(&args, &to_other);
    assert_ne!(run.status, Some(0), "a token for another audience deployed");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("credentials sent were refused") && said.contains("audience"), "{said}");
    assert!(!said.contains("set admin.authType"), "{said}");

    // A wrong secret: the token endpoint's refusal, named, and no secret printed.
    std::fs::write(home.path().join(".flyte/secret"), "wrong-secret\n").unwrap();
    let run = repo.xtask_env(&args, &base);
    assert_ne!(run.status, Some(0));
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains(&format!("{}/token", oidc.issuer)) && !said.contains("wrong-secret"), "{said}");
}

/// A person's setup: a HOME whose Flyte config names the sandbox with `authType`, the tool's
/// folder (where tokens are kept) of its own, and a "browser": a program that logs each call
/// and hands the URL to `tests/oidc/browser.mjs`.
struct Person {
    home: tempfile::TempDir,
    /// Node, which runs the browser's script.
    node: std::path::PathBuf,
}

impl Person {
    fn new(sandbox: &SandboxProcess, auth_type: &str) -> Option<Person> {
        let node = tests::require_tool("node")?;
        let home = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(home.path().join(".flyte")).unwrap();
        let config =
            format!("admin:\n  endpoint: dns:///{}\n  authType: {auth_type}\n  insecure: true\n", sandbox.host_port());
        std::fs::write(home.path().join(".flyte/config.yaml"), config).unwrap();
        let browser = home.path().join("browser");
        let script = format!(
            "#!/bin/sh\necho \"$1\" >> '{log}'\nexec '{node}' '{js}' \"$1\" 2>> '{log}.err'\n",
            log = home.path().join("browser.log").display(),
            node = node.display(),
            js = tests::project_root().join("tests/oidc/browser.mjs").display()
        );
        std::fs::write(&browser, script).unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
        Some(Person { home, node })
    }

    fn env(&self, python: &str) -> Vec<(String, String)> {
        let home = self.home.path();
        [
            ("HOME", home.to_string_lossy().into_owned()),
            ("FLYTE_DEPLOY_HOME", home.join("tool").to_string_lossy().into_owned()),
            ("FLYTE_DEPLOY_BROWSER", home.join("browser").to_string_lossy().into_owned()),
            ("FLYTE_DEPLOY_PYTHON", python.to_string()),
            ("CI", "false".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// How often the browser was opened.
    fn browser_calls(&self) -> usize {
        std::fs::read_to_string(self.home.path().join("browser.log")).map_or(0, |log| log.lines().count())
    }

    /// The one kept token file.
    fn token_file(&self) -> std::path::PathBuf {
        let dir = self.home.path().join("tool/tokens");
        let files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        assert_eq!(files.len(), 1, "{files:?}");
        files[0].clone()
    }

    fn token(&self) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.token_file()).unwrap()).unwrap()
    }

    fn set_token(&self, token: &Value) {
        std::fs::write(self.token_file(), token.to_string()).unwrap();
    }
}

/// The examples with `[flyte] endpoint = "flyte-config"`: endpoint and sign-in from the
/// person's Flyte config.
fn repo_using_flyte_config() -> TempRepo {
    let repo = repo();
    let toml = std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap();
    assert!(toml.contains("endpoint = \"sandbox\""));
    repo.write("deploy.toml", &toml.replace("endpoint = \"sandbox\"", "endpoint = \"flyte-config\""));
    repo.commit("endpoint from the Flyte config");
    repo
}

fn deploy(repo: &TempRepo, env: &[(String, String)]) -> tests::Run {
    let args = ["deploy", "--format", "json", "--domain", "development", "--workflow", "hello"];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    repo.xtask_env(&args, &env)
}

#[test]
fn pkce_signs_in_through_the_browser_once_then_keeps_and_refreshes_the_token() {
    use std::os::unix::fs::PermissionsExt as _;
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let Some(oidc) = OidcServer::start(3600) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let Some(person) = Person::new(&sandbox, "Pkce") else { return };
    let repo = repo_using_flyte_config();
    let env = person.env(&python);

    // First deploy: the sign-in URL on stderr, the browser opened once, the token kept 0600.
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "registered", "{}", run.stderr);
    let url = format!("{}/auth?", oidc.issuer);
    assert!(run.stderr.contains("Sign in to FlyteAdmin at") && run.stderr.contains(&url), "{}", run.stderr);
    assert!(run.stderr.contains("code_challenge_method=S256"), "{}", run.stderr);
    assert_eq!(person.browser_calls(), 1);
    let mode = std::fs::metadata(person.token_file()).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "the token file's mode");
    let kept = person.token();
    let access = kept["access_token"].as_str().unwrap().to_string();
    assert!(kept["refresh_token"].is_string(), "a refresh token is kept");
    assert!(!run.stdout.contains(&access) && !run.stderr.contains(&access), "the token was printed");

    // Second deploy: the kept token, no sign-in.
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
    assert_eq!(person.browser_calls(), 1, "signed in again:\n{}", run.stderr);
    assert!(!run.stderr.contains("Sign in to"), "{}", run.stderr);

    // A kept token about to expire is refreshed with its refresh token, without the browser.
    let mut expiring = person.token();
    expiring["expires_at"] = serde_json::json!(1);
    person.set_token(&expiring);
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
    assert_eq!(person.browser_calls(), 1, "signed in instead of refreshing:\n{}", run.stderr);
    assert_ne!(person.token()["access_token"].as_str().unwrap(), access, "a new token is kept");

    // A kept token FlyteAdmin refuses though unexpired (revoked, or its keys changed): renewed
    // with the refresh token once, without the browser.
    let mut refused = person.token();
    refused["access_token"] = serde_json::json!("eyJhbGciOiJSUzI1NiIsImtpZCI6Im5vIn0.e30.AAAA");
    person.set_token(&refused);
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
    assert!(run.stderr.contains("refused the kept sign-in"), "{}", run.stderr);
    assert_eq!(person.browser_calls(), 1, "signed in instead of refreshing:\n{}", run.stderr);

    // A refresh the server refuses: a new sign-in in the browser.
    let mut broken = person.token();
    broken["expires_at"] = serde_json::json!(1);
    broken["refresh_token"] = serde_json::json!("not-a-refresh-token");
    person.set_token(&broken);
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
    assert!(run.stderr.contains("could not be refreshed"), "{}", run.stderr);
    assert_eq!(person.browser_calls(), 2);
}

#[test]
fn the_device_flow_shows_a_code_and_waits_for_the_person_to_enter_it() {
    use std::io::BufRead;
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let Some(oidc) = OidcServer::start(3600) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let Some(person) = Person::new(&sandbox, "DeviceFlow") else { return };
    let repo = repo_using_flyte_config();
    let env = person.env(&python);

    // In CI nobody can enter a code: exit 2 at once, saying what CI should use instead.
    let mut in_ci = env.clone();
    in_ci.retain(|(k, _)| k != "CI");
    in_ci.push(("CI".into(), "true".into()));
    let said = deploy(&repo, &in_ci).user_error().to_string();
    assert!(said.contains("needs a person at a browser") && said.contains("FLYTE_CLIENT_ID"), "{said}");

    let started = std::time::Instant::now();
    let mut child = std::process::Command::new(tests::xtask_bin())
        .current_dir(repo.path())
        .args(["deploy", "--format", "json", "--domain", "development", "--workflow", "hello"])
        .env("FLYTE_DEPLOY_ENVS", tests::envs_dir())
        .env_remove("FLYTE_ENDPOINT")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let stdout = std::thread::spawn(move || std::io::read_to_string(stdout).unwrap());
    let mut said = String::new();
    let mut complete = None;
    for line in std::io::BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        said.push_str(&line);
        said.push('\n');
        if let Some(url) = line.trim().strip_prefix("(or open ").and_then(|l| l.strip_suffix(')')) {
            complete = Some(url.to_string());
            // The person enters the code on the verification page, in another browser.
            let entered = std::process::Command::new(&person.node)
                .arg(tests::project_root().join("tests/oidc/browser.mjs"))
                .arg(url)
                .output()
                .unwrap();
            assert!(entered.status.success(), "{}", String::from_utf8_lossy(&entered.stderr));
            assert!(String::from_utf8_lossy(&entered.stderr).contains("Sign-in Success"));
        }
    }
    let status = child.wait().unwrap();
    let stdout = stdout.join().unwrap();
    assert!(status.success(), "{said}\n{stdout}");
    let complete = complete.unwrap_or_else(|| panic!("no verification URL on stderr:\n{said}"));
    assert!(complete.starts_with(&format!("{}/device", oidc.issuer)), "{complete}");
    assert!(said.contains("enter the code"), "{said}");
    let json: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(outcome(&json, "hello"), "registered", "{json:#}");
    assert_eq!(person.browser_calls(), 0, "the device flow opened a browser");
    eprintln!("device sign-in and deploy took {:?}", started.elapsed());

    // Kept: the next deploy shows no code.
    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
    assert!(!run.stderr.contains("enter the code"), "{}", run.stderr);
}

#[test]
fn a_token_from_flyte_token_or_an_external_command_is_sent_as_is() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let Some(oidc) = OidcServer::start(3600) else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let repo = repo_using_flyte_config();
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_string_lossy().into_owned();
    let token = oidc.client_credentials_token();
    let token_file = home.path().join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    std::fs::create_dir_all(home.path().join(".flyte")).unwrap();
    let config = format!(
        "admin:\n  endpoint: dns:///{}\n  insecure: true\n  authType: ExternalCommand\n  command: [\"cat\", \"{}\"]\n",
        sandbox.host_port(),
        token_file.display()
    );
    std::fs::write(home.path().join(".flyte/config.yaml"), config).unwrap();
    let env = [("HOME", home_path.clone()), ("FLYTE_DEPLOY_PYTHON", python.clone()), ("CI", "false".into())];
    let env: Vec<(String, String)> = env.into_iter().map(|(k, v)| (k.to_string(), v)).collect();

    let run = deploy(&repo, &env);
    assert_eq!(outcome(&run.json(), "hello"), "registered", "{}", run.stderr);
    assert!(!run.stdout.contains(&token) && !run.stderr.contains(&token), "the token was printed");

    // FLYTE_TOKEN wins over the file's command (which now prints a refused token).
    std::fs::write(&token_file, "not-a-jwt\n").unwrap();
    let run = deploy(&repo, &env);
    assert_ne!(run.status, Some(0), "a refused token deployed");
    let mut with_variable = env.clone();
    with_variable.push(("FLYTE_TOKEN".into(), token));
    let run = deploy(&repo, &with_variable);
    assert_eq!(outcome(&run.json(), "hello"), "already-registered", "{}", run.stderr);
}

#[test]
fn a_sandbox_whose_issuer_cannot_be_read_does_not_start_exit_2() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(tests::xtask_bin())
        .args(["sandbox", "--addr", "127.0.0.1:0", "--data"])
        .arg(data.path())
        .args(["--require-token", &issuer, "--token-audience", OidcServer::AUDIENCE])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{said}");
    assert!(said.contains("--require-token") && said.contains(&issuer) && said.contains("refused"), "{said}");
    // Half the option is a usage error too.
    let out =
        std::process::Command::new(tests::xtask_bin()).args(["sandbox", "--require-token", &issuer]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// tinyproxy on a free loopback port, logging each request; stopped on drop.
struct HttpProxy {
    child: std::process::Child,
    url: String,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl HttpProxy {
    fn start() -> Option<HttpProxy> {
        let program = tests::require_tool("tinyproxy")?;
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = dir.path().join("tinyproxy.log");
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 60\nMaxClients 20\nAllow 127.0.0.1\nLogLevel Info\nLogFile \"{}\"\n",
                log.display()
            ),
        )
        .unwrap();
        let child = std::process::Command::new(program)
            .args(["-d", "-c"])
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting tinyproxy");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(started.elapsed().as_secs() < 20, "tinyproxy never listened on {port}");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(HttpProxy { child, url: format!("http://127.0.0.1:{port}"), log, _dir: dir })
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for HttpProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `admin.httpProxyURL`: the OAuth2 requests (here the client-credentials grant) go through
/// the proxy the Flyte config names, a real one; a proxy that is not there is named.
#[test]
fn oauth_requests_go_through_the_http_proxy_the_flyte_config_names() {
    let Some(python) = flytekit_python() else { return };
    let python = python.to_string_lossy().into_owned();
    let Some(oidc) = OidcServer::start(3600) else { return };
    let Some(proxy) = HttpProxy::start() else { return };
    let data = tempfile::tempdir().unwrap();
    let sandbox = SandboxProcess::start_requiring_token(data.path(), &oidc);
    let repo = repo();
    let home = tempfile::tempdir().unwrap();
    let home_path = home.path().to_string_lossy().into_owned();
    let (id, secret) = OidcServer::CI_CLIENT;
    let config = |proxy_url: &str| {
        std::fs::create_dir_all(home.path().join(".flyte")).unwrap();
        std::fs::write(home.path().join(".flyte/secret"), format!("{secret}\n")).unwrap();
        let text = format!(
            "admin:\n  endpoint: dns:///{}\n  insecure: true\n  authType: ClientSecret\n  clientId: {id}\n  \
             clientSecretLocation: {}\n  httpProxyURL: {proxy_url}\n",
            sandbox.host_port(),
            home.path().join(".flyte/secret").display()
        );
        std::fs::write(home.path().join(".flyte/config.yaml"), text).unwrap();
    };
    let args = ["deploy", "--format", "json", "--domain", "development", "--workflow", "hello"];
    let env = [
        ("FLYTE_ENDPOINT", sandbox.endpoint.as_str()),
        ("FLYTE_DEPLOY_PYTHON", python.as_str()),
        ("HOME", home_path.as_str()),
        ("CI", "false"),
    ];
    config(&proxy.url);
    let json = repo.xtask_env(&args, &env).json();
    assert_eq!(outcome(&json, "hello"), "registered", "{json:#}");
    let issuer = oidc.issuer.trim_start_matches("http://").trim_end_matches('/').to_string();
    let host_port = issuer.split('/').next().unwrap().to_string();
    assert!(proxy.log().contains(&host_port), "the token request did not go through the proxy:\n{}", proxy.log());

    // A proxy that is not there: the token request fails, naming it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let gone = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    config(&gone);
    let run = repo.xtask_env(&args, &env);
    assert_ne!(run.status, Some(0), "deployed through a proxy that is not there");
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains(&format!("through the proxy {gone}")), "{said}");
}
