//! The Flyte config users already have: the `admin:` section of the file pyflyte and flytectl
//! read (`FLYTECTL_CONFIG`, else `~/.flyte/config.yaml`) and flytekit's `FLYTE_PLATFORM_*` /
//! `FLYTE_CREDENTIALS_*` variables, over the file. Reads and validates; connects nothing.

use std::path::{Path, PathBuf};

use anyhow::Result;
use yaml_rust2::{Yaml, YamlLoader};

use crate::error;
use crate::settings;

/// How the Flyte config signs in (`admin.authType`, or `FLYTE_CREDENTIALS_AUTH_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthType {
    /// Authorization code with PKCE in a browser (`Pkce`; flytekit's `standard`).
    Pkce,
    /// OAuth2 client credentials (`ClientSecret`; flytekit's `basic`, `client_credentials`).
    ClientSecret,
    /// A program that prints a token (`ExternalCommand`; flytekit's `external_process`).
    ExternalCommand,
    /// The device authorization grant (`DeviceFlow`; flytekit's `device_flow`).
    DeviceFlow,
}

impl AuthType {
    /// flytectl's spelling (any case) or flytekit's auth mode.
    pub fn parse(value: &str) -> Option<AuthType> {
        Some(match value.trim().to_ascii_lowercase().as_str() {
            "pkce" | "standard" => AuthType::Pkce,
            "clientsecret" | "basic" | "client_credentials" | "clientcredentials" => AuthType::ClientSecret,
            "externalcommand" | "external_process" | "externalprocess" => AuthType::ExternalCommand,
            "deviceflow" | "device_flow" => AuthType::DeviceFlow,
            _ => return None,
        })
    }
}

/// What the Flyte config says about FlyteAdmin and signing in.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FlyteConfig {
    /// The file it came from (`None`: only variables were set).
    pub file: Option<PathBuf>,
    /// `admin.endpoint` (`FLYTE_PLATFORM_URL`).
    pub endpoint: Option<String>,
    /// `admin.insecure` (`FLYTE_PLATFORM_INSECURE`): plain gRPC.
    pub insecure: bool,
    /// `admin.insecureSkipVerify`.
    pub insecure_skip_verify: bool,
    /// `admin.caCertFilePath`, relative paths taken from the file's folder.
    pub ca_cert: Option<PathBuf>,
    /// `admin.authType` (`FLYTE_CREDENTIALS_AUTH_MODE`); `None` when not set.
    pub auth_type: Option<AuthType>,
    /// `admin.clientId` (`FLYTE_CREDENTIALS_CLIENT_ID`).
    pub client_id: Option<String>,
    /// The secret itself (`FLYTE_CREDENTIALS_CLIENT_SECRET`; never from the file).
    pub client_secret: Option<String>,
    /// `admin.clientSecretLocation`: a file holding the secret.
    pub client_secret_location: Option<PathBuf>,
    /// `admin.clientSecretEnvVar`: the variable holding the secret.
    pub client_secret_env_var: Option<String>,
    /// `admin.scopes` (`FLYTE_CREDENTIALS_SCOPES`).
    pub scopes: Vec<String>,
    /// `admin.audience`.
    pub audience: Option<String>,
    /// `admin.tokenUrl`: the token endpoint, else discovered.
    pub token_url: Option<String>,
    /// `admin.command`: the argv of a program that prints a token.
    pub command: Vec<String>,
    /// `admin.proxyCommand`: the argv of a program that prints a token for the proxy in front
    /// of FlyteAdmin (e.g. an identity-aware proxy), sent on every call as
    /// `proxy-authorization: Bearer TOKEN`.
    pub proxy_command: Vec<String>,
    /// `admin.httpProxyURL`: the HTTP proxy that OAuth2 requests (token endpoint, sign-in)
    /// go through; gRPC calls to FlyteAdmin do not.
    pub http_proxy_url: Option<String>,
}

impl FlyteConfig {
    /// Where the values came from, for messages: the file, else the variables.
    pub fn source(&self) -> String {
        match &self.file {
            Some(file) => file.display().to_string(),
            None => "FLYTE_PLATFORM_URL / FLYTE_CREDENTIALS_* variables".into(),
        }
    }

    /// The host the endpoint names (lowercase), for "does the file describe this endpoint?".
    pub fn host(&self) -> Option<String> {
        self.endpoint.as_deref().and_then(host_of)
    }

    /// True when nothing was set (no file, no variable).
    pub fn is_empty(&self) -> bool {
        *self == FlyteConfig::default()
    }
}

/// The host of an endpoint written as `dns:///host:port`, `host:port` or a URL, lowercase.
pub fn host_of(endpoint: &str) -> Option<String> {
    let rest = endpoint.trim();
    let rest = rest.split_once("://").map_or(rest, |(_, r)| r);
    let rest = rest.trim_start_matches('/');
    let authority = rest.split('/').next().unwrap_or_default();
    let host = if let Some(bracketed) = authority.strip_prefix('[') {
        bracketed.split(']').next().unwrap_or_default()
    } else {
        authority.rsplit_once(':').map_or(authority, |(h, _)| h)
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The Flyte config file's path: `FLYTECTL_CONFIG`, else `~/.flyte/config.yaml` when it
/// exists. The named file must exist; the default one may not.
pub fn path() -> Option<(PathBuf, bool)> {
    if let Some(named) = settings::FLYTECTL_CONFIG.get() {
        return Some((PathBuf::from(named), true));
    }
    let home = settings::HOME.get()?;
    let default = Path::new(&home).join(".flyte/config.yaml");
    default.exists().then_some((default, false))
}

/// The user's Flyte config: the file (if any) with the flytekit variables over it.
pub fn load() -> Result<FlyteConfig> {
    let mut config = match path() {
        Some((file, _)) => {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                error::user(
                    format!("{}: cannot read the Flyte config: {e}", file.display()),
                    "fix the file or point FLYTECTL_CONFIG at a readable one",
                )
            })?;
            parse(&file, &text)?
        }
        None => FlyteConfig::default(),
    };
    apply_variables(&mut config, &Variables::from_env())?;
    Ok(config)
}

/// flytekit's variables, as read.
#[derive(Debug, Clone, Default)]
pub struct Variables {
    pub platform_url: Option<String>,
    pub platform_insecure: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub auth_mode: Option<String>,
    pub scopes: Option<String>,
}

impl Variables {
    /// From the process environment.
    pub fn from_env() -> Variables {
        Variables {
            platform_url: settings::FLYTE_PLATFORM_URL.get(),
            platform_insecure: settings::FLYTE_PLATFORM_INSECURE.get(),
            client_id: settings::FLYTE_CREDENTIALS_CLIENT_ID.get(),
            client_secret: settings::FLYTE_CREDENTIALS_CLIENT_SECRET.get(),
            auth_mode: settings::FLYTE_CREDENTIALS_AUTH_MODE.get(),
            scopes: settings::FLYTE_CREDENTIALS_SCOPES.get(),
        }
    }
}

/// The variables over the file's values (flytekit's precedence: a variable wins).
pub fn apply_variables(config: &mut FlyteConfig, vars: &Variables) -> Result<()> {
    if let Some(url) = &vars.platform_url {
        config.endpoint = Some(url.trim().to_string());
    }
    if let Some(value) = &vars.platform_insecure {
        config.insecure = match value.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" => false,
            _ => {
                return Err(error::user(
                    format!("FLYTE_PLATFORM_INSECURE={value:?} is not true or false"),
                    "set it to true or false",
                ))
            }
        };
    }
    if let Some(id) = &vars.client_id {
        config.client_id = Some(id.trim().to_string());
    }
    if let Some(secret) = &vars.client_secret {
        config.client_secret = Some(secret.trim().to_string());
    }
    if let Some(mode) = &vars.auth_mode {
        config.auth_type = Some(AuthType::parse(mode).ok_or_else(|| {
            error::user(
                format!("FLYTE_CREDENTIALS_AUTH_MODE={mode:?} is not a sign-in mode"),
                "use standard (PKCE), basic (client credentials), external_process or device_flow",
            )
        })?);
    }
    if let Some(scopes) = &vars.scopes {
        config.scopes = scopes.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect();
    }
    Ok(())
}

/// Parses the file's text. Keys outside `admin:` and unknown `admin` keys are other tools'
/// business and ignored; a known key with a value of the wrong kind is an error naming the
/// file and the key (exit 2).
pub fn parse(file: &Path, text: &str) -> Result<FlyteConfig> {
    let bad = |key: &str, what: &str| {
        error::user(
            format!("{}: `{key}` {what}", file.display()),
            "fix the Flyte config (flytectl's keys: https://docs.flyte.org/en/latest/deployment/configuration/)",
        )
    };
    let docs = YamlLoader::load_from_str(text).map_err(|e| {
        error::user(
            format!("{}:{}:{}: not valid YAML: {}", file.display(), e.marker().line(), e.marker().col() + 1, e.info()),
            "fix the Flyte config's YAML",
        )
    })?;
    let mut config = FlyteConfig { file: Some(file.to_path_buf()), ..FlyteConfig::default() };
    let Some(doc) = docs.first() else { return Ok(config) };
    let admin = match doc {
        Yaml::Hash(top) => match top.get(&Yaml::String("admin".into())) {
            None | Some(Yaml::Null) => return Ok(config),
            Some(Yaml::Hash(admin)) => admin,
            Some(_) => return Err(bad("admin", "is not a mapping")),
        },
        Yaml::Null => return Ok(config),
        _ => return Err(bad("(top level)", "is not a mapping")),
    };
    let folder = file.parent().unwrap_or(Path::new("."));
    for (key, value) in admin {
        let Yaml::String(key) = key else { continue };
        let name = format!("admin.{key}");
        let string = || -> Result<Option<String>> {
            match value {
                Yaml::Null => Ok(None),
                Yaml::String(s) if s.trim().is_empty() => Ok(None),
                Yaml::String(s) => Ok(Some(s.trim().to_string())),
                Yaml::Integer(i) => Ok(Some(i.to_string())),
                _ => Err(bad(&name, "must be a string")),
            }
        };
        let boolean = || -> Result<bool> {
            match value {
                Yaml::Null => Ok(false),
                Yaml::Boolean(b) => Ok(*b),
                Yaml::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
                Yaml::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
                _ => Err(bad(&name, "must be true or false")),
            }
        };
        let list = || -> Result<Vec<String>> {
            match value {
                Yaml::Null => Ok(Vec::new()),
                Yaml::String(s) => Ok(s.split([',', ' ']).filter(|s| !s.is_empty()).map(str::to_string).collect()),
                Yaml::Array(items) => items
                    .iter()
                    .map(|item| match item {
                        Yaml::String(s) => Ok(s.clone()),
                        _ => Err(bad(&name, "must be a list of strings")),
                    })
                    .collect(),
                _ => Err(bad(&name, "must be a list of strings")),
            }
        };
        match key.as_str() {
            "endpoint" => config.endpoint = string()?,
            "insecure" => config.insecure = boolean()?,
            "insecureSkipVerify" => config.insecure_skip_verify = boolean()?,
            "caCertFilePath" => config.ca_cert = string()?.map(|p| folder.join(expand_home(&p))),
            "authType" => {
                config.auth_type = match string()? {
                    None => None,
                    Some(v) => Some(
                        AuthType::parse(&v)
                            .ok_or_else(|| bad(&name, "must be Pkce, ClientSecret, ExternalCommand or DeviceFlow"))?,
                    ),
                }
            }
            "clientId" => config.client_id = string()?,
            "clientSecretLocation" => config.client_secret_location = string()?.map(|p| folder.join(expand_home(&p))),
            "clientSecretEnvVar" => config.client_secret_env_var = string()?,
            "scopes" => config.scopes = list()?,
            "audience" => config.audience = string()?,
            "tokenUrl" => config.token_url = string()?,
            "command" => config.command = list()?,
            "proxyCommand" => config.proxy_command = list()?,
            "httpProxyURL" => {
                config.http_proxy_url = match string()? {
                    Some(url) if url.starts_with("http://") || url.starts_with("https://") => Some(url),
                    Some(_) => return Err(bad(&name, "must be an http:// or https:// URL (the proxy's address)")),
                    None => None,
                }
            }
            _ => {}
        }
    }
    if config.endpoint.as_deref().is_some_and(|e| host_of(e).is_none()) {
        return Err(bad("admin.endpoint", "names no host (write dns:///HOST:PORT)"));
    }
    Ok(config)
}

/// `~/x` as flytectl expands it (against `HOME`).
fn expand_home(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), settings::HOME.get()) {
        (Some(rest), Some(home)) => Path::new(&home).join(rest),
        _ => PathBuf::from(path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<FlyteConfig> {
        parse(Path::new("/home/u/.flyte/config.yaml"), text)
    }

    #[test]
    fn flytectl_config_init_file_is_read() {
        // What `flytectl config init --host=flyte.example.com` writes, plus sign-in keys.
        let c = parsed(
            "admin:\n  # For GRPC endpoints you might want to use dns:///flyte.myexample.com\n  endpoint: dns:///flyte.example.com\n  authType: Pkce\n  insecure: false\nlogger:\n  show-source: true\n  level: 0\n",
        )
        .unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("dns:///flyte.example.com"));
        assert_eq!(c.auth_type, Some(AuthType::Pkce));
        assert!(!c.insecure);
        assert_eq!(c.host().as_deref(), Some("flyte.example.com"));

        let c = parsed(
            "admin:\n  endpoint: localhost:30080\n  insecure: true\n  insecureSkipVerify: true\n  caCertFilePath: ca.pem\n  authType: ClientSecret\n  clientId: ci\n  clientSecretLocation: /etc/secrets/client_secret\n  clientSecretEnvVar: MY_SECRET\n  scopes: [all, offline]\n  audience: https://aud\n  tokenUrl: http://127.0.0.1:1/token\n  command: [get-token, --quiet]\n  someFutureKey: 3\n",
        )
        .unwrap();
        assert!(c.insecure && c.insecure_skip_verify);
        assert_eq!(c.ca_cert, Some(PathBuf::from("/home/u/.flyte/ca.pem")));
        assert_eq!(c.auth_type, Some(AuthType::ClientSecret));
        assert_eq!(c.client_id.as_deref(), Some("ci"));
        assert_eq!(c.client_secret_location, Some(PathBuf::from("/etc/secrets/client_secret")));
        assert_eq!(c.client_secret_env_var.as_deref(), Some("MY_SECRET"));
        assert_eq!(c.scopes, ["all", "offline"]);
        assert_eq!(c.audience.as_deref(), Some("https://aud"));
        assert_eq!(c.token_url.as_deref(), Some("http://127.0.0.1:1/token"));
        assert_eq!(c.command, ["get-token", "--quiet"]);
        assert_eq!(c.host().as_deref(), Some("localhost"));

        assert_eq!(parsed("").unwrap().endpoint, None);
        assert_eq!(parsed("logger: {level: 1}\n").unwrap().endpoint, None);
    }

    #[test]
    fn bad_values_name_the_file_and_key() {
        let message = |text: &str| format!("{:#}", parsed(text).unwrap_err());
        let m = message("admin:\n  insecure: maybe\n");
        assert!(m.contains("/home/u/.flyte/config.yaml") && m.contains("admin.insecure"), "{m}");
        assert!(message("admin:\n  authType: Magic\n").contains("admin.authType"));
        assert!(message("admin:\n  scopes: {a: 1}\n").contains("admin.scopes"));
        assert!(message("admin: [1]\n").contains("`admin`"));
        assert!(message("admin:\n  endpoint: dns:///\n").contains("admin.endpoint"));
        assert!(message("admin:\n  httpProxyURL: proxy:3128\n").contains("admin.httpProxyURL` must be an http://"));
        let c =
            parsed("admin:\n  httpProxyURL: http://proxy:3128\n  proxyCommand: [iap-token, --audience, x]\n").unwrap();
        assert_eq!(c.http_proxy_url.as_deref(), Some("http://proxy:3128"));
        assert_eq!(c.proxy_command, ["iap-token", "--audience", "x"]);
        let m = message("admin:\n  endpoint: [\n");
        assert!(m.contains("config.yaml:") && m.contains("not valid YAML"), "{m}");
        for text in ["admin:\n  insecure: 2\n", "admin:\n  endpoint: [\n"] {
            assert!(parsed(text).unwrap_err().downcast_ref::<error::UserError>().is_some(), "exit 2: {text}");
        }
    }

    #[test]
    fn flytekit_variables_win_over_the_file() {
        let mut c = parsed("admin:\n  endpoint: dns:///file.example.com\n  authType: Pkce\n  clientId: f\n").unwrap();
        let vars = Variables {
            platform_url: Some("env.example.com:443".into()),
            platform_insecure: Some("True".into()),
            client_id: Some("ci".into()),
            client_secret: Some("s3cret".into()),
            auth_mode: Some("basic".into()),
            scopes: Some("all,offline".into()),
        };
        apply_variables(&mut c, &vars).unwrap();
        assert_eq!(c.endpoint.as_deref(), Some("env.example.com:443"));
        assert!(c.insecure);
        assert_eq!(c.client_id.as_deref(), Some("ci"));
        assert_eq!(c.client_secret.as_deref(), Some("s3cret"));
        assert_eq!(c.auth_type, Some(AuthType::ClientSecret));
        assert_eq!(c.scopes, ["all", "offline"]);
        let bad = Variables { platform_insecure: Some("sometimes".into()), ..Variables::default() };
        assert!(format!("{:#}", apply_variables(&mut c, &bad).unwrap_err()).contains("FLYTE_PLATFORM_INSECURE"));
        let bad = Variables { auth_mode: Some("magic".into()), ..Variables::default() };
        assert!(format!("{:#}", apply_variables(&mut c, &bad).unwrap_err()).contains("FLYTE_CREDENTIALS_AUTH_MODE"));
    }

    #[test]
    fn hosts_are_compared_without_scheme_or_port() {
        assert_eq!(host_of("dns:///Flyte.Example.com:443").as_deref(), Some("flyte.example.com"));
        assert_eq!(host_of("https://flyte.example.com/console").as_deref(), Some("flyte.example.com"));
        assert_eq!(host_of("flyte.example.com").as_deref(), Some("flyte.example.com"));
        assert_eq!(host_of("http://[::1]:8089").as_deref(), Some("::1"));
        assert_eq!(host_of("dns:///"), None);
    }
}
