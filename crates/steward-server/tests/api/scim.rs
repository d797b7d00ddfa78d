//! SCIM 2.0 provisioning (RFC 7643/7644) over HTTP, following the RFC's
//! examples: Users (create, get, filter, paging, patch, replace, delete),
//! Groups as roles, the discovery endpoints, SCIM errors, authentication,
//! and audit entries without personal data.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{Resp, TestApp};

crate::stories!(
    users_lifecycle_as_in_the_rfc,
    listing_filters_and_paging,
    deactivation_ends_sign_in_and_tokens,
    groups_are_roles_and_membership_moves_accounts,
    discovery_endpoints_describe_what_is_supported,
    errors_use_the_scim_format_and_status_codes,
    only_scim_tokens_may_provision,
    audit_entries_and_storage_hold_no_personal_data,
);

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
const PATCH: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

async fn token(app: &TestApp) -> String {
    let (_, t) = app.service.create_scim_token("okta", "support").await.unwrap();
    t.to_string()
}

async fn scim(app: &TestApp, method: Method, path: &str, token: Option<&str>, body: Option<Value>) -> Resp {
    let mut req = app.client.request(method, app.url(&format!("/scim/v2{path}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(b) = body {
        req = req.header("Content-Type", "application/scim+json").body(b.to_string());
    }
    TestApp::read(req.send().await.unwrap()).await
}

fn assert_scim(r: &Resp, status: u16) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text);
    if status != 204 {
        assert_eq!(
            r.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/scim+json"),
            "{}",
            r.text
        );
    }
}

/// Asserts a SCIM error (RFC 7644 §3.12) with `status` and `scim_type`.
fn assert_error(r: &Resp, status: u16, scim_type: Option<&str>) {
    assert_scim(r, status);
    assert_eq!(r.body["schemas"], json!([ERROR]), "{}", r.text);
    assert_eq!(
        r.body["status"],
        json!(status.to_string()),
        "status is a string: {}",
        r.text
    );
    assert_eq!(r.body["scimType"].as_str(), scim_type, "{}", r.text);
    let detail = r.body["detail"].as_str().unwrap_or("");
    assert!(!detail.is_empty(), "{}", r.text);
}

/// RFC 7643 §8.1's minimal user, as Barbara Jensen.
fn bjensen() -> Value {
    json!({
        "schemas": [USER],
        "userName": "bjensen",
        "externalId": "00u-bjensen",
        "name": {"formatted": "Ms. Barbara J Jensen III", "familyName": "Jensen", "givenName": "Barbara"},
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}],
        "active": true
    })
}

async fn create(app: &TestApp, t: &str, body: Value) -> Value {
    let r = scim(app, Method::POST, "/Users", Some(t), Some(body)).await;
    assert_scim(&r, 201);
    r.body
}

fn patch_ops(ops: Value) -> Value {
    json!({"schemas": [PATCH], "Operations": ops})
}

async fn login(app: &TestApp, username: &str, password: &str) -> Resp {
    app.call(
        Method::POST,
        "/api/v1/auth/login",
        None,
        None,
        Some(json!({"username": username, "password": password})),
    )
    .await
}

async fn users_lifecycle_as_in_the_rfc(app: &TestApp) {
    let t = token(app).await;
    // Create (RFC 7644 §3.3).
    let r = scim(app, Method::POST, "/Users", Some(&t), Some(bjensen())).await;
    assert_scim(&r, 201);
    let id = r.body["id"].as_str().unwrap().to_string();
    let location = r
        .headers
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_string();
    assert!(location.ends_with(&format!("/scim/v2/Users/{id}")), "{location}");
    assert_eq!(r.body["schemas"], json!([USER]));
    assert_eq!(r.body["userName"], json!("bjensen"));
    assert_eq!(r.body["externalId"], json!("00u-bjensen"));
    assert_eq!(r.body["name"]["givenName"], json!("Barbara"));
    assert_eq!(r.body["emails"][0]["value"], json!("bjensen@example.com"));
    assert_eq!(r.body["active"], json!(true));
    assert_eq!(
        r.body["groups"][0]["value"],
        json!("support"),
        "the token's default role"
    );
    assert_eq!(r.body["meta"]["resourceType"], json!("User"));
    assert_eq!(r.body["meta"]["location"], json!(location));
    assert!(r.body["meta"]["created"].is_string() && r.body["meta"]["lastModified"].is_string());
    assert!(r.body.get("password").is_none());

    // It is a Steward account with the default role.
    let admin = app.get(&format!("/api/v1/users/{id}"), "admin").await;
    assert_eq!(admin.status, StatusCode::OK, "{}", admin.text);
    assert_eq!(admin.body["username"], json!("bjensen"));
    assert_eq!(admin.body["role"], json!("support"));

    // Get (§3.4.1).
    let got = scim(app, Method::GET, &format!("/Users/{id}"), Some(&t), None).await;
    assert_scim(&got, 200);
    assert_eq!(got.body, r.body);

    // Replace (§3.5.1): groups left out keeps the role; attributes left out are cleared.
    let put = scim(
        app,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(&t),
        Some(json!({
            "schemas": [USER],
            "id": id,
            "userName": "bjensen",
            "externalId": "00u-bjensen",
            "name": {"givenName": "Babs", "familyName": "Jensen"},
            "emails": [{"value": "babs@example.com", "type": "home", "primary": true}],
            "active": true
        })),
    )
    .await;
    assert_scim(&put, 200);
    assert_eq!(put.body["name"], json!({"givenName": "Babs", "familyName": "Jensen"}));
    assert_eq!(put.body["emails"][0]["value"], json!("babs@example.com"));
    assert_eq!(put.body["groups"][0]["value"], json!("support"));
    // userName is Steward's username and cannot be renamed.
    let rename = scim(
        app,
        Method::PUT,
        &format!("/Users/{id}"),
        Some(&t),
        Some(json!({"schemas": [USER], "userName": "barbara"})),
    )
    .await;
    assert_error(&rename, 400, Some("mutability"));

    // Patch (§3.5.2): replace name parts, add and remove e-mails.
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(json!([
            {"op": "replace", "path": "name.givenName", "value": "Barbara"},
            {"op": "add", "path": "emails", "value": [{"value": "bj@work.example", "type": "work"}]},
            {"op": "remove", "path": "emails[type eq \"home\"]"},
            {"op": "replace", "path": "displayName", "value": "Barbara Jensen"}
        ]))),
    )
    .await;
    assert_scim(&p, 200);
    assert_eq!(p.body["name"]["givenName"], json!("Barbara"));
    assert_eq!(p.body["displayName"], json!("Barbara Jensen"));
    assert_eq!(
        p.body["emails"],
        json!([{"value": "bj@work.example", "type": "work", "primary": false}])
    );
    let again = scim(app, Method::GET, &format!("/Users/{id}"), Some(&t), None).await;
    assert_eq!(again.body["emails"], p.body["emails"], "stored");

    // Delete (§3.6): 204, then 404 for every operation, gone from lists;
    // the account stays in Steward, disabled.
    let d = scim(app, Method::DELETE, &format!("/Users/{id}"), Some(&t), None).await;
    assert_scim(&d, 204);
    assert_error(
        &scim(app, Method::GET, &format!("/Users/{id}"), Some(&t), None).await,
        404,
        None,
    );
    assert_error(
        &scim(app, Method::DELETE, &format!("/Users/{id}"), Some(&t), None).await,
        404,
        None,
    );
    assert_error(
        &scim(
            app,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&t),
            Some(patch_ops(json!([{"op": "replace", "path": "active", "value": true}]))),
        )
        .await,
        404,
        None,
    );
    let list = scim(
        app,
        Method::GET,
        "/Users?filter=userName%20eq%20%22bjensen%22",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(list.body["totalResults"], json!(0), "{}", list.text);
    let all = scim(app, Method::GET, "/Users", Some(&t), None).await;
    assert!(!all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|u| u["id"] == json!(id)));
    let admin = app.get(&format!("/api/v1/users/{id}"), "admin").await;
    assert_eq!(admin.status, StatusCode::OK);
    assert_eq!(admin.body["disabled"], json!(true));
    // Its userName stays taken; its externalId is free again.
    let r = scim(app, Method::POST, "/Users", Some(&t), Some(bjensen())).await;
    assert_error(&r, 409, Some("uniqueness"));
    let mut other = bjensen();
    other["userName"] = json!("bjensen2");
    create(app, &t, other).await;
}

async fn listing_filters_and_paging(app: &TestApp) {
    let t = token(app).await;
    for i in 0..5 {
        create(
            app,
            &t,
            json!({"schemas": [USER], "userName": format!("page-{i}"), "externalId": format!("ext-{i}")}),
        )
        .await;
    }
    // Six staff accounts exist already (one per role), plus these five.
    let all = scim(app, Method::GET, "/Users", Some(&t), None).await;
    assert_scim(&all, 200);
    assert_eq!(all.body["schemas"], json!([LIST]));
    assert_eq!(all.body["totalResults"], json!(11));
    assert_eq!(all.body["startIndex"], json!(1));
    assert_eq!(all.body["itemsPerPage"], json!(11));
    let names: Vec<String> = all.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["userName"].as_str().unwrap().to_string())
        .collect();
    // Paging (§3.4.2.4): 1-based startIndex, count per page; pages tile the list.
    let mut paged = Vec::new();
    for start in [1, 5, 9] {
        let r = scim(
            app,
            Method::GET,
            &format!("/Users?startIndex={start}&count=4"),
            Some(&t),
            None,
        )
        .await;
        assert_scim(&r, 200);
        assert_eq!(r.body["totalResults"], json!(11));
        assert_eq!(r.body["startIndex"], json!(start));
        let n = if start == 9 { 3 } else { 4 };
        assert_eq!(r.body["itemsPerPage"], json!(n), "{}", r.text);
        for u in r.body["Resources"].as_array().unwrap() {
            paged.push(u["userName"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(paged, names);
    let r = scim(app, Method::GET, "/Users?startIndex=0&count=-3", Some(&t), None).await;
    assert_eq!(
        (r.body["startIndex"].clone(), r.body["itemsPerPage"].clone()),
        (json!(1), json!(0))
    );
    assert_eq!(r.body["totalResults"], json!(11));
    let r = scim(app, Method::GET, "/Users?startIndex=50", Some(&t), None).await;
    assert_eq!(r.body["Resources"], json!([]));
    // Filters: userName (case-insensitive) and externalId (case-exact).
    let r = scim(
        app,
        Method::GET,
        "/Users?filter=userName%20eq%20%22PAGE-3%22",
        Some(&t),
        None,
    )
    .await;
    assert_scim(&r, 200);
    assert_eq!(r.body["totalResults"], json!(1));
    assert_eq!(r.body["Resources"][0]["userName"], json!("page-3"));
    let r = scim(
        app,
        Method::GET,
        "/Users?filter=externalId%20eq%20%22ext-2%22",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.body["Resources"][0]["userName"], json!("page-2"), "{}", r.text);
    let r = scim(
        app,
        Method::GET,
        "/Users?filter=externalId%20eq%20%22EXT-2%22",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.body["totalResults"], json!(0));
    let r = scim(
        app,
        Method::GET,
        "/Users?filter=userName%20eq%20%22nobody%22",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(
        (r.body["totalResults"].clone(), r.body["Resources"].clone()),
        (json!(0), json!([]))
    );
    // Accounts made outside SCIM are Users too.
    let r = scim(
        app,
        Method::GET,
        "/Users?filter=userName%20eq%20%22sales-user%22",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(r.body["Resources"][0]["groups"][0]["value"], json!("sales"));
}

async fn deactivation_ends_sign_in_and_tokens(app: &TestApp) {
    let t = token(app).await;
    let user = create(app, &t, bjensen()).await;
    let id = user["id"].as_str().unwrap().to_string();
    // A SCIM-created account has no usable password until an admin sets one.
    assert_eq!(login(app, "bjensen", "").await.status, StatusCode::UNAUTHORIZED);
    let r = app
        .post(
            &format!("/api/v1/users/{id}/password"),
            "admin",
            json!({"password": "barbara-long-password"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text);
    let session = login(app, "bjensen", "barbara-long-password").await;
    assert_eq!(session.status, StatusCode::OK, "{}", session.text);
    let session = session.body["token"].as_str().unwrap().to_string();
    let api = app
        .service
        .create_api_token("bjensen", None, None)
        .await
        .unwrap()
        .to_string();
    for tok in [&session, &api] {
        let me = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::OK);
    }
    // PATCH active false, as Okta sends it (no path) and Entra ID (a string).
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(json!([{"op": "replace", "value": {"active": false}}]))),
    )
    .await;
    assert_scim(&p, 200);
    assert_eq!(p.body["active"], json!(false));
    assert_eq!(
        login(app, "bjensen", "barbara-long-password").await.status,
        StatusCode::UNAUTHORIZED
    );
    for tok in [&session, &api] {
        let me = app
            .client
            .get(app.url("/api/v1/auth/me"))
            .bearer_auth(tok)
            .send()
            .await
            .unwrap();
        assert_eq!(me.status(), StatusCode::UNAUTHORIZED, "revoked");
    }
    let got = scim(app, Method::GET, &format!("/Users/{id}"), Some(&t), None).await;
    assert_eq!(got.body["active"], json!(false), "an inactive user is still a User");
    // Reactivation enables the account; old tokens stay revoked.
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(json!([{"op": "Replace", "path": "active", "value": "True"}]))),
    )
    .await;
    assert_eq!(p.body["active"], json!(true), "{}", p.text);
    assert_eq!(
        login(app, "bjensen", "barbara-long-password").await.status,
        StatusCode::OK
    );
    let me = app
        .client
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth(&api)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);
    // DELETE also ends sign-in.
    assert_scim(
        &scim(app, Method::DELETE, &format!("/Users/{id}"), Some(&t), None).await,
        204,
    );
    assert_eq!(
        login(app, "bjensen", "barbara-long-password").await.status,
        StatusCode::UNAUTHORIZED
    );
}

async fn role_of(app: &TestApp, id: &str) -> String {
    let r = app.get(&format!("/api/v1/users/{id}"), "admin").await;
    r.body["role"].as_str().unwrap().to_string()
}

async fn groups_are_roles_and_membership_moves_accounts(app: &TestApp) {
    let t = token(app).await;
    let mut body = bjensen();
    body["groups"] = json!([{"value": "sales"}]);
    let user = create(app, &t, body).await;
    let id = user["id"].as_str().unwrap().to_string();
    assert_eq!(
        role_of(app, &id).await,
        "sales",
        "the role from the group given at creation"
    );

    // Every role is a group.
    let r = scim(app, Method::GET, "/Groups", Some(&t), None).await;
    assert_scim(&r, 200);
    let ids: Vec<&str> = r.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["admin", "auditor", "dpo", "marketing", "sales", "support"]);
    let sales = scim(app, Method::GET, "/Groups/sales", Some(&t), None).await;
    assert_scim(&sales, 200);
    assert_eq!(sales.body["schemas"], json!([GROUP]));
    assert_eq!(sales.body["displayName"], json!("sales"));
    let members: Vec<&str> = sales.body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert!(members.contains(&id.as_str()) && members.len() == 2, "{members:?}");
    let f = scim(
        app,
        Method::GET,
        "/Groups?filter=displayName%20eq%20%22dpo%22&excludedAttributes=members",
        Some(&t),
        None,
    )
    .await;
    assert_eq!(f.body["totalResults"], json!(1));
    assert_eq!(f.body["Resources"][0]["id"], json!("dpo"));
    assert!(f.body["Resources"][0].get("members").is_none());
    assert_error(&scim(app, Method::GET, "/Groups/nope", Some(&t), None).await, 404, None);

    // Adding to a second group moves the account (one role per account).
    let p = scim(
        app,
        Method::PATCH,
        "/Groups/marketing",
        Some(&t),
        Some(patch_ops(
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )),
    )
    .await;
    assert_scim(&p, 204);
    assert_eq!(role_of(app, &id).await, "marketing");
    let sales = scim(app, Method::GET, "/Groups/sales", Some(&t), None).await;
    assert_eq!(sales.body["members"].as_array().unwrap().len(), 1, "left sales");
    // Removal moves it to the token's default role.
    let p = scim(
        app,
        Method::PATCH,
        "/Groups/marketing",
        Some(&t),
        Some(patch_ops(
            json!([{"op": "remove", "path": format!("members[value eq \"{id}\"]")}]),
        )),
    )
    .await;
    assert_scim(&p, 204);
    assert_eq!(role_of(app, &id).await, "support");
    // Group membership through the User: add, then remove.
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(
            json!([{"op": "add", "path": "groups", "value": [{"value": "dpo"}]}]),
        )),
    )
    .await;
    assert_scim(&p, 200);
    assert_eq!(p.body["groups"][0]["value"], json!("dpo"));
    assert_eq!(role_of(app, &id).await, "dpo");
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(json!([{"op": "remove", "path": "groups[value eq \"dpo\"]"}]))),
    )
    .await;
    assert_scim(&p, 200);
    assert_eq!(role_of(app, &id).await, "support");
    // Unknown groups and members, and changing what the inventory defines, are refused.
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(
            json!([{"op": "add", "path": "groups", "value": [{"value": "root"}]}]),
        )),
    )
    .await;
    assert_error(&p, 400, Some("invalidValue"));
    let p = scim(
        app,
        Method::PATCH,
        "/Groups/sales",
        Some(&t),
        Some(patch_ops(
            json!([{"op": "add", "path": "members", "value": [{"value": uuid::Uuid::now_v7().to_string()}]}]),
        )),
    )
    .await;
    assert_error(&p, 400, Some("invalidValue"));
    let p = scim(
        app,
        Method::PATCH,
        "/Groups/sales",
        Some(&t),
        Some(patch_ops(
            json!([{"op": "replace", "value": {"displayName": "sellers"}}]),
        )),
    )
    .await;
    assert_error(&p, 400, Some("mutability"));
    let p = scim(
        app,
        Method::POST,
        "/Groups",
        Some(&t),
        Some(json!({"schemas": [GROUP], "displayName": "x"})),
    )
    .await;
    assert_error(&p, 501, None);
    assert_error(
        &scim(app, Method::DELETE, "/Groups/sales", Some(&t), None).await,
        501,
        None,
    );
    assert_eq!(role_of(app, &id).await, "support");
}

async fn discovery_endpoints_describe_what_is_supported(app: &TestApp) {
    let spc = scim(app, Method::GET, "/ServiceProviderConfig", None, None).await;
    assert_scim(&spc, 200);
    let b = &spc.body;
    assert_eq!(
        b["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"])
    );
    assert_eq!(b["patch"]["supported"], json!(true));
    assert_eq!(b["bulk"]["supported"], json!(false));
    assert_eq!(b["filter"]["supported"], json!(true));
    assert!(b["filter"]["maxResults"].as_u64().is_some_and(|n| n > 0));
    for off in ["changePassword", "sort", "etag"] {
        assert_eq!(b[off]["supported"], json!(false), "{off}");
    }
    assert_eq!(b["authenticationSchemes"][0]["type"], json!("oauthbearertoken"));

    let schemas = scim(app, Method::GET, "/Schemas", None, None).await;
    assert_scim(&schemas, 200);
    assert_eq!(schemas.body["schemas"], json!([LIST]));
    let list = schemas.body["Resources"].as_array().unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![USER, GROUP]);
    let user_attrs: Vec<&str> = list[0]["attributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for a in ["userName", "name", "emails", "active", "externalId", "groups"] {
        assert!(user_attrs.contains(&a), "{a}");
    }
    for a in list.iter().flat_map(|s| s["attributes"].as_array().unwrap()) {
        for key in [
            "name",
            "type",
            "multiValued",
            "required",
            "mutability",
            "returned",
            "uniqueness",
        ] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
    }
    let one = scim(app, Method::GET, &format!("/Schemas/{USER}"), None, None).await;
    assert_scim(&one, 200);
    assert_eq!(one.body["name"], json!("User"));

    let types = scim(app, Method::GET, "/ResourceTypes", None, None).await;
    assert_scim(&types, 200);
    let rt = types.body["Resources"].as_array().unwrap();
    assert_eq!(rt.len(), 2);
    assert_eq!(rt[0]["endpoint"], json!("/Users"));
    assert_eq!(rt[0]["schema"], json!(USER));
    assert_eq!(rt[1]["endpoint"], json!("/Groups"));
    let one = scim(app, Method::GET, "/ResourceTypes/Group", None, None).await;
    assert_eq!(one.body["schema"], json!(GROUP));
    assert_error(
        &scim(app, Method::GET, "/ResourceTypes/Device", None, None).await,
        404,
        None,
    );
}

async fn errors_use_the_scim_format_and_status_codes(app: &TestApp) {
    let t = token(app).await;
    create(app, &t, bjensen()).await;
    for filter in [
        "userName%20ne%20%22x%22",
        "emails%20eq%20%22bjensen%40example.com%22",
        "userName%20eq%20%22x%22%20and%20active%20eq%20true",
        "garbage",
    ] {
        let r = scim(app, Method::GET, &format!("/Users?filter={filter}"), Some(&t), None).await;
        assert_error(&r, 400, Some("invalidFilter"));
    }
    let r = scim(app, Method::GET, "/Users?count=lots", Some(&t), None).await;
    assert_error(&r, 400, Some("invalidValue"));
    for id in [uuid::Uuid::now_v7().to_string(), "not-an-id".to_string()] {
        assert_error(
            &scim(app, Method::GET, &format!("/Users/{id}"), Some(&t), None).await,
            404,
            None,
        );
        let r = scim(app, Method::PUT, &format!("/Users/{id}"), Some(&t), Some(bjensen())).await;
        assert_error(&r, 404, None);
    }
    // Duplicate userName (case-insensitively) and externalId.
    let mut dup = bjensen();
    dup["userName"] = json!("BJensen");
    assert_error(
        &scim(app, Method::POST, "/Users", Some(&t), Some(dup)).await,
        409,
        Some("uniqueness"),
    );
    let mut dup = bjensen();
    dup["userName"] = json!("someone-else");
    assert_error(
        &scim(app, Method::POST, "/Users", Some(&t), Some(dup)).await,
        409,
        Some("uniqueness"),
    );
    // Invalid values.
    for body in [
        json!({"schemas": [USER]}),
        json!({"schemas": [USER], "userName": "bjensen@example.com"}),
        json!({"schemas": [USER], "userName": "x1", "password": "t1meMa$heen"}),
        json!({"schemas": [USER], "userName": "x2", "emails": "bjensen@example.com"}),
        json!({"schemas": [USER], "userName": "x3", "groups": [{"value": "root"}]}),
    ] {
        let r = scim(app, Method::POST, "/Users", Some(&t), Some(body)).await;
        assert_error(&r, 400, Some("invalidValue"));
        assert!(
            !r.text.contains("bjensen@example.com") && !r.text.contains("t1meMa$heen"),
            "{}",
            r.text
        );
    }
    // Syntax, media type, PATCH paths.
    let r = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&t)
        .header("Content-Type", "application/scim+json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(&TestApp::read(r).await, 400, Some("invalidSyntax"));
    let r = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&t)
        .header("Content-Type", "text/plain")
        .body(bjensen().to_string())
        .send()
        .await
        .unwrap();
    assert_error(&TestApp::read(r).await, 415, None);
    let r = app
        .client
        .post(app.url("/scim/v2/Users"))
        .bearer_auth(&t)
        .json(&json!({"schemas": [USER], "userName": "plain-json"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "application/json is accepted too");
    let users = scim(
        app,
        Method::GET,
        "/Users?filter=userName%20eq%20%22bjensen%22",
        Some(&t),
        None,
    )
    .await;
    let id = users.body["Resources"][0]["id"].as_str().unwrap().to_string();
    for (ops, kind) in [
        (
            json!([{"op": "replace", "path": "emails[type ne \"work\"]", "value": "x"}]),
            "invalidFilter",
        ),
        (
            json!([{"op": "replace", "path": "name..givenName", "value": "x"}]),
            "invalidPath",
        ),
        (json!([{"op": "remove"}]), "noTarget"),
        (
            json!([{"op": "replace", "path": "emails[type eq \"home\"]", "value": {"value": "a@b.c"}}]),
            "noTarget",
        ),
        (json!([{"op": "replace", "path": "id", "value": "x"}]), "mutability"),
        (json!([{"op": "copy", "path": "active"}]), "invalidSyntax"),
    ] {
        let r = scim(
            app,
            Method::PATCH,
            &format!("/Users/{id}"),
            Some(&t),
            Some(patch_ops(ops)),
        )
        .await;
        assert_error(&r, 400, Some(kind));
    }
    // Unknown endpoints and methods.
    assert_error(&scim(app, Method::GET, "/Devices", Some(&t), None).await, 404, None);
    assert_error(
        &scim(app, Method::PATCH, "/ServiceProviderConfig", None, Some(json!({}))).await,
        405,
        None,
    );
    assert_error(
        &scim(app, Method::POST, "/Bulk", Some(&t), Some(json!({}))).await,
        404,
        None,
    );
}

async fn only_scim_tokens_may_provision(app: &TestApp) {
    let t = token(app).await;
    let no = scim(app, Method::GET, "/Users", None, None).await;
    assert_error(&no, 401, None);
    assert!(no.headers.get("www-authenticate").is_some());
    let wrong = scim(app, Method::GET, "/Users", Some("stw_scim_not-a-real-token"), None).await;
    assert_error(&wrong, 401, None);
    // Staff tokens, even an administrator's, are refused.
    for role in ["admin", "dpo", "support"] {
        let r = scim(app, Method::GET, "/Users", Some(&app.tokens[role]), None).await;
        assert_error(&r, 401, None);
        let r = scim(app, Method::POST, "/Users", Some(&app.tokens[role]), Some(bjensen())).await;
        assert_error(&r, 401, None);
    }
    let session = login(app, "admin-user", "admin-password-long").await;
    let session = session.body["token"].as_str().unwrap().to_string();
    assert_error(&scim(app, Method::GET, "/Users", Some(&session), None).await, 401, None);
    // And a SCIM token is good for nothing else.
    for path in ["/api/v1/users", "/api/v1/auth/me", "/api/v1/contacts"] {
        let r = app.client.get(app.url(path)).bearer_auth(&t).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    // A revoked SCIM token stops at once.
    assert_scim(&scim(app, Method::GET, "/Users", Some(&t), None).await, 200);
    let tokens = app.service.list_scim_tokens().await.unwrap();
    assert_eq!(tokens.len(), 1);
    assert!(tokens[0].last_used_at.is_some());
    app.service.revoke_scim_token(tokens[0].id).await.unwrap();
    assert_error(&scim(app, Method::GET, "/Users", Some(&t), None).await, 401, None);
}

async fn audit_entries_and_storage_hold_no_personal_data(app: &TestApp) {
    let t = token(app).await;
    let user = create(app, &t, bjensen()).await;
    let id = user["id"].as_str().unwrap().to_string();
    let p = scim(
        app,
        Method::PATCH,
        &format!("/Users/{id}"),
        Some(&t),
        Some(patch_ops(json!([
            {"op": "replace", "path": "emails", "value": [{"value": "barbara.new@example.com"}]},
            {"op": "replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "replace", "path": "active", "value": false}
        ]))),
    )
    .await;
    assert_scim(&p, 200);
    let r = scim(
        app,
        Method::PATCH,
        "/Groups/sales",
        Some(&t),
        Some(patch_ops(
            json!([{"op": "add", "path": "members", "value": [{"value": id}]}]),
        )),
    )
    .await;
    assert_scim(&r, 204);
    assert_scim(
        &scim(app, Method::DELETE, &format!("/Users/{id}"), Some(&t), None).await,
        204,
    );

    let rows = app.audit_rows().await;
    let scim_rows: Vec<_> = rows.iter().filter(|r| r.action.starts_with("scim.")).collect();
    let actions: Vec<&str> = scim_rows.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "scim.token.create",
            "scim.user.create",
            "scim.user.update",
            "scim.group.update",
            "scim.user.delete"
        ]
    );
    let personal = [
        "bjensen@example.com",
        "barbara.new@example.com",
        "Barbara",
        "Jensen",
        "00u-bjensen",
        "example.com",
    ];
    for r in &rows {
        let text = String::from_utf8_lossy(&r.entry);
        for p in personal {
            assert!(
                !text.contains(p),
                "audit entry {} ({}) holds personal data: {text}",
                r.idx,
                r.action
            );
        }
    }
    let update = String::from_utf8_lossy(&scim_rows[2].entry).to_string();
    for field in ["emails", "name", "active"] {
        assert!(
            update.contains(field),
            "the changed attribute names are recorded: {update}"
        );
    }
    assert!(update.contains(&id) && update.contains("scim:okta"), "{update}");

    // At rest, the profile is sealed (SQLite: the database and its WAL).
    if app.backend == crate::helpers::Backend::Sqlite {
        let user = create(app, &t, json!({"schemas": [USER], "userName": "sealed", "emails": [{"value": "sealed.person@example.net"}], "name": {"givenName": "Zebedee"}})).await;
        assert!(user["id"].is_string());
        for file in ["steward.db", "steward.db-wal"] {
            let bytes = std::fs::read(app.data_dir().join(file)).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(
                !text.contains("sealed.person@example.net") && !text.contains("Zebedee"),
                "{file}"
            );
        }
    }
}
