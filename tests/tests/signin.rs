//! Sign-in against a real OAuth2/OIDC server on loopback (npm's oidc-provider, configured by
//! `tests/oidc/server.js`) and the sandbox started to require its tokens, as a FlyteAdmin
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

    // A wrong secret: the token endpoint's refusal, named, and no secret printed.
    std::fs::write(home.path().join(".flyte/secret"), "wrong-secret\n").unwrap();
    let run = repo.xtask_env(&args, &base);
    assert_ne!(run.status, Some(0));
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains(&format!("{}/token", oidc.issuer)) && !said.contains("wrong-secret"), "{said}");
}
