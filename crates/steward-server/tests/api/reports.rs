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

async fn compliance_report(app: &TestApp) {
    let id = app
        .create_contact(
            "sales",
            serde_json::json!({"given_name": "Ola", "email": "ola@example.org", "purposes": ["sales"]}),
        )
        .await;
    assert_eq!(app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status, 200);
    let r = app.get("/api/v1/reports/compliance", "dpo").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.body["reads"]["total"].as_u64().unwrap() >= 1, "{}", r.text);
    assert_eq!(r.body["reads"]["by_role"]["sales"], 1);
    assert!(r.body["tree_head"]["tree_size"].as_u64().unwrap() > 0);
    assert!(!r.text.contains("ola@example.org"));
    let r = app
        .get("/api/v1/reports/compliance?format=html&from=2020-01-01", "auditor")
        .await;
    assert_eq!(r.status, 200);
    assert!(r.headers["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.text.contains("<svg") && !r.text.contains("<script"));
    let r = app.get("/api/v1/reports/compliance?format=csv", "dpo").await;
    assert!(r.text.starts_with("section,metric,key,value"), "{}", r.text);
    assert_eq!(
        app.get("/api/v1/reports/compliance?format=pdf", "dpo").await.status,
        400
    );
    assert_eq!(
        app.get("/api/v1/reports/compliance?from=last+week", "dpo").await.status,
        422
    );
    assert_eq!(
        app.get("/api/v1/reports/compliance?from=2026-02-01&to=2026-01-01", "dpo")
            .await
            .status,
        422
    );
    for role in ["sales", "admin", "marketing"] {
        assert_eq!(app.get("/api/v1/reports/compliance", role).await.status, 403, "{role}");
    }
}

crate::stories!(security_report, compliance_report);
