//! Key types: raw key material, the master key, subject data keys, and the
//! wrapped form in which data keys are stored.

use ring::digest;
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::aead::{self, CryptoError};

/// 256 bits of secret key material. Never `Clone`, `Debug` or `Serialize`.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct KeyMaterial([u8; 32]);

impl KeyMaterial {
    /// Fresh key material from the operating system's generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut k = [0u8; 32];
        aead::random_bytes(&mut k)?;
        Ok(Self(k))
    }

    #[must_use]
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    #[must_use]
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A master key (key-encryption key) with its public identifier.
pub struct MasterKey {
    key: KeyMaterial,
    aead: aead::AeadKey,
    id: String,
}

impl MasterKey {
    pub fn new(key: KeyMaterial) -> Result<Self, CryptoError> {
        let mut input = b"steward/master-key-id/v1".to_vec();
        input.extend_from_slice(key.expose());
        let d = digest::digest(&digest::SHA256, &input);
        input.zeroize();
        let id = d.as_ref()[..8].iter().map(|b| format!("{b:02x}")).collect();
        let aead = aead::AeadKey::new(key.expose())?;
        Ok(Self { key, aead, id })
    }

    /// A public fingerprint naming the key (not secret; derived one-way).
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    #[must_use]
    pub fn material(&self) -> &KeyMaterial {
        &self.key
    }

    fn aad(&self, label: &[u8], owner: &[u8], version: u32) -> Vec<u8> {
        let mut aad = Vec::with_capacity(label.len() + owner.len() + 4 + self.id.len());
        aad.extend_from_slice(label);
        aad.extend_from_slice(owner);
        aad.extend_from_slice(&version.to_be_bytes());
        aad.extend_from_slice(self.id.as_bytes());
        aad
    }

    /// Wraps `key` for `owner` (a subject id or an instance key name).
    pub fn wrap(&self, label: &[u8], owner: &[u8], version: u32, key: &KeyMaterial) -> Result<WrappedKey, CryptoError> {
        let mut bytes = Vec::with_capacity(60);
        self.aead
            .seal_into(&self.aad(label, owner, version), key.expose(), &mut bytes)?;
        Ok(WrappedKey {
            master_key_id: self.id.clone(),
            version,
            bytes,
        })
    }

    /// Unwraps a key this master key wrapped for `owner`.
    pub fn unwrap(&self, label: &[u8], owner: &[u8], wrapped: &WrappedKey) -> Result<KeyMaterial, CryptoError> {
        if wrapped.master_key_id != self.id {
            return Err(CryptoError::Decrypt);
        }
        let mut plain = self
            .aead
            .open(&self.aad(label, owner, wrapped.version), &wrapped.bytes)?;
        let out = <[u8; 32]>::try_from(plain.as_slice())
            .map(KeyMaterial)
            .map_err(|_| CryptoError::Malformed);
        plain.zeroize();
        out
    }
}

/// A key as stored: encrypted under the master key named by `master_key_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrappedKey {
    pub master_key_id: String,
    pub version: u32,
    pub bytes: Vec<u8>,
}

/// A subject's data key, unwrapped, with its version and its expanded
/// AES key schedule (built once, used for every field of the request).
pub struct DataKey {
    /// Held so the raw key is zeroized when the data key is dropped.
    #[allow(dead_code)]
    key: KeyMaterial,
    aead: aead::AeadKey,
    version: u32,
}

impl DataKey {
    pub fn new(key: KeyMaterial, version: u32) -> Result<Self, CryptoError> {
        let aead = aead::AeadKey::new(key.expose())?;
        Ok(Self { key, aead, version })
    }

    pub(crate) fn aead(&self) -> &aead::AeadKey {
        &self.aead
    }
    #[must_use]
    pub fn version(&self) -> u32 {
        self.version
    }
    #[must_use]
    #[cfg(test)]
    pub(crate) fn material(&self) -> &KeyMaterial {
        &self.key
    }
}
