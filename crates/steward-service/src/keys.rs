//! Secret keys kept in files under `<data-dir>/keys/` (mode 0600, directory
//! 0700), never in the database or the repository. A key file, once
//! written, is never replaced.
//!
//! Key types deliberately implement neither `Clone`, `Debug` nor
//! `Serialize`, and are zeroized on drop.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use rand::RngCore;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 256-bit secret key.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct SecretKey([u8; 32]);

impl SecretKey {
    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    #[must_use]
    pub fn generate() -> Self {
        let mut k = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }
}

/// The keys the service needs before the encryption issue adds the master key.
pub struct ServiceKeys {
    /// Keys the hash under which API and session tokens are stored.
    pub token: SecretKey,
    /// Keys the blind indexes used for exact and word search.
    pub index: SecretKey,
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the key file {0} is malformed (expected 64 hexadecimal characters)")]
    Malformed(PathBuf),
    #[error("the key file {0} is missing; run `steward init` to create keys")]
    Missing(PathBuf),
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> KeyError + 'p {
    move |source| KeyError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[must_use]
pub fn keys_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("keys")
}

impl ServiceKeys {
    /// Loads the keys, creating any that do not exist yet.
    pub fn load_or_create(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = keys_dir(data_dir);
        create_private_dir(&dir)?;
        Ok(Self {
            token: load_or_create_key(&dir.join("token.key"))?,
            index: load_or_create_key(&dir.join("index.key"))?,
        })
    }

    /// Loads existing keys; fails if any is missing.
    pub fn load(data_dir: &Path) -> Result<Self, KeyError> {
        let dir = keys_dir(data_dir);
        Ok(Self {
            token: load_key(&dir.join("token.key"))?,
            index: load_key(&dir.join("index.key"))?,
        })
    }
}

/// Creates `dir` (and parents) with mode 0700 if missing.
pub fn create_private_dir(dir: &Path) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(io("create", dir))
}

fn load_key(path: &Path) -> Result<SecretKey, KeyError> {
    let mut text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(KeyError::Missing(path.to_path_buf())),
        Err(e) => return Err(io("read", path)(e)),
    };
    let parsed = parse_hex_key(text.trim());
    text.zeroize();
    parsed.ok_or_else(|| KeyError::Malformed(path.to_path_buf()))
}

fn load_or_create_key(path: &Path) -> Result<SecretKey, KeyError> {
    match load_key(path) {
        Err(KeyError::Missing(_)) => {}
        other => return other,
    }
    let key = SecretKey::generate();
    let mut hex = to_hex(key.expose());
    let mut opts = fs::OpenOptions::new();
    // create_new: never overwrite a key that appeared meanwhile.
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let result = opts.open(path).and_then(|mut f| {
        f.write_all(hex.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    });
    hex.zeroize();
    match result {
        Ok(()) => Ok(key),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load_key(path),
        Err(e) => Err(io("write", path)(e)),
    }
}

fn to_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn parse_hex_key(s: &str) -> Option<SecretKey> {
    if s.len() != 64 {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, chunk) in s.as_bytes().chunks(2).enumerate() {
        let hi = (chunk[0] as char).to_digit(16)?;
        let lo = (chunk[1] as char).to_digit(16)?;
        k[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(SecretKey(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let a = ServiceKeys::load_or_create(dir.path()).unwrap();
        let b = ServiceKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(a.token.expose(), b.token.expose(), "a key is never replaced");
        assert_ne!(a.token.expose(), a.index.expose());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(keys_dir(dir.path()).join("token.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = fs::metadata(keys_dir(dir.path())).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        fs::write(keys_dir(dir.path()).join("index.key"), "zz").unwrap();
        assert!(matches!(ServiceKeys::load(dir.path()), Err(KeyError::Malformed(_))));
        let empty = tempfile::tempdir().unwrap();
        assert!(matches!(ServiceKeys::load(empty.path()), Err(KeyError::Missing(_))));
    }
}
