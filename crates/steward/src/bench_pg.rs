//! PostgreSQL figures for `steward bench`, measured in the same run on the
//! same server so they can be reported as a ratio (PERFORMANCE.md target:
//! "PostgreSQL backend creates ≥ 0.5 × pgbench durable insert rate at the
//! same concurrency").
//!
//! Both measures run in one fresh database (`steward_bench_<hex>`, dropped
//! afterwards, so existing data is never touched), one after the other:
//! - baseline, like pgbench's durable single-row insert: `concurrency`
//!   connections each run a prepared `INSERT` of one 10-column row (a uuid
//!   key, 7 × 40-byte `bytea`, 2 `bigint`: the shape of the SQLite
//!   baseline) in autocommit, so every row is its own committed transaction,
//!   into a scratch table that is dropped before Steward starts;
//! - Steward: contact creates through the service in process (purpose
//!   checks, minimisation, field encryption, blind indexes, audit), with
//!   `concurrency` creates in flight, so the figure is the service's own
//!   cost without HTTP.
//!
//! Both rates are rows (contacts) per second. Nothing personal is printed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use serde_json::json;
use steward_service::{Config, Service};
use steward_store::postgres::testing::{connect_client, with_database};

use crate::cli::service_err;

pub struct PgFigures {
    /// Baseline: durable single-row inserts per second.
    pub raw_insert_rate: f64,
    /// Steward contact creates per second on PostgreSQL.
    pub steward_create_rate: f64,
    pub concurrency: usize,
}

/// Runs both measures, `creates` rows each, in a fresh database made on
/// the server of `url` (a role with `CREATEDB`) and dropped afterwards.
/// PostgreSQL 15 no longer lets every role create tables in `public`, so the
/// baseline's scratch table lives in that database too.
pub async fn pg_bench(url: &str, creates: usize, concurrency: usize) -> Result<PgFigures> {
    let concurrency = concurrency.max(1);
    let admin = connect_client(url).await.context("cannot connect to PostgreSQL")?;
    let name = format!("steward_bench_{}", uuid::Uuid::now_v7().simple());
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .context("cannot create the benchmark database")?;
    let db_url = with_database(url, &name);
    let result = async {
        let raw_insert_rate = raw_pg_inserts(&db_url, creates, concurrency).await?;
        let steward_create_rate = steward_pg_creates(&db_url, creates, concurrency).await?;
        Ok(PgFigures {
            raw_insert_rate,
            steward_create_rate,
            concurrency,
        })
    }
    .await;
    if let Err(e) = admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
    {
        tracing::warn!(error = %e, "cannot drop the benchmark database");
    }
    result
}

async fn raw_pg_inserts(url: &str, n: usize, concurrency: usize) -> Result<f64> {
    let admin = connect_client(url).await.context("cannot connect to PostgreSQL")?;
    let table = "steward_bench_raw";
    admin
        .batch_execute(&format!(
            "CREATE TABLE {table} (id uuid PRIMARY KEY, a bytea, b bytea, c bytea, d bytea, e bytea, \
             f bytea, g bytea, h bigint, i bigint)"
        ))
        .await
        .context("cannot create the scratch table")?;
    let result = insert_rows(url, table, n, concurrency).await;
    if let Err(e) = admin.batch_execute(&format!("DROP TABLE IF EXISTS {table}")).await {
        tracing::warn!(error = %e, "cannot drop the benchmark's scratch table");
    }
    result
}

async fn insert_rows(url: &str, table: &str, n: usize, concurrency: usize) -> Result<f64> {
    let sql = format!("INSERT INTO {table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)");
    let mut workers = Vec::with_capacity(concurrency);
    for _ in 0..concurrency {
        let client = connect_client(url).await.context("cannot connect to PostgreSQL")?;
        let stmt = client.prepare(&sql).await.context("cannot prepare the insert")?;
        workers.push((client, stmt));
    }
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    for (client, stmt) in workers {
        let next = Arc::clone(&next);
        set.spawn(async move {
            let v = vec![0x5a_u8; 40];
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let (id, k) = (uuid::Uuid::now_v7(), i as i64);
                client
                    .execute(&stmt, &[&id, &v, &v, &v, &v, &v, &v, &v, &k, &k])
                    .await
                    .context("a baseline insert failed")?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

/// Steward on the (fresh) database at `url`, with its own temporary data dir.
async fn steward_pg_creates(url: &str, n: usize, concurrency: usize) -> Result<f64> {
    let dir = std::env::temp_dir().join(format!("steward-bench-pg-{}", uuid::Uuid::now_v7().simple()));
    let mut config = Config::new(&dir);
    config.database_url = Some(url.to_owned());
    let result = async {
        let service = Arc::new(Service::open(&config).await?);
        let rate = drive_creates(&service, n, concurrency).await;
        service.close().await;
        rate
    }
    .await;
    if let Err(e) = std::fs::remove_dir_all(&dir) {
        tracing::warn!(error = %e, "cannot remove the benchmark's data dir");
    }
    result
}

async fn drive_creates(service: &Arc<Service>, n: usize, concurrency: usize) -> Result<f64> {
    let ctx = Arc::new(crate::bench::bench_context(service, "bench", "sales").await?);
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    let start = Instant::now();
    for _ in 0..concurrency {
        let (service, ctx, next) = (Arc::clone(service), Arc::clone(&ctx), Arc::clone(&next));
        set.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = json!({"given_name": format!("Given{i}"), "family_name": format!("Family{i}"),
                                  "email": format!("person{i}@bench.example"), "phone": format!("+4420{i:08}"),
                                  "purposes": ["sales"]});
                let body = body.as_object().cloned().unwrap_or_default();
                service.create_contact(&ctx, body).await.map_err(service_err)?;
            }
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(n as f64 / start.elapsed().as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn measures_both_rates_when_a_server_is_configured() {
        let Some(url) = std::env::var("STEWARD_TEST_DATABASE_URL")
            .ok()
            .filter(|s| !s.trim().is_empty())
        else {
            return;
        };
        let figures = pg_bench(&url, 500, 4).await.expect("pg_bench");
        eprintln!(
            "raw inserts {:.0}/s, Steward creates {:.0}/s at concurrency {} (ratio {:.2})",
            figures.raw_insert_rate,
            figures.steward_create_rate,
            figures.concurrency,
            figures.steward_create_rate / figures.raw_insert_rate
        );
        assert!(figures.raw_insert_rate > 0.0);
        assert!(figures.steward_create_rate > 0.0);
        assert_eq!(figures.concurrency, 4);
    }
}
