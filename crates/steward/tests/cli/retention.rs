//! A retention run killed with SIGKILL in the middle of its batch, again
//! and again: after each kill every contact is either whole or gone with
//! its audit entry and its count in the retention log (one transaction),
//! the audit log verifies, and the next run finishes the rest.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{wait_with_timeout, Steward};

const CONTACTS: usize = 3_000;

fn remaining(s: &Steward) -> usize {
    let out = s.run([
        "contact",
        "export",
        "--as",
        "sam",
        "--purpose",
        "sales",
        "--format",
        "json",
    ]);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v.as_array().unwrap().len()
}

/// What the log and the retention report say was deleted, checked against
/// what is left.
fn check_consistent(s: &Steward) -> usize {
    s.run(["audit", "verify"]).ok();
    let left = remaining(s);
    let report = s.run(["retention", "report", "--since", "2000-01-01", "--json"]);
    report.ok();
    let v: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    let logged: u64 = v["totals"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["rule"] == "leads")
        .map(|t| t["count"].as_u64().unwrap())
        .sum();
    let audit = s.run(["audit", "export"]);
    audit.ok();
    let audited = audit
        .stdout
        .lines()
        .filter(|l| l.contains("\"retention.erase\""))
        .count();
    let deleted = CONTACTS - left;
    assert_eq!(
        logged as usize, deleted,
        "the retention log counts exactly what is gone"
    );
    assert_eq!(
        audited, deleted,
        "every deletion has its audit entry, and no entry is without one"
    );
    deleted
}

#[test]
fn a_retention_run_killed_mid_batch_leaves_nothing_half_deleted() {
    let s = Steward::initialised();
    let inventory = format!(
        "{}\n[[retention]]\nname = \"leads\"\nrecord = \"contact\"\npurpose = \"sales\"\ndays = 1\nfrom = \"created\"\naction = \"erase\"\nkeep_proof = true\n",
        include_str!("../../../steward-domain/src/default_inventory.toml")
    );
    std::fs::write(s.data_dir().join("inventory.toml"), inventory).unwrap();
    s.create_user("sam", "sales");
    let mut csv = String::from("given_name,family_name,email\n");
    for i in 0..CONTACTS {
        csv.push_str(&format!("Person{i},Crashtest,person{i}@crash.example.org\n"));
    }
    let file = s.path("contacts.csv");
    std::fs::write(&file, csv).unwrap();
    s.run([
        "contact",
        "import",
        file.to_str().unwrap(),
        "--as",
        "sam",
        "--purposes",
        "sales",
    ])
    .ok();
    assert_eq!(check_consistent(&s), 0);

    let mut kills = 0;
    let mut deleted = 0;
    for attempt in 0..8u64 {
        let mut cmd = s.command();
        cmd.args(["retention", "run", "--batch", "100000"])
            .env("STEWARD_TEST_CLOCK_OFFSET_DAYS", "2")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        std::thread::sleep(Duration::from_millis(60 + (attempt * 53) % 200));
        if child.try_wait().unwrap().is_some() {
            // It finished before the kill.
            deleted = check_consistent(&s);
            break;
        }
        child.kill().unwrap();
        wait_with_timeout(&mut child, Duration::from_secs(10)).unwrap();
        kills += 1;
        let now = check_consistent(&s);
        eprintln!("kill {kills}: {now} of {CONTACTS} deleted");
        assert!(now >= deleted, "nothing comes back");
        deleted = now;
        if deleted == CONTACTS {
            break;
        }
    }
    assert!(kills >= 1, "at least one run was killed mid-batch");
    // A run to the end deletes the rest; no one was deleted twice.
    let mut cmd = s.command();
    cmd.args(["retention", "run", "--batch", "100000", "--json"])
        .env("STEWARD_TEST_CLOCK_OFFSET_DAYS", "2");
    let out = crate::support::run(cmd, None);
    out.ok();
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(
        v["erased"].as_u64().unwrap() as usize,
        CONTACTS - deleted,
        "{}",
        out.stdout
    );
    assert_eq!(check_consistent(&s), CONTACTS);
    // The proofs were kept with the deletions: an erased person is not re-imported.
    let again = s.path("again.csv");
    std::fs::write(&again, "given_name,email\nPerson7,person7@crash.example.org\n").unwrap();
    let out = s.run([
        "contact",
        "import",
        again.to_str().unwrap(),
        "--as",
        "sam",
        "--purposes",
        "sales",
    ]);
    out.expect_code(1);
    assert_eq!(remaining(&s), 0);
}
