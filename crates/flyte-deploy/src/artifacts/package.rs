//! `cargo xtask package`: each workflow's fast-registration code archive, byte-for-byte
//! reproducible, written to `DIR/<workflow>-<version>.tar.gz`. Owns the archive format;
//! which files go in is the code set's decision ([`crate::artifacts::codeset`]).
//!
//! The archive: a gzip'd tar (GNU headers, long names as GNU long-name entries) of the code
//! set. Entries in byte order of their paths, each folder entry just before the first entry
//! below it; folders are stored (0755) so extraction never depends on the umask. Every entry
//! has mtime 0, uid/gid 0 and empty owner names; files are 0644 or 0755, symlinks 0755 with
//! their target. The gzip header has no file name and mtime 0, compression level
//! [`GZIP_LEVEL`] (flate2's default Rust backend). So the bytes depend only on the code set
//! (and on this tool's version, through the compressor).

use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use flate2::{Compression, GzBuilder};
use md5::Md5;
use sha2::{Digest, Sha256};

use crate::args::{Package, ReportFormat};
use crate::artifacts::codeset::{CodeSet, Mode};
use crate::error;
use crate::plan::fingerprint::{self, Fingerprint};
use crate::workspace::repo::Repo;
use crate::workspace::source::{GitTree, WorkDir};
use crate::workspace::Workspace;

/// The gzip compression level of every archive.
/// Level 1: on source code it compresses to about 40% (level 6: 30%) in a sixth of the time;
/// archives are uploaded once per version, and packaging speed is what users wait for.
pub const GZIP_LEVEL: u32 = 1;

/// A written archive.
#[derive(Debug, Clone)]
pub struct Archive {
    pub path: PathBuf,
    pub size: u64,
    /// Hex digests of the archive's bytes.
    pub sha256: String,
    pub md5: String,
}

pub fn run(args: Package) -> Result<ExitCode> {
    crate::artifacts::codeset::tune_object_reads();
    let repo = Repo::discover()?;
    let mut written: Vec<(String, Fingerprint, Archive)> = Vec::new();
    if args.dirty {
        if args.head != "HEAD" {
            return Err(error::user(
                format!("--dirty packages the working tree, not '{}'", args.head),
                "drop --head, or drop --dirty to package that commit",
            ));
        }
        let ws = Workspace::load(&WorkDir::new(&repo.root))?;
        for wf in ws.select(&args.workflows)? {
            let (set, fp) = fingerprint::fingerprint_dirty(&repo, &ws, wf)?;
            let archive = write(&set, &repo.git, &args.out, &wf.name, &fp.version)?;
            written.push((wf.name.clone(), fp, archive));
        }
    } else {
        let commit = repo.commit(&args.head)?;
        let tree = GitTree::at_commit(&repo.git, &commit)?;
        let ws = Workspace::load(&tree)?;
        for wf in ws.select(&args.workflows)? {
            let set = CodeSet::at(&repo.git, tree.tree(), wf)?;
            let fp = fingerprint::of_commit(&commit, &tree, &set, &ws.config, wf)?;
            let archive = write(&set, &repo.git, &args.out, &wf.name, &fp.version)?;
            written.push((wf.name.clone(), fp, archive));
        }
    }
    match args.format {
        ReportFormat::Json => {
            let list: Vec<serde_json::Value> = written
                .iter()
                .map(|(name, fp, a)| {
                    serde_json::json!({
                        "name": name, "version": fp.version, "image": fp.image,
                        "path": a.path.display().to_string(), "size": a.size, "sha256": a.sha256, "md5": a.md5,
                    })
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&list)?);
        }
        ReportFormat::Text => {
            let mut rows = vec![["WORKFLOW", "VERSION", "SIZE", "SHA256", "MD5", "PATH"].map(String::from)];
            for (name, fp, a) in &written {
                rows.push([
                    name.clone(),
                    fp.version.clone(),
                    a.size.to_string(),
                    a.sha256.clone(),
                    a.md5.clone(),
                    a.path.display().to_string(),
                ]);
            }
            print!("{}", crate::report::columns(&rows));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes `dir/<name>-<version>.tar.gz` (whole or not at all) and returns its digests.
pub fn write(set: &CodeSet, repo: &git2::Repository, dir: &Path, name: &str, version: &str) -> Result<Archive> {
    if set.entries.is_empty() {
        return Err(error::user(
            format!("workflow '{name}' has no files to package"),
            "commit its files (`git add`), or check its .flyteignore",
        ));
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(format!("{name}-{version}.tar.gz"));
    let tmp = tempfile::NamedTempFile::new_in(dir).with_context(|| format!("creating a file in {}", dir.display()))?;
    let file = std::io::BufWriter::with_capacity(1 << 20, tmp.as_file());
    let digests = write_archive(set, repo, Digesting::new(file))?;
    let (size, sha256, md5) = digests.finish()?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("setting the mode of {}", tmp.path().display()))?;
    }
    tmp.persist(&path).with_context(|| format!("writing {}", path.display()))?;
    Ok(Archive { path, size, sha256, md5 })
}

/// Writes the archive of `set` to `out` and returns `out` once the gzip stream is complete.
pub fn write_archive<W: Write>(set: &CodeSet, repo: &git2::Repository, out: W) -> Result<W> {
    crate::artifacts::codeset::tune_object_reads();
    let gz = GzBuilder::new().mtime(0).write(out, Compression::new(GZIP_LEVEL));
    let mut tar = tar::Builder::new(gz);
    let mut folders: std::collections::HashSet<Vec<u8>> = std::collections::HashSet::new();
    for entry in &set.entries {
        for (i, _) in entry.path.iter().enumerate().filter(|(_, b)| **b == b'/') {
            let folder = &entry.path[..i];
            if folders.insert(folder.to_vec()) {
                let mut header = header(tar::EntryType::Directory, 0o755, 0);
                tar.append_data(&mut header, as_path(folder), std::io::empty())
                    .with_context(|| format!("archiving folder {}", String::from_utf8_lossy(folder)))?;
            }
        }
        let bytes = set.content(repo, entry)?;
        let what = || format!("archiving {}", entry.display());
        match entry.mode {
            Mode::Symlink => {
                let mut header = header(tar::EntryType::Symlink, Mode::Symlink.permissions(), 0);
                tar.append_link(&mut header, as_path(&entry.path), as_path(&bytes)).with_context(what)?;
            }
            mode => {
                let mut header = header(tar::EntryType::Regular, mode.permissions(), bytes.len() as u64);
                tar.append_data(&mut header, as_path(&entry.path), &bytes[..]).with_context(what)?;
            }
        }
    }
    let gz = tar.into_inner().context("finishing the tar stream")?;
    gz.finish().context("finishing the gzip stream")
}

fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(size);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    // Fixed-size fields: setting an empty name cannot fail.
    let _ = h.set_username("");
    let _ = h.set_groupname("");
    h
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(std::ffi::OsStr::from_bytes(bytes))
}

/// A writer that counts what goes through it and hashes it (sha256, md5) on another
/// thread, so hashing overlaps compression.
struct Digesting<W: Write> {
    inner: W,
    size: u64,
    chunks: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    hasher: Option<std::thread::JoinHandle<(String, String)>>,
}

impl<W: Write> Digesting<W> {
    fn new(inner: W) -> Self {
        let (chunks, received) = std::sync::mpsc::sync_channel::<Vec<u8>>(64);
        let hasher = std::thread::spawn(move || {
            let (mut sha256, mut md5) = (Sha256::new(), Md5::new());
            for chunk in received {
                sha256.update(&chunk);
                md5.update(&chunk);
            }
            (hex::encode(sha256.finalize()), hex::encode(md5.finalize()))
        });
        Digesting { inner, size: 0, chunks: Some(chunks), hasher: Some(hasher) }
    }

    fn finish(mut self) -> Result<(u64, String, String)> {
        self.inner.flush().context("writing the archive")?;
        drop(self.chunks.take());
        let hasher = self.hasher.take().context("the archive was finished twice")?;
        let (sha256, md5) = hasher.join().map_err(|_| anyhow::anyhow!("hashing the archive failed"))?;
        Ok((self.size, sha256, md5))
    }
}

impl<W: Write> Write for Digesting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.size += n as u64;
        if let Some(chunks) = &self.chunks {
            chunks.send(buf[..n].to_vec()).map_err(|_| std::io::Error::other("the archive hasher stopped"))?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::artifacts::codeset::fixture::Fixture;
    use std::io::Read;

    #[test]
    fn headers_are_fixed_and_long_names_survive() {
        let f = Fixture::new();
        let long = format!("workflows/a/a/{}/deep.py", "very_long_folder_name".repeat(6));
        f.write(&long, "deep = True\n");
        f.write("workflows/a/tool.sh", "#!/bin/sh\n");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(f.dir.path().join("workflows/a/tool.sh"), std::fs::Permissions::from_mode(0o775))
            .unwrap();
        std::os::unix::fs::symlink("a/wf.py", f.dir.path().join("workflows/a/link.py")).unwrap();
        let (repo, set) = f.code_set();
        let bytes = write_archive(&set, &repo, Vec::new()).unwrap();
        assert_eq!(bytes, write_archive(&set, &repo, Vec::new()).unwrap(), "same set, same bytes");

        let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(&bytes[..]));
        let mut seen = Vec::new();
        for entry in tar.entries().unwrap() {
            let mut entry = entry.unwrap();
            let h = entry.header().clone();
            assert_eq!(h.mtime().unwrap(), 0);
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
            assert_eq!(h.username().unwrap(), Some(""));
            assert_eq!(h.groupname().unwrap(), Some(""));
            let path = entry.path().unwrap().to_string_lossy().into_owned();
            let mode = h.mode().unwrap();
            match h.entry_type() {
                tar::EntryType::Directory => assert_eq!(mode, 0o755, "{path}"),
                tar::EntryType::Symlink => {
                    assert_eq!(entry.link_name().unwrap().unwrap(), Path::new("a/wf.py"));
                }
                tar::EntryType::Regular => {
                    let expected = if path == "tool.sh" { 0o755 } else { 0o644 };
                    assert_eq!(mode, expected, "{path}");
                    if path.ends_with("deep.py") {
                        let mut text = String::new();
                        entry.read_to_string(&mut text).unwrap();
                        assert_eq!(text, "deep = True\n");
                    }
                }
                other => panic!("unexpected entry type {other:?} for {path}"),
            }
            seen.push(path);
        }
        let deep = long.trim_start_matches("workflows/a/").to_string();
        assert!(seen.contains(&deep), "long path kept whole: {seen:?}");
        let files: Vec<&String> = seen.iter().filter(|p| !p.ends_with('/') && p.contains('.')).collect();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted);
    }
}
