//! `steward scim token create | list | revoke`: the token is printed once,
//! works on `/scim/v2` of a running server, and stops working there as soon
//! as it is revoked from the command line.

use crate::support::{assert_no_panic, Server, Steward};

async fn users_status(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/scim/v2/Users", server.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn scim_tokens_are_created_listed_and_revoked() {
    let s = Steward::initialised();
    let out = s.run(["scim", "token", "create", "--name", "okta", "--default-role", "support"]);
    out.ok();
    let token = out.stdout.trim().to_string();
    assert!(
        token.starts_with("stw_scim_") && !token.contains(char::is_whitespace),
        "{token}"
    );
    assert_eq!(out.stdout.lines().count(), 1, "only the token on stdout");

    for (args, needle) in [
        (["--name", "Okta Prod", "--default-role", "support"], "name"),
        (["--name", "entra", "--default-role", "root"], "default_role"),
    ] {
        let mut all = vec!["scim", "token", "create"];
        all.extend(args);
        let out = s.run(all);
        let err = out.refused();
        assert!(err.contains(needle), "{err}");
        assert_no_panic(&out.stderr);
    }

    let list = s.run(["scim", "token", "list"]);
    list.ok();
    assert!(list.stdout.contains("okta") && list.stdout.contains("support") && list.stdout.contains("active"));
    assert!(!list.stdout.contains(&token), "never the secret");

    let server = Server::start(&s).await;
    assert_eq!(users_status(&server, &token).await, 200);
    s.run(["scim", "token", "revoke", "okta"]).ok();
    assert_eq!(users_status(&server, &token).await, 401, "revoked at once, no restart");
    let list = s.run(["scim", "token", "list"]);
    assert!(list.stdout.contains("revoked"), "{}", list.stdout);
    let err = s.run(["scim", "token", "revoke", "okta"]).refused();
    assert!(err.contains("no active SCIM token"), "{err}");
    drop(server);
}
