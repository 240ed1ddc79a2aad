//! Reads what `pyflyte package` writes: a `.tgz` of `<idx>_<name>_<k>.pb` spec files (k = 1
//! TaskSpec, 2 WorkflowSpec, 3 admin.LaunchPlan) and one `fast<digest>.tar.gz` code archive.
//! Returns the specs in index order (pyflyte writes dependencies first) and the archive's
//! bytes as they are. It does not interpret the specs (`hydrate.rs` does) and writes nothing.
//!
//! API: [`read_package`]`(tgz_bytes) -> Package { entities: Vec<SpecFile>, fast_archive }`,
//! [`read_package_file`]`(path)`, and [`task_images`] (the images its tasks name, read only).

use std::io::Read;

use anyhow::{bail, Context, Result};

use flyte_api::Kind;

/// One spec file of a package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecFile {
    /// The file's name in the archive, e.g. `2_hello.greet.hello_wf_2.pb`.
    pub file_name: String,
    /// Its index (the number before the first `_`).
    pub index: u64,
    pub kind: Kind,
    /// The file's bytes, as pyflyte wrote them.
    pub bytes: Vec<u8>,
}

/// The contents of a `pyflyte package` archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    /// The spec files, by index.
    pub entities: Vec<SpecFile>,
    /// The code archive (`fast<digest>.tar.gz`): (file name, bytes), when packaged with `--copy`.
    pub fast_archive: Option<(String, Vec<u8>)>,
}

/// Reads a `pyflyte package` output file.
pub fn read_package_file(path: &std::path::Path) -> Result<Package> {
    let bytes = std::fs::read(path).with_context(|| format!("reading the pyflyte package {}", path.display()))?;
    read_package(&bytes).with_context(|| format!("in the pyflyte package {}", path.display()))
}

/// Reads a `pyflyte package` output (`.tgz` bytes).
pub fn read_package(tgz_bytes: &[u8]) -> Result<Package> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tgz_bytes));
    let mut entities = Vec::new();
    let mut fast_archive: Option<(String, Vec<u8>)> = None;
    for entry in archive.entries().context("reading the pyflyte package (tar.gz)")? {
        let mut entry = entry.context("reading the pyflyte package (tar.gz)")?;
        let path = entry.path().context("reading a file name in the pyflyte package")?.into_owned();
        let entry_type = entry.header().entry_type();
        if entry_type.is_dir() {
            continue;
        }
        let shown = path.display().to_string();
        let name = match path.file_name().and_then(|n| n.to_str()) {
            Some(n) if path.components().filter(|c| !matches!(c, std::path::Component::CurDir)).count() == 1 => {
                n.to_string()
            }
            _ => bail!("unexpected entry '{shown}' in the pyflyte package: expected spec files and one fast archive"),
        };
        if !entry_type.is_file() {
            bail!("'{shown}' in the pyflyte package is not a regular file");
        }
        // The size is the header's claim, not yet read: reserve at most 1 MiB on its word.
        let mut bytes = Vec::with_capacity(entry.size().min(1 << 20) as usize);
        entry.read_to_end(&mut bytes).with_context(|| format!("reading '{shown}' from the pyflyte package"))?;
        if name.ends_with(".pb") {
            let (index, kind) = parse_spec_name(&name)?;
            entities.push(SpecFile { file_name: name, index, kind, bytes });
        } else if name.starts_with("fast") && name.ends_with(".tar.gz") {
            if let Some((first, _)) = &fast_archive {
                bail!("the pyflyte package holds two code archives: '{first}' and '{name}'");
            }
            fast_archive = Some((name, bytes));
        } else {
            bail!("unexpected file '{name}' in the pyflyte package: expected spec files and one fast archive");
        }
    }
    entities.sort_by_key(|e| e.index);
    if let Some(pair) = entities.windows(2).find(|w| w[0].index == w[1].index) {
        bail!(
            "two spec files have index {} in the pyflyte package: '{}' and '{}'",
            pair[0].index,
            pair[0].file_name,
            pair[1].file_name
        );
    }
    Ok(Package { entities, fast_archive })
}

/// `<idx>_<name>_<k>.pb` → (idx, kind).
fn parse_spec_name(name: &str) -> Result<(u64, Kind)> {
    let stem = name.strip_suffix(".pb").unwrap_or(name);
    let parsed = stem.split_once('_').and_then(|(index, rest)| {
        let (entity, k) = rest.rsplit_once('_')?;
        let kind = match k {
            "1" => Kind::Task,
            "2" => Kind::Workflow,
            "3" => Kind::LaunchPlan,
            _ => return None,
        };
        (!entity.is_empty()).then_some(())?;
        Some((index.parse::<u64>().ok()?, kind))
    });
    parsed.with_context(|| format!("spec file '{name}' in the pyflyte package is not named <index>_<name>_<1|2|3>.pb"))
}

/// The name of every entity of the package, with its kind, in index order. Sub-workflows
/// count as workflows (they are registered under their own names too).
pub fn entity_names(package: &Package) -> Vec<(Kind, String)> {
    use flyte_api::{admin as pb, Message};
    let mut names = Vec::new();
    for e in &package.entities {
        match e.kind {
            Kind::Task => {
                let id = pb::TaskSpec::decode(e.bytes.as_slice()).ok().and_then(|s| s.template?.id);
                names.extend(id.map(|id| (Kind::Task, id.name)));
            }
            Kind::Workflow => {
                let Ok(spec) = pb::WorkflowSpec::decode(e.bytes.as_slice()) else { continue };
                let templates = spec.template.into_iter().chain(spec.sub_workflows);
                names.extend(templates.filter_map(|t| t.id).map(|id| (Kind::Workflow, id.name)));
            }
            Kind::LaunchPlan => {
                let id = pb::LaunchPlan::decode(e.bytes.as_slice()).ok().and_then(|lp| lp.id);
                names.extend(id.map(|id| (Kind::LaunchPlan, id.name)));
            }
        }
    }
    names
}

/// Every container image the package's tasks name (the task container's, and those of a
/// pod spec's containers), sorted, once each.
pub fn task_images(package: &Package) -> Vec<String> {
    use flyte_api::core::task_template::Target;
    use flyte_api::prost_types::value::Kind as V;
    use flyte_api::Message;
    let mut images = Vec::new();
    for entity in package.entities.iter().filter(|e| e.kind == Kind::Task) {
        let Ok(spec) = flyte_api::admin::TaskSpec::decode(entity.bytes.as_slice()) else { continue };
        match spec.template.and_then(|t| t.target) {
            Some(Target::Container(c)) => images.push(c.image),
            Some(Target::K8sPod(pod)) => {
                let containers = pod.pod_spec.and_then(|s| s.fields.get("containers").cloned());
                if let Some(V::ListValue(list)) = containers.and_then(|c| c.kind) {
                    for c in list.values {
                        if let Some(V::StructValue(c)) = c.kind {
                            if let Some(V::StringValue(image)) = c.fields.get("image").and_then(|i| i.kind.clone()) {
                                images.push(image);
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    images.retain(|i| !i.is_empty());
    images.sort();
    images.dedup();
    images
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tgz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        for (name, bytes) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *bytes).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    #[test]
    fn specs_come_in_index_order_with_their_kind() {
        let bytes = tgz(&[
            ("10_pkg.wf_lp_3.pb", b"c"),
            ("fastabc.tar.gz", b"code"),
            ("2_pkg.mod.my_task_1.pb", b"a"),
            ("./9_pkg.mod.wf_2.pb", b"b"),
        ]);
        let p = read_package(&bytes).unwrap();
        let got: Vec<(&str, u64, Kind, &[u8])> =
            p.entities.iter().map(|e| (e.file_name.as_str(), e.index, e.kind, e.bytes.as_slice())).collect();
        assert_eq!(
            got,
            [
                ("2_pkg.mod.my_task_1.pb", 2, Kind::Task, &b"a"[..]),
                ("9_pkg.mod.wf_2.pb", 9, Kind::Workflow, b"b"),
                ("10_pkg.wf_lp_3.pb", 10, Kind::LaunchPlan, b"c"),
            ]
        );
        assert_eq!(p.fast_archive, Some(("fastabc.tar.gz".to_string(), b"code".to_vec())));
    }

    #[test]
    fn odd_contents_are_refused() {
        let err = |files: &[(&str, &[u8])]| format!("{:#}", read_package(&tgz(files)).unwrap_err());
        assert!(err(&[("0_x_4.pb", b"")]).contains("not named"));
        assert!(err(&[("x_1.pb", b"")]).contains("not named"));
        assert!(err(&[("notes.txt", b"")]).contains("unexpected file"));
        assert!(err(&[("sub/0_x_1.pb", b"")]).contains("unexpected entry"));
        assert!(err(&[("fasta.tar.gz", b""), ("fastb.tar.gz", b"")]).contains("two code archives"));
        assert!(err(&[("1_a_1.pb", b""), ("01_b_1.pb", b"")]).contains("index 1"));
        assert!(read_package(b"not gzip").is_err());
    }

    #[test]
    fn a_header_claiming_a_huge_size_is_an_error_not_a_panic() {
        // Found by `specs_props`: the size a tar header claims was allocated up front.
        for size in [1 << 63, 1 << 40] {
            let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast()));
            let mut header = tar::Header::new_gnu();
            header.set_size(size);
            header.set_mode(0o644);
            builder.append_data(&mut header, "0_t_1.pb", &b"x"[..]).unwrap();
            let bytes = builder.into_inner().unwrap().finish().unwrap();
            let err = format!("{:#}", read_package(&bytes).unwrap_err());
            assert!(err.contains("pyflyte package") && err.contains("EOF"), "{err}");
        }
    }

    #[test]
    fn a_package_without_code_archive() {
        let p = read_package(&tgz(&[("0_t_1.pb", b"x")])).unwrap();
        assert_eq!(p.fast_archive, None);
        assert_eq!(p.entities.len(), 1);
    }
}
