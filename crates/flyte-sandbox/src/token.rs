//! Bearer tokens the sandbox requires when started with [`crate::RequiredToken`], as a
//! FlyteAdmin with sign-in does: the issuer's discovery document and JWKS read once at
//! start, every call but AuthMetadataService's checked for a JWT access token signed by the
//! issuer for the audience (`authorization` or `flyte-authorization` metadata), UNAUTHENTICATED
//! otherwise. Serves the issuer's endpoints through GetOAuth2Metadata and GetPublicClientConfig.
//! Also the sandbox's front service: the token check, then the benchmark's optional delay.
//! Decides nothing about entities.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{anyhow, Context as _, Result};
use flyte_api::{method, service, Message};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use tonic::body::Body;
use tonic::codegen::{http, BoxFuture, Service};
use tonic::Status;

use crate::RequiredToken;

/// The metadata key FlyteAdmin tells clients to send their token under (its default
/// `grpcAuthorizationHeader`); `authorization` is accepted too.
pub const AUTHORIZATION_METADATA_KEY: &str = "flyte-authorization";

/// The public client FlyteAdmin names by default (flytectl's and pyflyte's PKCE and device flow).
pub const PUBLIC_CLIENT_ID: &str = "flytectl";

/// What the sandbox checks tokens against and tells clients about sign-in.
pub(crate) struct Guard {
    issuer: String,
    audience: String,
    keys: JwkSet,
    /// GetOAuth2Metadata's answer.
    pub metadata: Vec<u8>,
    /// GetPublicClientConfig's answer.
    pub public_client: Vec<u8>,
}

impl Guard {
    /// Reads the issuer's discovery document and keys (blocking: call off the runtime).
    pub(crate) fn discover(required: &RequiredToken) -> Result<Guard> {
        let issuer = required.issuer.trim_end_matches('/').to_string();
        let url = format!("{issuer}/.well-known/openid-configuration");
        let doc: serde_json::Value = ureq::get(&url)
            .call()
            .map_err(|e| anyhow!("reading the OAuth2 issuer's discovery document {url}: {}", problem(e)))?
            .into_json()
            .with_context(|| format!("{url} is not JSON"))?;
        let text = |key: &str| doc[key].as_str().unwrap_or_default().to_string();
        let list = |key: &str| -> Vec<String> {
            doc[key].as_array().into_iter().flatten().filter_map(|v| v.as_str().map(str::to_string)).collect()
        };
        let jwks_uri = text("jwks_uri");
        if jwks_uri.is_empty() {
            return Err(anyhow!("{url} names no jwks_uri: the sandbox cannot check tokens without the issuer's keys"));
        }
        let keys: JwkSet = ureq::get(&jwks_uri)
            .call()
            .map_err(|e| anyhow!("reading the OAuth2 issuer's keys {jwks_uri}: {}", problem(e)))?
            .into_json()
            .with_context(|| format!("{jwks_uri} is not a JSON Web Key Set"))?;
        let metadata = service::OAuth2MetadataResponse {
            issuer: text("issuer"),
            authorization_endpoint: text("authorization_endpoint"),
            token_endpoint: text("token_endpoint"),
            response_types_supported: list("response_types_supported"),
            scopes_supported: list("scopes_supported"),
            token_endpoint_auth_methods_supported: list("token_endpoint_auth_methods_supported"),
            jwks_uri,
            code_challenge_methods_supported: list("code_challenge_methods_supported"),
            grant_types_supported: list("grant_types_supported"),
            device_authorization_endpoint: text("device_authorization_endpoint"),
        }
        .encode_to_vec();
        let public_client = service::PublicClientAuthConfigResponse {
            client_id: PUBLIC_CLIENT_ID.into(),
            // No port: any port of the loopback address (RFC 8252 7.3), as the tests' issuer
            // allows, so sign-ins may run side by side. FlyteAdmin's default names
            // `http://localhost:53593/callback`.
            redirect_uri: "http://127.0.0.1/callback".into(),
            scopes: vec!["offline".into(), "all".into()],
            authorization_metadata_key: AUTHORIZATION_METADATA_KEY.into(),
            service_http_endpoint: String::new(),
            audience: required.audience.clone(),
        }
        .encode_to_vec();
        Ok(Guard { issuer, audience: required.audience.clone(), keys, metadata, public_client })
    }

    /// Whether a call with these headers may go on; the refusal says why.
    fn check(&self, headers: &http::HeaderMap) -> Result<(), Status> {
        let value = [AUTHORIZATION_METADATA_KEY, "authorization"]
            .iter()
            .find_map(|key| headers.get(*key))
            .ok_or_else(|| Status::unauthenticated("token is missing: send `authorization: Bearer TOKEN`"))?;
        let value = value.to_str().map_err(|_| Status::unauthenticated("the authorization value is not text"))?;
        let token = value
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, token)| token.trim())
            .ok_or_else(|| Status::unauthenticated("the authorization value is not `Bearer TOKEN`"))?;
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| Status::unauthenticated(format!("not a JWT: {e}")))?;
        let jwk = match &header.kid {
            Some(kid) => self.keys.find(kid),
            None => self.keys.keys.first(),
        }
        .ok_or_else(|| Status::unauthenticated("the token is signed with a key the issuer does not publish"))?;
        let key = DecodingKey::from_jwk(jwk).map_err(|e| Status::unauthenticated(format!("the issuer's key: {e}")))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.leeway = 5;
        jsonwebtoken::decode::<serde_json::Value>(token, &key, &validation)
            .map(|_| ())
            .map_err(|e| Status::unauthenticated(format!("the token was refused: {e}")))
    }
}

/// What went wrong with an HTTP request, without repeating its URL.
fn problem(error: ureq::Error) -> String {
    match error {
        ureq::Error::Status(code, _) => format!("HTTP {code}"),
        ureq::Error::Transport(t) => {
            let what = t.message().map_or_else(|| t.kind().to_string(), str::to_string);
            match std::error::Error::source(&t) {
                Some(cause) => format!("{what}: {cause}"),
                None => what,
            }
        }
    }
}

/// True for the calls FlyteAdmin answers without a token: how to sign in.
fn open(path: &str) -> bool {
    path == method::GET_OAUTH2_METADATA || path == method::GET_PUBLIC_CLIENT_CONFIG
}

/// The sandbox's front: each call needs a valid token when a guard is set, and then waits
/// `delay` (the benchmark's stand-in for network and database latency) before `inner`
/// answers it.
#[derive(Clone)]
pub(crate) struct Guarded<S> {
    pub inner: S,
    pub guard: Option<Arc<Guard>>,
    pub delay: std::time::Duration,
}

impl<S> Service<http::Request<Body>> for Guarded<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let mut inner = self.inner.clone();
        std::mem::swap(&mut inner, &mut self.inner);
        let refused = match &self.guard {
            Some(guard) if !open(req.uri().path()) => guard.check(req.headers()).err(),
            _ => None,
        };
        let delay = self.delay;
        Box::pin(async move {
            if let Some(status) = refused {
                return Ok(status.into_http());
            }
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            inner.call(req).await
        })
    }
}
