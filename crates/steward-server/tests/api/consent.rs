//! Consent over HTTP: records and purpose checks, receipts (Kantara v1.1,
//! JWS), Global Privacy Control, double opt-in, notice renewal, Art. 30.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, TestApp};

crate::stories!(
    grant_withdraw_regrant_changes_access,
    receipts_validate_and_verify,
    global_privacy_control,
    double_opt_in,
    public_grant_waits_for_the_emailed_confirmation,
    notice_renewal,
    art30_record_lists_the_inventory,
);

async fn consent(app: &TestApp, role: &str, id: &str, body: Value) -> crate::helpers::Resp {
    app.post(&format!("/api/v1/contacts/{id}/consents"), role, body).await
}

async fn grant_withdraw_regrant_changes_access(app: &TestApp) {
    let id = app
        .create_contact(
            "marketing",
            json!({"given_name": "Mia", "email": "mia@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{id}");
    assert_problem(&app.get(&path, "marketing").await, 403);
    let r = consent(
        app,
        "marketing",
        &id,
        json!({"purpose": "marketing_email", "granted": true, "source": "phone", "evidence": "said yes on the phone"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["status"], "granted");
    assert!(
        r.body["expires_at"].is_string(),
        "consent_valid_days from the inventory sets an expiry"
    );
    assert_eq!(app.get(&path, "marketing").await.body["email"], "mia@example.org");
    consent(
        app,
        "marketing",
        &id,
        json!({"purpose": "marketing_email", "granted": false, "source": "unsubscribe link"}),
    )
    .await;
    assert_problem(&app.get(&path, "marketing").await, 403);
    let list = app.get("/api/v1/contacts", "marketing").await;
    assert!(
        list.body["items"].as_array().unwrap().is_empty(),
        "withdrawn subjects drop out of lists"
    );
    consent(
        app,
        "marketing",
        &id,
        json!({"purpose": "marketing_email", "granted": true}),
    )
    .await;
    assert_eq!(app.get(&path, "marketing").await.status, StatusCode::OK);

    let h = app.get(&format!("{path}/consents"), "dpo").await;
    assert_eq!(h.status, StatusCode::OK, "{}", h.text);
    let items = h.body["items"].as_array().unwrap();
    assert_eq!(
        items.iter().map(|i| i["status"].as_str().unwrap()).collect::<Vec<_>>(),
        ["granted", "withdrawn", "granted"]
    );
    assert!(items.iter().all(|i| i["id"].is_string()));
    assert_eq!(h.body["current"]["marketing_email"]["status"], "granted");
    assert_eq!(
        items[0]["evidence"]["note"], "said yes on the phone",
        "compliance sees the evidence"
    );
    let h = app.get(&format!("{path}/consents"), "marketing").await;
    assert!(h.body["items"][0].get("evidence").is_none(), "other purposes do not");

    // Only consent-based purposes, and only purposes the data is collected for.
    assert_problem(
        &consent(app, "marketing", &id, json!({"purpose": "sales", "granted": true})).await,
        422,
    );
    assert_problem(
        &consent(app, "marketing", &id, json!({"purpose": "analytics", "granted": true})).await,
        422,
    );
    assert_problem(
        &consent(
            app,
            "marketing",
            &id,
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "nope"}),
        )
        .await,
        422,
    );
    assert_problem(
        &consent(
            app,
            "admin",
            &id,
            json!({"purpose": "marketing_email", "granted": true}),
        )
        .await,
        403,
    );
}

async fn receipts_validate_and_verify(app: &TestApp) {
    let id = app
        .create_contact(
            "marketing",
            json!({"given_name": "Rex", "email": "rex@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let r = consent(
        app,
        "marketing",
        &id,
        json!({"purpose": "marketing_email", "granted": true}),
    )
    .await;
    let cid = r.body["id"].as_str().unwrap().to_string();
    let r = app
        .get(&format!("/api/v1/contacts/{id}/consents/{cid}/receipt"), "dpo")
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let receipt = r.body.clone();
    assert_eq!(receipt["consentReceiptID"], json!(cid));
    assert_eq!(receipt["version"], "KI-CR-v1.1.0");
    assert!(
        !r.text.contains("rex@example.org") && !r.text.contains("Rex"),
        "the principal is pseudonymous"
    );

    // Validates against the Kantara Consent Receipt v1.1 schema.
    let schema_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../standards/kantara-consent-receipt-v1.1.schema.json"
    );
    let schema: Value =
        serde_json::from_str(&std::fs::read_to_string(schema_path).expect("the schema in standards/")).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.add_resource("receipt.json", schema).unwrap();
    let index = compiler.compile("receipt.json", &mut schemas).unwrap();
    schemas
        .validate(&receipt, index)
        .expect("the receipt validates against the Kantara schema");

    // Signed: the JWS in the header verifies with the published key and carries the same receipt.
    let jws = r
        .headers
        .get("steward-receipt-jws")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let keys = app
        .call(Method::GET, "/api/v1/receipts/jwks.json", None, None, None)
        .await;
    let jwk = keys.body["keys"][0].clone();
    let payload = steward_crypto::jws::verify_with_jwk(&jws, &jwk).expect("the receipt signature verifies");
    assert_eq!(serde_json::from_slice::<Value>(&payload).unwrap(), receipt);
    let mut forged = jws.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert!(steward_crypto::jws::verify_with_jwk(&forged, &jwk).is_err());
    let compact = app
        .client
        .get(app.url(&format!("/api/v1/contacts/{id}/consents/{cid}/receipt.jws")))
        .bearer_auth(&app.tokens["dpo"])
        .send()
        .await
        .unwrap();
    assert_eq!(compact.headers()["content-type"], "application/jose");
    assert!(steward_crypto::jws::verify_with_jwk(&compact.text().await.unwrap(), &jwk).is_ok());
    assert_problem(
        &app.get(
            &format!("/api/v1/contacts/{id}/consents/01890a5d-ac96-774b-bcce-b302099a8057/receipt"),
            "dpo",
        )
        .await,
        404,
    );
}

async fn global_privacy_control(app: &TestApp) {
    let r = app.call(Method::GET, "/.well-known/gpc.json", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["gpc"], true);
    assert!(r.body["lastUpdate"].is_string());

    let send = |email: &'static str, gpc: Option<&'static str>| {
        let mut req = app
            .client
            .post(app.url("/api/v1/public/consents"))
            .json(&json!({"email": email, "purpose": "marketing_email", "granted": true}));
        if let Some(v) = gpc {
            req = req.header("Sec-GPC", v);
        }
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    let r = send("gina@example.org", Some("1")).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["gpc"], true);
    for (email, header) in [
        ("nora@example.org", None),
        ("tina@example.org", Some("true")),
        ("zed@example.org", Some("0")),
    ] {
        let r = send(email, header).await;
        assert_eq!(r.body["gpc"], false, "only the exact value 1 counts ({header:?})");
    }
    // Each grant waits for its double opt-in; GPC's opt-out goes with it.
    for email in ["gina@example.org", "nora@example.org"] {
        let code = app.mailed_consent_code(email).await.expect("a code is mailed");
        let r = app.confirm_consent(&code).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let find = |email: &str| {
        let path = format!("/api/v1/contacts?email={email}");
        async move {
            app.get(&path, "dpo").await.body["items"][0]["id"]
                .as_str()
                .unwrap()
                .to_string()
        }
    };
    let gina = find("gina@example.org").await;
    let h = app.get(&format!("/api/v1/contacts/{gina}/consents"), "dpo").await;
    assert_eq!(h.body["current"]["marketing_email"]["status"], "granted");
    assert_eq!(
        h.body["current"]["sale_sharing"]["status"], "withdrawn",
        "GPC recorded as an opt-out of sale and sharing"
    );
    assert_eq!(h.body["items"][1]["source"], "global privacy control");
    assert!(
        h.body["items"][0]["evidence"]["ip"].is_string(),
        "evidence records the address"
    );
    let nora = find("nora@example.org").await;
    let h = app.get(&format!("/api/v1/contacts/{nora}/consents"), "dpo").await;
    assert!(h.body["current"].get("sale_sharing").is_none());
    // The consent made the contact usable for marketing.
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{gina}"), "marketing").await.status,
        StatusCode::OK
    );
    // Unknown withdrawals answer alike; bad input is a problem.
    let r = app
        .client
        .post(app.url("/api/v1/public/consents"))
        .json(&json!({"email": "never@example.org", "purpose": "marketing_email", "granted": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = app
        .client
        .post(app.url("/api/v1/public/consents"))
        .json(&json!({"email": "bad", "purpose": "marketing_email", "granted": true}))
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 422);
    let r = app
        .client
        .post(app.url("/api/v1/public/consents"))
        .json(&json!({"email": "x@example.org", "purpose": "sales", "granted": true}))
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 422);
}

async fn double_opt_in(app: &TestApp) {
    let id = app
        .create_contact(
            "marketing",
            json!({"email": "dora@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let r = consent(
        app,
        "marketing",
        &id,
        json!({"purpose": "marketing_email", "granted": true, "double_opt_in": true}),
    )
    .await;
    assert_eq!(r.body["status"], "pending", "{}", r.text);
    assert!(
        r.body.get("confirmation_token").is_none(),
        "the code goes to the subject's address, not to the caller: {}",
        r.text
    );
    let token = app.mailed_consent_code("dora@example.org").await.expect("mailed");
    assert_problem(&app.get(&format!("/api/v1/contacts/{id}"), "marketing").await, 403);
    let confirm = |t: String| {
        let req = app
            .client
            .post(app.url("/api/v1/public/consents/confirm"))
            .json(&json!({"token": t}));
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    assert_problem(&confirm("not-a-token".into()).await, 404);
    let r = confirm(token.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), "marketing").await.status,
        StatusCode::OK
    );
    assert_problem(&confirm(token).await, 404);
    let h = app.get(&format!("/api/v1/contacts/{id}/consents"), "dpo").await;
    let statuses: Vec<&str> = h.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["pending", "granted"]);
    assert_eq!(h.body["items"][1]["source"], "double opt-in confirmation");
    // A contact without an address cannot be asked to confirm.
    let bare = app
        .create_contact(
            "marketing",
            json!({"given_name": "Nomail", "purposes": ["marketing_email"]}),
        )
        .await;
    let r = consent(
        app,
        "marketing",
        &bare,
        json!({"purpose": "marketing_email", "granted": true, "double_opt_in": true}),
    )
    .await;
    assert_problem(&r, 422);
    // Development tokens (serve --dev-return-tokens) also return the code.
    app.service.set_development_tokens(true);
    let again = app
        .create_contact(
            "marketing",
            json!({"email": "dev@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let r = consent(
        app,
        "marketing",
        &again,
        json!({"purpose": "marketing_email", "granted": true, "double_opt_in": true}),
    )
    .await;
    app.service.set_development_tokens(false);
    let returned = r.body["confirmation_token"]
        .as_str()
        .expect("returned in development")
        .to_string();
    assert_eq!(Some(returned.clone()), app.mailed_consent_code("dev@example.org").await);
    assert_eq!(app.confirm_consent(&returned).await.status, StatusCode::OK);
}

async fn public(app: &TestApp, body: Value) -> crate::helpers::Resp {
    app.call(Method::POST, "/api/v1/public/consents", None, None, Some(body))
        .await
}

/// A consent given through the public endpoint is double opt-in: nothing
/// is granted — for a known or an unknown address — until the person
/// confirms with the code e-mailed to the address; the code works once and
/// expires; the answers reveal nothing; a public withdrawal only narrows.
async fn public_grant_waits_for_the_emailed_confirmation(app: &TestApp) {
    let known = app
        .create_contact(
            "marketing",
            json!({"given_name": "Kim", "email": "kim@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let known_path = format!("/api/v1/contacts/{known}");
    let grant = |email: &str| json!({"email": email, "purpose": "marketing_email", "granted": true});
    let a = public(app, grant("pat@example.org")).await;
    let b = public(app, grant("kim@example.org")).await;
    for r in [&a, &b] {
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        assert_eq!(r.body["status"], "pending_confirmation");
        assert!(r.body.get("confirmation_token").is_none(), "{}", r.text);
    }
    assert_eq!(a.body, b.body, "known and unknown addresses get the same answer");
    // Nothing is granted, and nobody is created, before confirmation.
    assert_problem(&app.get(&known_path, "marketing").await, 403);
    let h = app.get(&format!("{known_path}/consents"), "dpo").await;
    assert!(h.body["current"].get("marketing_email").is_none(), "{}", h.text);
    let pat = app.get("/api/v1/contacts?email=pat@example.org", "dpo").await;
    assert_eq!(pat.body["items"].as_array().unwrap().len(), 0, "{}", pat.text);
    // The codes went to the addresses, sealed in the outbox.
    let pat_code = app.mailed_consent_code("pat@example.org").await.expect("mailed to pat");
    let kim_code = app.mailed_consent_code("kim@example.org").await.expect("mailed to kim");
    assert_ne!(pat_code, kim_code);
    // Wrong codes are refused alike.
    assert_problem(&app.confirm_consent("not-a-code").await, 404);
    // Confirming makes the consent, and for an unknown address the contact.
    let r = app.confirm_consent(&pat_code).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let pat = app.get("/api/v1/contacts?email=pat@example.org", "dpo").await;
    let pat_id = pat.body["items"][0]["id"]
        .as_str()
        .expect("created on confirmation")
        .to_string();
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{pat_id}"), "marketing").await.status,
        StatusCode::OK
    );
    let h = app.get(&format!("/api/v1/contacts/{pat_id}/consents"), "dpo").await;
    let items = h.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", h.text);
    assert_eq!(items[0]["status"], "granted");
    assert_eq!(items[0]["source"], "web form (double opt-in)");
    assert!(items[0]["confirmed_at"].is_string());
    assert!(
        items[0]["evidence"]["note"].as_str().unwrap().contains("one-time code"),
        "the evidence records the confirmation: {}",
        h.text
    );
    // A code works once.
    assert_problem(&app.confirm_consent(&pat_code).await, 404);
    // An expired code does not work.
    app.exec_sql(
        "UPDATE pending_consents SET expires_at = 1",
        "UPDATE pending_consents SET expires_at = 1",
    )
    .await;
    assert_problem(&app.confirm_consent(&kim_code).await, 404);
    assert_problem(&app.get(&known_path, "marketing").await, 403);
    // A fresh request, confirmed, grants for the known contact.
    public(app, grant("kim@example.org")).await;
    let code = app.mailed_consent_code("kim@example.org").await.unwrap();
    assert_ne!(code, kim_code);
    assert_eq!(app.confirm_consent(&code).await.status, StatusCode::OK);
    assert_eq!(app.get(&known_path, "marketing").await.status, StatusCode::OK);
    // A public withdrawal needs no code: it can only narrow processing.
    let r = public(
        app,
        json!({"email": "kim@example.org", "purpose": "marketing_email", "granted": false}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["status"], "accepted");
    assert_problem(&app.get(&known_path, "marketing").await, 403);
    // The confirmation expiry is a setting.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"consent_confirmation_days": 2})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    public(app, grant("lee@example.org")).await;
    let mail = app.service.outbox(true).await.unwrap();
    let last = mail.iter().rev().find(|m| m.message.to == "lee@example.org").unwrap();
    assert!(last.message.body.contains("within 2 days"), "{}", last.message.body);
    // Development tokens return the code to the form too.
    app.service.set_development_tokens(true);
    let r = public(app, grant("dev2@example.org")).await;
    app.service.set_development_tokens(false);
    let code = r.body["confirmation_token"]
        .as_str()
        .expect("returned in development")
        .to_string();
    assert_eq!(app.confirm_consent(&code).await.status, StatusCode::OK);
    // Nothing of the address rests in plaintext in the pending table.
    if app.backend == crate::helpers::Backend::Sqlite {
        let c = rusqlite::Connection::open(app.data_dir().join("steward.db")).unwrap();
        let sealed: Vec<String> = c
            .prepare("SELECT sealed FROM pending_consents")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(!sealed.is_empty());
        assert!(sealed.iter().all(|s| !s.contains("example.org")));
    }
}

async fn notice_renewal(app: &TestApp) {
    let publish = |version: &'static str, material: bool| {
        app.post(
            "/api/v1/notices",
            "dpo",
            json!({"version": version, "text": format!("Privacy notice {version}"), "material": material}),
        )
    };
    assert_eq!(publish("v1", false).await.status, StatusCode::CREATED);
    assert_problem(&publish("v1", false).await, 409);
    assert_problem(
        &app.post("/api/v1/notices", "sales", json!({"version": "v9", "text": "x"}))
            .await,
        403,
    );
    let a = app
        .create_contact(
            "marketing",
            json!({"email": "ann@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let b = app
        .create_contact(
            "marketing",
            json!({"email": "bob@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    for id in [&a, &b] {
        let r = consent(
            app,
            "marketing",
            id,
            json!({"purpose": "marketing_email", "granted": true, "notice_version": "v1"}),
        )
        .await;
        assert!(r.body["notice_hash"].is_string(), "the notice text hash is evidence");
    }
    let renewals = app.get("/api/v1/notices/renewals", "dpo").await;
    assert_eq!(renewals.body["items"], json!([]), "no material change yet");
    publish("v2", true).await;
    consent(
        app,
        "marketing",
        &b,
        json!({"purpose": "marketing_email", "granted": true, "notice_version": "v2"}),
    )
    .await;
    let renewals = app.get("/api/v1/notices/renewals", "dpo").await;
    let items = renewals.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{}", renewals.text);
    assert_eq!(items[0]["contact_id"], json!(a));
    assert_eq!(items[0]["notice_version"], "v1");
    let list = app.call(Method::GET, "/api/v1/notices", None, None, None).await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 2);

    // The campaign: Ann's grant ends 30 days (reconsent_grace_days) after
    // v2 was published unless she renews; until then it stands.
    let v2_published: chrono::DateTime<chrono::Utc> =
        list.body["items"][1]["published_at"].as_str().unwrap().parse().unwrap();
    let deadline = v2_published + chrono::Duration::days(30);
    let renew_by = |v: &Value| -> chrono::DateTime<chrono::Utc> { v.as_str().unwrap().parse().unwrap() };
    assert_eq!(renew_by(&items[0]["renew_by"]), deadline, "{}", renewals.text);
    let h = app.get(&format!("/api/v1/contacts/{a}/consents"), "dpo").await;
    let current = &h.body["current"]["marketing_email"];
    assert_eq!(current["status"], "granted", "{}", h.text);
    assert_eq!(renew_by(&current["renew_by"]), deadline);
    assert_eq!(
        renew_by(&current["expires_at"]),
        deadline,
        "the deadline comes before the grant's own expiry"
    );
    let h = app.get(&format!("/api/v1/contacts/{b}/consents"), "dpo").await;
    assert!(h.body["current"]["marketing_email"]["renew_by"].is_null(), "{}", h.text);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{a}"), "marketing").await.status,
        StatusCode::OK
    );

    // Renewal e-mails, for the privacy officer to send: Ann only.
    assert_problem(
        &app.post("/api/v1/notices/renewals/mail", "marketing", json!({})).await,
        403,
    );
    assert_problem(
        &app.post("/api/v1/notices/renewals/mail", "auditor", json!({})).await,
        403,
    );
    let before = app.service.outbox(false).await.unwrap().len();
    let r = app.post("/api/v1/notices/renewals/mail", "dpo", json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
    assert_eq!(r.body["queued"], 1);
    let mail = app.service.outbox(false).await.unwrap();
    assert_eq!(mail.len(), before + 1);
    let last = mail.last().unwrap();
    assert_eq!(last.message.to, "ann@example.org");
    assert!(
        last.message.body.contains("version v2")
            && last.message.body.contains(&deadline.format("%Y-%m-%d").to_string())
    );

    // With no grace left, the purpose check of every read stops the old
    // grant once a run (or the next consent change) applies it.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"reconsent_grace_days": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let run = app.service.retention_run(chrono::Utc::now(), false, 100).await.unwrap();
    assert_eq!(run.renewals_applied, 1, "{run:?}");
    assert_problem(&app.get(&format!("/api/v1/contacts/{a}"), "marketing").await, 403);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{b}"), "marketing").await.status,
        StatusCode::OK
    );
    let h = app.get(&format!("/api/v1/contacts/{a}/consents"), "dpo").await;
    assert_eq!(h.body["current"]["marketing_email"]["status"], "expired", "{}", h.text);
    assert!(app
        .audit_rows()
        .await
        .iter()
        .any(|r| r.action == "consent.renewal_required"));
    // Renewed under v2, Ann is back and off the list.
    consent(
        app,
        "marketing",
        &a,
        json!({"purpose": "marketing_email", "granted": true, "notice_version": "v2"}),
    )
    .await;
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{a}"), "marketing").await.status,
        StatusCode::OK
    );
    let renewals = app.get("/api/v1/notices/renewals", "dpo").await;
    assert_eq!(renewals.body["items"], json!([]), "{}", renewals.text);
}

async fn art30_record_lists_the_inventory(app: &TestApp) {
    let r = app.get("/api/v1/reports/art30", "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let text = r.text.clone();
    let inv = app.service.inventory();
    for (name, purpose) in &inv.purposes {
        assert!(text.contains(&format!("\"{name}\"")), "purpose {name}");
        for recipient in &purpose.recipients {
            assert!(text.contains(recipient.as_str()), "recipient {recipient}");
        }
        if let Some(days) = purpose.retention_days {
            assert!(text.contains(&days.to_string()), "retention {days}");
        }
        for (rt, fields) in &purpose.needs {
            for f in fields {
                if let Some(spec) = inv.field(rt, f).filter(|s| s.personal) {
                    assert!(
                        text.contains(&format!("\"{}\"", spec.category)),
                        "category {}",
                        spec.category
                    );
                }
            }
        }
    }
    let md = app
        .client
        .get(app.url("/api/v1/reports/art30?format=markdown"))
        .bearer_auth(&app.tokens["auditor"])
        .send()
        .await
        .unwrap();
    assert_eq!(md.status(), StatusCode::OK);
    assert!(md.text().await.unwrap().contains("marketing_email"));
    let html = app
        .client
        .get(app.url("/api/v1/reports/art30?format=html"))
        .bearer_auth(&app.tokens["admin"])
        .send()
        .await
        .unwrap();
    assert!(html.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_problem(&app.get("/api/v1/reports/art30", "sales").await, 403);
    assert_problem(&app.get("/api/v1/reports/art30?format=pdf", "dpo").await, 400);
}
