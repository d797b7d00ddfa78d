//! `steward bench`: throughput of the full pipeline against baselines taken
//! in the same run on the same machine, reported as ratios (see
//! PERFORMANCE.md). Benchmarks report; tests assert behaviour.
//!
//! Measured:
//! - baseline: raw SQLite inserts, one 10-column row per transaction (WAL,
//!   synchronous=NORMAL), and a bare axum handler returning 77 bytes of JSON
//!   under the same load generator;
//! - Steward: contact creates and reads over HTTP on SQLite, with
//!   authentication, purpose checks, minimisation, the field codec and
//!   blind indexes.
//!
//! The load generator is a minimal keep-alive HTTP/1.1 client on the same
//! machine, so both the baseline and Steward pay for it alike.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use serde_json::json;
use steward_service::{Config, FieldProtection, OpenOptions, Service};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zeroize::Zeroizing;

use crate::cli::{service_err, Cli};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A short run (a few seconds).
    #[arg(long)]
    pub quick: bool,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Contacts stored for the data-subject-request measures (default:
    /// 10,000 quick, 100,000 full; PERFORMANCE.md's target is stated at 1M).
    #[arg(long)]
    pub dsr_contacts: Option<usize>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Run only Steward's HTTP create and read measure with this read
    /// mode (`audited` or `unaudited`), for profiling.
    #[arg(long, hide = true)]
    pub only_http: Option<String>,
}

struct Figure {
    name: &'static str,
    value: f64,
    unit: &'static str,
}

pub async fn run(_cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
    let (rows, creates, reads) = if args.quick {
        (5_000, 5_000, 20_000)
    } else {
        (50_000, 50_000, 200_000)
    };
    let c = args.concurrency.max(1);
    let dir = tempfile_dir()?;
    if let Some(mode) = &args.only_http {
        let options = OpenOptions {
            audit_reads: mode != "unaudited",
            ..OpenOptions::default()
        };
        let (create_rate, read_rate) = steward_http(&dir.join("steward"), creates, reads, c, options).await?;
        let _ = std::fs::remove_dir_all(&dir);
        println!("creates {create_rate:.0}/s, reads ({mode}) {read_rate:.0}/s");
        return Ok(ExitCode::SUCCESS);
    }
    eprintln!(
        "steward bench: {} run, concurrency {c}, scratch dir {}",
        if args.quick { "quick" } else { "full" },
        dir.display()
    );

    eprintln!("[1/8] raw SQLite inserts, one row per transaction…");
    let raw_insert = raw_sqlite_inserts(&dir.join("raw.db"), rows)?;
    eprintln!("[2/8] bare axum small-JSON GET…");
    let axum_get = bare_axum(reads, c).await?;
    eprintln!("[3/8] Steward over HTTP (encrypted, audited)…");
    let full = OpenOptions::default();
    let (create_rate, read_rate) = steward_http(&dir.join("steward"), creates, reads, c, full).await?;
    eprintln!("[4/8] Steward over HTTP, fields in plaintext (comparison only)…");
    let plain = OpenOptions {
        protection: FieldProtection::PlaintextForBenchmark,
        ..full
    };
    let (plain_create, plain_read) = steward_http(&dir.join("plain"), creates, reads, c, plain).await?;
    eprintln!("[5/8] Steward over HTTP, reads not audited (comparison only)…");
    let unaudited = OpenOptions {
        audit_reads: false,
        ..full
    };
    let (_, unaudited_read) = steward_http(&dir.join("unaudited"), creates, reads, c, unaudited).await?;
    eprintln!("[6/8] audit verification and raw SHA-256…");
    let verify_entries = if args.quick { 200_000 } else { 2_000_000 };
    let verify_rate = steward_audit::bench_verify(verify_entries);
    let (auth_us, read_us) = auth_vs_read(&dir.join("auth"), if args.quick { 20_000 } else { 100_000 }).await?;
    let sha_rate = raw_sha256(verify_entries);
    let (stored, erasures) = if args.quick { (10_000, 200) } else { (100_000, 1_000) };
    let stored = args.dsr_contacts.unwrap_or(stored).max(erasures + 1);
    eprintln!("[7/8] data-subject requests: erasure and access export among {stored} contacts…");
    let dsr = dsr_bench(&dir.join("dsr"), stored, erasures).await?;
    eprintln!("[8/8] done");
    let _ = std::fs::remove_dir_all(&dir);

    let figures = [
        Figure {
            name: "baseline: raw SQLite insert, 1 row/txn",
            value: raw_insert,
            unit: "rows/s",
        },
        Figure {
            name: "baseline: bare axum GET (77 B JSON)",
            value: axum_get,
            unit: "req/s",
        },
        Figure {
            name: "baseline: SHA-256 of 300-byte entries",
            value: sha_rate,
            unit: "hashes/s",
        },
        Figure {
            name: "steward: create contact over HTTP",
            value: create_rate,
            unit: "req/s",
        },
        Figure {
            name: "steward: read contact over HTTP",
            value: read_rate,
            unit: "req/s",
        },
        Figure {
            name: "steward without encryption: create",
            value: plain_create,
            unit: "req/s",
        },
        Figure {
            name: "steward without encryption: read",
            value: plain_read,
            unit: "req/s",
        },
        Figure {
            name: "steward without read audit: read",
            value: unaudited_read,
            unit: "req/s",
        },
        Figure {
            name: "steward: audit verify",
            value: verify_rate,
            unit: "entries/s",
        },
        Figure {
            name: "token authentication (in process)",
            value: auth_us,
            unit: "µs",
        },
        Figure {
            name: "contact read (in process, audited)",
            value: read_us,
            unit: "µs",
        },
        Figure {
            name: "erasure request fulfilled, p50",
            value: dsr.erasure_p50_ms,
            unit: "ms",
        },
        Figure {
            name: "erasure request fulfilled, p99",
            value: dsr.erasure_p99_ms,
            unit: "ms",
        },
        Figure {
            name: "access export, 1,000 interactions, p99",
            value: dsr.export_p99_ms,
            unit: "ms",
        },
        Figure {
            name: "contacts stored during the DSR measures",
            value: dsr.stored as f64,
            unit: "contacts",
        },
    ];
    let ratios = [
        ("creates / raw SQLite insert", create_rate / raw_insert, 1.0),
        ("reads / bare axum GET", read_rate / axum_get, 0.5),
        ("encrypted / plaintext creates", create_rate / plain_create, 0.9),
        ("encrypted / plaintext reads", read_rate / plain_read, 0.9),
        ("audited / unaudited reads", read_rate / unaudited_read, 0.6),
        ("audit verify, millions of entries/s", verify_rate / 1.0e6, 1.0),
        ("audit verify / raw SHA-256", verify_rate / sha_rate, 0.0),
        ("contact read / token authentication cost", read_us / auth_us, 20.0),
        ("10 ms / erasure p99", 10.0 / dsr.erasure_p99_ms, 1.0),
        ("50 ms / access export p99", 50.0 / dsr.export_p99_ms, 1.0),
    ];
    if args.json {
        let out = json!({
            "quick": args.quick,
            "concurrency": c,
            "figures": figures.iter().map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit})).collect::<Vec<_>>(),
            "ratios": ratios.iter().map(|(n, r, t)| json!({"name": n, "ratio": r, "target": t, "pass": r >= t})).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{:<44} {:>12}", "measurement", "rate");
        for f in &figures {
            let digits = if f.value < 10.0 { 2 } else { 0 };
            println!("{:<44} {:>10.digits$} {}", f.name, f.value, f.unit);
        }
        println!();
        println!("{:<44} {:>8} {:>8}", "ratio (same run)", "measured", "target");
        for (n, r, t) in ratios {
            println!("{n:<44} {r:>8.2} {t:>8.2}  {}", if r >= t { "pass" } else { "miss" });
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("steward-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// PERFORMANCE.md's first baseline: a 10-column row per transaction.
fn raw_sqlite_inserts(path: &std::path::Path, n: usize) -> Result<f64> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE t (id BLOB PRIMARY KEY, a BLOB, b BLOB, c BLOB, d BLOB, e BLOB, f BLOB, g BLOB, h INTEGER, i INTEGER)",
    )?;
    let value = vec![0x5a_u8; 40];
    let mut stmt = conn.prepare("INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)")?;
    let start = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN")?;
        let id = uuid::Uuid::now_v7();
        stmt.execute(rusqlite::params![
            id.as_bytes(),
            value,
            value,
            value,
            value,
            value,
            value,
            value,
            i as i64,
            i as i64
        ])?;
        conn.execute_batch("COMMIT")?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

async fn bare_axum(requests: usize, concurrency: usize) -> Result<f64> {
    use axum::routing::get;
    let app = axum::Router::new().route(
        "/x",
        get(|| async { axum::Json(json!({"id": "0190f1e2-7b3c-7def-8123-456789abcdef", "status": "ok", "n": 12345})) }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });
    let rate = load(
        addr,
        requests,
        concurrency,
        Arc::new(|_| ("GET".into(), "/x".into(), None)),
    )
    .await?;
    server.abort();
    Ok(rate)
}

async fn steward_http(
    dir: &std::path::Path,
    creates: usize,
    reads: usize,
    concurrency: usize,
    options: OpenOptions,
) -> Result<(f64, f64)> {
    let config = Config::new(dir);
    let service = Arc::new(Service::open_with(&config, options).await?);
    service
        .create_user("bench", "sales", Zeroizing::new("bench-password".into()))
        .await
        .map_err(service_err)?;
    let token = service
        .create_api_token("bench", None, None)
        .await
        .map_err(service_err)?;
    let auth = format!("Bearer {}", token.as_str());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(steward_server::serve(listener, Arc::clone(&service), async {
        let _ = rx.await;
    }));

    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(creates)));
    let create_auth = auth.clone();
    let create_rate = load_collect(
        addr,
        creates,
        concurrency,
        Arc::new(move |i| {
            let body = json!({
                "given_name": format!("Given{i}"), "family_name": format!("Family{i}"),
                "email": format!("person{i}@bench.example"), "phone": format!("+4420{:08}", i),
                "job_title": "Engineer", "country": "GB", "notes": "Met at the bench conference",
                "purposes": ["sales"],
            });
            (
                "POST".into(),
                "/api/v1/contacts".into(),
                Some((create_auth.clone(), body.to_string())),
            )
        }),
        Some(Arc::clone(&ids)),
    )
    .await?;
    let ids: Arc<Vec<String>> = Arc::new(std::mem::take(&mut *ids.lock().map_err(|_| anyhow!("poisoned"))?));
    if ids.len() != creates {
        bail!("only {} of {creates} creates succeeded", ids.len());
    }
    eprintln!("      Steward reads over HTTP…");
    let read_auth = auth.clone();
    let read_ids = Arc::clone(&ids);
    let read_rate = load(
        addr,
        reads,
        concurrency,
        Arc::new(move |i| {
            let id = &read_ids[(i.wrapping_mul(2_654_435_761)) % read_ids.len()];
            (
                "GET".into(),
                format!("/api/v1/contacts/{id}"),
                Some((read_auth.clone(), String::new())),
            )
        }),
    )
    .await?;
    let _ = tx.send(());
    server.await??;
    Ok((create_rate, read_rate))
}

type RequestFn = Arc<dyn Fn(usize) -> (String, String, Option<(String, String)>) + Send + Sync>;

async fn load(addr: std::net::SocketAddr, total: usize, concurrency: usize, make: RequestFn) -> Result<f64> {
    load_collect(addr, total, concurrency, make, None).await
}

/// Runs `total` requests over `concurrency` keep-alive connections; every
/// response must be 2xx. With `ids`, collects the `"id"` of each response.
async fn load_collect(
    addr: std::net::SocketAddr,
    total: usize,
    concurrency: usize,
    make: RequestFn,
    ids: Option<Arc<std::sync::Mutex<Vec<String>>>>,
) -> Result<f64> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let next = Arc::clone(&next);
        let make = Arc::clone(&make);
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = TcpStream::connect(addr).await?;
            conn.set_nodelay(true)?;
            let mut buf = Vec::with_capacity(4096);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    return Ok::<(), anyhow::Error>(());
                }
                let (method, path, extra) = make(i);
                let mut req = format!("{method} {path} HTTP/1.1\r\nHost: bench\r\n");
                if let Some((auth, body)) = &extra {
                    req.push_str(&format!("Authorization: {auth}\r\n"));
                    if !body.is_empty() {
                        req.push_str(&format!(
                            "Content-Type: application/json\r\nContent-Length: {}\r\n",
                            body.len()
                        ));
                    }
                }
                req.push_str("\r\n");
                if let Some((_, body)) = &extra {
                    req.push_str(body);
                }
                conn.write_all(req.as_bytes()).await?;
                let (status, body) = read_response(&mut conn, &mut buf).await?;
                if !(200..300).contains(&status) {
                    bail!(
                        "request {i} failed with status {status}: {}",
                        String::from_utf8_lossy(&body)
                    );
                }
                if let Some(ids) = &ids {
                    let v: serde_json::Value = serde_json::from_slice(&body)?;
                    if let Some(id) = v["id"].as_str() {
                        ids.lock().map_err(|_| anyhow!("poisoned"))?.push(id.to_string());
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>)> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end])?.to_string();
            let status: u16 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| anyhow!("bad status line"))?;
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.split_once(':')
                        .filter(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                        .map(|(_, v)| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            let total = end + 4 + len;
            while buf.len() < total {
                read_more(conn, buf).await?;
            }
            let body = buf[end + 4..total].to_vec();
            buf.drain(..total);
            return Ok((status, body));
        }
        read_more(conn, buf).await?;
    }
}

async fn read_more(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<()> {
    let mut chunk = [0u8; 8192];
    let n = tokio::time::timeout(Duration::from_secs(30), conn.read(&mut chunk)).await??;
    if n == 0 {
        bail!("the server closed the connection");
    }
    buf.extend_from_slice(&chunk[..n]);
    Ok(())
}

/// SHA-256 over 300-byte inputs: the floor for hashing audit entries.
fn raw_sha256(n: usize) -> f64 {
    let mut entry = vec![0x42u8; 300];
    let start = Instant::now();
    let mut acc = 0u8;
    for i in 0..n {
        entry[..8].copy_from_slice(&(i as u64).to_be_bytes());
        acc ^= ring::digest::digest(&ring::digest::SHA256, &entry).as_ref()[0];
    }
    std::hint::black_box(acc);
    n as f64 / start.elapsed().as_secs_f64()
}

/// Cost of authenticating a bearer token against the cost of a contact read
/// (the service calls alone, without HTTP), in microseconds per call.
async fn auth_vs_read(dir: &std::path::Path, n: usize) -> Result<(f64, f64)> {
    let service = Service::open(&Config::new(dir)).await?;
    service
        .create_user("bench", "sales", Zeroizing::new("bench-password".into()))
        .await
        .map_err(service_err)?;
    let token = service
        .create_api_token("bench", None, None)
        .await
        .map_err(service_err)?;
    let principal = service.authenticate(&token).await.map_err(service_err)?;
    let ctx = service
        .context(principal, None, None, None)
        .await
        .map_err(service_err)?;
    let body = json!({"given_name": "Bench", "email": "bench@example.org", "phone": "+442079460000"});
    let body = body.as_object().cloned().unwrap_or_default();
    let id = service.create_contact(&ctx, body).await.map_err(service_err)?.id;
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(service.authenticate(&token).await.map_err(service_err)?);
    }
    let auth = start.elapsed().as_secs_f64() * 1e6 / n as f64;
    let reads = n / 10;
    let start = Instant::now();
    for _ in 0..reads {
        std::hint::black_box(service.get_contact(&ctx, id).await.map_err(service_err)?);
    }
    let read = start.elapsed().as_secs_f64() * 1e6 / reads as f64;
    service.close().await;
    Ok((auth, read))
}

struct DsrFigures {
    stored: usize,
    erasure_p50_ms: f64,
    erasure_p99_ms: f64,
    export_p99_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Erasure latency (a verified request fulfilled: the contact, its
/// interactions, consents and data key deleted, proof and audit written,
/// the WAL truncated) and the access export of a subject with 1,000
/// interactions, with `stored` contacts in the database. In process, so the
/// figures are the service's own cost.
async fn dsr_bench(dir: &std::path::Path, stored: usize, erasures: usize) -> Result<DsrFigures> {
    use steward_service::contacts::InteractionInput;
    use steward_service::dsr::{DsrInput, SubjectRef};

    let service = Arc::new(Service::open(&Config::new(dir)).await?);
    let mut ctxs = Vec::new();
    for (name, role) in [("bench-sales", "sales"), ("bench-dpo", "dpo")] {
        service
            .create_user(name, role, Zeroizing::new("bench-password".into()))
            .await
            .map_err(service_err)?;
        let token = service.create_api_token(name, None, None).await.map_err(service_err)?;
        let principal = service.authenticate(&token).await.map_err(service_err)?;
        ctxs.push(
            service
                .context(principal, None, None, None)
                .await
                .map_err(service_err)?,
        );
    }
    let (sales, dpo) = (Arc::new(ctxs.remove(0)), ctxs.remove(0));

    // Fill the database, 32 creates in flight.
    let mut ids = Vec::with_capacity(stored);
    let mut set = tokio::task::JoinSet::new();
    for i in 0..stored {
        let (service, sales) = (Arc::clone(&service), Arc::clone(&sales));
        set.spawn(async move {
            let body = json!({"given_name": format!("Given{i}"), "family_name": format!("Family{i}"),
                              "email": format!("subject{i}@dsr.example"), "phone": format!("+4420{i:08}"),
                              "purposes": ["sales"]});
            service
                .create_contact(&sales, body.as_object().cloned().unwrap_or_default())
                .await
        });
        if set.len() >= 32 {
            if let Some(r) = set.join_next().await {
                ids.push(r?.map_err(service_err)?.id);
            }
        }
    }
    while let Some(r) = set.join_next().await {
        ids.push(r?.map_err(service_err)?.id);
    }

    let request = |subject: steward_domain::SubjectId, kind: &str| DsrInput {
        kind: kind.into(),
        regime: "gdpr".into(),
        subject: SubjectRef::ContactId(subject.to_string()),
        details: None,
        received_at: None,
    };
    // Access export of one subject with 1,000 interactions.
    let subject = ids[ids.len() / 2];
    for n in 0..1_000 {
        let input = InteractionInput {
            kind: "call".into(),
            summary: format!("call number {n} about the order"),
            occurred_at: None,
        };
        service
            .add_interaction(&sales, subject, input)
            .await
            .map_err(service_err)?;
    }
    let access = service
        .create_dsr(&dpo, request(subject, "access"))
        .await
        .map_err(service_err)?
        .row
        .id;
    service.verify_dsr(&dpo, access, None).await.map_err(service_err)?;
    service.fulfill_dsr(&dpo, access).await.map_err(service_err)?;
    let mut export = Vec::new();
    for _ in 0..30 {
        let start = Instant::now();
        let bundle = service.dsr_export(&dpo, access).await.map_err(service_err)?;
        export.push(start.elapsed().as_secs_f64() * 1e3);
        if bundle["interactions"].as_array().map(Vec::len) != Some(1_000) {
            bail!("the export did not hold all 1,000 interactions");
        }
    }
    export.sort_by(f64::total_cmp);

    // Erasures, one at a time.
    let mut erase = Vec::with_capacity(erasures);
    for subject in ids.iter().take(erasures) {
        let id = service
            .create_dsr(&dpo, request(*subject, "erasure"))
            .await
            .map_err(service_err)?
            .row
            .id;
        service.verify_dsr(&dpo, id, None).await.map_err(service_err)?;
        let start = Instant::now();
        service.fulfill_dsr(&dpo, id).await.map_err(service_err)?;
        erase.push(start.elapsed().as_secs_f64() * 1e3);
    }
    erase.sort_by(f64::total_cmp);
    service.close().await;
    Ok(DsrFigures {
        stored,
        erasure_p50_ms: percentile(&erase, 0.50),
        erasure_p99_ms: percentile(&erase, 0.99),
        export_p99_ms: percentile(&export, 0.99),
    })
}
