//! The compliance report over a known history on real SQLite: the exact
//! figures in JSON, the charts in the HTML, the CSV, and the signed head.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, Utc};
use serde_json::json;
use steward_service::consent::ConsentInput;
use steward_service::dsr::{DsrInput, SubjectRef};
use steward_service::{compliance, compliance_render, Config, RequestContext, Service};
use zeroize::Zeroizing;

async fn user(service: &Service, name: &str, role: &str) -> RequestContext {
    service
        .create_user(name, role, Zeroizing::new("long-enough-password".into()))
        .await
        .unwrap();
    let p = service.local_principal(name).await.unwrap();
    service.context(p, None, None, None).await.unwrap()
}

async fn contact(service: &Service, ctx: &RequestContext, i: usize, purpose: &str) -> steward_domain::SubjectId {
    let body = json!({"given_name": format!("Person{i}"), "email": format!("p{i}@example.org"), "purposes": [purpose]});
    service
        .create_contact(ctx, body.as_object().unwrap().clone())
        .await
        .unwrap()
        .id
}

fn dsr(kind: &str, regime: &str, email: &str, days_ago: i64) -> DsrInput {
    DsrInput {
        kind: kind.into(),
        regime: regime.into(),
        subject: SubjectRef::Email(email.into()),
        details: None,
        received_at: Some((Utc::now() - Duration::days(days_ago)).fixed_offset()),
    }
}

#[tokio::test]
async fn known_history_gives_exact_figures() {
    let dir = tempfile::tempdir().unwrap();
    let service = Service::open(&Config::new(dir.path().join("data"))).await.unwrap();
    let s1 = user(&service, "s1", "sales").await;
    let s2 = user(&service, "s2", "sales").await;
    let s3 = user(&service, "s3", "sales").await;
    let dpo = user(&service, "dee", "dpo").await;
    let mia = user(&service, "mia", "marketing").await;

    // Reads: s1 reads 25 people once each, s2 2 people 3 times, s3 3 people once.
    let mut people = Vec::new();
    for i in 0..25 {
        people.push(contact(&service, &s1, i, "sales").await);
    }
    for id in &people {
        service.get_contact(&s1, *id).await.unwrap();
    }
    for _ in 0..3 {
        for id in &people[..2] {
            service.get_contact(&s2, *id).await.unwrap();
        }
    }
    for id in &people[..3] {
        service.get_contact(&s3, *id).await.unwrap();
    }

    // Consent: three people grant marketing e-mail, one withdraws.
    let mut fans = Vec::new();
    for i in 100..103 {
        let id = contact(&service, &mia, i, "marketing_email").await;
        let input = ConsentInput {
            purpose: "marketing_email".into(),
            granted: true,
            ..ConsentInput::default()
        };
        service.record_consent(&mia, id, input).await.unwrap();
        fans.push(id);
    }
    let withdraw = ConsentInput {
        purpose: "marketing_email".into(),
        granted: false,
        ..ConsentInput::default()
    };
    service.record_consent(&mia, fans[0], withdraw).await.unwrap();

    // Requests: four in the period (two closed), one older and overdue.
    let a = service
        .create_dsr(&dpo, dsr("access", "gdpr", "p1@example.org", 2))
        .await
        .unwrap();
    service
        .create_dsr(&dpo, dsr("access", "gdpr", "p2@example.org", 1))
        .await
        .unwrap();
    let e = service
        .create_dsr(&dpo, dsr("erasure", "gdpr", "p3@example.org", 1))
        .await
        .unwrap();
    service
        .create_dsr(&dpo, dsr("access", "ccpa", "p4@example.org", 0))
        .await
        .unwrap();
    service
        .create_dsr(&dpo, dsr("access", "gdpr", "p5@example.org", 40))
        .await
        .unwrap();
    service
        .verify_dsr(&dpo, a.row.id, Some("ID seen".into()))
        .await
        .unwrap();
    service.fulfill_dsr(&dpo, a.row.id).await.unwrap();
    service
        .refuse_dsr(&dpo, e.row.id, "manifestly unfounded")
        .await
        .unwrap();

    // Breaches: one notified 10 hours after awareness, one 80 hours unnotified.
    let open = |hours_ago: i64| {
        serde_json::from_value(json!({
            "title": "Laptop lost", "description": "On a train.",
            "category": "confidentiality", "source": "lost_device",
            "aware_at": (Utc::now() - Duration::hours(hours_ago)).to_rfc3339(),
        }))
        .unwrap()
    };
    let first = service.open_incident(&dpo, open(10)).await.unwrap();
    service.open_incident(&dpo, open(80)).await.unwrap();
    let notice = serde_json::from_value(json!({"reference": "ICO-1"})).unwrap();
    service.notify_regulator(&dpo, first.id, notice).await.unwrap();

    // Training: one of the five staff with personal-data roles.
    let today = Utc::now().date_naive().to_string();
    service
        .add_training(None, s1.principal.user_id, "GDPR basics", &today, None)
        .await
        .unwrap();

    let now = Utc::now();
    let report = service
        .compliance_report(now - Duration::days(30), now + Duration::minutes(1), now)
        .await
        .unwrap();
    let v = serde_json::to_value(&report).unwrap();

    // Requests.
    assert_eq!(v["dsr"]["received"], 4);
    assert_eq!(v["dsr"]["by_kind"], json!({"access": 3, "erasure": 1}));
    assert_eq!(v["dsr"]["by_regime"], json!({"ccpa": 1, "gdpr": 3}));
    assert_eq!(v["dsr"]["closed"], 2);
    assert_eq!(v["dsr"]["closed_on_time"], 2);
    assert_eq!(v["dsr"]["on_time_rate"], 1.0);
    let median = v["dsr"]["median_days_to_close"].as_f64().unwrap();
    assert!(
        (1.49..1.51).contains(&median),
        "closed 2 and 1 days after receipt: {median}"
    );
    let p95 = v["dsr"]["p95_days_to_close"].as_f64().unwrap();
    assert!((1.99..2.01).contains(&p95), "{p95}");
    assert_eq!(v["dsr"]["open_now"], 3);
    assert_eq!(v["dsr"]["overdue_now"], 1);

    // Consent.
    let m = &v["consent"]["by_purpose"]["marketing_email"];
    assert_eq!(m["grants"], 3);
    assert_eq!(m["withdrawals"], 1);
    assert_eq!(m["current_granted"], 2);
    assert_eq!(m["current_withdrawn"], 1);
    assert!((m["rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    let month = now.format("%Y-%m").to_string();
    assert_eq!(
        v["consent"]["by_month"],
        json!([{"month": month, "purpose": "marketing_email", "grants": 3, "withdrawals": 1}])
    );

    // Reads: s1 is the outlier.
    assert_eq!(v["reads"]["total"], 25 + 6 + 3);
    assert_eq!(v["reads"]["by_role"], json!({"sales": 34}));
    assert_eq!(v["reads"]["by_purpose"], json!({"sales": 34}));
    let accounts = v["reads"]["by_account"].as_array().unwrap();
    assert_eq!(accounts.len(), 3);
    assert_eq!(accounts[0]["account"], s1.principal.user_id.to_string());
    assert_eq!(accounts[0]["subjects"], 25);
    assert_eq!(accounts[0]["outlier"], true);
    assert_eq!(accounts[1]["subjects"], 3);
    assert_eq!(accounts[2]["subjects"], 2);
    assert_eq!(accounts[2]["reads"], 6);
    assert!(accounts[1..].iter().all(|a| a["outlier"] == false));
    assert_eq!(v["reads"]["median_subjects"], 3.0);

    // Breaches.
    assert_eq!(v["incidents"]["opened"], 2);
    assert_eq!(v["incidents"]["notified"], 1);
    assert_eq!(v["incidents"]["notified_within_72h"], 1);
    let h = v["incidents"]["hours_to_notify"][0].as_f64().unwrap();
    assert!((9.9..10.1).contains(&h), "{h}");
    assert_eq!(v["incidents"]["overdue_now"], 1);

    // Training and the self-audit.
    assert_eq!(v["training"], json!({"staff": 5, "trained": 1, "coverage": 0.2}));
    assert!(v["security"]["failing"]
        .as_array()
        .unwrap()
        .contains(&json!("key_backup")));

    // The head the figures were computed against verifies with the log.
    let head = &report.tree_head;
    assert!(head.tree_size > 40);
    service.verify_audit_log().await.unwrap();

    // HTML: charts, no script, nobody named; CSV: the same figures.
    let html = compliance_render::to_html(&report);
    assert!(
        html.matches("<svg").count() >= 5,
        "charts for requests, consent, reads (2) and breaches"
    );
    assert!(html.contains("Requests by kind") && html.contains("72 h (Art. 33)"));
    assert!(html.contains("reads far more people than its peers"));
    assert!(!html.contains("<script"));
    assert!(!html.contains("@example.org") && !html.contains("Person1"));
    assert!(html.contains(&head.key_id));
    let csv = compliance_render::to_csv(&report);
    assert!(csv.starts_with("section,metric,key,value\n"));
    assert!(csv.contains("dsr,received,,4\n"));
    assert!(csv.contains("consent,withdrawals,marketing_email,1\n"));
    assert!(csv.contains(&format!("reads,outlier,{},true\n", s1.principal.user_id)));

    // A period before any of it: nothing received, the same "now" figures.
    let before = service
        .compliance_report(now - Duration::days(400), now - Duration::days(300), now)
        .await
        .unwrap();
    assert_eq!(before.dsr.received, 0);
    assert_eq!(before.dsr.open_now, 3);
    assert_eq!(before.reads.total, 0);
    assert!(
        service.compliance_report(now, now, now).await.is_err(),
        "an empty period"
    );
}

#[test]
fn period_bounds() {
    let from = compliance::parse_bound("from", "2026-01-31", false).unwrap();
    let to = compliance::parse_bound("to", "2026-01-31", true).unwrap();
    assert_eq!(from.to_rfc3339(), "2026-01-31T00:00:00+00:00");
    assert_eq!(to.to_rfc3339(), "2026-02-01T00:00:00+00:00", "the last day is included");
    let t = compliance::parse_bound("to", "2026-01-31T10:00:00+01:00", true).unwrap();
    assert_eq!(t.to_rfc3339(), "2026-01-31T09:00:00+00:00");
    assert!(compliance::parse_bound("from", "yesterday", false).is_err());
}
