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
    /// A short run (under two minutes): smaller samples, one scale point
    /// (10,000 contacts).
    #[arg(long)]
    pub quick: bool,
    /// Concurrent client connections.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// The largest scale point in contacts (default: 10,000 quick,
    /// 1,000,000 full; the points are 10k, 100k, 1M up to this).
    #[arg(long)]
    pub scale_max: Option<usize>,
    /// Audit entries to reach at the largest scale point (default: none
    /// quick, 10,000,000 full).
    #[arg(long)]
    pub audit_entries: Option<u64>,
    /// Also measure the PostgreSQL backend against raw prepared inserts on
    /// this server (a scratch database is created and dropped).
    #[arg(long, env = "STEWARD_BENCH_DATABASE_URL")]
    pub postgres: Option<String>,
    /// Print the results as JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Tiny sizes, only to check that the harness runs (tests).
    #[arg(long, hide = true)]
    pub smoke: bool,
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

struct Ratio {
    name: &'static str,
    ratio: f64,
    target: f64,
}

const STAGES: usize = 10;

fn stage(n: usize, what: &str) {
    eprintln!("[{n}/{STAGES}] {what}");
}

/// How much each measure does in a run.
struct Sizes {
    rows: usize,
    creates: usize,
    reads: usize,
    fsyncs: usize,
    verify_entries: usize,
    import_rows: usize,
    auth_calls: usize,
    pg_creates: usize,
    scale_max: usize,
    erasures: usize,
    page_contacts: usize,
    page_samples: usize,
}

impl Sizes {
    fn of(args: &BenchArgs) -> Self {
        if args.smoke {
            return Self {
                rows: 200,
                creates: 200,
                reads: 500,
                fsyncs: 20,
                verify_entries: 2_000,
                import_rows: 200,
                auth_calls: 200,
                pg_creates: 100,
                scale_max: 300,
                erasures: 5,
                page_contacts: 200,
                page_samples: 3,
            };
        }
        if args.quick {
            return Self {
                rows: 10_000,
                creates: 10_000,
                reads: 60_000,
                fsyncs: 300,
                verify_entries: 200_000,
                import_rows: 10_000,
                auth_calls: 20_000,
                pg_creates: 5_000,
                scale_max: 10_000,
                erasures: 200,
                page_contacts: 10_000,
                page_samples: 20,
            };
        }
        Self {
            rows: 50_000,
            creates: 50_000,
            reads: 200_000,
            fsyncs: 2_000,
            verify_entries: 2_000_000,
            import_rows: 100_000,
            auth_calls: 100_000,
            pg_creates: 50_000,
            scale_max: 1_000_000,
            erasures: 500,
            page_contacts: 10_000,
            page_samples: 100,
        }
    }
}

pub async fn run(_cli: &Cli, args: &BenchArgs) -> Result<ExitCode> {
    let sizes = Sizes::of(args);
    let (rows, creates, reads) = (sizes.rows, sizes.creates, sizes.reads);
    let c = args.concurrency.max(1);
    let scratch = Scratch(tempfile_dir()?);
    let dir = &scratch.0;
    if let Some(mode) = &args.only_http {
        let options = OpenOptions {
            audit_reads: mode != "unaudited",
            ..OpenOptions::default()
        };
        let (create_rate, read_rate) =
            steward_http(&Config::new(dir.join("steward")), creates, reads, c, options).await?;
        println!("creates {create_rate:.0}/s, reads ({mode}) {read_rate:.0}/s");
        return Ok(ExitCode::SUCCESS);
    }
    let started = Instant::now();
    eprintln!(
        "steward bench: {} run, concurrency {c}, scratch dir {}",
        if args.quick { "quick" } else { "full" },
        dir.display()
    );

    stage(
        1,
        "baselines: raw SQLite inserts (1 and 1,000 rows per transaction), fdatasync, SHA-256…",
    );
    let raw_insert = raw_sqlite_inserts(&dir.join("raw.db"), rows)?;
    let raw_batched = raw_sqlite_batched(&dir.join("raw-batched.db"), rows * 4)?;
    let fdatasync = fdatasync_rate(&dir.join("fsync.bin"), sizes.fsyncs)?;
    let verify_entries = sizes.verify_entries;
    let sha_rate = raw_sha256(verify_entries);
    stage(2, "baseline: bare axum small-JSON GET…");
    let axum_get = bare_axum(reads, c).await?;
    stage(3, "Steward over HTTP (encrypted, audited)…");
    let full = OpenOptions::default();
    let (create_rate, read_rate) = steward_http(&Config::new(dir.join("steward")), creates, reads, c, full).await?;
    stage(
        4,
        "Steward over HTTP, fields in plaintext and reads not audited (comparisons only)…",
    );
    let plain = OpenOptions {
        protection: FieldProtection::PlaintextForBenchmark,
        ..full
    };
    let (plain_create, plain_read) = steward_http(&Config::new(dir.join("plain")), creates, reads, c, plain).await?;
    let unaudited = OpenOptions {
        audit_reads: false,
        ..full
    };
    let (_, unaudited_read) = steward_http(&Config::new(dir.join("unaudited")), creates, reads, c, unaudited).await?;
    stage(5, "durable mode (synchronous=FULL) creates over HTTP…");
    let mut durable_config = Config::new(dir.join("durable"));
    durable_config.database_url = Some(format!(
        "sqlite://{}?synchronous=full",
        dir.join("durable").join("steward.db").display()
    ));
    let (durable_create, _) = steward_http(&durable_config, creates / 2, c, c, full).await?;
    stage(6, "bulk import of a CSV file through the full pipeline…");
    let import_rows = sizes.import_rows;
    let import_rate = bulk_import(&dir.join("import"), import_rows).await?;
    eprintln!("      console and portal pages with {} contacts…", sizes.page_contacts);
    let pages = crate::bench_pages::console_pages(&dir.join("pages"), sizes.page_contacts, sizes.page_samples).await?;
    let slowest_page = pages.iter().map(|p| p.p99_ms).fold(0.0, f64::max);
    stage(7, "audit verification and token authentication…");
    let verify_rate = steward_audit::bench_verify(verify_entries);
    let (auth_us, read_us) = auth_vs_read(&dir.join("auth"), sizes.auth_calls).await?;
    stage(8, "PostgreSQL backend vs raw prepared inserts…");
    let pg = match &args.postgres {
        Some(url) => Some(crate::bench_pg::pg_bench(url, sizes.pg_creates, c.min(16)).await?),
        None => {
            eprintln!("      skipped: pass --postgres URL (or STEWARD_BENCH_DATABASE_URL)");
            None
        }
    };
    let scale_max = args.scale_max.unwrap_or(sizes.scale_max);
    let audit_top = args
        .audit_entries
        .unwrap_or(if args.quick || args.smoke { 0 } else { 10_000_000 });
    stage(
        9,
        &format!("scale: 10k…{scale_max} contacts, {audit_top} audit entries at the top…"),
    );
    let erasures = sizes.erasures;
    let points = scale_bench(&dir.join("scale"), scale_max, erasures, audit_top).await?;
    stage(10, "done");
    let top = points.last().ok_or_else(|| anyhow!("no scale point was measured"))?;

    let mut figures = vec![
        Figure {
            name: "baseline: raw SQLite insert, 1 row/txn",
            value: raw_insert,
            unit: "rows/s",
        },
        Figure {
            name: "baseline: raw SQLite insert, 1,000 rows/txn",
            value: raw_batched,
            unit: "rows/s",
        },
        Figure {
            name: "baseline: fdatasync of 4 KiB",
            value: fdatasync,
            unit: "/s",
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
            name: "steward durable mode: create over HTTP",
            value: durable_create,
            unit: "req/s",
        },
        Figure {
            name: "steward: bulk CSV import",
            value: import_rate,
            unit: "rows/s",
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
    ];
    if let Some(pg) = &pg {
        figures.push(Figure {
            name: "baseline: PostgreSQL prepared insert",
            value: pg.raw_insert_rate,
            unit: "rows/s",
        });
        figures.push(Figure {
            name: "steward on PostgreSQL: create",
            value: pg.steward_create_rate,
            unit: "req/s",
        });
    }
    let mut ratios = vec![
        Ratio {
            name: "creates / raw SQLite insert",
            ratio: create_rate / raw_insert,
            target: 1.0,
        },
        Ratio {
            name: "reads / bare axum GET",
            ratio: read_rate / axum_get,
            target: 0.5,
        },
        Ratio {
            name: "bulk import / raw batched insert",
            ratio: import_rate / raw_batched,
            target: 0.25,
        },
        Ratio {
            name: "durable creates / fdatasync",
            ratio: durable_create / fdatasync,
            target: 20.0,
        },
        Ratio {
            name: "encrypted / plaintext creates",
            ratio: create_rate / plain_create,
            target: 0.9,
        },
        Ratio {
            name: "encrypted / plaintext reads",
            ratio: read_rate / plain_read,
            target: 0.9,
        },
        Ratio {
            name: "audited / unaudited reads",
            ratio: read_rate / unaudited_read,
            target: 0.6,
        },
        Ratio {
            name: "audit verify / raw SHA-256 (no target)",
            ratio: verify_rate / sha_rate,
            target: 0.0,
        },
        Ratio {
            name: "audit verify, millions of entries/s",
            ratio: verify_rate / 1.0e6,
            target: 1.0,
        },
        Ratio {
            name: "contact read / token authentication cost",
            ratio: read_us / auth_us,
            target: 20.0,
        },
        Ratio {
            name: "10 ms / erasure p99 (largest scale)",
            ratio: 10.0 / top.erasure_p99_ms,
            target: 1.0,
        },
        Ratio {
            name: "retention deletions/s / DSR erasures/s (largest)",
            ratio: top
                .retention
                .as_ref()
                .map_or(0.0, |r| r.per_s / (1_000.0 / top.erasure_p50_ms.max(1e-6))),
            target: 1.0,
        },
        Ratio {
            name: "5 ms / read p99 during a retention run (largest)",
            ratio: top.retention.as_ref().map_or(0.0, |r| 5.0 / r.read_p99_ms.max(1e-6)),
            target: 1.0,
        },
        Ratio {
            name: "50 ms / access export p99 (largest scale)",
            ratio: 50.0 / top.export_p99_ms,
            target: 1.0,
        },
        Ratio {
            name: "2 s / breach scope, a token's 30 days (largest)",
            ratio: top.scope_ms.map_or(0.0, |ms| 2_000.0 / ms),
            target: 1.0,
        },
        Ratio {
            name: "10 s / compliance report, 30 days (largest scale)",
            ratio: top.report_ms.map_or(0.0, |ms| 10_000.0 / ms.max(1e-6)),
            target: 1.0,
        },
        Ratio {
            name: "50 ms / slowest console page p99 (10k contacts)",
            ratio: 50.0 / slowest_page.max(1e-6),
            target: 1.0,
        },
        Ratio {
            name: "creates / peer CRM (~20/s, PERFORMANCE.md)",
            ratio: create_rate / 20.0,
            target: 200.0,
        },
        Ratio {
            name: "reads / peer CRM (~170/s, PERFORMANCE.md)",
            ratio: read_rate / 170.0,
            target: 100.0,
        },
    ];
    if let Some(pg) = &pg {
        ratios.push(Ratio {
            name: "PostgreSQL creates / raw prepared insert",
            ratio: pg.steward_create_rate / pg.raw_insert_rate,
            target: 0.5,
        });
    }
    let elapsed = started.elapsed().as_secs_f64();
    if args.json {
        let out = json!({
            "quick": args.quick,
            "concurrency": c,
            "seconds": elapsed,
            "postgres_concurrency": pg.as_ref().map(|p| p.concurrency),
            "figures": figures.iter().map(|f| json!({"name": f.name, "value": f.value, "unit": f.unit})).collect::<Vec<_>>(),
            "ratios": ratios.iter().map(|r| json!({"name": r.name, "ratio": r.ratio, "target": r.target, "pass": r.ratio >= r.target})).collect::<Vec<_>>(),
            "scale": points.iter().map(ScalePoint::to_json).collect::<Vec<_>>(),
            "pages": pages.iter().map(crate::bench_pages::PageTiming::to_json).collect::<Vec<_>>(),
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{:<46} {:>12}", "measurement", "rate");
        for f in &figures {
            let digits = if f.value < 10.0 { 2 } else { 0 };
            println!("{:<46} {:>10.digits$} {}", f.name, f.value, f.unit);
        }
        println!();
        println!("{:<46} {:>8} {:>8}", "ratio (same run)", "measured", "target");
        for r in &ratios {
            let verdict = if r.ratio >= r.target { "pass" } else { "miss" };
            println!("{:<46} {:>8.2} {:>8.2}  {verdict}", r.name, r.ratio, r.target);
        }
        println!();
        ScalePoint::print_table(&points);
        println!();
        println!(
            "{:<46} {:>8} {:>8} {:>9}",
            format!("page ({} contacts, loopback round trip)", sizes.page_contacts),
            "p50 ms",
            "p99 ms",
            "KiB"
        );
        for p in &pages {
            println!(
                "{:<46} {:>8.2} {:>8.2} {:>9.1}",
                p.page,
                p.p50_ms,
                p.p99_ms,
                p.bytes as f64 / 1024.0
            );
        }
        println!();
        println!("total time: {elapsed:.0} s");
    }
    Ok(ExitCode::SUCCESS)
}

/// The run's scratch directory, removed however the run ends.
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tempfile_dir() -> Result<std::path::PathBuf> {
    let dir = std::env::temp_dir().join(format!("steward-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// PERFORMANCE.md's second baseline: 1,000 rows per transaction, values of
/// ciphertext size (a sealed field is ~60 bytes).
fn raw_sqlite_batched(path: &std::path::Path, n: usize) -> Result<f64> {
    let mut conn = raw_table(path)?;
    let value = vec![0x5a_u8; 60];
    let start = Instant::now();
    let mut i = 0;
    while i < n {
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(RAW_INSERT)?;
            for _ in 0..1_000.min(n - i) {
                raw_row(&mut stmt, &value, i)?;
                i += 1;
            }
        }
        tx.commit()?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// 4 KiB appended and `fdatasync`ed, `n` times, as a log append is: what
/// one durable commit costs at least.
fn fdatasync_rate(path: &std::path::Path, n: usize) -> Result<f64> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    let block = vec![0x5a_u8; 4096];
    let start = Instant::now();
    for _ in 0..n {
        file.write_all(&block)?;
        file.sync_data()?;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

const RAW_INSERT: &str = "INSERT INTO t VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// The baselines' table (WAL, synchronous=NORMAL): a uuid key, 7 blobs and
/// 2 integers.
fn raw_table(path: &std::path::Path) -> Result<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(()))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.execute_batch(
        "CREATE TABLE t (id BLOB PRIMARY KEY, a BLOB, b BLOB, c BLOB, d BLOB, e BLOB, f BLOB, g BLOB, h INTEGER, i INTEGER)",
    )?;
    Ok(conn)
}

fn raw_row(stmt: &mut rusqlite::Statement<'_>, value: &[u8], i: usize) -> Result<()> {
    let id = uuid::Uuid::now_v7();
    let i = i as i64;
    stmt.execute(rusqlite::params![
        id.as_bytes(),
        value,
        value,
        value,
        value,
        value,
        value,
        value,
        i,
        i
    ])?;
    Ok(())
}

/// PERFORMANCE.md's first baseline: a 10-column row per transaction.
fn raw_sqlite_inserts(path: &std::path::Path, n: usize) -> Result<f64> {
    let conn = raw_table(path)?;
    let value = vec![0x5a_u8; 40];
    let mut stmt = conn.prepare(RAW_INSERT)?;
    let start = Instant::now();
    for i in 0..n {
        conn.execute_batch("BEGIN")?;
        raw_row(&mut stmt, &value, i)?;
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
    config: &Config,
    creates: usize,
    reads: usize,
    concurrency: usize,
    options: OpenOptions,
) -> Result<(f64, f64)> {
    let service = Arc::new(Service::open_with(config, options).await?);
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
pub(crate) async fn load_collect(
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

pub(crate) async fn read_response(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Result<(u16, Vec<u8>)> {
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

pub(crate) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Seeded, reproducible person data (splitmix64 over small name lists).
struct People(u64);

const GIVEN: &[&str] = &[
    "Olivia", "Noah", "Amelia", "Oliver", "Isla", "George", "Ava", "Arthur", "Mia", "Leo", "Ivy", "Freddie", "Lily",
    "Theo", "Florence", "Oscar", "Sophia", "Jack", "Grace", "Muhammad", "Aisha", "Lukas", "Chloé", "Søren",
];
const FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Wright",
    "Müller",
    "Schmidt",
    "Dubois",
    "Rossi",
    "Jansen",
    "García",
    "Murphy",
    "O'Brien",
    "Nowak",
    "Andersson",
];
const TITLES: &[&str] = &[
    "Engineer",
    "Buyer",
    "Head of Procurement",
    "CFO",
    "Office Manager",
    "Sales Director",
    "Analyst",
    "Founder",
];
const COUNTRIES: &[&str] = &["GB", "DE", "FR", "NL", "IE", "ES", "IT", "SE", "PL", "DK"];

impl People {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn pick<'a>(&mut self, list: &[&'a str]) -> &'a str {
        list[(self.next() % list.len() as u64) as usize]
    }

    /// Person `i`: e-mail and phone are unique per `i`.
    fn person(&mut self, i: usize) -> [String; 6] {
        let given = self.pick(GIVEN).to_string();
        let family = self.pick(FAMILY).to_string();
        let email = format!(
            "{}.{}.{i}@example.org",
            given.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            family.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric(), "")
        );
        [
            given,
            family,
            email,
            format!("+4420{i:08}"),
            self.pick(TITLES).to_string(),
            self.pick(COUNTRIES).to_string(),
        ]
    }

    fn contact_body(&mut self, i: usize) -> serde_json::Map<String, serde_json::Value> {
        let [given, family, email, phone, title, country] = self.person(i);
        let body = json!({"given_name": given, "family_name": family, "email": email, "phone": phone,
                          "job_title": title, "country": country, "purposes": ["sales"]});
        body.as_object().cloned().unwrap_or_default()
    }
}

/// The e-mail address of person `i` (for exact searches).
fn email_of(i: usize) -> String {
    People(i as u64).person(i)[2].clone()
}

fn progress(len: u64, what: &'static str) -> indicatif::ProgressBar {
    indicatif::ProgressBar::new(len)
        .with_style(
            indicatif::ProgressStyle::with_template("      {msg} [{bar:30}] {pos}/{len} ({per_sec}, eta {eta})")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        )
        .with_message(what)
}

/// Files a GDPR request of `kind` about `subject` and verifies it; its id.
async fn verified_request(
    service: &Service,
    dpo: &steward_service::RequestContext,
    subject: steward_domain::SubjectId,
    kind: &str,
) -> Result<uuid::Uuid> {
    let input = steward_service::dsr::DsrInput {
        kind: kind.into(),
        regime: "gdpr".into(),
        subject: steward_service::dsr::SubjectRef::ContactId(subject.to_string()),
        details: None,
        received_at: None,
    };
    let id = service.create_dsr(dpo, input).await.map_err(service_err)?.row.id;
    service.verify_dsr(dpo, id, None).await.map_err(service_err)?;
    Ok(id)
}

pub(crate) async fn bench_context(
    service: &Service,
    name: &str,
    role: &str,
) -> Result<steward_service::RequestContext> {
    service
        .create_user(name, role, Zeroizing::new("bench-password".into()))
        .await
        .map_err(service_err)?;
    let token = service.create_api_token(name, None, None).await.map_err(service_err)?;
    let principal = service.authenticate(&token).await.map_err(service_err)?;
    service.context(principal, None, None, None).await.map_err(service_err)
}

/// `steward contact import` of a seeded CSV file of `n` people, in
/// process: parsing, validation, minimisation, encryption, blind indexes
/// and audit, as a user runs it.
async fn bulk_import(dir: &std::path::Path, n: usize) -> Result<f64> {
    std::fs::create_dir_all(dir)?;
    let file = dir.join("people.csv");
    {
        let mut w = csv::Writer::from_path(&file)?;
        w.write_record([
            "given_name",
            "family_name",
            "email",
            "phone",
            "job_title",
            "country",
            "purposes",
        ])?;
        let mut people = People(0);
        for i in 0..n {
            let p = people.person(i);
            w.write_record(p.iter().map(String::as_str).chain(["sales"]))?;
        }
        w.flush()?;
    }
    let service = Arc::new(Service::open(&Config::new(dir)).await?);
    let ctx = bench_context(&service, "bench-import", "sales").await?;
    let start = Instant::now();
    let reports = crate::contacts::import_rows(&service, ctx, &file, &[], true).await?;
    let rate = n as f64 / start.elapsed().as_secs_f64();
    service.close().await;
    let refused = reports.iter().filter(|r| r.error.is_some()).count();
    if refused > 0 || reports.len() != n {
        bail!("the bulk import refused {refused} of {n} rows");
    }
    Ok(rate)
}

/// Peak resident memory of this process since the last reset, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Resets the peak-RSS counter (Linux: `clear_refs` 5), so each scale
/// point reports its own peak.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn millis(start: Instant) -> f64 {
    start.elapsed().as_secs_f64() * 1e3
}

struct ScalePoint {
    contacts: usize,
    audit_entries: u64,
    fill_rate: f64,
    read_p50_ms: f64,
    read_p99_ms: f64,
    search_p99_ms: f64,
    erasure_p50_ms: f64,
    erasure_p99_ms: f64,
    export_build_ms: f64,
    export_p99_ms: f64,
    access_log_ms: f64,
    verify_rate: Option<f64>,
    /// Breach scoping of one token's 30 days (largest point only).
    scope_ms: Option<f64>,
    /// The compliance report over the last 30 days (largest point only).
    report_ms: Option<f64>,
    /// A retention run deleting the contacts of the earlier points (about
    /// 10 %) while reads go on (largest point only).
    retention: Option<RetentionMeasure>,
    db_mib: f64,
    peak_rss_mib: f64,
}

impl ScalePoint {
    fn to_json(&self) -> serde_json::Value {
        json!({
            "contacts": self.contacts, "audit_entries": self.audit_entries, "fill_rate": self.fill_rate,
            "read_p50_ms": self.read_p50_ms, "read_p99_ms": self.read_p99_ms, "search_p99_ms": self.search_p99_ms,
            "erasure_p50_ms": self.erasure_p50_ms, "erasure_p99_ms": self.erasure_p99_ms,
            "access_export_build_ms": self.export_build_ms, "access_export_p99_ms": self.export_p99_ms,
            "access_log_ms": self.access_log_ms, "audit_verify_entries_per_s": self.verify_rate,
            "breach_scope_ms": self.scope_ms, "compliance_report_ms": self.report_ms, "database_mib": self.db_mib, "peak_rss_mib": self.peak_rss_mib,
            "retention": self.retention.as_ref().map(|r| json!({
                "contacts_deleted": r.deleted, "records_deleted": r.records, "seconds": r.seconds,
                "contacts_per_s": r.per_s, "reads_during_run": r.reads, "read_p99_during_run_ms": r.read_p99_ms,
            })),
        })
    }

    fn print_table(points: &[Self]) {
        println!(
            "{:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>9} {:>8} {:>8} {:>8}",
            "contacts",
            "audit",
            "fill/s",
            "read50",
            "read99",
            "search99",
            "erase50",
            "erase99",
            "build",
            "export99",
            "verify/s",
            "scope",
            "db MiB",
            "RSS MiB"
        );
        for p in points {
            println!(
                "{:>9} {:>10} {:>8.0} {:>8.3} {:>8.3} {:>8.3} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>9} {:>8} {:>8.0} {:>8.0}",
                p.contacts,
                p.audit_entries,
                p.fill_rate,
                p.read_p50_ms,
                p.read_p99_ms,
                p.search_p99_ms,
                p.erasure_p50_ms,
                p.erasure_p99_ms,
                p.export_build_ms,
                p.export_p99_ms,
                p.verify_rate
                    .map_or_else(|| "-".to_string(), |v| format!("{:.2}M", v / 1e6)),
                p.scope_ms.map_or_else(|| "-".to_string(), |v| format!("{v:.0}")),
                p.db_mib,
                p.peak_rss_mib
            );
        }
        println!("(latencies in ms, in process; read = audited contact read; search = exact e-mail search;");
        println!(
            " build = access bundle of a subject with 1,000 interactions built at fulfilment; export99 = serving it;"
        );
        println!(" scope = breach scoping of one token's 30 days (2,000 reads) from the audit log, target < 2,000 ms)");
        for p in points {
            if let Some(ms) = p.report_ms {
                println!(
                    "compliance report over the last 30 days at the largest point ({} audit entries): {:.0} ms (target < 10,000 ms)",
                    p.audit_entries, ms
                );
            }
            if let Some(r) = &p.retention {
                println!(
                    "retention run at the largest point: {} contacts (and {} other records) deleted in {:.1} s = {:.0} contacts/s; \
                     {} audited reads meanwhile, p99 {:.2} ms (target < 5 ms)",
                    r.deleted, r.records, r.seconds, r.per_s, r.reads, r.read_p99_ms
                );
            }
        }
    }
}

struct RetentionMeasure {
    deleted: u64,
    records: u64,
    seconds: f64,
    per_s: f64,
    reads: usize,
    read_p99_ms: f64,
}

/// Runs the retention schedules at the instant the contacts created before
/// `cutoff` are due (the earlier points' fills, about 10 % at the largest
/// point), in one unbounded run, while audited reads of the others go on at
/// 1,000/s;
/// returns the deletion rate and the read latencies meanwhile.
async fn retention_measure(
    service: &Arc<Service>,
    sales: &Arc<steward_service::RequestContext>,
    cutoff: chrono::DateTime<chrono::Utc>,
    kept: &[steward_domain::SubjectId],
) -> Result<RetentionMeasure> {
    use steward_domain::retention::{rules_in_force, RetainedRecord};
    // The bench's contacts are collected for sales: their end is the
    // latest of the contact rules that apply to them.
    let days = rules_in_force(service.inventory())
        .iter()
        .filter(|r| r.record == RetainedRecord::Contact && r.purpose.as_deref().is_none_or(|p| p == "sales"))
        .map(|r| r.days)
        .max()
        .ok_or_else(|| anyhow!("no contact retention rule in force"))?;
    let at = cutoff + chrono::Duration::days(i64::from(days));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (service, sales, done) = (Arc::clone(service), Arc::clone(sales), Arc::clone(&done));
        let kept = kept.to_vec();
        tokio::spawn(async move {
            let mut rng = People(7);
            let mut lat = Vec::new();
            // A steady 1,000 reads/s, as staff working meanwhile would make.
            let mut tick = tokio::time::interval(std::time::Duration::from_millis(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            while !done.load(std::sync::atomic::Ordering::Acquire) {
                tick.tick().await;
                let id = kept[(rng.next() % kept.len() as u64) as usize];
                let start = Instant::now();
                service.get_contact(&sales, id).await.map_err(service_err)?;
                lat.push(millis(start));
            }
            Ok::<Vec<f64>, anyhow::Error>(lat)
        })
    };
    let start = Instant::now();
    let report = service.retention_run(at, false, usize::MAX).await;
    let seconds = start.elapsed().as_secs_f64();
    done.store(true, std::sync::atomic::Ordering::Release);
    let mut lat = reader.await??;
    let report = report.map_err(service_err)?;
    lat.sort_by(f64::total_cmp);
    let deleted = report.erased + report.anonymised + report.narrowed;
    if deleted == 0 {
        bail!("the retention run deleted no one");
    }
    Ok(RetentionMeasure {
        deleted,
        records: report.records.values().sum(),
        seconds,
        per_s: deleted as f64 / seconds,
        reads: lat.len(),
        read_p99_ms: percentile(&lat, 0.99),
    })
}

/// A compromised token reads 2,000 people; the time to scope its last 30
/// days from the audit log (among all the other entries) is returned.
async fn breach_scope(
    service: &Service,
    dpo: &steward_service::RequestContext,
    live: &[(usize, steward_domain::SubjectId)],
) -> Result<f64> {
    use steward_service::incident::{IncidentInput, ScopeCriteria};
    let token = service
        .create_api_token("bench-sales", None, None)
        .await
        .map_err(service_err)?;
    let principal = service.authenticate(&token).await.map_err(service_err)?;
    let token_id = principal.token_id.map(|t| *t.as_uuid());
    let attacker = service
        .context(principal, None, None, None)
        .await
        .map_err(service_err)?;
    let mut read = std::collections::BTreeSet::new();
    for k in 0..2_000usize {
        let (_, id) = live[(k.wrapping_mul(7_919)) % live.len()];
        // People erased by the erasure measure are gone: skip them.
        match service.get_contact(&attacker, id).await {
            Ok(_) => {
                read.insert(id);
            }
            Err(steward_service::ServiceError::NotFound(_)) => {}
            Err(e) => return Err(service_err(e)),
        }
    }
    // A running server signs a tree head every minute, so its Merkle
    // frontier is current when a breach is scoped; do the same here (the
    // first head of a 10M-entry log built in this process reads every leaf).
    service.sign_tree_head().await.map_err(service_err)?;
    let now = chrono::Utc::now();
    let incident = service
        .open_incident(
            dpo,
            IncidentInput {
                title: "bench: leaked token".into(),
                description: "a token of the bench user was leaked".into(),
                category: "confidentiality".into(),
                source: "compromised_account".into(),
                started_at: Some(now - chrono::Duration::days(30)),
                ended_at: None,
                aware_at: now,
                regime: None,
                notification_days: None,
                owner: None,
                measures: None,
            },
        )
        .await
        .map_err(service_err)?;
    let criteria = ScopeCriteria {
        token: token_id,
        from: Some(now - chrono::Duration::days(30)),
        ..ScopeCriteria::default()
    };
    let start = Instant::now();
    let scope = service
        .scope_incident(dpo, incident.id, criteria)
        .await
        .map_err(service_err)?;
    let ms = millis(start);
    if scope.result.totals.subjects != read.len() as u64 {
        bail!(
            "the breach scope found {} people, the token read {}",
            scope.result.totals.subjects,
            read.len()
        );
    }
    Ok(ms)
}

fn db_mib(dir: &std::path::Path) -> f64 {
    ["steward.db", "steward.db-wal"]
        .iter()
        .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
        .map(|m| m.len() as f64)
        .sum::<f64>()
        / (1024.0 * 1024.0)
}

/// The same measures at 10k, 100k and 1M contacts (up to `max`), on one
/// growing database, with `audit_top` audit entries at the largest point:
/// latencies of one-subject operations must not grow with the number of
/// subjects. In process, so the figures are the service's own cost.
async fn scale_bench(dir: &std::path::Path, max: usize, erasures: usize, audit_top: u64) -> Result<Vec<ScalePoint>> {
    use steward_service::contacts::{ContactQuery, InteractionInput};

    let mut sizes: Vec<usize> = [10_000, 100_000, 1_000_000].into_iter().filter(|s| *s < max).collect();
    if sizes.is_empty() && max >= 10 * (erasures + 2) {
        // A point at a tenth, so the retention run has earlier contacts to delete.
        sizes.push(max / 10);
    }
    sizes.push(max.max(erasures + 2));
    let service = Arc::new(Service::open(&Config::new(dir)).await?);
    let sales = Arc::new(bench_context(&service, "bench-sales", "sales").await?);
    let dpo = bench_context(&service, "bench-dpo", "dpo").await?;

    // ids[i] is person i; erased people are taken from the end of each fill.
    let mut ids: Vec<Option<steward_domain::SubjectId>> = Vec::new();
    let mut points = Vec::new();
    let mut heavy = None;
    let mut erased = 0usize;
    let mut cutoff = chrono::Utc::now();
    for (n, &size) in sizes.iter().enumerate() {
        reset_peak_rss();
        let from = ids.len();
        if n + 1 == sizes.len() {
            // The contacts of the earlier points are created before this.
            cutoff = chrono::Utc::now();
        }
        let bar = progress((size - from) as u64, "creating contacts");
        let start = Instant::now();
        let mut set = tokio::task::JoinSet::new();
        let mut filled = vec![None; size - from];
        for i in from..size {
            let (service, sales) = (Arc::clone(&service), Arc::clone(&sales));
            let body = People(i as u64).contact_body(i);
            set.spawn(async move { (i, service.create_contact(&sales, body).await) });
            while set.len() >= 32 {
                if let Some(r) = set.join_next().await {
                    let (i, r) = r?;
                    filled[i - from] = Some(r.map_err(service_err)?.id);
                    bar.inc(1);
                }
            }
        }
        while let Some(r) = set.join_next().await {
            let (i, r) = r?;
            filled[i - from] = Some(r.map_err(service_err)?.id);
            bar.inc(1);
        }
        bar.finish_and_clear();
        let fill_rate = (size - from) as f64 / start.elapsed().as_secs_f64();
        ids.extend(filled);

        // The subject with 1,000 interactions, made once at the first point.
        let subject = match heavy {
            Some(s) => s,
            None => {
                let s = ids[0].ok_or_else(|| anyhow!("person 0 is missing"))?;
                for k in 0..1_000 {
                    let input = InteractionInput {
                        kind: "call".into(),
                        summary: format!("call number {k} about the order"),
                        occurred_at: None,
                    };
                    service.add_interaction(&sales, s, input).await.map_err(service_err)?;
                }
                heavy = Some(s);
                s
            }
        };

        // Audit entries up to the target at the largest point.
        if n + 1 == sizes.len() && audit_top > 0 {
            let size_now = service.audit_size().await.map_err(service_err)?;
            if size_now < audit_top {
                let missing = audit_top - size_now;
                let bar = progress(missing, "audited reads for the audit log");
                let per_task = missing / 2 + 1;
                let mut set = tokio::task::JoinSet::new();
                for t in 0..2u64 {
                    let (service, sales, bar) = (Arc::clone(&service), Arc::clone(&sales), bar.clone());
                    let live: Vec<_> = ids.iter().flatten().copied().collect();
                    set.spawn(async move {
                        for k in 0..per_task {
                            let id = live[((k * 2 + t).wrapping_mul(2_654_435_761) % live.len() as u64) as usize];
                            service.get_contact(&sales, id).await.map_err(service_err)?;
                            if k % 1024 == 0 {
                                bar.inc(1024);
                            }
                        }
                        Ok::<(), anyhow::Error>(())
                    });
                }
                while let Some(r) = set.join_next().await {
                    r??;
                }
                bar.finish_and_clear();
            }
        }

        // Reads and exact searches of random people.
        let live: Vec<(usize, steward_domain::SubjectId)> = ids
            .iter()
            .enumerate()
            .filter_map(|(i, id)| id.map(|id| (i, id)))
            .collect();
        let mut rng = People(size as u64);
        let mut reads = Vec::with_capacity(2_000);
        for _ in 0..2_000 {
            let (_, id) = live[(rng.next() % live.len() as u64) as usize];
            let start = Instant::now();
            service.get_contact(&sales, id).await.map_err(service_err)?;
            reads.push(millis(start));
        }
        let mut searches = Vec::with_capacity(500);
        for _ in 0..500 {
            let (i, _) = live[(rng.next() % live.len() as u64) as usize];
            let query = ContactQuery {
                exact: Some(("email".into(), email_of(i))),
                ..ContactQuery::default()
            };
            let start = Instant::now();
            let page = service.list_contacts(&sales, &query).await.map_err(service_err)?;
            searches.push(millis(start));
            if page.items.len() != 1 {
                bail!("an exact e-mail search did not find its person");
            }
        }

        // Access export of the subject with 1,000 interactions.
        let access = verified_request(&service, &dpo, subject, "access").await?;
        let start = Instant::now();
        service.fulfill_dsr(&dpo, access).await.map_err(service_err)?;
        let export_build_ms = millis(start);
        let mut exports = Vec::new();
        for _ in 0..30 {
            let start = Instant::now();
            let bundle = service.dsr_export(&dpo, access).await.map_err(service_err)?;
            exports.push(millis(start));
            if !matches!(&bundle, steward_service::dsr::SubjectExport::Bundle(b) if b.interactions.len() == 1_000) {
                bail!("the export did not hold all 1,000 interactions");
            }
        }
        let start = Instant::now();
        service.subject_access_log(subject).await.map_err(service_err)?;
        let access_log_ms = millis(start);

        // Erasures, one at a time, of people from the end of this fill.
        let mut erase = Vec::with_capacity(erasures);
        for k in 0..erasures {
            let slot = size - 1 - k;
            let Some(person) = ids[slot].take() else { continue };
            let id = verified_request(&service, &dpo, person, "erasure").await?;
            let start = Instant::now();
            service.fulfill_dsr(&dpo, id).await.map_err(service_err)?;
            erase.push(millis(start));
            erased += 1;
        }

        let verify_rate = if n + 1 == sizes.len() {
            let start = Instant::now();
            let report = service
                .verify_audit_log()
                .await
                .map_err(|e| anyhow!("audit verify failed: {e}"))?;
            Some(report.entries as f64 / start.elapsed().as_secs_f64())
        } else {
            None
        };
        let scope_ms = if n + 1 == sizes.len() {
            Some(breach_scope(&service, &dpo, &live).await?)
        } else {
            None
        };
        let report_ms = if n + 1 == sizes.len() {
            let now = chrono::Utc::now();
            let start = Instant::now();
            service
                .compliance_report(
                    now - chrono::Duration::days(30),
                    now + chrono::Duration::minutes(1),
                    now,
                )
                .await
                .map_err(service_err)?;
            Some(millis(start))
        } else {
            None
        };
        let retention = if n + 1 == sizes.len() && from > 0 {
            let kept: Vec<_> = ids[from..].iter().flatten().copied().collect();
            let m = retention_measure(&service, &sales, cutoff, &kept).await?;
            erased += usize::try_from(m.deleted).unwrap_or(0);
            Some(m)
        } else {
            None
        };
        for v in [&mut reads, &mut searches, &mut exports, &mut erase] {
            v.sort_by(f64::total_cmp);
        }
        points.push(ScalePoint {
            contacts: size - erased,
            audit_entries: service.audit_size().await.map_err(service_err)?,
            fill_rate,
            read_p50_ms: percentile(&reads, 0.50),
            read_p99_ms: percentile(&reads, 0.99),
            search_p99_ms: percentile(&searches, 0.99),
            erasure_p50_ms: percentile(&erase, 0.50),
            erasure_p99_ms: percentile(&erase, 0.99),
            export_build_ms,
            export_p99_ms: percentile(&exports, 0.99),
            access_log_ms,
            verify_rate,
            scope_ms,
            report_ms,
            retention,
            db_mib: db_mib(dir),
            peak_rss_mib: peak_rss_mib(),
        });
    }
    service.close().await;
    Ok(points)
}
