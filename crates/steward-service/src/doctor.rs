//! `steward doctor`: the installation checked against named security
//! controls, each mapped to GDPR Art. 32(1)(a)–(d) and to ISO/IEC
//! 27001:2022 Annex A, with pass/warn/fail, evidence (figures and names of
//! files, roles and settings — never personal data) and the fix in one
//! sentence. The score is the share of controls passed (a warning counts
//! half), out of 100.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::Serialize;
use steward_crypto::master::MasterKeySource;
use steward_store::TokenKind;

use crate::error::ServiceResult;
use crate::Service;

/// Advisories matched at build time against `Cargo.lock` (see `build.rs`).
pub mod advisories {
    include!(concat!(env!("OUT_DIR"), "/advisories.rs"));
}

/// How long an account or token may stay unused before it is flagged.
pub const INACTIVE_DAYS: i64 = 90;
/// A master key older than this should be rotated.
pub const MASTER_KEY_MAX_DAYS: i64 = 365;
/// A key backup checked longer ago than this is stale.
pub const KEY_BACKUP_MAX_DAYS: i64 = 90;
/// A certificate expiring sooner than this is flagged.
pub const CERT_WARN_DAYS: i64 = 30;
/// A signed tree head older than this is flagged (the server signs hourly).
pub const TREE_HEAD_MAX_HOURS: i64 = 24;
/// An advisory snapshot older than this is flagged.
pub const SNAPSHOT_MAX_DAYS: i64 = 90;
/// Anything due for deletion longer ago than this means the scheduler did
/// not run.
pub const RETENTION_GRACE_HOURS: i64 = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[schemars(rename = "ControlStatus")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Warn => "warn",
            Self::Fail => "fail",
        }
    }
}

/// One control's outcome.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Control {
    pub id: &'static str,
    pub title: &'static str,
    /// GDPR Art. 32(1) points it serves, e.g. `32(1)(b)`.
    pub gdpr: &'static [&'static str],
    /// ISO/IEC 27001:2022 Annex A control ids.
    pub iso27001: &'static [&'static str],
    pub status: Status,
    /// What was found: figures and names, never personal data.
    pub evidence: String,
    /// What to do, in one sentence (empty when it passes).
    pub fix: String,
}

/// The whole self-audit.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SecurityReport {
    pub generated_at: DateTime<Utc>,
    pub version: &'static str,
    pub score: u32,
    pub passed: usize,
    pub warnings: usize,
    pub failures: usize,
    pub controls: Vec<Control>,
}

/// What the installation looks like from outside the database: where the
/// files are, and the TLS certificate the server uses (if any).
#[derive(Debug, Clone, Default)]
pub struct Installation {
    pub data_dir: PathBuf,
    pub master_key: Option<MasterKeySource>,
    /// The PEM certificate the server serves, when TLS is on.
    pub tls_cert: Option<PathBuf>,
    /// The database is SQLite in the data dir (its file is checked too).
    pub sqlite_file: Option<PathBuf>,
    /// When the whole log verified from entry 0 within this long (in any
    /// process on this database), verify only the entries appended since,
    /// resuming from the signed checkpoint that verification left (the
    /// console's page and the compliance report; `steward doctor` and the
    /// API verify the whole log).
    pub reuse_verification: Option<Duration>,
}

struct Spec {
    id: &'static str,
    title: &'static str,
    gdpr: &'static [&'static str],
    iso27001: &'static [&'static str],
}

const TLS: Spec = Spec {
    id: "tls",
    title: "Encryption in transit (TLS) and certificate validity",
    gdpr: &["32(1)(a)"],
    iso27001: &["A.8.20", "A.8.24"],
};
const MFA: Spec = Spec {
    id: "mfa_coverage",
    title: "Second factor for staff who can read personal data",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.5.17", "A.8.5"],
};
const ADMINS: Spec = Spec {
    id: "admin_accounts",
    title: "Few privileged accounts",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.8.2"],
};
const INACTIVE: Spec = Spec {
    id: "inactive_users",
    title: "No dormant accounts",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.5.18"],
};
const TOKENS: Spec = Spec {
    id: "api_tokens",
    title: "API tokens expire and are in use",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.5.17", "A.8.5"],
};
const MASTER_KEY: Spec = Spec {
    id: "master_key_age",
    title: "Master key rotated regularly",
    gdpr: &["32(1)(a)"],
    iso27001: &["A.8.24"],
};
const PERMISSIONS: Spec = Spec {
    id: "file_permissions",
    title: "Data dir and key files readable by Steward's user only",
    gdpr: &["32(1)(a)", "32(1)(b)"],
    iso27001: &["A.8.3", "A.8.24"],
};
const AUDIT: Spec = Spec {
    id: "audit_log",
    title: "Audit log intact and its signed head recent",
    gdpr: &["32(1)(b)", "32(1)(d)"],
    iso27001: &["A.8.15", "A.8.17"],
};
const DSR: Spec = Spec {
    id: "dsr_deadlines",
    title: "Data-subject requests answered within their legal deadlines",
    gdpr: &["32(1)(d)"],
    iso27001: &["A.5.34"],
};
const INCIDENTS: Spec = Spec {
    id: "breach_deadlines",
    title: "Breaches notified within their legal clocks",
    gdpr: &["32(1)(c)", "32(1)(d)"],
    iso27001: &["A.5.24", "A.5.26"],
};
const TRAINING: Spec = Spec {
    id: "staff_training",
    title: "Staff with personal-data roles trained",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.6.3"],
};
const CONSENT: Spec = Spec {
    id: "consent_validity",
    title: "Consents within their validity",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.5.34"],
};
const RETENTION: Spec = Spec {
    id: "retention_overdue",
    title: "Retention schedules carried out on time",
    gdpr: &["32(1)(b)"],
    iso27001: &["A.5.33", "A.8.10"],
};
const BACKUP: Spec = Spec {
    id: "key_backup",
    title: "Backups of the key files made and checked",
    gdpr: &["32(1)(c)"],
    iso27001: &["A.8.13"],
};
const PATCHES: Spec = Spec {
    id: "patch_level",
    title: "No known vulnerable version of Steward or its dependencies",
    gdpr: &["32(1)(d)"],
    iso27001: &["A.8.8"],
};

fn control(spec: &Spec, status: Status, evidence: impl Into<String>, fix: &str) -> Control {
    Control {
        id: spec.id,
        title: spec.title,
        gdpr: spec.gdpr,
        iso27001: spec.iso27001,
        status,
        evidence: evidence.into(),
        fix: if status == Status::Pass {
            String::new()
        } else {
            fix.into()
        },
    }
}

/// The score out of 100: passes count 1, warnings one half.
#[must_use]
pub fn score(controls: &[Control]) -> u32 {
    if controls.is_empty() {
        return 100;
    }
    let points: usize = controls
        .iter()
        .map(|c| match c.status {
            Status::Pass => 2,
            Status::Warn => 1,
            Status::Fail => 0,
        })
        .sum();
    u32::try_from((points * 100 + controls.len()) / (2 * controls.len())).unwrap_or(100)
}

/// When a PEM certificate expires (the first certificate of the file).
pub fn certificate_not_after(path: &Path) -> Result<DateTime<Utc>, String> {
    use base64::Engine;
    use x509_cert::der::Decode;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let text = String::from_utf8_lossy(&pem);
    let start = text
        .find(BEGIN)
        .ok_or_else(|| format!("{} holds no PEM certificate", path.display()))?
        + BEGIN.len();
    let end = text[start..]
        .find(END)
        .map(|e| start + e)
        .ok_or_else(|| format!("{} holds no complete PEM certificate", path.display()))?;
    let body: String = text[start..end].chars().filter(|c| !c.is_whitespace()).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|_| format!("{} holds a damaged PEM certificate", path.display()))?;
    let cert = x509_cert::Certificate::from_der(&der)
        .map_err(|e| format!("{} is not a valid certificate: {e}", path.display()))?;
    let secs = cert.tbs_certificate.validity.not_after.to_unix_duration().as_secs();
    DateTime::from_timestamp(i64::try_from(secs).unwrap_or(i64::MAX), 0)
        .ok_or_else(|| format!("{} has an expiry out of range", path.display()))
}

/// The TLS control from the certificate's expiry (None: TLS is off).
#[must_use]
pub fn tls_control(cert: Option<Result<DateTime<Utc>, String>>, now: DateTime<Utc>) -> Control {
    let fix_off = "serve with --tls-cert and --tls-key (or behind a TLS-terminating proxy on the same host) and run doctor with the same --tls-cert";
    match cert {
        None => control(
            &TLS,
            Status::Fail,
            "TLS is off: personal data would cross the network in clear",
            fix_off,
        ),
        Some(Err(e)) => control(&TLS, Status::Fail, e, "give a readable PEM certificate with --tls-cert"),
        Some(Ok(not_after)) => {
            let days = (not_after - now).num_days();
            if not_after <= now {
                control(
                    &TLS,
                    Status::Fail,
                    format!("TLS is on; the certificate expired on {}", not_after.date_naive()),
                    "renew the certificate and restart (or send SIGHUP to) the server",
                )
            } else if days < CERT_WARN_DAYS {
                control(
                    &TLS,
                    Status::Warn,
                    format!(
                        "TLS is on; the certificate expires in {days} days ({})",
                        not_after.date_naive()
                    ),
                    "renew the certificate before it expires",
                )
            } else {
                control(
                    &TLS,
                    Status::Pass,
                    format!("TLS is on; the certificate is valid for {days} more days"),
                    "",
                )
            }
        }
    }
}

/// The patch-level control from the build's advisory matches.
#[must_use]
pub fn patch_control(
    findings: &[advisories::Finding],
    snapshot_date: &str,
    packages: usize,
    now: DateTime<Utc>,
) -> Control {
    let vulnerable: Vec<&advisories::Finding> = findings.iter().filter(|f| f.informational.is_empty()).collect();
    let notices: Vec<&advisories::Finding> = findings.iter().filter(|f| !f.informational.is_empty()).collect();
    let age = NaiveDate::parse_from_str(snapshot_date, "%Y-%m-%d")
        .map(|d| (now.date_naive() - d).num_days())
        .ok();
    let list = |fs: &[&advisories::Finding]| {
        fs.iter()
            .map(|f| format!("{} {} ({})", f.package, f.version, f.id))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let base = format!(
        "Steward {}; {packages} packages of Cargo.lock checked against the RustSec snapshot of {snapshot_date}",
        env!("CARGO_PKG_VERSION")
    );
    if !vulnerable.is_empty() {
        return control(
            &PATCHES,
            Status::Fail,
            format!("{base}: known vulnerable: {}", list(&vulnerable)),
            "upgrade the named packages (cargo update -p NAME, then rebuild) or Steward itself",
        );
    }
    if !notices.is_empty() {
        return control(
            &PATCHES,
            Status::Warn,
            format!("{base}: no vulnerability; notices: {}", list(&notices)),
            "replace or upgrade the unmaintained or unsound packages named",
        );
    }
    match age {
        Some(a) if a > SNAPSHOT_MAX_DAYS => control(
            &PATCHES,
            Status::Warn,
            format!("{base}: nothing found, but the snapshot is {a} days old"),
            "refresh the snapshot with scripts/refresh-advisories and rebuild",
        ),
        None => control(
            &PATCHES,
            Status::Warn,
            format!("{base}: the snapshot has no date"),
            "refresh the snapshot with scripts/refresh-advisories and rebuild",
        ),
        Some(_) => control(&PATCHES, Status::Pass, format!("{base}: nothing found"), ""),
    }
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).ok().map(|m| m.permissions().mode() & 0o777)
}

#[cfg(not(unix))]
fn mode_of(_path: &Path) -> Option<u32> {
    None
}

/// Group or other permission bits on the data dir, the keys dir, the key
/// files and the SQLite database.
#[must_use]
pub fn permissions_control(install: &Installation) -> Control {
    let mut paths: Vec<PathBuf> = vec![install.data_dir.clone(), crate::keys::keys_dir(&install.data_dir)];
    if let Ok(dir) = std::fs::read_dir(crate::keys::keys_dir(&install.data_dir)) {
        let mut files: Vec<PathBuf> = dir.filter_map(|e| e.ok().map(|e| e.path())).collect();
        files.sort();
        paths.extend(files);
    }
    if let Some(MasterKeySource::File(f)) = &install.master_key {
        if !paths.contains(f) {
            paths.push(f.clone());
        }
    }
    if let Some(db) = &install.sqlite_file {
        paths.push(db.clone());
    }
    let show = |p: &Path| {
        p.strip_prefix(&install.data_dir)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
            .map_or_else(|| p.display().to_string(), |r| r.display().to_string())
    };
    let mut open = Vec::new();
    let mut checked = 0;
    for p in &paths {
        if let Some(mode) = mode_of(p) {
            checked += 1;
            if mode & 0o077 != 0 {
                open.push(format!("{} is {mode:04o}", show(p)));
            }
        }
    }
    if open.is_empty() {
        control(
            &PERMISSIONS,
            Status::Pass,
            format!("{checked} paths checked; none readable by group or others"),
            "",
        )
    } else {
        control(
            &PERMISSIONS,
            Status::Fail,
            format!("{checked} paths checked; {}", open.join(", ")),
            "chmod 0700 the directories and 0600 the files named, owned by the user Steward runs as",
        )
    }
}

impl Service {
    /// Records the certificate the server serves (HTTPS), for the TLS control.
    pub fn set_tls_certificate(&self, cert: Option<PathBuf>) {
        *self.tls_cert.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = cert;
    }

    /// This service's installation: its data dir, master key, database file
    /// and (when serving HTTPS) certificate.
    #[must_use]
    pub fn installation(&self) -> Installation {
        let url = self.config.database_url();
        let sqlite_file = url
            .strip_prefix("sqlite://")
            .map(|rest| PathBuf::from(rest.split('?').next().unwrap_or(rest)));
        Installation {
            data_dir: self.config.data_dir.clone(),
            master_key: Some(self.config.master_key_source()),
            tls_cert: self
                .tls_cert
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            sqlite_file,
            reuse_verification: None,
        }
    }

    /// The self-audit for an administrator or auditor (audited).
    pub async fn security_report_for(&self, p: &crate::auth::Principal) -> ServiceResult<SecurityReport> {
        self.security_report_as(p, None).await
    }

    /// [`Service::security_report_for`], accepting a whole-log verification
    /// made within `reuse` (the console's page).
    pub async fn security_report_as(
        &self,
        p: &crate::auth::Principal,
        reuse: Option<Duration>,
    ) -> ServiceResult<SecurityReport> {
        let allowed = self
            .inventory
            .role(&p.role)
            .is_some_and(|r| r.actions.iter().any(|a| a == "users.manage" || a == "audit.read"));
        if !allowed || p.mfa_pending {
            return Err(crate::ServiceError::Forbidden(format!(
                "role '{}' may not read the security report (admin, auditor or dpo)",
                p.role
            )));
        }
        let mut install = self.installation();
        install.reuse_verification = reuse;
        let report = self.security_report(&install, Utc::now()).await?;
        self.store
            .write(vec![self.principal_entry(p, "report.security", &[])])
            .await?;
        Ok(report)
    }

    /// The self-audit of this installation at `now`.
    pub async fn security_report(&self, install: &Installation, now: DateTime<Utc>) -> ServiceResult<SecurityReport> {
        let settings = self.settings().await?;
        let users = self.list_users(None).await?;
        let rows = self.store.list_users().await?;
        let personal = |role: &str| self.inventory.role(role).is_some_and(|r| !r.purposes.is_empty());
        let active: Vec<_> = users.iter().filter(|u| !u.disabled).collect();
        let mut controls = Vec::new();

        // TLS.
        let cert = install.tls_cert.as_deref().map(certificate_not_after);
        controls.push(tls_control(cert, now));

        // Second factors.
        let mut by_role: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        for u in active.iter().filter(|u| personal(&u.role)) {
            let e = by_role.entry(u.role.as_str()).or_default();
            e.0 += usize::from(u.mfa_enabled);
            e.1 += 1;
        }
        let (with, total) = by_role.values().fold((0, 0), |(a, b), (w, t)| (a + w, b + t));
        let roles = by_role
            .iter()
            .map(|(r, (w, t))| format!("{r} {w}/{t}"))
            .collect::<Vec<_>>()
            .join(", ");
        let evidence = if total == 0 {
            "no active user has a role that reads personal data".to_string()
        } else {
            format!(
                "{with} of {total} active users with personal-data roles have a second factor ({roles}); require_mfa is {}",
                settings.require_mfa
            )
        };
        controls.push(if with == total {
            control(&MFA, Status::Pass, evidence, "")
        } else if settings.require_mfa {
            control(
                &MFA,
                Status::Warn,
                evidence,
                "have the users without a second factor enrol one (they are asked at their next sign-in)",
            )
        } else {
            control(
                &MFA,
                Status::Fail,
                evidence,
                "turn require_mfa on (steward settings set require_mfa true) and have every user enrol a second factor",
            )
        });

        // Administrators.
        let admins = active
            .iter()
            .filter(|u| {
                self.inventory
                    .role(&u.role)
                    .is_some_and(|r| r.actions.iter().any(|a| a == "users.manage"))
            })
            .count();
        let evidence = format!("{admins} active accounts can manage users");
        controls.push(match admins {
            0 => control(
                &ADMINS,
                Status::Warn,
                evidence,
                "create one administrator (steward user create NAME --role admin) so accounts can be managed and disabled quickly",
            ),
            1..=3 => control(&ADMINS, Status::Pass, evidence, ""),
            _ => control(
                &ADMINS,
                Status::Warn,
                evidence,
                "keep at most three administrators; give the others a role without users.manage",
            ),
        });

        // Dormant accounts and tokens.
        let cutoff = now - Duration::days(INACTIVE_DAYS);
        let mut dormant = 0;
        let mut never_expire = 0;
        let mut unused = 0;
        let mut api_tokens = 0;
        for u in rows.iter().filter(|u| !u.disabled) {
            let tokens = self.store.list_tokens(u.id).await?;
            let last = tokens
                .iter()
                .flat_map(|t| [Some(t.created_at), t.last_used_at])
                .flatten()
                .max()
                .unwrap_or(u.created_at)
                .max(u.created_at);
            if last < cutoff {
                dormant += 1;
            }
            for t in tokens
                .iter()
                .filter(|t| t.kind == TokenKind::Api && t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now))
            {
                api_tokens += 1;
                if t.expires_at.is_none() {
                    never_expire += 1;
                }
                if t.last_used_at.unwrap_or(t.created_at) < cutoff {
                    unused += 1;
                }
            }
        }
        let evidence = format!(
            "{dormant} of {} active accounts unused for {INACTIVE_DAYS} days or more",
            rows.iter().filter(|u| !u.disabled).count()
        );
        controls.push(if dormant == 0 {
            control(&INACTIVE, Status::Pass, evidence, "")
        } else {
            control(
                &INACTIVE,
                Status::Warn,
                evidence,
                "disable the accounts nobody uses (steward user disable NAME); steward user list shows them",
            )
        });
        let evidence = format!(
            "{api_tokens} valid API tokens: {never_expire} without an expiry, {unused} unused for {INACTIVE_DAYS} days or more"
        );
        controls.push(if never_expire == 0 && unused == 0 {
            control(&TOKENS, Status::Pass, evidence, "")
        } else {
            control(
                &TOKENS,
                Status::Warn,
                evidence,
                "revoke unused tokens and re-issue the others with --expires-in-days",
            )
        });

        // Master key age.
        controls.push(match &install.master_key {
            Some(MasterKeySource::Env(var)) => control(
                &MASTER_KEY,
                Status::Warn,
                format!("the master key comes from the environment variable {var}; its age is not visible to Steward"),
                "rotate it on your key manager's schedule (at least yearly) and record the date there",
            ),
            Some(MasterKeySource::File(path)) => {
                let modified = std::fs::metadata(path)
                    .and_then(|m| m.modified())
                    .ok()
                    .map(DateTime::<Utc>::from);
                match modified {
                    None => control(
                        &MASTER_KEY,
                        Status::Fail,
                        "the master key file cannot be read",
                        "check the data dir; steward init creates the key",
                    ),
                    Some(at) => {
                        let days = (now - at).num_days().max(0);
                        let evidence = format!(
                            "the master key was created or last rotated {days} days ago ({})",
                            at.date_naive()
                        );
                        if days > MASTER_KEY_MAX_DAYS {
                            control(
                                &MASTER_KEY,
                                Status::Warn,
                                evidence,
                                "rotate it with steward keys rotate (stop the server first)",
                            )
                        } else {
                            control(&MASTER_KEY, Status::Pass, evidence, "")
                        }
                    }
                }
            }
            None => control(
                &MASTER_KEY,
                Status::Warn,
                "the master key's source is unknown to this check",
                "run steward doctor on the host that serves",
            ),
        });

        controls.push(permissions_control(install));

        // The audit log.
        let heads = self.store.tree_heads().await?;
        let latest = heads.iter().map(|h| h.timestamp_ms).max();
        let verified = self
            .verify_audit_log_resuming(install.reuse_verification)
            .await
            .map(|v| (v.report, v.full_at));
        controls.push(match verified {
            Err(e) => control(
                &AUDIT,
                Status::Fail,
                format!("the audit log does not verify: {e}"),
                "treat it as an incident: keep a copy of the database, find the first changed entry with steward audit verify and restore from backup",
            ),
            Ok((report, full_at)) => {
                let age = latest
                    .and_then(DateTime::<Utc>::from_timestamp_millis)
                    .map(|t| (now - t).num_hours());
                let how = if report.resumed_from == 0 {
                    format!("{} entries verify against {} signed tree heads", report.entries, report.heads_checked)
                } else {
                    format!(
                        "{} entries verify: the whole log verified {} minutes ago, the {} entries since then now (against {} signed tree heads)",
                        report.entries,
                        (Utc::now() - full_at).num_minutes(),
                        report.entries - report.resumed_from,
                        report.heads_checked
                    )
                };
                let evidence = format!(
                    "{how}; the latest head is {}",
                    age.map_or_else(|| "missing".to_string(), |h| format!("{h} hours old"))
                );
                match age {
                    Some(h) if h <= TREE_HEAD_MAX_HOURS => control(&AUDIT, Status::Pass, evidence, ""),
                    _ => control(
                        &AUDIT,
                        Status::Warn,
                        evidence,
                        "keep steward serve running (it signs a head every hour) or sign one with steward audit tree-head",
                    ),
                }
            }
        });

        // Deadlines: requests and breaches.
        let open = self.list_dsr(None, Some("open")).await?;
        let overdue = open.iter().filter(|d| d.deadline == Some("overdue")).count();
        let soon = open.iter().filter(|d| d.deadline == Some("due_soon")).count();
        let evidence = format!(
            "{} open requests: {overdue} overdue, {soon} due within 7 days",
            open.len()
        );
        controls.push(if overdue > 0 {
            control(
                &DSR,
                Status::Fail,
                evidence,
                "answer the overdue requests now (steward dsr list --status overdue), or extend them with reasons while that is still possible",
            )
        } else if soon > 0 {
            control(&DSR, Status::Warn, evidence, "answer the requests due soon (steward dsr list --status due-soon)")
        } else {
            control(&DSR, Status::Pass, evidence, "")
        });
        let incidents = self.incident_register(false).await?;
        let late = incidents.iter().filter(|i| i.overdue).count();
        let evidence = format!(
            "{} incidents on the register, {late} past an open legal deadline",
            incidents.len()
        );
        controls.push(if late == 0 {
            control(&INCIDENTS, Status::Pass, evidence, "")
        } else {
            control(
                &INCIDENTS,
                Status::Fail,
                evidence,
                "notify the authority (and the people, if the risk is high) now, recording the reason for the delay (steward breach list --overdue)",
            )
        });

        // Training.
        let untrained = active
            .iter()
            .filter(|u| personal(&u.role) && !u.training_current)
            .count();
        let staff = active.iter().filter(|u| personal(&u.role)).count();
        let evidence = format!(
            "{untrained} of {staff} active users with personal-data roles lack current training; require_training is {}",
            settings.require_training
        );
        controls.push(if untrained == 0 {
            control(&TRAINING, Status::Pass, evidence, "")
        } else if settings.require_training {
            control(
                &TRAINING,
                Status::Warn,
                evidence,
                "record their training (steward user training add); until then they cannot read personal data",
            )
        } else {
            control(
                &TRAINING,
                Status::Fail,
                evidence,
                "train them and record it (steward user training add), and turn require_training on",
            )
        });

        // Consent validity.
        let mut past = 0;
        let mut granted = 0;
        for c in crate::compliance::latest_consents(self.store.consent_summaries().await?) {
            if c.status != "granted" {
                continue;
            }
            granted += 1;
            let days = self.inventory.purpose(&c.purpose).and_then(|p| p.consent_valid_days);
            if days.is_some_and(|d| c.recorded_at + Duration::days(i64::from(d)) <= now) {
                past += 1;
            }
        }
        let evidence = format!("{past} of {granted} current consents are past their validity (treated as expired)");
        controls.push(if past == 0 {
            control(&CONSENT, Status::Pass, evidence, "")
        } else {
            control(
                &CONSENT,
                Status::Warn,
                evidence,
                "ask those people to renew their consent; until they do, the purposes are not used for them",
            )
        });

        // Retention.
        let due = self
            .retention_preview(now - Duration::hours(RETENTION_GRACE_HOURS), 0)
            .await?;
        let deletions: u64 = due.iter().filter(|r| r.action != "review").map(|r| r.count).sum();
        let reviews: u64 = due.iter().filter(|r| r.action == "review").map(|r| r.count).sum();
        let rules: Vec<String> = due
            .iter()
            .filter(|r| r.count > 0)
            .map(|r| format!("{} {}", r.rule, r.count))
            .collect();
        let evidence = format!(
            "{deletions} records past their retention and {reviews} reviews outstanding for more than {RETENTION_GRACE_HOURS} hours{}",
            if rules.is_empty() { String::new() } else { format!(" ({})", rules.join(", ")) }
        );
        controls.push(if deletions > 0 {
            control(
                &RETENTION,
                Status::Fail,
                evidence,
                "keep steward serve running (its scheduler deletes hourly) or run steward retention run",
            )
        } else if reviews > 0 {
            control(
                &RETENTION,
                Status::Warn,
                evidence,
                "work through the review list (GET /api/v1/retention/review)",
            )
        } else {
            control(&RETENTION, Status::Pass, evidence, "")
        });

        // Key backups.
        controls.push(match settings.key_backup_verified_on {
            None => control(
                &BACKUP,
                Status::Fail,
                "no key backup is recorded: losing the data dir's keys loses every record for good",
                "copy the keys directory (master key, subject-key vault, audit key) to separate safe storage, check it restores, then record the date with steward settings set key_backup_verified_on YYYY-MM-DD",
            ),
            Some(day) => {
                let days = (now.date_naive() - day).num_days();
                let evidence = format!("the key backup was last made and checked {days} days ago ({day})");
                if days > KEY_BACKUP_MAX_DAYS {
                    control(
                        &BACKUP,
                        Status::Warn,
                        evidence,
                        "make and check a fresh backup of the keys, then record the date (key_backup_verified_on)",
                    )
                } else {
                    control(&BACKUP, Status::Pass, evidence, "")
                }
            }
        });

        controls.push(patch_control(
            advisories::FINDINGS,
            advisories::SNAPSHOT_DATE,
            advisories::PACKAGES_CHECKED,
            now,
        ));

        let count = |s: Status| controls.iter().filter(|c| c.status == s).count();
        Ok(SecurityReport {
            generated_at: now,
            version: env!("CARGO_PKG_VERSION"),
            score: score(&controls),
            passed: count(Status::Pass),
            warnings: count(Status::Warn),
            failures: count(Status::Fail),
            controls,
        })
    }
}

#[cfg(test)]
#[path = "semver_req.rs"]
mod semver_req;

#[cfg(test)]
mod tests {
    use super::semver_req::{affected, matches, parse_version};

    #[test]
    fn versions_and_ranges() {
        assert_eq!(parse_version("1.2.3"), Some((1, 2, 3)));
        assert_eq!(parse_version("0.9.0-rc.1"), Some((0, 9, 0)));
        assert_eq!(parse_version("1.2"), None);
        assert_eq!(matches(">= 0.14.10", "0.14.10"), Some(true));
        assert_eq!(matches(">= 0.14.10", "0.14.9"), Some(false));
        assert_eq!(matches(">= 1.1.0, < 1.2.0", "1.1.5"), Some(true));
        assert_eq!(matches(">= 1.1.0, < 1.2.0", "1.2.0"), Some(false));
        assert_eq!(matches("^0.13.10", "0.13.12"), Some(true));
        assert_eq!(matches("^0.13.10", "0.14.0"), Some(false));
        assert_eq!(matches("^1.4", "1.9.0"), Some(true));
        assert_eq!(matches("^1.4", "2.0.0"), Some(false));
        assert_eq!(matches("~0.3.2", "0.3.9"), Some(true));
        assert_eq!(matches("~0.3.2", "0.4.0"), Some(false));
        assert_eq!(matches("< 0.2", "0.1.9"), Some(true));
        assert_eq!(matches("<= 0.2", "0.2.5"), Some(true));
        assert_eq!(matches("> 0.2", "0.2.5"), Some(false));
        assert_eq!(matches("= 1.0.0", "1.0.0"), Some(true));
        assert_eq!(matches("0.0.3", "0.0.3"), Some(true));
        assert_eq!(matches("0.0.3", "0.0.4"), Some(false));
        assert_eq!(matches("nonsense", "1.0.0"), None);
    }

    #[test]
    fn affected_unless_patched_or_unaffected() {
        let s = |v: &[&str]| v.iter().map(|x| (*x).to_string()).collect::<Vec<_>>();
        assert!(affected("0.14.9", &s(&[">= 0.14.10"]), &[]));
        assert!(!affected("0.14.10", &s(&[">= 0.14.10"]), &[]));
        assert!(!affected("0.1.0", &s(&[">= 0.14.10"]), &s(&["< 0.2.0"])));
        assert!(affected("3.0.0", &[], &[]), "no fix: every version");
        assert!(!affected("3.0.0", &s(&["garbled"]), &[]), "never reported on a guess");
    }
}
