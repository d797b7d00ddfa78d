//! Field encryption under a subject's data key.
//!
//! Format of a sealed field: `0x01 ‖ key version (u32 BE) ‖ nonce (12) ‖
//! ciphertext ‖ tag (16)`. The associated data binds the value to
//! `record type ‖ 0 ‖ record id (16) ‖ field ‖ 0 ‖ subject id (16) ‖ key
//! version`, so it decrypts only where it was written.

use crate::aead::{self, CryptoError};
use crate::keys::DataKey;

const FORMAT_AES256GCM_V1: u8 = 1;
const HEADER_LEN: usize = 5;

/// Where a sealed value belongs.
#[derive(Debug, Clone, Copy)]
pub struct FieldAad<'a> {
    pub record_type: &'a str,
    pub record_id: &'a [u8; 16],
    pub field: &'a str,
    pub subject_id: &'a [u8; 16],
}

impl FieldAad<'_> {
    fn bytes(&self, version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(1 + self.record_type.len() + self.field.len() + 2 + 32 + 4);
        aad.push(FORMAT_AES256GCM_V1);
        aad.extend_from_slice(self.record_type.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.record_id);
        aad.extend_from_slice(self.field.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.subject_id);
        aad.extend_from_slice(&version.to_be_bytes());
        aad
    }
}

/// Encrypts `plaintext` for `ctx` under `key`.
pub fn seal(key: &DataKey, ctx: &FieldAad<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut out = Vec::with_capacity(HEADER_LEN + 12 + plaintext.len() + aead::TAG_LEN);
    out.push(FORMAT_AES256GCM_V1);
    out.extend_from_slice(&key.version().to_be_bytes());
    key.aead().seal_into(&ctx.bytes(key.version()), plaintext, &mut out)?;
    Ok(out)
}

/// Decrypts a value sealed by [`seal`] for the same `ctx` and key.
pub fn open(key: &DataKey, ctx: &FieldAad<'_>, sealed: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < HEADER_LEN || sealed[0] != FORMAT_AES256GCM_V1 {
        return Err(CryptoError::Malformed);
    }
    let version = u32::from_be_bytes([sealed[1], sealed[2], sealed[3], sealed[4]]);
    if version != key.version() {
        return Err(CryptoError::Decrypt);
    }
    key.aead().open(&ctx.bytes(version), &sealed[HEADER_LEN..])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::KeyMaterial;

    fn key() -> DataKey {
        DataKey::new(KeyMaterial::generate().unwrap(), 1).unwrap()
    }

    #[test]
    fn values_open_only_where_they_were_sealed() {
        let k = key();
        let (rec, subj) = ([1u8; 16], [2u8; 16]);
        let ctx = FieldAad {
            record_type: "contact",
            record_id: &rec,
            field: "email",
            subject_id: &subj,
        };
        let sealed = seal(&k, &ctx, b"ada@example.com").unwrap();
        assert_eq!(open(&k, &ctx, &sealed).unwrap(), b"ada@example.com");
        assert!(
            !sealed.windows(3).any(|w| w == b"ada"),
            "no plaintext in the ciphertext"
        );

        let other_rec = [3u8; 16];
        let moved = [
            FieldAad { field: "phone", ..ctx },
            FieldAad {
                record_id: &other_rec,
                ..ctx
            },
            FieldAad {
                subject_id: &other_rec,
                ..ctx
            },
            FieldAad {
                record_type: "interaction",
                ..ctx
            },
        ];
        for m in moved {
            assert_eq!(open(&k, &m, &sealed), Err(CryptoError::Decrypt), "{m:?}");
        }
        assert_eq!(
            open(&key(), &ctx, &sealed),
            Err(CryptoError::Decrypt),
            "another subject's key"
        );
        let v2 = DataKey::new(KeyMaterial::from_bytes(*k.material().expose()), 2).unwrap();
        assert_eq!(
            open(&v2, &ctx, &sealed),
            Err(CryptoError::Decrypt),
            "the key version is bound"
        );
        assert_eq!(open(&k, &ctx, &[9, 9]), Err(CryptoError::Malformed));
        let mut forged = sealed.clone();
        forged[4] = 2; // claims version 2
        assert!(open(&k, &ctx, &forged).is_err());
    }

    #[test]
    fn equal_values_encrypt_differently() {
        let k = key();
        let (rec, subj) = ([1u8; 16], [2u8; 16]);
        let ctx = FieldAad {
            record_type: "contact",
            record_id: &rec,
            field: "email",
            subject_id: &subj,
        };
        assert_ne!(seal(&k, &ctx, b"x").unwrap(), seal(&k, &ctx, b"x").unwrap());
    }
}
