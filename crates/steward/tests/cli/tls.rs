//! `steward serve --tls-cert … --tls-key …`: HTTPS with rustls (TLS 1.3 and
//! 1.2, AEAD suites only, HSTS on every response), clear refusals of bad
//! certificate files, and the same graceful SIGTERM as plain HTTP.
//!
//! The certificate is made with the `openssl` command; without it these
//! tests are skipped with a note. Requests are made with a small HTTP/1.1
//! client over tokio-rustls, so that the tests need no TLS-enabled HTTP
//! client.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CipherSuite, ClientConfig, ProtocolVersion, RootCertStore, SupportedProtocolVersion};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{eventually, Server, Steward};

const HSTS: &str = "max-age=63072000; includeSubDomains";

/// A self-signed certificate for `localhost` and 127.0.0.1 and its key,
/// written into `dir`; `None` (with a note) when `openssl` is missing.
fn make_certificate(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        // A leaf, not a CA: WebPKI clients (rustls among them) refuse a
        // CA certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match status {
        Ok(out) if out.status.success() => Some((cert, key)),
        Ok(out) => panic!("openssl failed: {}", String::from_utf8_lossy(&out.stderr)),
        Err(e) => {
            eprintln!("note: skipped: cannot run openssl ({e})");
            None
        }
    }
}

/// A client that trusts only `cert` and offers only `versions`.
fn client_config(cert: &Path, versions: &[&'static SupportedProtocolVersion]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let mut config = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(config)
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    version: ProtocolVersion,
    suite: CipherSuite,
    alpn: Option<Vec<u8>>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// One HTTP/1.1 request over TLS (`Connection: close`), read to the end.
async fn request(
    addr: &str,
    config: &Arc<ClientConfig>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&Value>,
) -> std::io::Result<Reply> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    let (version, suite, alpn) = {
        let (_, conn) = tls.get_ref();
        (
            conn.protocol_version().unwrap(),
            conn.negotiated_cipher_suite().unwrap().suite(),
            conn.alpn_protocol().map(<[u8]>::to_vec),
        )
    };
    let body = body.map(Value::to_string).unwrap_or_default();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    if let Some(t) = token {
        head.push_str(&format!("Authorization: Bearer {t}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    tls.write_all(head.as_bytes()).await?;
    tls.write_all(body.as_bytes()).await?;
    tls.flush().await?;
    let mut raw = Vec::new();
    tls.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other(format!("no HTTP response: {text:?}")))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.strip_prefix("HTTP/1.1 "))
        .and_then(|l| l.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line: {head:?}")))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked { dechunk(rest) } else { rest.to_string() };
    Ok(Reply {
        status,
        headers,
        body,
        version,
        suite,
        alpn,
    })
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = s.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        s = rest[n..].trim_start_matches("\r\n");
    }
    out
}

/// `host:port` of a server's `https://` base URL.
fn addr_of(server: &Server) -> String {
    server
        .base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("serve with TLS prints an https:// URL: {}", server.base))
        .to_string()
}

/// Starts `serve` with the certificate and waits until `/healthz` answers
/// 200 over TLS.
async fn start_tls(steward: &Steward, cert: &Path, key: &Path, config: &Arc<ClientConfig>) -> Server {
    let server = Server::spawn(
        steward,
        &[
            OsStr::new("--tls-cert"),
            cert.as_os_str(),
            OsStr::new("--tls-key"),
            key.as_os_str(),
        ],
    );
    let addr = addr_of(&server);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = request(&addr, config, "GET", "/healthz", None, None).await {
            if r.status == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline,
            "GET /healthz over TLS did not answer 200; stderr:\n{}",
            server.stderr()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server
}

#[tokio::test]
async fn serves_https_with_hsts_on_tls13_and_tls12() {
    let s = Steward::new();
    let Some((cert, key)) = make_certificate(s.tmp.path(), "server") else {
        return;
    };
    let modern = client_config(&cert, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let mut server = start_tls(&s, &cert, &key, &modern).await;
    let addr = addr_of(&server);
    let first = server.stdout().lines().next().unwrap_or_default().to_string();
    assert!(first.starts_with("Steward is serving on https://127.0.0.1:"), "{first}");
    assert!(
        eventually(Duration::from_secs(10), || server.stdout().contains("token create")),
        "serve prints a first-run hint:\n{}",
        server.stdout()
    );
    assert!(
        server.stdout().contains(&format!("https://{addr}/api/v1/contacts")),
        "the hint uses the https URL:\n{}",
        server.stdout()
    );

    // A client offering both gets TLS 1.3, HTTP/1.1 and HSTS.
    let r = request(&addr, &modern, "GET", "/healthz", None, None).await.unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
    assert!(r.header("x-request-id").is_some(), "the router's layers apply over TLS");
    assert_eq!(r.version, ProtocolVersion::TLSv1_3);
    assert_eq!(r.alpn.as_deref(), Some(&b"http/1.1"[..]));

    // Errors carry it too, and are the usual problem+json.
    let r = request(&addr, &modern, "GET", "/no/such/path", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));
    assert_eq!(r.header("content-type"), Some("application/problem+json"));
    let r = request(&addr, &modern, "GET", "/api/v1/contacts", None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 401, "the API needs a token over TLS too");
    assert_eq!(r.header("strict-transport-security"), Some(HSTS));

    // A TLS 1.2-only client gets TLS 1.2 with an AEAD suite.
    let legacy = client_config(&cert, &[&rustls::version::TLS12]);
    let r = request(&addr, &legacy, "GET", "/healthz", None, None).await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.version, ProtocolVersion::TLSv1_2);
    assert!(
        matches!(
            r.suite,
            CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
                | CipherSuite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        ),
        "TLS 1.2 uses an ECDHE AEAD suite: {:?}",
        r.suite
    );

    // A client that does not trust the certificate cannot connect.
    let (other_cert, _) = make_certificate(s.tmp.path(), "other").unwrap();
    let stranger = client_config(&other_cert, &[&rustls::version::TLS13]);
    assert!(request(&addr, &stranger, "GET", "/healthz", None, None).await.is_err());

    // Plain HTTP to the HTTPS port gets no HTTP response ...
    let reply = plain_http(&addr);
    assert!(!reply.starts_with(b"HTTP/"), "plain HTTP is not answered: {reply:?}");
    // ... and a client that connects and says nothing holds up nobody.
    let _idle = std::net::TcpStream::connect(&addr).unwrap();
    let r = request(&addr, &modern, "GET", "/healthz", None, None).await.unwrap();
    assert_eq!(r.status, 200, "the server keeps serving");

    // SIGTERM: a clean, prompt exit even with the idle connection open.
    let started = Instant::now();
    let status = server.terminate();
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "shutdown does not wait for handshakes: {:?}",
        started.elapsed()
    );
    assert!(server.stderr().contains("Steward stopped"), "{}", server.stderr());
}

/// Sends a plain HTTP request and returns whatever comes back before the
/// connection closes (or 5 s pass).
fn plain_http(addr: &str) -> Vec<u8> {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = Vec::new();
    let _ = tcp.read_to_end(&mut reply);
    reply
}

#[tokio::test]
async fn tls12_cbc_suites_are_refused() {
    let s = Steward::new();
    let Some((cert, key)) = make_certificate(s.tmp.path(), "server") else {
        return;
    };
    let config = client_config(&cert, &[&rustls::version::TLS13]);
    let mut server = start_tls(&s, &cert, &key, &config).await;
    let addr = addr_of(&server);
    // openssl can offer what rustls clients cannot: TLS 1.2 with CBC only.
    let handshake = |cipher: &str| {
        Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-tls1_2", "-cipher", cipher])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .output()
            .unwrap()
    };
    let out = handshake("ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA:ECDHE-ECDSA-AES128-SHA256");
    assert!(
        !out.status.success(),
        "a CBC-only TLS 1.2 client is refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = handshake("ECDHE-ECDSA-AES128-GCM-SHA256");
    assert!(
        out.status.success(),
        "the same client with an AEAD suite connects:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(server.terminate().code(), Some(0));
}

#[tokio::test]
async fn bad_certificate_or_key_files_are_refused_by_name() {
    let s = Steward::new();
    let Some((cert, key)) = make_certificate(s.tmp.path(), "server") else {
        return;
    };
    let (_, other_key) = make_certificate(s.tmp.path(), "other").unwrap();
    let junk = s.path("junk.pem");
    std::fs::write(&junk, "this is not PEM\n").unwrap();
    let missing = s.path("missing.pem");
    let key_text = std::fs::read_to_string(&key).unwrap();
    let key_body: String = key_text.lines().filter(|l| !l.starts_with("-----")).collect();

    let cases: [(&Path, &Path, &Path, &str); 6] = [
        (&missing, &key, &missing, "cannot read the TLS certificate file"),
        (&cert, &missing, &missing, "cannot read the TLS key file"),
        (&junk, &key, &junk, "holds no PEM certificate"),
        (&cert, &junk, &junk, "holds no private key"),
        (&cert, &cert, &cert, "holds no private key"),
        (&cert, &other_key, &other_key, "does not match the certificate"),
    ];
    for (c, k, named, says) in cases {
        let out = s.run([
            OsStr::new("serve"),
            OsStr::new("--listen"),
            OsStr::new("127.0.0.1:0"),
            OsStr::new("--tls-cert"),
            c.as_os_str(),
            OsStr::new("--tls-key"),
            k.as_os_str(),
        ]);
        let err = out.refused();
        assert!(err.contains(says), "{err}");
        assert!(
            err.contains(&named.display().to_string()),
            "the error names {named:?}: {err}"
        );
        assert!(!err.contains(&key_body[..20]), "no key material in errors: {err}");
        assert!(out.stdout.is_empty(), "nothing is served: {}", out.stdout);
    }
    assert!(!s.data_dir().exists(), "a refused serve creates no data dir");

    // Both flags or neither.
    let out = s.run([OsStr::new("serve"), OsStr::new("--tls-cert"), cert.as_os_str()]);
    out.expect_code(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_over_https_loses_no_acknowledged_write() {
    let s = Steward::initialised();
    let Some((cert, key)) = make_certificate(s.tmp.path(), "server") else {
        return;
    };
    s.create_user("sam", "sales");
    let token = s.create_token("sam");
    let config = client_config(&cert, &[&rustls::version::TLS13, &rustls::version::TLS12]);
    let mut server = start_tls(&s, &cert, &key, &config).await;
    let addr = addr_of(&server);

    let create = |i: usize| {
        let (addr, config, token) = (addr.clone(), Arc::clone(&config), token.clone());
        async move {
            let email = format!("person{i}@example.com");
            let body = json!({"given_name": format!("Person{i}"), "email": email, "purposes": ["sales"]});
            match request(&addr, &config, "POST", "/api/v1/contacts", Some(&token), Some(&body)).await {
                Ok(r) if r.status == 201 => r.json()["id"].as_str().map(|id| (id.to_string(), email)),
                _ => None,
            }
        }
    };
    let mut acknowledged = vec![create(0).await.expect("the first contact is created")];

    let done = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 1..=30 {
        let (work, done) = (create(i), Arc::clone(&done));
        tasks.push(tokio::spawn(async move {
            let result = work.await;
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
    assert_eq!(status.code(), Some(0), "stderr:\n{}", server.stderr());
    for t in tasks {
        if let Some(ack) = t.await.unwrap() {
            acknowledged.push(ack);
        }
    }
    assert!(
        acknowledged.len() >= 6,
        "the writes seen before SIGTERM were acknowledged"
    );
    assert!(!server.stderr().contains(&token), "server logs carry no token");

    // Restart (over HTTPS again): every acknowledged contact is there.
    let mut server = start_tls(&s, &cert, &key, &config).await;
    let addr = addr_of(&server);
    for (id, email) in &acknowledged {
        let r = request(
            &addr,
            &config,
            "GET",
            &format!("/api/v1/contacts/{id}"),
            Some(&token),
            None,
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200, "acknowledged contact {id} survives the restart");
        assert_eq!(r.json()["email"].as_str(), Some(email.as_str()));
    }
    assert_eq!(server.terminate().code(), Some(0));
}
