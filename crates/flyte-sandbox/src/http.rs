//! The sandbox's HTTP endpoint for code archives: the signed PUT that CreateUploadLocation
//! hands out (checking signature, expiry, Content-Length and Content-MD5) and GET of what
//! was uploaded. Files only; the gRPC side decides where uploads go.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context as _, Result};
use base64::Engine as _;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::store::Store;

/// The largest archive accepted.
const MAX_UPLOAD: u64 = 1 << 30;

/// The URL path of an upload.
pub(crate) fn upload_path(project: &str, domain: &str, root: &str, filename: &str) -> String {
    format!("/uploads/{project}/{domain}/{root}/{filename}")
}

/// The signature of an upload URL: SHA-256 over the sandbox's secret and what the URL
/// allows (path, MD5, expiry).
pub(crate) fn signature(secret: &str, path: &str, md5_hex: &str, expires: i64) -> String {
    let mut hasher = Sha256::new();
    sha2::Digest::update(&mut hasher, format!("{secret}\n{path}\n{md5_hex}\n{expires}").as_bytes());
    hex::encode(sha2::Digest::finalize(hasher))
}

/// Serves uploads on `listener` (non-blocking) until `shutdown` resolves, then waits for the
/// requests under way (idle connections are closed).
pub(crate) async fn serve(
    listener: std::net::TcpListener,
    store: Arc<Store>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener).context("serving the sandbox's upload endpoint")?;
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                // Out of file descriptors or a connection reset before it was accepted: the
                // listener itself is fine, try again shortly.
                Err(_) => {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let store = store.clone();
        let service = service_fn(move |req| answer(store.clone(), req));
        let connection = connections.watch(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // A client that goes away mid-request is its own problem, not the server's.
            let _ = connection.await;
        });
    }
    connections.shutdown().await;
    Ok(())
}

/// The address the endpoint is bound to, as a URL base.
pub(crate) fn base_url(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

async fn answer(store: Arc<Store>, req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let result = match *req.method() {
        Method::PUT => put(&store, req).await,
        Method::GET | Method::HEAD => get(&store, req).await,
        _ => Err((StatusCode::METHOD_NOT_ALLOWED, "only PUT and GET are served".to_string())),
    };
    Ok(result.unwrap_or_else(|(status, message)| {
        let mut response = Response::new(text(format!("{message}\n")));
        *response.status_mut() = status;
        response
    }))
}

/// A response body: the whole of it at once.
type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

fn text(message: String) -> Body {
    Full::new(Bytes::from(message)).boxed()
}

fn empty() -> Body {
    Empty::new().boxed()
}

type Answer = Result<Response<Body>, (StatusCode, String)>;

/// `/uploads/<project>/<domain>/<root>/<filename>` → its four parts.
fn parts(path: &str) -> Option<[&str; 4]> {
    let rest = path.strip_prefix("/uploads/")?;
    let parts: Vec<&str> = rest.split('/').collect();
    let ok = parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && *p != "."
                && *p != ".."
                && p.chars().all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        });
    ok.then(|| [parts[0], parts[1], parts[2], parts[3]])
}

async fn put(store: &Store, req: Request<Incoming>) -> Answer {
    let bad = |m: &str| (StatusCode::BAD_REQUEST, m.to_string());
    let path = req.uri().path().to_string();
    let [project, domain, root, filename] = parts(&path).ok_or_else(|| bad("not an upload path"))?;
    let query: Vec<(String, String)> = req
        .uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter_map(|kv| kv.split_once('=').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect();
    let param = |name: &str| query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let (Some(md5_hex), Some(expires), Some(given)) = (param("md5"), param("expires"), param("signature")) else {
        return Err((StatusCode::FORBIDDEN, "unsigned upload URL: ask CreateUploadLocation for one".into()));
    };
    let expires: i64 = expires.parse().map_err(|_| bad("bad expires"))?;
    if signature(store.secret(), &path, md5_hex, expires) != given {
        return Err((StatusCode::FORBIDDEN, "the upload URL's signature does not match".into()));
    }
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    if now > expires {
        return Err((StatusCode::FORBIDDEN, "the upload URL has expired".into()));
    }
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let length: u64 = header("content-length")
        .ok_or_else(|| (StatusCode::LENGTH_REQUIRED, "Content-Length is required".to_string()))?
        .parse()
        .map_err(|_| bad("bad Content-Length"))?;
    if length > MAX_UPLOAD {
        return Err((StatusCode::PAYLOAD_TOO_LARGE, format!("uploads are limited to {MAX_UPLOAD} bytes")));
    }
    let claimed = header("content-md5").ok_or_else(|| bad("Content-MD5 is required"))?;
    let claimed = base64::engine::general_purpose::STANDARD
        .decode(claimed.trim())
        .map_err(|_| bad("Content-MD5 is not base64"))?;
    if hex::encode(&claimed) != md5_hex {
        return Err(bad("Content-MD5 differs from the MD5 this upload URL was made for"));
    }
    let body = req.into_body().collect().await.map_err(|e| bad(&format!("reading the body: {e}")))?.to_bytes();
    if body.len() as u64 != length {
        return Err(bad(&format!("Content-Length is {length} but {} bytes arrived", body.len())));
    }
    if Md5::digest(&body).as_slice() != claimed.as_slice() {
        return Err(bad("the body's MD5 differs from Content-MD5"));
    }
    let dest = store.upload_path(project, domain, root, filename);
    let kept = write_once(&dest, &body).map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, format!("{e:#}")))?;
    if !kept {
        return Err((
            StatusCode::CONFLICT,
            format!("{path} already holds other bytes: uploads are immutable, upload under another name"),
        ));
    }
    let mut response = Response::new(empty());
    *response.status_mut() = StatusCode::CREATED;
    Ok(response)
}

async fn get(store: &Store, req: Request<Incoming>) -> Answer {
    let path = req.uri().path().to_string();
    let not_found = || (StatusCode::NOT_FOUND, format!("{path}: no such upload"));
    let [project, domain, root, filename] = parts(&path).ok_or_else(not_found)?;
    let file = store.upload_path(project, domain, root, filename);
    let bytes = std::fs::read(&file).map_err(|_| not_found())?;
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes));
    let body = if req.method() == Method::HEAD { empty() } else { Full::new(Bytes::from(bytes)).boxed() };
    let mut response = Response::new(body);
    response.headers_mut().insert("content-md5", md5.parse().expect("base64 is a valid header value"));
    Ok(response)
}

/// Stores `bytes` at `dest` unless something is there already (atomically: of two
/// concurrent uploads one wins, the other finds its bytes). True when `dest` now holds
/// `bytes`; false when it holds other bytes, which are kept.
fn write_once(dest: &std::path::Path, bytes: &[u8]) -> Result<bool> {
    if let Ok(existing) = std::fs::read(dest) {
        return Ok(existing == bytes);
    }
    let dir = dest.parent().context("an upload path has a parent")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp =
        tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
    std::io::Write::write_all(&mut tmp, bytes).with_context(|| format!("writing {}", dest.display()))?;
    match tmp.persist_noclobber(dest) {
        Ok(_) => Ok(true),
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => {
            let existing = std::fs::read(dest).with_context(|| format!("reading {}", dest.display()))?;
            Ok(existing == bytes)
        }
        Err(e) => Err(e.error).with_context(|| format!("storing {}", dest.display())),
    }
}
