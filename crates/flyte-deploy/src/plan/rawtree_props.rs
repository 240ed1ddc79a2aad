//! Property tests of the in-place tree reader (`rawtree.rs`): arbitrary bytes never panic, and
//! trees git2 writes (generated names and modes) read back as git2 reads them, in git's order.
//! `PROPTEST_CASES` sets the number of cases (README: Testing).

use std::cmp::Ordering;

use git2::Oid;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use super::rawtree::{git_order, Entries, Entry, Trees, TREE_MODE};

/// Every entry of `entries`, or the first error.
fn read_all<'a>(mut entries: Entries<'a>) -> anyhow::Result<Vec<Entry<'a>>> {
    std::iter::from_fn(|| entries.next_entry().transpose()).collect()
}

fn config() -> Config {
    Config { failure_persistence: None, ..Config::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn props_arbitrary_bytes_never_panic(raw in vec(any::<u8>(), 0..200), name in vec(any::<u8>(), 0..4)) {
        let _ = read_all(Entries::new(&raw, Oid::zero()));
        let _ = Entries::new(&raw, Oid::zero()).find(&name);
    }

    #[test]
    fn props_near_valid_entries_never_panic(
        entries in vec(("[0-7]{0,8}", vec(any::<u8>(), 0..6), vec(any::<u8>(), 18..22)), 0..5),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut raw = Vec::new();
        for (mode, name, id) in &entries {
            raw.extend(mode.as_bytes());
            raw.push(b' ');
            raw.extend(name);
            raw.push(0);
            raw.extend(id);
        }
        raw.truncate(cut.index(raw.len() + 1));
        if let Ok(all) = read_all(Entries::new(&raw, Oid::zero())) {
            prop_assert!(all.iter().all(|e| e.mode <= 0o7777777));
        }
    }
}

/// A name git accepts more often than not: any bytes but `/` and NUL, short.
fn name() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![4 => b'-'..=b'z', 1 => any::<u8>()].prop_filter("no / or NUL", |b| *b != b'/' && *b != 0);
    vec(byte, 1..8)
}

/// The modes git writes: file, executable, symlink, folder, submodule.
fn mode() -> impl Strategy<Value = i32> {
    prop::sample::select(vec![0o100644, 0o100755, 0o120000, TREE_MODE, 0o160000])
}

#[test]
fn props_trees_git_writes_read_back_as_git_reads_them() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let repo = git2::Repository::init_bare(dir.path()).expect("a bare repo");
    let blob = repo.blob(b"x").expect("a blob");
    let empty = repo.treebuilder(None).and_then(|b| b.write()).expect("the empty tree");
    let commit = Oid::from_bytes(&[7; 20]).expect("an id");
    let odb = repo.odb().expect("the object database");
    let mut runner = TestRunner::new(config());
    let result = runner.run(&vec((name(), mode()), 0..24), |entries| {
        let mut builder = repo.treebuilder(None).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (name, mode) in &entries {
            let id = match *mode {
                TREE_MODE => empty,
                0o160000 => commit,
                _ => blob,
            };
            // Names git refuses (`.`, `..`, `.git`) are left out, as git leaves them out.
            let _ = builder.insert(name.as_slice(), id, *mode);
        }
        let id = builder.write().map_err(|e| TestCaseError::fail(e.to_string()))?;
        let tree = repo.find_tree(id).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let expected: Vec<(i32, Vec<u8>, Oid)> =
            tree.iter().map(|e| (e.filemode_raw(), e.name_bytes().to_vec(), e.id())).collect();

        let trees = Trees::new(&odb);
        let read = trees.get(id).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let got = read_all(read.entries()).map_err(|e| TestCaseError::fail(format!("{e:#}")))?;
        let listed: Vec<(i32, Vec<u8>, Oid)> = got.iter().map(|e| (e.mode, e.name.to_vec(), e.id)).collect();
        prop_assert_eq!(&listed, &expected);
        for pair in got.windows(2) {
            prop_assert_eq!(git_order(&pair[0], &pair[1]), Ordering::Less, "{:?} before {:?}", pair[0], pair[1]);
        }
        for e in &got {
            prop_assert_eq!(read.entries().find(e.name).ok().flatten(), Some(*e));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}
