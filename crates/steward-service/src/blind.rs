//! Blind indexes: keyed hashes (HMAC-SHA-256, truncated to 128 bits) of
//! normalised values, so exact and word search work with no plaintext stored.
//!
//! What they leak: equal values of the same field produce equal terms, so
//! someone with the database can see which contacts share an e-mail domain
//! word-for-word, a phone number or a name word, and how many words a name
//! has; not the values themselves without the index key.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::SecretKey;

pub struct BlindIndex {
    key: SecretKey,
}

impl BlindIndex {
    #[must_use]
    pub fn new(key: SecretKey) -> Self {
        Self { key }
    }

    /// The term for `value` in `record_type.field`. Domain-separated by record
    /// type and field so equal values in different fields do not match.
    #[must_use]
    pub fn term(&self, record_type: &str, field: &str, value: &str) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.key.expose()).unwrap_or_else(|_| unreachable_hmac());
        mac.update(record_type.as_bytes());
        mac.update(&[0]);
        mac.update(field.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }
}

/// HMAC accepts keys of any length, so construction cannot fail.
fn unreachable_hmac() -> Hmac<Sha256> {
    unreachable!("HMAC-SHA-256 accepts every key length")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_keyed_and_separated() {
        let a = BlindIndex::new(SecretKey::generate());
        let b = BlindIndex::new(SecretKey::generate());
        assert_eq!(a.term("contact", "email", "x@y.z"), a.term("contact", "email", "x@y.z"));
        assert_ne!(a.term("contact", "email", "x@y.z"), b.term("contact", "email", "x@y.z"));
        assert_ne!(a.term("contact", "email", "x"), a.term("contact", "phone", "x"));
        assert_ne!(a.term("contact", "ab", "c"), a.term("contact", "a", "bc"));
        assert_eq!(a.term("contact", "email", "x").len(), 16);
    }
}
