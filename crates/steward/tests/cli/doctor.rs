//! `steward doctor`: the report as text and JSON, the score's exit code,
//! and a control that turns from fail to pass with the operator's fix.

use serde_json::Value;

use crate::support::Steward;

#[test]
fn doctor_reports_controls_and_gates_on_the_score() {
    let s = Steward::initialised();
    s.create_user("quennell", "sales");
    let out = s.run(["doctor", "--json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON");
    let controls = v["controls"].as_array().unwrap();
    assert_eq!(controls.len(), 15);
    for c in controls {
        assert!(["pass", "warn", "fail"].contains(&c["status"].as_str().unwrap()), "{c}");
        assert!(!c["gdpr"].as_array().unwrap().is_empty() && !c["iso27001"].as_array().unwrap().is_empty());
        assert!(
            c["status"] == "pass" || !c["fix"].as_str().unwrap().is_empty(),
            "a fix for {c}"
        );
    }
    let status = |v: &Value, id: &str| {
        v["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["status"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(status(&v, "key_backup"), "fail");
    assert_eq!(status(&v, "tls"), "fail", "no certificate given");
    assert!(!out.stdout.contains("quennell"), "no names of people or staff");
    let score = v["score"].as_u64().unwrap();
    assert!(score < 100);

    // The operator's fix, then the control passes and the score rises.
    let today = chrono::Utc::now().date_naive().to_string();
    s.run(["settings", "set", "key_backup_verified_on", &today]).ok();
    let out = s.run(["doctor", "--json"]);
    let after: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(status(&after, "key_backup"), "pass");
    assert!(after["score"].as_u64().unwrap() > score);

    // The gate for CI and cron.
    s.run(["doctor", "--fail-under", "0"]).ok();
    let out = s.run(["doctor", "--fail-under", "100"]);
    out.expect_code(1);
    assert!(out.stderr.contains("below 100"), "{}", out.stderr);
    let out = s.run(["doctor", "--fail-under", "101"]);
    out.expect_code(2);

    // Text for a person: no colour codes into a pipe.
    let out = s.run(["doctor"]);
    out.ok();
    assert!(
        out.stdout.contains("FAIL tls") && out.stdout.contains("fix: "),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains('\u{1b}'));
}

#[test]
fn compliance_report_in_three_formats() {
    let s = Steward::initialised();
    let dir = tempfile::tempdir().unwrap();
    let html = dir.path().join("report.html");
    s.run([
        "report",
        "compliance",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
        "--output",
    ])
    .expect_code(2);
    s.run([
        "report",
        "compliance",
        "--from",
        "2026-01-01",
        "-o",
        html.to_str().unwrap(),
    ])
    .ok();
    let text = std::fs::read_to_string(&html).unwrap();
    assert!(text.starts_with("<!DOCTYPE html>") && text.contains("Compliance report"));
    let out = s.run(["report", "compliance", "--format", "json"]);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(v["tree_head"]["signature"].is_string());
    let out = s.run(["report", "compliance", "--format", "csv"]);
    assert!(out.stdout.starts_with("section,metric,key,value"));
    let err = s.run(["report", "compliance", "--from", "soon"]).refused();
    assert!(err.contains("--from must be a date"), "{err}");
}
