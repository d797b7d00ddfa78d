//! The on-disk encoding of a record's sealed fields: one blob per record.
//!
//! Format (version 1): byte `0x01`, then per field `u16` BE name length,
//! name (UTF-8), `u32` BE value length, value bytes. Field values are opaque
//! (already sealed by the codec); one blob keeps a record to one row read.

use crate::{SealedFields, StoreError, StoreResult};

const VERSION: u8 = 1;

#[must_use]
pub fn encode(fields: &SealedFields) -> Vec<u8> {
    let len = 1 + fields.iter().map(|(n, v)| 6 + n.len() + v.len()).sum::<usize>();
    let mut out = Vec::with_capacity(len);
    out.push(VERSION);
    for (name, value) in fields {
        let n = u16::try_from(name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_be_bytes());
        out.extend_from_slice(&name.as_bytes()[..usize::from(n)]);
        let v = u32::try_from(value.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(&value[..v as usize]);
    }
    out
}

pub fn decode(blob: &[u8]) -> StoreResult<SealedFields> {
    let bad = || StoreError::Corrupt("malformed field blob".into());
    let (&version, mut rest) = blob.split_first().ok_or_else(bad)?;
    if version != VERSION {
        return Err(bad());
    }
    let mut out = Vec::new();
    while !rest.is_empty() {
        let (n, r) = take(rest, 2).ok_or_else(bad)?;
        let n = usize::from(u16::from_be_bytes([n[0], n[1]]));
        let (name, r) = take(r, n).ok_or_else(bad)?;
        let name = std::str::from_utf8(name).map_err(|_| bad())?.to_string();
        let (v, r) = take(r, 4).ok_or_else(bad)?;
        let v = u32::from_be_bytes([v[0], v[1], v[2], v[3]]) as usize;
        let (value, r) = take(r, v).ok_or_else(bad)?;
        out.push((name, value.to_vec()));
        rest = r;
    }
    Ok(out)
}

fn take(b: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (b.len() >= n).then(|| b.split_at(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_rejects_truncation() {
        let f: SealedFields = vec![
            ("email".into(), b"\x00abc".to_vec()),
            ("notes".into(), vec![]),
            ("x".into(), vec![0xff; 300]),
        ];
        let blob = encode(&f);
        assert_eq!(decode(&blob).unwrap(), f);
        assert_eq!(decode(&encode(&vec![])).unwrap(), vec![]);
        for cut in 1..blob.len() {
            if let Ok(d) = decode(&blob[..cut]) {
                assert_ne!(d, f);
            }
        }
        assert!(decode(&[]).is_err());
        assert!(decode(&[2]).is_err());
    }
}
