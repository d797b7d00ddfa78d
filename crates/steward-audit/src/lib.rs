//! Steward's audit log as evidence (ARCHITECTURE.md, principle 4).
//!
//! Every access to personal data becomes an entry in an append-only Merkle
//! log. This crate is pure (no I/O except reading or creating the signing
//! key file) and provides:
//!
//! - [`merkle`]: RFC 9162 tree hashing (SHA-256), roots, inclusion and
//!   consistency proofs and their verification;
//! - [`entry`]: the audit record (ids and names, never personal values) and
//!   its canonical byte encoding, documented byte for byte;
//! - [`facts`]: a compact copy of the fields reports count, stored beside
//!   each entry;
//! - [`ocsf`]: an OCSF "API Activity" view of an entry for SIEM export;
//! - [`sign`]: Ed25519 signed tree heads, their exact signed bytes, and the
//!   signing key file;
//! - [`verify`]: streaming verification of a whole stored log that names the
//!   first entry or tree head that is wrong.

pub mod entry;
pub mod facts;
pub mod merkle;
pub mod ocsf;
pub mod sign;
pub mod verify;

pub use entry::{
    decode_entry, encode_entry, seal_entry, Actor, ActorKind, AuditEntry, AuditRecord, DecodeError, Outcome,
    FORMAT_VERSION,
};
pub use merkle::{
    consistency_proof, inclusion_proof, leaf_hash, node_hash, root_from_leaf_hashes, verify_consistency,
    verify_inclusion, Hash, ProofError, TreeBuilder, EMPTY_ROOT,
};
pub use ocsf::to_ocsf;
pub use sign::{key_id_of, tree_head_bytes, verify_signature, KeyError, SignedTreeHead, SigningKey, TREE_HEAD_PREFIX};
pub use verify::{
    bench_verify, checkpoint_bytes, Checkpoint, LogVerifier, VerifyError, VerifyReport, CHECKPOINT_PREFIX,
};
