//! Time-based one-time passwords (RFC 6238, built on HOTP, RFC 4226) and
//! one-time recovery codes for a second authentication factor.
//!
//! Pure functions: no clock, no storage. The caller supplies the Unix time,
//! persists the step returned by [`verify`] (replay protection) and stores
//! recovery codes only as keyed hashes (e.g. [`crate::blind::keyed_hash`]
//! of [`normalise_recovery_code`]).

use std::collections::HashSet;
use std::fmt::Write as _;

use ring::hmac;
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::aead::{self, CryptoError};

/// The HMAC hash of a TOTP secret. `Sha1` is what nearly every authenticator
/// app supports; HMAC-SHA-1 is not affected by SHA-1's collision weakness.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TotpAlgorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl TotpAlgorithm {
    /// The name used in `otpauth://` URIs: `SHA1`, `SHA256` or `SHA512`.
    #[must_use]
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    fn hmac_algorithm(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }
}

/// A TOTP secret (RFC 6238 / RFC 4226). Never `Clone`, `Debug` or
/// `Serialize`; zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct TotpSecret(Vec<u8>);

/// Length of a generated secret: 160 bits, RFC 4226's recommendation.
pub const SECRET_LEN: usize = 20;

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

impl TotpSecret {
    /// A fresh 160-bit secret from the operating system's generator.
    pub fn generate() -> Result<TotpSecret, CryptoError> {
        let mut bytes = vec![0u8; SECRET_LEN];
        aead::random_bytes(&mut bytes)?;
        Ok(Self(bytes))
    }

    #[must_use]
    pub fn from_bytes(bytes: Vec<u8>) -> TotpSecret {
        Self(bytes)
    }

    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// RFC 4648 base32, upper case, without `=` padding (the form
    /// authenticator apps expect in `otpauth://` URIs and manual entry).
    #[must_use]
    pub fn to_base32(&self) -> String {
        let mut out = String::with_capacity(self.0.len().div_ceil(5) * 8);
        let mut buffer: u32 = 0;
        let mut bits: u32 = 0;
        for &byte in &self.0 {
            buffer = (buffer << 8) | u32::from(byte);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                out.push(char::from(BASE32_ALPHABET[((buffer >> bits) & 0x1f) as usize]));
            }
            buffer &= (1 << bits) - 1;
        }
        if bits > 0 {
            out.push(char::from(BASE32_ALPHABET[((buffer << (5 - bits)) & 0x1f) as usize]));
        }
        buffer.zeroize();
        out
    }

    /// Parses RFC 4648 base32. Accepts lower case, whitespace (secrets are
    /// often shown in groups of four) and optional trailing `=` padding.
    /// Returns `None` for an empty secret, a character outside the alphabet,
    /// misplaced or wrong padding, or a length no byte string encodes to.
    #[must_use]
    pub fn from_base32(s: &str) -> Option<TotpSecret> {
        let cleaned: Zeroizing<Vec<u8>> = Zeroizing::new(s.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
        let data_len = cleaned.iter().position(|&b| b == b'=').unwrap_or(cleaned.len());
        let (data, padding) = cleaned.split_at(data_len);
        if data.is_empty() || padding.iter().any(|&b| b != b'=') {
            return None;
        }
        // 1, 3 and 6 trailing characters cannot come from whole bytes.
        if matches!(data.len() % 8, 1 | 3 | 6) {
            return None;
        }
        // Padding, if present, must complete the last 8-character group.
        if !padding.is_empty() && padding.len() != (8 - data.len() % 8) % 8 {
            return None;
        }
        let mut out = Vec::with_capacity(data.len() * 5 / 8);
        let mut buffer: u32 = 0;
        let mut bits: u32 = 0;
        for &c in data {
            let value = match c.to_ascii_uppercase() {
                c @ b'A'..=b'Z' => c - b'A',
                c @ b'2'..=b'7' => c - b'2' + 26,
                _ => {
                    out.zeroize();
                    return None;
                }
            };
            buffer = (buffer << 5) | u32::from(value);
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                out.push(((buffer >> bits) & 0xff) as u8);
            }
            buffer &= (1 << bits) - 1;
        }
        buffer.zeroize();
        Some(Self(out))
    }
}

/// TOTP parameters. Authenticator apps widely support only the default.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TotpParams {
    pub algorithm: TotpAlgorithm,
    /// Code length, 6..=8.
    pub digits: u32,
    /// Time step in seconds (X in RFC 6238), non-zero.
    pub period: u64,
}

impl Default for TotpParams {
    /// SHA-1, 6 digits, 30 seconds.
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl TotpParams {
    /// Whether `digits` is in 6..=8 and `period` is non-zero. [`verify`]
    /// accepts nothing under invalid parameters.
    #[must_use]
    pub fn is_valid(&self) -> bool {
        (6..=8).contains(&self.digits) && self.period > 0
    }

    /// `digits` clamped to 6..=8, as used by [`hotp`].
    fn effective_digits(&self) -> u32 {
        self.digits.clamp(6, 8)
    }
}

/// The time step of a Unix time (seconds): `floor((t - T0) / period)`,
/// `T0 = 0`. A zero `period` (invalid) yields step 0 rather than panicking.
#[must_use]
pub fn time_step(unix_seconds: u64, period: u64) -> u64 {
    unix_seconds.checked_div(period).unwrap_or(0)
}

/// The HOTP value for a counter (RFC 4226 dynamic truncation), zero-padded
/// to `params.digits` (clamped to 6..=8).
#[must_use]
pub fn hotp(secret: &TotpSecret, counter: u64, params: &TotpParams) -> String {
    let digits = params.effective_digits();
    let key = hmac::Key::new(params.algorithm.hmac_algorithm(), secret.as_bytes());
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();
    // Every supported MAC is at least 20 bytes, so offset + 3 <= 19 is in range.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let mut binary = u32::from_be_bytes([mac[offset], mac[offset + 1], mac[offset + 2], mac[offset + 3]]) & 0x7fff_ffff;
    let code = binary % 10u32.pow(digits);
    binary.zeroize();
    format!("{code:0width$}", width = digits as usize)
}

/// The TOTP value at a Unix time (seconds).
#[must_use]
pub fn totp(secret: &TotpSecret, unix_seconds: u64, params: &TotpParams) -> String {
    hotp(secret, time_step(unix_seconds, params.period), params)
}

/// Constant-time equality of two equal-length byte strings.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Checks `code` against the steps now-1, now and now+1 (one step of clock
/// skew each way), comparing in constant time, and refuses any step
/// `<= last_accepted_step` (replay protection: the caller persists the
/// returned step and passes it back next time). Returns the matched step.
///
/// If the code matches several acceptable steps (a 1-in-10^digits
/// coincidence), the highest is returned, so a replay of the same code can
/// never be accepted again. Codes of the wrong length or with non-digits,
/// and invalid parameters, are rejected.
#[must_use]
pub fn verify(
    secret: &TotpSecret,
    code: &str,
    unix_seconds: u64,
    last_accepted_step: Option<u64>,
    params: &TotpParams,
) -> Option<u64> {
    if !params.is_valid() || code.len() != params.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let now = time_step(unix_seconds, params.period);
    let candidates = [now.checked_sub(1), Some(now), now.checked_add(1)];
    let mut matched = None;
    // All candidates are computed and compared, whatever matches, so the
    // timing does not reveal which step (if any) the code belongs to.
    for step in candidates.into_iter().flatten() {
        let expected = Zeroizing::new(hotp(secret, step, params));
        let equal = ct_eq(expected.as_bytes(), code.as_bytes());
        let fresh = last_accepted_step.is_none_or(|last| step > last);
        if equal && fresh {
            matched = Some(step);
        }
    }
    matched
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The provisioning URI (Key Uri Format) for an authenticator app, usually
/// shown as a QR code:
/// `otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER&algorithm=SHA1&digits=6&period=30`.
/// Issuer and account are percent-encoded per RFC 3986 (a colon inside
/// either becomes `%3A`; the label's separating colon is literal). With an
/// empty issuer the label is the account alone and `issuer=` is omitted.
/// The URI contains the secret: treat it as secret.
#[must_use]
pub fn otpauth_uri(secret: &TotpSecret, issuer: &str, account: &str, params: &TotpParams) -> String {
    let secret_b32 = Zeroizing::new(secret.to_base32());
    let issuer_enc = percent_encode(issuer);
    let account_enc = percent_encode(account);
    let mut uri = String::with_capacity(64 + secret_b32.len() + 2 * issuer_enc.len() + account_enc.len());
    uri.push_str("otpauth://totp/");
    if !issuer.is_empty() {
        uri.push_str(&issuer_enc);
        uri.push(':');
    }
    uri.push_str(&account_enc);
    uri.push_str("?secret=");
    uri.push_str(&secret_b32);
    if !issuer.is_empty() {
        uri.push_str("&issuer=");
        uri.push_str(&issuer_enc);
    }
    let _ = write!(
        uri,
        "&algorithm={}&digits={}&period={}",
        params.algorithm.uri_name(),
        params.digits,
        params.period
    );
    uri
}

/// Recovery-code alphabet: lower-case letters and digits without the
/// look-alikes 0/o, 1/i/l (31 characters, ~4.95 bits each).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// Characters per recovery code (~49.5 bits), shown as two groups of five.
const RECOVERY_LEN: usize = 10;

fn recovery_code() -> Result<String, CryptoError> {
    let n = RECOVERY_ALPHABET.len();
    // Rejection sampling: bytes >= the largest multiple of n would bias the
    // distribution towards the start of the alphabet.
    let limit = 256 - 256 % n;
    let mut chars = Zeroizing::new(Vec::with_capacity(RECOVERY_LEN));
    let mut random = Zeroizing::new([0u8; 32]);
    while chars.len() < RECOVERY_LEN {
        aead::random_bytes(&mut random[..])?;
        for &b in random.iter() {
            if usize::from(b) < limit && chars.len() < RECOVERY_LEN {
                chars.push(RECOVERY_ALPHABET[usize::from(b) % n]);
            }
        }
    }
    let mut code = String::with_capacity(RECOVERY_LEN + 1);
    for (i, &c) in chars.iter().enumerate() {
        if i == RECOVERY_LEN / 2 {
            code.push('-');
        }
        code.push(char::from(c));
    }
    Ok(code)
}

/// `n` distinct one-time recovery codes, each 10 characters from an
/// unambiguous alphabet (no 0/O/1/I/L), formatted `xxxxx-xxxxx` in lower
/// case. Shown to the user once; store only keyed hashes of
/// [`normalise_recovery_code`] of each.
pub fn generate_recovery_codes(n: usize) -> Result<Vec<String>, CryptoError> {
    let mut codes = Vec::with_capacity(n);
    let mut seen = HashSet::with_capacity(n);
    while codes.len() < n {
        let code = recovery_code()?;
        if seen.insert(code.clone()) {
            codes.push(code);
        }
    }
    Ok(codes)
}

/// Normalises a user-typed recovery code (trim, lower-case, drop whitespace
/// and dashes) so `"ABCDE-FGHJK"`, `"abcde fghjk"` and `"abcdefghjk"` hash
/// alike.
#[must_use]
pub fn normalise_recovery_code(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEED_SHA1: &[u8] = b"12345678901234567890";
    const SEED_SHA256: &[u8] = b"12345678901234567890123456789012";
    const SEED_SHA512: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn params(algorithm: TotpAlgorithm, digits: u32) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period: 30,
        }
    }

    #[test]
    fn rfc6238_appendix_b_vectors() {
        // (time, SHA1, SHA256, SHA512), RFC 6238 Appendix B.
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        let sha1 = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let sha256 = TotpSecret::from_bytes(SEED_SHA256.to_vec());
        let sha512 = TotpSecret::from_bytes(SEED_SHA512.to_vec());
        for (t, c1, c256, c512) in vectors {
            assert_eq!(totp(&sha1, t, &params(TotpAlgorithm::Sha1, 8)), c1, "SHA1 at {t}");
            assert_eq!(
                totp(&sha256, t, &params(TotpAlgorithm::Sha256, 8)),
                c256,
                "SHA256 at {t}"
            );
            assert_eq!(
                totp(&sha512, t, &params(TotpAlgorithm::Sha512, 8)),
                c512,
                "SHA512 at {t}"
            );
        }
    }

    #[test]
    fn rfc6238_time_steps() {
        // The T column of Appendix B (hex).
        assert_eq!(time_step(59, 30), 0x1);
        assert_eq!(time_step(1_111_111_109, 30), 0x23523EC);
        assert_eq!(time_step(1_111_111_111, 30), 0x23523ED);
        assert_eq!(time_step(1_234_567_890, 30), 0x273EF07);
        assert_eq!(time_step(2_000_000_000, 30), 0x3F940AA);
        assert_eq!(time_step(20_000_000_000, 30), 0x27BC86AA);
        assert_eq!(time_step(29, 30), 0);
        assert_eq!(time_step(30, 30), 1);
        assert_eq!(time_step(100, 0), 0);
    }

    #[test]
    fn rfc4226_appendix_d_vectors() {
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489",
        ];
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        for (counter, code) in expected.iter().enumerate() {
            assert_eq!(
                hotp(&secret, counter as u64, &TotpParams::default()),
                *code,
                "counter {counter}"
            );
        }
    }

    #[test]
    fn default_params() {
        let p = TotpParams::default();
        assert_eq!(p.algorithm, TotpAlgorithm::Sha1);
        assert_eq!(p.digits, 6);
        assert_eq!(p.period, 30);
        assert!(p.is_valid());
    }

    #[test]
    fn base32_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(TotpSecret::from_bytes(plain.as_bytes().to_vec()).to_base32(), encoded);
            if !plain.is_empty() {
                let decoded = TotpSecret::from_base32(encoded).unwrap();
                assert_eq!(decoded.as_bytes(), plain.as_bytes(), "{encoded}");
            }
        }
    }

    #[test]
    fn base32_accepts_padding_lower_case_and_spaces() {
        for input in [
            "MZXW6YTBOI======",
            "mzxw6ytboi",
            "mzxw 6ytb oi",
            "  MZXW6YTBOI  ",
            "mzxw6ytboi======",
        ] {
            assert_eq!(
                TotpSecret::from_base32(input).unwrap().as_bytes(),
                b"foobar",
                "{input:?}"
            );
        }
        assert_eq!(TotpSecret::from_base32("MY======").unwrap().as_bytes(), b"f");
        assert_eq!(TotpSecret::from_base32("MZXW6YQ=").unwrap().as_bytes(), b"foob");
        assert_eq!(TotpSecret::from_base32("MZXW6YTB").unwrap().as_bytes(), b"fooba");
    }

    #[test]
    fn base32_rejects_malformed() {
        for input in [
            "",
            "   ",
            "========",
            "M",
            "MZX",
            "MZXW6Y",
            "MZXW6YT1",
            "MZXW6YT0",
            "MZXW6YT8",
            "MZ=XW6YTBOI",
            "MZXW6YTBOI=",
            "MY=",
            "MZXW6YTB========",
            "MZXW6YTBOI=====A",
            "MZXW-6YTB",
            "MZXW6YTBÖ",
        ] {
            assert!(TotpSecret::from_base32(input).is_none(), "{input:?}");
        }
    }

    #[test]
    fn base32_round_trip() {
        for len in 0..=64usize {
            let bytes: Vec<u8> = (0..len).map(|i| (i as u8).wrapping_mul(37).wrapping_add(11)).collect();
            let encoded = TotpSecret::from_bytes(bytes.clone()).to_base32();
            assert!(!encoded.contains('='));
            assert_eq!(encoded.len(), (len * 8).div_ceil(5));
            if len > 0 {
                assert_eq!(TotpSecret::from_base32(&encoded).unwrap().as_bytes(), &bytes[..]);
                assert_eq!(
                    TotpSecret::from_base32(&encoded.to_lowercase()).unwrap().as_bytes(),
                    &bytes[..]
                );
            }
        }
        for _ in 0..20 {
            let secret = TotpSecret::generate().unwrap();
            assert_eq!(secret.as_bytes().len(), SECRET_LEN);
            let encoded = secret.to_base32();
            assert_eq!(encoded.len(), 32);
            assert_eq!(TotpSecret::from_base32(&encoded).unwrap().as_bytes(), secret.as_bytes());
        }
        assert_ne!(
            TotpSecret::generate().unwrap().as_bytes(),
            TotpSecret::generate().unwrap().as_bytes()
        );
    }

    #[test]
    fn verify_accepts_skew_of_one_step() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        let now = 1_234_567_890;
        let step = time_step(now, 30);
        for (offset, delta) in [(-30i64, -1i64), (0, 0), (30, 1)] {
            let code = totp(&secret, now.checked_add_signed(offset).unwrap(), &p);
            assert_eq!(
                verify(&secret, &code, now, None, &p),
                Some(step.checked_add_signed(delta).unwrap()),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn verify_refuses_two_steps_away() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        let now = 1_234_567_890;
        let step = time_step(now, 30);
        for other in [step - 2, step + 2, step - 3, step + 3] {
            let code = hotp(&secret, other, &p);
            // Guard against a coincidental match with a step inside the window.
            if (step - 1..=step + 1).all(|s| hotp(&secret, s, &p) != code) {
                assert_eq!(verify(&secret, &code, now, None, &p), None, "step {other}");
            }
        }
    }

    #[test]
    fn verify_window_at_time_zero() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        assert_eq!(verify(&secret, &totp(&secret, 0, &p), 0, None, &p), Some(0));
        assert_eq!(verify(&secret, &totp(&secret, 30, &p), 0, None, &p), Some(1));
    }

    #[test]
    fn verify_refuses_replay() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        let now = 1_234_567_890;
        let step = time_step(now, 30);

        // The same code (same step) twice.
        let code = totp(&secret, now, &p);
        let accepted = verify(&secret, &code, now, None, &p).unwrap();
        assert_eq!(accepted, step);
        assert_eq!(verify(&secret, &code, now, Some(accepted), &p), None);
        assert_eq!(verify(&secret, &code, now + 29, Some(accepted), &p), None);

        // An older step after a newer one was accepted.
        let next = totp(&secret, now + 30, &p);
        let accepted = verify(&secret, &next, now, Some(accepted), &p).unwrap();
        assert_eq!(accepted, step + 1);
        assert_eq!(verify(&secret, &code, now, Some(accepted), &p), None);
        let previous = totp(&secret, now - 30, &p);
        assert_eq!(verify(&secret, &previous, now, Some(accepted), &p), None);
        assert_eq!(verify(&secret, &previous, now, None, &p), Some(step - 1));

        // The following step is still fine once its time comes.
        let later = totp(&secret, now + 60, &p);
        assert_eq!(verify(&secret, &later, now + 60, Some(accepted), &p), Some(step + 2));
    }

    #[test]
    fn verify_returns_highest_step_on_coincidence() {
        // With the RFC 4226 seed and default parameters, steps 153567 and
        // 153569 share the code 468457, and steps 910737 and 910738 share
        // 911617 (found by exhaustive search with Python's hmac module).
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        assert_eq!(hotp(&secret, 153_567, &p), "468457");
        assert_eq!(hotp(&secret, 153_569, &p), "468457");
        assert_eq!(hotp(&secret, 910_737, &p), "911617");
        assert_eq!(hotp(&secret, 910_738, &p), "911617");

        let now = 153_568 * 30;
        let accepted = verify(&secret, "468457", now, None, &p).unwrap();
        assert_eq!(accepted, 153_569);
        assert_eq!(verify(&secret, "468457", now, Some(accepted), &p), None);
        // Only steps above the last accepted one count.
        assert_eq!(verify(&secret, "468457", now, Some(153_568), &p), Some(153_569));
        assert_eq!(verify(&secret, "468457", now, Some(153_566), &p), Some(153_569));

        let now = 910_738 * 30 + 5;
        let accepted = verify(&secret, "911617", now, None, &p).unwrap();
        assert_eq!(accepted, 910_738);
        assert_eq!(verify(&secret, "911617", now, Some(accepted), &p), None);
        assert_eq!(verify(&secret, "911617", now + 30, Some(accepted), &p), None);
    }

    #[test]
    fn verify_refuses_garbage() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let p = TotpParams::default();
        let now = 1_234_567_890;
        let good = totp(&secret, now, &p);
        let mut refused = vec![
            String::new(),
            "12345".to_owned(),
            "abcdef".to_owned(),
            "1234567".to_owned(),
            "٣٤٥٦٧٨".to_owned(),
            "-12345".to_owned(),
            "+12345".to_owned(),
            " 12345".to_owned(),
            format!("{good} "),
            format!(" {good}"),
            format!("{good}0"),
            good[..5].to_owned(),
        ];
        refused.push(good.replace(|c: char| c.is_ascii_digit(), "x"));
        for code in &refused {
            assert_eq!(verify(&secret, code, now, None, &p), None, "{code:?}");
        }
        assert_eq!(verify(&secret, &good, now, None, &p), Some(time_step(now, 30)));
    }

    #[test]
    fn verify_refuses_under_invalid_params() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        let now = 1_234_567_890;
        for bad in [
            TotpParams {
                digits: 5,
                ..TotpParams::default()
            },
            TotpParams {
                digits: 9,
                ..TotpParams::default()
            },
            TotpParams {
                period: 0,
                ..TotpParams::default()
            },
        ] {
            assert!(!bad.is_valid());
            let code = totp(&secret, now, &bad);
            assert_eq!(verify(&secret, &code, now, None, &bad), None, "{bad:?}");
        }
    }

    #[test]
    fn verify_other_algorithms_and_digits() {
        let secret = TotpSecret::from_bytes(SEED_SHA512.to_vec());
        let now = 2_000_000_000;
        for algorithm in [TotpAlgorithm::Sha1, TotpAlgorithm::Sha256, TotpAlgorithm::Sha512] {
            for digits in 6..=8 {
                let p = TotpParams {
                    algorithm,
                    digits,
                    period: 60,
                };
                let code = totp(&secret, now, &p);
                assert_eq!(code.len(), digits as usize);
                assert_eq!(verify(&secret, &code, now, None, &p), Some(time_step(now, 60)));
            }
        }
    }

    #[test]
    fn otpauth_uri_exact() {
        let secret = TotpSecret::from_bytes(SEED_SHA1.to_vec());
        assert_eq!(
            otpauth_uri(&secret, "Steward", "alice@example.org", &TotpParams::default()),
            "otpauth://totp/Steward:alice%40example.org?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ\
             &issuer=Steward&algorithm=SHA1&digits=6&period=30"
        );
        let p = TotpParams {
            algorithm: TotpAlgorithm::Sha256,
            digits: 8,
            period: 60,
        };
        assert_eq!(
            otpauth_uri(
                &TotpSecret::from_bytes(b"foobar".to_vec()),
                "Acme Co: CRM",
                "bob smith+ü~",
                &p
            ),
            "otpauth://totp/Acme%20Co%3A%20CRM:bob%20smith%2B%C3%BC~?secret=MZXW6YTBOI\
             &issuer=Acme%20Co%3A%20CRM&algorithm=SHA256&digits=8&period=60"
        );
        assert_eq!(
            otpauth_uri(
                &TotpSecret::from_bytes(b"f".to_vec()),
                "",
                "carol",
                &TotpParams::default()
            ),
            "otpauth://totp/carol?secret=MY&algorithm=SHA1&digits=6&period=30"
        );
    }

    #[test]
    fn recovery_codes_format_and_uniqueness() {
        let codes = generate_recovery_codes(200).unwrap();
        assert_eq!(codes.len(), 200);
        let unique: HashSet<&String> = codes.iter().collect();
        assert_eq!(unique.len(), 200);
        for code in &codes {
            assert_eq!(code.len(), 11, "{code}");
            let (a, b) = code.split_at(5);
            assert!(b.starts_with('-'), "{code}");
            for c in a.bytes().chain(b[1..].bytes()) {
                assert!(RECOVERY_ALPHABET.contains(&c), "{code}");
                assert!(!b"0o1ilOIL".contains(&c), "{code}");
            }
            assert_eq!(normalise_recovery_code(code).len(), 10);
        }
        assert!(generate_recovery_codes(0).unwrap().is_empty());
        // Every alphabet character eventually appears (rejection sampling
        // covers the whole alphabet).
        let all: HashSet<u8> = codes.iter().flat_map(|c| c.bytes()).filter(|&c| c != b'-').collect();
        assert_eq!(all.len(), RECOVERY_ALPHABET.len());
        assert_eq!(RECOVERY_ALPHABET.len(), 31);
    }

    #[test]
    fn recovery_code_normalisation() {
        let canonical = normalise_recovery_code("abcde-fghjk");
        assert_eq!(canonical, "abcdefghjk");
        for typed in [
            "ABCDE-FGHJK",
            "abcde fghjk",
            "abcdefghjk",
            "  AbCdE - fGhJk \n",
            "abc-de-fgh-jk",
            "\tabcdefghjk\t",
        ] {
            assert_eq!(normalise_recovery_code(typed), canonical, "{typed:?}");
        }
        assert_ne!(normalise_recovery_code("abcde-fghjm"), canonical);
        assert_eq!(normalise_recovery_code(""), "");
    }
}
