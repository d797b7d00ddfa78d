//! `steward audit verify | export | tree-head` against a real data dir,
//! including tampering with the SQLite file behind Steward's back.

use serde_json::Value;

use crate::support::{mode, Steward};

/// A data dir with some audited activity (user and token creation, an import).
fn with_activity() -> Steward {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    s.create_token("sam");
    std::fs::write(
        s.path("in.csv"),
        "given_name,email\nAda,ada@example.org\nAlan,alan@example.org\nGrace,grace@example.org\n",
    )
    .unwrap();
    s.run(["contact", "import", s.path("in.csv").to_str().unwrap(), "--as", "sam"])
        .ok();
    s.run(["contact", "export", "--as", "sam"]).ok();
    s
}

fn db(s: &Steward) -> rusqlite::Connection {
    rusqlite::Connection::open(s.data_dir().join("steward.db")).unwrap()
}

#[test]
fn verify_passes_on_an_intact_log_and_names_the_first_bad_entry() {
    let s = with_activity();
    let head = s.run(["audit", "tree-head"]);
    head.ok();
    let head: Value = serde_json::from_str(head.stdout.trim()).unwrap();
    assert!(head["tree_size"].as_u64().unwrap() >= 8, "{head}");
    let out = s.run(["audit", "verify"]);
    out.ok();
    assert!(out.stdout.contains("intact"), "{}", out.stdout);

    // Change one entry's bytes.
    let c = db(&s);
    let entry: Vec<u8> = c
        .query_row("SELECT entry FROM audit_log WHERE idx = 4", [], |r| r.get(0))
        .unwrap();
    let forged = String::from_utf8(entry.clone())
        .unwrap()
        .replace("\"ok\"", "\"denied\"");
    assert_ne!(forged.as_bytes(), entry.as_slice());
    c.execute("UPDATE audit_log SET entry = ?1 WHERE idx = 4", [forged.as_bytes()])
        .unwrap();
    let out = s.run(["audit", "verify"]);
    let err = out.one_line_error();
    assert_eq!(out.code, 1);
    assert!(err.contains("entry 4"), "{err}");
    c.execute("UPDATE audit_log SET entry = ?1 WHERE idx = 4", [&entry])
        .unwrap();
    s.run(["audit", "verify"]).ok();

    // Delete one.
    c.execute("DELETE FROM audit_log WHERE idx = 2", []).unwrap();
    let out = s.run(["audit", "verify"]);
    assert_eq!(out.code, 1);
    assert!(out.one_line_error().contains("entry 2"), "{}", out.stderr);
}

#[test]
fn export_writes_canonical_lines_and_ocsf_events() {
    let s = with_activity();
    let out = s.run(["audit", "export"]);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(lines.len() >= 8);
    for (i, line) in lines.iter().enumerate() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["index"], i, "entries in order");
        assert_eq!(v["v"], 1);
    }
    for secret in ["Ada", "ada@example.org", "Grace"] {
        assert!(
            !out.stdout.contains(secret),
            "the export holds no personal data ({secret})"
        );
    }
    let ocsf = s.run(["audit", "export", "--format", "ocsf"]);
    ocsf.ok();
    let first: Value = serde_json::from_str(ocsf.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(first["class_uid"], 6003);
    assert_eq!(first["category_uid"], 6);
    let file = s.path("audit.jsonl");
    s.run(["audit", "export", "-o", file.to_str().unwrap()]).ok();
    assert_eq!(mode(&file), 0o600);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), out.stdout);
}
