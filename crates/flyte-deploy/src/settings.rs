//! Every environment variable flyte-deploy reads, declared once with what it means; the one
//! module that reads the process environment (a tidy test holds every other module to it).
//! Reading only: nothing here decides what a value means beyond "set and not blank", and
//! [`in_ci`], the one answer to "is this CI?".

use std::ffi::OsString;

/// An environment variable the tool reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Var {
    pub name: &'static str,
    /// What it does, for messages and the README.
    pub doc: &'static str,
}

impl Var {
    /// Its value, when set, valid UTF-8 and not blank.
    pub fn get(self) -> Option<String> {
        std::env::var(self.name).ok().filter(|v| !v.trim().is_empty())
    }

    /// Its value as the OS gives it, when set and not empty.
    pub fn get_os(self) -> Option<OsString> {
        std::env::var_os(self.name).filter(|v| !v.is_empty())
    }
}

impl std::fmt::Display for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

macro_rules! vars {
    ($($(#[doc = $doc:literal])+ $id:ident;)+) => {
        $(
            $(#[doc = $doc])+
            pub const $id: Var = Var { name: stringify!($id), doc: concat!($($doc),+) };
        )+
        /// Every variable above, in declaration order.
        pub const ALL: &[Var] = &[$($id),+];
    };
}

vars! {
    /// The FlyteAdmin endpoint, over `[flyte] endpoint`.
    FLYTE_ENDPOINT;
    /// The program that opens the sign-in page (PKCE), given its URL (default `xdg-open`, `open`).
    FLYTE_DEPLOY_BROWSER;
    /// A bearer token for FlyteAdmin.
    FLYTE_TOKEN;
    /// OAuth2 client-credentials client id.
    FLYTE_CLIENT_ID;
    /// OAuth2 client-credentials secret.
    FLYTE_CLIENT_SECRET;
    /// The OAuth2 token endpoint (else discovered).
    FLYTE_TOKEN_URL;
    /// OAuth2 scopes, space- or comma-separated.
    FLYTE_SCOPES;
    /// The OAuth2 audience.
    FLYTE_AUDIENCE;
    /// The Flyte config file pyflyte and flytectl read (default `~/.flyte/config.yaml`).
    FLYTECTL_CONFIG;
    /// flytekit's FlyteAdmin endpoint, over the Flyte config's `admin.endpoint`.
    FLYTE_PLATFORM_URL;
    /// flytekit's plain-gRPC switch, over the Flyte config's `admin.insecure`.
    FLYTE_PLATFORM_INSECURE;
    /// flytekit's OAuth2 client id, over `admin.clientId`.
    FLYTE_CREDENTIALS_CLIENT_ID;
    /// flytekit's OAuth2 client secret.
    FLYTE_CREDENTIALS_CLIENT_SECRET;
    /// flytekit's sign-in mode (`standard`, `basic`, `external_process`, `device_flow`), over `admin.authType`.
    FLYTE_CREDENTIALS_AUTH_MODE;
    /// flytekit's OAuth2 scopes (comma-separated), over `admin.scopes`.
    FLYTE_CREDENTIALS_SCOPES;
    /// The length of `git-sha` versions (7 to 40).
    FLYTE_DEPLOY_SHA_LENGTH;
    /// Registries reached over plain http besides loopback ones (comma-separated hosts).
    FLYTE_DEPLOY_INSECURE_REGISTRIES;
    /// Registry user name (with the password), over Docker's config.json.
    FLYTE_DEPLOY_REGISTRY_USERNAME;
    /// Registry password.
    FLYTE_DEPLOY_REGISTRY_PASSWORD;
    /// The platform images are built for (`linux/amd64`).
    FLYTE_DEPLOY_PLATFORM;
    /// buildah/podman storage driver.
    FLYTE_DEPLOY_STORAGE_DRIVER;
    /// buildah/podman storage root.
    FLYTE_DEPLOY_STORAGE_ROOT;
    /// buildah/podman run root.
    FLYTE_DEPLOY_STORAGE_RUNROOT;
    /// The Python interpreter serialization environments are made from.
    FLYTE_DEPLOY_PYTHON;
    /// The folder of the serialization environments (default `.flyte/cache/envs`).
    FLYTE_DEPLOY_ENVS;
    /// Their size budget in decimal gigabytes (default 20).
    FLYTE_DEPLOY_ENVS_MAX_GB;
    /// The tool's own folder, where uv is installed (default `~/.cache/flyte-deploy`).
    FLYTE_DEPLOY_HOME;
    /// Variables workflow code and uv must never see, comma-separated.
    FLYTE_DEPLOY_SECRET_VARS;
    /// How long one workflow may take to serialize (seconds, or `10m`; default 600 s).
    FLYTE_DEPLOY_SERIALIZE_TIMEOUT;
    /// How long a matrix entry waits for an entity it references that another entry of the
    /// same plan deploys (seconds, or `20m`; default 20 minutes).
    FLYTE_DEPLOY_REFERENCE_WAIT;
    /// `true` or `1` in CI: images may be built.
    CI;
    /// Set and not empty: no colour, even on a terminal (no-color.org).
    NO_COLOR;
    /// Set and not `0`: colour even when the output is not a terminal (unless `NO_COLOR`).
    CLICOLOR_FORCE;
    /// The terminal's type: `dumb` gets no colour.
    TERM;
    /// `true` in GitHub Actions: errors are also written as `::error` annotations.
    GITHUB_ACTIONS;
    /// A pull request's target branch (GitHub Actions).
    GITHUB_BASE_REF;
    /// A pull request's source branch (GitHub Actions).
    GITHUB_HEAD_REF;
    /// The pushed branch or tag (GitHub Actions).
    GITHUB_REF_NAME;
    /// The event payload file (GitHub Actions): a push's `before`.
    GITHUB_EVENT_PATH;
    /// A merge request's target branch (GitLab CI).
    CI_MERGE_REQUEST_TARGET_BRANCH_NAME;
    /// A merge request's source branch (GitLab CI).
    CI_MERGE_REQUEST_SOURCE_BRANCH_NAME;
    /// The pushed branch (GitLab CI; unset for tags and merge requests).
    CI_COMMIT_BRANCH;
    /// Where `plan --format github-matrix` appends its outputs.
    GITHUB_OUTPUT;
    /// Where the deploy report's markdown is appended.
    GITHUB_STEP_SUMMARY;
    /// Who deploys, in GitHub Actions.
    GITHUB_ACTOR;
    /// Who deploys, in GitLab CI.
    GITLAB_USER_LOGIN;
    /// Who deploys, elsewhere.
    USER;
    /// The user's home: Docker's config.json and the tool's folder are found from it.
    HOME;
    /// Docker's configuration folder (config.json).
    DOCKER_CONFIG;
    /// The XDG cache folder (the tool's folder is below it).
    XDG_CACHE_HOME;
    /// Where programs are found.
    PATH;
    /// The cargo that runs the tests and benchmarks.
    CARGO;
    /// Cargo's target folder.
    CARGO_TARGET_DIR;
    /// `bench plan` only: the alternative a plan runs with (`sqlite-versions`,
    /// `postcard-versions`: the versions cache in that format).
    FLYTE_DEPLOY_BENCH_PLAN;
}

/// True when `FLYTE_DEPLOY_BENCH_PLAN` names `variant`.
pub fn bench_plan_variant(variant: &str) -> bool {
    FLYTE_DEPLOY_BENCH_PLAN.get().is_some_and(|v| v.split(',').any(|v| v.trim() == variant))
}

/// The variable the user's Flyte config names (`admin.clientSecretEnvVar`), when set and
/// not blank: the one read of a variable not declared above, because the user declares it.
pub fn named(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// Every variable of the process, for the scrubbed environments programs get.
pub fn all_vars() -> Vec<(OsString, OsString)> {
    std::env::vars_os().collect()
}

/// True when `CI` is `true` or `1` (GitHub Actions and GitLab CI set it): images may be
/// built, progress is printed as lines. The one place that says what counts as CI.
pub fn in_ci() -> bool {
    CI.get().is_some_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether output to a stream gets colour: never with `NO_COLOR` (or `TERM=dumb` without a
/// force), always with `CLICOLOR_FORCE` other than `0`, else when the stream is a terminal.
pub fn colour(is_terminal: bool) -> bool {
    colour_from(NO_COLOR.get_os().is_some(), CLICOLOR_FORCE.get(), TERM.get(), is_terminal)
}

fn colour_from(no_color: bool, force: Option<String>, term: Option<String>, is_terminal: bool) -> bool {
    if no_color {
        return false;
    }
    if force.is_some_and(|f| f.trim() != "0") {
        return true;
    }
    is_terminal && term.as_deref() != Some("dumb")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variable_is_declared_once_and_documented() {
        let mut names: Vec<&str> = ALL.iter().map(|v| v.name).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(names.len(), before);
        assert!(ALL.iter().all(|v| !v.doc.trim().is_empty()));
        assert_eq!(FLYTE_DEPLOY_ENVS.name, "FLYTE_DEPLOY_ENVS");
    }

    #[test]
    fn colour_on_terminals_unless_no_color_and_anywhere_when_forced() {
        let force = |v: &str| Some(v.to_string());
        assert!(colour_from(false, None, None, true));
        assert!(!colour_from(false, None, None, false));
        assert!(!colour_from(true, None, None, true), "NO_COLOR");
        assert!(!colour_from(true, force("1"), None, true), "NO_COLOR wins over CLICOLOR_FORCE");
        assert!(colour_from(false, force("1"), None, false), "CLICOLOR_FORCE");
        assert!(!colour_from(false, force("0"), None, false), "CLICOLOR_FORCE=0 forces nothing");
        assert!(!colour_from(false, None, Some("dumb".into()), true), "TERM=dumb");
    }
}
