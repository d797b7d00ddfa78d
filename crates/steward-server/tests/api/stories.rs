//! End-to-end stories over the HTTP API, run on every backend.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{assert_problem, error_fields, TestApp};

crate::stories!(
    health_and_openapi,
    authentication,
    login_sessions,
    contact_lifecycle,
    purpose_scoping,
    roles_and_purposes_refused,
    minimisation,
    bad_input_is_a_problem,
    duplicates_conflict_and_nothing_half_written,
    patch_semantics,
    pagination_and_search,
    interactions,
    organizations_and_deals,
    concurrent_creates,
);

fn ada() -> Value {
    json!({
        "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
        "phone": "+44 20 7946 0958", "job_title": "Analyst", "country": "gb",
        "street": "12 St James's Square", "city": "London", "postal_code": "SW1Y 4JH",
        "notes": "Prefers e-mail", "purposes": ["sales", "customer_service"]
    })
}

async fn health_and_openapi(app: &TestApp) {
    let r = app.call(Method::GET, "/healthz", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(
        r.headers.get("x-request-id").is_some(),
        "every response carries a request id"
    );

    let r = app.call(Method::GET, "/api/v1/openapi.json", None, None, None).await;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().unwrap();
    for (method, path) in [
        ("post", "/api/v1/contacts"),
        ("get", "/api/v1/contacts"),
        ("get", "/api/v1/contacts/{id}"),
        ("patch", "/api/v1/contacts/{id}"),
        ("delete", "/api/v1/contacts/{id}"),
        ("post", "/api/v1/contacts/{id}/interactions"),
        ("get", "/api/v1/contacts/{id}/interactions"),
        ("post", "/api/v1/organizations"),
        ("get", "/api/v1/organizations/{id}"),
        ("post", "/api/v1/deals"),
        ("get", "/api/v1/deals/{id}"),
        ("post", "/api/v1/auth/login"),
        ("get", "/healthz"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is documented"
        );
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "schema {name} is defined"
        );
    }
    // The contact schema comes from the inventory.
    let contact = &doc["components"]["schemas"]["Contact"]["properties"];
    for f in ["given_name", "email", "phone", "birth_date", "notes"] {
        assert!(contact.get(f).is_some(), "{f}");
    }
    // Unknown routes and methods are problems too.
    assert_problem(
        &app.call(Method::GET, "/api/v1/nothing-here", None, None, None).await,
        404,
    );
    assert_problem(
        &app.call(Method::PUT, "/api/v1/contacts", Some("sales"), None, Some(json!({})))
            .await,
        405,
    );
}

async fn authentication(app: &TestApp) {
    let r = app.call(Method::GET, "/api/v1/contacts", None, None, None).await;
    assert_problem(&r, 401);
    assert_eq!(r.headers.get("www-authenticate").unwrap(), "Bearer");
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .bearer_auth("stw_not-a-real-token")
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 401);
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .header("Authorization", "Basic YWxpY2U6eA==")
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 401);
    // Expired tokens are refused: create one that expires in a day and check it works now.
    let t = app
        .service
        .create_api_token("sales-user", Some("short".into()), Some(1))
        .await
        .unwrap();
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .bearer_auth(t.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

async fn login_sessions(app: &TestApp) {
    let r = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            Some(json!({"username": "sales-user", "password": "sales-password-long"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let token = r.body["token"].as_str().unwrap().to_string();
    // A role that reads personal data needs a second factor first (default setting).
    assert_eq!(r.body["mfa_enrollment_required"], true);
    let r = app
        .client
        .get(app.url("/api/v1/contacts"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_problem(&TestApp::read(r).await, 403);
    let r = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    let wrong = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            Some(json!({"username": "sales-user", "password": "nope-nope-nope"})),
        )
        .await;
    let unknown = app
        .call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            None,
            Some(json!({"username": "nobody", "password": "nope-nope-nope"})),
        )
        .await;
    assert_problem(&wrong, 401);
    assert_problem(&unknown, 401);
    assert_eq!(wrong.body, unknown.body, "no user enumeration through messages");
    assert!(!wrong.text.contains("nope"));
}

async fn contact_lifecycle(app: &TestApp) {
    let r = app.post("/api/v1/contacts", "sales", ada()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    assert_eq!(r.body["email"], "ada@example.com");
    assert_eq!(r.body["phone"], "+442079460958", "phones are normalised to E.164");
    assert_eq!(r.body["country"], "GB");
    assert_eq!(
        r.headers.get("location").unwrap().to_str().unwrap(),
        format!("/api/v1/contacts/{id}")
    );

    let r = app.get(&format!("/api/v1/contacts/{id}"), "sales").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["given_name"], "Ada");
    assert_eq!(r.body["purposes"], json!(["sales", "customer_service"]));

    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_problem(&app.get(&format!("/api/v1/contacts/{id}"), "sales").await, 404);
    assert_problem(
        &app.call(
            Method::DELETE,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            None,
            None,
        )
        .await,
        404,
    );
}

async fn purpose_scoping(app: &TestApp) {
    let mut body = ada();
    body["birth_date"] = json!("1815-12-10");
    body["purposes"] = json!(["sales", "customer_service", "analytics"]);
    let id = app.create_contact("sales", body).await;
    let path = format!("/api/v1/contacts/{id}");
    let keys = |v: &Value| {
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
    let sales = app.get(&path, "sales").await;
    assert_eq!(
        keys(&sales.body),
        [
            "country",
            "email",
            "family_name",
            "given_name",
            "job_title",
            "notes",
            "phone"
        ]
    );
    let support = app.get(&path, "support").await;
    assert_eq!(
        keys(&support.body),
        [
            "city",
            "country",
            "email",
            "family_name",
            "given_name",
            "notes",
            "phone",
            "postal_code",
            "street"
        ]
    );
    let dpo = app.get(&path, "dpo").await;
    assert_eq!(
        keys(&dpo.body).len(),
        11,
        "compliance sees every stored field: {}",
        dpo.text
    );
    assert!(
        sales.body.get("street").is_none() && !sales.text.contains("null"),
        "left out, not null"
    );
    // dpo may name its purpose explicitly.
    let r = app
        .call(Method::GET, &path, Some("dpo"), Some("compliance"), None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn roles_and_purposes_refused(app: &TestApp) {
    let id = app
        .create_contact(
            "support",
            json!({"given_name": "Grace", "street": "1 Navy Way", "purposes": ["customer_service"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{id}");
    // Not collected for sales.
    assert_problem(&app.get(&path, "sales").await, 403);
    // A purpose the role may not use.
    assert_problem(
        &app.call(Method::GET, &path, Some("support"), Some("sales"), None).await,
        403,
    );
    assert_problem(
        &app.call(Method::GET, &path, Some("support"), Some("no_such_purpose"), None)
            .await,
        403,
    );
    // No personal data for admin and auditor.
    for role in ["admin", "auditor"] {
        assert_problem(&app.get(&path, role).await, 403);
        assert_problem(&app.get("/api/v1/contacts", role).await, 403);
        assert_problem(
            &app.post(
                "/api/v1/contacts",
                role,
                json!({"given_name": "X", "purposes": ["sales"]}),
            )
            .await,
            403,
        );
    }
    // Consent-based purposes need a current consent, which cannot exist yet.
    let m = app
        .create_contact(
            "marketing",
            json!({"email": "news@example.com", "purposes": ["marketing_email"]}),
        )
        .await;
    assert_problem(&app.get(&format!("/api/v1/contacts/{m}"), "marketing").await, 403);
    // Lists skip subjects the purpose may not be used for.
    let r = app.get("/api/v1/contacts", "sales").await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["items"].as_array().unwrap().iter().all(|c| c["id"] != json!(id)));
    let r = app.get("/api/v1/contacts", "support").await;
    assert!(r.body["items"].as_array().unwrap().iter().any(|c| c["id"] == json!(id)));
    // Denials never leak data.
    let r = app.get(&path, "sales").await;
    assert!(!r.text.contains("Grace") && !r.text.contains("Navy"));
}

async fn minimisation(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "Alan", "street": "Bletchley", "birth_date": "1912-06-23", "purposes": ["sales"]}),
        )
        .await;
    assert_problem(&r, 422);
    let mut fields = error_fields(&r);
    fields.sort();
    assert_eq!(
        fields,
        ["birth_date", "street"],
        "exactly the unneeded fields are named"
    );
    assert!(r.body["detail"].as_str().unwrap().contains("sales"));
    assert!(!r.text.contains("Bletchley"));
    // Adding the purpose that needs the field makes it acceptable.
    app.create_contact(
        "sales",
        json!({"given_name": "Alan", "street": "Bletchley", "purposes": ["sales", "customer_service"]}),
    )
    .await;
    // Purposes must be collection purposes.
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "A", "purposes": ["compliance"]}),
        )
        .await;
    assert_problem(&r, 422);
    assert_eq!(error_fields(&r), ["purposes"]);
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "A", "purposes": ["telepathy"]}),
        )
        .await;
    assert_eq!(error_fields(&r), ["purposes"]);
    let r = app
        .post("/api/v1/contacts", "sales", json!({"given_name": "A", "purposes": []}))
        .await;
    assert_eq!(error_fields(&r), ["purposes"]);
    // Without purposes, the request's purpose is the collection purpose.
    let r = app
        .post("/api/v1/contacts", "sales", json!({"given_name": "Default"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["purposes"], json!(["sales"]));
}

async fn bad_input_is_a_problem(app: &TestApp) {
    let send_raw = |body: &'static str, ctype: &'static str| {
        let req = app
            .client
            .post(app.url("/api/v1/contacts"))
            .bearer_auth(&app.tokens["sales"])
            .header("content-type", ctype)
            .body(body);
        async move { TestApp::read(req.send().await.unwrap()).await }
    };
    assert_problem(&send_raw("{\"given_name\": ", "application/json").await, 400);
    assert_problem(
        &send_raw("given_name=Ada", "application/x-www-form-urlencoded").await,
        415,
    );
    let r = send_raw("[1, 2]", "application/json").await;
    assert_problem(&r, 422);

    let cases = [
        (json!({"given_name": "A", "shoe_size": "44"}), "shoe_size"),
        (json!({"given_name": 42}), "given_name"),
        (json!({"email": "very-secret-value"}), "email"),
        (json!({"phone": "020 7946 0958"}), "phone"),
        (json!({"country": "XX"}), "country"),
        (
            json!({"birth_date": "10/12/1815", "purposes": ["analytics"]}),
            "birth_date",
        ),
        (json!({"organization_id": "not-an-id"}), "organization_id"),
        (
            json!({"organization_id": "01890a5d-ac96-774b-bcce-b302099a8057"}),
            "organization_id",
        ),
        (json!({"given_name": "   "}), "given_name"),
        (json!({"given_name": "x".repeat(201)}), "given_name"),
    ];
    for (body, field) in cases {
        let r = app.post("/api/v1/contacts", "sales", body.clone()).await;
        assert_problem(&r, 422);
        assert_eq!(error_fields(&r), [field], "{body}: {}", r.text);
        assert!(!r.text.contains("very-secret-value"), "problems never echo values");
    }
    // Oversize body.
    let big = format!("{{\"notes\": \"{}\"}}", "x".repeat(2 * 1024 * 1024));
    // (A separate client: the server closes a connection whose body it
    // refused, and may do so before the client has written all of it — a
    // broken pipe on the client's side under load; then try again.)
    let mut attempts = 0;
    let r = loop {
        attempts += 1;
        match reqwest::Client::new()
            .post(app.url("/api/v1/contacts"))
            .bearer_auth(&app.tokens["sales"])
            .header("content-type", "application/json")
            .body(big.clone())
            .send()
            .await
        {
            Ok(r) => break r,
            Err(e) if attempts < 10 && e.is_request() => continue,
            Err(e) => panic!("no answer to an oversize body: {e}"),
        }
    };
    assert_problem(&TestApp::read(r).await, 413);
    // Unknown and malformed ids.
    assert_problem(
        &app.get("/api/v1/contacts/01890a5d-ac96-774b-bcce-b302099a8057", "sales")
            .await,
        404,
    );
    assert_problem(&app.get("/api/v1/contacts/nope", "sales").await, 404);
    assert_problem(&app.get("/api/v1/deals/nope", "sales").await, 404);
    // Bad query strings.
    assert_problem(&app.get("/api/v1/contacts?limit=abc", "sales").await, 400);
    assert_problem(&app.get("/api/v1/contacts?limit=0", "sales").await, 422);
    assert_problem(&app.get("/api/v1/contacts?cursor=xyz", "sales").await, 422);
    assert_problem(&app.get("/api/v1/contacts?email=not-an-email", "sales").await, 422);
    // Nothing was stored by any of this.
    let r = app.get("/api/v1/contacts", "dpo").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "{}", r.text);
}

async fn duplicates_conflict_and_nothing_half_written(app: &TestApp) {
    app.create_contact("sales", json!({"given_name": "One", "email": "dup@example.com"}))
        .await;
    let r = app
        .post(
            "/api/v1/contacts",
            "sales",
            json!({"given_name": "Two", "email": "DUP@Example.COM"}),
        )
        .await;
    assert_problem(&r, 409);
    assert!(r.body["detail"].as_str().unwrap().contains("email"), "{}", r.text);
    assert!(!r.text.contains("dup@"), "the conflict names the field, not the value");
    let r = app.get("/api/v1/contacts?q=two", "sales").await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        0,
        "the refused contact left nothing behind"
    );
    // Taking a used e-mail by PATCH is refused too.
    let id = app
        .create_contact("sales", json!({"given_name": "Three", "email": "three@example.com"}))
        .await;
    let r = app
        .call(
            Method::PATCH,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            None,
            Some(json!({"email": "dup@example.com", "given_name": "Changed"})),
        )
        .await;
    assert_problem(&r, 409);
    let r = app.get(&format!("/api/v1/contacts/{id}"), "sales").await;
    assert_eq!(r.body["given_name"], "Three");
    assert_eq!(r.body["email"], "three@example.com");
}

async fn patch_semantics(app: &TestApp) {
    let id = app.create_contact("sales", ada()).await;
    let path = format!("/api/v1/contacts/{id}");
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some("sales"),
            None,
            Some(json!({"phone": "+1 (415) 555-0100", "notes": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["phone"], "+14155550100");
    assert!(r.body.get("notes").is_none());
    assert_eq!(r.body["version"], 2);
    let r = app.get(&path, "support").await;
    assert_eq!(r.body["street"], "12 St James's Square", "untouched fields stay");
    assert!(r.body.get("notes").is_none());
    // Minimisation on update: a field no purpose needs, and shrinking purposes below stored fields.
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some("sales"),
            None,
            Some(json!({"birth_date": "1815-12-10"})),
        )
        .await;
    assert_problem(&r, 422);
    assert_eq!(error_fields(&r), ["birth_date"]);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some("sales"),
            None,
            Some(json!({"purposes": ["sales"]})),
        )
        .await;
    assert_problem(&r, 422);
    let mut f = error_fields(&r);
    f.sort();
    assert_eq!(f, ["city", "postal_code", "street"]);
    let r = app
        .call(
            Method::PATCH,
            &path,
            Some("sales"),
            None,
            Some(json!({"purposes": ["sales"], "street": null, "city": null, "postal_code": null})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.body["purposes"], json!(["sales"]));
    // Now support's purpose no longer applies.
    assert_problem(&app.get(&path, "support").await, 403);
    assert_problem(
        &app.call(
            Method::PATCH,
            "/api/v1/contacts/01890a5d-ac96-774b-bcce-b302099a8057",
            Some("sales"),
            None,
            Some(json!({"phone": "+14155550100"})),
        )
        .await,
        404,
    );
    assert_problem(
        &app.call(Method::PATCH, &path, Some("sales"), None, Some(json!({"id": "x"})))
            .await,
        422,
    );
}

async fn pagination_and_search(app: &TestApp) {
    let mut ids = Vec::new();
    for (i, (g, f)) in [
        ("Mary", "Jackson"),
        ("Katherine", "Johnson"),
        ("Dorothy", "Vaughan"),
        ("Mary", "Shelley"),
        ("Ada", "Lovelace"),
        ("Grace", "Hopper"),
        ("Annie", "Easley"),
    ]
    .iter()
    .enumerate()
    {
        ids.push(app.create_contact("sales", json!({"given_name": g, "family_name": f, "email": format!("p{i}@example.org"), "phone": format!("+4420794609{i:02}")})).await);
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/contacts?limit=3&cursor={c}"),
            None => "/api/v1/contacts?limit=3".to_string(),
        };
        let r = app.get(&path, "sales").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        pages += 1;
        seen.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["id"].as_str().unwrap().to_string()),
        );
        match r.body["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every contact once, in creation order");
    assert_eq!(pages, 3);

    let r = app.get("/api/v1/contacts?email=P4@EXAMPLE.ORG", "sales").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["family_name"], "Lovelace");
    let r = app.get("/api/v1/contacts?q=mary", "sales").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    let r = app.get("/api/v1/contacts?q=Mary%20Shelley", "sales").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["family_name"], "Shelley");
    let r = app.get("/api/v1/contacts?q=hopp", "sales").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 0, "whole words only");
    let r = app.get("/api/v1/contacts?email=nobody@example.org", "sales").await;
    assert_eq!(r.body["items"], json!([]));
    assert_eq!(r.body["next_cursor"], Value::Null);
}

async fn interactions(app: &TestApp) {
    let id = app
        .create_contact(
            "support",
            json!({"given_name": "Linus", "purposes": ["customer_service"]}),
        )
        .await;
    let path = format!("/api/v1/contacts/{id}/interactions");
    let r = app
        .post(
            &path,
            "support",
            json!({"kind": "call", "summary": "Asked about invoice 42", "occurred_at": "2026-01-31T09:30:00+01:00"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["occurred_at"], "2026-01-31T08:30:00.000000Z");
    let r = app
        .post(&path, "support", json!({"kind": "note", "summary": "Follow up"}))
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let r = app.get(&path, "support").await;
    let items = r.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["summary"], "Asked about invoice 42");
    assert_eq!(items[1]["kind"], "note");

    let r = app
        .post(
            &path,
            "support",
            json!({"kind": "fax", "summary": "x", "occurred_at": "yesterday"}),
        )
        .await;
    assert_problem(&r, 422);
    let mut f = error_fields(&r);
    f.sort();
    assert_eq!(f, ["kind", "occurred_at"]);
    assert_problem(&app.post(&path, "support", json!({"kind": "call"})).await, 422);
    assert_problem(
        &app.post(
            "/api/v1/contacts/01890a5d-ac96-774b-bcce-b302099a8057/interactions",
            "support",
            json!({"kind": "call", "summary": "x"}),
        )
        .await,
        404,
    );
    // Marketing may not record interactions; sales may not see this subject.
    assert_problem(&app.get(&path, "marketing").await, 403);
    assert_problem(&app.get(&path, "sales").await, 403);
    // Deleting the contact deletes its interactions.
    app.call(
        Method::DELETE,
        &format!("/api/v1/contacts/{id}"),
        Some("support"),
        None,
        None,
    )
    .await;
    assert_problem(&app.get(&path, "support").await, 404);
}

async fn organizations_and_deals(app: &TestApp) {
    let r = app
        .post(
            "/api/v1/organizations",
            "sales",
            json!({"name": "Analytical Engines Ltd", "domain": "Engines.example."}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["domain"], "engines.example");
    let org = r.body["id"].as_str().unwrap().to_string();
    let r = app.get(&format!("/api/v1/organizations/{org}"), "admin").await;
    assert_eq!(r.status, StatusCode::OK, "admin may read organisations");
    assert_problem(
        &app.post("/api/v1/organizations", "admin", json!({"name": "X"})).await,
        403,
    );
    assert_problem(
        &app.post("/api/v1/organizations", "sales", json!({"name": ""})).await,
        422,
    );
    assert_problem(
        &app.post(
            "/api/v1/organizations",
            "sales",
            json!({"name": "X", "domain": "nodot"}),
        )
        .await,
        422,
    );
    let r = app.get("/api/v1/organizations", "sales").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);

    let contact = app
        .create_contact("sales", json!({"given_name": "Ada", "organization_id": org}))
        .await;
    let r = app.post("/api/v1/deals", "sales", json!({"title": "Difference engine", "stage": "proposal", "amount": 1200.5, "currency": "gbp", "organization_id": org, "contact_id": contact})).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text);
    assert_eq!(r.body["amount"], json!(1200.5));
    assert_eq!(r.body["currency"], "GBP");
    let deal = r.body["id"].as_str().unwrap().to_string();
    let r = app.get(&format!("/api/v1/deals/{deal}"), "sales").await;
    assert_eq!(r.body["contact_id"], json!(contact));
    assert_eq!(r.body["stage"], "proposal");
    let r = app
        .post(
            "/api/v1/deals",
            "sales",
            json!({"title": "Whole", "amount": "5000", "currency": "EUR"}),
        )
        .await;
    assert_eq!(r.body["amount"], json!(5000));
    assert_eq!(r.body["stage"], "lead");

    for (body, field) in [
        (json!({"title": "x", "stage": "maybe"}), "stage"),
        (json!({"title": "x", "amount": -1, "currency": "EUR"}), "amount"),
        (json!({"title": "x", "amount": 1.234, "currency": "EUR"}), "amount"),
        (json!({"title": "x", "amount": 10, "currency": "EURO"}), "currency"),
        (json!({"title": "x", "amount": 10}), "currency"),
        (
            json!({"title": "x", "organization_id": "01890a5d-ac96-774b-bcce-b302099a8057"}),
            "organization_id",
        ),
        (
            json!({"title": "x", "contact_id": "01890a5d-ac96-774b-bcce-b302099a8057"}),
            "contact_id",
        ),
        (json!({"title": ""}), "title"),
        (json!({"stage": "lead"}), "title"),
    ] {
        let r = app.post("/api/v1/deals", "sales", body.clone()).await;
        assert_problem(&r, 422);
        assert_eq!(error_fields(&r), [field], "{body}: {}", r.text);
    }
    let r = app.get("/api/v1/deals", "sales").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_problem(&app.get("/api/v1/deals", "admin").await, 403);
    // Deleting the contact keeps the deal but unlinks it.
    app.call(
        Method::DELETE,
        &format!("/api/v1/contacts/{contact}"),
        Some("sales"),
        None,
        None,
    )
    .await;
    let r = app.get(&format!("/api/v1/deals/{deal}"), "sales").await;
    assert_eq!(r.body["contact_id"], Value::Null);
}

async fn concurrent_creates(app: &TestApp) {
    let mut tasks = Vec::new();
    for i in 0..40 {
        let client = app.client.clone();
        let url = app.url("/api/v1/contacts");
        let token = app.tokens["sales"].clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(token)
                .json(&json!({"given_name": format!("Person{i}"), "email": format!("c{i}@example.net")}))
                .send()
                .await
                .unwrap();
            (r.status(), r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = Vec::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    for id in ids {
        assert_eq!(
            app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status,
            StatusCode::OK
        );
    }
}
