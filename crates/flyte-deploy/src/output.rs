//! What reaches the terminal besides the data a command prints: how much (`-q` errors and
//! data only, `-v` also where settings came from and each stage's time), set once from the
//! command line, and whether in colour (terminals only; `NO_COLOR`, `CLICOLOR_FORCE` through
//! `settings::colour`). Notes, warnings and verbose lines go to stderr through here.

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use crate::settings;

/// How much the tool says on stderr besides errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only (and the data asked for, on stdout).
    Quiet,
    /// Notes, warnings, progress on a terminal.
    Normal,
    /// `-v`: also where the endpoint and sign-in came from, and each stage's time.
    Verbose,
}

static VERBOSITY: AtomicU8 = AtomicU8::new(1);

/// Sets the verbosity for the rest of the process (the command line does, once).
pub fn set_verbosity(v: Verbosity) {
    VERBOSITY.store(v as u8, Ordering::Relaxed);
}

/// The verbosity the command line asked for.
pub fn verbosity() -> Verbosity {
    match VERBOSITY.load(Ordering::Relaxed) {
        0 => Verbosity::Quiet,
        1 => Verbosity::Normal,
        _ => Verbosity::Verbose,
    }
}

/// True when stderr gets colour: a terminal, unless `NO_COLOR`; or `CLICOLOR_FORCE`.
pub fn colour_stderr() -> bool {
    settings::colour(std::io::stderr().is_terminal())
}

/// `label` in `style` when stderr gets colour, else plain.
fn paint(label: &str, style: anstyle::Style) -> String {
    if colour_stderr() {
        format!("{style}{label}{style:#}")
    } else {
        label.to_string()
    }
}

/// The `error:` prefix, red and bold on a colour terminal.
pub fn error_prefix() -> String {
    paint("error:", anstyle::AnsiColor::Red.on_default().bold())
}

/// A note (something the user may want to know), unless quiet.
pub fn note(message: impl Display) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{} {message}", paint("note:", anstyle::AnsiColor::Cyan.on_default().bold()));
    }
}

/// A warning (something may be wrong; the command goes on), unless quiet.
pub fn warning(message: impl Display) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{} {message}", paint("warning:", anstyle::AnsiColor::Yellow.on_default().bold()));
    }
}

/// A line of what the tool is doing (installing uv, building an image), unless quiet.
pub fn status(message: impl Display) {
    if verbosity() >= Verbosity::Normal {
        eprintln!("{message}");
    }
}

/// A line for `-v` only: where a setting came from, how long a stage took.
pub fn verbose(message: impl Display) {
    if verbosity() >= Verbosity::Verbose {
        eprintln!("{} {message}", paint("info:", anstyle::AnsiColor::Green.on_default()));
    }
}

/// A `-v` line said once per run however often the same setting is looked up (the endpoint
/// is resolved by more than one step of a command).
pub fn verbose_once(message: impl Display) {
    static SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if verbosity() < Verbosity::Verbose {
        return;
    }
    let message = message.to_string();
    let mut said = SAID.lock().unwrap_or_else(|e| e.into_inner());
    if !said.contains(&message) {
        verbose(&message);
        said.push(message);
    }
}

/// Times a stage of a command; `-v` prints `stage NAME: 1.2s` when it is done.
pub struct Stage {
    name: &'static str,
    started: Instant,
}

impl Stage {
    pub fn start(name: &'static str) -> Stage {
        Stage { name, started: Instant::now() }
    }

    /// Says how long the stage took (with `-v`).
    pub fn done(self) {
        verbose(format_args!("stage {}: {:.2}s", self.name, self.started.elapsed().as_secs_f64()));
    }
}
