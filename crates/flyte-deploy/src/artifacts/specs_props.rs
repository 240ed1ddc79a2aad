//! Property tests of the `pyflyte package` reader (`specs.rs`): arbitrary bytes and damaged
//! archives (tar headers rewritten with a valid checksum, cut, gzip mutated) never panic and
//! fail naming the package; generated archives read back in index order.
//! `PROPTEST_CASES` sets the number of cases (README: Testing).

use proptest::collection::vec;
use proptest::prelude::*;

use flyte_api::Kind;

use super::specs::read_package;

/// One spec file of a generated package: index, entity name, kind digit, bytes.
type Spec = (u64, String, u8, Vec<u8>);

fn specs() -> impl Strategy<Value = Vec<Spec>> {
    let spec = (0u64..1000, "[a-z][a-z0-9_.]{0,12}", 1u8..=3, vec(any::<u8>(), 0..64));
    vec(spec, 0..6).prop_map(|mut list| {
        list.sort_by_key(|s| s.0);
        list.dedup_by_key(|s| s.0);
        list
    })
}

/// A tar of `files` in the given order, uncompressed.
fn tar_bytes(files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, bytes.as_slice()).expect("appending to a Vec");
    }
    builder.into_inner().expect("finishing a Vec")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("writing to a Vec");
    gz.finish().expect("finishing a Vec")
}

/// The files of a package: its specs (in `order`) and perhaps a code archive.
fn package_files(list: &[Spec], order: &[prop::sample::Index], fast: &Option<Vec<u8>>) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> =
        list.iter().map(|(i, name, k, bytes)| (format!("{i}_{name}_{k}.pb"), bytes.clone())).collect();
    if let Some(code) = fast {
        files.push(("fastdeadbeef.tar.gz".into(), code.clone()));
    }
    for (n, o) in order.iter().enumerate().take(files.len()) {
        let other = o.index(files.len());
        files.swap(n, other);
    }
    files
}

/// Reads damaged bytes: no panic, and an error (if any) names the package.
fn read_damaged(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Err(e) = read_package(bytes) {
        let message = format!("{e:#}");
        prop_assert!(message.contains("pyflyte package"), "the error does not name the package: {}", message);
    }
    Ok(())
}

/// Sets a header's checksum field as tar computes it, so a rewritten header is read.
fn fix_checksum(header: &mut [u8]) {
    header[148..156].fill(b' ');
    let sum: u32 = header.iter().map(|b| u32::from(*b)).sum();
    header[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

proptest! {
    #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn props_arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        read_damaged(&bytes)?;
        // The same bytes as a gzip stream (what is inside then reaches the tar reader).
        read_damaged(&gzip(&bytes))?;
    }

    #[test]
    fn props_generated_packages_read_back_in_index_order(
        list in specs(),
        order in vec(any::<prop::sample::Index>(), 8),
        fast in proptest::option::of(vec(any::<u8>(), 0..64)),
    ) {
        let files = package_files(&list, &order, &fast);
        let package = read_package(&gzip(&tar_bytes(&files))).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let got: Vec<Spec> = package
            .entities
            .iter()
            .map(|e| {
                let k = match e.kind {
                    Kind::Task => 1,
                    Kind::Workflow => 2,
                    Kind::LaunchPlan => 3,
                };
                let name = e.file_name.split_once('_').and_then(|(_, rest)| rest.rsplit_once('_')).map(|(n, _)| n);
                (e.index, name.unwrap_or_default().to_string(), k, e.bytes.clone())
            })
            .collect();
        prop_assert_eq!(got, list);
        prop_assert_eq!(package.fast_archive, fast.map(|code| ("fastdeadbeef.tar.gz".to_string(), code)));
    }

    #[test]
    fn props_damaged_packages_never_panic(
        list in specs(),
        order in vec(any::<prop::sample::Index>(), 8),
        edits in vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        header_edits in vec((0usize..512, any::<u8>()), 0..6),
        cut in any::<prop::sample::Index>(),
        gz_edit in proptest::option::of((any::<prop::sample::Index>(), any::<u8>())),
    ) {
        let tar = tar_bytes(&package_files(&list, &order, &Some(b"code".to_vec())));
        // A header rewritten by someone who computes the checksum, as an attacker would.
        let mut rewritten = tar.clone();
        for (at, byte) in &header_edits {
            rewritten[*at] = *byte;
        }
        fix_checksum(&mut rewritten[..512]);
        read_damaged(&gzip(&rewritten))?;
        // Bytes flipped anywhere, then cut short.
        let mut flipped = tar.clone();
        for (at, byte) in &edits {
            let i = at.index(flipped.len());
            flipped[i] = *byte;
        }
        read_damaged(&gzip(&flipped))?;
        read_damaged(&gzip(&tar[..cut.index(tar.len())]))?;
        // The compressed stream damaged or cut.
        let mut gz = gzip(&tar);
        if let Some((at, byte)) = gz_edit {
            let i = at.index(gz.len());
            gz[i] = byte;
        }
        read_damaged(&gz)?;
        read_damaged(&gz[..cut.index(gz.len())])?;
    }
}
