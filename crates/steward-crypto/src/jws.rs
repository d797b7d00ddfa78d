//! Compact JSON Web Signatures (RFC 7515) with EdDSA over Ed25519 (RFC 8037).
//!
//! Used to sign consent receipts with the instance's receipt key. Only the
//! compact serialization and only `"alg":"EdDSA"` are supported:
//!
//! ```text
//! BASE64URL(protected header) . BASE64URL(payload) . BASE64URL(Ed25519 signature)
//! ```
//!
//! where the signature covers the ASCII bytes of the first two segments
//! joined by a `.`, and BASE64URL is the URL-safe alphabet without padding
//! (RFC 7515 §2).
//!
//! # Verification rules
//!
//! [`verify`] and [`verify_with_jwk`] accept a JWS only if:
//!
//! - it has exactly three `.`-separated segments, the header and signature
//!   non-empty (the payload may be empty);
//! - every segment is canonical base64url: URL-safe alphabet, no padding, no
//!   whitespace, no stray trailing bits;
//! - the header is a JSON object whose `alg` is exactly `"EdDSA"` (so
//!   `"none"`, `"HS256"` and every other algorithm are rejected, which rules
//!   out algorithm-confusion attacks) and which has no `crit` member (no
//!   extensions are understood, RFC 7515 §4.1.11, which also excludes the
//!   unencoded payload option of RFC 7797); a duplicated member name is read
//!   as its last occurrence, as RFC 7515 §4 allows;
//! - the signature is 64 bytes and verifies under the given public key.
//!
//! The key is always supplied by the caller: `jwk`, `x5c`, `jku` and `kid`
//! header members never select a key. With [`verify_with_jwk`], a `kid` in
//! both the header and the JWK must agree.
//!
//! # Key ids
//!
//! [`JwsKey::key_id`] is base64url (no padding) of the first 16 bytes of
//! SHA-256 of the 32-byte public key. [`JwsKey::jwk_thumbprint`] is the
//! standard RFC 7638 JWK thumbprint, for consumers that expect one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{Ed25519KeyPair, KeyPair, UnparsedPublicKey, ED25519};
use zeroize::Zeroizing;

/// The JWS `alg` value for Ed25519 (RFC 8037 §3.1).
pub const ALG_EDDSA: &str = "EdDSA";

/// Why a key could not be made or a JWS could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum JwsError {
    #[error("the JWS key is not a valid Ed25519 key ({0})")]
    InvalidKey(&'static str),
    #[error("cannot generate a JWS key: the system random source failed")]
    Generate,
    #[error("the JWS is malformed: {0}")]
    Malformed(&'static str),
    #[error("the JWS {0} is not canonical base64url (URL-safe alphabet, no padding)")]
    Base64(&'static str),
    #[error("the JWS protected header is not a JSON object")]
    Header,
    #[error("the JWS protected header has no string \"alg\"")]
    MissingAlg,
    #[error("the JWS algorithm {0:?} is not accepted (only \"EdDSA\" is)")]
    UnsupportedAlg(String),
    #[error("the JWS protected header has a \"crit\" member; no extensions are supported")]
    UnsupportedCritical,
    #[error("the JWS signature does not verify")]
    BadSignature,
    #[error("the JWK is not a usable Ed25519 verification key: {0}")]
    InvalidJwk(&'static str),
    #[error("the JWS \"kid\" does not match the JWK's \"kid\"")]
    KeyIdMismatch,
}

/// An Ed25519 signing key for JWS (the consent-receipt instance key).
///
/// Not `Clone`, `Debug` or serialisable. The PKCS#8 document returned by
/// [`JwsKey::generate_pkcs8`] is zeroized on drop; `ring` keeps the expanded
/// private key inside `Ed25519KeyPair` and does not wipe it on drop, which is
/// outside this crate's reach.
pub struct JwsKey {
    pair: Ed25519KeyPair,
    public: [u8; 32],
    kid: String,
}

impl JwsKey {
    /// Loads a key from a PKCS#8 v2 document (RFC 5958, as produced by
    /// [`JwsKey::generate_pkcs8`]); the embedded public key must match the
    /// private key. PKCS#8 v1 documents (no public key) are rejected.
    pub fn from_pkcs8(doc: &[u8]) -> Result<Self, JwsError> {
        let pair = Ed25519KeyPair::from_pkcs8(doc).map_err(|_| JwsError::InvalidKey("not a PKCS#8 v2 Ed25519 key"))?;
        Self::from_pair(pair)
    }

    /// Makes a key from a raw 32-byte Ed25519 private key (the RFC 8032
    /// seed, the JWK `d` member). For test vectors and key imports; stored
    /// keys should be PKCS#8 ([`JwsKey::from_pkcs8`]).
    pub fn from_seed(seed: &[u8; 32]) -> Result<Self, JwsError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed).map_err(|_| JwsError::InvalidKey("bad seed"))?;
        Self::from_pair(pair)
    }

    /// A new random key as a PKCS#8 v2 document, for storing and later
    /// loading with [`JwsKey::from_pkcs8`].
    pub fn generate_pkcs8() -> Result<Zeroizing<Vec<u8>>, JwsError> {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| JwsError::Generate)?;
        Ok(Zeroizing::new(doc.as_ref().to_vec()))
    }

    fn from_pair(pair: Ed25519KeyPair) -> Result<Self, JwsError> {
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| JwsError::InvalidKey("public key is not 32 bytes"))?;
        let kid = key_id_of(&public);
        Ok(Self { pair, public, kid })
    }

    /// The 32-byte Ed25519 public key.
    #[must_use]
    pub fn public_key(&self) -> [u8; 32] {
        self.public
    }

    /// base64url (no padding) of the first 16 bytes of SHA-256(public key).
    #[must_use]
    pub fn key_id(&self) -> String {
        self.kid.clone()
    }

    /// The public key as a JWK (RFC 8037 §2):
    /// `{"kty":"OKP","crv":"Ed25519","x":..,"kid":..,"alg":"EdDSA","use":"sig"}`.
    #[must_use]
    pub fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": URL_SAFE_NO_PAD.encode(self.public),
            "kid": self.kid,
            "alg": ALG_EDDSA,
            "use": "sig",
        })
    }

    /// The RFC 7638 JWK thumbprint of the public key: base64url (no padding)
    /// of SHA-256 of `{"crv":"Ed25519","kty":"OKP","x":..}` (RFC 8037 §A.3).
    #[must_use]
    pub fn jwk_thumbprint(&self) -> String {
        let canonical = format!(
            r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
            URL_SAFE_NO_PAD.encode(self.public)
        );
        let d = ring::digest::digest(&ring::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(d.as_ref())
    }

    /// A compact JWS over `payload` with the protected header
    /// `{"alg":"EdDSA","typ":<typ>,"kid":<key id>}`, members in that order
    /// and without whitespace, so equal inputs give equal output (Ed25519
    /// signatures are deterministic). An empty `typ` means `"JWT"`.
    #[must_use]
    pub fn sign(&self, payload: &[u8], typ: &str) -> String {
        let typ = if typ.is_empty() { "JWT" } else { typ };
        // `Value::String`'s Display is infallible JSON string escaping.
        let header = format!(
            r#"{{"alg":"{ALG_EDDSA}","typ":{},"kid":{}}}"#,
            serde_json::Value::String(typ.to_owned()),
            serde_json::Value::String(self.kid.clone()),
        );
        self.sign_with_header(&header, payload)
    }

    /// A compact JWS over `payload` with `header_json` used byte for byte as
    /// the protected header. The caller is responsible for the header being
    /// a JSON object with `"alg":"EdDSA"`; anything else will not verify.
    /// Mainly for reproducing test vectors (RFC 8037 §A.4 uses exactly
    /// `{"alg":"EdDSA"}`).
    #[must_use]
    pub fn sign_with_header(&self, header_json: &str, payload: &[u8]) -> String {
        let mut out = URL_SAFE_NO_PAD.encode(header_json.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut out);
        let sig = self.pair.sign(out.as_bytes());
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig.as_ref(), &mut out);
        out
    }
}

/// base64url (no padding) of the first 16 bytes of SHA-256(public key).
#[must_use]
pub fn key_id_of(public_key: &[u8; 32]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, public_key);
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// The parts of a structurally valid compact JWS whose header passed the
/// algorithm checks, before its signature is checked.
struct Parsed {
    header: serde_json::Map<String, serde_json::Value>,
    payload: Vec<u8>,
    signature: Vec<u8>,
    signing_input_len: usize,
}

fn decode_segment(segment: &str, name: &'static str) -> Result<Vec<u8>, JwsError> {
    // URL_SAFE_NO_PAD rejects `=` padding, `+`, `/`, whitespace and
    // non-zero trailing bits.
    URL_SAFE_NO_PAD.decode(segment).map_err(|_| JwsError::Base64(name))
}

fn parse(compact: &str) -> Result<Parsed, JwsError> {
    let mut parts = compact.split('.');
    let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JwsError::Malformed("expected three '.'-separated segments"));
    };
    if h.is_empty() {
        return Err(JwsError::Malformed("empty protected header"));
    }
    if s.is_empty() {
        return Err(JwsError::Malformed("empty signature"));
    }
    let header_bytes = decode_segment(h, "header")?;
    let payload = decode_segment(p, "payload")?;
    let signature = decode_segment(s, "signature")?;

    let header = match serde_json::from_slice::<serde_json::Value>(&header_bytes) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => return Err(JwsError::Header),
    };
    match header.get("alg") {
        Some(serde_json::Value::String(alg)) if alg == ALG_EDDSA => {}
        Some(serde_json::Value::String(alg)) => {
            return Err(JwsError::UnsupportedAlg(alg.chars().take(32).collect()));
        }
        _ => return Err(JwsError::MissingAlg),
    }
    if header.contains_key("crit") {
        return Err(JwsError::UnsupportedCritical);
    }
    if signature.len() != 64 {
        return Err(JwsError::BadSignature);
    }
    Ok(Parsed {
        header,
        payload,
        signature,
        signing_input_len: h.len() + 1 + p.len(),
    })
}

fn check_signature(compact: &str, parsed: &Parsed, public_key: &[u8; 32]) -> Result<(), JwsError> {
    let signing_input = compact
        .as_bytes()
        .get(..parsed.signing_input_len)
        .ok_or(JwsError::Malformed("truncated"))?;
    UnparsedPublicKey::new(&ED25519, public_key)
        .verify(signing_input, &parsed.signature)
        .map_err(|_| JwsError::BadSignature)
}

/// Verifies a compact JWS (see the module docs for the rules) under an
/// Ed25519 public key; returns the payload bytes.
pub fn verify(compact: &str, public_key: &[u8; 32]) -> Result<Vec<u8>, JwsError> {
    let parsed = parse(compact)?;
    check_signature(compact, &parsed, public_key)?;
    Ok(parsed.payload)
}

/// Like [`verify`], with the key given as an Ed25519 public JWK (as produced
/// by [`JwsKey::jwk`]): `kty` must be `"OKP"`, `crv` `"Ed25519"`, `x` the
/// base64url public key; `alg`, `use` and `key_ops`, if present, must allow
/// EdDSA signature verification; if both the JWK and the JWS header have a
/// `kid`, they must be equal.
pub fn verify_with_jwk(compact: &str, jwk: &serde_json::Value) -> Result<Vec<u8>, JwsError> {
    let public_key = jwk_public_key(jwk)?;
    let parsed = parse(compact)?;
    if let (Some(jwk_kid), Some(header_kid)) = (jwk.get("kid"), parsed.header.get("kid")) {
        if jwk_kid != header_kid {
            return Err(JwsError::KeyIdMismatch);
        }
    }
    check_signature(compact, &parsed, &public_key)?;
    Ok(parsed.payload)
}

/// The Ed25519 public key of a JWK (see [`verify_with_jwk`] for the checks).
pub fn jwk_public_key(jwk: &serde_json::Value) -> Result<[u8; 32], JwsError> {
    let obj = jwk.as_object().ok_or(JwsError::InvalidJwk("not a JSON object"))?;
    let field = |name: &str| {
        obj.get(name)
            .map(|v| v.as_str().ok_or(JwsError::InvalidJwk("non-string member")))
    };
    if field("kty").transpose()? != Some("OKP") {
        return Err(JwsError::InvalidJwk("kty is not \"OKP\""));
    }
    if field("crv").transpose()? != Some("Ed25519") {
        return Err(JwsError::InvalidJwk("crv is not \"Ed25519\""));
    }
    if let Some(alg) = field("alg").transpose()? {
        if alg != ALG_EDDSA {
            return Err(JwsError::InvalidJwk("alg is not \"EdDSA\""));
        }
    }
    if let Some(usage) = field("use").transpose()? {
        if usage != "sig" {
            return Err(JwsError::InvalidJwk("use is not \"sig\""));
        }
    }
    if let Some(ops) = obj.get("key_ops") {
        let ops = ops.as_array().ok_or(JwsError::InvalidJwk("key_ops is not an array"))?;
        if !ops.iter().any(|op| op.as_str() == Some("verify")) {
            return Err(JwsError::InvalidJwk("key_ops does not allow \"verify\""));
        }
    }
    let x = field("x").transpose()?.ok_or(JwsError::InvalidJwk("no \"x\" member"))?;
    let bytes = URL_SAFE_NO_PAD
        .decode(x)
        .map_err(|_| JwsError::InvalidJwk("x is not canonical base64url"))?;
    bytes
        .as_slice()
        .try_into()
        .map_err(|_| JwsError::InvalidJwk("x is not 32 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> JwsKey {
        JwsKey::from_seed(&[7u8; 32]).unwrap()
    }

    #[test]
    fn header_is_deterministic_and_escaped() {
        let k = key();
        let a = k.sign(b"x", "JWT");
        assert_eq!(a, k.sign(b"x", "JWT"));
        let h = a.split('.').next().unwrap();
        let header = String::from_utf8(URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(
            header,
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, k.key_id())
        );
        assert_eq!(k.sign(b"x", ""), a, "empty typ means JWT");

        let odd = k.sign(b"x", "a\"b\\c");
        let h = odd.split('.').next().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        assert_eq!(v["typ"], "a\"b\\c");
        assert_eq!(verify(&odd, &k.public_key()).unwrap(), b"x");
    }

    #[test]
    fn key_id_is_22_chars_of_base64url() {
        let kid = key().key_id();
        assert_eq!(kid.len(), 22);
        assert!(kid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(URL_SAFE_NO_PAD.decode(&kid).unwrap().len(), 16);
    }

    #[test]
    fn segment_decoding_is_strict() {
        assert!(decode_segment("YQ", "x").is_ok());
        assert!(matches!(decode_segment("YQ==", "x"), Err(JwsError::Base64("x"))));
        assert!(decode_segment("+/8", "x").is_err());
        assert!(decode_segment("-_8", "x").is_ok());
        assert!(decode_segment("YR", "x").is_err(), "non-zero trailing bits");
        assert!(decode_segment("Y Q", "x").is_err());
    }

    #[test]
    fn error_variants() {
        let k = key();
        let pk = k.public_key();
        let good = k.sign(b"hello", "JWT");
        let (h, rest) = good.split_once('.').unwrap();
        let (p, s) = rest.split_once('.').unwrap();

        assert!(matches!(verify("a.b", &pk), Err(JwsError::Malformed(_))));
        assert!(matches!(verify(&format!("{good}.x"), &pk), Err(JwsError::Malformed(_))));
        assert!(matches!(verify(&format!(".{p}.{s}"), &pk), Err(JwsError::Malformed(_))));
        assert!(matches!(verify(&format!("{h}.{p}."), &pk), Err(JwsError::Malformed(_))));
        assert!(matches!(
            verify(&format!("{h}=.{p}.{s}"), &pk),
            Err(JwsError::Base64("header"))
        ));
        assert!(matches!(
            verify(&format!("{h}.{p}=.{s}"), &pk),
            Err(JwsError::Base64("payload"))
        ));
        assert!(matches!(
            verify(&format!("{h}.{p}.{s}="), &pk),
            Err(JwsError::Base64("signature"))
        ));
        assert!(matches!(
            verify(&format!("{}.{p}.{s}", URL_SAFE_NO_PAD.encode("[1]")), &pk),
            Err(JwsError::Header)
        ));
        assert!(matches!(
            verify(&k.sign_with_header(r#"{"typ":"JWT"}"#, b"x"), &pk),
            Err(JwsError::MissingAlg)
        ));
        assert!(matches!(
            verify(&k.sign_with_header(r#"{"alg":["EdDSA"]}"#, b"x"), &pk),
            Err(JwsError::MissingAlg)
        ));
        assert!(matches!(
            verify(
                &k.sign_with_header(r#"{"alg":"EdDSA","crit":["b64"],"b64":false}"#, b"x"),
                &pk
            ),
            Err(JwsError::UnsupportedCritical)
        ));
        assert!(matches!(
            verify(&format!("{h}.{p}.{}", URL_SAFE_NO_PAD.encode([0u8; 63])), &pk),
            Err(JwsError::BadSignature)
        ));
        let other = JwsKey::from_seed(&[8u8; 32]).unwrap();
        assert!(matches!(
            verify(&good, &other.public_key()),
            Err(JwsError::BadSignature)
        ));
    }

    #[test]
    fn duplicate_header_members_read_last() {
        let k = key();
        let pk = k.public_key();
        let jws = k.sign_with_header(r#"{"alg":"EdDSA","alg":"none"}"#, b"x");
        assert!(matches!(verify(&jws, &pk), Err(JwsError::UnsupportedAlg(a)) if a == "none"));
    }

    #[test]
    fn pkcs8_round_trip() {
        let doc = JwsKey::generate_pkcs8().unwrap();
        let a = JwsKey::from_pkcs8(&doc).unwrap();
        let b = JwsKey::from_pkcs8(&doc).unwrap();
        assert_eq!(a.public_key(), b.public_key());
        assert_eq!(a.sign(b"p", "JWT"), b.sign(b"p", "JWT"));
        assert!(matches!(JwsKey::from_pkcs8(b"nope"), Err(JwsError::InvalidKey(_))));
    }

    #[test]
    fn jwk_checks() {
        let k = key();
        let jwk = k.jwk();
        assert_eq!(jwk_public_key(&jwk).unwrap(), k.public_key());
        let with = |name: &str, v: serde_json::Value| {
            let mut j = jwk.clone();
            j[name] = v;
            j
        };
        for bad in [
            with("kty", "EC".into()),
            with("crv", "X25519".into()),
            with("alg", "HS256".into()),
            with("use", "enc".into()),
            with("key_ops", serde_json::json!(["sign"])),
            with("x", format!("{}=", jwk["x"].as_str().unwrap()).into()),
            with("x", "AAAA".into()),
            with("x", 5.into()),
            serde_json::json!("not an object"),
        ] {
            assert!(matches!(jwk_public_key(&bad), Err(JwsError::InvalidJwk(_))), "{bad}");
        }
        let mut no_x = jwk.clone();
        no_x.as_object_mut().unwrap().remove("x");
        assert!(jwk_public_key(&no_x).is_err());
        assert!(jwk_public_key(&with("key_ops", serde_json::json!(["verify"]))).is_ok());
    }
}
