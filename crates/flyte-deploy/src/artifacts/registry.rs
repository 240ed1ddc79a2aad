//! Whether an image exists: the OCI distribution API over HTTP (`HEAD /v2/<name>/manifests/<tag>`),
//! anonymous or with credentials, including the Bearer token challenge. Owns image references,
//! registry addresses and credentials; never runs a builder and never pushes.
//!
//! - Scheme: plain `http` for registries on loopback (`localhost`, `127.*`, `[::1]`, any port)
//!   and for those listed in `FLYTE_DEPLOY_INSECURE_REGISTRIES` (comma-separated `host[:port]`);
//!   `https` for every other registry.
//! - Credentials, first found wins: `FLYTE_DEPLOY_REGISTRY_USERNAME` and
//!   `FLYTE_DEPLOY_REGISTRY_PASSWORD` (for every registry); else Docker's `config.json`
//!   (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) as the `docker_credential`
//!   crate reads it: the registry's credential helper (`credHelpers`, else `credsStore`, run
//!   as `docker-credential-<name> get`), else its `auths` entry (`auth` = base64
//!   `user:password`, `username` and `password`, or an `identitytoken`, exchanged at the
//!   token service as Docker does); else anonymous.
//!
//! The HTTP exchange is written here, on the ureq agent the tool already uses for uploads,
//! rather than through an OCI client crate: it is one HEAD request, a challenge and a token
//! request. `oci-client` 0.18 does the same exchange (`fetch_manifest_digest`), but
//! asynchronously, through reqwest 0.13: `cargo tree -e normal` of it with
//! `rustls-tls-no-provider` (ring, no OpenSSL) and `docker_credential` lists 138 crates, 53
//! of them not among this crate's 212 (reqwest, hyper-rustls, rustls-platform-verifier,
//! oci-spec's derive_builder, darling, strum, getset and konst macros, chrono, and a second
//! sha2, digest and base64; hyper 1 and http 1 too, which a current tonic would share). The
//! credentials, which are generic, come from `docker_credential` (one crate, no new
//! dependencies).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use base64::Engine as _;

use crate::error;
use crate::settings::{self, Var};

/// Media types asked for: a tag may name an OCI index or manifest, or a Docker manifest list
/// or schema-2 manifest.
pub(crate) const MANIFEST_MEDIA_TYPES: &str = "application/vnd.oci.image.index.v1+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.docker.distribution.manifest.v2+json";

/// Env var: extra registries (comma-separated `host[:port]`) spoken to over plain http and
/// pushed to without TLS verification.
pub(crate) const INSECURE_REGISTRIES_ENV: Var = settings::FLYTE_DEPLOY_INSECURE_REGISTRIES;
/// Env vars: credentials for every registry (both must be set).
pub(crate) const USERNAME_ENV: Var = settings::FLYTE_DEPLOY_REGISTRY_USERNAME;
pub(crate) const PASSWORD_ENV: Var = settings::FLYTE_DEPLOY_REGISTRY_PASSWORD;

/// An image reference split as the registry API needs it:
/// `127.0.0.1:5000/flyte/etl:3f2a` → registry `127.0.0.1:5000`, repository `flyte/etl`, tag `3f2a`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// `host[:port]` as written (`docker.io` for Docker Hub references).
    pub registry: String,
    /// The repository name inside the registry.
    pub repository: String,
    pub tag: String,
}

impl ImageRef {
    /// Parses `[registry/]name[:tag]` with Docker's rules: the first component is a registry
    /// when it contains `.` or `:` or is `localhost`; otherwise the image is on Docker Hub.
    /// A digest reference (`@sha256:…`) is refused: existence is checked by tag.
    pub fn parse(reference: &str) -> Result<ImageRef> {
        let bad = |why: &str| {
            error::user(
                format!("image reference '{reference}' {why}"),
                "write it as registry/name:tag, e.g. localhost:5000/flyte/etl:1a2b3c",
            )
        };
        if reference.is_empty() || reference.chars().any(|c| c.is_whitespace()) {
            return Err(bad("is empty or contains whitespace"));
        }
        if reference.contains('@') {
            return Err(bad("names a digest; a tag is needed"));
        }
        let (name, tag) = match reference.rfind(':') {
            Some(i) if !reference[i..].contains('/') => (&reference[..i], &reference[i + 1..]),
            _ => (reference, "latest"),
        };
        if tag.is_empty() || name.is_empty() || name.ends_with('/') || name.starts_with('/') {
            return Err(bad("is incomplete"));
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), rest.to_string())
            }
            Some(_) => ("docker.io".to_string(), name.to_string()),
            None => ("docker.io".to_string(), format!("library/{name}")),
        };
        if repository.is_empty() || repository.split('/').any(str::is_empty) {
            return Err(bad("has an empty path component"));
        }
        Ok(ImageRef { registry, repository, tag: tag.to_string() })
    }

    /// The host the API is served from (Docker Hub's API lives at `registry-1.docker.io`).
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }

    /// The manifest URL of the tag.
    pub fn manifest_url(&self) -> String {
        format!("{}://{}/v2/{}/manifests/{}", scheme(&self.registry), self.api_host(), self.repository, self.tag)
    }
}

impl std::fmt::Display for ImageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}:{}", self.registry, self.repository, self.tag)
    }
}

/// True for registries on loopback: reachable only from this machine, so plain http and no
/// TLS verification are safe.
pub(crate) fn is_loopback(registry: &str) -> bool {
    let host = host_of(registry);
    host == "localhost" || host == "::1" || host.starts_with("127.")
}

/// True when the registry is spoken to without TLS: loopback, or listed in
/// `FLYTE_DEPLOY_INSECURE_REGISTRIES`.
pub(crate) fn is_insecure(registry: &str) -> bool {
    is_loopback(registry) || insecure_listed(registry, INSECURE_REGISTRIES_ENV.get().as_deref())
}

fn insecure_listed(registry: &str, list: Option<&str>) -> bool {
    list.unwrap_or_default()
        .split(',')
        .map(str::trim)
        .any(|r| !r.is_empty() && (r == registry || r == host_of(registry)))
}

/// `http` or `https` for a registry (see the module header).
pub(crate) fn scheme(registry: &str) -> &'static str {
    if is_insecure(registry) {
        "http"
    } else {
        "https"
    }
}

/// The host without the port (`[::1]:5000` → `::1`).
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    registry.rsplit_once(':').map_or(registry, |(h, _)| h)
}

/// A user name and password for a registry.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Credentials {
    pub username: String,
    pub password: String,
    /// The Docker config.json they came from (`None`: from the environment).
    pub file: Option<PathBuf>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let from = self.file.as_ref().map_or(USERNAME_ENV.to_string(), |f| f.display().to_string());
        write!(f, "Credentials({} from {from})", self.username)
    }
}

impl Credentials {
    /// A Docker config.json text holding only these credentials for `registry` (for builders
    /// given credentials from the environment).
    pub(crate) fn docker_config(&self, registry: &str) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        let auth = base64::engine::general_purpose::STANDARD.encode(raw);
        serde_json::json!({"auths": {registry: {"auth": auth}}}).to_string()
    }

    fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))
    }
}

/// Credentials for `registry` from the environment or Docker's config.json (module header).
pub(crate) fn credentials_for(registry: &str) -> Result<Option<Credentials>> {
    if let (Some(username), Some(password)) = (USERNAME_ENV.get(), PASSWORD_ENV.get()) {
        return Ok(Some(Credentials { username, password, file: None }));
    }
    let Some(file) = docker_config_path() else { return Ok(None) };
    let text = match std::fs::read_to_string(&file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("reading {}", file.display())),
    };
    credentials_in_docker_config(&file, &text, registry)
}

fn docker_config_path() -> Option<PathBuf> {
    if let Some(dir) = settings::DOCKER_CONFIG.get_os() {
        return Some(Path::new(&dir).join("config.json"));
    }
    settings::HOME.get_os().map(|h| Path::new(&h).join(".docker/config.json"))
}

/// Docker Hub's name in Docker's config.json and to credential helpers.
const DOCKER_HUB_SERVER: &str = "https://index.docker.io/v1/";

/// The user name Docker's credential helpers give for an identity token (a refresh token
/// for the registry's token service), whose password is the token.
const IDENTITY_TOKEN_USER: &str = "<token>";

/// The credentials a Docker config.json holds for `registry`, read by the `docker_credential`
/// crate: `credHelpers` and `credsStore` (running `docker-credential-<helper> get`), identity
/// tokens, and `auths` entries (`auth`, or `username` and `password`), whose keys may carry a
/// scheme and a path (`https://index.docker.io/v1/`); Docker Hub answers to several names. A
/// helper that has no credentials for the registry means none.
pub(crate) fn credentials_in_docker_config(file: &Path, text: &str, registry: &str) -> Result<Option<Credentials>> {
    // Parsed here first for an error naming the line (the crate only says it cannot read it).
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(text) {
        return Err(error::user(
            format!("{}:{}:{}: not valid JSON: {e}", file.display(), e.line(), e.column()),
            "fix the file (`docker login` writes it), or point DOCKER_CONFIG at another folder",
        ));
    }
    let servers: &[&str] = match registry {
        "docker.io" | "index.docker.io" | "registry-1.docker.io" => &[DOCKER_HUB_SERVER, "docker.io"],
        _ => &[registry],
    };
    let from = Some(file.to_path_buf());
    for server in servers {
        use docker_credential::{CredentialRetrievalError as Why, DockerCredential};
        let (username, password) = match docker_credential::get_credential_from_reader(text.as_bytes(), server) {
            Ok(DockerCredential::UsernamePassword(u, p)) => (u, p),
            Ok(DockerCredential::IdentityToken(token)) => (IDENTITY_TOKEN_USER.to_string(), token),
            Err(Why::NoCredentialConfigured) => continue,
            // What helpers answer for a registry they hold nothing for.
            Err(Why::HelperFailure { stdout, stderr, .. })
                if [&stdout, &stderr].iter().any(|t| t.to_lowercase().contains("credentials not found")) =>
            {
                continue
            }
            Err(Why::HelperFailure { helper, stdout, stderr }) => {
                return Err(error::user(
                    format!(
                        "{}: the credential helper {helper} failed for {registry}: {}",
                        file.display(),
                        format!("{stderr} {stdout}").trim()
                    ),
                    format!("log in again (`docker login {registry}`), or set {USERNAME_ENV} and {PASSWORD_ENV}"),
                ))
            }
            Err(Why::HelperCommunicationError) => {
                return Err(error::user(
                    format!("{}: the credential helper for {registry} could not be run", file.display()),
                    "install the `docker-credential-<name>` program the file names (credHelpers, credsStore) \
                     on PATH, or remove it from the file",
                ))
            }
            Err(e) => {
                return Err(error::user(
                    format!("{}: the credentials for '{server}' cannot be read: {e}", file.display()),
                    format!("log in again with `docker login`, or set {USERNAME_ENV} and {PASSWORD_ENV}"),
                ))
            }
        };
        return Ok(Some(Credentials { username, password, file: from }));
    }
    Ok(None)
}

/// A `WWW-Authenticate` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Challenge {
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
    Basic,
    Other(String),
}

/// Parses `Bearer realm="…",service="…",scope="…"` (values quoted or bare; a quoted value may
/// hold commas) or `Basic realm="…"`.
pub(crate) fn parse_challenge(header: &str) -> Challenge {
    let header = header.trim();
    let (kind, rest) = header.split_once(char::is_whitespace).unwrap_or((header, ""));
    if kind.eq_ignore_ascii_case("basic") {
        return Challenge::Basic;
    }
    if !kind.eq_ignore_ascii_case("bearer") {
        return Challenge::Other(header.to_string());
    }
    let params = challenge_params(rest);
    let get = |k: &str| params.iter().find(|(key, _)| key.eq_ignore_ascii_case(k)).map(|(_, v)| v.clone());
    match get("realm") {
        Some(realm) => Challenge::Bearer { realm, service: get("service"), scope: get("scope") },
        None => Challenge::Other(header.to_string()),
    }
}

fn challenge_params(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ',')).collect();
        if key.is_empty() {
            break;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect::<String>().trim().to_string();
        }
        out.push((key.trim().to_string(), value));
    }
    out
}

/// Talks to registries: one HTTP agent, credentials looked up per registry.
pub struct Registry {
    agent: ureq::Agent,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl Registry {
    pub fn new() -> Registry {
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .user_agent(concat!("flyte-deploy/", env!("CARGO_PKG_VERSION")))
            .redirects(5)
            .build();
        Registry { agent }
    }

    /// The digest of the manifest the tag names (`Some("")` when the registry does not say
    /// it), or `None` when the registry has no such tag or repository. An unreachable
    /// registry, or one refusing our credentials, is a user error naming it.
    pub fn manifest_digest(&self, image: &ImageRef) -> Result<Option<String>> {
        let url = image.manifest_url();
        let mut response = self.head(image, &url, None)?;
        let mut credentials = None;
        if let Answer::Status(401, challenge) = &response {
            credentials = credentials_for(&image.registry)?;
            let authorization = self.authorize(image, challenge.as_deref(), credentials.as_ref())?;
            response = self.head(image, &url, Some(&authorization))?;
        }
        match response {
            Answer::Found(digest) => Ok(Some(digest)),
            Answer::Status(404, _) => Ok(None),
            Answer::Status(code @ (401 | 403), _) => Err(refused(image, code, credentials.as_ref())),
            Answer::Status(code, _) => {
                anyhow::bail!("registry {} answered HTTP {code} to HEAD {url}", image.registry)
            }
        }
    }

    fn head(&self, image: &ImageRef, url: &str, authorization: Option<&str>) -> Result<Answer> {
        let mut request = self.agent.head(url).set("Accept", MANIFEST_MEDIA_TYPES);
        if let Some(a) = authorization {
            request = request.set("Authorization", a);
        }
        match request.call() {
            Ok(r) => Ok(Answer::Found(r.header("Docker-Content-Digest").unwrap_or_default().to_string())),
            Err(ureq::Error::Status(code, r)) => {
                Ok(Answer::Status(code, r.header("WWW-Authenticate").map(String::from)))
            }
            Err(ureq::Error::Transport(t)) => Err(unreachable(image, url, &t)),
        }
    }

    /// The `Authorization` header value answering a 401 challenge.
    fn authorize(
        &self,
        image: &ImageRef,
        challenge: Option<&str>,
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        match challenge.map(parse_challenge) {
            Some(Challenge::Bearer { realm, service, scope }) => {
                let scope = scope.unwrap_or_else(|| format!("repository:{}:pull", image.repository));
                let token = self.token(image, &realm, service.as_deref(), &scope, credentials)?;
                Ok(format!("Bearer {token}"))
            }
            Some(Challenge::Basic) | None => match credentials {
                Some(c) if c.username != IDENTITY_TOKEN_USER => Ok(c.basic()),
                _ => Err(refused(image, 401, credentials)),
            },
            Some(Challenge::Other(h)) => Err(error::user(
                format!("registry {} asks for an authentication scheme this tool does not speak: {h}", image.registry),
                "use a registry with Basic or Bearer token authentication",
            )),
        }
    }

    fn token(
        &self,
        image: &ImageRef,
        realm: &str,
        service: Option<&str>,
        scope: &str,
        credentials: Option<&Credentials>,
    ) -> Result<String> {
        let answer = match credentials.filter(|c| c.username == IDENTITY_TOKEN_USER) {
            // An identity token is a refresh token: OAuth2's refresh-token grant, as Docker does.
            Some(c) => {
                let mut form = vec![
                    ("grant_type", "refresh_token"),
                    ("refresh_token", c.password.as_str()),
                    ("client_id", "flyte-deploy"),
                    ("scope", scope),
                ];
                form.extend(service.map(|s| ("service", s)));
                self.agent.post(realm).send_form(&form)
            }
            None => {
                let mut request = self.agent.get(realm).query("scope", scope);
                if let Some(s) = service {
                    request = request.query("service", s);
                }
                if let Some(c) = credentials {
                    request = request.set("Authorization", &c.basic());
                }
                request.call()
            }
        };
        let body: serde_json::Value = match answer {
            Ok(r) => r.into_json().with_context(|| format!("reading the token from {realm}"))?,
            Err(ureq::Error::Status(code @ (401 | 403), _)) => return Err(refused(image, code, credentials)),
            Err(ureq::Error::Status(code, _)) => {
                anyhow::bail!("the token service {realm} of registry {} answered HTTP {code}", image.registry)
            }
            Err(ureq::Error::Transport(t)) => return Err(unreachable(image, realm, &t)),
        };
        body.get("token")
            .or_else(|| body.get("access_token"))
            .and_then(|t| t.as_str())
            .map(String::from)
            .ok_or_else(|| anyhow::anyhow!("the token service {realm} answered without a token"))
    }
}

enum Answer {
    /// 2xx, with the `Docker-Content-Digest` header (empty when missing).
    Found(String),
    /// Any other status, with the `WWW-Authenticate` header.
    Status(u16, Option<String>),
}

fn unreachable(image: &ImageRef, url: &str, t: &ureq::Transport) -> anyhow::Error {
    let mut detail = t.kind().to_string();
    if let Some(m) = t.message() {
        detail = format!("{detail}: {m}");
    }
    if let Some(cause) = std::error::Error::source(t) {
        detail = format!("{detail}: {cause}");
    }
    error::user(
        format!("registry {} is unreachable ({url}: {detail})", image.registry),
        "start the registry or check the network, or correct `[images] registry` in deploy.toml; \
         nothing was built, pushed or registered",
    )
}

/// The registry said no. The hint names the credentials that were offered, if any: advice
/// to log in is wrong when the user did, and the set ones are what to check.
fn refused(image: &ImageRef, code: u16, offered: Option<&Credentials>) -> anyhow::Error {
    let (registry, repository) = (&image.registry, &image.repository);
    let help = match offered {
        None => format!(
            "no credentials for {registry} were found: log in (`docker login {registry}` writes \
             ~/.docker/config.json), or set {USERNAME_ENV} and {PASSWORD_ENV}"
        ),
        Some(c) if c.file.is_none() => format!(
            "the credentials in {USERNAME_ENV} (user '{}') and {PASSWORD_ENV} were offered and refused: \
             correct them, or give that user access to {repository}",
            c.username
        ),
        Some(c) => format!(
            "the credentials for {registry} in {} (user '{}') were offered and refused: log in again \
             (`docker login {registry}`), or give that user access to {repository}",
            c.file.as_deref().unwrap_or(Path::new("")).display(),
            c.username
        ),
    };
    error::user(format!("registry {registry} refused access to {repository} (HTTP {code})"), help)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_split_like_docker() {
        let r = ImageRef::parse("127.0.0.1:5000/flyte/etl:3f2a").unwrap();
        assert_eq!(
            (r.registry.as_str(), r.repository.as_str(), r.tag.as_str()),
            ("127.0.0.1:5000", "flyte/etl", "3f2a")
        );
        assert_eq!(r.manifest_url(), "http://127.0.0.1:5000/v2/flyte/etl/manifests/3f2a");
        let r = ImageRef::parse("cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31").unwrap();
        assert_eq!(r.manifest_url(), "https://cr.flyte.org/v2/flyteorg/flytekit/manifests/py3.11-1.16.31");
        let r = ImageRef::parse("python").unwrap();
        assert_eq!(r.manifest_url(), "https://registry-1.docker.io/v2/library/python/manifests/latest");
        let r = ImageRef::parse("localhost/x/y").unwrap();
        assert_eq!((r.registry.as_str(), r.tag.as_str()), ("localhost", "latest"));
        assert_eq!(r.to_string(), "localhost/x/y:latest");
        for bad in ["", "a b", "x@sha256:00", "reg.io/:t", "reg.io//x:t", "x:"] {
            assert!(error::is_user_error(&ImageRef::parse(bad).unwrap_err()), "{bad}");
        }
    }

    #[test]
    fn only_loopback_or_listed_registries_are_insecure() {
        for r in ["localhost:5000", "127.0.0.1:41000", "localhost", "[::1]:5000"] {
            assert!(is_loopback(r), "{r}");
        }
        for r in ["ghcr.io", "registry.example.com:5000", "10.0.0.1:5000", "localhost.example.com"] {
            assert!(!is_loopback(r), "{r}");
        }
        assert!(insecure_listed("reg.lan:5000", Some("other, reg.lan:5000")));
        assert!(insecure_listed("reg.lan:5000", Some("reg.lan")));
        assert!(!insecure_listed("reg.lan:5000", Some("")));
    }

    #[test]
    fn challenges_are_parsed_with_quoted_commas() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull,push""#,
        );
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:a/b:pull,push".into()),
            }
        );
        assert_eq!(parse_challenge(r#"Basic realm="Registry Realm""#), Challenge::Basic);
        assert_eq!(
            parse_challenge("bearer realm=http://h/t"),
            Challenge::Bearer { realm: "http://h/t".into(), service: None, scope: None }
        );
        assert!(matches!(parse_challenge("Negotiate"), Challenge::Other(_)));
    }

    #[test]
    fn docker_config_auths_are_matched_by_host() {
        let file = Path::new("config.json");
        let auth = base64::engine::general_purpose::STANDARD.encode("ann:s3cr:et");
        let text = format!(
            r#"{{"auths": {{"https://index.docker.io/v1/": {{"auth": "{auth}"}},
                "ghcr.io": {{"username": "bob", "password": "pw"}}, "other.io": {{}}}}}}"#
        );
        let hub = credentials_in_docker_config(file, &text, "docker.io").unwrap().unwrap();
        assert_eq!((hub.username.as_str(), hub.password.as_str()), ("ann", "s3cr:et"));
        let gh = credentials_in_docker_config(file, &text, "ghcr.io").unwrap().unwrap();
        assert_eq!((gh.username.as_str(), gh.password.as_str()), ("bob", "pw"));
        assert!(credentials_in_docker_config(file, &text, "other.io").unwrap().is_none());
        assert!(credentials_in_docker_config(file, &text, "quay.io").unwrap().is_none());
        let err = credentials_in_docker_config(file, "{", "x").unwrap_err();
        assert!(err.to_string().starts_with("config.json:1:"), "{err}");
        let err = credentials_in_docker_config(file, r#"{"auths":{"x":{"auth":"!!"}}}"#, "x").unwrap_err();
        assert!(error::is_user_error(&err));
        // An identity token is kept as Docker's helpers hand it over; a helper that cannot be
        // run is an error naming the file.
        let token = credentials_in_docker_config(file, r#"{"auths":{"acr.io":{"identitytoken":"rt"}}}"#, "acr.io");
        let token = token.unwrap().unwrap();
        assert_eq!((token.username.as_str(), token.password.as_str()), (IDENTITY_TOKEN_USER, "rt"));
        let missing = r#"{"credHelpers":{"x.io":"flyte-deploy-test-no-such-helper"}}"#;
        let err = credentials_in_docker_config(file, missing, "x.io").unwrap_err();
        assert!(error::is_user_error(&err) && err.to_string().contains("could not be run"), "{err}");
        assert!(credentials_in_docker_config(file, missing, "other.io").unwrap().is_none());
    }
}
