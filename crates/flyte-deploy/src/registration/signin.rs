//! Signing in to FlyteAdmin: which credentials a call carries and how they are obtained
//! (`FLYTE_TOKEN`; OAuth2 client credentials from the tool's variables or the user's Flyte
//! config; an external command printing a token; a person's sign-in, PKCE or device flow,
//! when the Flyte config asks for it and FlyteAdmin refuses calls without, its token kept
//! and refreshed through `oauth.rs`). Endpoints, client and scopes are discovered through
//! FlyteAdmin's AuthMetadataService where not given. Tokens and secrets are never printed.
//! Knows nothing of what is registered; `admin.rs` owns the connection.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use flyte_api::{method, service, Message};

use super::admin::{status_error, Admin};
use super::oauth;
use crate::config::flyte_config::{AuthType, FlyteConfig};
use crate::settings;

/// Credentials for a remote FlyteAdmin.
pub(crate) enum Auth {
    /// `FLYTE_TOKEN`.
    Static(String),
    /// OAuth2 client credentials, with the current token cached until shortly before expiry.
    ClientCredentials {
        token_url: String,
        client_id: String,
        secret: String,
        scopes: String,
        audience: Option<String>,
        header: String,
        http_proxy: Option<String>,
        cached: tokio::sync::Mutex<Option<(String, Instant)>>,
    },
    /// A person's sign-in (PKCE or device flow): the current token, kept between runs,
    /// refreshed shortly before it expires, a new sign-in when refreshing fails.
    Person {
        flow: AuthType,
        client: oauth::Client,
        cache: oauth::TokenCache,
        header: String,
        current: tokio::sync::Mutex<oauth::Token>,
    },
}

impl Auth {
    /// The credentials to use: `FLYTE_TOKEN`, else `FLYTE_CLIENT_ID` + `FLYTE_CLIENT_SECRET`,
    /// else what the user's Flyte config says (when it applies to this endpoint), else none.
    /// A person signs in (PKCE, device flow) only when `wants_signin`: FlyteAdmin refused a
    /// call without credentials (`flytectl config init` writes `authType: Pkce` for servers
    /// without sign-in too).
    pub(crate) async fn configure(
        admin: &Admin,
        user: Option<&FlyteConfig>,
        wants_signin: bool,
    ) -> Result<Option<Auth>> {
        if let Some(token) = settings::FLYTE_TOKEN.get() {
            crate::output::verbose(format_args!(
                "sign-in: the bearer token in {} (first in precedence)",
                settings::FLYTE_TOKEN.name
            ));
            return Ok(Some(Auth::Static(token)));
        }
        if let (Some(client_id), Some(secret)) = (settings::FLYTE_CLIENT_ID.get(), settings::FLYTE_CLIENT_SECRET.get())
        {
            crate::output::verbose(format_args!(
                "sign-in: client credentials from {} and {} ({} not set)",
                settings::FLYTE_CLIENT_ID.name,
                settings::FLYTE_CLIENT_SECRET.name,
                settings::FLYTE_TOKEN.name
            ));
            let scopes = settings::FLYTE_SCOPES.get();
            let request = TokenRequest {
                client_id,
                secret,
                token_url: settings::FLYTE_TOKEN_URL.get(),
                scopes,
                audience: settings::FLYTE_AUDIENCE.get(),
                http_proxy: user.and_then(|u| u.http_proxy_url.clone()),
            };
            return Ok(Some(Auth::client_credentials(admin, request).await?));
        }
        let Some(user) = user else {
            crate::output::verbose(
                "sign-in: none (no FLYTE_TOKEN, FLYTE_CLIENT_ID/FLYTE_CLIENT_SECRET or Flyte config for this host)",
            );
            return Ok(None);
        };
        let source = user.source();
        let refuse = |what: String, help: &str| crate::error::user(format!("{source}: {what}"), help);
        let auth_type = user.auth_type.or_else(|| {
            if !user.command.is_empty() {
                Some(AuthType::ExternalCommand)
            } else if user.client_id.is_some()
                && (user.client_secret.is_some()
                    || user.client_secret_env_var.is_some()
                    || user.client_secret_location.is_some())
            {
                Some(AuthType::ClientSecret)
            } else {
                None
            }
        });
        crate::output::verbose(match auth_type {
            Some(flow) => format!("sign-in: authType {flow:?} from {source} (no FLYTE_TOKEN or FLYTE_CLIENT_ID set)"),
            None => format!("sign-in: none ({source} names no authType, clientId or command)"),
        });
        match auth_type {
            None => Ok(None),
            Some(AuthType::ClientSecret) => {
                let client_id = user.client_id.clone().ok_or_else(|| {
                    refuse(
                        "authType ClientSecret without admin.clientId".into(),
                        "set admin.clientId (or FLYTE_CREDENTIALS_CLIENT_ID)",
                    )
                })?;
                let secret = client_secret(user)?;
                let scopes = (!user.scopes.is_empty()).then(|| user.scopes.join(" "));
                let request = TokenRequest {
                    client_id,
                    secret,
                    token_url: user.token_url.clone(),
                    scopes,
                    audience: user.audience.clone(),
                    http_proxy: user.http_proxy_url.clone(),
                };
                Ok(Some(Auth::client_credentials(admin, request).await?))
            }
            Some(AuthType::ExternalCommand) => {
                if user.command.is_empty() {
                    return Err(refuse(
                        "authType ExternalCommand without admin.command".into(),
                        "set admin.command to the argv of a program printing a token",
                    ));
                }
                let argv = user.command.clone();
                let token = tokio::task::spawn_blocking(move || external_token("admin.command", &argv))
                    .await
                    .context("joining the token command")??;
                Ok(Some(Auth::Static(token)))
            }
            Some(AuthType::Pkce | AuthType::DeviceFlow) if !wants_signin => Ok(None),
            Some(flow @ (AuthType::Pkce | AuthType::DeviceFlow)) => Ok(Some(Auth::person(admin, flow, user).await?)),
        }
    }

    /// A person's sign-in: the client, endpoints and scopes FlyteAdmin names (the Flyte
    /// config's `scopes`, `audience` and `tokenUrl` win), then a token: the kept one while
    /// good, else refreshed, else a new sign-in.
    async fn person(admin: &Admin, flow: AuthType, user: &FlyteConfig) -> Result<Auth> {
        let public = public_client_config(admin).await;
        let meta = admin
            .call_raw(method::GET_OAUTH2_METADATA, &[])
            .await
            .map_err(|s| status_error(&admin.endpoint, "discovering where to sign in (GetOAuth2Metadata)", s))?;
        let meta = service::OAuth2MetadataResponse::decode(meta.as_slice()).context("decoding OAuth2 metadata")?;
        let token_endpoint = user.token_url.clone().unwrap_or(meta.token_endpoint);
        if token_endpoint.is_empty() || (flow == AuthType::Pkce && meta.authorization_endpoint.is_empty()) {
            return Err(crate::error::user(
                format!("{}: authType {flow:?}, but FlyteAdmin at {} names no OAuth2 endpoints to sign in at", user.source(), admin.endpoint),
                "ask the FlyteAdmin operators for its sign-in settings, or use authType ClientSecret or ExternalCommand",
            ));
        }
        let nonempty = |s: String| Some(s).filter(|s| !s.is_empty());
        let client = oauth::Client {
            endpoint: admin.endpoint.clone(),
            client_id: nonempty(public.client_id.clone())
                .or_else(|| user.client_id.clone())
                .unwrap_or_else(|| flyte_sandbox::PUBLIC_CLIENT_ID.into()),
            authorization_endpoint: meta.authorization_endpoint,
            token_endpoint,
            device_authorization_endpoint: meta.device_authorization_endpoint,
            scopes: if !user.scopes.is_empty() {
                user.scopes.join(" ")
            } else if !public.scopes.is_empty() {
                public.scopes.join(" ")
            } else {
                "all".into()
            },
            audience: user.audience.clone().or_else(|| nonempty(public.audience.clone())),
            redirect_uri: public.redirect_uri.clone(),
            http_proxy: user.http_proxy_url.clone(),
        };
        let cache = oauth::TokenCache::for_client(&client);
        let (c, k) = (client.clone(), cache.clone());
        let token =
            tokio::task::spawn_blocking(move || obtain(flow, &c, &k, None)).await.context("joining the sign-in")??;
        Ok(Auth::Person { flow, client, cache, header: header_key(&public), current: tokio::sync::Mutex::new(token) })
    }

    /// The client-credentials grant, the token endpoint and scopes discovered from
    /// FlyteAdmin's auth metadata where not given.
    async fn client_credentials(admin: &Admin, request: TokenRequest) -> Result<Auth> {
        let TokenRequest { client_id, secret, token_url, scopes, audience, http_proxy } = request;
        let public = public_client_config(admin).await;
        let token_url = match token_url {
            Some(url) => url,
            None => {
                let meta = admin
                    .call_raw(method::GET_OAUTH2_METADATA, &[])
                    .await
                    .map_err(|s| status_error(&admin.endpoint, "discovering the OAuth2 token endpoint", s))?;
                let meta =
                    service::OAuth2MetadataResponse::decode(meta.as_slice()).context("decoding OAuth2 metadata")?;
                if meta.token_endpoint.is_empty() {
                    return Err(crate::error::user(
                        format!("{} names no OAuth2 token endpoint", admin.endpoint),
                        "set FLYTE_TOKEN_URL (or admin.tokenUrl in the Flyte config)",
                    ));
                }
                meta.token_endpoint
            }
        };
        let scopes = scopes
            .or_else(|| (!public.scopes.is_empty()).then(|| public.scopes.join(" ")))
            .unwrap_or_else(|| "all".into());
        let header = header_key(&public);
        Ok(Auth::ClientCredentials {
            token_url,
            client_id,
            secret,
            scopes,
            audience,
            header,
            http_proxy,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// FlyteAdmin refused the credentials `refused` (a header value [`Auth::header`] gave):
    /// true when they were a person's current token, which is then dropped so the next
    /// call refreshes it (or signs in again). Other credentials cannot be renewed here.
    pub(crate) async fn renew(&self, refused: &str) -> bool {
        let Auth::Person { client, current, .. } = self else { return false };
        let mut current = current.lock().await;
        if refused != format!("Bearer {}", current.access_token) {
            // Renewed already, by a call that was refused at the same time.
            return true;
        }
        eprintln!("FlyteAdmin at {} refused the kept sign-in: renewing it", client.endpoint);
        current.expires_at = 0;
        true
    }

    /// The metadata key and value to send.
    pub(crate) async fn header(&self) -> Result<(tonic::metadata::MetadataKey<tonic::metadata::Ascii>, String)> {
        match self {
            Auth::Static(token) => Ok(("authorization".parse().expect("valid key"), format!("Bearer {token}"))),
            Auth::ClientCredentials { token_url, client_id, secret, scopes, audience, header, http_proxy, cached } => {
                let mut cached = cached.lock().await;
                let fresh = cached.as_ref().is_some_and(|(_, until)| Instant::now() < *until);
                if !fresh {
                    let grant = Grant {
                        url: token_url.clone(),
                        id: client_id.clone(),
                        secret: secret.clone(),
                        scopes: scopes.clone(),
                        audience: audience.clone(),
                        proxy: http_proxy.clone(),
                    };
                    let token = tokio::task::spawn_blocking(move || fetch_token(&grant))
                        .await
                        .context("joining the token request")??;
                    *cached = Some(token);
                }
                let token = cached.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
                let key = header.parse().map_err(|_| anyhow!("bad authorization metadata key {header:?}"))?;
                Ok((key, format!("Bearer {token}")))
            }
            Auth::Person { flow, client, cache, header, current } => {
                let mut current = current.lock().await;
                if !current.fresh() {
                    let (flow, client, cache, old) = (*flow, client.clone(), cache.clone(), current.clone());
                    *current = tokio::task::spawn_blocking(move || obtain(flow, &client, &cache, Some(old)))
                        .await
                        .context("joining the sign-in")??;
                }
                let key = header.parse().map_err(|_| anyhow!("bad authorization metadata key {header:?}"))?;
                Ok((key, format!("Bearer {}", current.access_token)))
            }
        }
    }
}

/// FlyteAdmin's public client config (GetPublicClientConfig); empty when it has none.
async fn public_client_config(admin: &Admin) -> service::PublicClientAuthConfigResponse {
    admin
        .call_raw(method::GET_PUBLIC_CLIENT_CONFIG, &[])
        .await
        .ok()
        .and_then(|b| service::PublicClientAuthConfigResponse::decode(b.as_slice()).ok())
        .unwrap_or_default()
}

/// The metadata key FlyteAdmin wants the token under (`authorization` unless it names one).
fn header_key(public: &service::PublicClientAuthConfigResponse) -> String {
    Some(public.authorization_metadata_key.to_ascii_lowercase())
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "authorization".into())
}

/// A person's token (blocking): `current` or the kept one while fresh, else
/// refreshed with its refresh token, else a new sign-in by `flow`; kept for the next run.
fn obtain(
    flow: AuthType,
    client: &oauth::Client,
    cache: &oauth::TokenCache,
    current: Option<oauth::Token>,
) -> Result<oauth::Token> {
    let kept = current.or_else(|| cache.load());
    if let Some(token) = kept.as_ref().filter(|t| t.fresh()) {
        return Ok(token.clone());
    }
    let refreshed = match kept.and_then(|t| t.refresh_token) {
        Some(refresh) => match oauth::refresh(client, &refresh) {
            Ok(token) => Some(token),
            Err(e) => {
                eprintln!("the kept sign-in to {} could not be refreshed ({e:#}): signing in again", client.endpoint);
                cache.forget();
                None
            }
        },
        None => None,
    };
    if refreshed.is_none() && settings::in_ci() {
        // No person at a browser in CI: waiting minutes for one would only hang the job.
        return Err(crate::error::user(
            format!("FlyteAdmin at {} wants a sign-in, and authType {flow:?} needs a person at a browser, which CI has not", client.endpoint),
            "in CI use client credentials (FLYTE_CLIENT_ID and FLYTE_CLIENT_SECRET, or authType ClientSecret), an ExternalCommand, or FLYTE_TOKEN",
        ));
    }
    let token = match refreshed {
        Some(token) => token,
        None if flow == AuthType::DeviceFlow => oauth::device(client)?,
        None => oauth::pkce(client)?,
    };
    if let Err(e) = cache.store(&token) {
        eprintln!("warning: the sign-in is not kept for the next run: {e:#}");
    }
    Ok(token)
}

/// What a client-credentials grant needs; `None`s are discovered.
struct TokenRequest {
    client_id: String,
    secret: String,
    token_url: Option<String>,
    scopes: Option<String>,
    audience: Option<String>,
    /// The Flyte config's `admin.httpProxyURL`.
    http_proxy: Option<String>,
}

/// The client secret the Flyte config points at: `FLYTE_CREDENTIALS_CLIENT_SECRET`, else the
/// variable `admin.clientSecretEnvVar` names, else the file `admin.clientSecretLocation`.
fn client_secret(user: &FlyteConfig) -> Result<String> {
    let source = user.source();
    if let Some(secret) = &user.client_secret {
        return Ok(secret.clone());
    }
    if let Some(var) = &user.client_secret_env_var {
        return settings::named(var).ok_or_else(|| {
            crate::error::user(
                format!("{source}: admin.clientSecretEnvVar names {var}, which is not set"),
                format!("set {var} to the client secret"),
            )
        });
    }
    if let Some(file) = &user.client_secret_location {
        let secret = std::fs::read_to_string(file).map_err(|e| {
            crate::error::user(
                format!("{source}: admin.clientSecretLocation {}: {e}", file.display()),
                "put the client secret in that file, or fix the path",
            )
        })?;
        let secret = secret.trim();
        if secret.is_empty() {
            return Err(crate::error::user(
                format!("{source}: admin.clientSecretLocation {} is empty", file.display()),
                "put the client secret in that file",
            ));
        }
        return Ok(secret.to_string());
    }
    Err(crate::error::user(
        format!("{source}: authType ClientSecret but no secret: neither admin.clientSecretEnvVar nor admin.clientSecretLocation"),
        "set one of them (or FLYTE_CREDENTIALS_CLIENT_SECRET)",
    ))
}

/// Runs the Flyte config's `admin.command` or `admin.proxyCommand` (`key`; an argv, no shell)
/// and takes the token it prints: the last non-blank line of its output. Its stderr goes to
/// ours; the token is never shown.
pub(crate) fn external_token(key: &str, argv: &[String]) -> Result<String> {
    let (program, args) = argv.split_first().with_context(|| format!("an empty {key}"))?;
    let output = duct::cmd(program, args)
        .stdout_capture()
        .unchecked()
        .run()
        .with_context(|| format!("running {key} `{program}` for a token"))?;
    if !output.status.success() {
        bail!("{key} `{program}` failed ({}) instead of printing a token", output.status);
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let token = stdout.lines().map(str::trim).rev().find(|l| !l.is_empty()).unwrap_or_default();
    if token.is_empty() || token.contains(char::is_whitespace) {
        bail!("{key} `{program}` printed no token (expected one line holding the token)");
    }
    Ok(token.to_string())
}

/// One client-credentials grant to make.
struct Grant {
    url: String,
    id: String,
    secret: String,
    scopes: String,
    audience: Option<String>,
    /// The HTTP proxy to go through.
    proxy: Option<String>,
}

/// The client-credentials grant: a token and when to stop using it.
fn fetch_token(grant: &Grant) -> Result<(String, Instant)> {
    let Grant { url, id, secret, scopes, audience, proxy } = grant;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut form = vec![("grant_type", "client_credentials"), ("scope", scopes.as_str())];
    if let Some(audience) = audience {
        form.push(("audience", audience));
    }
    // The error names the URL and status, never the credentials.
    let response = oauth::http(proxy.as_deref())?
        .post(url)
        .set("Authorization", &format!("Basic {basic}"))
        .set("Accept", "application/json")
        .send_form(&form)
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => anyhow!("OAuth2 token request to {url}: HTTP {code}"),
            other => anyhow!("OAuth2 token request to {url}{}: {}", oauth::through(proxy.as_deref()), other.kind()),
        })?;
    let body: serde_json::Value = response.into_json().with_context(|| format!("reading the token answer of {url}"))?;
    let token = body["access_token"].as_str().ok_or_else(|| anyhow!("{url} answered without an access_token"))?;
    let lifetime = body["expires_in"].as_u64().unwrap_or(300);
    let until = Instant::now() + Duration::from_secs(lifetime.saturating_sub(lifetime / 10 + 5).max(1));
    Ok((token.to_string(), until))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_comes_from_the_variable_or_the_file_the_config_names() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("client_secret");
        std::fs::write(&file, "from-file\n").unwrap();
        let user = FlyteConfig {
            file: Some("/c.yaml".into()),
            client_id: Some("ci".into()),
            client_secret_location: Some(file.clone()),
            ..FlyteConfig::default()
        };
        assert_eq!(client_secret(&user).unwrap(), "from-file");
        // PATH is always set: the variable named wins over the file.
        let named = FlyteConfig { client_secret_env_var: Some("PATH".into()), ..user.clone() };
        assert_eq!(client_secret(&named).unwrap(), settings::PATH.get().unwrap());
        let unset =
            FlyteConfig { client_secret_env_var: Some("FLYTE_DEPLOY_TEST_NEVER_SET_42".into()), ..user.clone() };
        let err = format!("{:#}", client_secret(&unset).unwrap_err());
        assert!(err.contains("/c.yaml") && err.contains("admin.clientSecretEnvVar"), "{err}");
        let missing = FlyteConfig { client_secret_location: Some(dir.path().join("nope")), ..user.clone() };
        let err = format!("{:#}", client_secret(&missing).unwrap_err());
        assert!(err.contains("admin.clientSecretLocation") && !err.contains("from-file"), "{err}");
    }

    #[test]
    fn an_external_command_prints_the_token() {
        let argv = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            external_token("admin.command", &argv(&["sh", "-c", "echo starting >&2; echo; echo tok-123"])).unwrap(),
            "tok-123"
        );
        let err = format!(
            "{:#}",
            external_token("admin.command", &argv(&["sh", "-c", "echo tok-secret; exit 3"])).unwrap_err()
        );
        assert!(err.contains("`sh` failed") && !err.contains("tok-secret"), "{err}");
        assert!(external_token("admin.command", &argv(&["sh", "-c", "true"])).is_err());
        assert!(external_token("admin.command", &argv(&["/nonexistent/get-token"])).is_err());
    }
}
