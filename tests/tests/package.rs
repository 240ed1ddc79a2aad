//! `cargo xtask package` end to end: reproducible archives and versions across clones,
//! what changes a version and what does not, and exactly which files an archive holds.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use tests::{require_tool, TempRepo};

/// One packaged workflow as `package --format json` reports it.
#[derive(Debug, Clone)]
struct Packaged {
    version: String,
    image: String,
    path: PathBuf,
    sha256: String,
    md5: String,
    size: u64,
}

impl Packaged {
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

/// Runs `package` for the workflows into a fresh folder and returns name → result.
fn package(repo: &TempRepo, out: &Path, args: &[&str]) -> BTreeMap<String, Packaged> {
    let mut all = vec!["package", "--format", "json", "--out", out.to_str().unwrap()];
    all.extend_from_slice(args);
    let json = repo.xtask(&all).json();
    json.as_array()
        .expect("an array")
        .iter()
        .map(|w: &Value| {
            let p = Packaged {
                version: w["version"].as_str().unwrap().to_string(),
                image: w["image"].as_str().unwrap().to_string(),
                path: PathBuf::from(w["path"].as_str().unwrap()),
                sha256: w["sha256"].as_str().unwrap().to_string(),
                md5: w["md5"].as_str().unwrap().to_string(),
                size: w["size"].as_u64().unwrap(),
            };
            (w["name"].as_str().unwrap().to_string(), p)
        })
        .collect()
}

fn one(repo: &TempRepo, workflow: &str, extra: &[&str]) -> Packaged {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec![workflow];
    args.extend_from_slice(extra);
    let mut result = package(repo, out.path(), &args).remove(workflow).unwrap();
    // Keep the bytes readable after `out` goes away.
    let keep = std::env::temp_dir().join(format!("flyte-deploy-pkg-{}-{}", std::process::id(), result.sha256));
    std::fs::copy(&result.path, &keep).unwrap();
    result.path = keep;
    result
}

/// The files an archive unpacks to with `tar -xzf`: path → (executable, content or link target).
fn unpack(archive: &Path) -> BTreeMap<String, (bool, Vec<u8>)> {
    let dir = tempfile::tempdir().unwrap();
    let ok = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(dir.path()).status().unwrap().success();
    assert!(ok, "tar -xzf {} failed", archive.display());
    let mut files = BTreeMap::new();
    walk(dir.path(), dir.path(), &mut files);
    files
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, (bool, Vec<u8>)>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        let rel = e.path().strip_prefix(root).unwrap().to_string_lossy().into_owned();
        if meta.file_type().is_symlink() {
            let target = std::fs::read_link(e.path()).unwrap();
            out.insert(rel, (false, format!("-> {}", target.display()).into_bytes()));
        } else if meta.is_dir() {
            walk(root, &e.path(), out);
        } else {
            out.insert(rel, (meta.permissions().mode() & 0o111 != 0, std::fs::read(e.path()).unwrap()));
        }
    }
}

/// What the committed tree holds for `(archive path, repository path)` pairs.
fn committed(repo: &TempRepo, files: &[(&str, &str)]) -> BTreeMap<String, (bool, Vec<u8>)> {
    files
        .iter()
        .map(|(at, from)| {
            let mode = repo.git(&["ls-tree", "HEAD", from]);
            let exec = mode.starts_with("100755");
            let content = Command::new("git")
                .current_dir(repo.path())
                .args(["show", &format!("HEAD:{from}")])
                .output()
                .unwrap()
                .stdout;
            (at.to_string(), (exec, content))
        })
        .collect()
}

/// A clone of `repo` made under umask 077, with every file's mtime moved.
fn odd_clone(repo: &TempRepo) -> TempRepo {
    let dir = tempfile::Builder::new().prefix("flyte-deploy other clone").tempdir().unwrap();
    let ok = Command::new("sh")
        .args(["-c", "umask 077 && exec git clone --quiet \"$0\" \"$1\""])
        .arg(repo.path())
        .arg(dir.path())
        .status()
        .unwrap()
        .success();
    assert!(ok, "cloning");
    let clone = TempRepo { dir };
    set_mtimes(clone.path(), std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_234_567_890));
    clone
}

fn set_mtimes(dir: &Path, when: std::time::SystemTime) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_name() == ".git" {
            continue;
        }
        let meta = std::fs::symlink_metadata(e.path()).unwrap();
        if meta.is_dir() {
            set_mtimes(&e.path(), when);
        } else if meta.is_file() {
            std::fs::File::options().write(true).open(e.path()).unwrap().set_modified(when).unwrap();
        }
    }
}

#[test]
fn two_clones_give_identical_archives_versions_and_images() {
    let repo = TempRepo::with_examples();
    let out_a = tempfile::tempdir().unwrap();
    let a = package(&repo, out_a.path(), &["etl", "features", "hello", "training"]);
    let clone = odd_clone(&repo);
    let mode = std::fs::metadata(clone.path().join("workflows/hello/hello/greet.py")).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "the clone really has another umask");
    let out_b = tempfile::tempdir().unwrap();
    let b = package(&clone, out_b.path(), &["etl", "features", "hello", "training"]);
    assert_eq!(a.len(), 4);
    for (name, pa) in &a {
        let pb = &b[name];
        assert_eq!(pa.version, pb.version, "{name}");
        assert_eq!(pa.image, pb.image, "{name}");
        assert_eq!(pa.sha256, pb.sha256, "{name}");
        assert_eq!(pa.md5, pb.md5, "{name}");
        assert_eq!(pa.bytes(), pb.bytes(), "{name}: byte-identical archives");
        assert_eq!(pa.size, pa.bytes().len() as u64);
        for (tool, reported) in [("sha256sum", &pa.sha256), ("md5sum", &pa.md5)] {
            let out = Command::new(tool).arg(&pa.path).output().expect(tool).stdout;
            assert!(String::from_utf8(out).unwrap().starts_with(reported.as_str()), "{name}: {tool}");
        }
        assert_eq!(pa.path.file_name().unwrap().to_str().unwrap(), format!("{name}-{}.tar.gz", pa.version));
        assert!(pa.version.len() >= 16 && pa.version.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
    }
    assert!(a["etl"].image.starts_with("localhost:5000/flyte/etl:"), "{}", a["etl"].image);
    assert_eq!(a["hello"].image, "cr.flyte.org/flyteorg/flytekit:py3.11-1.16.31");
    // Same code, packaged again later in the same clone: same bytes.
    let again = one(&repo, "features", &[]);
    assert_eq!(again.sha256, a["features"].sha256);
}

#[test]
fn touch_changes_nothing_even_for_dirty_packages() {
    let repo = TempRepo::with_examples();
    let before = one(&repo, "hello", &[]);
    let dirty_before = one(&repo, "hello", &["--dirty"]);
    set_mtimes(repo.path(), std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    assert_eq!(one(&repo, "hello", &[]).sha256, before.sha256);
    let dirty_after = one(&repo, "hello", &["--dirty"]);
    assert_eq!(dirty_after.sha256, dirty_before.sha256);
    assert_eq!(dirty_after.version, dirty_before.version);
    assert!(dirty_after.version.ends_with("-dirty"), "{}", dirty_after.version);
    assert_eq!(dirty_after.version.trim_end_matches("-dirty"), before.version, "clean work tree: same content");
}

#[test]
fn edit_exec_bit_and_rename_each_change_the_version() {
    let repo = TempRepo::with_examples();
    let mut seen = vec![one(&repo, "hello", &[]).version];
    repo.write("workflows/hello/hello/greet.py", "# edited\n");
    repo.commit("edit");
    seen.push(one(&repo, "hello", &[]).version);
    let file = repo.path().join("workflows/hello/hello/greet.py");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
    repo.commit("exec bit");
    let exec = one(&repo, "hello", &[]);
    seen.push(exec.version.clone());
    assert!(unpack(&exec.path)["hello/greet.py"].0, "the exec bit is in the archive");
    repo.git(&["mv", "workflows/hello/hello/greet.py", "workflows/hello/hello/salute.py"]);
    repo.commit("rename");
    seen.push(one(&repo, "hello", &[]).version);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 4, "each change gives a new version: {seen:?}");
}

#[test]
fn a_change_elsewhere_changes_nothing() {
    let repo = TempRepo::with_examples();
    let before = one(&repo, "hello", &[]);
    repo.write("workflows/etl/etl/pipeline.py", "# changed\n");
    repo.write("README.md", "x\n");
    repo.commit("elsewhere");
    let after = one(&repo, "hello", &[]);
    assert_eq!(after.version, before.version);
    assert_eq!(after.sha256, before.sha256);
    // A dependency file is not code: the archive stays, but the serialization environment
    // changes, and with it the version.
    repo.write("workflows/hello/requirements.txt", "pandas\n");
    repo.commit("hello: a requirement");
    let with_requirements = one(&repo, "hello", &[]);
    assert_eq!(with_requirements.sha256, before.sha256);
    assert_ne!(with_requirements.version, before.version);
}

#[test]
fn untracked_files_never_enter_an_archive() {
    let repo = TempRepo::with_examples();
    repo.write("workflows/hello/.env", "SECRET=1\n");
    repo.write("workflows/hello/hello/scratch.py", "x = 1\n");
    repo.write("workflows/hello/hello/greet.py", "# modified, not committed\n");
    let committed_pkg = one(&repo, "hello", &[]);
    let files = unpack(&committed_pkg.path);
    assert!(!files.contains_key(".env") && !files.contains_key("hello/scratch.py"), "{:?}", files.keys());
    assert_ne!(files["hello/greet.py"].1, b"# modified, not committed\n", "the commit is packaged, not the work tree");
    let dirty = one(&repo, "hello", &["--dirty"]);
    let files = unpack(&dirty.path);
    assert!(!files.contains_key(".env") && !files.contains_key("hello/scratch.py"), "{:?}", files.keys());
    assert_eq!(files["hello/greet.py"].1, b"# modified, not committed\n", "--dirty takes tracked files as they are");
    assert_ne!(dirty.version.trim_end_matches("-dirty"), committed_pkg.version);
    // Staged is tracked: `git add` brings a new file into a dirty package; deleted files leave.
    repo.git(&["add", "workflows/hello/hello/scratch.py"]);
    std::fs::remove_file(repo.path().join("workflows/hello/hello/greet.py")).unwrap();
    let files = unpack(&one(&repo, "hello", &["--dirty"]).path);
    assert_eq!(files.keys().collect::<Vec<_>>(), ["hello/__init__.py", "hello/scratch.py"]);
}

#[test]
fn archive_unpacks_to_exactly_the_committed_code_set() {
    require_tool("tar");
    let repo = TempRepo::with_examples();
    let pkg = one(&repo, "features", &[]);
    let expected = committed(
        &repo,
        &[
            ("features/__init__.py", "workflows/features/features/__init__.py"),
            ("features/build.py", "workflows/features/features/build.py"),
            ("workflow.toml", "workflows/features/workflow.toml"),
            ("flyte_common/__init__.py", "libs/flyte_common/__init__.py"),
            ("flyte_common/text.py", "libs/flyte_common/text.py"),
        ],
    );
    assert_eq!(unpack(&pkg.path), expected);
    // The etl archive leaves out its Dockerfile and requirements.txt (they make the image).
    let etl = unpack(&one(&repo, "etl", &[]).path);
    assert_eq!(etl.keys().collect::<Vec<_>>(), ["etl/__init__.py", "etl/pipeline.py"]);
}

#[test]
fn archive_entries_are_normalised() {
    require_tool("tar");
    let repo = TempRepo::with_examples();
    let pkg = one(&repo, "features", &[]);
    let out = Command::new("tar").args(["--numeric-owner", "-tvzf"]).arg(&pkg.path).output().unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = listing.lines().map(|l| l.split_whitespace().last().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "entries sorted:\n{listing}");
    for line in listing.lines() {
        assert!(line.starts_with("-rw-r--r-- 0/0") || line.starts_with("drwxr-xr-x 0/0"), "{line}");
        assert!(line.contains("1970-01-01"), "{line}");
    }
    let bytes = pkg.bytes();
    assert_eq!(&bytes[..4], &[0x1f, 0x8b, 8, 0], "gzip header without a file name");
    assert_eq!(&bytes[4..8], &[0, 0, 0, 0], "gzip mtime 0");
}

#[test]
fn symlinks_inside_are_kept_and_escaping_ones_refused() {
    let repo = TempRepo::with_examples();
    std::os::unix::fs::symlink("greet.py", repo.path().join("workflows/hello/hello/alias.py")).unwrap();
    repo.commit("link inside");
    let files = unpack(&one(&repo, "hello", &[]).path);
    assert_eq!(files["hello/alias.py"].1, b"-> greet.py");

    std::os::unix::fs::symlink("../../../deploy.toml", repo.path().join("workflows/hello/hello/conf.toml")).unwrap();
    repo.commit("link outside");
    let out = tempfile::tempdir().unwrap();
    let run = repo.xtask(&["package", "hello", "--out", out.path().to_str().unwrap()]);
    let err = run.user_error();
    assert!(err.contains("symlink workflows/hello/hello/conf.toml points to '../../../deploy.toml'"), "{err}");
    assert!(err.contains("help:"), "{err}");
    assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), 0, "no archive written");
}

#[test]
fn flyteignore_is_honoured() {
    let repo = TempRepo::with_examples();
    repo.write("workflows/hello/.flyteignore", "# local data\n*.csv\n!keep.csv\nnotebooks/\n");
    repo.write("workflows/hello/data.csv", "1\n");
    repo.write("workflows/hello/hello/keep.csv", "2\n");
    repo.write("workflows/hello/notebooks/explore.py", "x\n");
    repo.commit("ignore");
    let files = unpack(&one(&repo, "hello", &[]).path);
    assert_eq!(
        files.keys().collect::<Vec<_>>(),
        ["hello/__init__.py", "hello/greet.py", "hello/keep.csv"],
        "ignored files and .flyteignore itself are left out"
    );
}

#[test]
fn shared_library_goes_under_its_last_component() {
    let repo = TempRepo::with_examples();
    let before = one(&repo, "training", &[]);
    assert!(unpack(&before.path).contains_key("flyte_common/text.py"));
    repo.write("libs/flyte_common/text.py", "# changed\n");
    repo.commit("shared change");
    let after = one(&repo, "training", &[]);
    assert_ne!(after.version, before.version, "a change in a shared path reaches the workflow");
    assert_eq!(unpack(&after.path)["flyte_common/text.py"].1, b"# changed\n");

    repo.write("workflows/training/flyte_common/__init__.py", "");
    repo.commit("clash");
    let out = tempfile::tempdir().unwrap();
    let err = repo.xtask(&["package", "training", "--out", out.path().to_str().unwrap()]).user_error().to_string();
    assert!(
        err.contains("libs/flyte_common/__init__.py")
            && err.contains("workflows/training/flyte_common/__init__.py")
            && err.contains("'flyte_common/__init__.py'"),
        "{err}"
    );
}

#[test]
fn package_errors_are_user_errors() {
    let repo = TempRepo::with_examples();
    let err = repo.xtask(&["package", "nope"]).user_error().to_string();
    assert!(err.contains("no workflow named 'nope'"), "{err}");
    let err = repo.xtask(&["package", "hello", "--head", "no-such-ref"]).user_error().to_string();
    assert!(err.contains("ref 'no-such-ref'"), "{err}");
    let err = repo.xtask(&["package", "hello", "--dirty", "--head", "main~1"]).user_error().to_string();
    assert!(err.contains("--dirty packages the working tree"), "{err}");
}

#[test]
fn a_tracked_folder_replaced_by_a_link_brings_nothing_from_where_it_leads() {
    let repo = TempRepo::with_examples();
    repo.write("workflows/hello/hello/data/passwd", "tracked\n");
    repo.commit("hello: a data folder");
    // Elsewhere, outside the repository: what must never enter an archive.
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("passwd"), "root:x:0:0:SECRET\n").unwrap();
    let data = repo.path().join("workflows/hello/hello/data");
    std::fs::remove_dir_all(&data).unwrap();
    std::os::unix::fs::symlink(outside.path(), &data).unwrap();
    let dirty = one(&repo, "hello", &["--dirty"]);
    let files = unpack(&dirty.path);
    assert!(
        !files.contains_key("hello/data/passwd"),
        "the tracked file is gone from the work tree: {:?}",
        files.keys()
    );
    for (name, (_, bytes)) in &files {
        assert!(!String::from_utf8_lossy(bytes).contains("SECRET"), "{name} holds bytes from outside the repository");
    }
}

/// A small deterministic generator (xorshift64*), so a failing arrangement can be replayed
/// from its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 33) as usize % n
    }

    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.below(from.len())]
    }
}

/// Every file an unpacked archive holds, links followed as the kernel follows them: fails
/// when a link leads outside `root` (after canonicalising both).
fn reachable_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    let root = root.canonicalize().unwrap();
    let mut out = Vec::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = e.path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                // A dangling link leads nowhere; one that resolves must stay inside.
                if let Ok(real) = path.canonicalize() {
                    assert!(
                        real.starts_with(&root),
                        "{} leads to {}, outside the archive",
                        path.display(),
                        real.display()
                    );
                    if real.is_file() {
                        out.push((path.display().to_string(), std::fs::read(&real).unwrap()));
                    }
                }
            } else if meta.is_dir() {
                stack.push(path);
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

#[test]
fn no_arrangement_of_links_brings_a_byte_from_outside_the_repository() {
    require_tool("tar");
    const MARK: &str = "OUTSIDE-THE-REPOSITORY";
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(outside.path().join("d")).unwrap();
    std::fs::write(outside.path().join("passwd"), MARK).unwrap();
    std::fs::write(outside.path().join("d/passwd"), MARK).unwrap();
    // The tracked folder `x` replaced by a link here: its tracked paths hold outside bytes.
    std::fs::create_dir_all(outside.path().join("y")).unwrap();
    std::fs::write(outside.path().join("y/keep.py"), MARK).unwrap();
    let o = outside.path().to_str().unwrap().to_string();
    let (mut packaged, mut refused) = (0, 0);
    // (What is outside the repository but inside the clone's parent: a file beside it.)
    for seed in 1..=40u64 {
        let repo = TempRepo::with_examples();
        std::fs::write(repo.path().join("../flyte-deploy-beside"), MARK).ok();
        repo.write("workflows/hello/hello/x/y/keep.py", "# keep\n");
        repo.write("workflows/hello/hello/x/passwd", "tracked\n");
        // A decoy where a lexical reading of `x/up/../../passwd` lands, and the file a kernel
        // reaches through `x/up` (untracked, at the repository's root).
        repo.write("workflows/hello/hello/passwd", "decoy\n");
        repo.write("passwd", MARK);
        repo.write(".gitignore", "/passwd\n");
        repo.symlink("../..", "workflows/hello/hello/x/up");
        repo.write("deploy.toml", &std::fs::read_to_string(repo.path().join("deploy.toml")).unwrap());
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let places =
            ["workflows/hello", "workflows/hello/hello", "workflows/hello/hello/x", "workflows/hello/hello/x/y"];
        let mut links: Vec<String> = Vec::new();
        for n in 0..1 + rng.below(2) {
            let place = rng.pick(&places);
            let ups = "../".repeat(rng.below(6));
            let via = links.last().map(|l: &String| l.rsplit('/').next().unwrap().to_string());
            let target = match rng.below(20) {
                14 | 15 => format!("x/up/../../{ups}passwd"),
                16 => "x/up/hello/greet.py".to_string(),
                17 => "x/y".to_string(),
                18 | 19 => "greet.py".to_string(),
                // Links a workflow may well hold: to its own files and folders.
                9 => "keep.py".to_string(),
                10 => "../hello/greet.py".to_string(),
                11 => "y".to_string(),
                12 => "..".to_string(),
                13 => "greet.py".to_string(),
                0 => format!("{ups}greet.py"),
                1 => format!("{ups}deploy.toml"),
                2 => format!("{o}/passwd"),
                3 => o.clone(),
                4 => format!("{ups}etc/passwd"),
                5 => ups.trim_end_matches('/').to_string(),
                6 => format!("{}/{ups}passwd", via.clone().unwrap_or_else(|| ".".into())),
                7 => format!("{}/../../{ups}", via.unwrap_or_else(|| ".".into())),
                _ => format!("{ups}flyte-deploy-beside"),
            };
            let link = format!("{place}/link{n}");
            if target.is_empty() {
                continue;
            }
            repo.symlink(&target, &link);
            links.push(link);
        }
        repo.commit(&format!("arrangement {seed}"));
        // The working tree may differ from the commit: a tracked folder now a link to outside.
        if rng.below(2) == 0 {
            let x = repo.path().join("workflows/hello/hello/x");
            std::fs::remove_dir_all(&x).unwrap();
            std::os::unix::fs::symlink(
                if rng.below(2) == 0 { outside.path().to_path_buf() } else { "/etc".into() },
                &x,
            )
            .unwrap();
        }
        for dirty in [false, true] {
            let out = tempfile::tempdir().unwrap();
            let mut args = vec!["package", "hello", "--format", "json", "--out", out.path().to_str().unwrap()];
            if dirty {
                args.push("--dirty");
            }
            let run = repo.xtask(&args);
            match run.status {
                Some(2) => {
                    refused += 1;
                    assert!(run.stderr.contains("help:"), "seed {seed}: {}", run.stderr);
                }
                Some(0) => {
                    packaged += 1;
                    let json = run.json();
                    let archive = json[0]["path"].as_str().unwrap();
                    let unpacked = tempfile::tempdir().unwrap();
                    let ok = Command::new("tar").arg("-xzf").arg(archive).arg("-C").arg(unpacked.path()).status();
                    assert!(ok.unwrap().success(), "seed {seed}: tar failed");
                    for (file, bytes) in reachable_bytes(unpacked.path()) {
                        let text = String::from_utf8_lossy(&bytes);
                        assert!(
                            !text.contains(MARK) && !text.contains("root:x:0:0"),
                            "seed {seed} (dirty: {dirty}): {file} holds bytes from outside the repository; links: {links:?}"
                        );
                    }
                }
                other => panic!("seed {seed} (dirty: {dirty}): exit {other:?}: {}", run.stderr),
            }
        }
    }
    // Both outcomes occur: the arrangements are not all refused (or all harmless).
    eprintln!("packaged {packaged}, refused {refused}");
    assert!(packaged >= 5 && refused >= 5, "packaged {packaged}, refused {refused}");
}
