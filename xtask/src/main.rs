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
                ExitCode::from(2)
            } else {
                eprintln!("error: {err:#}");
                ExitCode::from(1)
            }
        }
    }
}
