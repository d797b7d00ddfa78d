//! Cross-checks `steward_crypto::totp` against an independent TOTP written
//! with Python's standard library (hmac, hashlib, struct, base64). Skipped,
//! with a note, when `python3` is not installed.

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use steward_crypto::aead::random_bytes;
use steward_crypto::totp::{self, TotpAlgorithm, TotpParams, TotpSecret};

/// Reads lines `HEXSECRET TIME ALG DIGITS PERIOD` (TIME is an integer or
/// `now`); prints `BASE32 CODE` per line, base32 without padding, computed
/// by Python itself from the raw secret.
const SCRIPT: &str = r#"
import base64, hashlib, hmac, struct, sys, time

def totp(key, t, alg, digits, period):
    counter = t // period
    mac = hmac.new(key, struct.pack(">Q", counter), getattr(hashlib, alg)).digest()
    offset = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[offset:offset + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)

for line in sys.stdin:
    hexkey, t, alg, digits, period = line.split()
    key = bytes.fromhex(hexkey)
    b32 = base64.b32encode(key).decode().rstrip("=")
    # Decode the unpadded form again, as an authenticator app would.
    assert base64.b32decode(b32 + "=" * (-len(b32) % 8)) == key
    t = int(time.time()) if t == "now" else int(t)
    print(b32, totp(key, t, alg, int(digits), int(period)))
"#;

struct Case {
    secret: Vec<u8>,
    time: Option<u64>,
    params: TotpParams,
}

fn alg_name(a: TotpAlgorithm) -> &'static str {
    match a {
        TotpAlgorithm::Sha1 => "sha1",
        TotpAlgorithm::Sha256 => "sha256",
        TotpAlgorithm::Sha512 => "sha512",
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    random_bytes(&mut b).expect("OS random generator");
    u64::from_le_bytes(b)
}

/// Runs the Python script over `cases`; `None` if python3 is unavailable.
fn python(cases: &[Case]) -> Option<Vec<(String, String)>> {
    let mut input = String::new();
    for c in cases {
        let t = c.time.map_or_else(|| "now".to_owned(), |t| t.to_string());
        input.push_str(&format!(
            "{} {} {} {} {}\n",
            hex(&c.secret),
            t,
            alg_name(c.params.algorithm),
            c.params.digits,
            c.params.period
        ));
    }
    let mut child = match Command::new("python3")
        .args(["-c", SCRIPT])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => {
            eprintln!("note: python3 not available ({e}); skipping the TOTP cross-check");
            return None;
        }
    };
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write to python3");
    let out = child.wait_with_output().expect("wait for python3");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).expect("python3 output is UTF-8");
    let lines: Vec<(String, String)> = stdout
        .lines()
        .map(|l| {
            let (b32, code) = l.split_once(' ').expect("BASE32 CODE line");
            (b32.to_owned(), code.to_owned())
        })
        .collect();
    assert_eq!(lines.len(), cases.len(), "python output: {stdout}");
    Some(lines)
}

const ALGORITHMS: [TotpAlgorithm; 3] = [TotpAlgorithm::Sha1, TotpAlgorithm::Sha256, TotpAlgorithm::Sha512];

#[test]
fn totp_matches_python_for_random_secrets_and_times() {
    let mut cases = Vec::new();
    for i in 0..60usize {
        // Secret lengths from 10 bytes (80-bit legacy secrets) to 64 bytes,
        // including every base32 tail length.
        let len = 10 + (random_u64() % 55) as usize;
        let mut secret = vec![0u8; len];
        random_bytes(&mut secret).unwrap();
        let time = match i {
            0 => 0,
            1 => 59,
            2 => 20_000_000_000,
            // Up to ~year 3000, plus fully random 40-bit times.
            _ if i % 2 == 0 => random_u64() % 32_503_680_000,
            _ => random_u64() % (1 << 40),
        };
        let params = TotpParams {
            algorithm: ALGORITHMS[i % 3],
            digits: 6 + (i as u32 / 3) % 3,
            period: [30, 60, 15][(i / 9) % 3],
        };
        cases.push(Case {
            secret,
            time: Some(time),
            params,
        });
    }
    let Some(expected) = python(&cases) else { return };
    for (case, (b32, code)) in cases.iter().zip(&expected) {
        let secret = TotpSecret::from_bytes(case.secret.clone());
        let t = case.time.unwrap();
        assert_eq!(&secret.to_base32(), b32, "base32 of {}", hex(&case.secret));
        let parsed = TotpSecret::from_base32(b32).unwrap();
        assert_eq!(parsed.as_bytes(), &case.secret[..]);
        assert_eq!(
            &totp::totp(&parsed, t, &case.params),
            code,
            "secret {} time {t} params {:?}",
            hex(&case.secret),
            case.params
        );
        assert_eq!(
            totp::verify(&secret, code, t, None, &case.params),
            Some(totp::time_step(t, case.params.period))
        );
    }
}

#[test]
fn codes_python_generates_now_are_accepted() {
    let mut cases = Vec::new();
    for (i, algorithm) in ALGORITHMS.into_iter().enumerate() {
        for digits in 6..=8 {
            let secret = if i == 0 && digits == 6 {
                TotpSecret::generate().unwrap().as_bytes().to_vec()
            } else {
                let mut s = vec![0u8; [20, 32, 64][i]];
                random_bytes(&mut s).unwrap();
                s
            };
            cases.push(Case {
                secret,
                time: None,
                params: TotpParams {
                    algorithm,
                    digits,
                    period: 30,
                },
            });
        }
    }
    let Some(expected) = python(&cases) else { return };
    // Read the clock after Python ran: even if a step boundary passed in
    // between, the one-step skew window covers it.
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    for (case, (b32, code)) in cases.iter().zip(&expected) {
        let secret = TotpSecret::from_base32(b32).unwrap();
        let step = totp::verify(&secret, code, now, None, &case.params)
            .unwrap_or_else(|| panic!("python's code {code} refused ({:?})", case.params));
        let current = totp::time_step(now, case.params.period);
        assert!(step + 1 >= current && step <= current + 1);
        // The same code cannot be used twice.
        assert_eq!(totp::verify(&secret, code, now, Some(step), &case.params), None);
    }
}
