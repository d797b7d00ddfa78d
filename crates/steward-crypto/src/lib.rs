//! Steward's key hierarchy and field encryption.
//!
//! ```text
//! master key (KEK)          32 bytes, outside the database: a 0600 key file
//!   │                       or supplied by the operator's secret store
//!   ├─ wraps ─ subject data keys (DEK)   one per data subject, stored wrapped
//!   │            └─ encrypts ─ each personal field value (AES-256-GCM)
//!   └─ wraps ─ instance keys             blind-index key, token-hash key
//! ```
//!
//! Every ciphertext is bound (AEAD associated data) to where it belongs —
//! record type, record id, field, subject id and key version — so a value
//! moved to another row, field or subject fails to decrypt. Destroying a
//! subject's wrapped data key makes all of that subject's ciphertext
//! unreadable (crypto-shredding), including copies in old database pages,
//! WAL files and backups.
//!
//! Key types implement neither `Clone`, `Debug` nor `Serialize`, and are
//! zeroized on drop. Crypto is `ring` (AES-256-GCM with hardware AES);
//! chosen over RustCrypto by measurement (PERFORMANCE.md: ~1.6× faster on
//! 200-byte records) and shared with rustls for TLS.

pub mod aead;
pub mod blind;
pub mod field;
pub mod jws;
pub mod keys;
pub mod master;
pub mod ratchet;
pub mod totp;

pub use aead::CryptoError;
pub use blind::BlindIndex;
pub use field::FieldAad;
pub use keys::{DataKey, KeyMaterial, MasterKey, WrappedKey};
pub use master::{MasterKeySource, MasterKeys};
