//! The console and the portal in a real browser: Debian's Chromium,
//! headless, driven through chromedriver (W3C WebDriver) by a small client
//! of our own. Enabled when `STEWARD_TEST_WEBDRIVER` names a running
//! chromedriver (e.g. `http://127.0.0.1:9515`), like the PostgreSQL tests
//! are by `STEWARD_TEST_DATABASE_URL`. Screenshots of the main pages go to
//! `docs/screenshots/` when `STEWARD_UPDATE_SCREENSHOTS=1`.

use std::time::Duration;

use serde_json::{json, Value};
use steward_crypto::totp::{self, TotpParams, TotpSecret};
use zeroize::Zeroizing;

use crate::helpers::{spawn_app_with_inventory, Backend, TestApp};

/// A role that acts for two purposes with different fields (sales sees the
/// job title, customer service the street), for the purpose switch.
const REP_ROLE: &str = r#"
[roles.rep]
description = "Account manager: sales and customer service"
default_purpose = "sales"
purposes = ["sales", "customer_service"]
actions = ["contact.read", "contact.write", "interaction.read", "interaction.write", "deal.read", "organization.read"]
"#;

const ELEMENT: &str = "element-6066-11e4-a5e7-4ae0-4a07a93ec8c7";

struct Browser {
    http: reqwest::Client,
    session: String,
    base: String,
    app: String,
}

impl Browser {
    async fn start(driver: &str, app: &str) -> Self {
        let http = reqwest::Client::new();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": std::env::var("STEWARD_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1000"]
            }
        }}});
        let r: Value = http
            .post(format!("{driver}/session"))
            .json(&caps)
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {r}"))
            .to_string();
        Self {
            http,
            base: format!("{driver}/session/{session}"),
            session,
            app: app.to_string(),
        }
    }

    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap();
        if v["value"].get("error").is_some() {
            panic!("webdriver {path}: {}", v["value"]);
        }
        v["value"].clone()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        self.cmd(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Value {
        self.cmd(reqwest::Method::GET, path, None).await
    }

    async fn open(&self, path: &str) {
        self.post("/url", json!({"url": format!("{}{path}", self.app)})).await;
    }

    async fn path(&self) -> String {
        let url = self.get("/url").await.as_str().unwrap().to_string();
        url.strip_prefix(&self.app).unwrap_or(&url).to_string()
    }

    async fn find_all(&self, css: &str) -> Vec<String> {
        let v = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .await;
        v.as_array()
            .unwrap_or_else(|| panic!("elements {css}: {v}"))
            .iter()
            .map(|e| {
                let o = e.as_object().unwrap();
                o.get(ELEMENT)
                    .or_else(|| o.values().next())
                    .and_then(Value::as_str)
                    .unwrap()
                    .to_string()
            })
            .collect()
    }

    async fn find(&self, css: &str) -> String {
        for _ in 0..50 {
            if let Some(e) = self.find_all(css).await.into_iter().next() {
                return e;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let source = self.get("/source").await;
        panic!(
            "no element {css} on {}:\n{}",
            self.path().await,
            source.as_str().unwrap_or("")
        );
    }

    async fn text(&self, css: &str) -> String {
        let e = self.find(css).await;
        self.get(&format!("/element/{e}/text"))
            .await
            .as_str()
            .unwrap()
            .to_string()
    }

    async fn visible_text(&self) -> String {
        self.text("main").await
    }

    async fn fill(&self, css: &str, value: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/clear"), json!({})).await;
        self.post(&format!("/element/{e}/value"), json!({"text": value})).await;
    }

    async fn click(&self, css: &str) {
        let e = self.find(css).await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
    }

    /// Clicks a button or link that loads a new page and waits until the
    /// new page has replaced the old one (the old document is marked first,
    /// so a slow answer is never mistaken for the page it replaces).
    async fn submit(&self, css: &str) {
        let e = self.find(css).await;
        self.script("window.__stewardOld = true; return true;").await;
        self.post(&format!("/element/{e}/click"), json!({})).await;
        for _ in 0..200 {
            let fresh = self
                .http
                .post(format!("{}/execute/sync", self.base))
                .json(&json!({"script": "return window.__stewardOld === undefined && document.readyState === 'complete';", "args": []}))
                .send()
                .await
                .ok();
            if let Some(r) = fresh {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"] == Value::Bool(true) {
                        return;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("clicking {css} on {} loaded no new page", self.path().await);
    }

    /// Checks the page for what a screen-reader or keyboard user needs:
    /// every control labelled, a main landmark, a language, buttons with
    /// names, images with alternatives; panics naming what is missing.
    async fn check_accessible(&self) {
        let bad = self
            .script(
                "const bad = [];
                 for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
                   let ok = el.closest('label') || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
                   if (!ok && el.id) ok = document.querySelector('label[for=\"' + CSS.escape(el.id) + '\"]');
                   if (!ok) bad.push('unlabelled ' + (el.name || el.tagName));
                 }
                 if (!document.querySelector('main')) bad.push('no main landmark');
                 if (!document.documentElement.lang) bad.push('no language');
                 if (!document.title.trim()) bad.push('no title');
                 for (const i of document.querySelectorAll('img')) if (!i.hasAttribute('alt')) bad.push('image without alt');
                 for (const b of document.querySelectorAll('button')) if (!b.textContent.trim() && !b.getAttribute('aria-label')) bad.push('button without a name');
                 const ids = new Set();
                 for (const e of document.querySelectorAll('[id]')) { if (ids.has(e.id)) bad.push('duplicate id ' + e.id); ids.add(e.id); }
                 return bad;",
            )
            .await;
        let path = self.path().await;
        assert_eq!(bad, json!([]), "accessibility problems on {path}");
    }

    /// Presses Tab once and names the element that has the focus then.
    async fn tab(&self) -> Value {
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}
            ]}]}),
        )
        .await;
        self.script("const a = document.activeElement; return a.tagName + '.' + a.className + ' ' + (a.getAttribute('href') || a.id || '');")
            .await
    }

    async fn script(&self, js: &str) -> Value {
        self.post("/execute/sync", json!({"script": js, "args": []})).await
    }

    /// Sends `Sec-GPC: 1` with every request from now on (DevTools).
    async fn send_gpc(&self) {
        self.post("/goog/cdp/execute", json!({"cmd": "Network.enable", "params": {}}))
            .await;
        self.post(
            "/goog/cdp/execute",
            json!({"cmd": "Network.setExtraHTTPHeaders", "params": {"headers": {"Sec-GPC": "1"}}}),
        )
        .await;
    }

    async fn cookies(&self) -> Value {
        self.get("/cookie").await
    }

    async fn local_storage_len(&self) -> u64 {
        self.post(
            "/execute/sync",
            json!({"script": "return window.localStorage.length + window.sessionStorage.length;", "args": []}),
        )
        .await
        .as_u64()
        .unwrap_or(99)
    }

    /// Saves a screenshot of the page (with STEWARD_UPDATE_SCREENSHOTS=1)
    /// after checking it for accessibility.
    async fn screenshot(&self, name: &str) {
        use base64::Engine;
        self.check_accessible().await;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        assert!(bytes.starts_with(b"\x89PNG"), "a PNG screenshot");
        if std::env::var("STEWARD_UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/screenshots");
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
        }
    }

    async fn quit(self) {
        let _ = self.http.delete(self.base.to_string()).send().await;
        let _ = self.session;
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A code for the next 30-second step not used yet (TOTP codes work once).
async fn fresh_code(secret: &TotpSecret, used: &mut u64) -> String {
    loop {
        let step = now() / 30;
        if step > *used {
            *used = step;
            return totp::totp(secret, now(), &TotpParams::default());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Signs in, enrols TOTP from the page (as a person would from the QR
/// code's secret), signs out and in again with a code.
async fn sign_in_with_totp(b: &Browser, user: &str, password: &str) {
    b.open("/login").await;
    b.fill("#username", user).await;
    b.fill("#password", password).await;
    b.submit("button[type=submit]").await;
    assert_eq!(
        b.path().await,
        "/security/mfa",
        "a role with personal data must enrol first"
    );
    b.submit("main button[type=submit]").await;
    b.find("figure.qr svg").await;
    let secret = TotpSecret::from_base32(&b.text("#totp-secret").await).expect("base32 secret on the page");
    let mut used = 0;
    let code = fresh_code(&secret, &mut used).await;
    b.fill("#f-code", &code).await;
    b.submit("main form button[type=submit]").await;
    let codes = b.find_all("#recovery-codes li").await;
    assert_eq!(codes.len(), 10, "recovery codes shown once");
    b.submit("main form button[type=submit]").await; // sign out
    assert_eq!(b.path().await, "/login");
    b.fill("#username", user).await;
    b.fill("#password", password).await;
    b.fill("#code", "000000").await;
    b.submit("button[type=submit]").await;
    assert!(b.visible_text().await.contains("wrong"), "a wrong code is refused");
    let code = fresh_code(&secret, &mut used).await;
    b.fill("#username", user).await;
    b.fill("#password", password).await;
    b.fill("#code", &code).await;
    b.submit("button[type=submit]").await;
    assert_eq!(b.path().await, "/");
    assert!(b.text("header").await.contains(user));
}

async fn sign_out(b: &Browser) {
    b.submit("header form.inline button").await;
    assert_eq!(b.path().await, "/login");
}

async fn app_with_rep(backend: Backend) -> Option<TestApp> {
    let app = spawn_app_with_inventory(backend, Some(REP_ROLE)).await?;
    app.service
        .create_user("rep-user", "rep", Zeroizing::new("rep-password-long".into()))
        .await
        .unwrap();
    Some(app)
}

fn driver() -> Option<String> {
    let d = std::env::var("STEWARD_TEST_WEBDRIVER").ok();
    if d.is_none() {
        eprintln!("skipped: STEWARD_TEST_WEBDRIVER is not set");
    }
    d
}

/// Sign-in with TOTP; a contact refused for minimisation, then fixed;
/// search; the purpose switch hides and shows fields; nothing personal in
/// URLs, titles or client-side storage.
async fn staff_console(app: &TestApp, driver: &str) {
    let b = Browser::start(driver, &format!("http://{}", app.addr)).await;
    b.open("/login").await;
    b.screenshot("sign-in").await;
    // Keyboard: the first Tab reaches the skip link, the next the form.
    assert_eq!(b.tab().await, "A.skip #main");
    assert_eq!(b.tab().await, "A.brand /");
    assert_eq!(b.tab().await, "INPUT. username");
    sign_in_with_totp(&b, "rep-user", "rep-password-long").await;
    // The navigation follows the role's grants in the inventory (a custom role here).
    for link in ["/contacts", "/organizations", "/deals"] {
        assert_eq!(b.find_all(&format!("nav a[href='{link}']")).await.len(), 1, "{link}");
    }
    assert!(b.find_all("nav a[href='/audit']").await.is_empty());
    // The purpose selector: the role's default, and the fields it allows.
    assert!(b.text("#purpose-fields").await.contains("job_title"));
    assert!(!b.text("#purpose-fields").await.contains("street"));

    b.open("/contacts/new").await;
    b.fill("#f-given_name", "Grace").await;
    b.fill("#f-family_name", "Hopper").await;
    b.fill("#f-email", "grace.hopper@example.org").await;
    b.fill("#f-job_title", "Rear admiral").await;
    b.fill("#f-street", "1 Navy Yard").await;
    b.submit("main form.card button[type=submit]").await;
    let error = b.text(".field.invalid .error").await;
    assert!(
        error.contains("not needed"),
        "minimisation refusal on the street field: {error}"
    );
    assert_eq!(b.find_all(".field.invalid").await.len(), 1, "only the street is marked");
    b.screenshot("contact-minimisation-error").await;
    // Fixed: the street is collected for customer service as well.
    b.click("input[name=purposes][value=customer_service]").await;
    b.submit("main form.card button[type=submit]").await;
    let path = b.path().await;
    assert!(
        path.starts_with("/contacts/") && path.ends_with("?done=created"),
        "{path}"
    );
    assert!(b.visible_text().await.contains("Contact created."));
    assert_eq!(b.text("dd[data-field=job_title]").await, "Rear admiral");
    assert!(
        b.find_all("dd[data-field=street]").await.is_empty(),
        "sales does not see the street"
    );
    b.screenshot("contact").await;

    // Search by exact e-mail: posted, so the address never reaches the URL.
    b.open("/contacts").await;
    b.fill("#q", "grace.hopper@example.org").await;
    b.submit("form.search button").await;
    assert_eq!(b.path().await, "/contacts");
    let rows = b.find_all("#contacts tbody tr").await;
    assert_eq!(rows.len(), 1);
    assert!(b.text("#contacts").await.contains("Hopper"));
    b.fill("#q", "hopper").await;
    b.submit("form.search button").await;
    assert_eq!(b.find_all("#contacts tbody tr").await.len(), 1, "word search");
    b.screenshot("contacts").await;
    b.submit("#contacts a").await;
    let contact_path = b.path().await;

    // Switch to customer service: the street appears, the job title goes.
    b.click("#purpose option[value=customer_service]").await;
    b.submit("form.purpose button").await;
    assert_eq!(b.path().await, contact_path, "back to the same page");
    assert_eq!(b.text("dd[data-field=street]").await, "1 Navy Yard");
    assert!(b.find_all("dd[data-field=job_title]").await.is_empty());
    assert!(b.text("#purpose-fields").await.contains("street"));

    // CSV import: a file chosen in the browser, progress, then the report
    // per line (a field no purpose needs, a duplicate), never values.
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(
        &csv,
        "given_name,family_name,email,street,purposes\n\
         Katherine,Johnson,katherine@example.org,,sales\n\
         Dorothy,Vaughan,dorothy@example.org,1 Langley Way,sales\n\
         Kathy,Johnson,katherine@example.org,,sales\n",
    )
    .unwrap();
    b.open("/contacts").await;
    b.submit("a[href='/contacts/import']").await;
    let file = b.find("#f-file").await;
    b.post(
        &format!("/element/{file}/value"),
        json!({"text": csv.display().to_string()}),
    )
    .await;
    b.submit("#import-form button[type=submit]").await;
    let summary = b.text("#import-summary").await;
    assert_eq!(summary, "Imported 1 contacts; 2 rows refused.");
    let report = b.text("#import-errors").await;
    assert!(report.contains("Street is not needed"), "{report}");
    assert!(report.contains("already has this email"), "{report}");
    assert!(
        !report.contains("Langley") && !report.contains("katherine@"),
        "{report}"
    );
    assert_eq!(b.find_all("#import-errors tr[data-line='3']").await.len(), 1);
    assert_eq!(b.find_all("#import-errors tr[data-line='4']").await.len(), 1);
    b.screenshot("contact-import").await;

    // Nothing personal in titles, URLs or storage; the session cookie is HttpOnly.
    let title = b.get("/title").await;
    assert!(!title.as_str().unwrap().contains("Hopper"), "{title}");
    assert!(!b.path().await.contains("grace"));
    assert_eq!(b.local_storage_len().await, 0);
    for c in b.cookies().await.as_array().unwrap() {
        if c["name"] == "steward_session" {
            assert_eq!(c["httpOnly"], true);
            assert_eq!(c["sameSite"], "Strict");
        }
        assert!(!c["value"].as_str().unwrap().contains("grace"));
    }
    sign_out(&b).await;
    b.quit().await;
}

/// A person withdraws consent and files an erasure request in the portal
/// (with GPC on); the privacy officer sees the withdrawal, verifies and
/// fulfils the request in the console; the contact is gone.
async fn portal_to_console(app: &TestApp, driver: &str) {
    let id = app
        .create_contact(
            "marketing",
            json!({"given_name": "Erin", "family_name": "Example", "email": "erin@example.org", "purposes": ["marketing_email"]}),
        )
        .await;
    let r = app
        .post(
            &format!("/api/v1/contacts/{id}/consents"),
            "marketing",
            json!({"purpose": "marketing_email", "granted": true}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let person = Browser::start(driver, &format!("http://{}", app.addr)).await;
    person.send_gpc().await;
    person.open("/privacy").await;
    assert!(person
        .text("#gpc")
        .await
        .contains("Global Privacy Control signal was applied"));
    person.screenshot("privacy-portal").await;
    person.fill("#consent-form input[name=email]", "erin@example.org").await;
    person.click("#consent-form option[value=marketing_email]").await;
    person.submit("#consent-form button[value=withdraw]").await;
    assert!(person.visible_text().await.contains("withdrawal is recorded"));

    // Same answer for an unknown address.
    person.open("/privacy").await;
    person
        .fill("#request-form input[name=email]", "nobody@example.org")
        .await;
    person.click("#request-form input[value=erasure]").await;
    person.submit("#request-form button").await;
    let unknown = person.visible_text().await;
    person.open("/privacy").await;
    person.fill("#request-form input[name=email]", "erin@example.org").await;
    person.click("#request-form input[value=erasure]").await;
    person.submit("#request-form button").await;
    assert_eq!(
        person.visible_text().await,
        unknown,
        "same answer for known and unknown addresses"
    );
    let mail = app.service.outbox(true).await.unwrap();
    let body = &mail
        .iter()
        .rev()
        .find(|m| m.kind == "dsr.verification" && m.message.to == "erin@example.org")
        .expect("code mailed")
        .message
        .body;
    let code = body.split("\"token\": \"").nth(1).unwrap().split('"').next().unwrap();
    person.fill("input[name=code]", code).await;
    person.submit("main form button").await;
    let reference = person.text("#reference").await;
    // Status, with the reference and the address.
    person.open("/privacy").await;
    person
        .fill("form[action='/privacy/status'] input[name=reference]", &reference)
        .await;
    person
        .fill("form[action='/privacy/status'] input[name=email]", "erin@example.org")
        .await;
    person.submit("form[action='/privacy/status'] button").await;
    assert_eq!(person.text("#request-status dd.status").await, "in_progress");
    person.quit().await;

    // The privacy officer.
    let dpo = Browser::start(driver, &format!("http://{}", app.addr)).await;
    sign_in_with_totp(&dpo, "dpo-user", "dpo-password-long").await;
    dpo.open(&format!("/contacts/{id}")).await;
    assert_eq!(
        dpo.text("#consents tr[data-purpose=marketing_email] td.status").await,
        "withdrawn",
        "the portal's withdrawal is visible in the console"
    );
    dpo.open("/requests").await;
    assert!(dpo.text("#requests").await.contains("erasure"));
    assert!(dpo.find_all("#requests .badge").await.len() >= 2);
    dpo.screenshot("request-queue").await;
    dpo.open(&format!("/requests/{reference}")).await;
    dpo.submit("#fulfil").await;
    assert!(dpo.visible_text().await.contains("Request fulfilled."));
    assert!(dpo.visible_text().await.contains("completed"));
    dpo.open(&format!("/contacts/{id}")).await;
    assert!(
        dpo.visible_text().await.contains("contact with this id"),
        "the contact is gone"
    );
    let r = app.get(&format!("/api/v1/contacts/{id}"), "dpo").await;
    assert_eq!(r.status, 404);

    // The audit viewer verifies the log.
    dpo.open("/audit").await;
    dpo.find("#audit tbody tr").await;
    dpo.screenshot("audit").await;
    dpo.submit("#verify").await;
    assert!(dpo.text("#verify-result").await.contains("The audit log verifies"));

    // A breach: opened from the register, its clock counting down in the page.
    dpo.open("/incidents").await;
    dpo.screenshot("incidents").await;
    dpo.fill("#f-title", "Laptop left on a train").await;
    dpo.fill("#f-description", "An unencrypted export may have been on it.")
        .await;
    dpo.submit("#incident-form button[type=submit]").await;
    let path = dpo.path().await;
    assert!(path.starts_with("/incidents/"), "{path}: {}", dpo.visible_text().await);
    let before = dpo.text("time.countdown").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let after = dpo.text("time.countdown").await;
    assert!(after.contains("left"), "{after}");
    assert_ne!(before, after, "the countdown is live (the page's script ticks it)");
    dpo.screenshot("incident").await;
    for (path, name) in [
        ("/retention", "retention"),
        ("/notices", "notices"),
        ("/reports/art30", "art30"),
        ("/reports/security", "security-report"),
    ] {
        dpo.open(path).await;
        dpo.screenshot(name).await;
    }
    // The compliance report: chosen on a console page, opened as its own
    // self-contained page with charts (its inline styles allowed, no script).
    dpo.open("/reports/compliance").await;
    dpo.submit("#compliance-form button[type=submit]").await;
    assert!(dpo.path().await.starts_with("/reports/compliance/report?"));
    assert!(!dpo.find_all("figure.chart svg").await.is_empty(), "charts drawn");
    assert!(dpo.text("#dsr").await.contains("Data-subject requests"));
    let styled = dpo
        .script("return getComputedStyle(document.querySelector('th')).backgroundColor;")
        .await;
    assert_eq!(
        styled, "rgb(242, 244, 248)",
        "the report's inline styles apply under its CSP"
    );
    dpo.screenshot("compliance-report").await;
    dpo.quit().await;
}

/// Every page of the console answers for its roles (no 5xx, no panic), and
/// carries the security headers.
async fn pages_answer(app: &TestApp) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("http://{}{p}", app.addr);
    let r = client.get(url("/privacy")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    assert_eq!(r.headers()["referrer-policy"], "no-referrer");
    let r = client.get(url("/contacts")).send().await.unwrap();
    assert_eq!(r.status(), 303, "no session: to the sign-in page");
    assert_eq!(r.headers()["location"], "/login");
    // A form without its CSRF token is refused.
    let r = client
        .post(url("/login"))
        .form(&[("username", "admin-user"), ("password", "admin-password-long")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let r = client
        .post(url("/logout"))
        .header("cookie", &cookie)
        .form(&[("_csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    for page in [
        "/",
        "/admin/users",
        "/admin/settings",
        "/reports/art30",
        "/reports/security",
        "/security",
    ] {
        let r = client.get(url(page)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
        let text = r.text().await.unwrap();
        assert!(text.contains("<main id=\"main\">"), "{page}");
    }
    // The audit log is for the privacy officer and the auditor; an admin
    // gets the console's refusal page, not the log.
    let r = client
        .get(url("/audit"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("<main id=\"main\">"));

    // A token made on the security page works on the API and is shown once.
    let html = client
        .get(url("/security"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = csrf_of(&html);
    let r = client
        .post(url("/security/tokens"))
        .header("cookie", &cookie)
        .form(&[
            ("_csrf", csrf.as_str()),
            ("name", "backup job"),
            ("expires_in_days", "30"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    let secret = html
        .split("id=\"new-token\">")
        .nth(1)
        .and_then(|r| r.split('<').next())
        .unwrap()
        .to_string();
    assert!(secret.starts_with("stw_"), "{secret}");
    let r = client
        .get(url("/api/v1/tokens"))
        .bearer_auth(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("backup job"));
    let html = client
        .get(url("/security"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("backup job") && !html.contains(&secret),
        "listed, never shown again"
    );
    let r = client
        .post(url("/security/tokens"))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str()), ("expires_in_days", "-3")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);

    // Signing a user out everywhere from the users page revokes their tokens.
    let users = app.get("/api/v1/users", "admin").await;
    let sales = users.body["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", users.text))
        .iter()
        .find(|u| u["username"] == "sales-user")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(app.get("/api/v1/contacts", "sales").await.status, 200);
    let r = client
        .post(url(&format!("/admin/users/{sales}/revoke-tokens")))
        .header("cookie", &cookie)
        .form(&[("_csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.get("/api/v1/contacts", "sales").await.status, 401);
}

macro_rules! browser_tests {
    ($($name:ident),*) => {
        mod sqlite_browser {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(driver) = super::driver() else { return };
                    let app = super::app_with_rep(super::Backend::Sqlite).await.expect("sqlite");
                    super::$name(&app, &driver).await;
                    app.stop().await;
                }
            )*
        }
        mod postgres_browser {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(driver) = super::driver() else { return };
                    let Some(app) = super::app_with_rep(super::Backend::Postgres).await else {
                        eprintln!("skipped: STEWARD_TEST_DATABASE_URL is not set");
                        return;
                    };
                    super::$name(&app, &driver).await;
                    app.stop().await;
                }
            )*
        }
    };
}

browser_tests!(staff_console, portal_to_console);

/// The import page over plain HTTP, as a browser posts it (multipart):
/// progress page, then the per-line report; the CSRF token is checked and
/// another user cannot see the report.
async fn import_reports_per_line(app: &TestApp) {
    // Sign-in without a second factor, so plain HTTP can hold the session.
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"require_mfa": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("http://{}{p}", app.addr);
    let session = |user: &'static str, password: &'static str| {
        let client = client.clone();
        let login = url("/login");
        async move {
            let r = client
                .post(login)
                .form(&[("username", user), ("password", password)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 303);
            r.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_string()
        }
    };
    let cookie = session("sales-user", "sales-password-long").await;
    let page = client
        .get(url("/contacts/import"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let status = page.status();
    let html = page.text().await.unwrap();
    assert_eq!(status, 200, "{html}");
    let csrf = html
        .split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap()
        .to_string();
    let csv = "given_name,email\nAda,ada@example.org\nBob\nAda2,ada@example.org\n";
    let body = |csrf: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"_csrf\"\r\n\r\n{csrf}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: text/csv\r\n\r\n{csv}\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"purposes\"\r\n\r\nsales\r\n\
             --XyZ--\r\n"
        )
    };
    let post = |b: String| {
        client
            .post(url("/contacts/import"))
            .header("cookie", &cookie)
            .header("content-type", "multipart/form-data; boundary=XyZ")
            .body(b)
            .send()
    };
    assert_eq!(post(body("forged")).await.unwrap().status(), 403, "CSRF checked");
    let r = post(body(&csrf)).await.unwrap();
    assert_eq!(r.status(), 303);
    let job = r.headers()["location"].to_str().unwrap().to_string();
    assert!(job.starts_with("/contacts/import/"), "{job}");
    let mut done = String::new();
    for _ in 0..100 {
        let page = client.get(url(&job)).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let text = page.text().await.unwrap();
        if text.contains("id=\"import-summary\"") {
            done = text;
            break;
        }
        assert!(
            text.contains("http-equiv=\"refresh\""),
            "the progress page reloads itself"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(done.contains("Imported 1 contacts; 2 rows refused."), "{done}");
    assert!(
        done.contains("data-line=\"3\"") && done.contains("data-line=\"4\""),
        "{done}"
    );
    assert!(!done.contains("ada@example.org"), "no values in the report");
    let r = app.get("/api/v1/contacts?email=ada@example.org", "sales").await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.text);
    // Someone else's session does not see the report.
    let other = session("marketing-user", "marketing-password-long").await;
    let page = client.get(url(&job)).header("cookie", &other).send().await.unwrap();
    assert_eq!(page.status(), 404);
}

/// A console session over plain HTTP (second factors switched off so a
/// test without a browser can hold one): the client and its cookie.
async fn http_session(app: &TestApp, user: &str) -> (reqwest::Client, String) {
    let r = app
        .call(
            reqwest::Method::PUT,
            "/api/v1/settings",
            Some("admin"),
            None,
            Some(json!({"require_mfa": false})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let password = format!("{}-password-long", user.trim_end_matches("-user"));
    let r = client
        .post(format!("http://{}/login", app.addr))
        .form(&[("username", user), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    (client, cookie)
}

fn csrf_of(html: &str) -> String {
    html.split("name=\"_csrf\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_else(|| panic!("no CSRF token in {html}"))
        .to_string()
}

/// The breach register's incident page: scope from the audit log, risk,
/// containment, both notifications and a note, each through its form.
async fn incident_page_actions(app: &TestApp) {
    let contact = app
        .create_contact(
            "sales",
            json!({"given_name": "Ida", "email": "ida@example.org", "purposes": ["sales"]}),
        )
        .await;
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{contact}"), "sales").await.status,
        200
    );
    let r = app
        .post(
            "/api/v1/incidents",
            "dpo",
            json!({"title": "Sales token leaked", "description": "Pushed to a public repository.",
                   "category": "confidentiality", "source": "compromised_account",
                   "started_at": (chrono::Utc::now() - chrono::Duration::hours(1)).to_rfc3339(),
                   "aware_at": chrono::Utc::now().to_rfc3339()}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.body["id"].as_str().unwrap().to_string();
    let (client, cookie) = http_session(app, "dpo-user").await;
    let url = |p: &str| format!("http://{}{p}", app.addr);
    // Opened from the register's form too.
    let html = client
        .get(url("/incidents"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("name=\"aware_at\" type=\"text\" value=\"20"),
        "prefilled with now"
    );
    let csrf = csrf_of(&html);
    let mut form = vec![
        ("_csrf", csrf.as_str()),
        ("title", "Laptop lost"),
        ("description", "Left on a train."),
        ("category", "confidentiality"),
        ("source", "lost_device"),
    ];
    let r = client
        .post(url("/incidents"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(
        r.text().await.unwrap().contains("id=\"e-f-aware_at\""),
        "the error is on the field"
    );
    let now = chrono::Utc::now().to_rfc3339();
    form.push(("aware_at", now.as_str()));
    let r = client
        .post(url("/incidents"))
        .header("cookie", &cookie)
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(status, 303, "{}", r.text().await.unwrap());
    let page = client
        .get(url(&format!("/incidents/{id}")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("Not scoped yet."));
    assert!(html.contains("data-deadline="), "the 72-hour clock counts down");
    let csrf = csrf_of(&html);
    let act = |action: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let client = client.clone();
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        let to = url(&format!("/incidents/{id}/{action}"));
        async move {
            let mut form = vec![("_csrf", csrf.as_str())];
            form.extend(fields.iter().copied());
            let r = client
                .post(to)
                .header("cookie", &cookie)
                .form(&form)
                .send()
                .await
                .unwrap();
            let status = r.status();
            let text = r.text().await.unwrap();
            (status, text)
        }
    };
    let (status, text) = act("scope", vec![("user", "sales-user")]).await;
    assert_eq!(status, 303, "{text}");
    let (status, _) = act("risk", vec![]).await;
    assert_eq!(status, 303, "the proposal confirmed");
    let (status, text) = act("risk", vec![("level", "catastrophic")]).await;
    assert_eq!(status, 422, "a bad level is refused with the API's reason: {text}");
    let (status, _) = act(
        "containment",
        vec![("action", "revoke_sessions"), ("user", "sales-user")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = act("notify-regulator", vec![("reference", "ICO-123")]).await;
    assert_eq!(status, 303);
    let (status, _) = act(
        "notify-subjects",
        vec![("what_happened", "A token that can read your record was exposed.")],
    )
    .await;
    assert_eq!(status, 303);
    let (status, _) = act("note", vec![("text", "Token rotated by the sales team")]).await;
    assert_eq!(status, 303);
    let (status, _) = act("note", vec![("text", "forged"), ("_csrf", "x")]).await;
    assert_eq!(status, 303, "the first _csrf value counts");
    let r = client
        .post(url(&format!("/incidents/{id}/note")))
        .header("cookie", &cookie)
        .form(&[("_csrf", "forged"), ("text", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "CSRF checked");

    let html = client
        .get(url(&format!("/incidents/{id}?done=note")))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("The note was added to the timeline."));
    assert!(html.contains("id=\"incident-scope\""), "the scope is shown");
    assert!(!html.contains("ida@example.org"), "the page names no person");
    let scope = app.get(&format!("/api/v1/incidents/{id}/scope"), "dpo").await;
    assert_eq!(scope.status, 200, "{}", scope.text);
    assert!(
        scope.text.contains(&contact),
        "the read contact is in scope: {}",
        scope.text
    );
    let timeline = app.get(&format!("/api/v1/incidents/{id}/timeline"), "dpo").await;
    assert!(
        timeline.text.contains("Token rotated by the sales team"),
        "{}",
        timeline.text
    );
    let got = app.get(&format!("/api/v1/incidents/{id}"), "dpo").await;
    assert!(got.text.contains("ICO-123"), "{}", got.text);
}

/// Legal holds and restriction from the contact page, for the compliance
/// purpose only.
async fn contact_compliance_actions(app: &TestApp) {
    let id = app
        .create_contact(
            "sales",
            json!({"given_name": "Hal", "email": "hal@example.org", "purposes": ["sales"]}),
        )
        .await;
    let url = |p: &str| format!("http://{}{p}", app.addr);
    let (client, cookie) = http_session(app, "dpo-user").await;
    let page = |client: reqwest::Client, cookie: String, path: String| async move {
        let r = client.get(path).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(r.status(), 200);
        r.text().await.unwrap()
    };
    let html = page(client.clone(), cookie.clone(), url(&format!("/contacts/{id}"))).await;
    assert!(html.contains("id=\"hold-form\"") && html.contains("id=\"restriction-form\""));
    let csrf = csrf_of(&html);
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let client = client.clone();
        let cookie = cookie.clone();
        let csrf = csrf.clone();
        async move {
            let mut f = vec![("_csrf", csrf)];
            f.extend(form);
            let r = client
                .post(path)
                .header("cookie", &cookie)
                .form(&f)
                .send()
                .await
                .unwrap();
            (
                r.status(),
                r.headers().get("location").map(|l| l.to_str().unwrap().to_string()),
            )
        }
    };
    let (status, to) = post(
        url(&format!("/contacts/{id}/holds")),
        vec![("reason", "Pending litigation".into())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(to.as_deref(), Some(format!("/contacts/{id}?done=hold").as_str()));
    let r = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/contacts/{id}"),
            Some("sales"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 409, "the hold blocks deletion: {}", r.text);
    let holds = app.get(&format!("/api/v1/contacts/{id}/legal-holds"), "dpo").await;
    let hold = holds
        .text
        .split("\"id\":\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let (status, _) = post(url(&format!("/contacts/{id}/holds/{hold}/release")), vec![]).await;
    assert_eq!(status, 303);
    let html = page(
        client.clone(),
        cookie.clone(),
        url(&format!("/contacts/{id}?done=released")),
    )
    .await;
    assert!(html.contains("(released)"), "kept on record");

    let (status, _) = post(
        url(&format!("/contacts/{id}/restriction")),
        vec![("restricted", "true".into())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status,
        403,
        "restricted"
    );
    let html = page(client.clone(), cookie.clone(), url(&format!("/contacts/{id}"))).await;
    assert!(html.contains("Lift the restriction"));
    let (status, _) = post(
        url(&format!("/contacts/{id}/restriction")),
        vec![("restricted", "false".into())],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.get(&format!("/api/v1/contacts/{id}"), "sales").await.status,
        200,
        "lifted"
    );

    // A sales session sees no such forms, and posting them is refused.
    let (sales_client, sales_cookie) = http_session(app, "sales-user").await;
    let html = page(
        sales_client.clone(),
        sales_cookie.clone(),
        url(&format!("/contacts/{id}")),
    )
    .await;
    assert!(!html.contains("hold-form") && !html.contains("restriction-form"));
    let r = sales_client
        .post(url(&format!("/contacts/{id}/restriction")))
        .header("cookie", &sales_cookie)
        .form(&[("_csrf", csrf_of(&html).as_str()), ("restricted", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

/// A correction asked for in the portal: verified by the e-mailed code,
/// carried out by the privacy officer; bad values refused without echo.
async fn portal_rectification(app: &TestApp) {
    let id = app
        .create_contact(
            "sales",
            json!({"given_name": "Rita", "email": "rita@example.org", "job_title": "Ensign", "purposes": ["sales"]}),
        )
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = |p: &str| format!("http://{}{p}", app.addr);
    let post = |path: &'static str, form: Vec<(&'static str, &'static str)>| {
        let client = client.clone();
        let to = url(path);
        async move {
            let r = client.post(to).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let html = client.get(url("/privacy")).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("value=\"rectification\"") && html.contains("id=\"change-field\""));
    let (status, text) = post(
        "/privacy/request",
        vec![
            ("email", "rita@example.org"),
            ("kind", "rectification"),
            ("change_field", "phone"),
            ("change_value", "not a phone"),
        ],
    )
    .await;
    assert_eq!(status, 422, "{text}");
    assert!(!text.contains("not a phone"), "the value is not echoed");
    let (status, _) = post(
        "/privacy/request",
        vec![("email", "rita@example.org"), ("kind", "rectification")],
    )
    .await;
    assert_eq!(status, 422, "a correction needs what and how");
    let (status, text) = post(
        "/privacy/request",
        vec![
            ("email", "rita@example.org"),
            ("kind", "rectification"),
            ("change_field", "job_title"),
            ("change_value", "Captain"),
        ],
    )
    .await;
    assert_eq!(status, 202, "{text}");
    let mail = app.service.outbox(true).await.unwrap();
    let body = &mail
        .iter()
        .rev()
        .find(|m| m.kind == "dsr.verification" && m.message.to == "rita@example.org")
        .unwrap()
        .message
        .body;
    let code = body
        .split("\"token\": \"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    let r = client
        .post(url("/privacy/verify"))
        .form(&[("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let reference = text
        .split("id=\"reference\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_string();
    let r = app
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/dsr/{reference}/fulfill"),
            Some("dpo"),
            None,
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let c = app.get(&format!("/api/v1/contacts/{id}"), "sales").await;
    assert_eq!(c.body["job_title"], "Captain", "{}", c.text);
    // The public API keeps its contract: rectification goes to staff there.
    let r = app
        .call(
            reqwest::Method::POST,
            "/api/v1/public/dsr",
            None,
            None,
            Some(json!({"kind": "rectification", "regime": "gdpr", "email": "rita@example.org"})),
        )
        .await;
    assert_eq!(r.status, 422);
}

crate::stories!(
    portal_rectification,
    pages_answer,
    import_reports_per_line,
    incident_page_actions,
    contact_compliance_actions
);
