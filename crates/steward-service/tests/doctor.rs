//! `steward doctor`'s controls on real SQLite: each one made to pass and to
//! warn or fail, with the clock injected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use steward_crypto::master::MasterKeySource;
use steward_crypto::totp::{self, TotpParams, TotpSecret};
use steward_service::consent::ConsentInput;
use steward_service::doctor::{self, advisories::Finding, Control, Installation, Status};
use steward_service::dsr::{DsrInput, SubjectRef};
use steward_service::{Config, RequestContext, Service};
use zeroize::Zeroizing;

struct Env {
    _dir: tempfile::TempDir,
    config: Config,
    service: Service,
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::new(dir.path().join("data"));
    let service = Service::open(&config).await.unwrap();
    Env {
        _dir: dir,
        config,
        service,
    }
}

impl Env {
    fn install(&self) -> Installation {
        Installation {
            data_dir: self.config.data_dir.clone(),
            master_key: Some(self.config.master_key_source()),
            tls_cert: None,
            sqlite_file: Some(self.config.data_dir.join("steward.db")),
            reuse_verification: None,
        }
    }

    async fn control(&self, id: &str, now: DateTime<Utc>) -> Control {
        let report = self.service.security_report(&self.install(), now).await.unwrap();
        assert_eq!(report.controls.len(), 15, "every control is reported");
        assert_eq!(report.score, doctor::score(&report.controls));
        report.controls.into_iter().find(|c| c.id == id).unwrap()
    }

    async fn user(&self, name: &str, role: &str) -> RequestContext {
        self.service
            .create_user(name, role, Zeroizing::new("long-enough-password".into()))
            .await
            .unwrap();
        let p = self.service.local_principal(name).await.unwrap();
        self.service.context(p, None, None, None).await.unwrap()
    }
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

#[tokio::test]
async fn mfa_coverage() {
    let e = env().await;
    assert_eq!(
        e.control("mfa_coverage", now()).await.status,
        Status::Pass,
        "nobody to cover"
    );
    e.user("sam", "sales").await;
    let c = e.control("mfa_coverage", now()).await;
    assert_eq!(c.status, Status::Warn, "require_mfa is on: asked at sign-in");
    assert!(
        c.evidence.contains("0 of 1") && c.evidence.contains("sales 0/1"),
        "{}",
        c.evidence
    );
    assert!(!c.evidence.contains("sam"), "no names in evidence");
    e.service.set_setting_locally("require_mfa", "false").await.unwrap();
    assert_eq!(e.control("mfa_coverage", now()).await.status, Status::Fail);
    let p = e.service.local_principal("sam").await.unwrap();
    let enrol = e.service.totp_enroll(&p).await.unwrap();
    let secret = TotpSecret::from_base32(&enrol.secret_base32).unwrap();
    let unix = u64::try_from(Utc::now().timestamp()).unwrap();
    let code = totp::totp(&secret, unix, &TotpParams::default());
    e.service.totp_confirm(&p, &code).await.unwrap();
    let c = e.control("mfa_coverage", now()).await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    assert!(c.fix.is_empty());
}

#[tokio::test]
async fn admin_accounts() {
    let e = env().await;
    let c = e.control("admin_accounts", now()).await;
    assert_eq!(c.status, Status::Warn, "no administrator");
    assert!(c.fix.contains("steward user create"), "{}", c.fix);
    e.user("root", "admin").await;
    assert_eq!(e.control("admin_accounts", now()).await.status, Status::Pass);
    for n in ["root2", "root3", "root4"] {
        e.user(n, "admin").await;
    }
    let c = e.control("admin_accounts", now()).await;
    assert_eq!(c.status, Status::Warn);
    assert_eq!(c.evidence, "4 active accounts can manage users");
}

#[tokio::test]
async fn inactive_users_and_tokens() {
    let e = env().await;
    e.user("sam", "sales").await;
    assert_eq!(e.control("inactive_users", now()).await.status, Status::Pass);
    let later = now() + Duration::days(91);
    let c = e.control("inactive_users", later).await;
    assert_eq!(c.status, Status::Warn);
    assert_eq!(c.evidence, "1 of 1 active accounts unused for 90 days or more");

    assert_eq!(e.control("api_tokens", now()).await.status, Status::Pass, "no token");
    e.service.create_api_token("sam", None, Some(30)).await.unwrap();
    assert_eq!(
        e.control("api_tokens", now()).await.status,
        Status::Pass,
        "expiring, fresh"
    );
    e.service.create_api_token("sam", None, None).await.unwrap();
    let c = e.control("api_tokens", now()).await;
    assert_eq!(c.status, Status::Warn);
    assert!(c.evidence.contains("1 without an expiry"), "{}", c.evidence);
}

#[tokio::test]
async fn master_key_age_and_source() {
    let e = env().await;
    let c = e.control("master_key_age", now()).await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    let c = e.control("master_key_age", now() + Duration::days(400)).await;
    assert_eq!(c.status, Status::Warn);
    assert!(c.fix.contains("steward keys rotate"));
    let mut install = e.install();
    install.master_key = Some(MasterKeySource::Env("STEWARD_MASTER_KEY".into()));
    let report = e.service.security_report(&install, now()).await.unwrap();
    let c = report.controls.iter().find(|c| c.id == "master_key_age").unwrap();
    assert_eq!(c.status, Status::Warn);
}

#[cfg(unix)]
#[tokio::test]
async fn file_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let e = env().await;
    let c = e.control("file_permissions", now()).await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    let key = steward_service::keys::keys_dir(&e.config.data_dir).join("master.key");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let c = e.control("file_permissions", now()).await;
    assert_eq!(c.status, Status::Fail);
    assert!(c.evidence.contains("keys/master.key is 0644"), "{}", c.evidence);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::fs::set_permissions(&e.config.data_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let c = e.control("file_permissions", now()).await;
    assert_eq!(c.status, Status::Fail);
    assert!(c.evidence.contains("is 0755"), "{}", c.evidence);
}

#[tokio::test]
async fn audit_log() {
    let e = env().await;
    e.user("sam", "sales").await;
    let c = e.control("audit_log", now()).await;
    assert_eq!(c.status, Status::Warn, "no signed head yet: {}", c.evidence);
    e.service.sign_tree_head().await.unwrap();
    let c = e.control("audit_log", now()).await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    let c = e.control("audit_log", now() + Duration::hours(25)).await;
    assert_eq!(c.status, Status::Warn, "the head is old");
    // The console's page and the compliance report resume from the
    // checkpoint of a recent whole-log verification, and say so.
    e.user("sue", "sales").await;
    let mut install = e.install();
    install.reuse_verification = Some(Duration::hours(24));
    let resumed = || async {
        let report = e.service.security_report(&install, now()).await.unwrap();
        report.controls.into_iter().find(|c| c.id == "audit_log").unwrap()
    };
    let c = resumed().await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    assert!(
        c.evidence.contains("the whole log verified 0 minutes ago, the "),
        "{}",
        c.evidence
    );
    let checkpoint = e.service.audit_checkpoint().await.unwrap().unwrap();
    let size = e.service.audit_size().await.unwrap();
    assert!(checkpoint.size > 0 && checkpoint.size <= size);
    assert!(checkpoint.verify(&e.service.audit_public_key()));
    // A change after the checkpoint is found by a resumed verification…
    let db = rusqlite::Connection::open(e.config.data_dir.join("steward.db")).unwrap();
    let entry = |idx: u64| -> Vec<u8> {
        db.query_row("SELECT entry FROM audit_log WHERE idx = ?1", [idx], |r| r.get(0))
            .unwrap()
    };
    let put = |idx: u64, bytes: &[u8]| {
        db.execute(
            "UPDATE audit_log SET entry = ?2 WHERE idx = ?1",
            rusqlite::params![idx, bytes],
        )
        .unwrap();
    };
    let flipped = |mut b: Vec<u8>| {
        b[20] ^= 1;
        b
    };
    e.user("sid", "sales").await;
    let last = e.service.audit_size().await.unwrap() - 1;
    let original = entry(last);
    put(last, &flipped(original.clone()));
    let c = resumed().await;
    assert_eq!(c.status, Status::Fail, "{}", c.evidence);
    assert!(
        c.evidence.contains(&format!("entry {last} was changed")),
        "{}",
        c.evidence
    );
    put(last, &original);
    let c = resumed().await;
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    // …so is a change to the checkpoint's own last entry, or a forged checkpoint…
    let cp_last = e.service.audit_checkpoint().await.unwrap().unwrap().size - 1;
    let original = entry(cp_last);
    put(cp_last, &flipped(original.clone()));
    let c = resumed().await;
    assert!(c.evidence.contains("verified prefix"), "{}", c.evidence);
    put(cp_last, &original);
    db.execute(
        "UPDATE settings SET value = replace(value, '\"size\":', '\"size\":1') WHERE name = 'audit.checkpoint'",
        [],
    )
    .unwrap();
    let c = resumed().await;
    assert!(c.evidence.contains("checkpoint"), "{}", c.evidence);
    assert_eq!(c.status, Status::Fail);
    // …while a change before it waits for the next whole-log verification,
    // which `steward doctor` always makes.
    assert_eq!(e.control("audit_log", now()).await.status, Status::Pass);
    put(0, &flipped(entry(0)));
    assert_eq!(resumed().await.status, Status::Pass, "entry 0 is before the checkpoint");
    drop(db);
    let c = e.control("audit_log", now()).await;
    assert_eq!(c.status, Status::Fail, "{}", c.evidence);
    assert!(c.evidence.contains("does not verify"));
}

#[tokio::test]
async fn dsr_deadlines() {
    let e = env().await;
    let dpo = e.user("dee", "dpo").await;
    assert_eq!(e.control("dsr_deadlines", now()).await.status, Status::Pass);
    let input = |days_ago: i64| DsrInput {
        kind: "access".into(),
        regime: "gdpr".into(),
        subject: SubjectRef::Email("someone@example.org".into()),
        details: None,
        received_at: Some((Utc::now() - Duration::days(days_ago)).fixed_offset()),
    };
    e.service.create_dsr(&dpo, input(25)).await.unwrap();
    assert_eq!(e.control("dsr_deadlines", now()).await.status, Status::Warn, "due soon");
    e.service.create_dsr(&dpo, input(40)).await.unwrap();
    let c = e.control("dsr_deadlines", now()).await;
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.evidence, "2 open requests: 1 overdue, 1 due within 7 days");
    assert!(!c.evidence.contains("someone"));
}

#[tokio::test]
async fn breach_deadlines() {
    let e = env().await;
    let dpo = e.user("dee", "dpo").await;
    let open = |hours_ago: i64| {
        serde_json::from_value(json!({
            "title": "Laptop lost", "description": "On a train.",
            "category": "confidentiality", "source": "lost_device",
            "aware_at": (Utc::now() - Duration::hours(hours_ago)).to_rfc3339(),
        }))
        .unwrap()
    };
    e.service.open_incident(&dpo, open(1)).await.unwrap();
    assert_eq!(e.control("breach_deadlines", now()).await.status, Status::Pass);
    e.service.open_incident(&dpo, open(80)).await.unwrap();
    let c = e.control("breach_deadlines", now()).await;
    assert_eq!(c.status, Status::Fail);
    assert_eq!(c.evidence, "2 incidents on the register, 1 past an open legal deadline");
}

#[tokio::test]
async fn staff_training() {
    let e = env().await;
    e.user("sam", "sales").await;
    let c = e.control("staff_training", now()).await;
    assert_eq!(c.status, Status::Fail, "untrained and not required");
    e.service.set_setting_locally("require_training", "true").await.unwrap();
    assert_eq!(e.control("staff_training", now()).await.status, Status::Warn);
    let id = e.service.local_principal("sam").await.unwrap().user_id;
    let today = Utc::now().date_naive().to_string();
    e.service
        .add_training(None, id, "GDPR basics", &today, None)
        .await
        .unwrap();
    assert_eq!(e.control("staff_training", now()).await.status, Status::Pass);
}

#[tokio::test]
async fn consent_validity_and_retention() {
    let e = env().await;
    let marketing = e.user("mia", "marketing").await;
    let body = json!({"given_name": "Ann", "email": "ann@example.org", "purposes": ["marketing_email"]});
    let c = e
        .service
        .create_contact(&marketing, body.as_object().unwrap().clone())
        .await
        .unwrap();
    let input = ConsentInput {
        purpose: "marketing_email".into(),
        granted: true,
        ..ConsentInput::default()
    };
    e.service.record_consent(&marketing, c.id, input).await.unwrap();
    assert_eq!(e.control("consent_validity", now()).await.status, Status::Pass);
    let c = e.control("consent_validity", now() + Duration::days(731)).await;
    assert_eq!(c.status, Status::Warn);
    assert_eq!(
        c.evidence,
        "1 of 1 current consents are past their validity (treated as expired)"
    );

    assert_eq!(e.control("retention_overdue", now()).await.status, Status::Pass);
    let c = e.control("retention_overdue", now() + Duration::days(4000)).await;
    assert_eq!(c.status, Status::Fail, "{}", c.evidence);
    assert!(c.fix.contains("steward retention run"));
}

#[tokio::test]
async fn key_backup() {
    let e = env().await;
    let c = e.control("key_backup", now()).await;
    assert_eq!(c.status, Status::Fail);
    assert!(c.fix.contains("key_backup_verified_on"));
    let today = Utc::now().date_naive().to_string();
    e.service
        .set_setting_locally("key_backup_verified_on", &today)
        .await
        .unwrap();
    assert_eq!(e.control("key_backup", now()).await.status, Status::Pass);
    assert_eq!(
        e.control("key_backup", now() + Duration::days(100)).await.status,
        Status::Warn
    );
    assert!(e
        .service
        .set_setting_locally("key_backup_verified_on", "last week")
        .await
        .is_err());
}

#[test]
fn tls_control() {
    let now = Utc::now();
    assert_eq!(doctor::tls_control(None, now).status, Status::Fail);
    assert_eq!(
        doctor::tls_control(Some(Err("unreadable".into())), now).status,
        Status::Fail
    );
    assert_eq!(
        doctor::tls_control(Some(Ok(now - Duration::days(1))), now).status,
        Status::Fail
    );
    assert_eq!(
        doctor::tls_control(Some(Ok(now + Duration::days(10))), now).status,
        Status::Warn
    );
    let c = doctor::tls_control(Some(Ok(now + Duration::days(100))), now);
    assert_eq!(c.status, Status::Pass);
    assert_eq!(c.gdpr, ["32(1)(a)"]);
    assert!(c.iso27001.contains(&"A.8.24"));
}

/// A certificate made with `openssl` (skipped without it): its expiry is read.
#[test]
fn certificate_expiry_is_read_from_the_pem() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "10",
        ])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    match made {
        Ok(out) if out.status.success() => {}
        _ => {
            eprintln!("note: skipped: openssl is not available");
            return;
        }
    }
    let not_after = doctor::certificate_not_after(&cert).unwrap();
    let days = (not_after - Utc::now()).num_days();
    assert!((9..=10).contains(&days), "{days}");
    assert_eq!(
        doctor::tls_control(Some(Ok(not_after)), Utc::now()).status,
        Status::Warn
    );
    assert!(
        doctor::certificate_not_after(&key).is_err(),
        "a key is not a certificate"
    );
    assert!(doctor::certificate_not_after(Path::new("/nonexistent.pem")).is_err());
}

#[test]
fn patch_level() {
    let now = Utc::now();
    let today = now.date_naive().to_string();
    let c = doctor::patch_control(&[], &today, 300, now);
    assert_eq!(c.status, Status::Pass, "{}", c.evidence);
    let old = (now - Duration::days(120)).date_naive().to_string();
    assert_eq!(
        doctor::patch_control(&[], &old, 300, now).status,
        Status::Warn,
        "stale snapshot"
    );
    let vulnerable = Finding {
        id: "RUSTSEC-2099-0001",
        package: "hyper",
        version: "0.14.1",
        title: "Request smuggling",
        informational: "",
    };
    let unmaintained = Finding {
        informational: "unmaintained",
        ..vulnerable
    };
    let c = doctor::patch_control(&[vulnerable], &today, 300, now);
    assert_eq!(c.status, Status::Fail);
    assert!(
        c.evidence.contains("hyper 0.14.1 (RUSTSEC-2099-0001)"),
        "{}",
        c.evidence
    );
    assert_eq!(
        doctor::patch_control(&[unmaintained], &today, 300, now).status,
        Status::Warn
    );
    // The build matched this very Cargo.lock.
    let (checked, date) = (doctor::advisories::PACKAGES_CHECKED, doctor::advisories::SNAPSHOT_DATE);
    assert!(checked > 100, "{checked}");
    assert!(chrono::NaiveDate::parse_from_str(date, "%Y-%m-%d").is_ok(), "{date}");
}

#[test]
fn score_counts_warnings_as_half() {
    let c = |status| {
        doctor::tls_control(
            match status {
                Status::Pass => Some(Ok(Utc::now() + Duration::days(100))),
                Status::Warn => Some(Ok(Utc::now() + Duration::days(10))),
                Status::Fail => None,
            },
            Utc::now(),
        )
    };
    assert_eq!(doctor::score(&[c(Status::Pass), c(Status::Pass)]), 100);
    assert_eq!(doctor::score(&[c(Status::Pass), c(Status::Warn)]), 75);
    assert_eq!(doctor::score(&[c(Status::Fail), c(Status::Fail), c(Status::Pass)]), 33);
}

#[tokio::test]
async fn a_new_process_signs_from_the_verification_checkpoint() {
    let e = env().await;
    e.user("sam", "sales").await;
    e.user("sal", "sales").await;
    let first = e.service.sign_tree_head().await.unwrap();
    let verified = e.service.verify_audit_log().await.unwrap();
    assert_eq!(verified.root, first.root);
    drop(e.service);

    // A new process: the Merkle frontier comes from the signed checkpoint.
    // Shown by a leaf hash changed below the checkpoint, which a rebuild from
    // every leaf would trip over at the first head and the seeded frontier
    // does not read.
    let db = rusqlite::Connection::open(e.config.data_dir.join("steward.db")).unwrap();
    db.execute("UPDATE audit_log SET leaf_hash = zeroblob(32) WHERE idx = 0", [])
        .unwrap();
    let service = Service::open(&e.config).await.unwrap();
    service
        .create_user("sue", "sales", Zeroizing::new("long-enough-password".into()))
        .await
        .unwrap();
    let head = service.sign_tree_head().await.unwrap();
    assert!(head.tree_size > first.tree_size);
    // The head is that of the log as it was written: once the leaf hash is
    // put back, the whole log verifies against it.
    let (bytes, stored): (Vec<u8>, Vec<u8>) = db
        .query_row("SELECT entry, leaf_hash FROM audit_log WHERE idx = 0", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(stored, vec![0; 32]);
    db.execute(
        "UPDATE audit_log SET leaf_hash = ?1 WHERE idx = 0",
        [steward_audit::leaf_hash(&bytes).to_vec()],
    )
    .unwrap();
    let report = service.verify_audit_log().await.unwrap();
    assert_eq!((report.size, report.root), (head.tree_size, head.root));

    // A checkpoint that does not verify is ignored: the frontier is rebuilt.
    drop(service);
    db.execute(
        "UPDATE settings SET value = replace(value, '\"full_at_ms\":', '\"full_at_ms\":1') WHERE name = 'audit.checkpoint'",
        [],
    )
    .unwrap();
    let service = Service::open(&e.config).await.unwrap();
    assert_eq!(service.sign_tree_head().await.unwrap(), head);
}
