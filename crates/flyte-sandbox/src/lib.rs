//! The FlyteAdmin sandbox: the registration part of FlyteAdmin's gRPC API on loopback, with
//! state in SQLite, so deploys run and are tested without a cluster. Owns starting and
//! stopping the servers (in-process for the client, or as `cargo xtask sandbox`); runs no
//! executions. Started with [`RequiredToken`], it wants a bearer token as a FlyteAdmin with
//! sign-in does.

mod compile;
mod http;
mod service;
mod store;
mod token;
mod types;
mod validate;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use service::SANDBOX_BUILD;
pub use token::{AUTHORIZATION_METADATA_KEY, PUBLIC_CLIENT_ID};

/// The domains FlyteAdmin has by default.
pub const DEFAULT_DOMAINS: &[&str] = &["development", "staging", "production"];

/// The project a fresh sandbox has, as a Flyte sandbox cluster does.
pub const DEFAULT_PROJECT: &str = "flytesnacks";

/// The sandbox's database file, in its data folder.
pub const DATABASE: &str = "sandbox.sqlite";

/// How to run a sandbox.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where gRPC listens (port 0: any free port).
    pub addr: SocketAddr,
    /// The data directory (SQLite database and uploads).
    pub data: PathBuf,
    /// Latency added to every gRPC call.
    pub delay: Duration,
    /// The domains accepted (besides FlyteAdmin's default three).
    pub extra_domains: Vec<String>,
    /// When set, every call but AuthMetadataService's needs a bearer token from this issuer.
    pub require_token: Option<RequiredToken>,
}

/// The sign-in a sandbox requires, as a FlyteAdmin using an external authorization server:
/// JWT access tokens signed by `issuer` (its keys from its discovery document's `jwks_uri`)
/// for `audience`. GetOAuth2Metadata and GetPublicClientConfig point clients at the issuer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequiredToken {
    /// The issuer's URL (`iss` of its tokens; `/.well-known/openid-configuration` under it).
    pub issuer: String,
    /// The `aud` tokens must name: FlyteAdmin's own URL, by default.
    pub audience: String,
}

impl Options {
    /// Loopback on a free port, no delay, FlyteAdmin's domains.
    pub fn loopback(data: impl Into<PathBuf>) -> Options {
        Options {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            data: data.into(),
            delay: Duration::ZERO,
            extra_domains: Vec::new(),
            require_token: None,
        }
    }
}

/// The issuer of [`RequiredToken`] could not be used (not reached, no discovery document, no
/// keys): the sandbox did not start. A caller may take it for bad input.
#[derive(Debug)]
pub struct IssuerUnusable(pub String);

impl std::fmt::Display for IssuerUnusable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for IssuerUnusable {}

/// A running sandbox. Dropping it stops the servers (without waiting); [`Running::stop`]
/// waits until they are down.
pub struct Running {
    /// Where gRPC listens.
    pub grpc: SocketAddr,
    /// Where the upload endpoint listens.
    pub http: SocketAddr,
    shutdown: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<Result<()>>>,
}

impl Running {
    /// The gRPC endpoint as a URL for the client (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// Stops both servers and waits for them.
    pub async fn stop(mut self) -> Result<()> {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
        for task in self.tasks.drain(..) {
            task.await.context("joining a sandbox server")??;
        }
        Ok(())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for tx in self.shutdown.drain(..) {
            let _ = tx.send(());
        }
    }
}

/// Starts the sandbox on the current tokio runtime: binds both listeners (so the
/// addresses are known when this returns), then serves in background tasks.
pub async fn start(options: Options) -> Result<Running> {
    let guard = match options.require_token.clone() {
        Some(required) => Some(Arc::new(
            tokio::task::spawn_blocking(move || token::Guard::discover(&required))
                .await
                .context("joining the issuer's discovery")?
                .map_err(|e| anyhow::Error::new(IssuerUnusable(format!("{e:#}"))))?,
        )),
        None => None,
    };
    let store = Arc::new(store::Store::open(&options.data)?);
    let project = store::Project {
        id: DEFAULT_PROJECT.to_string(),
        name: DEFAULT_PROJECT.to_string(),
        description: "the project a Flyte sandbox starts with".to_string(),
    };
    store.register_project(&project).context("registering the default project")?;
    let grpc_listener = TcpListener::bind(options.addr)
        .with_context(|| format!("binding the sandbox's gRPC address {}", options.addr))?;
    let grpc = grpc_listener.local_addr()?;
    let http_listener = TcpListener::bind(SocketAddr::new(grpc.ip(), 0))
        .with_context(|| format!("binding the sandbox's upload endpoint on {}", grpc.ip()))?;
    let http = http_listener.local_addr()?;
    let mut domains: Vec<String> = DEFAULT_DOMAINS.iter().map(|d| d.to_string()).collect();
    for extra in options.extra_domains {
        if !domains.contains(&extra) {
            domains.push(extra);
        }
    }
    let sandbox = Arc::new(service::Sandbox {
        store: store.clone(),
        domains,
        http_base: http::base_url(http),
        guard: guard.clone(),
    });

    let (grpc_tx, grpc_rx) = oneshot::channel::<()>();
    let (http_tx, http_rx) = oneshot::channel::<()>();
    grpc_listener.set_nonblocking(true)?;
    http_listener.set_nonblocking(true)?;
    let incoming = tonic::transport::server::TcpIncoming::from(tokio::net::TcpListener::from_std(grpc_listener)?)
        .with_nodelay(Some(true));
    let served = token::Guarded { inner: flyte_api::server::BytesServer::new(sandbox), guard, delay: options.delay };
    let grpc_task = tokio::spawn(async move {
        tonic::transport::Server::builder()
            .serve_with_incoming_shutdown(served, incoming, async {
                let _ = grpc_rx.await;
            })
            .await
            .with_context(|| format!("serving the sandbox's gRPC on {grpc}"))
    });
    let http_task = tokio::spawn(http::serve(http_listener, store, async {
        let _ = http_rx.await;
    }));
    Ok(Running { grpc, http, shutdown: vec![grpc_tx, http_tx], tasks: vec![grpc_task, http_task] })
}
