//! `cargo xtask sandbox`: serves the embedded FlyteAdmin sandbox (`flyte-sandbox`) on
//! loopback until SIGINT or SIGTERM, accepting the domains of the repository's deploy.toml,
//! requiring a bearer token from an OAuth2 issuer when asked to.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cli::Sandbox;

/// `cargo xtask sandbox`: serves until SIGINT or SIGTERM.
pub(crate) fn run(args: Sandbox) -> Result<ExitCode> {
    let addr: SocketAddr = args.addr.parse().map_err(|_| {
        flyte_deploy::error::user(
            format!("--addr {:?} is not HOST:PORT with a numeric host", args.addr),
            "give an address such as 127.0.0.1:8089 (port 0 picks a free one)",
        )
    })?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        // Listen for the signals before anything is served, so a stop request that comes
        // right after the address is printed is a clean stop too.
        let stop = stop_signal()?;
        let mut options = flyte_sandbox::Options::loopback(&args.data);
        options.addr = addr;
        options.delay = Duration::from_millis(args.delay_ms);
        options.extra_domains = configured_domains();
        options.require_token = args
            .require_token
            .zip(args.token_audience)
            .map(|(issuer, audience)| flyte_sandbox::RequiredToken { issuer, audience });
        let issuer = options.require_token.as_ref().map(|r| r.issuer.clone());
        let running = flyte_sandbox::start(options).await.map_err(|e| match e.downcast_ref() {
            Some(flyte_sandbox::IssuerUnusable(why)) => flyte_deploy::error::user(
                format!("--require-token: {why}"),
                "start the OAuth2 issuer first, or give its URL (the one its tokens name as `iss`)",
            ),
            None => e,
        })?;
        println!("FlyteAdmin sandbox listening on {}", running.endpoint());
        if let Some(issuer) = issuer {
            println!("every call needs a bearer token from {issuer}");
        }
        println!("uploads on http://{}, data in {}", running.http, args.data.display());
        use std::io::Write as _;
        std::io::stdout().flush().ok();
        stop.await;
        running.stop().await?;
        println!("sandbox stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// The domains named in the current repository's deploy.toml, when there is one that
/// parses (the sandbox then accepts them too); none otherwise.
fn configured_domains() -> Vec<String> {
    let Ok(repo) = git2::Repository::discover(".") else { return Vec::new() };
    let Some(root) = repo.workdir() else { return Vec::new() };
    let file = root.join(flyte_deploy::config::DEPLOY_TOML);
    let Ok(text) = std::fs::read_to_string(&file) else { return Vec::new() };
    match flyte_deploy::config::Config::parse(&file, &text) {
        Ok(config) => config.domains.iter().map(|d| d.name.value.clone()).collect(),
        Err(_) => Vec::new(),
    }
}

/// A future that resolves on SIGINT or SIGTERM; the handlers are installed when this returns.
fn stop_signal() -> Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
