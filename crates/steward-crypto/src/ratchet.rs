//! Client addresses in the audit log, sealed under one key per calendar
//! month on a one-way hash ratchet, so they can be anonymised without
//! touching the log.
//!
//! The audit log is a hash tree: an entry cannot change once it is in it.
//! So the address is recorded sealed — deterministically (a synthetic IV:
//! the nonce is a keyed hash of the month and the address), so equal
//! addresses of one month give equal strings and a breach can be scoped by
//! address — under the key of the entry's month. The key of month `m + 1`
//! is a one-way hash of the key of month `m`; only the oldest key still
//! kept is stored. Anonymising the months before `m` replaces the stored
//! key by month `m`'s: the earlier keys cannot be derived from it, so their
//! addresses can neither be opened nor matched any more, while every entry
//! (and the tree over them) stays as it was and verifies.

use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hmac;

use crate::aead::{CryptoError, TAG_LEN};
use crate::KeyMaterial;

/// Marks a sealed address (the rest is base64url of nonce ‖ ciphertext ‖ tag).
pub const PREFIX: &str = "c1:";
const RATCHET: &[u8] = b"steward/audit-client/ratchet";
const AAD: &[u8] = b"steward/audit-client/v1";

fn mac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let k = hmac::Key::new(hmac::HMAC_SHA256, key);
    let mut ctx = hmac::Context::with_key(&k);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.sign().as_ref());
    out
}

/// The key of the month after `key`'s.
#[must_use]
pub fn next(key: &KeyMaterial) -> KeyMaterial {
    KeyMaterial::from_bytes(mac(key.expose(), &[RATCHET]))
}

/// The key of month `to` from the key of month `from` (`to >= from`).
#[must_use]
pub fn advance(key: &KeyMaterial, from: u32, to: u32) -> KeyMaterial {
    let mut k = KeyMaterial::from_bytes(*key.expose());
    for _ in from..to {
        k = next(&k);
    }
    k
}

fn cipher(key: &KeyMaterial) -> Result<LessSafeKey, CryptoError> {
    let enc = mac(key.expose(), &[b"enc"]);
    UnboundKey::new(&AES_256_GCM, &enc)
        .map(LessSafeKey::new)
        .map_err(|_| CryptoError::Malformed)
}

fn aad(month: u32) -> Vec<u8> {
    let mut a = AAD.to_vec();
    a.extend_from_slice(&month.to_be_bytes());
    a
}

/// Seals `address` under `key`, the key of `month`: the same address and
/// month always give the same string.
pub fn seal(key: &KeyMaterial, month: u32, address: &str) -> Result<String, CryptoError> {
    use base64::Engine;
    let iv = mac(
        &mac(key.expose(), &[b"iv"]),
        &[&month.to_be_bytes(), address.as_bytes()],
    );
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&iv[..NONCE_LEN]);
    let mut out = Vec::with_capacity(NONCE_LEN + address.len() + TAG_LEN);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(address.as_bytes());
    let tag = cipher(key)?
        .seal_in_place_separate_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(month)),
            &mut out[NONCE_LEN..],
        )
        .map_err(|_| CryptoError::Malformed)?;
    out.extend_from_slice(tag.as_ref());
    Ok(format!(
        "{PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(out)
    ))
}

/// Opens what [`seal`] made with the same key and month.
pub fn open(key: &KeyMaterial, month: u32, sealed: &str) -> Result<String, CryptoError> {
    use base64::Engine;
    let body = sealed.strip_prefix(PREFIX).ok_or(CryptoError::Malformed)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(body)
        .map_err(|_| CryptoError::Malformed)?;
    if bytes.len() < NONCE_LEN + TAG_LEN {
        return Err(CryptoError::Malformed);
    }
    let (nonce, rest) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Malformed)?;
    let mut buf = rest.to_vec();
    let len = cipher(key)?
        .open_in_place(nonce, Aad::from(aad(month)), &mut buf)
        .map_err(|_| CryptoError::Decrypt)?
        .len();
    buf.truncate(len);
    String::from_utf8(buf).map_err(|_| CryptoError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> KeyMaterial {
        KeyMaterial::from_bytes([b; 32])
    }

    #[test]
    fn sealing_is_deterministic_per_month_and_opens() {
        let k = key(1);
        let a = seal(&k, 100, "192.0.2.10").unwrap();
        assert!(a.starts_with(PREFIX));
        assert!(!a.contains("192.0.2.10"));
        assert_eq!(a, seal(&k, 100, "192.0.2.10").unwrap(), "equal addresses match");
        assert_ne!(a, seal(&k, 100, "192.0.2.11").unwrap());
        assert_ne!(a, seal(&k, 101, "192.0.2.10").unwrap(), "another month, another string");
        assert_eq!(open(&k, 100, &a).unwrap(), "192.0.2.10");
        assert_eq!(open(&k, 101, &a), Err(CryptoError::Decrypt), "bound to its month");
        assert_eq!(open(&key(2), 100, &a), Err(CryptoError::Decrypt));
        assert_eq!(open(&k, 100, "c1:!!"), Err(CryptoError::Malformed));
        assert_eq!(open(&k, 100, "192.0.2.10"), Err(CryptoError::Malformed));
    }

    #[test]
    fn the_ratchet_goes_forward_only() {
        let k = key(7);
        let later = advance(&k, 100, 103);
        assert_eq!(later.expose(), next(&next(&next(&k))).expose());
        assert_eq!(advance(&k, 5, 5).expose(), k.expose());
        // Sealed under month 101's key (derived from month 100's): opened
        // by whoever holds month 100's or 101's key, not month 102's.
        let m101 = advance(&k, 100, 101);
        let s = seal(&m101, 101, "2001:db8::1").unwrap();
        assert_eq!(open(&advance(&k, 100, 101), 101, &s).unwrap(), "2001:db8::1");
        assert_ne!(advance(&k, 100, 102).expose(), m101.expose());
    }
}
