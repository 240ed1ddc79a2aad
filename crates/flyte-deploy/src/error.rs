//! User-facing errors: bad input that the user must fix, reported as one message with
//! exit status 2. Owns the error type and the `file:line:col` formatting; decides nothing else.

use std::fmt;
use std::path::Path;

/// Bad input (config, manifest, git ref, path, policy). `main` prints it and exits with 2;
/// every other error is a failure of the outside world and exits with 1.
#[derive(Debug)]
pub struct UserError {
    /// What is wrong, with where: `deploy.toml:3:1: ...` or `ref 'main~9': ...`.
    pub what: String,
    /// What to do about it.
    pub help: String,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.help.is_empty() {
            write!(f, "{}", self.what)
        } else {
            write!(f, "{}\n  help: {}", self.what, self.help)
        }
    }
}

impl std::error::Error for UserError {}

/// A [`UserError`] as an `anyhow::Error`.
pub fn user(what: impl Into<String>, help: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UserError { what: what.into(), help: help.into() })
}

/// A [`UserError`] located at a byte offset of a file's text (line and column are 1-based).
pub fn at(file: &Path, text: &str, offset: usize, what: impl fmt::Display, help: impl Into<String>) -> anyhow::Error {
    let (line, col) = line_col(text, offset);
    user(format!("{}:{line}:{col}: {what}", file.display()), help)
}

/// 1-based line and column (in characters) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..floor_char_boundary(text, offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

impl UserError {
    /// The file and line the message starts with (`file:line:col: ...`), if any.
    pub fn place(&self) -> Option<(&str, usize)> {
        let mut parts = self.what.splitn(4, ':');
        let (file, line, col) = (parts.next()?, parts.next()?, parts.next()?);
        let line = line.parse().ok()?;
        col.parse::<usize>().ok()?;
        (!file.is_empty() && !file.contains(' ')).then_some((file, line))
    }
}

/// True when `err` (or anything it wraps) is a [`UserError`].
pub fn is_user_error(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.is::<UserError>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn place_is_read_from_the_message() {
        let e = UserError { what: "deploy.toml:3:7: unknown field".into(), help: String::new() };
        assert_eq!(e.place(), Some(("deploy.toml", 3)));
        let e = UserError { what: "ref 'x': cannot be resolved".into(), help: String::new() };
        assert_eq!(e.place(), None);
    }

    #[test]
    fn line_col_counts_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_col(text, 0), (1, 1));
        assert_eq!(line_col(text, 6), (2, 1));
        // 'é' is two bytes but one column.
        assert_eq!(line_col(text, 9), (2, 3));
    }
}
