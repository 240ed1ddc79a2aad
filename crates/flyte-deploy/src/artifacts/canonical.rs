//! Spec files compared canonically: Python's protobuf writes map entries in an order that
//! varies from process to process, so two serializations of the same code compare equal only
//! after being decoded and written again with sorted maps (by flyteidl's own Python classes).
//! Used by the serializer's test and `cargo xtask bench serialize`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// One file of a `pyflyte package` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// Protobuf's deterministic serialization of the spec (map entries sorted by key); empty
    /// for the fast-registration archive (its name is a digest of the code; its bytes carry
    /// times).
    pub canonical: Vec<u8>,
    /// The bytes as written (empty for the fast-registration archive).
    pub raw: Vec<u8>,
}

/// The files of `pyflyte package` archives by name, spec files (.pb) canonically too. Python's protobuf writes map entries in an
/// order that varies from process to process (two runs of `pyflyte package` on the same code
/// differ so), so specs compare canonically: decoded with flyteidl's own Python classes in
/// `python`'s environment (every field known, unknown ones kept) and written again with
/// sorted maps. One Python run for all the archives.
pub fn canonical_specs(python: &Path, packages: &[&Path]) -> Result<Vec<BTreeMap<String, SpecFile>>> {
    let dir = tempfile::tempdir().context("creating a temporary folder")?;
    let mut listed = Vec::new();
    let mut out = Vec::new();
    for (n, package) in packages.iter().enumerate() {
        let file = std::fs::File::open(package).with_context(|| format!("opening {}", package.display()))?;
        let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(file));
        let mut files = BTreeMap::new();
        for entry in archive.entries().with_context(|| format!("reading {}", package.display()))? {
            let mut entry = entry?;
            let name = entry.path()?.to_string_lossy().into_owned();
            if name.contains('/') || name.starts_with('.') {
                bail!("{}: unexpected entry {name}", package.display());
            }
            let mut raw = Vec::new();
            if name.ends_with(".pb") {
                std::io::Read::read_to_end(&mut entry, &mut raw)?;
                let path = dir.path().join(format!("{n}-{name}"));
                std::fs::write(&path, &raw).with_context(|| format!("writing {}", path.display()))?;
                listed.push((n, name.clone(), path));
            }
            files.insert(name, SpecFile { canonical: Vec::new(), raw });
        }
        out.push(files);
    }
    let input: String = listed.iter().map(|(_, _, p)| format!("{}\n", p.display())).collect();
    let stdout = duct::cmd(python, ["-c", CANONICAL])
        .stdin_bytes(input)
        .read()
        .with_context(|| format!("decoding specs with {}", python.display()))?;
    let canonical: BTreeMap<String, String> = serde_json::from_str(&stdout).context("reading the canonical specs")?;
    for (n, name, path) in listed {
        let hex = canonical
            .get(&path.display().to_string())
            .with_context(|| format!("no canonical form of {}", path.display()))?;
        if let Some(file) = out[n].get_mut(&name) {
            file.canonical = hex::decode(hex)?;
        }
    }
    Ok(out)
}

/// Reads spec paths (`..._<k>.pb`, k = 1 TaskSpec, 2 WorkflowSpec, 3 LaunchPlan) from stdin;
/// prints {path: hex of its deterministic serialization}.
const CANONICAL: &str = r#"
import json, sys
from flyteidl.admin import launch_plan_pb2, task_pb2, workflow_pb2
kinds = {"1": task_pb2.TaskSpec, "2": workflow_pb2.WorkflowSpec, "3": launch_plan_pb2.LaunchPlan}
out = {}
for path in sys.stdin.read().split("\n"):
    if not path:
        continue
    data = open(path, "rb").read()
    message = kinds[path[:-3].rsplit("_", 1)[1]]()
    message.ParseFromString(data)
    out[path] = message.SerializeToString(deterministic=True).hex()
print(json.dumps(out))
"#;
