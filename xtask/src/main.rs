//! The `cargo xtask` binary: parses the command line, runs the command, maps errors to
//! exit statuses (2 for bad input, 1 for failures of the outside world).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Behave like other command-line tools when the reader goes away (`| head`): end
    // quietly instead of panicking on a broken pipe.
    // SAFETY: called before any thread starts; restores the default disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = xtask::cli::Cli::parse();
    match xtask::run(cli) {
        Ok(code) => code,
        Err(err) => {
            if xtask::error::is_user_error(&err) {
                eprintln!("error: {err}");
                annotate(&err);
                ExitCode::from(2)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    }
}

/// In GitHub Actions, also shows a bad-input error as an annotation on its file and line.
fn annotate(err: &anyhow::Error) {
    if xtask::settings::GITHUB_ACTIONS.get().as_deref() != Some("true") {
        return;
    }
    let Some(user) = err.chain().find_map(|e| e.downcast_ref::<xtask::error::UserError>()) else { return };
    let place = user.place();
    eprintln!("{}", xtask::github::error_annotation(place.map(|p| p.0), place.map(|p| p.1), &user.to_string()));
}
