//! The FlyteAdmin client that registration talks to: one interface over two transports, a
//! remote FlyteAdmin (TLS by default, credentials from `signin.rs`) and the sandbox (started
//! in-process for `endpoint = "sandbox"`, or reached at an address). Create requests go out
//! as the exact bytes given (the pass-through codec); retries with backoff on UNAVAILABLE /
//! DEADLINE_EXCEEDED and transport errors. Decides nothing about what to register.
//!
//! Environment: `FLYTE_ENDPOINT` overrides `[flyte] endpoint`; the user's Flyte config
//! (`config/flyte_config.rs`) gives the CA certificate when it applies to the endpoint.
//! Connecting to a remote endpoint proves it answers gRPC within seconds, with a hint for
//! the classic mistakes (TLS vs plaintext, HTTP instead of gRPC, no credentials).

// gRPC answers are `tonic::Status`, the error type every tonic service and client uses.
#![allow(clippy::result_large_err)]

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use flyte_api::codec::RawCodec;
use flyte_api::{admin, fields, method, service, wire, Identifier, Kind, Message};
use md5::{Digest as _, Md5};
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

use super::signin::Auth;
use crate::config::flyte_config::{self, FlyteConfig};
use crate::config::Config;
use crate::settings;

/// What a create did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    New,
    /// FlyteAdmin answered ALREADY_EXISTS: identical content was there (success).
    AlreadyThere,
}

/// True for FlyteAdmin's refusal of different content under an existing identifier.
pub fn is_different_structure(status: &Status) -> bool {
    status.code() == Code::InvalidArgument && status.message().contains("with different structure already exists")
}

/// Where FlyteAdmin is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// The embedded sandbox, started in-process with its data in this directory.
    Sandbox { data: std::path::PathBuf },
    /// A gRPC endpoint: a URL with scheme (`http://` plain, `https://` TLS).
    Remote { url: String },
}

impl Address {
    /// From deploy.toml's `[flyte]` (or `FLYTE_ENDPOINT`, which wins) for the repository at
    /// `repo_root`. `dns:///host:port` and bare `host:port` use TLS unless `insecure`.
    pub fn resolve(endpoint: &str, insecure: bool, repo_root: &Path) -> Result<Address> {
        let endpoint = endpoint.trim();
        if endpoint == "sandbox" {
            return Ok(Address::Sandbox { data: repo_root.join(".flyte/sandbox") });
        }
        if let Some(problem) = crate::config::endpoint_problem(endpoint) {
            return Err(crate::error::user(
                format!("Flyte endpoint {endpoint:?} {problem}"),
                format!("{} (in deploy.toml's [flyte] endpoint, or FLYTE_ENDPOINT)", crate::config::ENDPOINT_HELP),
            ));
        }
        let scheme = if insecure { "http" } else { "https" };
        let url = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint.to_string()
        } else if let Some(rest) = endpoint.strip_prefix("dns:///") {
            format!("{scheme}://{rest}")
        } else {
            format!("{scheme}://{endpoint}")
        };
        Ok(Address::Remote { url })
    }

    /// From the configuration, with `FLYTE_ENDPOINT` taking precedence.
    pub fn from_config(config: &Config, repo_root: &Path) -> Result<Address> {
        Ok(Address::with_flyte_config(config, repo_root)?.0)
    }

    /// The address and, when it applies, the user's Flyte config (TLS and sign-in): for
    /// `endpoint = "flyte-config"`, and for an explicit endpoint on the host the file names.
    /// The file is not read for the sandbox.
    pub fn with_flyte_config(config: &Config, repo_root: &Path) -> Result<(Address, Option<FlyteConfig>)> {
        let from_env = settings::FLYTE_ENDPOINT.get();
        if let Some(problem) = from_env.as_deref().and_then(crate::config::endpoint_problem) {
            return Err(crate::error::user(
                format!("{}={:?}: the endpoint {problem}", settings::FLYTE_ENDPOINT.name, from_env.unwrap_or_default()),
                format!("{}, or unset the variable to use deploy.toml's", crate::config::ENDPOINT_HELP),
            ));
        }
        match &from_env {
            Some(e) => crate::output::verbose_once(format_args!(
                "endpoint {e:?} from {} (over deploy.toml's [flyte] endpoint {:?})",
                settings::FLYTE_ENDPOINT.name,
                config.flyte.endpoint
            )),
            None => crate::output::verbose_once(format_args!(
                "endpoint {:?} from deploy.toml's [flyte] endpoint ({} not set)",
                config.flyte.endpoint,
                settings::FLYTE_ENDPOINT.name
            )),
        }
        let endpoint = from_env.unwrap_or_else(|| config.flyte.endpoint.clone());
        if endpoint.trim() == "sandbox" {
            crate::output::verbose_once("the embedded sandbox: no TLS, no sign-in, the Flyte config is not read");
            return Ok((Address::Sandbox { data: repo_root.join(".flyte/sandbox") }, None));
        }
        Address::choose(&endpoint, config.flyte.insecure, flyte_config::load()?, repo_root)
    }

    /// The precedence, without reading anything: `flyte-config` takes endpoint and
    /// `insecure` from the user's Flyte config; any other endpoint keeps deploy.toml's
    /// `insecure` and takes TLS and sign-in from the Flyte config when it names the same host.
    pub fn choose(
        endpoint: &str,
        insecure: bool,
        user: FlyteConfig,
        repo_root: &Path,
    ) -> Result<(Address, Option<FlyteConfig>)> {
        if endpoint.trim() == FLYTE_CONFIG {
            let Some(from_file) = user.endpoint.clone() else {
                let what = if user.is_empty() {
                    "no Flyte config was found (FLYTECTL_CONFIG, ~/.flyte/config.yaml, FLYTE_PLATFORM_URL)".to_string()
                } else {
                    format!("{} names no admin.endpoint", user.source())
                };
                return Err(crate::error::user(
                    format!("[flyte] endpoint = \"flyte-config\", but {what}"),
                    "run `flytectl config init --host=HOST`, point FLYTECTL_CONFIG at your config, or set FLYTE_PLATFORM_URL",
                ));
            };
            let address = Address::resolve(&from_file, user.insecure, repo_root).map_err(|e| {
                crate::error::user(format!("{}: admin.endpoint: {e:#}", user.source()), "fix admin.endpoint")
            })?;
            crate::output::verbose_once(format_args!(
                "\"flyte-config\": endpoint {from_file:?}, TLS and sign-in from {} (FLYTE_PLATFORM_URL over admin.endpoint, \
                 FLYTE_PLATFORM_INSECURE over admin.insecure: insecure = {})",
                user.source(),
                user.insecure
            ));
            return Ok((address, Some(user)));
        }
        let address = Address::resolve(endpoint, insecure, repo_root)?;
        let same_host = user.host().is_some() && user.host() == flyte_config::host_of(endpoint);
        crate::output::verbose_once(if user.is_empty() {
            format!(
                "TLS from deploy.toml (insecure = {insecure}); no Flyte config found, so no sign-in settings from one"
            )
        } else if same_host {
            format!(
                "TLS from deploy.toml (insecure = {insecure}); CA and sign-in from {}, which names the same host",
                user.source()
            )
        } else {
            format!(
                "TLS from deploy.toml (insecure = {insecure}); {} names another host ({}), so it is not used",
                user.source(),
                user.endpoint.as_deref().unwrap_or("none")
            )
        });
        Ok((address, same_host.then_some(user)))
    }
}

/// `[flyte] endpoint = "flyte-config"`: the endpoint of the user's Flyte config.
pub const FLYTE_CONFIG: &str = "flyte-config";

/// How to retry calls that failed for transient reasons.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// The first backoff; doubled after each failure, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Deadline of each call.
    pub timeout: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 6,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
        }
    }
}

/// True for the codes worth another attempt: the server was not reached or did not answer
/// in time. Never INVALID_ARGUMENT (or any other answer).
pub fn is_transient(status: &Status) -> bool {
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded => true,
        // tonic's own client-side deadline surfaces as CANCELLED "Timeout expired".
        Code::Cancelled => status.message().contains("Timeout expired"),
        _ => false,
    }
}

/// True for failures another attempt may cure: [`is_transient`] codes and transport errors
/// (a connection reset or closed mid-call). Every call this client makes is idempotent
/// (creates answer ALREADY_EXISTS the second time), so each may be repeated.
pub fn is_retryable(status: &Status) -> bool {
    is_transient(status)
        || (std::error::Error::source(status).is_some() && !status.message().contains("grpc-status header missing"))
}

/// A connection to FlyteAdmin (remote or sandbox). Cheap to clone: clones share the
/// channel (calls are multiplexed over one HTTP/2 connection) and the in-process sandbox.
#[derive(Clone)]
pub struct Admin {
    channel: Channel,
    auth: Option<Arc<Auth>>,
    /// `proxy-authorization` for the proxy in front of FlyteAdmin (the Flyte config's
    /// `admin.proxyCommand`), sent on every call, the first included.
    proxy_authorization: Option<MetadataValue<tonic::metadata::Ascii>>,
    /// Where the calls go (for messages).
    pub endpoint: String,
    pub retry: Retry,
    /// The in-process sandbox, when this client started one; stopped when the last clone
    /// is dropped.
    sandbox: Option<Arc<flyte_sandbox::Running>>,
}

impl Admin {
    /// Connects as the repository's configuration says (starting the in-process sandbox
    /// for `endpoint = "sandbox"`, accepting the configured domains).
    pub async fn connect(config: &Config, repo_root: &Path) -> Result<Admin> {
        let domains = config.domains.iter().map(|d| d.name.value.clone()).collect();
        let (address, user) = Address::with_flyte_config(config, repo_root)?;
        match (&address, user) {
            (Address::Remote { url }, Some(user)) => Admin::connect_remote(url, Some(&user)).await,
            _ => Admin::connect_to(&address, domains).await,
        }
    }

    /// Connects to an address; `domains` are extra domains an in-process sandbox accepts.
    pub async fn connect_to(address: &Address, domains: Vec<String>) -> Result<Admin> {
        match address {
            Address::Sandbox { data } => {
                let mut options = flyte_sandbox::Options::loopback(data);
                options.extra_domains = domains;
                let running = flyte_sandbox::start(options).await.map_err(|e| {
                    super::record::damaged(e, &data.join(flyte_sandbox::DATABASE), "the embedded sandbox's database")
                })?;
                let mut admin = Admin::remote(&running.endpoint(), None)?;
                admin.sandbox = Some(Arc::new(running));
                Ok(admin)
            }
            Address::Remote { url } => Admin::connect_remote(url, None).await,
        }
    }

    /// Connects to a remote FlyteAdmin: TLS and sign-in from the tool's variables, else from
    /// the user's Flyte config; then one GetVersion proves the endpoint answers gRPC (see
    /// [`Admin::probe`]), so a wrong or hung endpoint fails here, named, within seconds.
    pub async fn connect_remote(url: &str, user: Option<&FlyteConfig>) -> Result<Admin> {
        if let Some(user) = user.filter(|u| u.insecure_skip_verify && url.starts_with("https://")) {
            return Err(crate::error::user(
                format!("{}: admin.insecureSkipVerify is true: flyte-deploy always verifies FlyteAdmin's certificate", user.source()),
                "give the server's CA in admin.caCertFilePath instead (or use plain gRPC with insecure: true on a trusted network)",
            ));
        }
        let mut admin = Admin::remote_with_ca(url, None, user.and_then(|u| u.ca_cert.as_deref()))?;
        if let Some(user) = user.filter(|u| !u.proxy_command.is_empty()) {
            let argv = user.proxy_command.clone();
            let token = tokio::task::spawn_blocking(move || super::signin::external_token("admin.proxyCommand", &argv))
                .await
                .context("joining admin.proxyCommand")??;
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| anyhow::anyhow!("admin.proxyCommand printed a token that is not ASCII"))?;
            crate::output::verbose(format_args!(
                "proxy-authorization: the token admin.proxyCommand of {} prints",
                user.source()
            ));
            admin.proxy_authorization = Some(value);
        }
        let wants_signin = admin.probe().await?;
        admin.auth = Auth::configure(&admin, user, wants_signin).await?.map(Arc::new);
        Ok(admin)
    }

    /// One GetVersion with a short deadline and no credentials: any gRPC answer (even
    /// UNAUTHENTICATED) proves a FlyteAdmin is there; silence or a transport failure ends the
    /// connection attempt with a message naming the endpoint and, where one fits, a hint.
    /// True when the answer was UNAUTHENTICATED: the server wants a signed-in caller.
    pub async fn probe(&self) -> Result<bool> {
        let started = Instant::now();
        let mut backoff = Duration::from_millis(200);
        loop {
            let attempt = async {
                let mut request = Request::new(Vec::new());
                request.set_timeout(PROBE_TIMEOUT);
                if let Some(proxy) = &self.proxy_authorization {
                    request.metadata_mut().insert("proxy-authorization", proxy.clone());
                }
                let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                grpc.ready().await.map_err(|e| Status::unavailable(format!("{e}")))?;
                let path = method::GET_VERSION.parse().map_err(|_| Status::internal("bad method path"))?;
                grpc.unary(request, path, RawCodec).await.map(|_| ())
            };
            let status = match tokio::time::timeout(PROBE_TIMEOUT, attempt).await {
                Err(_) => Status::deadline_exceeded(format!("no answer within {} s", PROBE_TIMEOUT.as_secs())),
                Ok(Ok(())) => return Ok(false),
                Ok(Err(status)) if !is_transport_failure(&status) => return Ok(status.code() == Code::Unauthenticated),
                Ok(Err(status)) => status,
            };
            let detail = status_detail(&status).to_ascii_lowercase();
            let silent = status.code() == Code::DeadlineExceeded
                || ["timeout", "timed out", "deadline"].iter().any(|t| detail.contains(t));
            // A wrong protocol will not come right; a refused or dropped connection may (a
            // server starting, a load balancer shuffling).
            let hopeless = hint(&self.endpoint, &status).is_some_and(|h| !h.starts_with("nothing listens"));
            if silent || hopeless || started.elapsed() + backoff + PROBE_TIMEOUT > CONNECT_BUDGET {
                let what = if silent {
                    format!("FlyteAdmin at {} did not answer within {} s", self.endpoint, PROBE_TIMEOUT.as_secs())
                } else {
                    format!("cannot reach FlyteAdmin at {}", self.endpoint)
                };
                return Err(status_error(&self.endpoint, &what, status));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(2));
        }
    }

    /// A client of the gRPC endpoint at `url` (no network traffic until the first call).
    pub fn remote(url: &str, auth_token: Option<String>) -> Result<Admin> {
        Admin::remote_with_ca(url, auth_token, None)
    }

    /// [`Admin::remote`] that also trusts the CA certificates (PEM) of `ca_cert`.
    pub fn remote_with_ca(url: &str, auth_token: Option<String>, ca_cert: Option<&Path>) -> Result<Admin> {
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| crate::error::user(format!("Flyte endpoint {url:?}: {e}"), "check [flyte] endpoint"))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            let host = endpoint.uri().host().unwrap_or_default().to_string();
            let mut tls = ClientTlsConfig::new().domain_name(host).with_native_roots();
            if let Some(ca) = ca_cert {
                let pem = std::fs::read(ca).map_err(|e| {
                    crate::error::user(
                        format!("admin.caCertFilePath {}: cannot read the CA certificate: {e}", ca.display()),
                        "fix caCertFilePath in the Flyte config",
                    )
                })?;
                tls = tls.ca_certificate(Certificate::from_pem(pem));
            }
            endpoint = endpoint.tls_config(tls).with_context(|| format!("setting up TLS for {url}"))?;
        }
        Ok(Admin {
            channel: endpoint.connect_lazy(),
            auth: auth_token.map(|t| Arc::new(Auth::Static(t))),
            endpoint: url.to_string(),
            retry: Retry::default(),
            sandbox: None,
            proxy_authorization: None,
        })
    }

    /// The in-process sandbox this client runs, if any.
    pub fn sandbox(&self) -> Option<&flyte_sandbox::Running> {
        self.sandbox.as_deref()
    }

    /// Stops the in-process sandbox (if any, and if this is the last clone) and waits for it.
    pub async fn close(mut self) -> Result<()> {
        if let Some(running) = self.sandbox.take().and_then(|r| Arc::try_unwrap(r).ok()) {
            running.stop().await?;
        }
        Ok(())
    }

    /// Calls `call` until it succeeds, fails for good, or the attempts run out.
    async fn with_retry<T, F, Fut>(&self, mut call: F) -> Result<T, Status>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, Status>>,
    {
        let mut backoff = self.retry.backoff;
        let mut attempt = 1;
        loop {
            match call().await {
                Err(status) if is_retryable(&status) && attempt < self.retry.attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A request with the deadline and the credentials, and the credentials' value sent.
    async fn request<T>(&self, message: T) -> Result<(Request<T>, Option<String>), Status> {
        let mut request = Request::new(message);
        request.set_timeout(self.retry.timeout);
        if let Some(proxy) = &self.proxy_authorization {
            request.metadata_mut().insert("proxy-authorization", proxy.clone());
        }
        let mut sent = None;
        if let Some(auth) = &self.auth {
            let (key, value) = auth.header().await.map_err(|e| Status::unauthenticated(format!("{e:#}")))?;
            let metadata =
                MetadataValue::try_from(&value).map_err(|_| Status::unauthenticated("token is not ASCII"))?;
            request.metadata_mut().insert(key, metadata);
            sent = Some(value);
        }
        Ok((request, sent))
    }

    /// One unary call with the pass-through codec: `message` bytes out, response bytes back.
    /// A person's token FlyteAdmin refuses (revoked, or its keys changed) is renewed once,
    /// and the call repeated.
    pub async fn call_raw(&self, method: &str, message: &[u8]) -> Result<Vec<u8>, Status> {
        let sent = std::sync::Mutex::new(None);
        let mut result = self.call_raw_once(method, message, &sent).await;
        let refused = sent.lock().ok().and_then(|s| s.clone());
        if let (Err(status), Some(auth), Some(refused)) = (&result, &self.auth, refused) {
            if status.code() == Code::Unauthenticated && auth.renew(&refused).await {
                result = self.call_raw_once(method, message, &sent).await;
            }
        }
        let sent_any = refused_sent(&sent, &self.auth);
        result.map_err(|status| match status.code() {
            Code::Unauthenticated if sent_any => {
                Status::unauthenticated(format!("{} ({CREDENTIALS_REFUSED})", status.message()))
            }
            _ => status,
        })
    }

    /// [`Admin::call_raw`] with its retries; `sent` is left holding the credentials' value of
    /// the last attempt.
    async fn call_raw_once(
        &self,
        method: &str,
        message: &[u8],
        sent: &std::sync::Mutex<Option<String>>,
    ) -> Result<Vec<u8>, Status> {
        let path: tonic::codegen::http::uri::PathAndQuery =
            method.parse().map_err(|_| Status::internal(format!("bad method path {method}")))?;
        self.with_retry(|| {
            let path = path.clone();
            async move {
                let (request, value) = self.request(message.to_vec()).await?;
                if let Ok(mut sent) = sent.lock() {
                    *sent = value;
                }
                let mut grpc = tonic::client::Grpc::new(self.channel.clone());
                grpc.ready().await.map_err(|e| Status::unavailable(format!("{}: {e}", self.endpoint)))?;
                Ok(grpc.unary(request, path, RawCodec).await?.into_inner())
            }
        })
        .await
    }

    /// FlyteAdmin's version answer.
    pub async fn version(&self) -> Result<admin::Version> {
        let bytes =
            self.call_raw(method::GET_VERSION, &[]).await.map_err(|s| status_error(&self.endpoint, "GetVersion", s))?;
        let answer = admin::GetVersionResponse::decode(bytes.as_slice()).context("decoding GetVersion")?;
        Ok(answer.control_plane_version.unwrap_or_default())
    }

    /// True when the server is a flyte-deploy sandbox (it says so in GetVersion); false when
    /// it does not answer GetVersion. A refusal for want of sign-in is an error (with its
    /// hint): nothing else would be accepted either.
    pub async fn is_sandbox(&self) -> Result<bool> {
        match self.call_raw(method::GET_VERSION, &[]).await {
            Ok(bytes) => {
                let answer = admin::GetVersionResponse::decode(bytes.as_slice()).context("decoding GetVersion")?;
                Ok(answer.control_plane_version.unwrap_or_default().build == flyte_sandbox::SANDBOX_BUILD)
            }
            Err(status) if status.code() == Code::Unauthenticated => {
                Err(status_error(&self.endpoint, "GetVersion", status))
            }
            Err(_) => Ok(false),
        }
    }

    /// Sends a Create request (the wire bytes of `TaskCreateRequest`, `WorkflowCreateRequest`
    /// or `LaunchPlanCreateRequest`) as it is. ALREADY_EXISTS is [`Created::AlreadyThere`];
    /// any other refusal is returned as the status (see [`is_different_structure`]).
    pub async fn create(&self, kind: Kind, request: &[u8]) -> Result<Created, Status> {
        match self.call_raw(method::create(kind), request).await {
            Ok(_) => Ok(Created::New),
            Err(status) if status.code() == Code::AlreadyExists => Ok(Created::AlreadyThere),
            Err(status) => Err(status),
        }
    }

    /// The registered entity (`admin.Task`, `admin.Workflow` or `admin.LaunchPlan` wire
    /// bytes, exactly as the server sent them); `None` when it does not exist.
    pub async fn get(&self, kind: Kind, id: &Identifier) -> Result<Option<Vec<u8>>> {
        let method = method::get(kind);
        let request = admin::ObjectGetRequest { id: Some(id.with_kind(kind)) }.encode_to_vec();
        match self.call_raw(method, &request).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(status) if status.code() == Code::NotFound => Ok(None),
            Err(status) => Err(status_error(&self.endpoint, method, status)),
        }
    }

    /// A registered entity in the form pyflyte writes it (`TaskSpec`, `WorkflowSpec`,
    /// `admin.LaunchPlan` with id and spec), its bytes taken from the answer as they are:
    /// what promotion re-registers elsewhere. `None` when it does not exist.
    pub async fn get_spec(&self, kind: Kind, id: &Identifier) -> Result<Option<Vec<u8>>> {
        let Some(entity) = self.get(kind, id).await? else { return Ok(None) };
        Ok(Some(spec_of(kind, &entity)))
    }

    /// Every version of one entity name (or of all names when `name` is empty), as entity
    /// message bytes, newest first, all pages.
    pub async fn list(&self, kind: Kind, project: &str, domain: &str, name: &str) -> Result<Vec<Vec<u8>>> {
        let method = method::list(kind);
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let request = admin::ResourceListRequest {
                id: Some(admin::NamedEntityIdentifier {
                    project: project.into(),
                    domain: domain.into(),
                    name: name.into(),
                    org: String::new(),
                }),
                limit: 100,
                token: token.clone(),
            }
            .encode_to_vec();
            let page = self.call_raw(method, &request).await.map_err(|s| status_error(&self.endpoint, method, s))?;
            let entities = wire::all_len(&page, fields::entity_list::ENTITIES).unwrap_or_default();
            out.extend(entities.into_iter().map(<[u8]>::to_vec));
            token = wire::last_len(&page, fields::entity_list::TOKEN)
                .ok()
                .flatten()
                .map(|t| String::from_utf8_lossy(t).into_owned())
                .unwrap_or_default();
            if token.is_empty() {
                return Ok(out);
            }
        }
    }

    /// The names of the entities of a kind in a project and domain, all pages.
    pub async fn list_names(&self, kind: Kind, project: &str, domain: &str) -> Result<Vec<String>> {
        let method = method::list_ids(kind);
        let mut out = Vec::new();
        let mut token = String::new();
        loop {
            let request = admin::NamedEntityIdentifierListRequest {
                project: project.into(),
                domain: domain.into(),
                limit: 100,
                token: token.clone(),
                ..Default::default()
            }
            .encode_to_vec();
            let page = self.call_raw(method, &request).await.map_err(|s| status_error(&self.endpoint, method, s))?;
            let page = admin::NamedEntityIdentifierList::decode(page.as_slice()).context("decoding an id list")?;
            out.extend(page.entities.into_iter().map(|e| e.name));
            if page.token.is_empty() {
                return Ok(out);
            }
            token = page.token;
        }
    }

    /// Whether a launch plan is ACTIVE; `None` when it does not exist.
    pub async fn launch_plan_active(&self, id: &Identifier) -> Result<Option<bool>> {
        let Some(bytes) = self.get(Kind::LaunchPlan, id).await? else { return Ok(None) };
        let plan = admin::LaunchPlan::decode(bytes.as_slice()).context("decoding a launch plan")?;
        Ok(Some(plan.closure.is_some_and(|c| c.state() == admin::LaunchPlanState::Active)))
    }

    /// Activates (deactivating the previously active version of the name) or deactivates.
    pub async fn set_launch_plan_active(&self, id: &Identifier, active: bool) -> Result<(), Status> {
        let state = if active { admin::LaunchPlanState::Active } else { admin::LaunchPlanState::Inactive };
        let id = Some(id.with_kind(Kind::LaunchPlan));
        let request = admin::LaunchPlanUpdateRequest { id, state: state.into() }.encode_to_vec();
        self.call_raw(method::UPDATE_LAUNCH_PLAN, &request).await.map(|_| ())
    }

    /// Registers the project unless FlyteAdmin has it; true when it was registered now. A
    /// server that will not say (no GetProject, or not allowed to this client) is left
    /// alone: the creates then say whether the project exists.
    pub async fn ensure_project(&self, project: &str) -> Result<bool> {
        let get = admin::ProjectGetRequest { id: project.into() }.encode_to_vec();
        match self.call_raw(method::GET_PROJECT, &get).await {
            Ok(_) => return Ok(false),
            Err(status) if status.code() == Code::NotFound => {}
            Err(status) if matches!(status.code(), Code::Unimplemented | Code::PermissionDenied) => return Ok(false),
            Err(status) => return Err(status_error(&self.endpoint, "GetProject", status)),
        }
        let register = admin::ProjectRegisterRequest {
            project: Some(admin::Project { id: project.into(), name: project.into(), ..Default::default() }),
        }
        .encode_to_vec();
        match self.call_raw(method::REGISTER_PROJECT, &register).await {
            Ok(_) => Ok(true),
            Err(status) if status.code() == Code::AlreadyExists => Ok(false),
            Err(status) => Err(status_error(&self.endpoint, &format!("RegisterProject {project}"), status)),
        }
    }

    /// Asks where to upload `bytes` (content-addressed by their MD5 under project/domain).
    pub async fn create_upload_location(
        &self,
        project: &str,
        domain: &str,
        filename: &str,
        bytes: &[u8],
    ) -> Result<service::CreateUploadLocationResponse> {
        let request = service::CreateUploadLocationRequest {
            project: project.into(),
            domain: domain.into(),
            filename: filename.into(),
            content_md5: Md5::digest(bytes).to_vec(),
            add_content_md5_metadata: true,
            ..Default::default()
        }
        .encode_to_vec();
        let method = method::CREATE_UPLOAD_LOCATION;
        let answer = self.call_raw(method, &request).await.map_err(|s| status_error(&self.endpoint, method, s))?;
        service::CreateUploadLocationResponse::decode(answer.as_slice()).context("decoding CreateUploadLocation")
    }

    /// Uploads a code archive: CreateUploadLocation, then HTTP PUT with Content-MD5.
    /// Returns the native URL that goes into the task specs.
    pub async fn upload(&self, project: &str, domain: &str, filename: &str, bytes: &[u8]) -> Result<String> {
        let location = self.create_upload_location(project, domain, filename, bytes).await?;
        put_upload(&location, bytes.to_vec()).await?;
        Ok(location.native_url)
    }
}

/// HTTP PUT of `bytes` to a signed URL, with Content-MD5 and the headers the server asked
/// for. 200 and 201 are success. Retried on connection failures and 5xx.
pub async fn put_upload(location: &service::CreateUploadLocationResponse, bytes: Vec<u8>) -> Result<()> {
    let url = location.signed_url.clone();
    let headers = location.headers.clone();
    tokio::task::spawn_blocking(move || {
        let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes));
        let shown = url.split('?').next().unwrap_or_default().to_string();
        let mut backoff = Duration::from_millis(200);
        for attempt in 1.. {
            let mut request = ureq::put(&url).set("Content-MD5", &md5);
            for (key, value) in &headers {
                if !key.eq_ignore_ascii_case("content-md5") {
                    request = request.set(key, value);
                }
            }
            match request.send_bytes(&bytes) {
                Ok(response) if matches!(response.status(), 200 | 201) => return Ok(()),
                Ok(response) => bail!("uploading to {shown}: HTTP {}", response.status()),
                Err(ureq::Error::Status(code, response)) if code < 500 || attempt >= 5 => {
                    let body = response.into_string().unwrap_or_default();
                    bail!("uploading to {shown}: HTTP {code}: {}", body.trim())
                }
                Err(err) if attempt >= 5 => return Err(anyhow!("uploading to {shown}: {err}")),
                Err(_) => {
                    std::thread::sleep(backoff);
                    backoff *= 2;
                }
            }
        }
        unreachable!("the loop returns")
    })
    .await
    .context("joining the upload")?
}

/// The spec inside an `admin.Task` / `admin.Workflow` / `admin.LaunchPlan` answer, in the
/// form pyflyte writes (see [`Admin::get_spec`]).
pub fn spec_of(kind: Kind, entity: &[u8]) -> Vec<u8> {
    use fields::{compiled, compiled_workflow_closure as closure, entity as answer, entity_closure, launch_plan};
    let path = |mut m: &[u8], numbers: &[u32]| -> Vec<u8> {
        for n in numbers {
            m = wire::last_len(m, *n).ok().flatten().unwrap_or_default();
        }
        m.to_vec()
    };
    let mut out = Vec::new();
    match kind {
        Kind::Task => {
            // Task{closure: TaskClosure{compiled_task: CompiledTask{template}}} → TaskSpec{template}
            let template = path(entity, &[answer::CLOSURE, entity_closure::COMPILED, compiled::TEMPLATE]);
            out.extend(wire::len_field(fields::task_spec::TEMPLATE, &template));
        }
        Kind::Workflow => {
            // Workflow{closure: WorkflowClosure{compiled_workflow: {primary, sub_workflows}}}
            //   → WorkflowSpec{template, sub_workflows}
            let compiled_closure = path(entity, &[answer::CLOSURE, entity_closure::COMPILED]);
            let template = path(&compiled_closure, &[closure::PRIMARY, compiled::TEMPLATE]);
            out.extend(wire::len_field(fields::workflow_spec::TEMPLATE, &template));
            for sub in wire::all_len(&compiled_closure, closure::SUB_WORKFLOWS).unwrap_or_default() {
                out.extend(wire::len_field(fields::workflow_spec::SUB_WORKFLOWS, &path(sub, &[compiled::TEMPLATE])));
            }
        }
        Kind::LaunchPlan => {
            // LaunchPlan{id, spec, closure} → LaunchPlan{id, spec}
            out.extend(wire::len_field(launch_plan::ID, &path(entity, &[launch_plan::ID])));
            out.extend(wire::len_field(launch_plan::SPEC, &path(entity, &[launch_plan::SPEC])));
        }
    }
    out
}

/// A failed call as an error naming the endpoint and the call.
pub fn status_error(endpoint: &str, what: &str, status: Status) -> anyhow::Error {
    let place = if what.contains(endpoint) { String::new() } else { format!(" at {endpoint}") };
    let detail = status_detail(&status);
    match hint(endpoint, &status) {
        Some(hint) => anyhow!("{what}{place}: {:?}: {detail}\n  hint: {hint}", status.code()),
        None => anyhow!("{what}{place}: {:?}: {detail}", status.code()),
    }
}

/// The status message with the causes tonic keeps in its source chain (where the TLS or
/// HTTP/2 failure is told).
fn status_detail(status: &Status) -> String {
    let mut out = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// Said in an UNAUTHENTICATED answer to a call that carried credentials.
const CREDENTIALS_REFUSED: &str = "the credentials sent were refused";

/// True when the last attempt of a call carried credentials.
fn refused_sent(sent: &std::sync::Mutex<Option<String>>, auth: &Option<Arc<Auth>>) -> bool {
    auth.is_some() && sent.lock().ok().is_some_and(|s| s.is_some())
}

/// The deadline of the first call to a remote endpoint; a hung endpoint fails after it.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long connecting may keep retrying an endpoint that refuses or drops connections.
pub const CONNECT_BUDGET: Duration = Duration::from_secs(25);

/// True when the call never got a gRPC answer: the connection failed, broke or timed out.
pub fn is_transport_failure(status: &Status) -> bool {
    // A server's own answer has no source; an HTTP answer without grpc-status is no gRPC.
    is_transient(status)
        || std::error::Error::source(status).is_some()
        || status.message().contains("grpc-status header missing")
}

/// A hint for the classic mistakes, from what the failure says.
pub fn hint(endpoint: &str, status: &Status) -> Option<String> {
    let text = status_detail(status).to_ascii_lowercase();
    let tls = endpoint.starts_with("https://");
    if text.contains("invalidcontenttype") || text.contains("corrupt message") || text.contains("wrong version number")
    {
        return Some(
            "the endpoint does not speak TLS: it serves plain gRPC; set `insecure = true` in deploy.toml's [flyte] (or `insecure: true` in the Flyte config), or use its TLS port".into(),
        );
    }
    if text.contains("invalid content-type") || text.contains("mapped from http status") || text.contains("http/1") {
        return Some(format!(
            "{endpoint} answered HTTP, not gRPC: point the endpoint at FlyteAdmin's gRPC port (dns:///HOST:443 through an ingress, port 8089 in-cluster), not the console"
        ));
    }
    if status.code() == Code::Unauthenticated && status.message().contains(CREDENTIALS_REFUSED) {
        return Some(
            "FlyteAdmin refused the credentials flyte-deploy sent: check that the token is for this FlyteAdmin (the audience and scopes its public client config names, or FLYTE_AUDIENCE / admin.audience), or sign in again by deleting the kept tokens (tokens/ in the tool's folder)".into(),
        );
    }
    if status.code() == Code::Unauthenticated {
        return Some(
            "FlyteAdmin wants a signed-in caller: set admin.authType (Pkce, DeviceFlow, ClientSecret, ExternalCommand) in the Flyte config, or FLYTE_TOKEN, or FLYTE_CLIENT_ID and FLYTE_CLIENT_SECRET".into(),
        );
    }
    if text.contains("connection refused") {
        return Some(format!("nothing listens at {endpoint}: check the host and port"));
    }
    if text.contains("did not answer") || text.contains("timeout") || text.contains("no answer") {
        return Some(format!(
            "{endpoint} accepts connections but sends nothing back: check the port is FlyteAdmin's gRPC port{}",
            if tls {
                " and that it serves TLS (else set insecure = true)"
            } else {
                " and whether it wants TLS (then set insecure = false)"
            }
        ));
    }
    if !tls && (text.contains("protocol error") || text.contains("connection reset") || text.contains("frame")) {
        return Some(format!(
            "{endpoint} did not speak plain HTTP/2: if it serves TLS, set `insecure = false`; if it is a web server, point the endpoint at FlyteAdmin's gRPC port, not the console"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_resolve_with_tls_by_default() {
        let root = Path::new("/repo");
        assert_eq!(
            Address::resolve("sandbox", false, root).unwrap(),
            Address::Sandbox { data: root.join(".flyte/sandbox") }
        );
        let remote = |e, insecure| match Address::resolve(e, insecure, root).unwrap() {
            Address::Remote { url } => url,
            other => panic!("{other:?}"),
        };
        assert_eq!(remote("dns:///flyte.example.com:443", false), "https://flyte.example.com:443");
        assert_eq!(remote("flyte.example.com:443", true), "http://flyte.example.com:443");
        assert_eq!(remote("http://127.0.0.1:8089", false), "http://127.0.0.1:8089");
        assert!(Address::resolve("grpc://x", false, root).is_err());
    }

    #[test]
    fn the_flyte_config_applies_to_flyte_config_and_to_its_own_host() {
        let root = Path::new("/repo");
        let user = FlyteConfig {
            file: Some("/home/u/.flyte/config.yaml".into()),
            endpoint: Some("dns:///flyte.example.com:443".into()),
            insecure: true,
            client_id: Some("ci".into()),
            ..FlyteConfig::default()
        };
        // `flyte-config`: the file's endpoint and its `insecure`.
        let (address, applied) = Address::choose(FLYTE_CONFIG, false, user.clone(), root).unwrap();
        assert_eq!(address, Address::Remote { url: "http://flyte.example.com:443".into() });
        assert_eq!(applied.as_ref(), Some(&user));
        // An explicit endpoint on the same host: deploy.toml's address and TLS switch, the
        // file's sign-in.
        let (address, applied) = Address::choose("dns:///FLYTE.example.com:8443", false, user.clone(), root).unwrap();
        assert_eq!(address, Address::Remote { url: "https://FLYTE.example.com:8443".into() });
        assert!(applied.is_some());
        // Another host: the file is not used.
        let (_, applied) = Address::choose("dns:///other.example.com:443", false, user.clone(), root).unwrap();
        assert!(applied.is_none());
        // `flyte-config` without an endpoint anywhere: exit 2, saying where it looked.
        let err = Address::choose(FLYTE_CONFIG, false, FlyteConfig::default(), root).unwrap_err();
        assert!(err.downcast_ref::<crate::error::UserError>().is_some());
        assert!(format!("{err:#}").contains("FLYTECTL_CONFIG"), "{err:#}");
        let no_endpoint = FlyteConfig { endpoint: None, ..user };
        let err = Address::choose(FLYTE_CONFIG, false, no_endpoint, root).unwrap_err();
        assert!(format!("{err:#}").contains("/home/u/.flyte/config.yaml names no admin.endpoint"), "{err:#}");
    }

    /// Accepts connections on loopback and never answers (holding them open).
    fn silent_endpoint() -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            let mut held = Vec::new();
            for stream in listener.incoming() {
                held.push(stream);
            }
        });
        url
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_endpoint_that_never_answers_fails_within_30_seconds_naming_it() {
        for url in [silent_endpoint(), silent_endpoint().replace("http://", "https://")] {
            let started = Instant::now();
            let err = match Admin::connect_to(&Address::Remote { url: url.clone() }, Vec::new()).await {
                Ok(_) => panic!("{url} never answers, yet connecting succeeded"),
                Err(err) => format!("{err:#}"),
            };
            let took = started.elapsed();
            assert!(took < Duration::from_secs(30), "{url}: took {took:?}");
            assert!(err.contains(&url) && err.contains("did not answer"), "{err}");
            assert!(err.contains("hint:"), "{err}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tls_to_a_plaintext_endpoint_says_to_set_insecure() {
        let data = tempfile::tempdir().unwrap();
        let running = flyte_sandbox::start(flyte_sandbox::Options::loopback(data.path())).await.unwrap();
        let url = running.endpoint().replace("http://", "https://");
        let err = match Admin::connect_to(&Address::Remote { url: url.clone() }, Vec::new()).await {
            Ok(_) => panic!("TLS to a plaintext server succeeded"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains(&url) && err.contains("insecure = true"), "{err}");
        // The same endpoint in plain gRPC connects.
        Admin::connect_to(&Address::Remote { url: running.endpoint() }, Vec::new()).await.unwrap();
        running.stop().await.unwrap();
    }

    /// A FlyteAdmin behind a proxy that wants `proxy-authorization` (as an identity-aware
    /// proxy does): every call carries the token `admin.proxyCommand` prints, the first one
    /// (the probe) included; without the command, the proxy refuses.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_proxy_command_token_goes_with_every_call() {
        use std::sync::Mutex;
        use tonic::body::Body;
        use tonic::codegen::{http, BoxFuture, Service};

        struct Versions;
        impl flyte_api::server::Handler for Versions {
            async fn call(self: Arc<Self>, _method: String, _request: Vec<u8>) -> Result<Vec<u8>, Status> {
                Ok(Vec::new())
            }
        }
        #[derive(Clone)]
        struct Gate {
            inner: flyte_api::server::BytesServer<Versions>,
            seen: Arc<Mutex<Vec<Option<String>>>>,
        }
        impl Service<http::Request<Body>> for Gate {
            type Response = http::Response<Body>;
            type Error = std::convert::Infallible;
            type Future = BoxFuture<Self::Response, Self::Error>;
            fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
                self.inner.poll_ready(cx)
            }
            fn call(&mut self, request: http::Request<Body>) -> Self::Future {
                let header = request.headers().get("proxy-authorization").and_then(|v| v.to_str().ok());
                let allowed = header == Some("Bearer proxy-tok-1");
                self.seen.lock().unwrap().push(header.map(str::to_string));
                let mut inner = self.inner.clone();
                Box::pin(async move {
                    if allowed {
                        inner.call(request).await
                    } else {
                        Ok(Status::unauthenticated("the proxy wants proxy-authorization").into_http())
                    }
                })
            }
        }
        let seen = Arc::new(Mutex::new(Vec::new()));
        let gate = Gate { inner: flyte_api::server::BytesServer::new(Arc::new(Versions)), seen: seen.clone() };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        tokio::spawn(tonic::transport::Server::builder().serve_with_incoming(gate, incoming));

        let user = FlyteConfig {
            proxy_command: ["sh", "-c", "echo starting >&2; echo proxy-tok-1"].map(String::from).to_vec(),
            ..FlyteConfig::default()
        };
        let admin = Admin::connect_remote(&url, Some(&user)).await.unwrap();
        admin.call_raw(method::GET_VERSION, &[]).await.unwrap();
        let calls = seen.lock().unwrap().clone();
        assert_eq!(calls.len(), 2, "the probe and the call: {calls:?}");
        assert!(calls.iter().all(|h| h.as_deref() == Some("Bearer proxy-tok-1")), "{calls:?}");

        // Without it the proxy refuses.
        let admin = Admin::connect_remote(&url, None).await.unwrap();
        let refused = admin.call_raw(method::GET_VERSION, &[]).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
        // A command that fails is named, and nothing is called.
        let before = seen.lock().unwrap().len();
        let failing = FlyteConfig { proxy_command: vec!["false".into()], ..FlyteConfig::default() };
        let err = match Admin::connect_remote(&url, Some(&failing)).await {
            Ok(_) => panic!("connected although admin.proxyCommand failed"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains("admin.proxyCommand `false` failed"), "{err}");
        assert_eq!(seen.lock().unwrap().len(), before);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_http_server_instead_of_grpc_gets_a_hint_and_a_refused_port_is_named() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        std::thread::spawn(move || {
            for mut stream in listener.incoming().flatten() {
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            }
        });
        let err = match Admin::connect_to(&Address::Remote { url: url.clone() }, Vec::new()).await {
            Ok(_) => panic!("an HTTP/1.1 server passed for FlyteAdmin"),
            Err(err) => format!("{err:#}"),
        };
        assert!(err.contains(&url) && err.contains("hint:") && err.contains("gRPC port"), "{err}");

        // Nothing listening: retried within the budget, then named.
        let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let started = Instant::now();
        let err = match Admin::connect_to(&Address::Remote { url: url.clone() }, Vec::new()).await {
            Ok(_) => panic!("connected to a closed port"),
            Err(err) => format!("{err:#}"),
        };
        assert!(started.elapsed() < Duration::from_secs(30));
        assert!(err.contains(&url) && err.contains("nothing listens"), "{err}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_closed_mid_call_is_retried() {
        use std::io::Read;
        use std::sync::atomic::{AtomicUsize, Ordering};
        let data = tempfile::tempdir().unwrap();
        let running = flyte_sandbox::start(flyte_sandbox::Options::loopback(data.path())).await.unwrap();
        let upstream = running.endpoint().trim_start_matches("http://").to_string();
        // A proxy whose first connection takes the request and closes without an answer;
        // later connections are passed through to the sandbox.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                    let mut client = client;
                    let mut buf = [0u8; 4096];
                    let _ = client.read(&mut buf);
                    std::thread::sleep(Duration::from_millis(100));
                    let _ = client.read(&mut buf);
                    drop(client);
                    continue;
                }
                let server = std::net::TcpStream::connect(&upstream).unwrap();
                let (mut c1, mut s1) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut c1, &mut s1));
                let (mut s2, mut c2) = (server, client);
                std::thread::spawn(move || std::io::copy(&mut s2, &mut c2));
            }
        });
        let admin = Admin::remote(&url, None).unwrap();
        assert!(admin.ensure_project("flytesnacks").await.is_ok(), "the call is repeated on a new connection");
        assert!(connections.load(Ordering::SeqCst) >= 2, "the first connection was closed mid-call");
        running.stop().await.unwrap();
    }

    #[test]
    fn hints_name_the_classic_mistakes() {
        let https = "https://flyte.example.com:443";
        let tls = Status::unavailable("error trying to connect: received corrupt message of type InvalidContentType");
        assert!(hint(https, &tls).unwrap().contains("insecure = true"));
        let http = Status::unknown("grpc-status header missing, mapped from HTTP status code 404");
        assert!(hint(https, &http).unwrap().contains("not gRPC"));
        let unauthenticated = Status::unauthenticated("token is missing");
        assert!(hint(https, &unauthenticated).unwrap().contains("authType"));
        let refused =
            Status::unauthenticated(format!("the token was refused: InvalidAudience ({CREDENTIALS_REFUSED})"));
        let said = hint(https, &refused).unwrap();
        assert!(said.contains("audience") && !said.contains("set admin.authType"), "{said}");
        assert!(hint(https, &Status::invalid_argument("x task with different structure already exists")).is_none());
    }

    #[test]
    fn only_transient_codes_are_retried() {
        assert!(is_transient(&Status::unavailable("down")));
        assert!(is_transient(&Status::deadline_exceeded("slow")));
        assert!(!is_transient(&Status::invalid_argument("x task with different structure already exists")));
        assert!(!is_transient(&Status::already_exists("same")));
    }
}
