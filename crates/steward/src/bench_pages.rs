//! `steward bench`: the console's and the portal's pages with 10,000
//! contacts. Each page is fetched over a keep-alive loopback connection
//! with a signed-in session cookie; the round trip (request written to the
//! last byte of the page read) bounds the server's time from above.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Result};
use serde_json::json;
use steward_service::{Config, Service};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::bench::{load_collect, percentile, read_response};
use crate::cli::service_err;

/// One page's round trips.
pub struct PageTiming {
    pub page: String,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub bytes: usize,
}

impl PageTiming {
    pub fn to_json(&self) -> serde_json::Value {
        json!({"page": self.page, "p50_ms": self.p50_ms, "p99_ms": self.p99_ms, "bytes": self.bytes})
    }
}

const PASSWORD: &str = "bench-password-long";

async fn session(service: &Service, user: &str) -> Result<String> {
    let outcome = service
        .login(user, Zeroizing::new(PASSWORD.into()), None, None)
        .await
        .map_err(service_err)?;
    Ok(outcome.token.as_str().to_string())
}

/// Seeds `contacts` contacts (with deals, interactions, requests and an
/// incident) and measures each page `samples` times.
pub async fn console_pages(dir: &Path, contacts: usize, samples: usize) -> Result<Vec<PageTiming>> {
    let service = Arc::new(Service::open(&Config::new(dir.to_path_buf())).await?);
    // Sessions without a second factor, so the bench can sign in.
    service
        .set_setting_locally("require_mfa", "false")
        .await
        .map_err(service_err)?;
    let mut bearer = std::collections::HashMap::new();
    for (user, role) in [("rep", "sales"), ("officer", "dpo"), ("root", "admin")] {
        service
            .create_user(user, role, Zeroizing::new(PASSWORD.into()))
            .await
            .map_err(service_err)?;
        let token = service.create_api_token(user, None, None).await.map_err(service_err)?;
        bearer.insert(user, format!("Bearer {}", token.as_str()));
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(steward_server::serve(listener, Arc::clone(&service), async {
        let _ = rx.await;
    }));

    // Seed over the API, as users would.
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(contacts)));
    let auth = bearer["rep"].clone();
    load_collect(
        addr,
        contacts,
        32,
        Arc::new(move |i| {
            let body = json!({
                "given_name": format!("Given{i}"), "family_name": format!("Family{i}"),
                "email": format!("page{i}@bench.example"), "phone": format!("+4420{:08}", i),
                "job_title": "Engineer", "country": "GB", "purposes": ["sales"],
            });
            (
                "POST".into(),
                "/api/v1/contacts".into(),
                Some((auth.clone(), body.to_string())),
            )
        }),
        Some(Arc::clone(&ids)),
    )
    .await?;
    let ids = std::mem::take(&mut *ids.lock().map_err(|_| anyhow!("poisoned"))?);
    let first = ids.first().cloned().ok_or_else(|| anyhow!("no contact was created"))?;
    let one = |path: &str, who: &str, body: serde_json::Value| {
        let auth = bearer[who].clone();
        let path = path.to_string();
        async move {
            let got = Arc::new(std::sync::Mutex::new(Vec::new()));
            load_collect(
                addr,
                1,
                1,
                Arc::new(move |_| ("POST".into(), path.clone(), Some((auth.clone(), body.to_string())))),
                Some(Arc::clone(&got)),
            )
            .await?;
            let id = got.lock().map_err(|_| anyhow!("poisoned"))?.pop();
            id.ok_or_else(|| anyhow!("no id in the answer"))
        }
    };
    let org = one(
        "/api/v1/organizations",
        "rep",
        json!({"name": "Analytical Engines Ltd", "domain": "engines.example"}),
    )
    .await?;
    let mut deal = String::new();
    for i in 0..20 {
        deal = one(
            "/api/v1/deals",
            "rep",
            json!({"title": format!("Engine {i}"), "stage": "proposal", "amount": 1200.5, "currency": "GBP",
                   "organization_id": org, "contact_id": first}),
        )
        .await?;
        one(
            &format!("/api/v1/contacts/{first}/interactions"),
            "rep",
            json!({"kind": "call", "summary": format!("Call {i}"), "occurred_at": "2026-01-31T09:30:00Z"}),
        )
        .await?;
    }
    let mut request = String::new();
    for i in 0..50 {
        request = one(
            "/api/v1/dsr",
            "officer",
            json!({"kind": "access", "regime": "gdpr", "subject": {"email": format!("page{i}@bench.example")}}),
        )
        .await?;
    }
    let incident = one(
        "/api/v1/incidents",
        "officer",
        json!({"title": "Laptop lost", "description": "A laptop was left on a train.",
               "category": "confidentiality", "source": "compromised_account",
               "started_at": "2026-12-01T08:00:00Z", "aware_at": "2026-12-02T09:30:00Z"}),
    )
    .await?;

    let rep = session(&service, "rep").await?;
    let officer = session(&service, "officer").await?;
    let root = session(&service, "root").await?;
    let search = format!("_csrf={}&q=family5", service.csrf_token_for(&rep));
    let pages: Vec<(String, Option<&str>, Option<String>)> = vec![
        ("/".into(), Some(&rep), None),
        ("/contacts".into(), Some(&rep), None),
        ("/contacts".into(), Some(&rep), Some(search)),
        (format!("/contacts/{first}"), Some(&rep), None),
        ("/contacts/new".into(), Some(&rep), None),
        ("/contacts/import".into(), Some(&rep), None),
        ("/organizations".into(), Some(&rep), None),
        (format!("/organizations/{org}"), Some(&rep), None),
        ("/deals".into(), Some(&rep), None),
        (format!("/deals/{deal}"), Some(&rep), None),
        ("/security".into(), Some(&rep), None),
        ("/requests".into(), Some(&officer), None),
        (format!("/requests/{request}"), Some(&officer), None),
        ("/incidents".into(), Some(&officer), None),
        (format!("/incidents/{incident}"), Some(&officer), None),
        ("/notices".into(), Some(&officer), None),
        ("/retention".into(), Some(&officer), None),
        ("/audit".into(), Some(&officer), None),
        ("/reports/art30".into(), Some(&officer), None),
        ("/reports/security".into(), Some(&officer), None),
        ("/admin/users".into(), Some(&root), None),
        ("/admin/settings".into(), Some(&root), None),
        ("/login".into(), None, None),
        ("/privacy".into(), None, None),
        ("/privacy/notice".into(), None, None),
    ];
    let mut out = Vec::new();
    let mut conn = TcpStream::connect(addr).await?;
    conn.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    for (path, cookie, form) in &pages {
        let mut req = format!(
            "{} {path} HTTP/1.1\r\nHost: bench\r\n",
            if form.is_some() { "POST" } else { "GET" }
        );
        if let Some(c) = cookie {
            req.push_str(&format!("Cookie: steward_session={c}\r\n"));
        }
        if let Some(f) = form {
            req.push_str(&format!(
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{f}",
                f.len()
            ));
        } else {
            req.push_str("\r\n");
        }
        let mut times = Vec::with_capacity(samples);
        let mut bytes = 0;
        for i in 0..samples + 3 {
            let start = Instant::now();
            conn.write_all(req.as_bytes()).await?;
            let (status, body) = read_response(&mut conn, &mut buf).await?;
            let ms = start.elapsed().as_secs_f64() * 1_000.0;
            if status != 200 {
                bail!("{path} answered {status}");
            }
            bytes = body.len();
            if i >= 3 {
                times.push(ms);
            }
        }
        times.sort_by(f64::total_cmp);
        let label = if form.is_some() {
            format!("POST {path} (word search)")
        } else {
            format!(
                "GET {}",
                path.replace(&first, "{id}")
                    .replace(&org, "{id}")
                    .replace(&deal, "{id}")
                    .replace(&request, "{id}")
                    .replace(&incident, "{id}")
            )
        };
        out.push(PageTiming {
            page: label,
            p50_ms: percentile(&times, 0.50),
            p99_ms: percentile(&times, 0.99),
            bytes,
        });
    }
    let _ = tx.send(());
    server.await??;
    service.close().await;
    Ok(out)
}
