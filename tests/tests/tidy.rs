//! Conventions checked on the repository's own files: every Rust file opens with its `//!`
//! line; no trailing whitespace, no TODO or FIXME markers; the environment is read only in
//! `settings.rs`; the modules that parse user input do not `unwrap()`; ARCHITECTURE.md's
//! code map names every source file of every crate, and only files that exist.

use std::process::Command;

use tests::project_root;

/// The files git tracks, repository-relative.
fn tracked() -> Vec<String> {
    let out = Command::new("git").current_dir(project_root()).args(["ls-files", "-z"]).output().expect("running git");
    assert!(out.status.success(), "git ls-files failed");
    String::from_utf8(out.stdout).unwrap().split('\0').filter(|p| !p.is_empty()).map(str::to_string).collect()
}

/// The crates whose sources the code map covers, as folders.
const CRATES: [&str; 4] = ["crates/flyte-api", "crates/flyte-sandbox", "crates/flyte-deploy", "xtask"];

/// The one module that reads the process environment.
const SETTINGS: &str = "crates/flyte-deploy/src/settings.rs";

/// A file of the product's sources (not of the tests).
fn is_product_source(path: &str) -> bool {
    CRATES.iter().any(|c| path.starts_with(&format!("{c}/")))
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
    for path in tracked().iter().filter(|p| is_product_source(p) && p.ends_with(".rs")) {
        if path == SETTINGS {
            continue;
        }
        for (n, line) in read(path).lines().enumerate() {
            if reads.iter().any(|r| line.contains(r)) {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "read the environment through {SETTINGS}:\n{}", offenders.join("\n"));
}

#[test]
fn modules_that_parse_user_input_do_not_unwrap() {
    let parsers = [
        "config/mod.rs",
        "workspace/mod.rs",
        "workspace/catalog.rs",
        "workspace/requirements.rs",
        "workspace/deps.rs",
        "plan/base.rs",
        "artifacts/dockerfile.rs",
    ];
    let mut offenders = Vec::new();
    for name in parsers {
        let path = format!("crates/flyte-deploy/src/{name}");
        assert!(project_root().join(&path).is_file(), "{path} is gone: update this list");
        for (n, line) in code_part(&read(&path)).lines().enumerate() {
            if line.contains(".unwrap()") {
                offenders.push(format!("{path}:{}: {}", n + 1, line.trim()));
            }
        }
    }
    assert!(offenders.is_empty(), "return a user error instead:\n{}", offenders.join("\n"));
}

#[test]
fn the_code_map_names_every_source_file_and_only_files() {
    let architecture = read("ARCHITECTURE.md");
    let start = architecture.find("## Code map").expect("ARCHITECTURE.md has a code map");
    let end = architecture[start..].find("\n## ").map_or(architecture.len(), |i| start + i);
    let map = &architecture[start..end];
    let files = tracked();
    let mut problems = Vec::new();
    for krate in CRATES {
        // The crate's section: from `### <crate>` to the next heading.
        let Some(at) = map.find(&format!("\n### {krate}\n")) else {
            problems.push(format!("no `### {krate}` section"));
            continue;
        };
        let body = &map[at + 1..];
        let section = &body[..body[4..].find("\n#").map_or(body.len(), |i| i + 4)];
        let prefix = format!("{krate}/src/");
        for file in files.iter().filter_map(|p| p.strip_prefix(&prefix)).filter(|p| p.ends_with(".rs")) {
            if !section.contains(&format!("`{file}`")) {
                problems.push(format!("{prefix}{file} is not in the `### {krate}` section"));
            }
        }
        for named in section.split('`').skip(1).step_by(2).filter(|w| w.ends_with(".rs") || w.ends_with(".py")) {
            if !files.contains(&format!("{prefix}{named}")) {
                problems.push(format!("`### {krate}` names {named}, which is not {prefix}{named}"));
            }
        }
    }
    assert!(problems.is_empty(), "ARCHITECTURE.md's code map is out of date:\n{}", problems.join("\n"));
}

/// The crates of ARCHITECTURE.md's crate table, as (folder, the crates of ours it may depend on).
fn allowed_dependencies() -> Vec<(String, Vec<String>)> {
    let architecture = read("ARCHITECTURE.md");
    let start = architecture.find("## Crates").expect("ARCHITECTURE.md has a `## Crates` section");
    let end = architecture[start + 1..].find("\n## ").map_or(architecture.len(), |i| start + 1 + i);
    let mut out = Vec::new();
    for row in architecture[start..end].lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let folder = cells[1].trim_matches('`').to_string();
        let allowed = if cells[3] == "all of the above" {
            out.iter().map(|(f, _): &(String, Vec<String>)| f.clone()).collect()
        } else {
            cells[3].split(',').map(|c| c.trim().trim_matches('`').to_string()).filter(|c| c != "—").collect()
        };
        out.push((folder, allowed));
    }
    out
}

#[test]
fn crates_depend_only_on_those_the_architecture_allows() {
    let out = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(project_root())
        .args(["metadata", "--format-version", "1", "--no-deps", "--offline"])
        .output()
        .expect("running cargo metadata");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = project_root();
    // Package name → its folder, repository-relative.
    let mut folders = std::collections::BTreeMap::new();
    for package in metadata["packages"].as_array().unwrap() {
        let manifest = std::path::Path::new(package["manifest_path"].as_str().unwrap());
        let folder = manifest.parent().unwrap().strip_prefix(&root).unwrap().to_string_lossy().into_owned();
        folders.insert(package["name"].as_str().unwrap().to_string(), folder);
    }
    let allowed = allowed_dependencies();
    let documented: Vec<&String> = allowed.iter().map(|(f, _)| f).collect();
    let mut problems = Vec::new();
    for folder in folders.values().filter(|f| !documented.contains(f)) {
        problems.push(format!("{folder} is a workspace crate the `## Crates` table does not name"));
    }
    for package in metadata["packages"].as_array().unwrap() {
        let folder = &folders[package["name"].as_str().unwrap()];
        let Some((_, may)) = allowed.iter().find(|(f, _)| f == folder) else { continue };
        for dep in package["dependencies"].as_array().unwrap() {
            let Some(dep_folder) = folders.get(dep["name"].as_str().unwrap()) else { continue };
            let as_named = dep_folder.rsplit('/').next().unwrap();
            if !may.iter().any(|m| m == dep_folder || m == as_named) {
                problems.push(format!("{folder} depends on {dep_folder}, which ARCHITECTURE.md does not allow it"));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
