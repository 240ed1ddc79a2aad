//! The FlyteAdmin client that registration talks to: one interface over two transports, a
//! remote FlyteAdmin (TLS by default, bearer token or OAuth2 client credentials) and the
//! sandbox (started in-process for `endpoint = "sandbox"`, or reached at an address).
//! Create requests go out as the exact bytes given (the pass-through codec); retries with
//! backoff on UNAVAILABLE / DEADLINE_EXCEEDED only. Decides nothing about what to register.
//!
//! Environment: `FLYTE_ENDPOINT` overrides `[flyte] endpoint`; `FLYTE_TOKEN` is a bearer
//! token; else `FLYTE_CLIENT_ID` + `FLYTE_CLIENT_SECRET` run the OAuth2 client-credentials
//! flow against `FLYTE_TOKEN_URL` (default: discovered from FlyteAdmin's auth metadata), with
//! `FLYTE_SCOPES` (space separated; default: FlyteAdmin's public client config, else `all`)
//! and optional `FLYTE_AUDIENCE`. Secrets are never printed.

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
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic::{Code, Request, Status};

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
        let scheme = if insecure { "http" } else { "https" };
        let url = if endpoint.starts_with("http://") || endpoint.starts_with("https://") {
            endpoint.to_string()
        } else if let Some(rest) = endpoint.strip_prefix("dns:///") {
            format!("{scheme}://{rest}")
        } else if !endpoint.is_empty() && !endpoint.contains("://") {
            format!("{scheme}://{endpoint}")
        } else {
            return Err(crate::error::user(
                format!("Flyte endpoint {endpoint:?} is not `sandbox`, dns:///HOST:PORT, HOST:PORT or an http(s) URL"),
                "set [flyte] endpoint in deploy.toml (or FLYTE_ENDPOINT)",
            ));
        };
        Ok(Address::Remote { url })
    }

    /// From the configuration, with `FLYTE_ENDPOINT` taking precedence.
    pub fn from_config(config: &Config, repo_root: &Path) -> Result<Address> {
        let endpoint = settings::FLYTE_ENDPOINT.get();
        Address::resolve(endpoint.as_deref().unwrap_or(&config.flyte.endpoint), config.flyte.insecure, repo_root)
    }
}

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

/// A connection to FlyteAdmin (remote or sandbox). Cheap to clone: clones share the
/// channel (calls are multiplexed over one HTTP/2 connection) and the in-process sandbox.
#[derive(Clone)]
pub struct Admin {
    channel: Channel,
    auth: Option<Arc<Auth>>,
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
        Admin::connect_to(&Address::from_config(config, repo_root)?, domains).await
    }

    /// Connects to an address; `domains` are extra domains an in-process sandbox accepts.
    pub async fn connect_to(address: &Address, domains: Vec<String>) -> Result<Admin> {
        match address {
            Address::Sandbox { data } => {
                let mut options = flyte_sandbox::Options::loopback(data);
                options.extra_domains = domains;
                let running = flyte_sandbox::start(options).await?;
                let mut admin = Admin::remote(&running.endpoint(), None)?;
                admin.sandbox = Some(Arc::new(running));
                Ok(admin)
            }
            Address::Remote { url } => {
                let mut admin = Admin::remote(url, None)?;
                admin.auth = Auth::from_env(&admin).await?.map(Arc::new);
                Ok(admin)
            }
        }
    }

    /// A client of the gRPC endpoint at `url` (no network traffic until the first call).
    pub fn remote(url: &str, auth_token: Option<String>) -> Result<Admin> {
        let mut endpoint = Endpoint::from_shared(url.to_string())
            .map_err(|e| crate::error::user(format!("Flyte endpoint {url:?}: {e}"), "check [flyte] endpoint"))?
            .connect_timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_while_idle(true);
        if url.starts_with("https://") {
            let host = endpoint.uri().host().unwrap_or_default().to_string();
            endpoint = endpoint
                .tls_config(ClientTlsConfig::new().domain_name(host).with_native_roots())
                .with_context(|| format!("setting up TLS for {url}"))?;
        }
        Ok(Admin {
            channel: endpoint.connect_lazy(),
            auth: auth_token.map(|t| Arc::new(Auth::Static(t))),
            endpoint: url.to_string(),
            retry: Retry::default(),
            sandbox: None,
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
                Err(status) if is_transient(&status) && attempt < self.retry.attempts => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(self.retry.max_backoff);
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// A request with the deadline and the credentials.
    async fn request<T>(&self, message: T) -> Result<Request<T>, Status> {
        let mut request = Request::new(message);
        request.set_timeout(self.retry.timeout);
        if let Some(auth) = &self.auth {
            let (key, value) = auth.header().await.map_err(|e| Status::unauthenticated(format!("{e:#}")))?;
            let value = MetadataValue::try_from(value).map_err(|_| Status::unauthenticated("token is not ASCII"))?;
            request.metadata_mut().insert(key, value);
        }
        Ok(request)
    }

    /// One unary call with the pass-through codec: `message` bytes out, response bytes back.
    pub async fn call_raw(&self, method: &str, message: &[u8]) -> Result<Vec<u8>, Status> {
        let path: tonic::codegen::http::uri::PathAndQuery =
            method.parse().map_err(|_| Status::internal(format!("bad method path {method}")))?;
        self.with_retry(|| {
            let path = path.clone();
            async move {
                let request = self.request(message.to_vec()).await?;
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

    /// True when the server is a flyte-deploy sandbox (it says so in GetVersion).
    pub async fn is_sandbox(&self) -> Result<bool> {
        Ok(self.version().await?.build == flyte_sandbox::SANDBOX_BUILD)
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
    anyhow!("{what} at {endpoint}: {:?}: {}", status.code(), status.message())
}

/// Credentials for a remote FlyteAdmin.
enum Auth {
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
        cached: tokio::sync::Mutex<Option<(String, Instant)>>,
    },
}

impl Auth {
    async fn from_env(admin: &Admin) -> Result<Option<Auth>> {
        if let Some(token) = settings::FLYTE_TOKEN.get() {
            return Ok(Some(Auth::Static(token)));
        }
        let (Some(client_id), Some(secret)) = (settings::FLYTE_CLIENT_ID.get(), settings::FLYTE_CLIENT_SECRET.get())
        else {
            return Ok(None);
        };
        let public = admin
            .call_raw(method::GET_PUBLIC_CLIENT_CONFIG, &[])
            .await
            .ok()
            .and_then(|b| service::PublicClientAuthConfigResponse::decode(b.as_slice()).ok())
            .unwrap_or_default();
        let token_url = match settings::FLYTE_TOKEN_URL.get() {
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
                        "set FLYTE_TOKEN_URL",
                    ));
                }
                meta.token_endpoint
            }
        };
        let scopes = settings::FLYTE_SCOPES
            .get()
            .or_else(|| (!public.scopes.is_empty()).then(|| public.scopes.join(" ")))
            .unwrap_or_else(|| "all".into());
        let header = Some(public.authorization_metadata_key.to_ascii_lowercase())
            .filter(|k| !k.is_empty())
            .unwrap_or_else(|| "authorization".into());
        Ok(Some(Auth::ClientCredentials {
            token_url,
            client_id,
            secret,
            scopes,
            audience: settings::FLYTE_AUDIENCE.get(),
            header,
            cached: tokio::sync::Mutex::new(None),
        }))
    }

    /// The metadata key and value to send.
    async fn header(&self) -> Result<(tonic::metadata::MetadataKey<tonic::metadata::Ascii>, String)> {
        match self {
            Auth::Static(token) => Ok(("authorization".parse().expect("valid key"), format!("Bearer {token}"))),
            Auth::ClientCredentials { token_url, client_id, secret, scopes, audience, header, cached } => {
                let mut cached = cached.lock().await;
                let fresh = cached.as_ref().is_some_and(|(_, until)| Instant::now() < *until);
                if !fresh {
                    let (url, id, secret, scopes, audience) =
                        (token_url.clone(), client_id.clone(), secret.clone(), scopes.clone(), audience.clone());
                    let token = tokio::task::spawn_blocking(move || {
                        fetch_token(&url, &id, &secret, &scopes, audience.as_deref())
                    })
                    .await
                    .context("joining the token request")??;
                    *cached = Some(token);
                }
                let token = cached.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
                let key = header.parse().map_err(|_| anyhow!("bad authorization metadata key {header:?}"))?;
                Ok((key, format!("Bearer {token}")))
            }
        }
    }
}

/// The client-credentials grant: a token and when to stop using it.
fn fetch_token(url: &str, id: &str, secret: &str, scopes: &str, audience: Option<&str>) -> Result<(String, Instant)> {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"));
    let mut form = vec![("grant_type", "client_credentials"), ("scope", scopes)];
    if let Some(audience) = audience {
        form.push(("audience", audience));
    }
    // The error names the URL and status, never the credentials.
    let response = ureq::post(url)
        .set("Authorization", &format!("Basic {basic}"))
        .set("Accept", "application/json")
        .send_form(&form)
        .map_err(|e| match e {
            ureq::Error::Status(code, _) => anyhow!("OAuth2 token request to {url}: HTTP {code}"),
            other => anyhow!("OAuth2 token request to {url}: {}", other.kind()),
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
    fn only_transient_codes_are_retried() {
        assert!(is_transient(&Status::unavailable("down")));
        assert!(is_transient(&Status::deadline_exceeded("slow")));
        assert!(!is_transient(&Status::invalid_argument("x task with different structure already exists")));
        assert!(!is_transient(&Status::already_exists("same")));
    }
}
