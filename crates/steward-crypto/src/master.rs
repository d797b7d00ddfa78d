//! Where the master key lives and how it is replaced.
//!
//! By default the master key is a key file (64 hexadecimal characters, mode
//! 0600) in the data dir's `keys/` folder. An operator with an external
//! secret store can supply it instead as a file path or an environment
//! variable. A key file, once written, is never overwritten in place.
//!
//! Rotation writes the new key beside the current one as `<file>.next`;
//! while it exists both keys are loaded, so an interrupted rotation leaves
//! every wrapped key readable. When every key is re-wrapped, `<file>.next`
//! is renamed over `<file>` (an atomic replace), which retires the old key.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::{Zeroize, Zeroizing};

use crate::aead::CryptoError;
use crate::keys::{KeyMaterial, MasterKey};

#[derive(Debug, Clone)]
pub enum MasterKeySource {
    /// A key file; Steward may create it (first start) and rotate it.
    File(PathBuf),
    /// A key given in the named environment variable (hexadecimal).
    Env(String),
}

#[derive(Debug, thiserror::Error)]
pub enum MasterKeyError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the master key file {0} is malformed (expected 64 hexadecimal characters)")]
    Malformed(PathBuf),
    #[error("the environment variable {0} does not hold a master key (expected 64 hexadecimal characters)")]
    EnvMalformed(String),
    #[error("the environment variable {0} is not set")]
    EnvMissing(String),
    #[error("the master key comes from the environment variable {0}; rotate it in your secret store and use a key file for `steward keys rotate`")]
    NotRotatable(String),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}

/// The master keys in use: the current one and, during a rotation, the next.
pub struct MasterKeys {
    pub current: MasterKey,
    pub next: Option<MasterKey>,
    source: MasterKeySource,
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> MasterKeyError + 'p {
    move |source| MasterKeyError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// `<file>.next`: where a rotation keeps the new key until it completes.
#[must_use]
pub fn next_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".next");
    PathBuf::from(s)
}

fn parse_hex(s: &str) -> Option<KeyMaterial> {
    let s = s.trim();
    if s.len() != 64 {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        k[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    let key = KeyMaterial::from_bytes(k);
    k.zeroize();
    Some(key)
}

fn read_key_file(path: &Path) -> Result<Option<MasterKey>, MasterKeyError> {
    let mut text = match fs::read_to_string(path) {
        Ok(t) => Zeroizing::new(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("read", path)(e)),
    };
    let key = parse_hex(&text).ok_or_else(|| MasterKeyError::Malformed(path.to_path_buf()));
    text.zeroize();
    key.and_then(|k| Ok(Some(MasterKey::new(k)?)))
}

/// Writes a new key file with mode 0600; never replaces an existing file.
fn write_new_key_file(path: &Path, key: &KeyMaterial) -> Result<(), MasterKeyError> {
    let mut hex = Zeroizing::new(key.expose().iter().map(|b| format!("{b:02x}")).collect::<String>());
    hex.push('\n');
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io("create", path))?;
    f.write_all(hex.as_bytes()).map_err(io("write", path))?;
    f.sync_all().map_err(io("sync", path))?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> Result<(), MasterKeyError> {
    if let Some(dir) = path.parent() {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io("sync", dir))?;
    }
    Ok(())
}

impl MasterKeys {
    /// Loads the master key (and a rotation's next key); `None` when the
    /// key file does not exist yet.
    pub fn load(source: &MasterKeySource) -> Result<Option<Self>, MasterKeyError> {
        match source {
            MasterKeySource::File(path) => {
                let Some(current) = read_key_file(path)? else {
                    return Ok(None);
                };
                let next = read_key_file(&next_path(path))?;
                Ok(Some(Self {
                    current,
                    next,
                    source: source.clone(),
                }))
            }
            MasterKeySource::Env(var) => {
                let value = Zeroizing::new(std::env::var(var).map_err(|_| MasterKeyError::EnvMissing(var.clone()))?);
                let key = parse_hex(&value).ok_or_else(|| MasterKeyError::EnvMalformed(var.clone()))?;
                Ok(Some(Self {
                    current: MasterKey::new(key)?,
                    next: None,
                    source: source.clone(),
                }))
            }
        }
    }

    /// Creates a new master key file. Fails if one exists.
    pub fn create(source: &MasterKeySource) -> Result<Self, MasterKeyError> {
        let MasterKeySource::File(path) = source else {
            return Self::load(source)?.ok_or_else(|| MasterKeyError::EnvMissing(String::new()));
        };
        let key = KeyMaterial::generate()?;
        write_new_key_file(path, &key)?;
        Ok(Self {
            current: MasterKey::new(key)?,
            next: None,
            source: source.clone(),
        })
    }

    /// The loaded master key with this id.
    #[must_use]
    pub fn find(&self, id: &str) -> Option<&MasterKey> {
        std::iter::once(&self.current)
            .chain(self.next.as_ref())
            .find(|k| k.id() == id)
    }

    /// The key that new wraps should use: the next key during a rotation.
    #[must_use]
    pub fn for_wrapping(&self) -> &MasterKey {
        self.next.as_ref().unwrap_or(&self.current)
    }

    /// Starts (or resumes) a rotation: makes sure a next key exists on disk.
    pub fn begin_rotation(&mut self) -> Result<&MasterKey, MasterKeyError> {
        let path = match &self.source {
            MasterKeySource::File(p) => p.clone(),
            MasterKeySource::Env(var) => return Err(MasterKeyError::NotRotatable(var.clone())),
        };
        if self.next.is_none() {
            let key = KeyMaterial::generate()?;
            write_new_key_file(&next_path(&path), &key)?;
            self.next = Some(MasterKey::new(key)?);
        }
        Ok(self.for_wrapping())
    }

    /// Completes a rotation once nothing is wrapped under the old key: the
    /// next key replaces the current one and the old key file is gone.
    pub fn finish_rotation(&mut self) -> Result<(), MasterKeyError> {
        let MasterKeySource::File(path) = &self.source else {
            return Err(MasterKeyError::NotRotatable(String::new()));
        };
        let Some(next) = self.next.take() else { return Ok(()) };
        let from = next_path(path);
        fs::rename(&from, path).map_err(io("replace", path))?;
        sync_parent(path)?;
        self.current = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_load_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("master.key");
        let source = MasterKeySource::File(path.clone());
        assert!(MasterKeys::load(&source).unwrap().is_none());
        let created = MasterKeys::create(&source).unwrap();
        let id1 = created.current.id().to_string();
        assert!(MasterKeys::create(&source).is_err(), "never overwrites a key file");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        let mut keys = MasterKeys::load(&source).unwrap().unwrap();
        assert_eq!(keys.current.id(), id1);
        let id2 = keys.begin_rotation().unwrap().id().to_string();
        assert_ne!(id1, id2);
        // An interrupted rotation: both keys load.
        let reloaded = MasterKeys::load(&source).unwrap().unwrap();
        assert!(reloaded.find(&id1).is_some() && reloaded.find(&id2).is_some());
        assert_eq!(reloaded.for_wrapping().id(), id2);
        keys.finish_rotation().unwrap();
        let after = MasterKeys::load(&source).unwrap().unwrap();
        assert_eq!(after.current.id(), id2);
        assert!(after.find(&id1).is_none(), "the old key is retired");
        assert!(!next_path(&path).exists());

        fs::write(&path, "nothex").unwrap();
        assert!(matches!(MasterKeys::load(&source), Err(MasterKeyError::Malformed(_))));
    }

    #[test]
    fn wrap_binds_owner_and_master() {
        let m1 = MasterKey::new(KeyMaterial::generate().unwrap()).unwrap();
        let m2 = MasterKey::new(KeyMaterial::generate().unwrap()).unwrap();
        let dek = KeyMaterial::generate().unwrap();
        let w = m1.wrap(b"dek", b"subject-a", 1, &dek).unwrap();
        assert_eq!(m1.unwrap(b"dek", b"subject-a", &w).unwrap().expose(), dek.expose());
        assert!(m1.unwrap(b"dek", b"subject-b", &w).is_err(), "bound to its owner");
        assert!(m2.unwrap(b"dek", b"subject-a", &w).is_err(), "bound to its master key");
        let mut v2 = w.clone();
        v2.version = 2;
        assert!(m1.unwrap(b"dek", b"subject-a", &v2).is_err(), "bound to its version");
    }

    #[test]
    fn env_source() {
        let var = "STEWARD_TEST_MASTER_KEY_ENV_SOURCE";
        std::env::set_var(var, "ab".repeat(32));
        let keys = MasterKeys::load(&MasterKeySource::Env(var.into())).unwrap().unwrap();
        assert_eq!(keys.current.material().expose(), &[0xab; 32]);
        std::env::set_var(var, "short");
        assert!(matches!(
            MasterKeys::load(&MasterKeySource::Env(var.into())),
            Err(MasterKeyError::EnvMalformed(_))
        ));
        std::env::remove_var(var);
    }
}
