//! The service's view of the key hierarchy: loading and checking the master
//! key against the database, the instance keys it wraps (blind index, token
//! hashing), subject data keys, and sealing and opening field values.
//!
//! Start-up rules: on a fresh database a master key is created (when it is
//! a key file) and instance keys are generated and stored wrapped. On an
//! existing database the master key must be present and must unwrap the
//! instance keys; otherwise Steward refuses to start rather than serve
//! garbage or silently create new keys.

use std::path::PathBuf;

use steward_crypto::blind::keyed_hash;
use steward_crypto::master::{MasterKeyError, MasterKeySource, MasterKeys};
use steward_crypto::{field, BlindIndex, CryptoError, DataKey, FieldAad, KeyMaterial, WrappedKey};
use steward_domain::SubjectId;
use steward_store::{Store, StoreError, StoredKey, WriteOp};

/// Labels separating what a wrap is for.
pub(crate) const SUBJECT_KEY_LABEL: &[u8] = b"steward/subject-key/v1";
pub(crate) const INSTANCE_KEY_LABEL: &[u8] = b"steward/instance-key/v1";
const INDEX_KEY: &str = "blind_index";
const TOKEN_KEY: &str = "token_hash";
const CREDENTIAL_KEY: &str = "credential_seal";
const RECEIPT_KEY: &str = "receipt_signing";
const OUTBOX_KEY: &str = "outbox_seal";
/// The oldest kept key of the client-address ratchet; its wrap version is
/// the month it belongs to (see [`month_index`]).
pub(crate) const AUDIT_CLIENT_KEY: &str = "audit_client";
/// The version of newly generated subject data keys.
const DATA_KEY_VERSION: u32 = 1;

/// How personal field values are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldProtection {
    /// AES-256-GCM under per-subject data keys. Always, except:
    #[default]
    Encrypted,
    /// Plaintext with a format byte, without subject keys. Only for the
    /// benchmark's "without encryption" comparison; never for real data.
    PlaintextForBenchmark,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    #[error("the master key file {0} is missing and this database already holds encrypted data; refusing to start (restore the key file from your backup)")]
    MasterKeyMissing(PathBuf),
    #[error("the master key does not match this database (its keys are wrapped under master key {expected}, the loaded key is {loaded}); refusing to start")]
    WrongMasterKey { expected: String, loaded: String },
    #[error(transparent)]
    MasterKey(#[from] MasterKeyError),
    #[error("cannot read or store keys: {0}")]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// A subject's key, ready for use.
pub(crate) enum SubjectKey {
    Data(Box<DataKey>),
    /// Benchmark mode: no key.
    Plain,
}

pub(crate) struct Crypto {
    masters: MasterKeys,
    blind: BlindIndex,
    token_key: KeyMaterial,
    /// Seals second-factor secrets (TOTP seeds) at rest.
    credential: steward_crypto::aead::AeadKey,
    /// Signs consent receipts (JWS, Ed25519): the instance's receipt key.
    receipts: steward_crypto::jws::JwsKey,
    /// Seals queued e-mail (recipient and text) at rest.
    outbox: steward_crypto::aead::AeadKey,
    /// Client addresses in the audit log (see `steward_crypto::ratchet`).
    clients: ClientKeys,
    protection: FieldProtection,
}

/// The month an instant falls in, counted from year 0 (UTC).
#[must_use]
pub(crate) fn month_index(t: chrono::DateTime<chrono::Utc>) -> u32 {
    use chrono::Datelike;
    u32::try_from(t.year()).unwrap_or(0) * 12 + t.month0()
}

/// The client-address ratchet: the oldest month whose key is kept, that
/// key, and the sealed strings of recent (month, address) pairs.
pub(crate) struct ClientKeys {
    oldest: std::sync::RwLock<(u32, KeyMaterial)>,
    cache: std::sync::Mutex<std::collections::HashMap<(u32, String), String>>,
}

const CLIENT_CACHE: usize = 4_096;

impl ClientKeys {
    fn new(month: u32, key: KeyMaterial) -> Self {
        Self {
            oldest: std::sync::RwLock::new((month, key)),
            cache: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Month `m`'s key, unless it was ratcheted away.
    fn key_of(&self, m: u32) -> Option<KeyMaterial> {
        let guard = self.oldest.read().ok()?;
        let (oldest, key) = &*guard;
        (m >= *oldest).then(|| steward_crypto::ratchet::advance(key, *oldest, m))
    }

    pub(crate) fn oldest_month(&self) -> u32 {
        self.oldest.read().map_or(0, |g| g.0)
    }
}

fn to_stored(w: WrappedKey) -> StoredKey {
    StoredKey {
        master_key_id: w.master_key_id,
        version: w.version,
        wrapped: w.bytes,
    }
}

fn to_wrapped(s: &StoredKey) -> WrappedKey {
    WrappedKey {
        master_key_id: s.master_key_id.clone(),
        version: s.version,
        bytes: s.wrapped.clone(),
    }
}

/// Unwraps `stored` with whichever loaded master key wrapped it.
pub(crate) fn unwrap_with(
    masters: &MasterKeys,
    label: &[u8],
    owner: &[u8],
    stored: &StoredKey,
) -> Result<KeyMaterial, KeyringError> {
    let master = masters
        .find(&stored.master_key_id)
        .ok_or_else(|| KeyringError::WrongMasterKey {
            expected: stored.master_key_id.clone(),
            loaded: masters.current.id().to_string(),
        })?;
    master
        .unwrap(label, owner, &to_wrapped(stored))
        .map_err(|_| KeyringError::WrongMasterKey {
            expected: stored.master_key_id.clone(),
            loaded: master.id().to_string(),
        })
}

/// Wraps `key` for `owner` under `master`.
pub(crate) fn wrap_with(
    master: &steward_crypto::MasterKey,
    label: &[u8],
    owner: &[u8],
    version: u32,
    key: &KeyMaterial,
) -> Result<StoredKey, KeyringError> {
    Ok(to_stored(master.wrap(label, owner, version, key)?))
}

impl Crypto {
    /// Loads the master key and the instance keys, creating them on a fresh
    /// database; see the module docs for the rules.
    pub(crate) async fn load(
        store: &dyn Store,
        source: &MasterKeySource,
        protection: FieldProtection,
    ) -> Result<Self, KeyringError> {
        let instance = store.get_instance_keys().await?;
        let masters = match (MasterKeys::load(source)?, instance.is_empty()) {
            (Some(m), _) => m,
            (None, true) => MasterKeys::create(source)?,
            (None, false) => {
                let path = match source {
                    MasterKeySource::File(p) => p.clone(),
                    MasterKeySource::Env(v) => PathBuf::from(format!("${v}")),
                };
                return Err(KeyringError::MasterKeyMissing(path));
            }
        };
        let find = |name: &str| instance.iter().find(|(n, _)| n == name).map(|(_, k)| k);
        // Each instance key is unwrapped, or generated and stored wrapped
        // when this database does not have it yet.
        let mut created = Vec::new();
        let mut key = |name: &str| -> Result<KeyMaterial, KeyringError> {
            match find(name) {
                Some(k) => unwrap_with(&masters, INSTANCE_KEY_LABEL, name.as_bytes(), k),
                None => {
                    let k = KeyMaterial::generate()?;
                    let wrapped = wrap_with(masters.for_wrapping(), INSTANCE_KEY_LABEL, name.as_bytes(), 1, &k)?;
                    created.push(WriteOp::PutInstanceKey {
                        name: name.into(),
                        key: wrapped,
                    });
                    Ok(k)
                }
            }
        };
        let index = key(INDEX_KEY)?;
        let token = key(TOKEN_KEY)?;
        let credential = key(CREDENTIAL_KEY)?;
        let receipt_seed = key(RECEIPT_KEY)?;
        let outbox = key(OUTBOX_KEY)?;
        let clients = match find(AUDIT_CLIENT_KEY) {
            Some(k) => ClientKeys::new(
                k.version,
                unwrap_with(&masters, INSTANCE_KEY_LABEL, AUDIT_CLIENT_KEY.as_bytes(), k)?,
            ),
            None => {
                let month = month_index(chrono::Utc::now());
                let k = KeyMaterial::generate()?;
                let wrapped = wrap_with(
                    masters.for_wrapping(),
                    INSTANCE_KEY_LABEL,
                    AUDIT_CLIENT_KEY.as_bytes(),
                    month,
                    &k,
                )?;
                created.push(WriteOp::PutInstanceKey {
                    name: AUDIT_CLIENT_KEY.into(),
                    key: wrapped,
                });
                ClientKeys::new(month, k)
            }
        };
        if !created.is_empty() {
            store.write(created).await?;
        }
        let credential = steward_crypto::aead::AeadKey::new(credential.expose())?;
        let outbox = steward_crypto::aead::AeadKey::new(outbox.expose())?;
        let receipts =
            steward_crypto::jws::JwsKey::from_seed(receipt_seed.expose()).map_err(|_| CryptoError::Malformed)?;
        Ok(Self {
            masters,
            blind: BlindIndex::new(index),
            token_key: token,
            credential,
            receipts,
            outbox,
            clients,
            protection,
        })
    }

    /// A client address as the audit log records it at `at`: sealed under
    /// its month's key; `None` if that month's key is gone.
    pub(crate) fn seal_client(&self, at: chrono::DateTime<chrono::Utc>, address: &str) -> Option<String> {
        let m = month_index(at);
        let cache_key = (m, address.to_string());
        if let Some(s) = self.clients.cache.lock().ok().and_then(|c| c.get(&cache_key).cloned()) {
            return Some(s);
        }
        let key = self.clients.key_of(m)?;
        let sealed = steward_crypto::ratchet::seal(&key, m, address).ok()?;
        if let Ok(mut c) = self.clients.cache.lock() {
            if c.len() >= CLIENT_CACHE {
                c.clear();
            }
            c.insert(cache_key, sealed.clone());
        }
        Some(sealed)
    }

    /// The address behind what [`Self::seal_client`] recorded at `at`, while
    /// its month's key is kept; an address recorded in the clear (before
    /// sealing) as it is.
    pub(crate) fn open_client(&self, at: chrono::DateTime<chrono::Utc>, recorded: &str) -> Option<String> {
        if !recorded.starts_with(steward_crypto::ratchet::PREFIX) {
            return Some(recorded.to_string());
        }
        let m = month_index(at);
        steward_crypto::ratchet::open(&self.clients.key_of(m)?, m, recorded).ok()
    }

    /// The oldest month whose client addresses can still be opened.
    pub(crate) fn oldest_client_month(&self) -> u32 {
        self.clients.oldest_month()
    }

    /// Ratchets the client-address key forward to `month` (the months
    /// before it can no longer be opened or matched): returns the write
    /// that stores the new oldest key; [`Self::adopt_client_key`] it once
    /// written. `None` if `month` is not later than the oldest kept.
    pub(crate) fn ratchet_clients(&self, month: u32) -> Result<Option<(WriteOp, KeyMaterial)>, KeyringError> {
        let guard = self
            .clients
            .oldest
            .read()
            .map_err(|_| KeyringError::Crypto(CryptoError::Malformed))?;
        let (oldest, key) = &*guard;
        if month <= *oldest {
            return Ok(None);
        }
        let next = steward_crypto::ratchet::advance(key, *oldest, month);
        let wrapped = wrap_with(
            self.masters.for_wrapping(),
            INSTANCE_KEY_LABEL,
            AUDIT_CLIENT_KEY.as_bytes(),
            month,
            &next,
        )?;
        let op = WriteOp::PutInstanceKey {
            name: AUDIT_CLIENT_KEY.into(),
            key: wrapped,
        };
        Ok(Some((op, next)))
    }

    /// Makes `key` (of `month`) the oldest kept, forgetting the earlier ones.
    pub(crate) fn adopt_client_key(&self, month: u32, key: KeyMaterial) {
        if let Ok(mut g) = self.clients.oldest.write() {
            if month > g.0 {
                *g = (month, key);
            }
        }
        if let Ok(mut c) = self.clients.cache.lock() {
            c.retain(|(m, _), _| *m >= month);
        }
    }

    /// Adopts a ratchet step another process stored.
    pub(crate) fn reload_client_key(&self, stored: &StoredKey) -> Result<(), KeyringError> {
        if stored.version > self.oldest_client_month() {
            let key = unwrap_with(&self.masters, INSTANCE_KEY_LABEL, AUDIT_CLIENT_KEY.as_bytes(), stored)?;
            self.adopt_client_key(stored.version, key);
        }
        Ok(())
    }

    pub(crate) fn receipt_key(&self) -> &steward_crypto::jws::JwsKey {
        &self.receipts
    }

    pub(crate) fn blind(&self) -> &BlindIndex {
        &self.blind
    }

    pub(crate) fn token_hash(&self, token: &str) -> Vec<u8> {
        keyed_hash(&self.token_key, token.as_bytes())
    }

    /// A keyed hash for another secret kind (recovery codes, CSRF tokens),
    /// domain-separated from token hashes by `label`.
    pub(crate) fn labelled_hash(&self, label: &str, secret: &[u8]) -> Vec<u8> {
        let mut input = Vec::with_capacity(label.len() + 1 + secret.len());
        input.extend_from_slice(label.as_bytes());
        input.push(0);
        input.extend_from_slice(secret);
        let out = keyed_hash(&self.token_key, &input);
        zeroize::Zeroize::zeroize(&mut input);
        out
    }

    /// Seals an outbox message; `id` (the message id) is bound as AAD.
    pub(crate) fn seal_outbox(&self, id: &[u8; 16], message: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        self.outbox.seal_into(id, message, &mut out)?;
        Ok(out)
    }

    pub(crate) fn open_outbox(&self, id: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.outbox.open(id, sealed)
    }

    /// Seals a note (a staff reason, a verification method, an outcome, a
    /// requester's address) of
    /// record `id`'s `field`, as text for its column: `sealed:v1:` and the
    /// base64url of the ciphertext (under the outbox key, bound to the
    /// record and field, domain-separated from messages). Already sealed
    /// text is returned as it is.
    pub(crate) fn seal_note(&self, id: &[u8; 16], field: &str, text: &str) -> Result<String, CryptoError> {
        if text.starts_with(NOTE_PREFIX) {
            return Ok(text.to_string());
        }
        let mut out = Vec::new();
        self.outbox.seal_into(&note_aad(id, field), text.as_bytes(), &mut out)?;
        Ok(format!(
            "{NOTE_PREFIX}{}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, out)
        ))
    }

    /// Opens a note sealed by [`Self::seal_note`]; text without the prefix
    /// (written before notes were sealed) is returned as it is.
    pub(crate) fn open_note(&self, id: &[u8; 16], field: &str, stored: &str) -> Result<String, CryptoError> {
        let Some(b64) = stored.strip_prefix(NOTE_PREFIX) else {
            return Ok(stored.to_string());
        };
        let sealed = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, b64)
            .map_err(|_| CryptoError::Malformed)?;
        let plain = self.outbox.open(&note_aad(id, field), &sealed)?;
        String::from_utf8(plain).map_err(|_| CryptoError::Malformed)
    }

    /// Seals a record's bytes under the instance key, bound to `id` and
    /// the record's `field` (incident register entries).
    pub(crate) fn seal_record(&self, id: &[u8; 16], field: &str, plain: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        self.outbox.seal_into(&note_aad(id, field), plain, &mut out)?;
        Ok(out)
    }

    /// Opens bytes sealed by [`Self::seal_record`].
    pub(crate) fn open_record(&self, id: &[u8; 16], field: &str, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.outbox.open(&note_aad(id, field), sealed)
    }

    /// Seals a second-factor secret for `owner` (a credential id).
    pub(crate) fn seal_credential(&self, owner: &[u8; 16], secret: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut out = Vec::new();
        self.credential.seal_into(owner, secret, &mut out)?;
        Ok(out)
    }

    pub(crate) fn open_credential(&self, owner: &[u8; 16], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.credential.open(owner, sealed)
    }

    /// A new data key for `subject` and its wrapped form for storage (none
    /// in benchmark plaintext mode).
    pub(crate) fn new_subject_key(&self, subject: SubjectId) -> Result<(SubjectKey, Option<StoredKey>), KeyringError> {
        if self.protection == FieldProtection::PlaintextForBenchmark {
            return Ok((SubjectKey::Plain, None));
        }
        let material = KeyMaterial::generate()?;
        let stored = wrap_with(
            self.masters.for_wrapping(),
            SUBJECT_KEY_LABEL,
            subject.as_bytes(),
            DATA_KEY_VERSION,
            &material,
        )?;
        Ok((
            SubjectKey::Data(Box::new(DataKey::new(material, DATA_KEY_VERSION)?)),
            Some(stored),
        ))
    }

    /// The usable key of a subject from its stored form; `KeyDestroyed` once
    /// it has been crypto-shredded.
    pub(crate) fn subject_key(
        &self,
        subject: SubjectId,
        stored: Option<&StoredKey>,
    ) -> Result<SubjectKey, KeyringError> {
        match (self.protection, stored) {
            (FieldProtection::PlaintextForBenchmark, _) => Ok(SubjectKey::Plain),
            (FieldProtection::Encrypted, None) => Err(KeyringError::Crypto(CryptoError::KeyDestroyed)),
            (FieldProtection::Encrypted, Some(s)) => {
                let material = unwrap_with(&self.masters, SUBJECT_KEY_LABEL, subject.as_bytes(), s)?;
                Ok(SubjectKey::Data(Box::new(DataKey::new(material, s.version)?)))
            }
        }
    }

    pub(crate) fn seal(&self, key: &SubjectKey, aad: &FieldAad<'_>, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        match key {
            SubjectKey::Data(k) => field::seal(k, aad, plaintext.as_bytes()),
            SubjectKey::Plain => {
                let mut out = Vec::with_capacity(plaintext.len() + 1);
                out.push(0);
                out.extend_from_slice(plaintext.as_bytes());
                Ok(out)
            }
        }
    }

    pub(crate) fn open(&self, key: &SubjectKey, aad: &FieldAad<'_>, sealed: &[u8]) -> Result<String, CryptoError> {
        let bytes = match key {
            SubjectKey::Data(k) => field::open(k, aad, sealed)?,
            SubjectKey::Plain => match sealed.split_first() {
                Some((0, rest)) => rest.to_vec(),
                _ => return Err(CryptoError::Malformed),
            },
        };
        String::from_utf8(bytes).map_err(|_| CryptoError::Malformed)
    }
}

/// How a sealed staff note starts in its text column.
const NOTE_PREFIX: &str = "sealed:v1:";

/// The associated data of a sealed staff note: 16 bytes of
/// SHA-256("steward staff note" ‖ field ‖ record id).
fn note_aad(id: &[u8; 16], field: &str) -> [u8; 16] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    h.update(b"steward staff note\0");
    h.update(field.as_bytes());
    h.update([0]);
    h.update(id);
    let d = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}
