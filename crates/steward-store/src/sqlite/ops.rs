//! Applying one write operation inside the writer's transaction.

use rusqlite::{ffi, params, Connection, OptionalExtension};

use crate::{failures_to_db, fields, step_to_db, to_micros, AuditTip, IndexTerm, StoreError, StoreResult, WriteOp};
use steward_audit::AuditRecord;

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// Maps SQLite constraint failures to store errors; never includes values.
pub fn map_err(e: &rusqlite::Error) -> StoreError {
    if let rusqlite::Error::SqliteFailure(f, _) = e {
        match f.extended_code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => return StoreError::Duplicate,
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => return StoreError::MissingReference,
            _ => {}
        }
    }
    StoreError::Backend(e.to_string())
}

fn insert_terms(conn: &Connection, subject: &[u8; 16], terms: &[IndexTerm]) -> StoreResult<()> {
    let mut stmt = conn
        .prepare_cached("INSERT INTO contact_terms (term, subject_id, is_unique) VALUES (?1, ?2, ?3)")
        .map_err(|e| map_err(&e))?;
    for t in crate::dedup_terms(terms) {
        stmt.execute(params![t.term, subject, t.unique])
            .map_err(|e| map_err(&e))?;
    }
    Ok(())
}

pub fn apply(conn: &Connection, op: &WriteOp, tip: &mut Option<AuditTip>) -> StoreResult<()> {
    let e = |e: rusqlite::Error| map_err(&e);
    match op {
        WriteOp::InsertContact { row, terms } => {
            let id = row.subject_id.as_bytes();
            conn.prepare_cached(
                "INSERT INTO contacts (subject_id, purposes, fields, created_at, updated_at, version, restricted) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(e)?
            .execute(params![
                id,
                row.purposes.join(","),
                fields::encode(&row.fields),
                to_micros(row.created_at),
                to_micros(row.updated_at),
                row.version,
                row.restricted
            ])
            .map_err(e)?;
            insert_terms(conn, id, terms)
        }
        WriteOp::UpdateContact {
            row,
            expected_version,
            terms,
        } => {
            let id = row.subject_id.as_bytes();
            let n = conn
                .prepare_cached(
                    "UPDATE contacts SET purposes = ?2, fields = ?3, updated_at = ?4, version = ?5 WHERE subject_id = ?1 AND version = ?6",
                )
                .map_err(e)?
                .execute(params![
                    id,
                    row.purposes.join(","),
                    fields::encode(&row.fields),
                    to_micros(row.updated_at),
                    row.version,
                    expected_version
                ])
                .map_err(e)?;
            if n == 0 {
                let exists = conn
                    .prepare_cached("SELECT 1 FROM contacts WHERE subject_id = ?1")
                    .map_err(e)?
                    .query_row([id], |_| Ok(()))
                    .optional()
                    .map_err(e)?
                    .is_some();
                return Err(if exists {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                });
            }
            conn.prepare_cached("DELETE FROM contact_terms WHERE subject_id = ?1")
                .map_err(e)?
                .execute([id])
                .map_err(e)?;
            insert_terms(conn, id, terms)
        }
        WriteOp::RequireNotErased { identifier_hash } => {
            let proof: Option<(Vec<u8>, i64)> = conn
                .prepare_cached("SELECT request_id, erased_at FROM erasure_proofs WHERE identifier_hash = ?1")
                .map_err(e)?
                .query_row([identifier_hash], |r| Ok((r.get(0)?, r.get(1)?)))
                .optional()
                .map_err(e)?;
            match proof {
                None => Ok(()),
                Some((request, at)) => Err(StoreError::Erased {
                    request_id: uuid::Uuid::from_slice(&request)
                        .map_err(|_| StoreError::Corrupt("bad erasure proof".into()))?,
                    at: crate::from_micros(at)?,
                }),
            }
        }
        WriteOp::RequireNoLegalHold { subject_id } => {
            // The single writer serialises this check with every hold placed.
            let held = conn
                .prepare_cached("SELECT 1 FROM legal_holds WHERE subject_id = ?1 AND released_at IS NULL")
                .map_err(e)?
                .exists([subject_id.as_bytes()])
                .map_err(e)?;
            if held {
                Err(StoreError::LegalHold)
            } else {
                Ok(())
            }
        }
        WriteOp::DeleteSubjectRecords { subject_id } => {
            let id = subject_id.as_bytes();
            let exists = conn
                .prepare_cached("SELECT 1 FROM contacts WHERE subject_id = ?1")
                .map_err(e)?
                .exists([id])
                .map_err(e)?;
            if !exists {
                return Err(StoreError::NotFound);
            }
            exec(conn, "DELETE FROM interactions WHERE subject_id = ?1", [id], false)?;
            exec(conn, "DELETE FROM export_bundles WHERE subject_id = ?1", [id], false)
        }
        WriteOp::DeleteContact { subject_id } => {
            let n = conn
                .prepare_cached("DELETE FROM contacts WHERE subject_id = ?1")
                .map_err(e)?
                .execute([subject_id.as_bytes()])
                .map_err(e)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }
        WriteOp::InsertOrganization(o) => {
            conn.prepare_cached(
                "INSERT INTO organizations (id, name, domain, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(e)?
            .execute(params![
                o.id.as_bytes(),
                o.name,
                o.domain,
                to_micros(o.created_at),
                to_micros(o.updated_at)
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertDeal(d) => {
            conn.prepare_cached(
                "INSERT INTO deals (id, title, stage, amount_minor, currency, organization_id, subject_id, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )
            .map_err(e)?
            .execute(params![
                d.id.as_bytes(),
                d.title,
                d.stage.as_str(),
                d.amount.map(|a| a.minor()),
                d.currency.as_ref().map(|c| c.as_str().to_string()),
                d.organization_id.as_ref().map(|o| o.as_bytes().to_vec()),
                d.contact_id.as_ref().map(|c| c.as_bytes().to_vec()),
                to_micros(d.created_at),
                to_micros(d.updated_at)
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertInteraction(i) => {
            conn.prepare_cached(
                "INSERT INTO interactions (id, subject_id, kind, occurred_at, created_at, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(e)?
            .execute(params![
                i.id.as_bytes(),
                i.subject_id.as_bytes(),
                i.kind.as_str(),
                to_micros(i.occurred_at),
                to_micros(i.created_at),
                i.summary
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertUser(u) => {
            conn.prepare_cached(
                "INSERT INTO users (id, username, role, password_hash, disabled, created_at, failed_logins, locked_until) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(e)?
            .execute(params![
                u.id.as_bytes(),
                u.username,
                u.role,
                u.password_hash,
                u.disabled,
                to_micros(u.created_at),
                failures_to_db(u.failed_logins)?,
                u.locked_until.map(to_micros)
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertToken(t) => {
            conn.prepare_cached(
                "INSERT INTO tokens (id, user_id, kind, name, hash, created_at, expires_at, revoked_at, last_used_at, purpose, mfa) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )
            .map_err(e)?
            .execute(params![
                t.id.as_bytes(),
                t.user_id.as_bytes(),
                t.kind.as_str(),
                t.name,
                t.hash,
                to_micros(t.created_at),
                t.expires_at.map(to_micros),
                t.revoked_at.map(to_micros),
                t.last_used_at.map(to_micros),
                t.purpose,
                t.mfa
            ])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertSubjectKey { subject_id, key } => {
            conn.prepare_cached(
                "INSERT INTO subject_keys (subject_id, key_version, master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(e)?
            .execute(params![subject_id.as_bytes(), key.version, key.master_key_id, key.wrapped, now_micros()])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::RewrapSubjectKey {
            subject_id,
            from_master,
            key,
        } => {
            let n = conn
                .prepare_cached(
                    "UPDATE subject_keys SET key_version = ?2, master_key_id = ?3, wrapped = ?4 WHERE subject_id = ?1 AND master_key_id = ?5",
                )
                .map_err(e)?
                .execute(params![subject_id.as_bytes(), key.version, key.master_key_id, key.wrapped, from_master])
                .map_err(e)?;
            if n == 0 {
                Err(StoreError::VersionConflict)
            } else {
                Ok(())
            }
        }
        WriteOp::DestroySubjectKey { subject_id } => {
            let n = conn
                .prepare_cached("DELETE FROM subject_keys WHERE subject_id = ?1")
                .map_err(e)?
                .execute([subject_id.as_bytes()])
                .map_err(e)?;
            if n == 0 {
                Err(StoreError::NotFound)
            } else {
                Ok(())
            }
        }
        WriteOp::PutInstanceKey { name, key } => {
            conn.prepare_cached(
                "INSERT INTO instance_keys (name, key_version, master_key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (name) DO UPDATE SET key_version = excluded.key_version, master_key_id = excluded.master_key_id, wrapped = excluded.wrapped",
            )
            .map_err(e)?
            .execute(params![name, key.version, key.master_key_id, key.wrapped, now_micros()])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::RevokeToken { id, at } => {
            exec(conn, "UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?2) WHERE id = ?1", params![id.as_bytes(), to_micros(*at)], true)
        }
        WriteOp::RevokeUserTokens { user_id, at } => exec(
            conn,
            "UPDATE tokens SET revoked_at = ?2 WHERE user_id = ?1 AND revoked_at IS NULL",
            params![user_id.as_bytes(), to_micros(*at)],
            false,
        ),
        WriteOp::TouchToken { id, at } => {
            exec(conn, "UPDATE tokens SET last_used_at = ?2 WHERE id = ?1", params![id.as_bytes(), to_micros(*at)], false)
        }
        WriteOp::UpdateUser { id, role, disabled, password_hash } => exec(
            conn,
            "UPDATE users SET role = COALESCE(?2, role), disabled = COALESCE(?3, disabled), \
             password_hash = COALESCE(?4, password_hash) WHERE id = ?1",
            params![id.as_bytes(), role, disabled, password_hash],
            true,
        ),
        WriteOp::SetLoginFailures { user_id, failed_logins, locked_until } => exec(
            conn,
            "UPDATE users SET failed_logins = ?2, locked_until = ?3 WHERE id = ?1",
            params![user_id.as_bytes(), failures_to_db(*failed_logins)?, locked_until.map(to_micros)],
            true,
        ),
        WriteOp::PutCredential(c) => exec(
            conn,
            "INSERT OR REPLACE INTO credentials (id, user_id, kind, secret, confirmed, last_step, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                c.id.as_bytes(),
                c.user_id.as_bytes(),
                c.kind,
                c.secret,
                c.confirmed,
                c.last_step.map(step_to_db).transpose()?,
                to_micros(c.created_at)
            ],
            false,
        ),
        WriteOp::AcceptCredentialStep { id, step } => {
            let step = step_to_db(*step)?;
            let n = conn
                .prepare_cached(
                    "UPDATE credentials SET last_step = ?2, confirmed = 1 WHERE id = ?1 AND (last_step IS NULL OR last_step < ?2)",
                )
                .map_err(e)?
                .execute(params![id.as_bytes(), step])
                .map_err(e)?;
            if n == 0 {
                let exists = conn
                    .prepare_cached("SELECT 1 FROM credentials WHERE id = ?1")
                    .map_err(e)?
                    .query_row([id.as_bytes()], |_| Ok(()))
                    .optional()
                    .map_err(e)?
                    .is_some();
                return Err(if exists {
                    StoreError::VersionConflict
                } else {
                    StoreError::NotFound
                });
            }
            Ok(())
        }
        WriteOp::DeleteCredentials { user_id } => exec(
            conn,
            "DELETE FROM credentials WHERE user_id = ?1",
            params![user_id.as_bytes()],
            false,
        )
        .and_then(|()| exec(conn, "DELETE FROM recovery_codes WHERE user_id = ?1", params![user_id.as_bytes()], false)),
        WriteOp::ReplaceRecoveryCodes { user_id, hashes } => {
            exec(conn, "DELETE FROM recovery_codes WHERE user_id = ?1", params![user_id.as_bytes()], false)?;
            for h in hashes {
                exec(
                    conn,
                    "INSERT OR IGNORE INTO recovery_codes (user_id, code_hash) VALUES (?1, ?2)",
                    params![user_id.as_bytes(), h],
                    false,
                )?;
            }
            Ok(())
        }
        WriteOp::UseRecoveryCode { user_id, hash, at } => exec(
            conn,
            "UPDATE recovery_codes SET used_at = ?3 WHERE user_id = ?1 AND code_hash = ?2 AND used_at IS NULL",
            params![user_id.as_bytes(), hash, to_micros(*at)],
            true,
        ),
        WriteOp::InsertScimToken(_)
        | WriteOp::RevokeScimToken { .. }
        | WriteOp::TouchScimToken { .. }
        | WriteOp::PutScimUser(_) => super::scim::apply(conn, op),
        WriteOp::InsertTraining(t) => exec(
            conn,
            "INSERT INTO training_records (id, user_id, course, completed_on, expires_on, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.id.as_bytes(), t.user_id.as_bytes(), t.course, t.completed_on, t.expires_on, to_micros(t.created_at)],
            false,
        ),
        WriteOp::PutSetting { name, value } => exec(
            conn,
            "INSERT INTO settings (name, value, updated_at) VALUES (?1, ?2, ?3) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
            params![name, value, now_micros()],
            false,
        ),
        WriteOp::InsertNotice(n) => exec(
            conn,
            "INSERT INTO notices (id, version, language, text, text_hash, material, published_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![n.id.as_bytes(), n.version, n.language, n.text, n.text_hash, n.material, to_micros(n.published_at)],
            false,
        ),
        WriteOp::InsertConsent(c) => exec(
            conn,
            "INSERT INTO consents (id, subject_id, purpose, status, recorded_at, source, notice_version, notice_hash, evidence, \
             recorded_by, expires_at, confirmation_hash, confirmation_expires_at, confirmed_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            params![
                c.id.as_bytes(),
                c.subject_id.as_bytes(),
                c.purpose,
                c.status,
                to_micros(c.recorded_at),
                c.source,
                c.notice_version,
                c.notice_hash,
                c.evidence,
                c.recorded_by.map(|u| u.as_bytes().to_vec()),
                c.expires_at.map(to_micros),
                c.confirmation_hash,
                c.confirmation_expires_at.map(to_micros),
                c.confirmed_at.map(to_micros)
            ],
            false,
        ),
        WriteOp::SetConsentState { subject_id, consented } => exec(
            conn,
            "UPDATE contacts SET consented = ?2 WHERE subject_id = ?1",
            params![subject_id.as_bytes(), crate::encode_consented(consented)],
            true,
        ),
        WriteOp::UseConsentConfirmation { hash, at } => exec(
            conn,
            "UPDATE consents SET confirmed_at = ?2, confirmation_hash = NULL WHERE confirmation_hash = ?1 AND confirmed_at IS NULL",
            params![hash, to_micros(*at)],
            true,
        ),
        WriteOp::PutDsr(d) => exec(
            conn,
            "INSERT OR REPLACE INTO dsr (id, kind, regime, subject_id, identifier_hash, status, received_at, received_offset, due_at, \
             extensions, extension_reason, verified_at, verified_by, verification_method, completed_at, outcome, details, created_by, \
             created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
            params![
                d.id.as_bytes(),
                d.kind,
                d.regime,
                d.subject_id.map(|s| s.as_bytes().to_vec()),
                d.identifier_hash,
                d.status,
                to_micros(d.received_at),
                d.received_offset,
                to_micros(d.due_at),
                d.extensions,
                d.extension_reason,
                d.verified_at.map(to_micros),
                d.verified_by.map(|u| u.as_bytes().to_vec()),
                d.verification_method,
                d.completed_at.map(to_micros),
                d.outcome,
                d.details,
                d.created_by.map(|u| u.as_bytes().to_vec()),
                to_micros(d.created_at),
                to_micros(d.updated_at)
            ],
            false,
        ),
        WriteOp::PutLegalHold(h) => exec(
            conn,
            "INSERT OR REPLACE INTO legal_holds (id, subject_id, reason, created_by, created_at, released_at, released_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                h.id.as_bytes(),
                h.subject_id.as_bytes(),
                h.reason,
                h.created_by.map(|u| u.as_bytes().to_vec()),
                to_micros(h.created_at),
                h.released_at.map(to_micros),
                h.released_by.map(|u| u.as_bytes().to_vec())
            ],
            false,
        ),
        WriteOp::PutExportBundle(b) => exec(
            conn,
            "INSERT OR REPLACE INTO export_bundles (dsr_id, subject_id, sealed, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![b.dsr_id.as_bytes(), b.subject_id.as_bytes(), b.sealed, to_micros(b.created_at), to_micros(b.expires_at)],
            false,
        ),
        WriteOp::MarkOutboxSent { id, at } => exec(
            conn,
            "UPDATE outbox SET sent_at = ?2 WHERE id = ?1 AND sent_at IS NULL",
            params![id.as_bytes(), to_micros(*at)],
            true,
        ),
        WriteOp::PutOutbox(m) => exec(
            conn,
            "INSERT OR REPLACE INTO outbox (id, kind, message, created_at, sent_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![m.id.as_bytes(), m.kind, m.message, to_micros(m.created_at), m.sent_at.map(to_micros)],
            false,
        ),
        WriteOp::PutDsrVerification(v) => exec(
            conn,
            "INSERT OR REPLACE INTO dsr_verifications (token_hash, dsr_id, expires_at, used_at) VALUES (?1, ?2, ?3, ?4)",
            params![v.token_hash, v.dsr_id.as_bytes(), to_micros(v.expires_at), v.used_at.map(to_micros)],
            false,
        ),
        WriteOp::PutDrpAgent(a) => exec(
            conn,
            "INSERT INTO drp_agents (id, name, verify_key, token_hash, token_issued_at, created_by, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
             verify_key = excluded.verify_key, token_hash = excluded.token_hash, \
             token_issued_at = excluded.token_issued_at, created_by = excluded.created_by, created_at = excluded.created_at",
            params![
                a.id,
                a.name,
                a.verify_key,
                a.token_hash,
                a.token_issued_at.map(to_micros),
                a.created_by.map(|u| u.as_bytes().to_vec()),
                to_micros(a.created_at)
            ],
            false,
        ),
        WriteOp::DeleteDrpAgent { id } => exec(conn, "DELETE FROM drp_agents WHERE id = ?1", params![id], true),
        WriteOp::InsertDrpRequest(r) => exec(
            conn,
            "INSERT INTO drp_requests (dsr_id, agent_id, exercise, agent_request_id, attested, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                r.dsr_id.as_bytes(),
                r.agent_id,
                r.exercise,
                r.agent_request_id,
                r.attested.join(","),
                to_micros(r.created_at)
            ],
            false,
        ),
        WriteOp::InsertDrpNonce { digest, expires_at } => exec(
            conn,
            "INSERT INTO drp_nonces (digest, expires_at) VALUES (?1, ?2)",
            params![digest, to_micros(*expires_at)],
            false,
        ),
        WriteOp::PurgeDrpNonces { before } => exec(
            conn,
            "DELETE FROM drp_nonces WHERE expires_at < ?1",
            params![to_micros(*before)],
            false,
        ),
        WriteOp::PutPendingConsent(p) => exec(
            conn,
            "INSERT INTO pending_consents (token_hash, id, sealed, created_at, expires_at, used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                p.token_hash,
                p.id.as_bytes(),
                p.sealed,
                to_micros(p.created_at),
                to_micros(p.expires_at),
                p.used_at.map(to_micros)
            ],
            false,
        ),
        WriteOp::UsePendingConsent { token_hash, at } => exec(
            conn,
            "UPDATE pending_consents SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL AND expires_at > ?2",
            params![token_hash, to_micros(*at)],
            true,
        ),
        WriteOp::PurgeSentOutbox { before } => exec(
            conn,
            "DELETE FROM outbox WHERE sent_at IS NOT NULL AND created_at < ?1",
            params![to_micros(*before)],
            false,
        ),
        WriteOp::PurgePendingConsents { before } => exec(
            conn,
            "DELETE FROM pending_consents WHERE expires_at < ?1",
            params![to_micros(*before)],
            false,
        ),
        WriteOp::PutIncident(i) => exec(
            conn,
            "INSERT INTO incidents (id, status, aware_at, due_at, created_at, updated_at, sealed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) \
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, aware_at = excluded.aware_at, \
             due_at = excluded.due_at, created_at = excluded.created_at, updated_at = excluded.updated_at, \
             sealed = excluded.sealed",
            params![
                i.id.as_bytes(),
                i.status,
                to_micros(i.aware_at),
                i.due_at.map(to_micros),
                to_micros(i.created_at),
                to_micros(i.updated_at),
                i.sealed
            ],
            false,
        ),
        // The foreign key refuses an entry of an unknown incident.
        WriteOp::AppendIncidentEntry(e) => exec(
            conn,
            "INSERT INTO incident_entries (id, incident_id, kind, at, sealed) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![e.id.as_bytes(), e.incident_id.as_bytes(), e.kind, to_micros(e.at), e.sealed],
            false,
        ),
        WriteOp::InsertErasureProof { identifier_hash, request_id, at } => exec(
            conn,
            "INSERT OR IGNORE INTO erasure_proofs (identifier_hash, request_id, erased_at) VALUES (?1, ?2, ?3)",
            params![identifier_hash, request_id.as_bytes(), to_micros(*at)],
            false,
        ),
        WriteOp::SetRestricted { subject_id, restricted } => exec(
            conn,
            "UPDATE contacts SET restricted = ?2 WHERE subject_id = ?1",
            params![subject_id.as_bytes(), restricted],
            true,
        ),
        WriteOp::PurgeRecords { kind, ids } => {
            let stmts = crate::retention::purge_sql(*kind, |n| format!("?{n}"));
            for id in ids {
                for sql in &stmts {
                    exec(conn, sql, [id.as_bytes()], false)?;
                }
            }
            Ok(())
        }
        WriteOp::UnlinkDeals { ids } => {
            let sql = crate::retention::unlink_deal_sql(|n| format!("?{n}"));
            for id in ids {
                exec(conn, &sql, [id.as_bytes()], false)?;
            }
            Ok(())
        }
        WriteOp::CountRetention(r) => exec(
            conn,
            &crate::retention::count_retention_sql(|n| format!("?{n}")),
            params![
                r.run_id.as_bytes(),
                r.rule,
                r.record,
                r.action,
                to_micros(r.at),
                crate::retention::count_to_db(r.count)?
            ],
            false,
        ),
        WriteOp::AddAggregate(a) => exec(
            conn,
            &crate::retention::add_aggregate_sql(|n| format!("?{n}")),
            params![a.record, a.period, a.attribute, a.value, crate::retention::count_to_db(a.count)?],
            false,
        ),
        WriteOp::AppendAudit(record) => append_audit(conn, record, tip),
        WriteOp::PutTreeHead(h) => {
            conn.prepare_cached(
                "INSERT OR IGNORE INTO audit_tree_heads (tree_size, timestamp_ms, root, signature, key_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            )
            .map_err(e)?
            .execute(params![
                i64::try_from(h.tree_size).map_err(|_| StoreError::Corrupt("tree size overflow".into()))?,
                h.timestamp_ms,
                h.root.as_slice(),
                h.signature,
                h.key_id
            ])
            .map_err(e)?;
            Ok(())
        }
    }
}

/// Seals `record` as the next entry of the Merkle log.
pub(super) fn append_audit(conn: &Connection, record: &AuditRecord, tip: &mut Option<AuditTip>) -> StoreResult<()> {
    let e = |e: rusqlite::Error| map_err(&e);
    let t = match tip {
        Some(t) => t,
        None => tip.insert(load_tip(conn)?),
    };
    let (index, bytes, leaf) = t.seal(record);
    let index = i64::try_from(index).map_err(|_| StoreError::Corrupt("audit index overflow".into()))?;
    conn.prepare_cached(
        "INSERT INTO audit_log (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(e)?
    .execute(params![
        index,
        bytes,
        leaf.as_slice(),
        to_micros(record.at),
        record.subject_id.map(|u| u.as_bytes().to_vec()),
        record.actor.user_id.map(|u| u.as_bytes().to_vec()),
        record.actor.token_id.map(|u| u.as_bytes().to_vec()),
        record.action,
    ])
    .map_err(e)?;
    // The facts in their own table (migration 18), for the report's pass.
    conn.prepare_cached("INSERT INTO audit_facts (idx, facts) VALUES (?1, ?2)")
        .map_err(e)?
        .execute(params![index, steward_audit::facts::encode(record)])
        .map_err(e)?;
    Ok(())
}

/// Unindexed audit entries beyond which the writer adds them to the subject
/// and token indexes (`audit_subject_index`, migration 11, and
/// `audit_token_index`, migration 13) in one sorted batch. A batch touches
/// each index page once instead of once per commit; a query by subject or
/// token scans at most about this many entries of the unindexed tail.
pub(super) const SUBJECT_INDEX_BATCH: i64 = 4096;

/// The first audit index not yet in the subject and token indexes.
pub(super) fn indexed_upto(conn: &Connection) -> StoreResult<i64> {
    conn.prepare_cached("SELECT indexed_upto FROM audit_index_state WHERE id = 1")
        .map_err(|e| map_err(&e))?
        .query_row([], |r| r.get(0))
        .optional()
        .map_err(|e| map_err(&e))
        .map(Option::unwrap_or_default)
}

/// Adds the audit entries from `indexed_upto` up to the tip to the subject
/// index (in subject order) and to the token index (in token order), once
/// at least `min` of them have gathered, and moves `indexed_upto` past
/// them: all in the caller's transaction, so that `indexed_upto` always
/// holds for both indexes.
pub(super) fn merge_subject_index(conn: &Connection, tip: Option<AuditTip>, min: i64) -> StoreResult<()> {
    let Some(tip) = tip else { return Ok(()) };
    let next = i64::try_from(tip.next).map_err(|_| StoreError::Corrupt("audit index overflow".into()))?;
    let upto = indexed_upto(conn)?;
    if next - upto < min {
        return Ok(());
    }
    // All or nothing: a half-extended index would hold entries at or above
    // `indexed_upto`, which queries also find in the tail.
    conn.execute_batch("SAVEPOINT merge_audit_index")
        .map_err(|e| map_err(&e))?;
    let merged = extend_audit_indexes(conn, upto, next);
    let end = if merged.is_ok() {
        "RELEASE merge_audit_index"
    } else {
        "ROLLBACK TO merge_audit_index; RELEASE merge_audit_index"
    };
    conn.execute_batch(end).map_err(|e| map_err(&e))?;
    merged
}

/// Adds the audit entries `upto..next` to both indexes and sets
/// `indexed_upto` to `next`.
fn extend_audit_indexes(conn: &Connection, upto: i64, next: i64) -> StoreResult<()> {
    exec(
        conn,
        "INSERT OR IGNORE INTO audit_subject_index (subject_id, idx) \
         SELECT subject_id, idx FROM audit_log WHERE idx >= ?1 AND idx < ?2 AND subject_id IS NOT NULL \
         ORDER BY subject_id, idx",
        params![upto, next],
        false,
    )?;
    exec(
        conn,
        "INSERT OR IGNORE INTO audit_token_index (token_id, idx) \
         SELECT actor_token, idx FROM audit_log WHERE idx >= ?1 AND idx < ?2 AND actor_token IS NOT NULL \
         ORDER BY actor_token, idx",
        params![upto, next],
        false,
    )?;
    exec(
        conn,
        "INSERT INTO audit_index_state (id, indexed_upto) VALUES (1, ?1) \
         ON CONFLICT(id) DO UPDATE SET indexed_upto = excluded.indexed_upto",
        params![next],
        false,
    )
}

/// Runs one statement; with `must_touch`, touching no row is `NotFound`.
fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params, must_touch: bool) -> StoreResult<()> {
    let n = conn
        .prepare_cached(sql)
        .map_err(|e| map_err(&e))?
        .execute(params)
        .map_err(|e| map_err(&e))?;
    if must_touch && n == 0 {
        Err(StoreError::NotFound)
    } else {
        Ok(())
    }
}

/// The position after the last audit entry, read in the current transaction.
pub fn load_tip(conn: &Connection) -> StoreResult<AuditTip> {
    let last: Option<(i64, Vec<u8>)> = conn
        .prepare_cached("SELECT idx, leaf_hash FROM audit_log ORDER BY idx DESC LIMIT 1")
        .map_err(|e| map_err(&e))?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(|e| map_err(&e))?;
    match last {
        None => Ok(AuditTip { next: 0, prev: [0; 32] }),
        Some((idx, leaf)) => Ok(AuditTip {
            next: u64::try_from(idx).map_err(|_| StoreError::Corrupt("negative audit index".into()))? + 1,
            prev: leaf
                .try_into()
                .map_err(|_| StoreError::Corrupt("bad leaf hash".into()))?,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use steward_audit::{Actor, AuditRecord, Outcome};

    fn rows(conn: &Connection, sql: &str) -> Vec<(Vec<u8>, i64)> {
        let mut stmt = conn.prepare(sql).expect("prepare");
        let out = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        out
    }

    /// Entries appended before migration 15 have no facts: the scan hands
    /// over the entry itself for those, and the facts for the others.
    #[test]
    fn the_scan_hands_over_entries_without_facts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("steward.db")).expect("open");
        super::super::migrations::run(&mut conn).expect("migrate");
        let mut tip = None;
        for _ in 0..6 {
            let r = AuditRecord::new(chrono::Utc::now(), Actor::system(), "contact.read", Outcome::Ok);
            append_audit(&conn, &r, &mut tip).expect("append");
        }
        // Older entries: the first, two in the middle and the last.
        conn.execute("DELETE FROM audit_facts WHERE idx IN (0, 2, 3, 5)", [])
            .expect("older entries");
        let old: Vec<Vec<u8>> = (0..6)
            .map(|i| {
                conn.query_row("SELECT entry FROM audit_log WHERE idx = ?1", [i], |r| r.get(0))
                    .expect("entry")
            })
            .collect();
        let scan = |from: u64, to: u64, stop_after: usize| {
            let mut kinds = Vec::new();
            let go = super::super::read::scan_audit(&conn, from, to, &mut |i, row| {
                kinds.push(match row {
                    crate::ScanRow::Facts(f) => {
                        format!(
                            "{i} facts {}",
                            steward_audit::facts::decode(f).map_or("?", |f| f.action)
                        )
                    }
                    crate::ScanRow::Entry(e) => format!("{i} entry {}", e == old[i as usize].as_slice()),
                });
                kinds.len() < stop_after
            })
            .expect("scan");
            (go, kinds)
        };
        let (go, kinds) = scan(0, 6, usize::MAX);
        assert!(go);
        assert_eq!(
            kinds,
            [
                "0 entry true",
                "1 facts contact.read",
                "2 entry true",
                "3 entry true",
                "4 facts contact.read",
                "5 entry true"
            ]
        );
        assert_eq!(
            scan(2, 5, usize::MAX).1,
            ["2 entry true", "3 entry true", "4 facts contact.read"]
        );
        let (go, kinds) = scan(0, 6, 3);
        assert!(!go, "the visitor asked to stop");
        assert_eq!(kinds, ["0 entry true", "1 facts contact.read", "2 entry true"]);
    }

    /// Migration 18 copies the facts migration 15 kept beside the entries.
    #[test]
    fn migration_18_moves_the_facts_to_their_table() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("steward.db")).expect("open");
        super::super::migrations::run_to(&mut conn, 17).expect("migrate to 17");
        conn.execute(
            "INSERT INTO audit_log (idx, entry, leaf_hash, at, action, facts) VALUES (0, x'00', x'00', 0, 'x', NULL), (1, x'00', x'00', 0, 'x', x'0102')",
            [],
        )
        .expect("two entries");
        super::super::migrations::run(&mut conn).expect("migrate");
        let rows: Vec<(i64, Vec<u8>)> = conn
            .prepare("SELECT idx, facts FROM audit_facts ORDER BY idx")
            .expect("prepare")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        assert_eq!(rows, [(1, vec![1, 2])]);
    }

    /// A merge adds the same range of entries to the subject and the token
    /// index and moves `indexed_upto` past it, once enough have gathered.
    #[test]
    fn a_merge_extends_both_indexes_over_the_same_range() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut conn = Connection::open(dir.path().join("steward.db")).expect("open");
        super::super::migrations::run(&mut conn).expect("migrate");
        let (subject, token) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
        let mut tip = None;
        for i in 0..5 {
            let mut actor = Actor::system();
            actor.token_id = (i % 2 == 0).then_some(token);
            let mut r = AuditRecord::new(chrono::Utc::now(), actor, "contact.read", Outcome::Ok);
            r.subject_id = (i != 2).then_some(subject);
            append_audit(&conn, &r, &mut tip).expect("append");
        }
        merge_subject_index(&conn, tip, 6).expect("too few: nothing");
        assert_eq!(indexed_upto(&conn).expect("upto"), 0);
        merge_subject_index(&conn, tip, 5).expect("merge");
        assert_eq!(indexed_upto(&conn).expect("upto"), 5);
        let s = subject.as_bytes().to_vec();
        let t = token.as_bytes().to_vec();
        assert_eq!(
            rows(&conn, "SELECT subject_id, idx FROM audit_subject_index ORDER BY idx"),
            vec![(s.clone(), 0), (s.clone(), 1), (s.clone(), 3), (s, 4)]
        );
        assert_eq!(
            rows(&conn, "SELECT token_id, idx FROM audit_token_index ORDER BY idx"),
            vec![(t.clone(), 0), (t.clone(), 2), (t, 4)]
        );
    }
}
