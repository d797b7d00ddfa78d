//! `steward init`: creates the data dir, database and private key files,
//! and changes nothing when run again.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::support::{mode, Steward};

/// The key files under `keys/` with their contents.
fn key_files(s: &Steward) -> BTreeMap<PathBuf, Vec<u8>> {
    std::fs::read_dir(s.data_dir().join("keys"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "key"))
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

#[test]
fn init_creates_private_database_and_keys() {
    let s = Steward::new();
    let out = s.run(["init"]);
    out.ok();
    assert!(
        !out.stdout.to_lowercase().contains("nothing changed"),
        "a first init reports what it created: {}",
        out.stdout
    );

    assert!(
        s.data_dir().join("steward.db").is_file(),
        "init creates DATA_DIR/steward.db"
    );
    assert_eq!(mode(s.data_dir()), 0o700, "the data dir is private");
    assert_eq!(
        mode(&s.data_dir().join("steward.db")),
        0o600,
        "the database file is private"
    );
    let keys_dir = s.data_dir().join("keys");
    assert_eq!(mode(&keys_dir), 0o700, "the keys dir is private");
    let keys = key_files(&s);
    assert!(!keys.is_empty(), "init creates key files under keys/");
    for (path, bytes) in &keys {
        assert_eq!(mode(path), 0o600, "{} has mode 0600", path.display());
        assert!(bytes.len() >= 32, "{} holds key material", path.display());
    }
    let distinct: std::collections::BTreeSet<_> = keys.values().collect();
    assert_eq!(distinct.len(), keys.len(), "each key is different");
}

#[test]
fn init_again_changes_nothing_and_never_replaces_a_key() {
    let s = Steward::initialised();
    let before = key_files(&s);
    s.create_user("alice", "sales");

    let out = s.run(["init"]);
    out.ok();
    assert!(
        out.stdout.to_lowercase().contains("nothing changed"),
        "a second init says nothing changed: {}",
        out.stdout
    );
    assert_eq!(
        key_files(&s),
        before,
        "key files are byte-identical after a second init"
    );
    assert_eq!(mode(s.data_dir()), 0o700);

    // The database was kept too: the user created before is still there.
    let token = s.create_token("alice");
    assert!(token.starts_with("stw_"));
}

#[test]
fn a_deleted_master_key_is_never_silently_replaced() {
    let s = Steward::initialised();
    s.create_user("alice", "sales");
    let master = s.data_dir().join("keys").join("master.key");
    assert_eq!(mode(&master), 0o600);
    std::fs::remove_file(&master).unwrap();

    for args in [
        &["init"][..],
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["token", "create", "alice"][..],
    ] {
        let out = s.run(args);
        let err = out.one_line_error();
        assert!(err.contains("master.key") && err.contains("missing"), "{args:?}: {err}");
        assert!(err.contains("refusing to start"), "{args:?}: {err}");
    }
    assert!(
        !master.exists(),
        "no new master key is made for a database that has data"
    );
}
