//! Blind indexes: keyed hashes (HMAC-SHA-256, truncated to 128 bits) of
//! normalised values, so exact and word search work with no plaintext stored.
//!
//! What they leak to someone holding the database but not the index key:
//! which contacts share an exact e-mail address or phone number, which share
//! a name word, how many distinct words each name has, and — by counting —
//! how common a value is. Not the values themselves; guessing one requires
//! the index key. Terms are separated by record type and field, so equal
//! values in different fields do not match.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::KeyMaterial;

pub struct BlindIndex {
    key: KeyMaterial,
}

impl BlindIndex {
    #[must_use]
    pub fn new(key: KeyMaterial) -> Self {
        Self { key }
    }

    /// The term for `value` in `record_type.field`.
    #[must_use]
    pub fn term(&self, record_type: &str, field: &str, value: &str) -> Vec<u8> {
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose()) else {
            unreachable!("HMAC-SHA-256 accepts every key length")
        };
        mac.update(record_type.as_bytes());
        mac.update(&[0]);
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }
}

/// A keyed hash of a secret (such as an API token) for storage and lookup.
#[must_use]
pub fn keyed_hash(key: &KeyMaterial, secret: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(key.expose()) else {
        unreachable!("HMAC-SHA-256 accepts every key length")
    };
    mac.update(secret);
    mac.finalize().into_bytes().to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_keyed_and_separated() {
        let a = BlindIndex::new(KeyMaterial::generate().unwrap());
        let b = BlindIndex::new(KeyMaterial::generate().unwrap());
        assert_eq!(a.term("contact", "email", "x@y.z"), a.term("contact", "email", "x@y.z"));
        assert_ne!(a.term("contact", "email", "x@y.z"), b.term("contact", "email", "x@y.z"));
        assert_ne!(a.term("contact", "email", "x"), a.term("contact", "phone", "x"));
        assert_ne!(a.term("contact", "ab", "c"), a.term("contact", "a", "bc"));
        assert_eq!(a.term("contact", "email", "x").len(), 16);
    }
}
