//! A person's OAuth2 sign-in, blocking: the authorization-code flow with PKCE (S256) through
//! a browser and a redirect listener on loopback (the port FlyteAdmin's public client names, else
//! a random one on 127.0.0.1), the device authorization
//! grant (code shown on stderr, token endpoint polled at the server's pace), the refresh
//! grant, and the tokens kept per endpoint and client in the tool's folder (files of mode
//! 0600). Prints only to stderr; never prints a token. `signin.rs` decides when to use which.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::artifacts::environment::{tool_home, which};
use crate::settings;

/// How long a browser sign-in may take before the tool gives up.
pub(crate) const BROWSER_TIMEOUT: Duration = Duration::from_secs(300);

/// Where and as whom a person signs in: the authorization server's endpoints and the public
/// client FlyteAdmin names.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    /// FlyteAdmin's address (messages and the token cache's key).
    pub endpoint: String,
    pub client_id: String,
    pub authorization_endpoint: String,
    pub token_endpoint: String,
    pub device_authorization_endpoint: String,
    /// Space separated.
    pub scopes: String,
    pub audience: Option<String>,
    /// The public client's redirect URI as FlyteAdmin names it (`http://localhost:53593/callback`
    /// by default; may be empty). See [`redirect_listener`].
    pub redirect_uri: String,
    /// The HTTP proxy OAuth2 requests go through (the Flyte config's `admin.httpProxyURL`).
    pub http_proxy: Option<String>,
}

/// The HTTP client of OAuth2 requests: through `proxy` when one is given.
pub(crate) fn http(proxy: Option<&str>) -> Result<ureq::Agent> {
    let mut builder = ureq::AgentBuilder::new().timeout(Duration::from_secs(60));
    if let Some(proxy) = proxy {
        let proxy = ureq::Proxy::new(proxy).map_err(|e| anyhow!("admin.httpProxyURL {proxy:?}: {e}"))?;
        builder = builder.proxy(proxy);
    }
    Ok(builder.build())
}

/// What an OAuth2 request's error says of the proxy it went through, if any.
pub(crate) fn through(proxy: Option<&str>) -> String {
    proxy.map(|p| format!(" (through the proxy {p})")).unwrap_or_default()
}

/// An access token, when it stops being good and how long it was good for, and the refresh
/// token that came with it. No `Debug`: tokens are never printed.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Token {
    pub access_token: String,
    /// Seconds since the Unix epoch.
    pub expires_at: u64,
    /// Seconds, as the server gave them (0: not known).
    #[serde(default)]
    pub lifetime: u64,
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// How long before its expiry a token is renewed: a minute, or a tenth of a shorter lifetime
/// (so a token good for 30 s is not renewed before every call).
pub(crate) const REFRESH_MARGIN: Duration = Duration::from_secs(60);

impl Token {
    /// True while the token has more than its renewal margin left.
    pub(crate) fn fresh(&self) -> bool {
        let margin = match self.lifetime {
            0 => REFRESH_MARGIN.as_secs(),
            lifetime => REFRESH_MARGIN.as_secs().min(lifetime / 10),
        };
        now() + margin < self.expires_at
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or_default()
}

/// A refusal of the token endpoint: the OAuth2 `error` code (RFC 6749 5.2), or none when it
/// did not answer in OAuth2's terms.
#[derive(Debug)]
pub(crate) struct Refusal {
    pub code: Option<String>,
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Refusal {}

/// POSTs a form to the token endpoint (or the device authorization endpoint) and reads the
/// JSON answer. Errors name the URL and the OAuth2 error, never the form's values.
fn post_form(client: &Client, url: &str, form: &[(&str, &str)]) -> Result<serde_json::Value, Refusal> {
    let proxy = client.http_proxy.as_deref();
    let agent = http(proxy).map_err(|e| Refusal { code: None, message: format!("{e:#}") })?;
    let answer = agent.post(url).set("Accept", "application/json").send_form(form);
    let response = match answer {
        Ok(response) => response,
        Err(ureq::Error::Status(status, response)) => {
            let body: serde_json::Value = response.into_json().unwrap_or_default();
            let code = body["error"].as_str().map(str::to_string);
            let description = body["error_description"].as_str().unwrap_or_default();
            let message = match &code {
                Some(code) if description.is_empty() => format!("{url}: HTTP {status}: {code}"),
                Some(code) => format!("{url}: HTTP {status}: {code}: {description}"),
                None => format!("{url}: HTTP {status}"),
            };
            return Err(Refusal { code, message });
        }
        Err(other) => {
            return Err(Refusal { code: None, message: format!("{url}{}: {}", through(proxy), other.kind()) })
        }
    };
    response.into_json().map_err(|e| Refusal { code: None, message: format!("{url}: the answer is not JSON: {e}") })
}

/// A token answer (RFC 6749 5.1) as a [`Token`]; a refresh token not sent again is kept.
fn token_of(url: &str, answer: &serde_json::Value, old_refresh: Option<&str>) -> Result<Token> {
    let access_token =
        answer["access_token"].as_str().ok_or_else(|| anyhow!("{url} answered without an access_token"))?;
    let lifetime = answer["expires_in"].as_u64().unwrap_or(300);
    let refresh_token = answer["refresh_token"].as_str().or(old_refresh).map(str::to_string);
    Ok(Token { access_token: access_token.to_string(), expires_at: now() + lifetime, lifetime, refresh_token })
}

/// The refresh grant.
pub(crate) fn refresh(client: &Client, refresh_token: &str) -> Result<Token> {
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh_token), ("client_id", &client.client_id)];
    let answer = post_form(client, &client.token_endpoint, &form).map_err(|e| anyhow!("refreshing the token: {e}"))?;
    token_of(&client.token_endpoint, &answer, Some(refresh_token))
}

/// URL-safe base64 of `n` random bytes.
fn random(n: usize) -> Result<String> {
    let mut bytes = vec![0u8; n];
    getrandom::getrandom(&mut bytes).map_err(|e| anyhow!("no randomness from the OS: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// PKCE's S256 challenge of a verifier (RFC 7636 4.2).
pub(crate) fn s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// The authorization-code flow with PKCE: the sign-in page opened in a browser (its URL
/// always printed on stderr), the code taken at a redirect listener on 127.0.0.1, exchanged
/// for a token.
pub(crate) fn pkce(client: &Client) -> Result<Token> {
    let verifier = random(32)?;
    let state = random(16)?;
    let (listener, redirect_uri, path) = redirect_listener(&client.redirect_uri)?;
    let mut url = url::Url::parse(&client.authorization_endpoint)
        .with_context(|| format!("FlyteAdmin's authorization endpoint {:?}", client.authorization_endpoint))?;
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &client.scopes)
            .append_pair("state", &state)
            .append_pair("code_challenge", &s256(&verifier))
            .append_pair("code_challenge_method", "S256");
        if let Some(audience) = &client.audience {
            query.append_pair("audience", audience);
        }
    }
    eprintln!("Sign in to FlyteAdmin at {} in your browser: {url}", client.endpoint);
    open_browser(url.as_str());
    let code = wait_for_code(&listener, &path, &state, BROWSER_TIMEOUT)?;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
        ("client_id", client.client_id.as_str()),
        ("code_verifier", verifier.as_str()),
    ];
    let answer =
        post_form(client, &client.token_endpoint, &form).map_err(|e| anyhow!("exchanging the sign-in code: {e}"))?;
    token_of(&client.token_endpoint, &answer, None)
}

/// The listener for the sign-in redirect, the redirect URI to send, and its path. A loopback
/// `http` URI with a port (FlyteAdmin's default public client registers
/// `http://localhost:53593/callback`, and authorization servers compare it exactly) is
/// listened on as it is; one without a port, or none, gets a random port on 127.0.0.1 (RFC
/// 8252 7.3: servers accept any port of a registered loopback URI) and the path `/callback`
/// unless it names one.
pub(crate) fn redirect_listener(configured: &str) -> Result<(TcpListener, String, String)> {
    let parsed = url::Url::parse(configured).ok().filter(|u| u.scheme() == "http");
    let loopback = |u: &url::Url| matches!(u.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    let path =
        parsed.as_ref().map(|u| u.path().to_string()).filter(|p| p.len() > 1).unwrap_or_else(|| "/callback".into());
    if let Some(fixed) = parsed.as_ref().filter(|u| loopback(u) && u.port().is_some()) {
        let port = fixed.port().unwrap_or_default();
        let ip = if fixed.host_str() == Some("[::1]") { "[::1]" } else { "127.0.0.1" };
        let listener = TcpListener::bind(format!("{ip}:{port}")).map_err(|e| {
            anyhow!("cannot listen on {ip}:{port} for the sign-in redirect to {configured} (FlyteAdmin's public client names it): {e}; is another sign-in running?")
        })?;
        return Ok((listener, configured.to_string(), path));
    }
    let listener = TcpListener::bind("127.0.0.1:0").context("listening on 127.0.0.1 for the sign-in redirect")?;
    let redirect_uri = format!("http://{}{path}", listener.local_addr()?);
    Ok((listener, redirect_uri, path))
}

/// Opens `url` with `FLYTE_DEPLOY_BROWSER` (a program given the URL as its argument), else
/// `xdg-open` or `open`. A browser that cannot be started is said, not fatal: the URL is on
/// stderr already.
fn open_browser(url: &str) {
    let program = settings::FLYTE_DEPLOY_BROWSER
        .get_os()
        .map(PathBuf::from)
        .or_else(|| which("xdg-open"))
        .or_else(|| which("open"));
    let Some(program) = program else {
        eprintln!("(no browser to open: set {} or open the URL yourself)", settings::FLYTE_DEPLOY_BROWSER.name);
        return;
    };
    // Its output must never reach stdout, which carries reports.
    let started = std::process::Command::new(&program)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn();
    match started {
        // Reaped in the background: a browser launcher may outlive the sign-in.
        Ok(mut child) => {
            std::thread::spawn(move || child.wait());
        }
        Err(e) => eprintln!("(could not start the browser {}: {e}; open the URL yourself)", program.display()),
    }
}

/// Waits for the browser's redirect to `path` carrying `state`; answers it with a page
/// saying the result. Other requests (a favicon, a stale tab) are answered 404 and ignored.
fn wait_for_code(listener: &TcpListener, path: &str, state: &str, timeout: Duration) -> Result<String> {
    listener.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    loop {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if Instant::now() > deadline {
                    bail!(
                        "no sign-in came back within {} s (the browser never reached the redirect)",
                        timeout.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
            Err(e) => return Err(e).context("accepting the sign-in redirect"),
        };
        if let Some(outcome) = read_redirect(stream, path, state)? {
            return outcome;
        }
    }
}

/// One request at the redirect listener: `Some` with the code or the server's refusal when it
/// is the redirect of this sign-in, `None` otherwise.
fn read_redirect(mut stream: TcpStream, path: &str, state: &str) -> Result<Option<Result<String>>> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let target = head.lines().next().and_then(|line| line.split_whitespace().nth(1)).unwrap_or("/");
    let url = url::Url::parse(&format!("http://127.0.0.1{target}")).ok();
    let reply = |stream: &mut TcpStream, status: &str, text: &str| {
        let page = format!("<!doctype html><title>flyte-deploy</title><p>{text}</p>\n");
        let _ = write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{page}",
            page.len()
        );
    };
    let Some(url) = url.filter(|u| u.path() == path) else {
        reply(&mut stream, "404 Not Found", "Not the sign-in redirect.");
        return Ok(None);
    };
    let param = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    if param("state").as_deref() != Some(state) {
        reply(&mut stream, "400 Bad Request", "This is not the sign-in flyte-deploy is waiting for.");
        return Ok(None);
    }
    if let Some(error) = param("error") {
        let description = param("error_description").unwrap_or_default();
        reply(&mut stream, "200 OK", "Sign-in failed; see the terminal.");
        return Ok(Some(Err(anyhow!("the sign-in was refused: {error} {description}"))));
    }
    let Some(code) = param("code") else {
        reply(&mut stream, "400 Bad Request", "The redirect carries no code.");
        return Ok(Some(Err(anyhow!("the sign-in redirect carried no code"))));
    };
    reply(&mut stream, "200 OK", "Signed in to FlyteAdmin. You may close this tab.");
    Ok(Some(Ok(code)))
}

/// The device authorization grant (RFC 8628): the code and where to enter it on stderr,
/// then the token endpoint polled every `interval` seconds (5 more after each `slow_down`)
/// until the person has signed in, refused, or the code expired.
pub(crate) fn device(client: &Client) -> Result<Token> {
    if client.device_authorization_endpoint.is_empty() {
        return Err(crate::error::user(
            format!("FlyteAdmin at {} names no device authorization endpoint", client.endpoint),
            "use authType Pkce (a browser on this machine), ClientSecret or ExternalCommand",
        ));
    }
    let mut form = vec![("client_id", client.client_id.as_str()), ("scope", client.scopes.as_str())];
    if let Some(audience) = &client.audience {
        form.push(("audience", audience));
    }
    let url = &client.device_authorization_endpoint;
    let answer = post_form(client, url, &form).map_err(|e| anyhow!("starting the device sign-in: {e}"))?;
    let field = |name: &str| answer[name].as_str().map(str::to_string);
    let device_code = field("device_code").ok_or_else(|| anyhow!("{url} answered without a device_code"))?;
    let user_code = field("user_code").ok_or_else(|| anyhow!("{url} answered without a user_code"))?;
    let verification = field("verification_uri").ok_or_else(|| anyhow!("{url} answered without verification_uri"))?;
    eprintln!("Sign in to FlyteAdmin at {}: open {verification} and enter the code {user_code}", client.endpoint);
    if let Some(complete) = field("verification_uri_complete") {
        eprintln!("  (or open {complete})");
    }
    let mut interval = Duration::from_secs(answer["interval"].as_u64().unwrap_or(5).max(1));
    let deadline = Instant::now() + Duration::from_secs(answer["expires_in"].as_u64().unwrap_or(600));
    let form = [
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", device_code.as_str()),
        ("client_id", client.client_id.as_str()),
    ];
    loop {
        std::thread::sleep(interval);
        match post_form(client, &client.token_endpoint, &form) {
            Ok(answer) => return token_of(&client.token_endpoint, &answer, None),
            Err(refusal) => match refusal.code.as_deref() {
                Some("authorization_pending") if Instant::now() < deadline => {}
                Some("slow_down") if Instant::now() < deadline => interval += Duration::from_secs(5),
                Some("authorization_pending" | "slow_down" | "expired_token") => {
                    bail!("the device sign-in code {user_code} expired before it was entered: run again")
                }
                Some("access_denied") => bail!("the device sign-in was refused at {verification}"),
                _ => return Err(anyhow!("waiting for the device sign-in: {refusal}")),
            },
        }
    }
}

/// Tokens kept between runs, one file per FlyteAdmin endpoint and client:
/// `<tool folder>/tokens/<sha256 of both>.json`, mode 0600 in a folder of mode 0700.
#[derive(Clone)]
pub(crate) struct TokenCache {
    pub file: PathBuf,
}

impl TokenCache {
    pub(crate) fn for_client(client: &Client) -> TokenCache {
        let key = Sha256::digest(format!("{}\n{}\n{}", client.endpoint, client.token_endpoint, client.client_id));
        TokenCache { file: tool_home().join("tokens").join(format!("{}.json", hex::encode(&key[..16]))) }
    }

    /// The kept token; `None` when there is none or it cannot be read (then it is replaced).
    pub(crate) fn load(&self) -> Option<Token> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Keeps `token`: written aside with mode 0600, then renamed over the old file.
    pub(crate) fn store(&self, token: &Token) -> Result<()> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        let dir = self.file.parent().unwrap_or(Path::new("."));
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
        let aside = dir.join(format!(".{}.{}", std::process::id(), random(6)?));
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&aside)
            .with_context(|| format!("writing {}", aside.display()))?;
        let json = serde_json::to_vec(token).context("encoding the token")?;
        file.write_all(&json).with_context(|| format!("writing {}", aside.display()))?;
        drop(file);
        std::fs::rename(&aside, &self.file).with_context(|| format!("replacing {}", self.file.display()))
    }

    /// Forgets the kept token (it was refused).
    pub(crate) fn forget(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
        let a = random(32).unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, random(32).unwrap());
    }

    #[test]
    fn the_redirect_listener_takes_only_its_own_redirect() {
        let listener = std::sync::Arc::new(TcpListener::bind("127.0.0.1:0").unwrap());
        let addr = listener.local_addr().unwrap();
        // One request at a time, each answered before the next is sent.
        let send = move |target: &str| {
            let mut s = TcpStream::connect(addr).unwrap();
            write!(s, "GET {target} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
            let mut answer = String::new();
            let _ = s.read_to_string(&mut answer);
            answer
        };
        let waiting = |state: &'static str, timeout: Duration| {
            let listener = listener.clone();
            std::thread::spawn(move || wait_for_code(&listener, "/callback", state, timeout))
        };
        let waiter = waiting("s1", Duration::from_secs(10));
        assert!(send("/favicon.ico").starts_with("HTTP/1.1 404"));
        assert!(send("/callback?code=old&state=other").starts_with("HTTP/1.1 400"));
        assert!(send("/callback?code=c%2B1&state=s1").contains("Signed in"));
        assert_eq!(waiter.join().unwrap().unwrap(), "c+1");

        let waiter = waiting("s2", Duration::from_secs(10));
        send("/callback?error=access_denied&state=s2");
        let err = waiter.join().unwrap().unwrap_err();
        assert!(format!("{err}").contains("access_denied"), "{err}");
        let err = wait_for_code(&listener, "/callback", "s3", Duration::from_millis(200)).unwrap_err();
        assert!(format!("{err}").contains("no sign-in came back"), "{err}");
    }

    #[test]
    fn the_redirect_uri_is_flyteadmins_when_it_names_a_port_else_any_port() {
        let free = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let named = format!("http://localhost:{free}/callback");
        let (listener, uri, path) = redirect_listener(&named).unwrap();
        assert_eq!((uri.as_str(), path.as_str()), (named.as_str(), "/callback"));
        assert_eq!(listener.local_addr().unwrap().port(), free);
        // Busy: says which port and why.
        let err = format!("{:#}", redirect_listener(&named).unwrap_err());
        assert!(err.contains(&free.to_string()) && err.contains("another sign-in"), "{err}");
        drop(listener);
        for (configured, expected_path) in
            [("http://127.0.0.1/cb", "/cb"), ("", "/callback"), ("https://flyte.example.com/callback", "/callback")]
        {
            let (listener, uri, path) = redirect_listener(configured).unwrap();
            let port = listener.local_addr().unwrap().port();
            assert_eq!(uri, format!("http://127.0.0.1:{port}{expected_path}"), "{configured:?}");
            assert_eq!(path, expected_path);
        }
    }

    #[test]
    fn kept_tokens_are_mode_0600_and_read_back() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let cache = TokenCache { file: dir.path().join("tokens/k.json") };
        assert!(cache.load().is_none());
        let token = Token {
            access_token: "a".into(),
            expires_at: now() + 100,
            lifetime: 3600,
            refresh_token: Some("r".into()),
        };
        cache.store(&token).unwrap();
        let mode = std::fs::metadata(&cache.file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let back = cache.load().unwrap();
        assert_eq!((back.access_token.as_str(), back.refresh_token.as_deref()), ("a", Some("r")));
        assert!(back.fresh(), "100 s left of an hour: more than the minute's margin");
        // Within a minute of its expiry: renewed; a short-lived token only within a tenth of
        // its lifetime.
        let ending = Token { expires_at: now() + 50, ..back.clone() };
        assert!(!ending.fresh());
        let short = Token { expires_at: now() + 25, lifetime: 30, ..back };
        assert!(short.fresh());
        assert!(!Token { expires_at: now() + 2, ..short }.fresh());
        cache.forget();
        assert!(cache.load().is_none());
    }
}
