//! `GET /api/v1/reports/security`: the self-audit over the API, for
//! admin, auditor and dpo only; audited.

use crate::helpers::TestApp;

async fn security_report(app: &TestApp) {
    for role in ["admin", "auditor", "dpo"] {
        let r = app.get("/api/v1/reports/security", role).await;
        assert_eq!(r.status, 200, "{role}: {}", r.text);
        let controls = r.body["controls"].as_array().unwrap();
        assert_eq!(controls.len(), 15);
        let score = r.body["score"].as_u64().unwrap();
        assert!(score <= 100);
        let tls = controls.iter().find(|c| c["id"] == "tls").unwrap();
        assert_eq!(tls["status"], "fail", "the test server serves plain HTTP");
        assert!(tls["gdpr"][0] == "32(1)(a)");
        assert!(!r.text.contains("-user"), "no staff names: {}", r.text);
    }
    for role in ["sales", "support", "marketing"] {
        assert_eq!(app.get("/api/v1/reports/security", role).await.status, 403, "{role}");
    }
    let mut cursor = String::new();
    let mut seen = 0;
    loop {
        let log = app.get(&format!("/api/v1/audit?limit=200{cursor}"), "auditor").await;
        assert_eq!(log.status, 200, "{}", log.text);
        seen += log.text.matches("\"report.security\"").count();
        match log.body["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(seen, 3, "each report is audited");
}

crate::stories!(security_report);
