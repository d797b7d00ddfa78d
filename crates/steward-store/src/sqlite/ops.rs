//! Applying one write operation inside the writer's transaction.

use rusqlite::{ffi, params, Connection, OptionalExtension};

use crate::{fields, to_micros, AuditTip, IndexTerm, StoreError, StoreResult, WriteOp};

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
                "INSERT INTO contacts (subject_id, purposes, fields, created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(e)?
            .execute(params![
                id,
                row.purposes.join(","),
                fields::encode(&row.fields),
                to_micros(row.created_at),
                to_micros(row.updated_at),
                row.version
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
                "INSERT INTO users (id, username, role, password_hash, disabled, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )
            .map_err(e)?
            .execute(params![u.id.as_bytes(), u.username, u.role, u.password_hash, u.disabled, to_micros(u.created_at)])
            .map_err(e)?;
            Ok(())
        }
        WriteOp::InsertToken(t) => {
            conn.prepare_cached(
                "INSERT INTO tokens (id, user_id, kind, name, hash, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )
            .map_err(e)?
            .execute(params![
                t.id.as_bytes(),
                t.user_id.as_bytes(),
                t.kind.as_str(),
                t.name,
                t.hash,
                to_micros(t.created_at),
                t.expires_at.map(to_micros)
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
        WriteOp::AppendAudit(record) => {
            let t = match tip {
                Some(t) => t,
                None => tip.insert(load_tip(conn)?),
            };
            let (index, bytes, leaf) = t.seal(record);
            conn.prepare_cached(
                "INSERT INTO audit_log (idx, entry, leaf_hash, at, subject_id, actor_user, actor_token, action) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .map_err(e)?
            .execute(params![
                i64::try_from(index).map_err(|_| StoreError::Corrupt("audit index overflow".into()))?,
                bytes,
                leaf.as_slice(),
                to_micros(record.at),
                record.subject_id.map(|u| u.as_bytes().to_vec()),
                record.actor.user_id.map(|u| u.as_bytes().to_vec()),
                record.actor.token_id.map(|u| u.as_bytes().to_vec()),
                record.action
            ])
            .map_err(e)?;
            Ok(())
        }
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
