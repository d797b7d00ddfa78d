//! Data-subject requests over HTTP: the lifecycle and its legal deadlines,
//! and one end-to-end run per request kind, erasure included (nothing of
//! the person left to read or decrypt, the audit log still verifies).

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, Backend, Resp, TestApp};

crate::stories!(
    lifecycle_deadlines_and_refusal,
    access_and_portability_export_everything,
    access_exports_tell_what_art15_and_ccpa_list,
    erasure_leaves_nothing_to_read_or_decrypt,
    rectification_restriction_objection_and_opt_out,
    legal_hold_blocks_erasure_until_released,
    public_intake_verified_by_emailed_code,
);

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

async fn dsr(app: &TestApp, body: Value) -> Resp {
    app.post("/api/v1/dsr", "dpo", body).await
}

async fn created(app: &TestApp, body: Value) -> String {
    let r = dsr(app, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    r.body["id"].as_str().unwrap().to_string()
}

async fn step(app: &TestApp, id: &str, action: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/dsr/{id}/{action}"), "dpo", body).await
}

/// Verifies and fulfils a request, asserting success; returns the request.
async fn carry_out(app: &TestApp, id: &str) -> Value {
    let r = step(
        app,
        id,
        "verify",
        json!({"method": "signed letter with ID copy", "note": "extra members are ignored"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "in_progress");
    let r = step(app, id, "fulfill", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "completed", "{}", r.text);
    assert!(r.body["completed_at"].is_string());
    r.body
}

async fn audit_actions(app: &TestApp, subject: &str) -> Vec<String> {
    let r = app
        .get(&format!("/api/v1/audit?subject_id={subject}&limit=200"), "auditor")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["action"].as_str().unwrap().to_string())
        .collect()
}

async fn lifecycle_deadlines_and_refusal(app: &TestApp) {
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Lea", "email": "lea@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    // A letter received on 31 January: GDPR gives one calendar month → 28 February.
    let r = dsr(
        app,
        json!({"kind": "access", "regime": "gdpr", "subject": {"email": "LEA@example.org"}, "received_at": "2026-01-31T09:00:00+01:00"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "received");
    assert_eq!(
        r.body["contact_id"],
        contact.as_str(),
        "matched by e-mail, case-insensitively"
    );
    assert_eq!(ts(&r.body["received_at"]), ts(&json!("2026-01-31T08:00:00Z")));
    assert_eq!(ts(&r.body["due_at"]), ts(&json!("2026-02-28T08:00:00Z")));
    assert_eq!(r.body["deadline"], "overdue");
    let id = r.body["id"].as_str().unwrap().to_string();

    let overdue = app.get("/api/v1/dsr?status=overdue", "dpo").await;
    assert_eq!(overdue.status, StatusCode::OK, "{}", overdue.text);
    assert!(overdue.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["id"] == id.as_str()));
    assert_problem(&app.get("/api/v1/dsr?status=later", "dpo").await, 422);

    // Extended once, with a reason: two further months.
    assert!(error_fields(&step(app, &id, "extend", json!({"reason": "  "})).await).contains(&"reason".to_string()));
    let r = step(
        app,
        &id,
        "extend",
        json!({"reason": "many records across several systems"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(ts(&r.body["due_at"]), ts(&json!("2026-04-30T08:00:00Z")));
    assert_eq!(r.body["extension_reason"], "many records across several systems");
    assert_eq!(
        app.get(&format!("/api/v1/dsr/{id}"), "dpo").await.body["extension_reason"],
        "many records across several systems"
    );
    assert!(
        !note_stored_in_clear(app, "many records across several systems").await,
        "staff notes are sealed at rest"
    );
    assert_problem(&step(app, &id, "extend", json!({"reason": "again"})).await, 409);
    // The subject is told, with the reason and the new date (sealed in the outbox).
    let notices: Vec<_> = app
        .service
        .outbox(true)
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.kind == "dsr.extension" && m.message.to == "lea@example.org")
        .collect();
    assert_eq!(notices.len(), 1, "one notice of the extension");
    assert!(notices[0].message.body.contains("many records across several systems"));
    assert!(
        notices[0].message.body.contains("2026-04-30"),
        "{}",
        notices[0].message.body
    );

    // Nothing is carried out before the requester's identity is verified.
    assert_problem(&step(app, &id, "fulfill", json!({})).await, 409);
    assert_problem(&app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await, 409);
    let got = app.get(&format!("/api/v1/dsr/{id}"), "dpo").await;
    assert_eq!(got.body["status"], "received");

    // CCPA: 45 days.
    let r = dsr(
        app,
        json!({"kind": "opt_out_of_sale", "regime": "ccpa", "subject": {"contact_id": contact}, "received_at": "2026-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(ts(&r.body["due_at"]), ts(&json!("2026-02-15T00:00:00Z")));
    // Refused with a stated reason; a refused request cannot be carried out.
    let other = r.body["id"].as_str().unwrap().to_string();
    assert_problem(&step(app, &other, "refuse", json!({})).await, 422);
    let r = step(
        app,
        &other,
        "refuse",
        json!({"reason": "identity could not be verified"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "refused");
    assert_eq!(r.body["outcome"], "identity could not be verified");
    assert_problem(&step(app, &other, "verify", json!({})).await, 409);
    assert_problem(&step(app, &other, "fulfill", json!({})).await, 409);

    // Bad input is refused clearly and records nothing.
    let before = app.get("/api/v1/dsr", "dpo").await.body["items"]
        .as_array()
        .unwrap()
        .len();
    for (body, field) in [
        (
            json!({"kind": "forget", "regime": "gdpr", "subject": {"email": "a@example.org"}}),
            "kind",
        ),
        (
            json!({"kind": "access", "regime": "lgpd", "subject": {"email": "a@example.org"}}),
            "regime",
        ),
        (json!({"kind": "access", "regime": "gdpr", "subject": {}}), "subject"),
        (
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": "not an address"}}),
            "subject.email",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": "a@example.org"}, "received_at": "2999-01-01T00:00:00Z"}),
            "received_at",
        ),
        (
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": "a@example.org"}, "received_at": "yesterday"}),
            "received_at",
        ),
        (
            json!({"kind": "rectification", "regime": "gdpr", "subject": {"contact_id": contact}}),
            "details.changes",
        ),
    ] {
        let r = dsr(app, body.clone()).await;
        assert_problem(&r, 422);
        assert!(error_fields(&r).contains(&field.to_string()), "{body}: {}", r.text);
    }
    assert_problem(&dsr(app, json!({"kind": "access"})).await, 422);
    assert_problem(
        &dsr(app, json!({"kind": "access", "regime": "gdpr", "subject": {"contact_id": "00000000-0000-7000-8000-000000000000"}})).await,
        404,
    );
    assert_problem(&app.get("/api/v1/dsr/not-an-id", "dpo").await, 404);
    assert_eq!(
        app.get("/api/v1/dsr", "dpo").await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        before
    );

    // Only the privacy officer, for compliance, handles requests; refusals are audited.
    assert_problem(
        &app.post(
            "/api/v1/dsr",
            "support",
            json!({"kind": "access", "regime": "gdpr", "subject": {"contact_id": contact}}),
        )
        .await,
        403,
    );
    assert_problem(&app.get(&format!("/api/v1/dsr/{id}"), "sales").await, 403);

    let actions = audit_actions(app, &contact).await;
    for a in ["dsr.access.received", "dsr.extend", "dsr.refuse"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    assert!(app.service.verify_audit_log().await.is_ok());
}

/// The statement every access export carries (GDPR Art. 15(1)(a)-(h),
/// 15(2)), for the purposes and fields held, and for a CCPA request the
/// categories of §1798.110; in JSON and CSV.
async fn access_exports_tell_what_art15_and_ccpa_list(app: &TestApp) {
    let contact = app
        .create_contact(
            "sales",
            json!({"given_name": "Mary", "family_name": "Somerville", "email": "mary@example.org",
                   "job_title": "Astronomer", "purposes": ["sales", "marketing_email"]}),
        )
        .await;
    for regime in ["gdpr", "ccpa"] {
        let id = created(
            app,
            json!({"kind": "access", "regime": regime, "subject": {"email": "mary@example.org"}}),
        )
        .await;
        carry_out(app, &id).await;
        let e = app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await;
        assert_eq!(e.status, StatusCode::OK, "{}", e.text);
        assert_eq!(e.body["subject_id"], contact.as_str());
        let i = &e.body["information"];
        // (a) purposes, with their lawful bases.
        let purposes: Vec<(&str, &str)> = i["purposes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["purpose"].as_str().unwrap(), p["lawful_basis"].as_str().unwrap()))
            .collect();
        assert_eq!(
            purposes,
            [("sales", "legitimate_interest"), ("marketing_email", "consent")]
        );
        // (b) categories of the data held, with its fields.
        let categories: Vec<(&str, Vec<&str>)> = i["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                let fields = c["fields"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f.as_str().unwrap())
                    .collect();
                (c["category"].as_str().unwrap(), fields)
            })
            .collect();
        assert_eq!(
            categories,
            [
                ("identity", vec!["family_name", "given_name"]),
                ("contact", vec!["email"]),
                ("professional", vec!["job_title"])
            ]
        );
        // (c) recipients, and 15(2) transfers with their safeguards.
        let processor = i["recipients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "e-mail delivery processor")
            .unwrap_or_else(|| panic!("{i}"));
        assert_eq!(processor["kind"], "processor");
        assert_eq!(processor["country"], "US");
        assert_eq!(processor["third_country"], true);
        assert_eq!(processor["purposes"], json!(["marketing_email"]));
        assert_eq!(i["transfers"][0]["recipient"], "e-mail delivery processor");
        assert!(i["transfers"][0]["safeguards"].as_str().unwrap().contains("Art. 46"));
        // (d) the storage period, from the retention rules of the purposes held.
        let rules = i["storage"]["rules"].as_array().unwrap();
        let sales = rules
            .iter()
            .find(|r| r["purpose"] == "sales")
            .unwrap_or_else(|| panic!("{i}"));
        assert_eq!(sales["days"], 1095);
        assert_eq!(sales["from"], "last_interaction");
        assert!(rules.iter().all(|r| r["purpose"] != "analytics"));
        assert!(i["storage"]["criteria"].as_str().unwrap().contains("longest"));
        // (e) the rights; (f) the complaint to a supervisory authority.
        let rights: Vec<&str> = i["rights"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["right"].as_str().unwrap())
            .collect();
        for right in ["rectification", "erasure", "restriction", "objection"] {
            assert!(rights.contains(&right), "{right}: {rights:?}");
        }
        assert!(i["complaint"]["text"].as_str().unwrap().contains("Art. 77"));
        assert!(i["complaint"]["authority"]["name"].is_string());
        assert!(i["complaint"]["authority"]["address"].is_string());
        // (g) the source: entered by staff; (h) no automated decisions.
        assert_eq!(i["source"]["collected_from_you"], Value::Null);
        assert!(i["source"]["text"].as_str().unwrap().contains("staff"));
        assert_eq!(i["automated_decision_making"]["exists"], false);
        assert!(i["automated_decision_making"]["text"]
            .as_str()
            .unwrap()
            .starts_with("none"));
        assert!(i["controller"]["name"].is_string());

        let ccpa = &e.body["ccpa"];
        if regime == "ccpa" {
            assert_eq!(
                ccpa["categories_of_personal_information"].as_array().unwrap().len(),
                3,
                "{ccpa}"
            );
            assert_eq!(ccpa["categories_of_sources"].as_array().unwrap().len(), 1);
            assert_eq!(
                ccpa["business_or_commercial_purposes"],
                json!([
                    "Selling to business contacts",
                    "Sending marketing e-mail to people who agreed to it"
                ])
            );
            assert_eq!(
                ccpa["categories_of_third_parties"],
                json!([{"name": "e-mail delivery processor", "kind": "processor"}])
            );
        } else {
            assert!(ccpa.is_null(), "a GDPR request has no CCPA section");
        }

        let c = app.get(&format!("/api/v1/dsr/{id}/export?format=csv"), "dpo").await;
        assert_eq!(c.status, StatusCode::OK, "{}", c.text);
        for row in [
            "information,recipients/2,country,US\r\n",
            "information,recipients/2,purposes,marketing_email\r\n",
            "information,automated_decision_making,exists,false\r\n",
            "information,categories/1,fields,email\r\n",
        ] {
            assert!(c.text.contains(row), "{row} in\n{}", c.text);
        }
        assert_eq!(
            c.text.contains("ccpa,categories_of_third_parties/0,kind,processor\r\n"),
            regime == "ccpa",
            "{}",
            c.text
        );
    }
}

async fn access_and_portability_export_everything(app: &TestApp) {
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Ada", "family_name": "Byron", "email": "ada@example.org", "phone": "+44 20 7946 0018",
                   "city": "London", "notes": "prefers e-mail", "purposes": ["customer_service", "sales"]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{contact}/interactions"),
            "support",
            json!({"kind": "call", "summary": "asked about invoice 17"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let org = app
        .post("/api/v1/organizations", "sales", json!({"name": "Babbage Engines Ltd"}))
        .await;
    assert_eq!(org.status, StatusCode::CREATED, "{}", org.text);
    let org = org.body["id"].as_str().unwrap().to_string();
    let r = app
        .post(
            "/api/v1/deals",
            "sales",
            json!({"title": "Analytical engine", "contact_id": contact, "organization_id": org}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let deal = Some(r.body["id"].as_str().unwrap().to_string());

    for kind in ["access", "portability"] {
        let id = created(
            app,
            json!({"kind": kind, "regime": "gdpr", "subject": {"email": "ada@example.org"}}),
        )
        .await;
        let done = carry_out(app, &id).await;
        assert!(done["outcome"].as_str().unwrap().contains("export"), "{done}");
        let e = app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await;
        assert_eq!(e.status, StatusCode::OK, "{}", e.text);
        let b = &e.body;
        assert_eq!(b["format"], "steward-subject-export-v1");
        assert_eq!(b["subject_id"], contact.as_str());
        let c = &b["personal_data"]["contact"];
        assert_eq!(c["family_name"], "Byron");
        assert_eq!(c["phone"], "+442079460018");
        assert_eq!(c["notes"], "prefers e-mail");
        assert_eq!(b["interactions"][0]["summary"], "asked about invoice 17");
        if let Some(deal) = &deal {
            assert!(
                b["deals"].as_array().unwrap().iter().any(|d| d["id"] == deal.as_str()),
                "{b}"
            );
        }
        assert_eq!(b["organizations"][0]["id"], org.as_str(), "linked organisations: {b}");
        assert_eq!(b["organizations"][0]["name"], "Babbage Engines Ltd");
        let purposes = b["purposes"].as_array().unwrap();
        assert_eq!(purposes[0]["purpose"], "customer_service");
        assert_eq!(purposes[0]["lawful_basis"], "contract");
        assert!(b["retention"].is_object());
        assert!(
            b["access_log"].as_array().unwrap().len() >= 2,
            "who used the data: {}",
            b["access_log"]
        );
        assert!(b["consents"].is_array());
        if kind == "portability" {
            let v = app.get(&format!("/api/v1/dsr/{id}/export?format=vcard"), "dpo").await;
            assert_eq!(v.status, StatusCode::OK, "{}", v.text);
            assert!(v.headers["content-type"].to_str().unwrap().starts_with("text/vcard"));
            assert!(v.text.starts_with("BEGIN:VCARD\r\nVERSION:4.0\r\n"), "{}", v.text);
            assert!(
                v.text.contains("N:Byron;Ada;;;\r\n") && v.text.contains("TEL;VALUE=uri:tel:+442079460018\r\n"),
                "{}",
                v.text
            );
            let c = app.get(&format!("/api/v1/dsr/{id}/export?format=csv"), "dpo").await;
            assert_eq!(c.status, StatusCode::OK, "{}", c.text);
            assert!(c.headers["content-type"].to_str().unwrap().starts_with("text/csv"));
            assert!(c.text.starts_with("section,record_id,field,value\r\n"));
            assert!(
                c.text.contains(&format!("contact,{contact},family_name,Byron\r\n")),
                "{}",
                c.text
            );
            assert!(c.text.contains("summary,asked about invoice 17\r\n"), "{}", c.text);
            assert_problem(
                &app.get(&format!("/api/v1/dsr/{id}/export?format=pdf"), "dpo").await,
                422,
            );
        }
        if kind == "access" {
            // The bundle was stored (sealed) when the request was fulfilled: later changes do not alter it.
            let r = app
                .call(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/contacts/{contact}"),
                    Some("support"),
                    None,
                    Some(json!({"city": "Bath"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
            let again = app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await;
            assert_eq!(
                again.body["personal_data"]["contact"]["city"], "London",
                "the export is the stored bundle"
            );
            assert_eq!(again.body["generated_at"], e.body["generated_at"]);
            assert!(done["outcome"].as_str().unwrap().contains("available until"), "{done}");
            // It expires.
            app.exec_sql(
                "UPDATE export_bundles SET expires_at = 0",
                "UPDATE export_bundles SET expires_at = 0",
            )
            .await;
            assert_problem(&app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await, 410);
            let r = app
                .call(
                    reqwest::Method::PATCH,
                    &format!("/api/v1/contacts/{contact}"),
                    Some("support"),
                    None,
                    Some(json!({"city": "London"})),
                )
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        }
    }
    // A request about someone of whom nothing is held completes with that answer.
    let id = created(
        app,
        json!({"kind": "access", "regime": "ccpa", "subject": {"email": "nobody@example.org"}}),
    )
    .await;
    let done = carry_out(app, &id).await;
    assert_eq!(done["outcome"], "no personal data of this person is held");
    let e = app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text);
    assert!(e.body["personal_data"].is_null());

    // The export is itself an audited use of the data, and holds nothing personal in the audit.
    assert!(audit_actions(app, &contact).await.iter().any(|a| a == "dsr.export"));
    let audit = app
        .get(&format!("/api/v1/audit?subject_id={contact}&limit=200"), "auditor")
        .await;
    assert!(!audit.text.contains("Byron") && !audit.text.contains("ada@example.org"));
}

async fn erasure_leaves_nothing_to_read_or_decrypt(app: &TestApp) {
    const SECRETS: [&str; 3] = ["Wolfgangerasia", "erase.me.zx@example.org", "Dragonfruit-Lane-8812"];
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Wolfgangerasia", "email": "erase.me.zx@example.org", "street": "Dragonfruit-Lane-8812",
                   "purposes": ["customer_service"]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{contact}/interactions"),
            "support",
            json!({"kind": "email", "summary": "Dragonfruit-Lane-8812 parcel"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let sealed = app.raw_fields(&contact).await;
    let uuid: uuid::Uuid = contact.parse().unwrap();
    let wrapped = app.raw_wrapped_key(&contact).expect("the subject has a data key");
    let bystander = app
        .create_contact(
            "support",
            json!({"given_name": "Bystander", "email": "stays@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let bystander_key = app.raw_wrapped_key(&bystander).expect("the bystander has a data key");

    // An earlier access request left a stored bundle: erasure takes it along.
    let access = created(
        app,
        json!({"kind": "access", "regime": "gdpr", "subject": {"contact_id": contact}}),
    )
    .await;
    carry_out(app, &access).await;
    assert_eq!(
        subject_rows(app, "export_bundles", uuid).await,
        1,
        "the bundle is stored"
    );
    let id = created(
        app,
        json!({"kind": "erasure", "regime": "gdpr", "subject": {"email": "erase.me.zx@example.org"}}),
    )
    .await;
    let done = carry_out(app, &id).await;
    assert!(done["outcome"].as_str().unwrap().contains("key destroyed"), "{done}");

    // Gone for every role and every search.
    assert_problem(&app.get(&format!("/api/v1/contacts/{contact}"), "dpo").await, 404);
    assert_problem(&app.get(&format!("/api/v1/contacts/{contact}"), "support").await, 404);
    for q in ["email=erase.me.zx@example.org", "q=wolfgangerasia"] {
        let r = app.get(&format!("/api/v1/contacts?{q}"), "support").await;
        assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0), "{q}: {}", r.text);
    }
    assert_problem(
        &app.get(&format!("/api/v1/contacts/{contact}/interactions"), "support")
            .await,
        404,
    );

    // No row anywhere holds the subject's data or their data key.
    let tables = [
        "contacts",
        "contact_terms",
        "subject_keys",
        "interactions",
        "consents",
        "export_bundles",
    ];
    match app.backend {
        Backend::Sqlite => {
            let c = rusqlite::Connection::open(app.data_dir().join("steward.db")).unwrap();
            for t in tables {
                let n: i64 = c
                    .query_row(
                        &format!("SELECT count(*) FROM {t} WHERE subject_id = ?1"),
                        [uuid.as_bytes()],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert_eq!(n, 0, "{t} still holds rows of the erased subject");
            }
            drop(c);
            // Neither the database nor its WAL keeps the plaintext, the old
            // ciphertext or the wrapped key in freed pages.
            for name in ["steward.db", "steward.db-wal"] {
                let path = app.data_dir().join(name);
                let Ok(bytes) = std::fs::read(&path) else { continue };
                let text = String::from_utf8_lossy(&bytes).to_lowercase();
                for s in SECRETS {
                    assert!(!text.contains(&s.to_lowercase()), "{name} contains {s}");
                }
                assert!(
                    !bytes
                        .windows(sealed.len().min(48))
                        .any(|w| w == &sealed[..sealed.len().min(48)]),
                    "{name} still holds the sealed fields"
                );
            }
        }
        Backend::Postgres => {
            let client = app.pg_client().await;
            for t in tables {
                let n: i64 = client
                    .query_one(&format!("SELECT count(*) FROM {t} WHERE subject_id = $1"), &[&uuid])
                    .await
                    .unwrap()
                    .get(0);
                assert_eq!(n, 0, "{t} still holds rows of the erased subject");
            }
            // PostgreSQL never held any data key, so its dead tuples, WAL
            // and backups hold none either: they live in the vault.
            let keys: i64 = client
                .query_one("SELECT count(*) FROM subject_keys", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(keys, 0, "PostgreSQL holds data keys");
        }
    }
    // The wrapped data key is gone from every file that held it (no copy in
    // freed pages or the WAL); the bystander's is still there.
    assert_eq!(app.raw_wrapped_key(&contact), None);
    let mut bystander_seen = false;
    for path in app.key_files() {
        let Ok(bytes) = std::fs::read(&path) else { continue };
        assert!(
            !bytes.windows(wrapped.len()).any(|w| w == wrapped.as_slice()),
            "{} still holds the erased subject's wrapped key",
            path.display()
        );
        bystander_seen |= bytes
            .windows(bystander_key.len())
            .any(|w| w == bystander_key.as_slice());
    }
    assert!(bystander_seen, "the search finds a key that is there");

    // A minimal proof of erasure: the person is not silently re-created.
    let r = app
        .post(
            "/api/v1/contacts",
            "support",
            json!({"given_name": "W", "email": "Erase.Me.ZX@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    assert_problem(&r, 409);
    assert!(
        !r.text.contains("erase.me.zx"),
        "the refusal does not echo the address: {}",
        r.text
    );
    // Nor brought back by giving another contact the erased address: not
    // with PATCH, not through a rectification request.
    let other = app
        .create_contact(
            "support",
            json!({"given_name": "Other", "email": "other.zx@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let other_path = format!("/api/v1/contacts/{other}");
    let r = app
        .call(
            reqwest::Method::PATCH,
            &other_path,
            Some("support"),
            None,
            Some(json!({"email": "ERASE.ME.ZX@example.org"})),
        )
        .await;
    assert_problem(&r, 409);
    assert!(!r.text.to_lowercase().contains("erase.me.zx"), "{}", r.text);
    let rect = created(
        app,
        json!({"kind": "rectification", "regime": "gdpr", "subject": {"contact_id": other},
               "details": {"changes": {"email": "erase.me.zx@example.org"}}}),
    )
    .await;
    step(app, &rect, "verify", json!({})).await;
    let r = step(app, &rect, "fulfill", json!({})).await;
    assert_problem(&r, 409);
    assert!(!r.text.to_lowercase().contains("erase.me.zx"), "{}", r.text);
    assert_eq!(
        app.get(&other_path, "support").await.body["email"],
        "other.zx@example.org",
        "the refused writes changed nothing"
    );
    // Nor through the public consent endpoint: the same answer as for
    // anyone, but nothing is recorded and no mail goes to the erased person.
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/public/consents",
            None,
            None,
            Some(json!({"email": "erase.me.zx@example.org", "purpose": "marketing_email", "granted": true})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["status"], "pending_confirmation");
    assert_eq!(app.mailed_consent_code("erase.me.zx@example.org").await, None);
    // Other changes to that contact, and keeping its own address, still work.
    let r = app
        .call(
            reqwest::Method::PATCH,
            &other_path,
            Some("support"),
            None,
            Some(json!({"email": "other.zx@example.org", "given_name": "Otto"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // The audit trail keeps the (pseudonymous) history and still verifies.
    let actions = audit_actions(app, &contact).await;
    for a in [
        "contact.create",
        "dsr.erasure.received",
        "dsr.verify",
        "subject.erase",
        "dsr.fulfill",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    let audit = app
        .get(&format!("/api/v1/audit?subject_id={contact}&limit=200"), "auditor")
        .await;
    for s in SECRETS {
        assert!(!audit.text.to_lowercase().contains(&s.to_lowercase()));
    }
    app.service
        .verify_audit_log()
        .await
        .expect("the audit log verifies after erasure");
    let gone = app.get(&format!("/api/v1/dsr/{access}/export"), "dpo").await;
    assert_eq!(gone.status, StatusCode::OK);
    assert!(
        gone.body["personal_data"].is_null(),
        "nothing of the person is left to export: {}",
        gone.text
    );
    // Completed requests cannot run twice.
    assert_problem(&step(app, &id, "fulfill", json!({})).await, 409);

    // The subject gets a signed certificate of completion, with nothing personal in it.
    let cert = app.get(&format!("/api/v1/dsr/{id}/certificate"), "dpo").await;
    assert_eq!(cert.status, StatusCode::OK, "{}", cert.text);
    assert_eq!(cert.body["request_id"], id.as_str());
    assert_eq!(cert.body["kind"], "erasure");
    assert_eq!(cert.body["status"], "completed");
    assert_eq!(cert.body["on_time"], true);
    for s in SECRETS {
        assert!(!cert.text.to_lowercase().contains(&s.to_lowercase()));
    }
    let jws = cert
        .headers
        .get("steward-certificate-jws")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let jwks = app
        .call(reqwest::Method::GET, "/.well-known/jwks.json", None, None, None)
        .await;
    let payload = steward_crypto::jws::verify_with_jwk(&jws, &jwks.body["keys"][0]).expect("the certificate verifies");
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), cert.body);
    let mut forged = jws.clone();
    forged.insert(jws.find('.').unwrap() + 3, 'A');
    assert!(steward_crypto::jws::verify_with_jwk(&forged, &jwks.body["keys"][0]).is_err());
    // An unfinished request has no certificate yet.
    let open = created(
        app,
        json!({"kind": "access", "regime": "gdpr", "subject": {"email": "someone@example.org"}}),
    )
    .await;
    assert_problem(&app.get(&format!("/api/v1/dsr/{open}/certificate"), "dpo").await, 409);
}

async fn rectification_restriction_objection_and_opt_out(app: &TestApp) {
    let contact = app
        .create_contact(
            "sales",
            json!({"given_name": "Rex", "email": "rex@example.org", "phone": "+1 415 555 0100", "purposes": ["sales", "customer_service"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{contact}");

    // Rectification goes through the normal validation.
    let bad = created(
        app,
        json!({"kind": "rectification", "regime": "gdpr", "subject": {"contact_id": contact},
                                  "details": {"changes": {"phone": "not a number"}}}),
    )
    .await;
    step(app, &bad, "verify", json!({})).await;
    assert_problem(&step(app, &bad, "fulfill", json!({})).await, 422);
    assert_eq!(
        app.get(&format!("/api/v1/dsr/{bad}"), "dpo").await.body["status"],
        "in_progress",
        "a failed fulfilment changes nothing"
    );
    let id = created(
        app,
        json!({"kind": "rectification", "regime": "gdpr", "subject": {"email": "rex@example.org"},
                                 "details": {"changes": {"phone": "+1 415 555 0199"}}}),
    )
    .await;
    let done = carry_out(app, &id).await;
    assert_eq!(done["outcome"], "rectified: phone");
    assert_eq!(app.get(&path, "support").await.body["phone"], "+14155550199");

    // Objection: no longer used for the legitimate-interest purpose (sales),
    // still for the contract (customer service).
    assert_eq!(app.get(&path, "sales").await.status, StatusCode::OK);
    let id = created(
        app,
        json!({"kind": "objection", "regime": "gdpr", "subject": {"contact_id": contact}}),
    )
    .await;
    let done = carry_out(app, &id).await;
    assert!(done["outcome"].as_str().unwrap().contains("sales"), "{done}");
    assert_problem(&app.get(&path, "sales").await, 403);
    assert_eq!(app.get(&path, "support").await.status, StatusCode::OK);

    // Opt-out of sale and sharing: recorded as a withdrawn sale_sharing consent.
    let id = created(
        app,
        json!({"kind": "opt_out_of_sale", "regime": "ccpa", "subject": {"contact_id": contact}}),
    )
    .await;
    carry_out(app, &id).await;
    let consents = app.get(&format!("{path}/consents"), "dpo").await;
    assert_eq!(
        consents.body["current"]["sale_sharing"]["status"], "withdrawn",
        "{}",
        consents.text
    );
    assert_problem(&app.get(&path, "sales").await, 403); // the objection outlives a later consent change

    // Restriction: only the privacy officer may use the data from now on.
    let id = created(
        app,
        json!({"kind": "restriction", "regime": "gdpr", "subject": {"contact_id": contact}}),
    )
    .await;
    carry_out(app, &id).await;
    assert_problem(&app.get(&path, "support").await, 403);
    assert_eq!(app.get(&path, "dpo").await.status, StatusCode::OK);

    let actions = audit_actions(app, &contact).await;
    for a in ["contact.update", "subject.object", "dsr.fulfill"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
    assert!(app.service.verify_audit_log().await.is_ok());
}

async fn legal_hold_blocks_erasure_until_released(app: &TestApp) {
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Hal", "email": "hal@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let holds = format!("/api/v1/contacts/{contact}/legal-holds");
    assert_problem(&app.post(&holds, "support", json!({"reason": "litigation"})).await, 403);
    assert!(error_fields(&app.post(&holds, "dpo", json!({"reason": ""})).await).contains(&"reason".to_string()));
    assert_problem(
        &app.post(
            "/api/v1/contacts/00000000-0000-7000-8000-000000000000/legal-holds",
            "dpo",
            json!({"reason": "x"}),
        )
        .await,
        404,
    );
    let r = app
        .post(&holds, "dpo", json!({"reason": "pending litigation, case 2026-17"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["active"], true);
    let hold = r.body["id"].as_str().unwrap().to_string();

    let id = created(
        app,
        json!({"kind": "erasure", "regime": "gdpr", "subject": {"contact_id": contact}}),
    )
    .await;
    step(app, &id, "verify", json!({})).await;
    let blocked = step(app, &id, "fulfill", json!({})).await;
    assert_problem(&blocked, 409);
    assert!(
        blocked.text.contains("legal hold") && blocked.text.contains("case 2026-17"),
        "{}",
        blocked.text
    );
    assert!(
        !note_stored_in_clear(app, "case 2026-17").await,
        "a hold's reason is sealed at rest"
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{contact}"), "support").await.status,
        StatusCode::OK,
        "nothing was erased"
    );
    assert_eq!(
        app.get(&format!("/api/v1/dsr/{id}"), "dpo").await.body["status"],
        "in_progress"
    );
    let del = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{contact}"),
            Some("support"),
            None,
            None,
        )
        .await;
    assert!(
        matches!(del.status.as_u16(), 403 | 409),
        "deletion is blocked too: {}",
        del.text
    );
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{contact}"), "support").await.status,
        StatusCode::OK
    );

    // Released, the hold stays on record and erasure goes ahead.
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("{holds}/{hold}"),
            Some("dpo"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["active"], false);
    assert_problem(
        &app.call(
            reqwest::Method::DELETE,
            &format!("{holds}/{hold}"),
            Some("dpo"),
            None,
            None,
        )
        .await,
        409,
    );
    let list = app.get(&holds, "dpo").await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    carry_out_after_verify(app, &id).await;
    assert_problem(&app.get(&format!("/api/v1/contacts/{contact}"), "dpo").await, 404);
    let actions = audit_actions(app, &contact).await;
    for a in ["legal_hold.place", "legal_hold.release", "subject.erase"] {
        assert!(actions.iter().any(|x| x == a), "{a} audited: {actions:?}");
    }
}

async fn carry_out_after_verify(app: &TestApp, id: &str) {
    let r = step(app, id, "fulfill", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "completed");
}

async fn public(app: &TestApp, path: &str, body: Value) -> Resp {
    app.call(reqwest::Method::POST, path, None, None, Some(body)).await
}

async fn public_intake_verified_by_emailed_code(app: &TestApp) {
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Pia", "email": "pia.public@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let known = public(
        app,
        "/api/v1/public/dsr",
        json!({"kind": "access", "regime": "gdpr", "email": "Pia.Public@example.org"}),
    )
    .await;
    assert_eq!(known.status, StatusCode::ACCEPTED, "{}", known.text);
    let unknown = public(
        app,
        "/api/v1/public/dsr",
        json!({"kind": "erasure", "regime": "ccpa", "email": "nobody.public@example.org"}),
    )
    .await;
    assert_eq!(unknown.status, StatusCode::ACCEPTED);
    assert_eq!(
        known.body, unknown.body,
        "the answer does not reveal whether the address is known"
    );
    for (body, field) in [
        (
            json!({"kind": "rectification", "regime": "gdpr", "email": "a@example.org"}),
            "kind",
        ),
        (
            json!({"kind": "access", "regime": "x", "email": "a@example.org"}),
            "regime",
        ),
        (json!({"kind": "access", "regime": "gdpr", "email": "nope"}), "email"),
    ] {
        let r = public(app, "/api/v1/public/dsr", body).await;
        assert_problem(&r, 422);
        assert!(error_fields(&r).contains(&field.to_string()), "{}", r.text);
    }

    // The code goes to the address, sealed in the outbox (never in plaintext at rest).
    let mail = app.service.outbox(true).await.unwrap();
    let to_pia: Vec<_> = mail
        .iter()
        .filter(|m| m.message.to.eq_ignore_ascii_case("pia.public@example.org"))
        .collect();
    assert_eq!(to_pia.len(), 1, "one message to the requester");
    let body = &to_pia[0].message.body;
    let token = body
        .split("\"token\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    assert!(token.len() >= 40);
    assert!(
        !known.text.contains(&token),
        "the code goes to the address, never back to the caller"
    );
    if app.backend == Backend::Sqlite {
        let c = rusqlite::Connection::open(app.data_dir().join("steward.db")).unwrap();
        let mut stmt = c.prepare("SELECT message FROM outbox").unwrap();
        let blobs: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert!(blobs.len() >= 2);
        for b in blobs {
            let text = String::from_utf8_lossy(&b);
            assert!(
                !text.contains("pia.public") && !text.contains(&token),
                "outbox rows are sealed"
            );
        }
    }

    // Listed for the privacy officer as received, not yet verified.
    let list = app.get("/api/v1/dsr?status=open", "dpo").await;
    let req = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["contact_id"] == contact.as_str())
        .cloned()
        .unwrap();
    assert_eq!(req["status"], "received");
    assert!(req["verified_at"].is_null());
    let id = req["id"].as_str().unwrap().to_string();
    assert_problem(&step(app, &id, "fulfill", json!({})).await, 409);

    // A wrong code fails; the right one verifies once.
    assert_problem(
        &public(app, "/api/v1/public/dsr/verify", json!({"token": "not-the-code"})).await,
        404,
    );
    let r = public(app, "/api/v1/public/dsr/verify", json!({"token": token})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["request_id"], id.as_str());
    assert_problem(
        &public(app, "/api/v1/public/dsr/verify", json!({"token": token})).await,
        404,
    );
    let got = app.get(&format!("/api/v1/dsr/{id}"), "dpo").await;
    assert_eq!(got.body["status"], "in_progress");
    assert!(got.body["verification_method"].as_str().unwrap().contains("e-mailed"));
    let r = step(app, &id, "fulfill", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v1/dsr/{id}/export"), "dpo").await.body["personal_data"]["contact"]["given_name"],
        "Pia"
    );

    // Marked sent by the relay, the message leaves the unsent queue.
    app.service.mark_sent(to_pia[0].id).await.unwrap();
    assert!(app
        .service
        .outbox(true)
        .await
        .unwrap()
        .iter()
        .all(|m| m.id != to_pia[0].id));
    let actions = audit_actions(app, &contact).await;
    assert!(
        actions.iter().filter(|a| *a == "dsr.verify").count() >= 1
            && actions.iter().any(|a| a == "dsr.access.received"),
        "{actions:?}"
    );

    // The requester who is no contact is told of an extension too (GDPR
    // Art. 12(3)): their address is kept sealed with the request.
    let list = app.get("/api/v1/dsr?status=open", "dpo").await;
    let stranger = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "erasure" && i["regime"] == "ccpa" && i["contact_id"].is_null())
        .cloned()
        .unwrap_or_else(|| panic!("the stranger's request is listed: {}", list.text));
    assert!(!list.text.contains("nobody.public"), "the address is not listed");
    let sid = stranger["id"].as_str().unwrap().to_string();
    let r = step(
        app,
        &sid,
        "extend",
        json!({"reason": "the request covers archived systems"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(!r.text.contains("nobody.public"), "{}", r.text);
    let mail = app.service.outbox(true).await.unwrap();
    let notice = mail
        .iter()
        .find(|m| m.kind == "dsr.extension" && m.message.to == "nobody.public@example.org")
        .unwrap_or_else(|| panic!("an extension notice goes to the stranger"));
    assert!(notice.message.body.contains("archived systems"));
    assert!(notice.message.body.contains(&sid));
    if app.backend == Backend::Sqlite {
        let c = rusqlite::Connection::open(app.data_dir().join("steward.db")).unwrap();
        let mut stmt = c.prepare("SELECT details FROM dsr WHERE details IS NOT NULL").unwrap();
        let blobs: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        assert!(!blobs.is_empty());
        for b in blobs {
            assert!(
                !String::from_utf8_lossy(&b).contains("nobody.public"),
                "the address is sealed"
            );
        }
    }
}

/// Whether `needle` is stored in the clear: in the SQLite database file or
/// its WAL, or in PostgreSQL's staff-note columns.
async fn note_stored_in_clear(app: &TestApp, needle: &str) -> bool {
    match app.backend {
        Backend::Sqlite => ["steward.db", "steward.db-wal"].iter().any(|name| {
            std::fs::read(app.data_dir().join(name))
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
        }),
        Backend::Postgres => {
            let client = app.pg_client().await;
            let pattern = format!("%{needle}%");
            let n: i64 = client
                .query_one(
                    "SELECT (SELECT count(*) FROM dsr WHERE extension_reason LIKE $1 OR outcome LIKE $1 \
                     OR verification_method LIKE $1) + (SELECT count(*) FROM legal_holds WHERE reason LIKE $1)",
                    &[&pattern],
                )
                .await
                .unwrap()
                .get(0);
            n > 0
        }
    }
}

async fn subject_rows(app: &TestApp, table: &str, subject: uuid::Uuid) -> i64 {
    match app.backend {
        Backend::Sqlite => rusqlite::Connection::open(app.data_dir().join("steward.db"))
            .unwrap()
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE subject_id = ?1"),
                [subject.as_bytes()],
                |r| r.get(0),
            )
            .unwrap(),
        Backend::Postgres => app
            .pg_client()
            .await
            .query_one(
                &format!("SELECT count(*) FROM {table} WHERE subject_id = $1"),
                &[&subject],
            )
            .await
            .unwrap()
            .get(0),
    }
}

/// A purpose under which the law obliges keeping records (tax law keeps
/// invoices for ten years): an erasure is narrowed to it, not refused.
const INVOICING: &str = r#"
[purposes.invoicing]
description = "Issuing invoices and keeping them as tax law requires"
lawful_basis = "legal_obligation"
collection = true
recipients = ["accounting staff", "tax authority"]
retention_days = 3650
[purposes.invoicing.needs]
contact = ["given_name", "family_name", "street", "city", "postal_code", "country"]
"#;

async fn erasure_is_narrowed_by_a_legal_obligation(app: &TestApp) {
    let contact = app
        .create_contact(
            "sales",
            json!({"given_name": "Ottilie", "family_name": "Narrowby", "email": "ottilie.narrow@example.org",
                   "phone": "+442079460123", "street": "1 Ledger Row", "city": "Leeds", "country": "GB",
                   "notes": "Prefers-Sealwax-Calls", "purposes": ["sales", "invoicing"]}),
        )
        .await;
    let uuid: uuid::Uuid = contact.parse().unwrap();
    let r = app
        .post(
            &format!("/api/v1/contacts/{contact}/interactions"),
            "sales",
            json!({"kind": "call", "summary": "Sealwax call"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let access = created(
        app,
        json!({"kind": "access", "regime": "gdpr", "subject": {"contact_id": contact}}),
    )
    .await;
    carry_out(app, &access).await;
    let sealed = app.raw_fields(&contact).await;

    let id = created(
        app,
        json!({"kind": "erasure", "regime": "gdpr", "subject": {"email": "ottilie.narrow@example.org"}}),
    )
    .await;
    let done = carry_out(app, &id).await;
    let outcome = done["outcome"].as_str().unwrap();
    assert!(
        outcome.contains("narrowed") && outcome.contains("invoicing until"),
        "{outcome}"
    );
    for kept in ["given_name", "family_name", "street", "city", "country"] {
        assert!(outcome.contains(kept), "{kept} named as kept: {outcome}");
    }
    assert!(!outcome.contains("email"), "{outcome}");

    // What the obligation needs stays, readable for compliance only.
    let r = app.get(&format!("/api/v1/contacts/{contact}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["given_name"], "Ottilie");
    assert_eq!(r.body["street"], "1 Ledger Row");
    for gone in ["email", "phone", "notes"] {
        assert!(
            r.body.get(gone).is_none_or(Value::is_null),
            "{gone} was deleted: {}",
            r.text
        );
    }
    assert_eq!(r.body["purposes"], json!(["invoicing"]));
    let r = app.get(&format!("/api/v1/contacts/{contact}"), "sales").await;
    assert!(r.status.is_client_error(), "restricted for sales: {}", r.text);
    let r = app
        .get("/api/v1/contacts?email=ottilie.narrow@example.org", "dpo")
        .await;
    assert_eq!(r.body["items"].as_array().map(Vec::len), Some(0), "{}", r.text);
    assert_eq!(subject_rows(app, "interactions", uuid).await, 0);
    assert_eq!(subject_rows(app, "export_bundles", uuid).await, 0);
    assert!(
        app.raw_wrapped_key(&contact).is_some(),
        "the key stays: what is kept stays readable"
    );

    // Not erased: no proof of erasure, so the person may be created again.
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "O", "email": "ottilie.narrow@example.org", "purposes": ["sales"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let actions = audit_actions(app, &contact).await;
    assert!(actions.iter().any(|a| a == "subject.erase.narrowed"), "{actions:?}");

    // On SQLite the old ciphertext of the deleted fields is in no page of
    // the database or its WAL.
    if app.backend == Backend::Sqlite {
        for name in ["steward.db", "steward.db-wal"] {
            let Ok(bytes) = std::fs::read(app.data_dir().join(name)) else {
                continue;
            };
            assert!(
                !bytes.windows(48).any(|w| w == &sealed[..48]),
                "{name} still holds the old sealed fields"
            );
        }
    }
    app.service.verify_audit_log().await.expect("the audit log verifies");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_erasure_on_sqlite() {
    let app = crate::helpers::spawn_app_with_inventory(Backend::Sqlite, Some(INVOICING))
        .await
        .expect("sqlite");
    erasure_is_narrowed_by_a_legal_obligation(&app).await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn narrowed_erasure_on_postgres() {
    let Some(app) = crate::helpers::spawn_app_with_inventory(Backend::Postgres, Some(INVOICING)).await else {
        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
        return;
    };
    erasure_is_narrowed_by_a_legal_obligation(&app).await;
    app.stop().await;
}
