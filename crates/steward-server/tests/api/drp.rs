//! The Data Rights Protocol 1.0 over HTTP, as an authorised agent speaks
//! it: requests signed with a fresh Ed25519 key in libsodium's combined
//! mode (signature ‖ JSON, base64, `text/plain`), the agent registered by
//! the privacy officer, pair-wise tokens, each supported action mapped to
//! a CCPA request with its deadline, status through the lifecycle, revoke,
//! and every refusal the protocol asks for.

use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use reqwest::{Method, StatusCode};
use ring::signature::{Ed25519KeyPair, KeyPair as _};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, Backend, Resp, TestApp};

crate::stories!(
    agents_exercise_each_kind_through_the_lifecycle,
    revoke_and_denial,
    refusals_follow_the_protocol,
);

const BUSINESS: &str = "STEWARD_TEST_BUSINESS";

/// An authorised agent: its directory id and its signing key.
struct Agent {
    id: String,
    key: Ed25519KeyPair,
}

impl Agent {
    fn new(id: &str) -> Self {
        let mut seed = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut seed).unwrap();
        Self {
            id: id.into(),
            key: Ed25519KeyPair::from_seed_unchecked(&seed).unwrap(),
        }
    }

    fn verify_key(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.key.public_key().as_ref())
    }

    /// libsodium `crypto_sign` (combined mode), base64: the wire format.
    fn sign(&self, message: &Value) -> String {
        let json = serde_json::to_vec(message).unwrap();
        let mut signed = self.key.sign(&json).as_ref().to_vec();
        signed.extend_from_slice(&json);
        base64::engine::general_purpose::STANDARD.encode(signed)
    }

    /// The §2.01 envelope (agent, business, a ten-minute window, version)
    /// with `extra` claims merged in.
    fn message(&self, extra: Value) -> Value {
        let now = Utc::now();
        let mut m = json!({
            "agent-id": self.id,
            "business-id": BUSINESS,
            "issued-at": (now - Duration::seconds(1)).to_rfc3339(),
            "expires-at": (now + Duration::minutes(10)).to_rfc3339(),
            "drp.version": "1.0",
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        m
    }
}

async fn drp(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<String>) -> Resp {
    let mut req = app.client.request(method, app.url(path));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("content-type", "text/plain").body(b);
    }
    TestApp::read(req.send().await.unwrap()).await
}

/// A protocol error (§3.06): `code` as a string, `message`, `fatal`.
fn assert_drp_error(r: &Resp, status: u16, fatal: bool) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json"),
        "{}",
        r.text
    );
    assert_eq!(r.body["code"], status.to_string(), "{}", r.text);
    assert!(r.body["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", r.text);
    assert_eq!(r.body["fatal"], fatal, "{}", r.text);
}

async fn enable(app: &TestApp) {
    let r = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"drp_business_id": BUSINESS})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

async fn register(app: &TestApp, agent: &Agent) {
    let r = app
        .post(
            "/api/v1/drp/agents",
            "dpo",
            json!({"id": agent.id, "name": format!("{} app", agent.id), "verify_key": agent.verify_key()}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
}

/// Pair-wise key setup (§2.05): the agent's token.
async fn pair(app: &TestApp, agent: &Agent) -> String {
    let body = agent.sign(&agent.message(json!({})));
    let r = drp(app, Method::POST, &format!("/v1/agent/{}", agent.id), None, Some(body)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["agent-id"], agent.id.as_str());
    r.body["token"].as_str().unwrap().to_string()
}

async fn exercise(app: &TestApp, agent: &Agent, token: &str, claims: Value) -> Resp {
    let body = agent.sign(&agent.message(claims));
    drp(app, Method::POST, "/v1/data-rights-request", Some(token), Some(body)).await
}

async fn exercised(app: &TestApp, agent: &Agent, token: &str, claims: Value) -> Value {
    let r = exercise(app, agent, token, claims).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn status(app: &TestApp, token: &str, id: &str) -> Resp {
    drp(
        app,
        Method::GET,
        &format!("/v1/data-rights-request/{id}"),
        Some(token),
        None,
    )
    .await
}

async fn revoke(app: &TestApp, agent: &Agent, token: &str, id: &str, reason: &str) -> Resp {
    let body = agent.sign(&agent.message(json!({"reason": reason})));
    drp(
        app,
        Method::DELETE,
        &format!("/v1/data-rights-request/{id}"),
        Some(token),
        Some(body),
    )
    .await
}

async fn dsr(app: &TestApp, id: &str) -> Value {
    let r = app.get(&format!("/api/v1/dsr/{id}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.body
}

async fn dpo_step(app: &TestApp, id: &str, action: &str, body: Value) -> Resp {
    app.post(&format!("/api/v1/dsr/{id}/{action}"), "dpo", body).await
}

fn ts(v: &Value) -> DateTime<Utc> {
    v.as_str().unwrap().parse().unwrap()
}

/// The DSR a DRP request created: its kind, CCPA, and the CCPA deadline
/// (45 days from receipt, by the deadline code), which the status reports
/// as `expected_by`.
async fn assert_ccpa_request(app: &TestApp, status: &Value, kind: &str, contact: Option<&str>) {
    let id = status["request_id"].as_str().unwrap();
    let d = dsr(app, id).await;
    assert_eq!(d["kind"], kind);
    assert_eq!(d["regime"], "ccpa");
    assert_eq!(d["status"], "received");
    assert_eq!(d["contact_id"].as_str(), contact);
    let received = ts(&d["received_at"]);
    assert!((Utc::now() - received).num_seconds().abs() < 60);
    let due = ts(&d["due_at"]);
    assert_eq!(due - received, Duration::days(45));
    assert_eq!(
        due,
        steward_domain::deadlines::due_at(steward_domain::deadlines::Regime::Ccpa, received.fixed_offset(), 0)
    );
    assert_eq!(ts(&status["expected_by"]), due);
    assert_eq!(ts(&status["received_at"]), received);
}

async fn audit_text(app: &TestApp) -> (Vec<String>, String) {
    let r = app.get("/api/v1/audit?limit=200", "auditor").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let actions = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entry"]["action"].as_str().unwrap().to_string())
        .collect();
    (actions, r.text)
}

async fn agents_exercise_each_kind_through_the_lifecycle(app: &TestApp) {
    // Off until the business has its DRP id.
    let r = drp(app, Method::GET, "/.well-known/data-rights.json", None, None).await;
    assert_drp_error(&r, 404, true);
    enable(app).await;
    let r = drp(app, Method::GET, "/.well-known/data-rights.json", None, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["version"], "1.0");
    assert_eq!(r.body["id"], BUSINESS);
    assert_eq!(
        r.body["supported_actions"],
        json!([
            "access",
            "access:categories",
            "access:specific",
            "deletion",
            "sale:opt_out"
        ])
    );
    assert_eq!(r.body["supported_verifications"], json!(["email"]));
    assert_eq!(r.body["api_base"], format!("http://{}", app.addr));

    // The privacy officer registers the agent; other roles may not.
    let agent = Agent::new("CR_TEST_AGENT");
    let r = app
        .post(
            "/api/v1/drp/agents",
            "sales",
            json!({"id": agent.id, "name": "x", "verify_key": agent.verify_key()}),
        )
        .await;
    assert_problem(&r, 403);
    let r = app
        .post(
            "/api/v1/drp/agents",
            "dpo",
            json!({"id": "bad id", "name": "x", "verify_key": "c2hvcnQ="}),
        )
        .await;
    assert_problem(&r, 422);
    register(app, &agent).await;
    let r = app.get("/api/v1/drp/agents", "dpo").await;
    assert_eq!(r.body["items"][0]["id"], agent.id.as_str(), "{}", r.text);
    assert_eq!(r.body["items"][0]["paired"], false);

    let token = pair(app, &agent).await;
    let r = drp(app, Method::GET, &format!("/v1/agent/{}", agent.id), Some(&token), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body, json!({}));
    let r = drp(app, Method::GET, "/v1/agent/SOMEONE_ELSE", Some(&token), None).await;
    assert_drp_error(&r, 403, true);
    assert_eq!(
        app.get("/api/v1/drp/agents", "dpo").await.body["items"][0]["paired"],
        true
    );

    let ana = app
        .create_contact(
            "support",
            json!({"given_name": "Ana", "email": "ana@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let ben = app
        .create_contact(
            "support",
            json!({"given_name": "Ben", "email": "ben@example.org", "purposes": ["customer_service"]}),
        )
        .await;
    let cy = app
        .create_contact(
            "support",
            json!({"given_name": "Cy", "email": "cy@example.org", "purposes": ["customer_service"]}),
        )
        .await;

    // Access, by the agent's reference, with the identity attested.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "access", "regime": "ccpa", "agent-request-id": "ref-access-1",
               "name": "Ana Example", "email": "ANA@example.org", "email_verified": true,
               "status_callback": "https://agent.example/cb"}),
    )
    .await;
    assert_eq!(s["status"], "in_progress", "{s}");
    assert_eq!(s["agent_request_id"], "ref-access-1");
    assert!(
        s["processing_details"].as_str().unwrap().contains("being verified"),
        "{s}"
    );
    assert_ccpa_request(app, &s, "access", Some(&ana)).await;
    let access = s["request_id"].as_str().unwrap().to_string();
    let r = app.get(&format!("/api/v1/drp/requests/{access}"), "dpo").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["agent_id"], agent.id.as_str());
    assert_eq!(r.body["exercise"], "access");
    assert_eq!(r.body["agent_request_id"], "ref-access-1");
    assert_eq!(r.body["attested"], json!(["email_verified"]));
    assert_problem(&app.get(&format!("/api/v1/drp/requests/{access}"), "sales").await, 403);

    // Polled through the lifecycle the privacy officer drives.
    let r = status(app, &token, &access).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "in_progress");
    assert_eq!(r.body["agent_request_id"], "ref-access-1");
    let r = dpo_step(
        app,
        &access,
        "verify",
        json!({"method": "agent attested e-mail control"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = status(app, &token, &access).await;
    assert_eq!(r.body["status"], "in_progress");
    assert!(
        r.body["processing_details"]
            .as_str()
            .unwrap()
            .starts_with("identity verified"),
        "{}",
        r.text
    );
    let r = dpo_step(app, &access, "extend", json!({"reason": "many records to compile"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = status(app, &token, &access).await;
    assert_eq!(ts(&r.body["expected_by"]), ts(&dsr(app, &access).await["due_at"]));
    assert!(
        r.body["processing_details"]
            .as_str()
            .unwrap()
            .contains("many records to compile"),
        "{}",
        r.text
    );
    let r = dpo_step(app, &access, "fulfill", json!({})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = status(app, &token, &access).await;
    assert_eq!(r.body["status"], "fulfilled", "{}", r.text);
    assert!(r.body.get("expected_by").is_none(), "{}", r.text);
    assert!(
        r.body["processing_details"].as_str().unwrap().contains("download"),
        "{}",
        r.text
    );

    // The other access actions are access requests too.
    for action in ["access:categories", "access:specific"] {
        let s = exercised(
            app,
            &agent,
            &token,
            json!({"exercise": action, "email": "ana@example.org"}),
        )
        .await;
        assert_ccpa_request(app, &s, "access", Some(&ana)).await;
    }

    // Deletion: an erasure, carried out.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "deletion", "regime": "ccpa", "email": "ben@example.org"}),
    )
    .await;
    assert_ccpa_request(app, &s, "erasure", Some(&ben)).await;
    let deletion = s["request_id"].as_str().unwrap().to_string();
    for step in ["verify", "fulfill"] {
        let r = dpo_step(app, &deletion, step, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = status(app, &token, &deletion).await;
    assert_eq!(r.body["status"], "fulfilled", "{}", r.text);
    assert!(
        r.body["processing_details"].as_str().unwrap().contains("deleted"),
        "{}",
        r.text
    );
    assert_problem(&app.get(&format!("/api/v1/contacts/{ben}"), "support").await, 404);

    // Opt-out of sale, voluntary (no regime): handled as CCPA.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "sale:opt_out", "email": "cy@example.org"}),
    )
    .await;
    assert_ccpa_request(app, &s, "opt_out_of_sale", Some(&cy)).await;
    let opt_out = s["request_id"].as_str().unwrap().to_string();
    for step in ["verify", "fulfill"] {
        let r = dpo_step(app, &opt_out, step, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = status(app, &token, &opt_out).await;
    assert_eq!(r.body["status"], "fulfilled", "{}", r.text);
    assert!(
        r.body["processing_details"].as_str().unwrap().contains("opted out"),
        "{}",
        r.text
    );

    // Someone Steward holds nothing about.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "access", "email": "nobody@example.org"}),
    )
    .await;
    assert_ccpa_request(app, &s, "access", None).await;
    let nobody = s["request_id"].as_str().unwrap().to_string();
    for step in ["verify", "fulfill"] {
        let r = dpo_step(app, &nobody, step, json!({})).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }
    let r = status(app, &token, &nobody).await;
    assert_eq!(r.body["status"], "fulfilled");
    assert!(r.body["processing_details"]
        .as_str()
        .unwrap()
        .contains("no personal information"));

    // Audited by ids and claim names, never the consumer's values.
    let (actions, text) = audit_text(app).await;
    for a in [
        "drp.agent.add",
        "drp.agent.pair",
        "drp.exercise",
        "dsr.access.received",
        "drp.status",
    ] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
    for secret in [
        "ana@example.org",
        "ANA@example.org",
        "Ana Example",
        "ref-access-1",
        &token,
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    // The agent's reference is sealed at rest.
    let stored = match app.backend {
        Backend::Sqlite => {
            let c = rusqlite::Connection::open(app.data_dir().join("steward.db")).unwrap();
            c.query_row(
                "SELECT agent_request_id FROM drp_requests WHERE dsr_id = ?1",
                [access.parse::<uuid::Uuid>().unwrap().as_bytes()],
                |r| r.get::<_, String>(0),
            )
            .unwrap()
        }
        Backend::Postgres => app
            .pg_client()
            .await
            .query_one(
                "SELECT agent_request_id FROM drp_requests WHERE dsr_id = $1",
                &[&access.parse::<uuid::Uuid>().unwrap()],
            )
            .await
            .unwrap()
            .get(0),
    };
    assert!(!stored.contains("ref-access-1"), "{stored}");
}

async fn revoke_and_denial(app: &TestApp) {
    enable(app).await;
    let agent = Agent::new("REVOKE_AGENT");
    register(app, &agent).await;
    let token = pair(app, &agent).await;
    app.create_contact(
        "support",
        json!({"given_name": "Dee", "email": "dee@example.org", "purposes": ["customer_service"]}),
    )
    .await;

    // The consumer changes their mind: the open request is withdrawn.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "deletion", "email": "dee@example.org"}),
    )
    .await;
    let id = s["request_id"].as_str().unwrap().to_string();
    let r = revoke(app, &agent, &token, &id, "I don't want my account deleted").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["status"], "revoked", "{}", r.text);
    assert_eq!(r.body["request_id"], id.as_str());
    let d = dsr(app, &id).await;
    assert_eq!(d["status"], "withdrawn");
    assert!(d["completed_at"].is_string());
    assert_eq!(status(app, &token, &id).await.body["status"], "revoked");
    // Closed: the privacy officer can no longer carry it out, nor revoke it twice.
    assert_problem(&dpo_step(app, &id, "verify", json!({})).await, 409);
    let r = revoke(app, &agent, &token, &id, "again").await;
    assert_drp_error(&r, 409, true);
    // The contact is untouched.
    let r = app.get("/api/v1/contacts?email=dee@example.org", "support").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    // The spelling of §2.01's example is accepted; a fulfilled request cannot be revoked.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "sale:opt-out", "email": "dee@example.org"}),
    )
    .await;
    let sale = s["request_id"].as_str().unwrap().to_string();
    assert_eq!(dsr(app, &sale).await["kind"], "opt_out_of_sale");
    for step in ["verify", "fulfill"] {
        assert_eq!(dpo_step(app, &sale, step, json!({})).await.status, StatusCode::OK);
    }
    assert_drp_error(&revoke(app, &agent, &token, &sale, "late").await, 409, true);

    // A refusal is `denied`, with the privacy officer's stated reason.
    let s = exercised(
        app,
        &agent,
        &token,
        json!({"exercise": "access", "email": "dee@example.org"}),
    )
    .await;
    let refused = s["request_id"].as_str().unwrap().to_string();
    let r = dpo_step(
        app,
        &refused,
        "refuse",
        json!({"reason": "manifestly unfounded: fourth request this month"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let r = status(app, &token, &refused).await;
    assert_eq!(r.body["status"], "denied", "{}", r.text);
    assert_eq!(r.body["reason"], "other");
    assert!(r.body["processing_details"]
        .as_str()
        .unwrap()
        .contains("fourth request"));

    let (actions, _) = audit_text(app).await;
    for a in ["drp.revoke", "dsr.withdraw"] {
        assert!(actions.iter().any(|x| x == a), "{a} in {actions:?}");
    }
}

async fn count_dsr(app: &TestApp) -> usize {
    let r = app.get("/api/v1/dsr?status=all", "dpo").await;
    r.body["items"].as_array().unwrap().len()
}

async fn refusals_follow_the_protocol(app: &TestApp) {
    enable(app).await;
    let agent = Agent::new("GOOD_AGENT");
    let other = Agent::new("OTHER_AGENT");
    register(app, &agent).await;
    register(app, &other).await;
    let token = pair(app, &agent).await;
    let other_token = pair(app, &other).await;
    let ok = json!({"exercise": "access", "email": "eve@example.org"});

    // Pairing: an unregistered agent, a key that is not the agent's, a
    // URL that names another agent: 403 with no body (§2.05.1).
    let stranger = Agent::new("UNKNOWN_AGENT");
    for (path, body) in [
        ("/v1/agent/UNKNOWN_AGENT", stranger.sign(&stranger.message(json!({})))),
        ("/v1/agent/GOOD_AGENT", stranger.sign(&agent.message(json!({})))),
        ("/v1/agent/OTHER_AGENT", agent.sign(&agent.message(json!({})))),
        ("/v1/agent/GOOD_AGENT", "not base64 at all!".to_string()),
    ] {
        let r = drp(app, Method::POST, path, None, Some(body)).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.text);
        assert!(r.text.is_empty(), "{}", r.text);
    }
    // A pairing message is accepted once.
    let body = agent.sign(&agent.message(json!({})));
    assert_eq!(
        drp(app, Method::POST, "/v1/agent/GOOD_AGENT", None, Some(body.clone()))
            .await
            .status,
        StatusCode::OK
    );
    let r = drp(app, Method::POST, "/v1/agent/GOOD_AGENT", None, Some(body)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // That pairing replaced the first token.
    assert_drp_error(&exercise(app, &agent, &token, ok.clone()).await, 403, true);
    let token = pair(app, &agent).await;

    let before = count_dsr(app).await;
    let send = |body: String, token: Option<String>| async move {
        drp(
            app,
            Method::POST,
            "/v1/data-rights-request",
            token.as_deref(),
            Some(body),
        )
        .await
    };
    let tok = || Some(token.clone());

    // No token, an unknown token.
    assert_drp_error(&send(agent.sign(&agent.message(ok.clone())), None).await, 401, true);
    assert_drp_error(
        &send(agent.sign(&agent.message(ok.clone())), Some("forged-token".into())).await,
        403,
        true,
    );
    // Bad signature: another key, a tampered message, not base64.
    assert_drp_error(&send(stranger.sign(&agent.message(ok.clone())), tok()).await, 403, true);
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(agent.sign(&agent.message(ok.clone())))
        .unwrap();
    let last = raw.len() - 3;
    raw[last] ^= 0x20;
    let tampered = base64::engine::general_purpose::STANDARD.encode(raw);
    assert_drp_error(&send(tampered, tok()).await, 403, true);
    assert_drp_error(&send("%%%".into(), tok()).await, 403, true);
    // One agent's token with a message claiming another agent (signed by either).
    assert_drp_error(&send(other.sign(&other.message(ok.clone())), tok()).await, 403, true);
    let mut claims_other = agent.message(ok.clone());
    claims_other["agent-id"] = json!("OTHER_AGENT");
    assert_drp_error(&send(agent.sign(&claims_other), tok()).await, 403, true);
    // Wrong business.
    let mut m = agent.message(ok.clone());
    m["business-id"] = json!("ANOTHER_BUSINESS");
    assert_drp_error(&send(agent.sign(&m), tok()).await, 400, true);
    // Expired, issued in the future, a window over a day, no timestamps.
    let now = Utc::now();
    let mut m = agent.message(ok.clone());
    m["issued-at"] = json!((now - Duration::minutes(20)).to_rfc3339());
    m["expires-at"] = json!((now - Duration::minutes(10)).to_rfc3339());
    let r = send(agent.sign(&m), tok()).await;
    assert_drp_error(&r, 400, true);
    assert!(r.body["message"].as_str().unwrap().contains("expired"), "{}", r.text);
    let mut m = agent.message(ok.clone());
    m["issued-at"] = json!((now + Duration::minutes(5)).to_rfc3339());
    m["expires-at"] = json!((now + Duration::minutes(15)).to_rfc3339());
    assert_drp_error(&send(agent.sign(&m), tok()).await, 400, true);
    let mut m = agent.message(ok.clone());
    m["expires-at"] = json!((now + Duration::days(3)).to_rfc3339());
    assert_drp_error(&send(agent.sign(&m), tok()).await, 400, true);
    let mut m = agent.message(ok.clone());
    m.as_object_mut().unwrap().remove("expires-at");
    assert_drp_error(&send(agent.sign(&m), tok()).await, 400, true);
    // Unsupported actions, regimes, and a request Steward cannot match.
    for claims in [
        json!({"exercise": "sale:opt_in", "email": "eve@example.org"}),
        json!({"exercise": "rectification", "email": "eve@example.org"}),
        json!({"exercise": "access", "regime": "gdpr", "email": "eve@example.org"}),
        json!({"exercise": "access", "phone_number": "+14155550100"}),
        json!({"exercise": "access", "email": "not-an-address"}),
        json!({"email": "eve@example.org"}),
    ] {
        let r = exercise(app, &agent, &token, claims.clone()).await;
        assert_drp_error(&r, 400, true);
        for value in ["not-an-address", "+14155550100", "eve@example.org"] {
            assert!(!r.text.contains(value), "{value} echoed: {}", r.text);
        }
    }
    let r = exercise(
        app,
        &agent,
        &token,
        json!({"exercise": "sale:opt_in", "email": "eve@example.org"}),
    )
    .await;
    assert!(
        r.body["message"]
            .as_str()
            .unwrap()
            .contains("unsupported rights action"),
        "{}",
        r.text
    );
    let mut m = agent.message(ok.clone());
    m["drp.version"] = json!("0.5");
    assert_drp_error(&send(agent.sign(&m), tok()).await, 400, true);
    assert_eq!(count_dsr(app).await, before, "no refused message created a request");

    // Replay: the same signed message is accepted once.
    let body = agent.sign(&agent.message(ok.clone()));
    let first = send(body.clone(), tok()).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text);
    let r = send(body, tok()).await;
    assert_drp_error(&r, 409, true);
    assert!(r.body["message"].as_str().unwrap().contains("replay"), "{}", r.text);
    assert_eq!(count_dsr(app).await, before + 1);
    let id = first.body["request_id"].as_str().unwrap().to_string();
    // A revoke is signed and accepted once too.
    let mut m = agent.message(json!({"reason": "changed my mind"}));
    m["business-id"] = json!("ANOTHER_BUSINESS");
    let r = drp(
        app,
        Method::DELETE,
        &format!("/v1/data-rights-request/{id}"),
        Some(&token),
        Some(agent.sign(&m)),
    )
    .await;
    assert_drp_error(&r, 400, true);
    let r = drp(
        app,
        Method::DELETE,
        &format!("/v1/data-rights-request/{id}"),
        Some(&token),
        Some(stranger.sign(&agent.message(json!({})))),
    )
    .await;
    assert_drp_error(&r, 403, true);
    assert_eq!(dsr(app, &id).await["status"], "received");

    // Status: only the managing agent; unknown ids are 404.
    assert_eq!(status(app, &token, &id).await.status, StatusCode::OK);
    assert_drp_error(&status(app, &other_token, &id).await, 403, true);
    assert_drp_error(&revoke(app, &other, &other_token, &id, "not mine").await, 403, true);
    assert_drp_error(&status(app, &token, &uuid::Uuid::now_v7().to_string()).await, 404, true);
    assert_drp_error(&status(app, &token, "not-a-uuid").await, 404, true);

    // A removed agent's token stops working at once.
    let r = app
        .call(Method::DELETE, "/api/v1/drp/agents/GOOD_AGENT", Some("dpo"), None, None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    assert_drp_error(&status(app, &token, &id).await, 403, true);
    assert_drp_error(&exercise(app, &agent, &token, ok).await, 403, true);
    let r = app
        .call(Method::DELETE, "/api/v1/drp/agents/GOOD_AGENT", Some("dpo"), None, None)
        .await;
    assert_problem(&r, 404);

    // Turned off again, the protocol endpoints are gone.
    let r = app
        .call(
            Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"drp_business_id": ""})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_drp_error(&status(app, &other_token, &id).await, 404, true);
}
