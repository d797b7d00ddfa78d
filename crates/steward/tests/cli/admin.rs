//! `steward user list | disable | enable | set-role | reset-password |
//! reset-mfa | revoke-tokens | training`, `steward settings`, and scoped
//! tokens, as an operator uses them.

use crate::support::{Server, Steward, PASSWORD};

#[tokio::test]
async fn user_administration_takes_effect_at_once() {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    let token = s.create_token("sam");
    let server = Server::start(&s).await;
    let client = reqwest::Client::new();
    let me = |t: String| {
        let c = client.clone();
        let url = server.url("/api/v1/auth/me");
        async move { c.get(url).bearer_auth(t).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(me(token.clone()).await, 200);

    let list = s.run(["user", "list"]);
    list.ok();
    assert!(
        list.stdout.contains("sam") && list.stdout.contains("sales") && list.stdout.contains("active"),
        "{}",
        list.stdout
    );
    s.run(["user", "set-role", "sam", "support"]).ok();
    assert!(s.run(["user", "list"]).stdout.contains("support"));
    s.run(["user", "set-role", "sam", "wizard"]).refused();

    s.run(["user", "disable", "sam"]).ok();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await; // the server's token cache
    assert_eq!(me(token.clone()).await, 401, "disabling revokes tokens");
    s.run(["user", "enable", "sam"]).ok();
    let token = s.create_token("sam");
    assert_eq!(me(token.clone()).await, 200);
    s.run(["user", "revoke-tokens", "sam"]).ok();
    tokio::time::sleep(std::time::Duration::from_millis(2200)).await;
    assert_eq!(me(token).await, 401);

    s.run_stdin(
        ["user", "reset-password", "sam", "--password-stdin"],
        b"a-brand-new-password\n",
    )
    .ok();
    let login = |pw: &'static str| {
        let c = client.clone();
        let url = server.url("/api/v1/auth/login");
        async move {
            c.post(url)
                .json(&serde_json::json!({"username": "sam", "password": pw}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(login(PASSWORD).await, 401);
    assert_eq!(login("a-brand-new-password").await, 200);
    s.run(["user", "reset-mfa", "sam"]).ok();
    s.run(["user", "disable", "nobody"]).refused();
}

#[test]
fn training_settings_and_scoped_tokens() {
    let s = Steward::initialised();
    s.create_user("sam", "sales");
    s.run([
        "user",
        "training",
        "add",
        "sam",
        "--course",
        "GDPR basics",
        "--completed-on",
        "2026-01-15",
        "--expires-on",
        "2027-01-15",
    ])
    .ok();
    s.run([
        "user",
        "training",
        "add",
        "sam",
        "--course",
        "x",
        "--completed-on",
        "15.01.2026",
    ])
    .refused();
    let list = s.run(["user", "training", "list", "sam"]);
    list.ok();
    assert!(
        list.stdout.contains("GDPR basics") && list.stdout.contains("2027-01-15"),
        "{}",
        list.stdout
    );
    assert!(s.run(["user", "list"]).stdout.contains("current"));

    let show = s.run(["settings", "show"]);
    show.ok();
    assert!(
        show.stdout.contains("require_mfa") && show.stdout.contains("true"),
        "{}",
        show.stdout
    );
    s.run(["settings", "set", "require_training", "yes"]).ok();
    assert!(s
        .run(["settings", "show"])
        .stdout
        .lines()
        .any(|l| l.starts_with("require_training") && l.contains("true")));
    s.run(["settings", "set", "lockout_threshold", "0"]).refused();
    s.run(["settings", "set", "no_such_setting", "1"]).refused();

    let t = s.run(["token", "create", "sam", "--purpose", "sales"]);
    t.ok();
    s.run(["token", "create", "sam", "--purpose", "compliance"]).refused();
    let audit = s.run(["audit", "export"]);
    for action in ["training.record", "setting.change", "token.create"] {
        assert!(audit.stdout.contains(action), "{action} is audited");
    }
}

#[test]
fn art30_report_in_every_format() {
    let s = Steward::initialised();
    let md = s.run(["report", "art30"]);
    md.ok();
    for purpose in [
        "customer_service",
        "sales",
        "marketing_email",
        "analytics",
        "compliance",
    ] {
        assert!(md.stdout.contains(purpose), "{purpose} is in the record");
    }
    let json = s.run(["report", "art30", "--format", "json"]);
    json.ok();
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert!(v.is_object());
    let file = s.path("ropa.html");
    s.run(["report", "art30", "--format", "html", "-o", file.to_str().unwrap()])
        .ok();
    assert!(std::fs::read_to_string(&file).unwrap().contains("<html"));
    s.run(["report", "art30", "--format", "pdf"]).expect_code(2);
}

#[tokio::test]
async fn dsr_list_shows_overdue_and_due_soon_requests() {
    let s = Steward::initialised();
    s.create_user("dee", "dpo");
    let token = s.create_token("dee");
    let server = Server::start(&s).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for received in [
        "2026-01-05T09:00:00Z",
        &(chrono::Utc::now() - chrono::Duration::days(27)).to_rfc3339(),
        &chrono::Utc::now().to_rfc3339(),
    ] {
        let r = client
            .post(server.url("/api/v1/dsr"))
            .bearer_auth(&token)
            .json(&serde_json::json!({"kind": "access", "regime": "gdpr", "subject": {"email": "x@example.org"}, "received_at": received}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body: serde_json::Value = r.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let overdue = s.run(["dsr", "list", "--status", "overdue"]);
    overdue.ok();
    assert!(
        overdue.stdout.contains(&ids[0]) && !overdue.stdout.contains(&ids[1]) && !overdue.stdout.contains(&ids[2]),
        "{}",
        overdue.stdout
    );
    assert!(overdue.stdout.contains("overdue"));
    let soon = s.run(["dsr", "list", "--status", "due-soon"]);
    assert!(
        soon.stdout.contains(&ids[0]) && soon.stdout.contains(&ids[1]) && !soon.stdout.contains(&ids[2]),
        "{}",
        soon.stdout
    );
    let all = s.run(["dsr", "list", "--json"]);
    all.ok();
    let lines: Vec<serde_json::Value> = all.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["id"], ids[0].as_str(), "ordered by due date");
    assert!(!all.stdout.contains("x@example.org"));
    s.run(["dsr", "list", "--status", "later"]).expect_code(2);

    // Public intake queues a sealed e-mail; the operator's outbox shows it.
    let r = client
        .post(server.url("/api/v1/public/dsr"))
        .json(&serde_json::json!({"kind": "erasure", "regime": "gdpr", "email": "outbox.person@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let out = s.run(["outbox", "list", "--unsent"]);
    out.ok();
    let msg: serde_json::Value = serde_json::from_str(out.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(msg["to"], "outbox.person@example.org");
    assert!(msg["body"].as_str().unwrap().contains("token"));
    s.run(["outbox", "mark-sent", msg["id"].as_str().unwrap()]).ok();
    assert!(s.run(["outbox", "list", "--unsent"]).stdout.trim().is_empty());
    s.run(["outbox", "mark-sent", "not-an-id"]).refused();
}

/// A minimal SMTP server for one session: answers each command and returns
/// the envelope recipients and the message data it received.
fn fake_smtp() -> (u16, std::thread::JoinHandle<(Vec<String>, String)>) {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        stream
            .set_read_timeout(Some(std::time::Duration::from_secs(20)))
            .unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut reader = BufReader::new(stream);
        out.write_all(b"220 fake.test ESMTP\r\n").unwrap();
        let (mut rcpt, mut data) = (Vec::new(), String::new());
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                break;
            }
            let upper = line.to_uppercase();
            if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                out.write_all(b"250-fake.test\r\n250 8BITMIME\r\n").unwrap();
            } else if upper.starts_with("RCPT TO:") {
                rcpt.push(line[8..].trim().to_string());
                out.write_all(b"250 ok\r\n").unwrap();
            } else if upper.starts_with("DATA") {
                out.write_all(b"354 go ahead\r\n").unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    if line == ".\r\n" {
                        break;
                    }
                    data.push_str(&line);
                }
                out.write_all(b"250 queued\r\n").unwrap();
            } else if upper.starts_with("QUIT") {
                out.write_all(b"221 bye\r\n").unwrap();
                break;
            } else {
                out.write_all(b"250 ok\r\n").unwrap();
            }
        }
        (rcpt, data)
    });
    (port, handle)
}

#[tokio::test]
async fn outbox_send_delivers_over_smtp() {
    let s = Steward::initialised();
    let server = Server::start(&s).await;
    let r = reqwest::Client::new()
        .post(server.url("/api/v1/public/dsr"))
        .json(&serde_json::json!({"kind": "access", "regime": "gdpr", "email": "smtp.person@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let refused = s.run(["outbox", "send"]);
    assert!(refused.refused().contains("STEWARD_SMTP_URL"));

    // Nothing listens: the message stays queued and the run fails.
    let mut cmd = s.command();
    cmd.args(["outbox", "send"])
        .env("STEWARD_SMTP_URL", "smtp://127.0.0.1:1");
    let down = crate::support::run(cmd, None);
    down.expect_code(1);
    assert!(down.stdout.contains("0 message(s) sent, 1 failed"), "{}", down.stdout);
    assert!(
        !down.stderr.contains("smtp.person"),
        "no address in the logs: {}",
        down.stderr
    );
    assert_eq!(s.run(["outbox", "list", "--unsent"]).stdout.lines().count(), 1);

    let (port, smtp) = fake_smtp();
    let mut cmd = s.command();
    cmd.args(["outbox", "send"])
        .env("STEWARD_SMTP_URL", format!("smtp://127.0.0.1:{port}"))
        .env("STEWARD_MAIL_FROM", "privacy@controller.example");
    let out = crate::support::run(cmd, None);
    out.ok();
    assert!(out.stdout.contains("1 message(s) sent, 0 failed"), "{}", out.stdout);
    let (rcpt, data) = smtp.join().unwrap();
    assert_eq!(rcpt, ["<smtp.person@example.org>"]);
    assert!(data.contains("From: privacy@controller.example"), "{data}");
    assert!(data.contains("Subject: Please confirm your request"), "{data}");
    assert!(data.contains("/api/v1/public/dsr/verify"), "{data}");
    assert!(
        s.run(["outbox", "list", "--unsent"]).stdout.trim().is_empty(),
        "marked sent"
    );
    assert!(!out.stderr.contains("smtp.person"), "no address in the logs");
}

#[tokio::test]
async fn breach_list_and_notification_from_the_cli() {
    let s = Steward::initialised();
    s.create_user("dee", "dpo");
    let token = s.create_token("dee");
    let server = Server::start(&s).await;
    let client = reqwest::Client::new();
    let mut ids = Vec::new();
    for aware in ["2026-03-27T10:00:00+01:00", &chrono::Utc::now().to_rfc3339()] {
        let r = client
            .post(server.url("/api/v1/incidents"))
            .bearer_auth(&token)
            .json(
                &serde_json::json!({"title": "Misdirected export", "description": "Sent to the wrong customer.",
                "category": "confidentiality", "source": "misdirected_email", "aware_at": aware}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 201);
        let body: serde_json::Value = r.json().await.unwrap();
        ids.push(body["id"].as_str().unwrap().to_string());
    }
    let overdue = s.run(["breach", "list", "--overdue"]);
    overdue.ok();
    assert!(
        overdue.stdout.contains(&ids[0]) && !overdue.stdout.contains(&ids[1]),
        "{}",
        overdue.stdout
    );
    assert!(overdue.stdout.contains("OVERDUE"));
    let all = s.run(["breach", "list", "--json"]);
    all.ok();
    let lines: Vec<serde_json::Value> = all.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["id"], ids[1].as_str(), "newest first");
    assert_eq!(lines[1]["clocks"][0]["due_at"], "2026-03-30T09:00:00Z");
    let md = s.run(["breach", "notification", &ids[0]]);
    md.ok();
    assert!(
        md.stdout.contains("Art. 33") && md.stdout.contains("Misdirected export"),
        "{}",
        md.stdout
    );
    let json = s.run(["breach", "notification", &ids[0], "--format", "json"]);
    let v: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(v["nature"]["source"], "misdirected_email");
    s.run(["breach", "notification", "not-an-id"]).refused();
    s.run(["breach", "notification", &uuid::Uuid::now_v7().to_string()])
        .refused();
}

#[test]
fn retention_preview_and_run_from_the_cli() {
    let s = Steward::initialised();
    // The shipped inventory declares no rules: they are derived.
    let preview = s.run(["retention", "preview", "--days", "30"]);
    preview.ok();
    assert!(preview.stdout.contains("contact-default"), "{}", preview.stdout);
    let json = s.run(["retention", "preview", "--json"]);
    json.ok();
    for line in json.stdout.lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["count"], 0, "nothing is due in a new installation");
    }
    let dry = s.run(["retention", "run", "--dry-run", "--json"]);
    dry.ok();
    let v: serde_json::Value = serde_json::from_str(dry.stdout.trim()).unwrap();
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["erased"], 0);
    let run = s.run(["retention", "run"]);
    run.ok();
    assert!(run.stdout.contains("0 erased"), "{}", run.stdout);
    s.run(["retention", "preview", "--days", "99999"]).refused();
    s.run(["retention", "preview", "--days", "soon"]).expect_code(2);
    // The report: nothing deleted yet in a new installation.
    let report = s.run(["retention", "report", "--since", "2026-01-01", "--json"]);
    report.ok();
    let v: serde_json::Value = serde_json::from_str(&report.stdout).unwrap();
    assert_eq!(v["totals"], serde_json::json!([]), "{}", report.stdout);
    assert_eq!(v["since"], "2026-01-01T00:00:00Z");
    let text = s.run(["retention", "report"]);
    text.ok();
    assert!(text.stdout.contains("Retention since"), "{}", text.stdout);
    s.run(["retention", "report", "--since", "last week"]).expect_code(2);
}
