//! `steward keys rotate`: replace the master key without re-encrypting data.
//!
//! Every subject data key and instance key is unwrapped with the old master
//! key and wrapped with the new one, in batches, each batch its own
//! transaction. The new key is first written beside the old one
//! (`master.key.next`), and every loaded process can use both, so a rotation
//! interrupted at any point leaves all data readable; running the command
//! again resumes it. Only when nothing is wrapped under the old key any more
//! does the new key file replace the old one, retiring the old key.

use std::fs::File;
use std::path::Path;
use std::time::Duration;

use steward_crypto::master::MasterKeys;
use steward_store::{Store, WriteOp};

use crate::crypto::{unwrap_with, wrap_with, KeyringError, INSTANCE_KEY_LABEL, SUBJECT_KEY_LABEL};
use crate::Config;

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error("there is no master key to rotate (run `steward init` first)")]
    NoMasterKey,
    #[error("Steward is running with this data dir (it holds {0}); stop it before rotating keys")]
    InUse(String),
    #[error("cannot lock {path}: {source}")]
    Lock { path: String, source: std::io::Error },
    #[error("keys were still being wrapped under the old master key after {0} passes; stop every Steward process and run the rotation again")]
    Unfinished(u32),
    #[error(transparent)]
    Keys(#[from] KeyringError),
    #[error(transparent)]
    MasterKey(#[from] steward_crypto::master::MasterKeyError),
    #[error("cannot open the database: {0}")]
    Store(#[from] steward_store::StoreError),
}

#[derive(Debug, Clone)]
pub struct RotationOptions {
    /// Keys re-wrapped per transaction.
    pub batch_size: u32,
    /// A pause between batches (lets a live database breathe; tests use it
    /// to interrupt a rotation midway).
    pub pause: Option<Duration>,
}

impl Default for RotationOptions {
    fn default() -> Self {
        Self {
            batch_size: 500,
            pause: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RotationReport {
    pub old_key_id: String,
    pub new_key_id: String,
    /// Subject keys re-wrapped by this run.
    pub subject_keys: u64,
    /// Whether this run finished an earlier, interrupted rotation.
    pub resumed: bool,
}

/// The lock file that tells a rotation Steward is serving from a data dir.
#[must_use]
pub fn lock_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("steward.lock")
}

/// Takes the data dir's lock: shared for `serve`, exclusive for a rotation.
/// The lock lasts as long as the returned file is open.
pub fn lock_data_dir(data_dir: &Path, exclusive: bool) -> Result<File, RotationError> {
    let path = lock_path(data_dir);
    let lock_err = |source| RotationError::Lock {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(lock_err)?;
    let result = if exclusive {
        file.try_lock()
    } else {
        file.try_lock_shared()
    };
    match result {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(RotationError::InUse(path.display().to_string())),
        Err(std::fs::TryLockError::Error(e)) => Err(lock_err(e)),
    }
}

/// Rotates the master key; `progress` is told the running count of re-wrapped subject keys.
pub async fn rotate_master_key(
    config: &Config,
    options: &RotationOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RotationReport, RotationError> {
    let url = config.database_url();
    steward_store::check_url(&url)?;
    let _lock = lock_data_dir(&config.data_dir, true)?;
    let store = steward_store::open(&url, &crate::keys::subject_key_vault(&config.data_dir)).await?;
    let result = rotate(&*store, config, options, progress).await;
    store.close().await;
    result
}

async fn rotate(
    store: &dyn Store,
    config: &Config,
    options: &RotationOptions,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<RotationReport, RotationError> {
    let mut masters = MasterKeys::load(&config.master_key_source())?.ok_or(RotationError::NoMasterKey)?;
    let instance = store.get_instance_keys().await?;
    // The loaded keys must open this database before anything changes.
    for (name, key) in &instance {
        unwrap_with(&masters, INSTANCE_KEY_LABEL, name.as_bytes(), key)?;
    }
    let resumed = masters.next.is_some();
    let old_id = masters.current.id().to_string();
    let new_id = masters.begin_rotation()?.id().to_string();
    tracing::info!(old = %old_id, new = %new_id, resumed, "master key rotation started");

    let mut moved: u64 = 0;
    let mut passes = 0;
    while store.count_subject_keys_not_under(&new_id).await? > 0 {
        passes += 1;
        if passes > 3 {
            return Err(RotationError::Unfinished(passes - 1));
        }
        let mut after = None;
        loop {
            let batch = store
                .list_subject_keys(&old_id, after, options.batch_size.max(1))
                .await?;
            let Some((last, _)) = batch.last() else { break };
            after = Some(*last);
            let new_master = masters.for_wrapping();
            let mut ops = Vec::with_capacity(batch.len());
            for (subject, stored) in &batch {
                let key = unwrap_with(&masters, SUBJECT_KEY_LABEL, subject.as_bytes(), stored)?;
                let rewrapped = wrap_with(new_master, SUBJECT_KEY_LABEL, subject.as_bytes(), stored.version, &key)?;
                ops.push(WriteOp::RewrapSubjectKey {
                    subject_id: *subject,
                    from_master: old_id.clone(),
                    key: rewrapped,
                });
            }
            match store.write(ops).await {
                Ok(()) => moved += batch.len() as u64,
                // A subject erased meanwhile: the next pass recounts.
                Err(steward_store::StoreError::VersionConflict) => {}
                Err(e) => return Err(e.into()),
            }
            progress(moved);
            if let Some(pause) = options.pause {
                tokio::time::sleep(pause).await;
            }
        }
    }
    let mut ops = Vec::new();
    for (name, stored) in store.get_instance_keys().await? {
        if stored.master_key_id != new_id {
            let key = unwrap_with(&masters, INSTANCE_KEY_LABEL, name.as_bytes(), &stored)?;
            let rewrapped = wrap_with(
                masters.for_wrapping(),
                INSTANCE_KEY_LABEL,
                name.as_bytes(),
                stored.version,
                &key,
            )?;
            ops.push(WriteOp::PutInstanceKey { name, key: rewrapped });
        }
    }
    if !ops.is_empty() {
        store.write(ops).await?;
    }
    let mut record = steward_audit::AuditRecord::new(
        chrono::Utc::now(),
        steward_audit::Actor::system(),
        "key.rotate",
        steward_audit::Outcome::Ok,
    );
    record.reason = Some(format!(
        "master key {old_id} replaced by {new_id}; {moved} subject keys re-wrapped"
    ));
    store.write(vec![WriteOp::AppendAudit(Box::new(record))]).await?;
    masters.finish_rotation()?;
    tracing::info!(old = %old_id, new = %new_id, moved, "master key rotation finished; the old key is retired");
    Ok(RotationReport {
        old_key_id: old_id,
        new_key_id: new_id,
        subject_keys: moved,
        resumed,
    })
}
