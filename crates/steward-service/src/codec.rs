//! The field codec: how personal values become the opaque bytes the store
//! keeps, and back. The encryption issue replaces [`PlainCodec`] with an
//! AEAD codec; the schema and the store do not change.

use steward_domain::SubjectId;

/// Where a sealed value belongs. An encrypting codec binds ciphertext to this
/// (associated data), so a value moved to another row or field fails to open.
#[derive(Debug, Clone, Copy)]
pub struct FieldContext<'a> {
    pub record_type: &'a str,
    pub record_id: &'a [u8; 16],
    pub field: &'a str,
    pub subject_id: SubjectId,
}

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("a stored value could not be decoded")]
    Undecodable,
}

pub trait FieldCodec: Send + Sync + 'static {
    fn seal(&self, ctx: &FieldContext<'_>, plaintext: &str) -> Result<Vec<u8>, CodecError>;
    fn open(&self, ctx: &FieldContext<'_>, sealed: &[u8]) -> Result<String, CodecError>;
}

/// Format byte of [`PlainCodec`] output.
const PLAIN: u8 = 0;

/// Stores values unencrypted behind a format byte. Placeholder until the
/// encryption codec lands; never the choice for production data.
#[derive(Debug, Default)]
pub struct PlainCodec;

impl FieldCodec for PlainCodec {
    fn seal(&self, _ctx: &FieldContext<'_>, plaintext: &str) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(plaintext.len() + 1);
        out.push(PLAIN);
        out.extend_from_slice(plaintext.as_bytes());
        Ok(out)
    }

    fn open(&self, _ctx: &FieldContext<'_>, sealed: &[u8]) -> Result<String, CodecError> {
        match sealed.split_first() {
            Some((&PLAIN, rest)) => String::from_utf8(rest.to_vec()).map_err(|_| CodecError::Undecodable),
            _ => Err(CodecError::Undecodable),
        }
    }
}
