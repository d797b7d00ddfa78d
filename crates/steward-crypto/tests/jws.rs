//! `steward_crypto::jws`: round trips, tampering, algorithm confusion, JWK
//! verification, the RFC 8037 Appendix A test vectors, and a cross-check
//! against an independent implementation (Python's `cryptography`; skipped,
//! with a note, when it is not installed).

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Value};
use steward_crypto::jws::{self, JwsError, JwsKey};

/// RFC 8037 Appendix A.1: the Ed25519 private key `d` and public key `x`.
const RFC_D: &str = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
const RFC_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
/// RFC 8037 Appendix A.3: the RFC 7638 thumbprint of that key.
const RFC_THUMBPRINT: &str = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";
/// RFC 8037 Appendix A.4: the payload and the resulting compact JWS.
const RFC_PAYLOAD: &str = "Example of Ed25519 signing";
const RFC_JWS: &str = "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg";

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn unb64(s: &str) -> Vec<u8> {
    URL_SAFE_NO_PAD.decode(s).expect("base64url")
}

fn rfc_key() -> JwsKey {
    let seed: [u8; 32] = unb64(RFC_D).try_into().expect("32-byte seed");
    JwsKey::from_seed(&seed).expect("key from seed")
}

fn new_key() -> JwsKey {
    JwsKey::from_pkcs8(&JwsKey::generate_pkcs8().expect("generate")).expect("load PKCS#8")
}

fn segments(compact: &str) -> [String; 3] {
    let v: Vec<&str> = compact.split('.').collect();
    assert_eq!(v.len(), 3);
    [v[0].to_owned(), v[1].to_owned(), v[2].to_owned()]
}

#[test]
fn rfc8037_appendix_a() {
    let key = rfc_key();
    assert_eq!(b64(key.public_key()), RFC_X, "A.1/A.2: public key from the private key");
    assert_eq!(key.jwk_thumbprint(), RFC_THUMBPRINT, "A.3: JWK thumbprint");

    let jws = key.sign_with_header(r#"{"alg":"EdDSA"}"#, RFC_PAYLOAD.as_bytes());
    assert_eq!(jws, RFC_JWS, "A.4: signing");

    let x: [u8; 32] = unb64(RFC_X).try_into().unwrap();
    assert_eq!(
        jws::verify(RFC_JWS, &x).unwrap(),
        RFC_PAYLOAD.as_bytes(),
        "A.5: verification"
    );
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X});
    assert_eq!(jws::verify_with_jwk(RFC_JWS, &jwk).unwrap(), RFC_PAYLOAD.as_bytes());
}

#[test]
fn round_trip() {
    let key = new_key();
    let payload = br#"{"version":"KI-CR-v1.1.0","consentReceiptID":"x"}"#;
    let jws = key.sign(payload, "JWT");
    assert_eq!(jws::verify(&jws, &key.public_key()).unwrap(), payload);
    assert_eq!(jws::verify_with_jwk(&jws, &key.jwk()).unwrap(), payload);

    let [h, _, s] = segments(&jws);
    let header: Value = serde_json::from_slice(&unb64(&h)).unwrap();
    assert_eq!(header, json!({"alg": "EdDSA", "typ": "JWT", "kid": key.key_id()}));
    assert_eq!(unb64(&s).len(), 64);
    assert!(!jws.contains('='));

    let other_typ = key.sign(payload, "kantara-cr+jwt");
    let [h, _, _] = segments(&other_typ);
    let header: Value = serde_json::from_slice(&unb64(&h)).unwrap();
    assert_eq!(header["typ"], "kantara-cr+jwt");
    assert_eq!(jws::verify(&other_typ, &key.public_key()).unwrap(), payload);

    // Empty and binary payloads.
    for payload in [&b""[..], &[0u8, 255, 10, 13, 46][..]] {
        let jws = key.sign(payload, "JWT");
        assert_eq!(jws::verify(&jws, &key.public_key()).unwrap(), payload);
    }
}

#[test]
fn keys_and_ids() {
    let doc = JwsKey::generate_pkcs8().unwrap();
    let a = JwsKey::from_pkcs8(&doc).unwrap();
    let b = JwsKey::from_pkcs8(&doc).unwrap();
    assert_eq!(a.public_key(), b.public_key());
    assert_eq!(a.key_id(), b.key_id());
    assert_ne!(a.public_key(), new_key().public_key());

    let key = rfc_key();
    let digest = ring::digest::digest(&ring::digest::SHA256, &key.public_key());
    assert_eq!(key.key_id(), b64(&digest.as_ref()[..16]));
    assert_eq!(key.key_id(), jws::key_id_of(&key.public_key()));
    assert_eq!(
        key.jwk(),
        json!({"kty": "OKP", "crv": "Ed25519", "x": RFC_X, "kid": key.key_id(), "alg": "EdDSA", "use": "sig"})
    );
    assert_eq!(jws::jwk_public_key(&key.jwk()).unwrap(), key.public_key());

    // Ed25519 is deterministic, and the header is produced deterministically.
    assert_eq!(key.sign(b"same", "JWT"), key.sign(b"same", "JWT"));

    assert!(JwsKey::from_pkcs8(&doc[..doc.len() - 1]).is_err());
    assert!(JwsKey::from_pkcs8(&[]).is_err());
}

/// Flips one character of a base64url segment to another valid one.
fn flip(segment: &str, at: usize) -> String {
    let mut chars: Vec<char> = segment.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    chars.into_iter().collect()
}

#[test]
fn tampering_fails() {
    let key = new_key();
    let pk = key.public_key();
    let jws = key.sign(b"consent granted for marketing_email", "JWT");
    let [h, p, s] = segments(&jws);

    // Payload.
    let other_payload = b64(b"consent granted for analytics");
    assert!(matches!(
        jws::verify(&format!("{h}.{other_payload}.{s}"), &pk),
        Err(JwsError::BadSignature)
    ));
    assert!(matches!(
        jws::verify(&format!("{h}.{}.{s}", flip(&p, 3)), &pk),
        Err(JwsError::BadSignature)
    ));
    // Header: a different but still acceptable header.
    let other_header = b64(format!(r#"{{"alg":"EdDSA","typ":"JOSE","kid":"{}"}}"#, key.key_id()));
    assert!(matches!(
        jws::verify(&format!("{other_header}.{p}.{s}"), &pk),
        Err(JwsError::BadSignature)
    ));
    // Signature: every position (the last character only within its
    // significant bits, so flip a middle one there).
    for i in 0..s.len() - 1 {
        let r = jws::verify(&format!("{h}.{p}.{}", flip(&s, i)), &pk);
        assert!(matches!(r, Err(JwsError::BadSignature)), "signature char {i}: {r:?}");
    }
    let mut sig = unb64(&s);
    sig[63] ^= 0x01;
    assert!(jws::verify(&format!("{h}.{p}.{}", b64(&sig)), &pk).is_err());
    // Truncated or extended signature.
    assert!(jws::verify(&format!("{h}.{p}.{}", b64(&unb64(&s)[..63])), &pk).is_err());
    assert!(jws::verify(&format!("{h}.{p}.{}", b64([unb64(&s), vec![0]].concat())), &pk).is_err());
    // Swapping segments, and a JWS signed by another key.
    assert!(jws::verify(&format!("{p}.{h}.{s}"), &pk).is_err());
    assert!(jws::verify(&new_key().sign(b"consent granted for marketing_email", "JWT"), &pk).is_err());
    // The original still verifies.
    assert!(jws::verify(&jws, &pk).is_ok());
}

#[test]
fn non_eddsa_algorithms_are_rejected() {
    let key = new_key();
    let pk = key.public_key();
    let payload = b64(b"{}");

    // alg "none" with an empty signature (the classic attack) and with a
    // placeholder one.
    let none = b64(r#"{"alg":"none"}"#);
    assert!(matches!(
        jws::verify(&format!("{none}.{payload}."), &pk),
        Err(JwsError::Malformed(_))
    ));
    assert!(matches!(
        jws::verify(&format!("{none}.{payload}.{}", b64([0u8; 64])), &pk),
        Err(JwsError::UnsupportedAlg(a)) if a == "none"
    ));
    // Even with a genuine Ed25519 signature over the exact signing input,
    // a header claiming another algorithm is rejected.
    for alg in ["none", "HS256", "RS256", "ES256", "eddsa", "Ed25519", "EdDSA ", ""] {
        let header = serde_json::to_string(&json!({"alg": alg})).unwrap();
        let jws = key.sign_with_header(&header, b"{}");
        let r = jws::verify(&jws, &pk);
        assert!(matches!(r, Err(JwsError::UnsupportedAlg(_))), "alg {alg:?}: {r:?}");
        assert!(jws::verify_with_jwk(&jws, &key.jwk()).is_err());
    }
    // HS256 with the public key bytes as the HMAC secret (key confusion).
    let hs = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
    let input = format!("{hs}.{payload}");
    let tag = ring::hmac::sign(&ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &pk), input.as_bytes());
    assert!(matches!(
        jws::verify(&format!("{input}.{}", b64(tag.as_ref())), &pk),
        Err(JwsError::UnsupportedAlg(a)) if a == "HS256"
    ));
    // No alg at all, or not a string.
    for header in [r#"{}"#, r#"{"alg":null}"#, r#"{"alg":1}"#] {
        let jws = key.sign_with_header(header, b"{}");
        assert!(matches!(jws::verify(&jws, &pk), Err(JwsError::MissingAlg)), "{header}");
    }
}

#[test]
fn malformed_input_is_rejected() {
    let key = new_key();
    let pk = key.public_key();
    let jws = key.sign(b"payload", "JWT");
    let [h, p, s] = segments(&jws);

    let padded_sig = URL_SAFE_NO_PAD.encode(unb64(&s)) + "==";
    let std_alphabet_sig = base64::engine::general_purpose::STANDARD_NO_PAD.encode(unb64(&s));
    let mut cases = vec![
        String::new(),
        ".".into(),
        "..".into(),
        format!("{h}.{p}"),
        format!("{h}.{p}.{s}.{s}"),
        format!("{h}.{p}.{s}."),
        format!("{h}..{s}"),
        format!("{h}.{p}.{padded_sig}"),
        format!("{h}.{p}=.{s}"),
        format!(" {h}.{p}.{s}"),
        format!("{h}.{p}.{s}\n"),
        format!("{h}.{p}.{s}!"),
        format!("{}.{p}.{s}", b64("not json")),
        format!("{}.{p}.{s}", b64(r#""EdDSA""#)),
        format!("{}.{p}.{s}", b64([0xffu8, 0xfe])),
    ];
    // Only if the standard alphabet actually differs for this signature.
    if std_alphabet_sig.contains(['+', '/']) {
        cases.push(format!("{h}.{p}.{std_alphabet_sig}"));
    }
    // A payload that decodes differently under the standard alphabet.
    cases.push(format!(
        "{h}.{}.{s}",
        b64([0xfbu8, 0xff]).replace('-', "+").replace('_', "/")
    ));
    for c in &cases {
        assert!(jws::verify(c, &pk).is_err(), "accepted {c:?}");
    }
    assert!(jws::verify(&jws, &pk).is_ok());
}

#[test]
fn verify_with_jwk_checks_the_key() {
    let key = new_key();
    let jws = key.sign(b"hello", "JWT");
    assert_eq!(jws::verify_with_jwk(&jws, &key.jwk()).unwrap(), b"hello");

    // A minimal public JWK (no kid, alg or use) works too.
    let minimal = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key())});
    assert_eq!(jws::verify_with_jwk(&jws, &minimal).unwrap(), b"hello");

    // Another key's JWK: its kid differs from the header's.
    let other = new_key();
    assert!(matches!(
        jws::verify_with_jwk(&jws, &other.jwk()),
        Err(JwsError::KeyIdMismatch)
    ));
    // Another key without a kid: the signature fails.
    let other_minimal = json!({"kty": "OKP", "crv": "Ed25519", "x": b64(other.public_key())});
    assert!(matches!(
        jws::verify_with_jwk(&jws, &other_minimal),
        Err(JwsError::BadSignature)
    ));
    // Right key, wrong kid.
    let mut wrong_kid = key.jwk();
    wrong_kid["kid"] = json!("someone-else");
    assert!(matches!(
        jws::verify_with_jwk(&jws, &wrong_kid),
        Err(JwsError::KeyIdMismatch)
    ));

    let bad = [
        json!({"kty": "EC", "crv": "P-256", "x": b64(key.public_key())}),
        json!({"kty": "OKP", "crv": "X25519", "x": b64(key.public_key())}),
        json!({"kty": "OKP", "crv": "Ed25519"}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(&key.public_key()[..31])}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": format!("{}=", b64(key.public_key()))}),
        json!({"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key()), "alg": "none"}),
        json!({"kty": "oct", "k": b64(key.public_key())}),
        json!(b64(key.public_key())),
    ];
    for jwk in bad {
        assert!(
            matches!(jws::verify_with_jwk(&jws, &jwk), Err(JwsError::InvalidJwk(_))),
            "{jwk}"
        );
    }
}

// --- Independent implementation -------------------------------------------

/// Reads one JSON object from stdin, writes one to stdout. Uses only
/// Python's `cryptography` (Ed25519) and standard library.
const SCRIPT: &str = r#"
import base64, hashlib, json, sys
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives import serialization
from cryptography.exceptions import InvalidSignature

def b64e(b): return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def b64d(s):
    assert "=" not in s
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def raw_pub(k): return k.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

def sign(priv, header, payload):
    inp = b64e(header.encode()) + "." + b64e(payload)
    return inp + "." + b64e(priv.sign(inp.encode()))

def verify(compact, x):
    h, p, s = compact.split(".")
    header = json.loads(b64d(h))
    if header.get("alg") != "EdDSA": return {"error": "alg"}
    try:
        Ed25519PublicKey.from_public_bytes(b64d(x)).verify(b64d(s), (h + "." + p).encode())
    except InvalidSignature:
        return {"error": "signature"}
    return {"header": header, "payload": b64e(b64d(p))}

req = json.load(sys.stdin)
out = {}
# 1. Verify what Rust signed (and a tampered copy).
out["rust_verified"] = verify(req["rust_jws"], req["rust_x"])
h, p, s = req["rust_jws"].split(".")
out["rust_tampered"] = verify(h + "." + b64e(b"tampered") + "." + s, req["rust_x"])
# 2. Independently derive the key id, thumbprint and public key from the seed.
x = b64d(req["rust_x"])
out["kid"] = b64e(hashlib.sha256(x).digest()[:16])
out["thumbprint"] = b64e(hashlib.sha256(
    json.dumps({"crv": "Ed25519", "kty": "OKP", "x": req["rust_x"]}, separators=(",", ":"), sort_keys=True).encode()
).digest())
seeded = Ed25519PrivateKey.from_private_bytes(b64d(req["seed"]))
out["seed_x"] = b64e(raw_pub(seeded))
# 3. Sign with the same seed; Ed25519 is deterministic, so Rust must produce the same JWS.
out["seed_jws"] = sign(seeded, req["header"], b64d(req["payload"]))
# 4. A fresh Python key signs; Rust verifies.
fresh = Ed25519PrivateKey.generate()
out["py_x"] = b64e(raw_pub(fresh))
out["py_jws"] = sign(fresh, '{"alg":"EdDSA","typ":"JWT","kid":"python"}', b64d(req["payload"]))
json.dump(out, sys.stdout)
"#;

fn python_has_cryptography() -> bool {
    Command::new("python3")
        .args(["-c", "import cryptography.hazmat.primitives.asymmetric.ed25519"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn run_python(request: &Value) -> Value {
    let mut child = Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn python3");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(request.to_string().as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("wait for python3");
    assert!(
        out.status.success(),
        "python cross-check failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("python3 prints JSON")
}

#[test]
fn cross_check_with_python_cryptography() {
    if !python_has_cryptography() {
        println!("note: python3 with the `cryptography` module is not available; skipping the JWS cross-check");
        return;
    }
    let key = new_key();
    let payload = br#"{"version":"KI-CR-v1.1.0","piiPrincipalId":"b7d1c6de"}"#;
    let rust_jws = key.sign(payload, "JWT");

    let mut seed = [0u8; 32];
    steward_crypto::aead::random_bytes(&mut seed).unwrap();
    let seeded = JwsKey::from_seed(&seed).unwrap();
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#, seeded.key_id());

    let out = run_python(&json!({
        "rust_jws": rust_jws,
        "rust_x": b64(key.public_key()),
        "seed": b64(seed),
        "header": header,
        "payload": b64(payload),
    }));

    assert_eq!(out["rust_verified"]["payload"], b64(payload), "{out}");
    assert_eq!(
        out["rust_verified"]["header"],
        json!({"alg": "EdDSA", "typ": "JWT", "kid": key.key_id()})
    );
    assert_eq!(out["rust_tampered"]["error"], "signature");
    assert_eq!(out["kid"], key.key_id());
    assert_eq!(out["thumbprint"], key.jwk_thumbprint());
    assert_eq!(out["seed_x"], b64(seeded.public_key()));
    assert_eq!(out["seed_jws"], seeded.sign(payload, "JWT"));
    assert_eq!(out["seed_jws"], seeded.sign_with_header(&header, payload));

    let py_x: [u8; 32] = unb64(out["py_x"].as_str().unwrap()).try_into().unwrap();
    let py_jws = out["py_jws"].as_str().unwrap();
    assert_eq!(jws::verify(py_jws, &py_x).unwrap(), payload);
    let [h, _, s] = segments(py_jws);
    assert!(jws::verify(&format!("{h}.{}.{s}", b64(b"tampered")), &py_x).is_err());
}
