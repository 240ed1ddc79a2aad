//! Conventions checked on the repository's own files: every Rust file opens with its `//!`
//! line; no trailing whitespace, no TODO or FIXME markers; the environment is read only in
//! `settings.rs`; the modules that parse user input do not `unwrap()`; ARCHITECTURE.md's
//! code map names every module of `xtask/src`, and only modules that exist.

use std::process::Command;

use tests::project_root;

/// The files git tracks, repository-relative.
fn tracked() -> Vec<String> {
    let out = Command::new("git").current_dir(project_root()).args(["ls-files", "-z"]).output().expect("running git");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout).unwrap().split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(project_root().join(path)).unwrap_or_default()
}

/// The lines before a file's `#[cfg(test)]` module.
fn code_part(text: &str) -> &str {
    text.find("#[cfg(test)]").map_or(text, |i| &text[..i])
}

#[test]
fn every_rust_file_says_what_it_is_for() {
    let missing: Vec<String> =
        tracked().into_iter().filter(|p| p.ends_with(".rs") && !read(p).starts_with("//!")).collect();
    assert!(missing.is_empty(), "files without a leading `//!` line: {missing:?}");
}

#[test]
fn no_trailing_whitespace_and_no_todo_markers() {
    let text_files = [".rs", ".py", ".md", ".toml", ".yml", ".yaml", ".sh", ".txt", ".in"];
    let mut problems = Vec::new();
    for path in tracked().iter().filter(|p| text_files.iter().any(|e| p.ends_with(e)) || p.ends_with("run")) {
        for (n, line) in read(path).lines().enumerate() {
            if line.ends_with([' ', '\t']) {
                problems.push(format!("{path}:{}: trailing whitespace", n + 1));
            }
            if ["TODO", "FIXME", "XXX"].iter().any(|m| line.contains(m)) && !path.ends_with("tidy.rs") {
                problems.push(format!("{path}:{}: a marker: say it in an issue instead", n + 1));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_environment_is_read_in_settings_only() {
    let reads = ["env::var(", "env::var_os(", "env::vars(", "env::vars_os("];
    let mut offenders = Vec::new();
    for path in tracked().iter().filter(|p| p.starts_with("xtask/src/") && p.ends_with(".rs")) {
        if path == "xtask/src/settings.rs" {
            continue;
        }
        for (n, line) in read(path).lines().enumerate() {
            if reads.iter().any(|r| line.contains(r)) {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "read the environment through xtask/src/settings.rs:\n{}", offenders.join("\n"));
}

#[test]
fn modules_that_parse_user_input_do_not_unwrap() {
    let parsers = ["config.rs", "workspace.rs", "catalog.rs", "requirements.rs", "deps.rs", "base.rs", "dockerfile.rs"];
    let mut offenders = Vec::new();
    for name in parsers {
        let path = format!("xtask/src/{name}");
        for (n, line) in code_part(&read(&path)).lines().enumerate() {
            if line.contains(".unwrap()") {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "return a user error instead:\n{}", offenders.join("\n"));
}

#[test]
fn the_code_map_names_every_module_and_only_modules() {
    let architecture = read("ARCHITECTURE.md");
    let start = architecture.find("## Code map").expect("ARCHITECTURE.md has a code map");
    let end = architecture[start..].find("\n## ").map_or(architecture.len(), |i| start + i);
    let map = &architecture[start..end];
    let src = project_root().join("xtask/src");
    let modules: Vec<String> = tracked()
        .into_iter()
        .filter_map(|p| p.strip_prefix("xtask/src/").map(str::to_string))
        .filter(|p| p.ends_with(".rs") && !p.contains('/'))
        .collect();
    let unnamed: Vec<&String> = modules.iter().filter(|m| !map.contains(&format!("`{m}`"))).collect();
    assert!(unnamed.is_empty(), "modules the code map does not name: {unnamed:?}");
    // Every `name.rs` it names is a tracked file (by its path, or by its name in a folder).
    let files = tracked();
    let named: Vec<&str> =
        map.split('`').skip(1).step_by(2).filter(|w| w.ends_with(".rs") && !w.contains('*')).collect();
    let stale: Vec<&&str> = named
        .iter()
        .filter(|n| !src.join(n).is_file() && !files.iter().any(|f| f == *n || f.ends_with(&format!("/{n}"))))
        .collect();
    assert!(stale.is_empty(), "the code map names modules that do not exist: {stale:?}");
}
