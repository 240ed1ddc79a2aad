//! `cargo xtask test`: installs what the tests need on a machine of this kind (Debian
//! packages when root, the pinned flytekit venv), then runs `cargo test --workspace`.

use std::process::ExitCode;

use anyhow::{Context, Result};
use xshell::{cmd, Shell};

use crate::cli::Test;
use crate::repo::Repo;
use crate::venv;

/// Debian packages the tests use, with the command each provides.
const DEBIAN_PACKAGES: &[(&str, &str)] =
    &[("buildah", "buildah"), ("skopeo", "skopeo"), ("docker-registry", "docker-registry")];

pub fn run(args: Test) -> Result<ExitCode> {
    let repo = Repo::discover()?;
    let sh = Shell::new()?;
    sh.change_dir(&repo.root);

    install_debian_packages(&sh)?;
    let python = venv::ensure(&repo.root)?;
    eprintln!("python: {} (flytekit {})", python.display(), venv::FLYTEKIT_VERSION);

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let exe = std::env::current_exe().context("finding the xtask binary")?;
    let extra = args.cargo_args;
    let status = std::process::Command::new(cargo)
        .current_dir(&repo.root)
        .args(["test", "--workspace"])
        .args(&extra)
        .env("FLYTE_DEPLOY_PYTHON", &python)
        .env("FLYTE_DEPLOY_BIN", exe)
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

/// The path of a program on PATH.
pub fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}
