//! AES-256-GCM sealing with unique nonces, and the errors of this crate.
//!
//! Nonces: a per-process random 32-bit prefix and a 64-bit counter that
//! starts at a random value. Within a process nonces never repeat; across
//! processes a repeat needs equal random prefixes and overlapping counter
//! ranges, which is as unlikely as a collision of random 96-bit nonces —
//! without paying for an OS random call per encryption.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

pub const TAG_LEN: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// Authentication failed: wrong key, wrong context, or tampered bytes.
    #[error("decryption failed: the value was altered, moved, or needs another key")]
    Decrypt,
    /// The bytes are not in a format this version understands.
    #[error("the encrypted value is malformed")]
    Malformed,
    /// The subject's data key has been destroyed (crypto-shredded).
    #[error("the data key has been destroyed")]
    KeyDestroyed,
    /// The operating system's random generator failed.
    #[error("the system random generator failed")]
    Random,
}

struct NonceSource {
    prefix: [u8; 4],
    counter: AtomicU64,
}

fn source() -> Result<&'static NonceSource, CryptoError> {
    static SOURCE: OnceLock<Option<NonceSource>> = OnceLock::new();
    SOURCE
        .get_or_init(|| {
            let mut seed = [0u8; 12];
            SystemRandom::new().fill(&mut seed).ok()?;
            let mut prefix = [0u8; 4];
            prefix.copy_from_slice(&seed[..4]);
            let mut start = [0u8; 8];
            start.copy_from_slice(&seed[4..]);
            Some(NonceSource {
                prefix,
                counter: AtomicU64::new(u64::from_be_bytes(start)),
            })
        })
        .as_ref()
        .ok_or(CryptoError::Random)
}

fn next_nonce() -> Result<[u8; NONCE_LEN], CryptoError> {
    let s = source()?;
    let n = s.counter.fetch_add(1, Ordering::Relaxed);
    let mut nonce = [0u8; NONCE_LEN];
    nonce[..4].copy_from_slice(&s.prefix);
    nonce[4..].copy_from_slice(&n.to_be_bytes());
    Ok(nonce)
}

/// Fills `buf` from the operating system's generator (for keys).
pub fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    SystemRandom::new().fill(buf).map_err(|_| CryptoError::Random)
}

/// An AES-256-GCM key with its schedule expanded once, for repeated use.
/// (ring does not zeroize the expanded schedule; the raw key material it was
/// built from is kept in a zeroizing [`crate::KeyMaterial`].)
pub struct AeadKey(LessSafeKey);

impl AeadKey {
    pub fn new(raw: &[u8; 32]) -> Result<Self, CryptoError> {
        UnboundKey::new(&AES_256_GCM, raw)
            .map(|k| Self(LessSafeKey::new(k)))
            .map_err(|_| CryptoError::Malformed)
    }

    /// Appends `nonce ‖ ciphertext ‖ tag` of `plaintext` to `out`.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let nonce = next_nonce()?;
        out.reserve(NONCE_LEN + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&nonce);
        let start = out.len();
        out.extend_from_slice(plaintext);
        let tag = self
            .0
            .seal_in_place_separate_tag(Nonce::assume_unique_for_key(nonce), Aad::from(aad), &mut out[start..])
            .map_err(|_| CryptoError::Malformed)?;
        out.extend_from_slice(tag.as_ref());
        Ok(())
    }

    /// Opens `nonce ‖ ciphertext ‖ tag`; the plaintext comes back in a new buffer.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(CryptoError::Malformed);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
        let mut buf = rest.to_vec();
        let len = self
            .0
            .open_in_place(nonce, Aad::from(aad), &mut buf)
            .map_err(|_| CryptoError::Decrypt)?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// One-shot [`AeadKey::seal_into`].
pub fn seal_into(raw_key: &[u8; 32], aad: &[u8], plaintext: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
    AeadKey::new(raw_key)?.seal_into(aad, plaintext, out)
}

/// One-shot [`AeadKey::open`].
pub fn open(raw_key: &[u8; 32], aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    AeadKey::new(raw_key)?.open(aad, sealed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let k = [7u8; 32];
        let mut sealed = Vec::new();
        seal_into(&k, b"ctx", b"hello", &mut sealed).unwrap();
        assert_eq!(sealed.len(), NONCE_LEN + 5 + TAG_LEN);
        assert_eq!(open(&k, b"ctx", &sealed).unwrap(), b"hello");
        assert_eq!(open(&k, b"other", &sealed), Err(CryptoError::Decrypt));
        assert_eq!(open(&[8u8; 32], b"ctx", &sealed), Err(CryptoError::Decrypt));
        for i in 0..sealed.len() {
            let mut t = sealed.clone();
            t[i] ^= 1;
            assert_eq!(open(&k, b"ctx", &t), Err(CryptoError::Decrypt), "byte {i}");
        }
        assert_eq!(open(&k, b"ctx", &sealed[..10]), Err(CryptoError::Malformed));
    }

    #[test]
    fn nonces_never_repeat_in_a_process() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            assert!(seen.insert(next_nonce().unwrap()));
        }
    }
}
