//! Names the tool's own sources by a hash (`XTASK_SOURCE_HASH`), so the caches that hold what
//! this code computed (the versions cache) are dropped whenever the code changes, not only
//! when the package version does.

use std::hash::{DefaultHasher, Hasher};
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    sources(Path::new("src"), &mut files);
    files.sort();
    let mut hasher = DefaultHasher::new();
    for file in &files {
        hasher.write(file.to_string_lossy().as_bytes());
        hasher.write(&std::fs::read(file).unwrap_or_else(|e| panic!("reading {}: {e}", file.display())));
    }
    println!("cargo:rustc-env=XTASK_SOURCE_HASH={:016x}", hasher.finish());
}

fn sources(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            sources(&path, files);
        } else {
            files.push(path);
        }
    }
}
