//! The master key: refusing a wrong or missing key, supplying it from
//! outside the data dir, and `steward keys rotate` (including an
//! interrupted rotation).

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{mode, Server, Steward};

fn master(s: &Steward) -> std::path::PathBuf {
    s.data_dir().join("keys").join("master.key")
}

/// A data dir with a sales user and `n` imported contacts.
fn with_contacts(n: usize) -> Steward {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    let mut csv = String::from("given_name,family_name,email\n");
    for i in 0..n {
        csv.push_str(&format!("Given{i},Family{i},person{i}@example.org\n"));
    }
    std::fs::write(s.path("people.csv"), csv).unwrap();
    s.run([
        "contact",
        "import",
        s.path("people.csv").to_str().unwrap(),
        "--as",
        "sam",
    ])
    .ok();
    s
}

fn exported(s: &Steward) -> Vec<Value> {
    let out = s.run(["contact", "export", "--as", "sam", "--format", "json"]);
    out.ok();
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

#[test]
fn a_wrong_master_key_is_refused_with_one_sentence() {
    let s = with_contacts(3);
    let original = std::fs::read(master(&s)).unwrap();
    std::fs::write(master(&s), format!("{}\n", "ab".repeat(32))).unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0"][..],
        &["contact", "export", "--as", "sam"][..],
        &["init"][..],
    ] {
        let out = s.run(args);
        let err = out.one_line_error();
        assert!(err.contains("master key does not match"), "{args:?}: {err}");
        assert!(out.stdout.is_empty(), "nothing served or exported: {}", out.stdout);
    }
    std::fs::write(master(&s), original).unwrap();
    assert_eq!(exported(&s).len(), 3, "the right key reads everything again");
}

#[test]
fn the_master_key_can_come_from_outside_the_data_dir() {
    let s = Steward::new();
    let key = "0123456789abcdef".repeat(4);
    let from_env = |args: &[&str]| {
        let mut cmd = s.command();
        cmd.env("STEWARD_MASTER_KEY", &key).args(args);
        crate::support::run(cmd, None)
    };
    from_env(&["init"]).ok();
    assert!(
        !master(&s).exists(),
        "a key from the environment is not written to the data dir"
    );
    let mut cmd = s.command();
    cmd.env("STEWARD_MASTER_KEY", &key)
        .args(["user", "create", "sam", "--role", "sales", "--password-stdin"]);
    crate::support::run(cmd, Some(b"correct horse battery staple\n")).ok();
    from_env(&["token", "create", "sam"]).ok();
    let out = s.run(["token", "create", "sam"]);
    let err = out.one_line_error();
    assert!(err.contains("missing") && err.contains("refusing to start"), "{err}");
    let out = from_env(&["keys", "rotate"]);
    assert!(
        out.one_line_error().contains("secret store"),
        "env keys are rotated in the secret store"
    );

    // --master-key-file / STEWARD_MASTER_KEY_FILE: a key file anywhere.
    let other = Steward::new();
    let file = other.path("vault-master.key");
    other.run(["--master-key-file", file.to_str().unwrap(), "init"]).ok();
    assert!(file.exists() && !master(&other).exists());
    assert_eq!(mode(&file), 0o600);
    let mut cmd = other.command();
    cmd.env("STEWARD_MASTER_KEY_FILE", &file).args(["init"]);
    crate::support::run(cmd, None).ok();
}

#[test]
fn rotation_keeps_everything_readable_and_retires_the_old_key() {
    let s = with_contacts(25);
    let before = exported(&s);
    let old = std::fs::read_to_string(master(&s)).unwrap();
    let out = s.run(["keys", "rotate"]);
    out.ok();
    assert!(out.stdout.contains("25 subject keys re-wrapped"), "{}", out.stdout);
    let new = std::fs::read_to_string(master(&s)).unwrap();
    assert_ne!(old, new, "a new master key");
    assert_eq!(mode(&master(&s)), 0o600);
    assert!(!s.data_dir().join("keys").join("master.key.next").exists());
    let keys_dir: Vec<String> = std::fs::read_dir(s.data_dir().join("keys"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        !keys_dir.iter().any(|k| k == &old),
        "the old key is gone from the key directory"
    );
    assert_eq!(exported(&s), before, "everything reads the same after rotation");

    // The old key no longer opens the database.
    std::fs::write(master(&s), &old).unwrap();
    assert!(s
        .run(["contact", "export", "--as", "sam"])
        .one_line_error()
        .contains("does not match"));
    std::fs::write(master(&s), &new).unwrap();

    // New data after rotation works, and a second rotation too.
    s.run(["keys", "rotate"]).ok();
    assert_eq!(exported(&s).len(), 25);
}

#[tokio::test]
async fn rotation_is_refused_while_serving() {
    let s = with_contacts(2);
    let mut server = Server::start(&s).await;
    let out = s.run(["keys", "rotate"]);
    let err = out.one_line_error();
    assert!(err.contains("stop it before rotating"), "{err}");
    server.terminate();
    s.run(["keys", "rotate"]).ok();
}

#[test]
fn an_interrupted_rotation_leaves_everything_readable_and_resumes() {
    let s = with_contacts(300);
    let before = exported(&s);
    let mut cmd = s.command();
    cmd.args(["keys", "rotate", "--batch-size", "10", "--pause-ms", "30"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    // Wait until some, not all, keys are re-wrapped, then kill -9.
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 256];
    while !seen.contains("re-wrapped 50 ") && Instant::now() < deadline {
        let n = stderr.read(&mut buf).unwrap();
        assert!(n > 0, "the rotation ended early: {seen}");
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen.contains("re-wrapped 50 "), "{seen}");
    assert!(!seen.contains("re-wrapped 300 "), "killed midway: {seen}");
    assert!(
        s.data_dir().join("keys").join("master.key.next").exists(),
        "the new key waits beside the old one"
    );

    // Mid-rotation, every contact is readable (keys under both master keys).
    assert_eq!(exported(&s), before);
    // Running it again finishes the job.
    let out = s.run(["keys", "rotate"]);
    out.ok();
    assert!(
        out.stdout.contains("finished an interrupted rotation"),
        "{}",
        out.stdout
    );
    assert!(!s.data_dir().join("keys").join("master.key.next").exists());
    assert_eq!(exported(&s), before);
}
