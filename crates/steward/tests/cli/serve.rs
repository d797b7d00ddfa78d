//! `steward serve`: the URL line, the first-run hint, `/healthz`, and a
//! graceful SIGTERM that loses no acknowledged write.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::{eventually, Server, Steward, PASSWORD};

#[tokio::test]
async fn first_run_serves_health_and_prints_how_to_log_in() {
    let s = Steward::new();
    let mut server = Server::start(&s).await;
    let first = server.stdout().lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("Steward is serving on http://127.0.0.1:"), "{first}");

    // With no users, serve explains how to create one.
    assert!(
        eventually(Duration::from_secs(10), || server.stdout().contains("No users yet")
            && server.stdout().contains("token create")),
        "serve prints a first-run hint:\n{}",
        server.stdout()
    );
    assert!(server.stdout().contains("user create"), "{}", server.stdout());

    // The first sign-in works as printed: run the printed command, then sign
    // in to the console at the printed address with the printed password.
    let out = server.stdout();
    let create = out
        .lines()
        .map(str::trim)
        .find(|l| l.contains("user create"))
        .unwrap()
        .to_string();
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(&create)
        .status()
        .unwrap();
    assert!(status.success(), "the printed command runs: {create}");
    let open = out
        .lines()
        .find(|l| l.starts_with("then open "))
        .unwrap_or_else(|| panic!("{out}"));
    let console = open.split_whitespace().nth(2).unwrap().to_string();
    assert_eq!(console, server.url("/"), "{open}");
    assert!(
        out.contains(&server.url("/privacy")),
        "the portal's address is printed:\n{out}"
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(&console).send().await.unwrap();
    assert_eq!(page.status(), 303, "the console sends a visitor to its sign-in page");
    assert_eq!(page.headers()["location"], "/login");
    let r = client
        .post(server.url("/login"))
        .form(&[("username", "alice"), ("password", "a-long-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "the printed sign-in works");
    assert_eq!(
        r.headers()["location"],
        "/security/mfa",
        "a sales user sets up a second factor first"
    );
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("HttpOnly"));

    let client = reqwest::Client::new();
    let r = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = client.get(server.url("/api/v1/contacts")).send().await.unwrap();
    assert_eq!(r.status(), 401, "the API needs a token");

    // Serve created the data dir on first run.
    assert!(s.data_dir().join("steward.db").is_file());
    assert!(s.data_dir().join("keys").is_dir());

    let status = server.terminate();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean shutdown; stderr:\n{}",
        server.stderr()
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains('\u{1b}'),
        "logs to a pipe carry no colour codes:\n{stderr}"
    );
}

async fn create_contact(client: &reqwest::Client, server: &Server, token: &str, i: usize) -> Option<(String, String)> {
    let email = format!("person{i}@example.com");
    let body = json!({"given_name": format!("Person{i}"), "email": email, "purposes": ["sales"]});
    let r = client
        .post(server.url("/api/v1/contacts"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .ok()?;
    if r.status() != 201 {
        return None;
    }
    let v: Value = r.json().await.ok()?;
    Some((v["id"].as_str()?.to_string(), email))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_loses_no_acknowledged_write() {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    let token = s.create_token("sam");
    let client = reqwest::Client::new();

    let mut server = Server::start(&s).await;
    assert!(
        eventually(Duration::from_secs(10), || server.stdout().lines().count() >= 2),
        "serve prints how to sign in:\n{}",
        server.stdout()
    );
    assert!(
        !server.stdout().contains("No users yet"),
        "no first-run hint once a user exists:\n{}",
        server.stdout()
    );

    // The password was read from stdin as given: sign-in works with it.
    let r = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "sam", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "sign-in with the password given to user create");
    let r = client
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": "sam", "password": "wrong password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    // One write acknowledged before any shutdown.
    let mut acknowledged = vec![create_contact(&client, &server, &token, 0)
        .await
        .expect("the first contact is created")];

    // Many writes in flight while SIGTERM arrives: every one that was
    // acknowledged (201) must survive.
    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 1..=40 {
        let (client, token, done) = (client.clone(), token.clone(), Arc::clone(&done));
        let url = server.url("/api/v1/contacts");
        tasks.push(tokio::spawn(async move {
            let email = format!("person{i}@example.com");
            let body = json!({"given_name": format!("Person{i}"), "email": email, "purposes": ["sales"]});
            let result = match client.post(url).bearer_auth(&token).json(&body).send().await {
                Ok(r) if r.status() == 201 => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["id"].as_str().map(|id| (id.to_string(), email))),
                _ => None,
            };
            done.fetch_add(1, Ordering::SeqCst);
            result
        }));
    }
    assert!(
        eventually(Duration::from_secs(30), || done.load(Ordering::SeqCst) >= 5),
        "some writes complete"
    );
    server.send_sigterm();
    let status = server.wait_exit();
    assert_eq!(
        status.code(),
        Some(0),
        "SIGTERM is a clean shutdown; stderr:\n{}",
        server.stderr()
    );
    for t in tasks {
        if let Some(ack) = t.await.unwrap() {
            acknowledged.push(ack);
        }
    }
    assert!(
        acknowledged.len() >= 6,
        "at least the writes seen before SIGTERM were acknowledged"
    );
    let stderr = server.stderr();
    assert!(
        !stderr.contains("@example.com"),
        "server logs carry no personal data:\n{stderr}"
    );
    assert!(!stderr.contains(&token), "server logs carry no token");

    // Restart on the same data dir: every acknowledged contact is there.
    let mut server = Server::start(&s).await;
    for (id, email) in &acknowledged {
        let r = client
            .get(server.url(&format!("/api/v1/contacts/{id}")))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "acknowledged contact {id} survives the restart");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["email"].as_str(), Some(email.as_str()));
    }
    let r = client
        .get(server.url("/api/v1/contacts/00000000-0000-7000-8000-000000000000"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(server.terminate().code(), Some(0));
}

/// A read is answered only once its audit entry is safe from a crash of
/// the process: reads acknowledged just before a SIGKILL are all in the
/// log after the next start, and the log verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_answered_before_a_crash_are_all_in_the_audit_log() {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    let token = s.create_token("sam");
    let client = reqwest::Client::new();
    let mut server = Server::start(&s).await;
    let (id, _) = create_contact(&client, &server, &token, 1).await.expect("created");
    let mut reads = Vec::new();
    for _ in 0..30 {
        let (client, token, url) = (
            client.clone(),
            token.clone(),
            server.url(&format!("/api/v1/contacts/{id}")),
        );
        reads.push(tokio::spawn(async move {
            client.get(url).bearer_auth(&token).send().await.unwrap().status()
        }));
    }
    for r in reads {
        assert_eq!(r.await.unwrap(), 200);
    }
    server.kill();
    let spool = s.data_dir().join("steward.db.spool");
    let spooled = std::fs::read_dir(&spool).unwrap().count();
    assert_eq!(spooled, 1, "the killed server leaves its spool file behind");

    // The next process to open the data dir seals what was spooled.
    let out = s.run(["audit", "export"]);
    out.ok();
    let lines = out.stdout.clone();
    let read_entries = lines
        .lines()
        .filter(|l| l.contains("\"contact.read\"") && l.contains(&id))
        .count();
    assert_eq!(read_entries, 30, "every answered read is in the log");
    s.run(["audit", "verify"]).ok();
    assert_eq!(
        std::fs::read_dir(&spool).unwrap().count(),
        0,
        "imported spool files are removed"
    );
}

#[tokio::test]
async fn serve_refuses_an_address_in_use() {
    let s = Steward::initialised();
    let server = Server::start(&s).await;
    let addr = server.base.trim_start_matches("http://").to_string();
    let out = s.run(["serve", "--listen", &addr]);
    let err = out.refused();
    assert!(err.contains(&addr), "the error names the address: {err}");
    drop(server);
}

/// `steward bench` runs every stage end to end and reports each target as a
/// ratio measured in the same run, in JSON (tiny sizes: a harness check, not
/// a measurement).
#[test]
fn bench_reports_every_target_as_a_ratio_in_json() {
    let s = Steward::new();
    let mut cmd = s.command();
    cmd.args(["bench", "--smoke", "--json", "--concurrency", "4"]);
    if let Ok(url) = std::env::var("STEWARD_TEST_DATABASE_URL") {
        cmd.args(["--postgres", &url]);
    } else {
        cmd.env_remove("STEWARD_BENCH_DATABASE_URL");
    }
    let out = crate::support::run(cmd, None);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).expect("bench --json prints JSON");
    let ratios = v["ratios"].as_array().expect("ratios");
    let names: Vec<&str> = ratios.iter().filter_map(|r| r["name"].as_str()).collect();
    for expected in [
        "creates / raw SQLite insert",
        "reads / bare axum GET",
        "bulk import / raw batched insert",
        "durable creates / fdatasync",
        "audited / unaudited reads",
        "audit verify, millions of entries/s",
        "10 ms / erasure p99 (largest scale)",
        "50 ms / access export p99 (largest scale)",
        "retention deletions/s / DSR erasures/s (largest)",
        "5 ms / read p99 during a retention run (largest)",
        "50 ms / slowest console page p99 (10k contacts)",
        "10 s / compliance report, 30 days (largest scale)",
    ] {
        assert!(names.contains(&expected), "{expected} is reported: {names:?}");
    }
    if std::env::var("STEWARD_TEST_DATABASE_URL").is_ok() {
        assert!(names.contains(&"PostgreSQL creates / raw prepared insert"), "{names:?}");
    }
    for r in ratios {
        let ratio = r["ratio"].as_f64().unwrap();
        assert!(ratio.is_finite() && ratio > 0.0, "{r}");
        assert_eq!(r["pass"].as_bool(), Some(ratio >= r["target"].as_f64().unwrap()));
    }
    let scale = v["scale"].as_array().expect("scale");
    // A point at a tenth (30 people, 5 erased), then the largest: 300
    // people, 5 more erased, and the retention run deletes the first 25.
    assert_eq!(scale.len(), 2);
    assert_eq!(scale[0]["contacts"], 25, "30 people created, 5 erased");
    let top = &scale[1];
    assert_eq!(top["contacts"], 265, "300 created, 10 erased, 25 deleted by retention");
    assert_eq!(top["retention"]["contacts_deleted"], 25);
    assert!(top["peak_rss_mib"].as_f64().unwrap() > 0.0);
    assert!(top["audit_verify_entries_per_s"].as_f64().unwrap() > 0.0);
    assert!(top["compliance_report_ms"].as_f64().unwrap() > 0.0);
    assert!(!out.stdout.contains("@example.org"), "no personal data in the report");
    let pages = v["pages"].as_array().expect("pages");
    let names: Vec<&str> = pages.iter().filter_map(|p| p["page"].as_str()).collect();
    for expected in [
        "GET /contacts",
        "GET /contacts/{id}",
        "GET /requests",
        "GET /audit",
        "GET /privacy",
    ] {
        assert!(names.contains(&expected), "{expected} is measured: {names:?}");
    }
    assert!(pages
        .iter()
        .all(|p| p["p99_ms"].as_f64().unwrap() > 0.0 && p["bytes"].as_u64().unwrap() > 0));
}
