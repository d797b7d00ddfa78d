//! Signed tree heads (Ed25519) and the audit signing key.
//!
//! # What is signed
//!
//! A tree head commits to the log's first `tree_size` entries. The signed
//! message is exactly 75 bytes ([`tree_head_bytes`]):
//!
//! ```text
//! b"steward-audit-tree-head-v1\n"   27 bytes, ASCII, ending in a line feed
//! tree_size                         8 bytes, unsigned, big-endian
//! timestamp_ms                      8 bytes, signed (two's complement), big-endian,
//!                                   milliseconds since 1970-01-01T00:00:00Z
//! root                              32 bytes, the RFC 9162 SHA-256 tree root
//! ```
//!
//! and the signature is plain Ed25519 (RFC 8032) over those bytes. A key is
//! named by its key id: the lower-case hex of the first 8 bytes of SHA-256 of
//! the 32-byte public key.
//!
//! # The key file
//!
//! The private key is a PKCS#8 v2 document (RFC 5958, as produced by
//! `ring`), stored base64-encoded (standard alphabet, padded) followed by a
//! line feed, in a file of mode 0600 that is created once and never
//! overwritten.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::merkle::Hash;

/// The domain-separation prefix of a signed tree head.
pub const TREE_HEAD_PREFIX: &[u8] = b"steward-audit-tree-head-v1\n";

/// The exact bytes a tree head signature covers (see the module docs).
#[must_use]
pub fn tree_head_bytes(tree_size: u64, timestamp_ms: i64, root: &Hash) -> Vec<u8> {
    let mut out = Vec::with_capacity(TREE_HEAD_PREFIX.len() + 48);
    out.extend_from_slice(TREE_HEAD_PREFIX);
    out.extend_from_slice(&tree_size.to_be_bytes());
    out.extend_from_slice(&timestamp_ms.to_be_bytes());
    out.extend_from_slice(root);
    out
}

/// Why the signing key could not be made, read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot {action} the audit signing key file {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the audit signing key file {0} is malformed (expected a base64 PKCS#8 Ed25519 key on one line)")]
    Malformed(PathBuf),
    #[error("cannot generate an audit signing key: the system random source failed")]
    Generate,
}

fn io<'p>(action: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> KeyError + 'p {
    move |source| KeyError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// The key id of a public key: hex of the first 8 bytes of its SHA-256.
#[must_use]
pub fn key_id_of(public_key: &[u8; 32]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, public_key);
    d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// The Ed25519 key pair that signs tree heads. Not `Clone`, `Debug` or
/// serialisable; the PKCS#8 bytes it was made from are zeroized after use.
/// (`ring` keeps the expanded private key inside `Ed25519KeyPair` and does
/// not wipe it on drop; that is outside this crate's reach.)
pub struct SigningKey {
    pair: Ed25519KeyPair,
}

impl SigningKey {
    fn from_pkcs8(pkcs8: &[u8]) -> Option<Self> {
        Ed25519KeyPair::from_pkcs8(pkcs8).ok().map(|pair| Self { pair })
    }

    fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>, KeyError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| KeyError::Generate)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    /// A new random key (not saved anywhere).
    pub fn generate() -> Result<Self, KeyError> {
        let pkcs8 = Self::generate_pkcs8()?;
        Self::from_pkcs8(&pkcs8).ok_or(KeyError::Generate)
    }

    /// Loads the key file; `None` if it does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, KeyError> {
        let text = match fs::read_to_string(path) {
            Ok(t) => Zeroizing::new(t),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                return Err(KeyError::Malformed(path.to_path_buf()))
            }
            Err(e) => return Err(io("read", path)(e)),
        };
        let line = text.strip_suffix('\n').unwrap_or(&text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let pkcs8 = Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(line)
                .map_err(|_| KeyError::Malformed(path.to_path_buf()))?,
        );
        Self::from_pkcs8(&pkcs8)
            .map(Some)
            .ok_or_else(|| KeyError::Malformed(path.to_path_buf()))
    }

    /// Loads the key file, or creates it with a new key if it does not
    /// exist (mode 0600, `create_new`: an existing file is never replaced;
    /// the file and its directory are synced).
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        if let Some(key) = Self::load(path)? {
            return Ok(key);
        }
        let pkcs8 = Self::generate_pkcs8()?;
        let mut text = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(pkcs8.as_slice()));
        text.push('\n');
        let mut opts = fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = match opts.open(path) {
            Ok(f) => f,
            // Someone else created it in the meantime: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Self::load(path)?.ok_or_else(|| io("read", path)(e));
            }
            Err(e) => return Err(io("create", path)(e)),
        };
        f.write_all(text.as_bytes()).map_err(io("write", path))?;
        f.sync_all().map_err(io("sync", path))?;
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(io("sync", dir))?;
        }
        Self::from_pkcs8(&pkcs8).ok_or(KeyError::Generate)
    }

    /// The 32-byte Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        let mut pk = [0u8; 32];
        pk.copy_from_slice(self.pair.public_key().as_ref());
        pk
    }

    /// Hex of the first 8 bytes of SHA-256 of the public key.
    #[must_use]
    pub fn key_id(&self) -> String {
        key_id_of(&self.public_key())
    }

    /// An Ed25519 signature of `msg`.
    #[must_use]
    pub fn sign(&self, msg: &[u8]) -> [u8; 64] {
        let mut sig = [0u8; 64];
        sig.copy_from_slice(self.pair.sign(msg).as_ref());
        sig
    }
}

/// Whether `sig` is a valid Ed25519 signature of `msg` by `public_key`.
#[must_use]
pub fn verify_signature(public_key: &[u8; 32], msg: &[u8], sig: &[u8]) -> bool {
    UnparsedPublicKey::new(&ED25519, public_key).verify(msg, sig).is_ok()
}

pub(crate) mod hex_hash {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(h: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&h.iter().map(|b| format!("{b:02x}")).collect::<String>())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        let bad = || serde::de::Error::custom("expected 64 lower-case hexadecimal digits");
        if s.len() != 64 {
            return Err(bad());
        }
        let mut h = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks_exact(2).enumerate() {
            let pair = std::str::from_utf8(pair).map_err(|_| bad())?;
            h[i] = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(h)
    }
}

pub(crate) mod hex_hashes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(hs: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(
            hs.iter()
                .map(|h| h.iter().map(|b| format!("{b:02x}")).collect::<String>()),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        #[derive(Deserialize)]
        struct One(#[serde(with = "super::hex_hash")] [u8; 32]);
        Ok(Vec::<One>::deserialize(d)?.into_iter().map(|o| o.0).collect())
    }
}

pub(crate) mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(b))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// A signed commitment to the first `tree_size` entries of the log.
///
/// Serialised (serde) with `root` as lower-case hex and `signature` as
/// standard base64.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedTreeHead {
    pub tree_size: u64,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    #[serde(with = "hex_hash")]
    pub root: Hash,
    /// 64 bytes of Ed25519 signature over [`SignedTreeHead::signed_bytes`].
    #[serde(with = "b64")]
    pub signature: Vec<u8>,
    /// The signing key's id ([`key_id_of`]).
    pub key_id: String,
}

impl SignedTreeHead {
    /// Signs the head for `tree_size` entries with root `root`.
    #[must_use]
    pub fn sign(key: &SigningKey, tree_size: u64, timestamp_ms: i64, root: Hash) -> Self {
        let signature = key.sign(&tree_head_bytes(tree_size, timestamp_ms, &root)).to_vec();
        Self {
            tree_size,
            timestamp_ms,
            root,
            signature,
            key_id: key.key_id(),
        }
    }

    /// The bytes the signature covers.
    #[must_use]
    pub fn signed_bytes(&self) -> Vec<u8> {
        tree_head_bytes(self.tree_size, self.timestamp_ms, &self.root)
    }

    /// Whether the signature is valid for `public_key` (the `key_id` label is
    /// not signed and not checked).
    #[must_use]
    pub fn verify(&self, public_key: &[u8; 32]) -> bool {
        verify_signature(public_key, &self.signed_bytes(), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tree_head_bytes_layout() {
        let b = tree_head_bytes(0x0102_0304_0506_0708, -2, &[0x55; 32]);
        assert_eq!(b.len(), 75);
        assert_eq!(&b[..27], b"steward-audit-tree-head-v1\n");
        assert_eq!(&b[27..35], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&b[35..43], &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        assert_eq!(&b[43..], &[0x55; 32]);
    }

    #[test]
    fn sign_and_verify() {
        let key = SigningKey::generate().unwrap();
        let pk = key.public_key();
        let sig = key.sign(b"hello");
        assert!(verify_signature(&pk, b"hello", &sig));
        assert!(!verify_signature(&pk, b"hellp", &sig));
        let mut bad = sig;
        bad[10] ^= 1;
        assert!(!verify_signature(&pk, b"hello", &bad));
        assert!(!verify_signature(&pk, b"hello", &sig[..63]));
        let other = SigningKey::generate().unwrap();
        assert!(!verify_signature(&other.public_key(), b"hello", &sig));
        assert_eq!(key.key_id().len(), 16);
        assert_ne!(key.key_id(), other.key_id());

        let sth = SignedTreeHead::sign(&key, 10, 1_769_851_800_000, [7; 32]);
        assert_eq!(sth.key_id, key.key_id());
        assert!(sth.verify(&pk));
        assert!(!sth.verify(&other.public_key()));
        for change in 0..4 {
            let mut t = sth.clone();
            match change {
                0 => t.tree_size += 1,
                1 => t.timestamp_ms += 1,
                2 => t.root[31] ^= 1,
                _ => t.signature[0] ^= 1,
            }
            assert!(!t.verify(&pk), "change {change} still verifies");
        }
        let json = serde_json::to_string(&sth).unwrap();
        assert!(json.contains("\"root\":\"0707070707"), "{json}");
        assert_eq!(serde_json::from_str::<SignedTreeHead>(&json).unwrap(), sth);
    }

    #[test]
    fn key_file_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.key");
        assert!(SigningKey::load(&path).unwrap().is_none());
        let key = SigningKey::load_or_create(&path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with('\n') && text.trim_end().len() > 40, "{text:?}");
        assert!(base64::engine::general_purpose::STANDARD
            .decode(text.trim_end())
            .is_ok());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        // Reloading (and load_or_create again) gives the same key; the file is untouched.
        let again = SigningKey::load_or_create(&path).unwrap();
        assert_eq!(again.public_key(), key.public_key());
        assert_eq!(SigningKey::load(&path).unwrap().unwrap().public_key(), key.public_key());
        assert_eq!(fs::read_to_string(&path).unwrap(), text);
        // A signature by the reloaded key verifies under the original key.
        assert!(verify_signature(&key.public_key(), b"m", &again.sign(b"m")));
    }

    #[test]
    fn malformed_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in [
            ("not-base64.key", b"this is not base64!\n".to_vec()),
            ("not-a-key.key", b"aGVsbG8gd29ybGQ=\n".to_vec()),
            ("binary.key", vec![0xff, 0xfe, 0x00]),
            ("empty.key", Vec::new()),
        ] {
            let path = dir.path().join(name);
            fs::write(&path, &content).unwrap();
            let err = SigningKey::load(&path).err().unwrap();
            assert!(matches!(err, KeyError::Malformed(_)), "{name}: {err}");
            assert!(err.to_string().contains(&path.display().to_string()), "{err}");
            let err = SigningKey::load_or_create(&path).err().unwrap();
            assert!(err.to_string().contains(name), "{err}");
            // Never overwritten.
            assert_eq!(fs::read(&path).unwrap(), content);
        }
    }
}
