//! Identity and access control over HTTP: second factors, lockout,
//! sessions and tokens, user management, training, restriction, cookies
//! with CSRF — and the table of every endpoint × role × purpose.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use steward_crypto::totp::{self, TotpParams, TotpSecret};

use crate::helpers::{assert_problem, Resp, TestApp};
use steward_service::Service;

crate::stories!(
    second_factor_enrolment_and_sign_in,
    lockout_and_throttling_without_enumeration,
    tokens_sessions_scope_and_expiry,
    user_management_by_admin,
    training_requirement,
    changes_by_another_process_apply_at_once,
    restriction_of_processing,
    cookie_sessions_need_csrf,
    endpoint_role_purpose_table,
    every_documented_endpoint_answers_every_role_as_documented,
);

async fn login(app: &TestApp, username: &str, password: &str, code: Option<&str>) -> Resp {
    let mut body = json!({"username": username, "password": password});
    if let Some(c) = code {
        body["totp"] = json!(c);
    }
    app.call(Method::POST, "/api/v1/auth/login", None, None, Some(body))
        .await
}

async fn with_token(app: &TestApp, method: Method, path: &str, token: &str, body: Option<Value>) -> Resp {
    let mut req = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    TestApp::read(req.send().await.unwrap()).await
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

async fn admin_set(app: &TestApp, settings: Value) {
    let r = app
        .call(Method::PUT, "/api/v1/settings", Some("admin"), None, Some(settings))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn second_factor_enrolment_and_sign_in(app: &TestApp) {
    let r = login(app, "sales-user", "sales-password-long", None).await;
    let pending = r.body["token"].as_str().unwrap().to_string();
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/contacts", &pending, None).await,
        403,
    );
    assert_problem(
        &with_token(app, Method::POST, "/api/v1/tokens", &pending, Some(json!({}))).await,
        403,
    );

    let e = with_token(app, Method::POST, "/api/v1/auth/totp/enroll", &pending, None).await;
    assert_eq!(e.status, StatusCode::OK, "{}", e.text);
    let secret = TotpSecret::from_base32(e.body["secret"].as_str().unwrap()).unwrap();
    let uri = e.body["otpauth_uri"].as_str().unwrap();
    assert!(uri.starts_with("otpauth://totp/Steward:sales-user?secret="), "{uri}");
    assert_problem(
        &with_token(
            app,
            Method::POST,
            "/api/v1/auth/totp/confirm",
            &pending,
            Some(json!({"code": "000000"})),
        )
        .await,
        422,
    );
    let code = totp::totp(&secret, now(), &TotpParams::default());
    let c = with_token(
        app,
        Method::POST,
        "/api/v1/auth/totp/confirm",
        &pending,
        Some(json!({"code": code})),
    )
    .await;
    assert_eq!(c.status, StatusCode::OK, "{}", c.text);
    let recovery: Vec<String> = c.body["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recovery.len(), 10);
    assert_problem(
        &with_token(app, Method::POST, "/api/v1/auth/totp/enroll", &pending, None).await,
        409,
    );

    // Now a sign-in without a valid, unused code is refused.
    assert_problem(&login(app, "sales-user", "sales-password-long", None).await, 401);
    assert_problem(
        &login(app, "sales-user", "sales-password-long", Some("123456")).await,
        401,
    );
    // The code used to confirm cannot be replayed; the next step's code works once.
    let later = totp::totp(&secret, now() + 30, &TotpParams::default());
    let ok = login(app, "sales-user", "sales-password-long", Some(&later)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.body["mfa"], true);
    assert_eq!(ok.body["mfa_enrollment_required"], false);
    assert_problem(
        &login(app, "sales-user", "sales-password-long", Some(&later)).await,
        401,
    );
    let full = ok.body["token"].as_str().unwrap().to_string();
    assert_eq!(
        with_token(app, Method::GET, "/api/v1/contacts", &full, None)
            .await
            .status,
        StatusCode::OK
    );
    // A recovery code works once.
    let r = login(
        app,
        "sales-user",
        "sales-password-long",
        Some(&recovery[0].to_uppercase()),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_problem(
        &login(app, "sales-user", "sales-password-long", Some(&recovery[0])).await,
        401,
    );
    let me = with_token(app, Method::GET, "/api/v1/auth/me", &full, None).await;
    assert_eq!(me.body["recovery_codes_left"], 9);
    assert_eq!(me.body["mfa_enabled"], true);

    // Reset by an administrator: enrol again.
    let user_id = me.body["id"].as_str().unwrap().to_string();
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/users/{user_id}/mfa"),
            Some("admin"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/contacts", &full, None).await,
        401,
    );
    let r = login(app, "sales-user", "sales-password-long", None).await;
    assert_eq!(r.body["mfa_enrollment_required"], true);
}

async fn lockout_and_throttling_without_enumeration(app: &TestApp) {
    for _ in 0..5 {
        assert_problem(&login(app, "support-user", "wrong-password-x", None).await, 401);
        assert_problem(&login(app, "no-such-user", "wrong-password-x", None).await, 401);
    }
    // Locked now: even the right password is refused, and an unknown name looks the same.
    let real = login(app, "support-user", "support-password-long", None).await;
    let phantom = login(app, "no-such-user", "support-password-long", None).await;
    assert_problem(&real, 423);
    assert_problem(&phantom, 423);
    assert_eq!(real.body, phantom.body, "no user enumeration through lockout");
    // The lock releases after its window (moved into the past here).
    app.exec_sql(
        "UPDATE users SET locked_until = 1 WHERE username = 'support-user'",
        "UPDATE users SET locked_until = 1 WHERE username = 'support-user'",
    )
    .await;
    let r = login(app, "support-user", "support-password-long", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // Success resets the count: one more failure does not lock again.
    assert_problem(&login(app, "support-user", "wrong-password-x", None).await, 401);
    assert_eq!(
        login(app, "support-user", "support-password-long", None).await.status,
        StatusCode::OK
    );
    // Per-address throttle: many failures from one address.
    let mut last = StatusCode::OK;
    for i in 0..12 {
        last = login(app, &format!("ghost-{i}"), "wrong-password-x", None).await.status;
    }
    assert_eq!(last, StatusCode::TOO_MANY_REQUESTS);
}

async fn tokens_sessions_scope_and_expiry(app: &TestApp) {
    admin_set(app, json!({"require_mfa": false})).await;
    let session = login(app, "sales-user", "sales-password-long", None).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        with_token(app, Method::GET, "/api/v1/contacts", &session, None)
            .await
            .status,
        StatusCode::OK
    );
    // A purpose-scoped API token.
    let r = with_token(
        app,
        Method::POST,
        "/api/v1/tokens",
        &session,
        Some(json!({"name": "crm-sync", "expires_in_days": 30, "purpose": "sales"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let scoped = r.body["token"].as_str().unwrap().to_string();
    let scoped_id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["purpose"], "sales");
    assert_problem(
        &with_token(
            app,
            Method::POST,
            "/api/v1/tokens",
            &session,
            Some(json!({"purpose": "compliance"})),
        )
        .await,
        422,
    );
    assert_eq!(
        with_token(app, Method::GET, "/api/v1/contacts", &scoped, None)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .bearer_auth(&scoped)
        .header("Steward-Purpose", "analytics")
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 403);
    let tokens = with_token(app, Method::GET, "/api/v1/tokens", &session, None).await;
    let listed = tokens.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == json!(scoped_id))
        .unwrap()
        .clone();
    assert!(listed["last_used_at"].is_string(), "last use is recorded: {listed}");
    assert!(
        listed.get("token").is_none() && !tokens.text.contains(&scoped),
        "secrets are never listed"
    );
    // Revocation takes effect at once.
    assert_eq!(
        with_token(
            app,
            Method::DELETE,
            &format!("/api/v1/tokens/{scoped_id}"),
            &session,
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/contacts", &scoped, None).await,
        401,
    );
    // Sessions: listed, idle expiry, logout.
    let sessions = with_token(app, Method::GET, "/api/v1/auth/sessions", &session, None).await;
    assert!(!sessions.body["items"].as_array().unwrap().is_empty());
    let other = login(app, "sales-user", "sales-password-long", None).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    app.exec_sql(
        "UPDATE tokens SET last_used_at = 1 WHERE kind = 'session'",
        "UPDATE tokens SET last_used_at = 1 WHERE kind = 'session'",
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await; // past the token cache
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/contacts", &other, None).await,
        401,
    );
    let fresh = login(app, "sales-user", "sales-password-long", None).await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        with_token(app, Method::POST, "/api/v1/auth/logout", &fresh, None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/contacts", &fresh, None).await,
        401,
    );
}

async fn user_management_by_admin(app: &TestApp) {
    for role in ["sales", "dpo", "auditor", "support", "marketing"] {
        assert_problem(&app.get("/api/v1/users", role).await, 403);
    }
    let r = app.get("/api/v1/users", "admin").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 6);
    assert!(!r.text.contains("argon2"), "no password hashes");
    let r = app
        .post(
            "/api/v1/users",
            "admin",
            json!({"username": "newbie", "role": "support", "password": "a-long-password-1"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_problem(
        &app.post(
            "/api/v1/users",
            "admin",
            json!({"username": "newbie", "role": "support", "password": "a-long-password-1"}),
        )
        .await,
        409,
    );
    assert_problem(
        &app.post(
            "/api/v1/users",
            "admin",
            json!({"username": "x", "role": "wizard", "password": "a-long-password-1"}),
        )
        .await,
        422,
    );
    assert_problem(
        &app.post(
            "/api/v1/users",
            "admin",
            json!({"username": "y", "role": "sales", "password": "short"}),
        )
        .await,
        422,
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some("admin"),
            None,
            Some(json!({"role": "sales"})),
        )
        .await;
    assert_eq!(r.body["role"], "sales");
    // Disabling revokes access at once.
    let token = app
        .service
        .create_api_token("newbie", None, None)
        .await
        .unwrap()
        .to_string();
    assert_eq!(
        with_token(app, Method::GET, "/api/v1/auth/me", &token, None)
            .await
            .status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some("admin"),
            None,
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(r.body["disabled"], true);
    assert_problem(
        &with_token(app, Method::GET, "/api/v1/auth/me", &token, None).await,
        401,
    );
    assert_problem(&login(app, "newbie", "a-long-password-1", None).await, 401);
    app.call(
        Method::PATCH,
        &format!("/api/v1/users/{id}"),
        Some("admin"),
        None,
        Some(json!({"disabled": false})),
    )
    .await;
    // Password reset.
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/password"),
            Some("admin"),
            None,
            Some(json!({"password": "another-long-pass"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_problem(&login(app, "newbie", "a-long-password-1", None).await, 401);
    assert_eq!(
        login(app, "newbie", "another-long-pass", None).await.status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/users/{id}/revoke-tokens"),
            Some("admin"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_problem(
        &app.call(
            Method::PATCH,
            "/api/v1/users/01890a5d-ac96-774b-bcce-b302099a8057",
            Some("admin"),
            None,
            Some(json!({"disabled": true})),
        )
        .await,
        404,
    );
    // Every administrative act is audited.
    let log = app.get("/api/v1/audit?limit=200", "auditor").await;
    for action in [
        "user.create",
        "user.update",
        "user.reset_password",
        "user.revoke_tokens",
    ] {
        assert!(log.text.contains(action), "{action} is audited");
    }
}

async fn training_requirement(app: &TestApp) {
    admin_set(app, json!({"require_training": true})).await;
    assert_problem(&app.get("/api/v1/contacts", "sales").await, 403);
    // Roles without personal data are not affected.
    assert_eq!(app.get("/api/v1/audit", "auditor").await.status, StatusCode::OK);
    let users = app.get("/api/v1/users", "admin").await;
    let sales = users.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "sales-user")
        .unwrap();
    let id = sales["id"].as_str().unwrap();
    assert_eq!(sales["training_current"], false);
    let r = app
        .post(
            &format!("/api/v1/users/{id}/training"),
            "admin",
            json!({"course": "GDPR basics", "completed_on": "2025-01-10", "expires_on": "2025-12-31"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_problem(&app.get("/api/v1/contacts", "sales").await, 403);
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{id}/training"),
            "admin",
            json!({"course": "x", "completed_on": "soon"}),
        )
        .await,
        422,
    );
    let r = app
        .post(
            &format!("/api/v1/users/{id}/training"),
            "admin",
            json!({"course": "GDPR refresher", "completed_on": "2026-01-10"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(app.get("/api/v1/contacts", "sales").await.status, StatusCode::OK);
    let r = app.get(&format!("/api/v1/users/{id}/training"), "admin").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_problem(
        &app.post(
            &format!("/api/v1/users/{id}/training"),
            "dpo",
            json!({"course": "x", "completed_on": "2026-01-01"}),
        )
        .await,
        403,
    );
}

/// `steward settings set` and `steward user disable` run in another
/// process than the server: what they change applies to the running server
/// at once, not after its caches expire.
async fn changes_by_another_process_apply_at_once(app: &TestApp) {
    let cli = Service::open(&app.config)
        .await
        .expect("a second process opens the same state");
    // Warm the server's caches of the token, the settings and the training state.
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/contacts", "sales").await.status, StatusCode::OK);
    }
    assert_eq!(app.get("/api/v1/contacts", "support").await.status, StatusCode::OK);
    // SQLite: by the time the command returns. PostgreSQL: its
    // notification reaches the server a moment after the commit (well under
    // the caches' lifetime of two seconds).
    let settle = || async {
        if app.backend == crate::helpers::Backend::Postgres {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        }
    };
    cli.set_setting_locally("require_training", "true").await.unwrap();
    settle().await;
    let r = app.get("/api/v1/contacts", "sales").await;
    assert_eq!(
        r.status,
        StatusCode::FORBIDDEN,
        "the server applies the CLI's setting at once: {}",
        r.text
    );
    assert!(r.text.contains("training"), "{}", r.text);
    cli.set_setting_locally("require_training", "false").await.unwrap();
    settle().await;
    assert_eq!(app.get("/api/v1/contacts", "sales").await.status, StatusCode::OK);
    // Disabling a user from the CLI shuts their token out at once.
    assert_eq!(app.get("/api/v1/contacts", "support").await.status, StatusCode::OK);
    let support = cli.user_by_name("support-user").await.unwrap();
    cli.update_user(
        None,
        support.id,
        steward_service::admin::UserChange {
            role: None,
            disabled: Some(true),
        },
    )
    .await
    .unwrap();
    settle().await;
    assert_eq!(
        app.get("/api/v1/contacts", "support").await.status,
        StatusCode::UNAUTHORIZED
    );
    cli.close().await;
}

async fn restriction_of_processing(app: &TestApp) {
    let id = app
        .create_contact(
            "sales",
            json!({"given_name": "Rita", "email": "rita@example.org", "purposes": ["sales", "customer_service"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{id}");
    assert_problem(
        &app.post(&format!("{path}/restriction"), "sales", json!({"restricted": true}))
            .await,
        403,
    );
    let r = app
        .post(&format!("{path}/restriction"), "dpo", json!({"restricted": true}))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for role in ["sales", "support"] {
        assert_problem(&app.get(&path, role).await, 403);
        let list = app.get("/api/v1/contacts", role).await;
        assert!(
            list.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .all(|c| c["id"] != json!(id)),
            "restricted subjects are not listed"
        );
    }
    assert_eq!(
        app.get(&path, "dpo").await.body["given_name"],
        "Rita",
        "still stored, usable for compliance"
    );
    app.post(&format!("{path}/restriction"), "dpo", json!({"restricted": false}))
        .await;
    assert_eq!(app.get(&path, "sales").await.status, StatusCode::OK);
}

async fn cookie_sessions_need_csrf(app: &TestApp) {
    admin_set(app, json!({"require_mfa": false})).await;
    let r = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"username": "sales-user", "password": "sales-password-long", "session": "cookie"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    let session = cookies
        .iter()
        .find(|c| c.starts_with("steward_session="))
        .expect("session cookie");
    for attr in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(session.contains(attr), "{session}");
    }
    let pair = |name: &str| {
        cookies
            .iter()
            .find(|c| c.starts_with(name))
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    };
    let (sess, csrf) = (pair("steward_session="), pair("steward_csrf="));
    let csrf_value = csrf.split_once('=').unwrap().1.to_string();
    let jar = format!("{sess}; {csrf}");
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .header("cookie", &jar)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK, "a cookie authenticates safe requests");
    let body = json!({"given_name": "Cookie"});
    let r = app
        .client
        .post(app.url("/api/v1/contacts"))
        .header("cookie", &jar)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 403);
    let r = app
        .client
        .post(app.url("/api/v1/contacts"))
        .header("cookie", &jar)
        .header("x-csrf-token", "forged")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 403);
    let r = app
        .client
        .post(app.url("/api/v1/contacts"))
        .header("cookie", &jar)
        .header("x-csrf-token", &csrf_value)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
}

/// Every endpoint × every role × its default and a foreign purpose: the
/// expected status, and the fields each permitted read returns.
async fn endpoint_role_purpose_table(app: &TestApp) {
    let org = app
        .post("/api/v1/organizations", "sales", json!({"name": "Table Org"}))
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let contact = app
        .create_contact("sales", json!({"given_name": "Tab", "family_name": "Le", "email": "table@example.org", "phone": "+442079460000", "job_title": "CTO", "street": "1 Way", "country": "GB", "purposes": ["sales", "customer_service"]}))
        .await;
    let deal = app
        .post(
            "/api/v1/deals",
            "sales",
            json!({"title": "T", "contact_id": contact, "organization_id": org}),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = format!("/api/v1/contacts/{contact}");
    // (method, path, body) — bodies valid for the roles that may write.
    let endpoints: Vec<(Method, String, Option<Value>)> = vec![
        (Method::GET, "/api/v1/contacts".into(), None),
        (Method::GET, c.clone(), None),
        (
            Method::POST,
            "/api/v1/contacts".into(),
            Some(json!({"given_name": "New", "purposes": ["sales", "customer_service"]})),
        ),
        (Method::PATCH, c.clone(), Some(json!({"country": "GB"}))),
        (Method::GET, format!("{c}/interactions"), None),
        (
            Method::POST,
            format!("{c}/interactions"),
            Some(json!({"kind": "note", "summary": "table"})),
        ),
        (Method::GET, "/api/v1/organizations".into(), None),
        (Method::GET, format!("/api/v1/organizations/{org}"), None),
        (Method::POST, "/api/v1/organizations".into(), Some(json!({"name": "O"}))),
        (Method::GET, "/api/v1/deals".into(), None),
        (Method::GET, format!("/api/v1/deals/{deal}"), None),
        (Method::POST, "/api/v1/deals".into(), Some(json!({"title": "D"}))),
        (Method::GET, "/api/v1/audit".into(), None),
        (Method::GET, "/api/v1/audit/tree-head".into(), None),
        (Method::GET, "/api/v1/users".into(), None),
        (Method::GET, "/api/v1/settings".into(), None),
        (Method::GET, "/api/v1/auth/me".into(), None),
        (Method::GET, "/api/v1/dsr".into(), None),
        (
            Method::POST,
            "/api/v1/dsr".into(),
            Some(json!({"kind": "access", "regime": "gdpr", "subject": {"contact_id": contact}})),
        ),
        (Method::GET, format!("{c}/legal-holds"), None),
        (Method::GET, format!("{c}/consents"), None),
    ];
    // Expected status per (endpoint index, role) with the role's default purpose.
    let expect = |i: usize, role: &str| -> u16 {
        let crm_write = matches!(role, "sales" | "support");
        match (i, role) {
            (0 | 1 | 3, "sales" | "support" | "dpo") => 200,
            (0, "marketing") => 200, // lists skip subjects without consent
            (2, r) if crm_write || r == "marketing" || r == "dpo" => 201,
            (3 | 1, "marketing") => 403, // consent-based purpose: no consent yet
            (4, "sales" | "support" | "dpo") => 200,
            (5, _) if crm_write => 201,
            (6 | 7, r) if r != "auditor" => 200,
            (8, _) if crm_write => 201,
            (9 | 10, "sales" | "support" | "dpo") => 200,
            (11, "sales") => 201,
            (12 | 13, "dpo" | "auditor") => 200,
            (14 | 15, "admin") => 200,
            (16, _) => 200,
            (17 | 19, "dpo") => 200, // data-subject requests and legal holds: the privacy officer only
            (18, "dpo") => 201,
            (20, "sales" | "support" | "dpo" | "marketing") => 200, // consent state carries no personal data
            _ => 403,
        }
    };
    let roles = ["admin", "dpo", "sales", "support", "marketing", "auditor"];
    for (i, (method, path, body)) in endpoints.iter().enumerate() {
        // No credentials: 401 everywhere.
        let r = app.call(method.clone(), path, None, None, body.clone()).await;
        assert_eq!(r.status.as_u16(), 401, "{method} {path} without a token");
        for role in roles {
            let r = app.call(method.clone(), path, Some(role), None, body.clone()).await;
            assert_eq!(
                r.status.as_u16(),
                expect(i, role),
                "{method} {path} as {role}: {}",
                r.text
            );
            // A purpose the role may not use is refused wherever personal data is touched.
            let foreign = if role == "sales" { "customer_service" } else { "sales" };
            if matches!(i, 0..=5 | 9..=11) {
                let r = app
                    .call(method.clone(), path, Some(role), Some(foreign), body.clone())
                    .await;
                assert_eq!(
                    r.status.as_u16(),
                    403,
                    "{method} {path} as {role} for {foreign}: {}",
                    r.text
                );
            }
        }
    }
    // Field scoping of each permitted contact read.
    let fields = |v: &Value| {
        let mut k: Vec<String> = v
            .as_object()
            .unwrap()
            .keys()
            .filter(|k| !["id", "purposes", "created_at", "updated_at", "version"].contains(&k.as_str()))
            .cloned()
            .collect();
        k.sort();
        k
    };
    assert_eq!(
        fields(&app.get(&c, "sales").await.body),
        ["country", "email", "family_name", "given_name", "job_title", "phone"]
    );
    assert_eq!(
        fields(&app.get(&c, "support").await.body),
        ["country", "email", "family_name", "given_name", "phone", "street"]
    );
    assert_eq!(
        fields(&app.get(&c, "dpo").await.body),
        [
            "country",
            "email",
            "family_name",
            "given_name",
            "job_title",
            "phone",
            "street"
        ]
    );
    // Deals: the contact link is visible only to purposes that need it.
    let d = app.get(&format!("/api/v1/deals/{deal}"), "sales").await;
    assert_eq!(d.body["contact_id"], json!(contact));
}

/// Every operation in the OpenAPI document (so every route: the router and
/// the document come from one table), as every role and without
/// credentials: authenticated ones answer 401 without a token, and every
/// answer is one of the operation's documented statuses — never a 5xx.
async fn every_documented_endpoint_answers_every_role_as_documented(app: &TestApp) {
    let doc = app.call(Method::GET, "/api/v1/openapi.json", None, None, None).await;
    assert_eq!(doc.status, StatusCode::OK);
    let contact = app
        .create_contact(
            "support",
            json!({"given_name": "Doc", "email": "doc@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let paths = doc.body["paths"].as_object().unwrap();
    let mut checked = 0;
    for (template, ops) in paths {
        // Signing out or enrolling a second factor would change the test's own credentials.
        if template.starts_with("/api/v1/auth/") && template != "/api/v1/auth/me" {
            continue;
        }
        let path = template
            .replace("/contacts/{id}", &format!("/contacts/{contact}"))
            .replace("{index}", "0")
            .split('/')
            .map(|seg| {
                if seg.starts_with('{') {
                    "01900000-0000-7000-8000-000000000000"
                } else {
                    seg
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for (method, op) in ops.as_object().unwrap() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let documented: Vec<u16> = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .map(|k| k.parse().unwrap())
                .collect();
            let auth = !op["security"].as_array().unwrap().is_empty();
            let body = matches!(method, Method::POST | Method::PUT | Method::PATCH).then(|| json!({}));
            if auth {
                let r = app.call(method.clone(), &path, None, None, body.clone()).await;
                assert_eq!(r.status.as_u16(), 401, "{method} {path} without a token: {}", r.text);
            }
            for role in ["admin", "dpo", "sales", "support", "marketing", "auditor"] {
                let r = app.call(method.clone(), &path, Some(role), None, body.clone()).await;
                let status = r.status.as_u16();
                assert!(status < 500, "{method} {path} as {role}: {status} {}", r.text);
                assert!(
                    documented.contains(&status) || status == 429,
                    "{method} {template} as {role} answered {status}, documented {documented:?}: {}",
                    r.text
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 300, "{checked} calls");
}
