//! TLS for PostgreSQL connections, chosen by the connection string's
//! `sslmode` and `sslrootcert` parameters with libpq's meaning.
//!
//! | `sslmode` | encrypted | server certificate checked |
//! |---|---|---|
//! | `disable` | never | — |
//! | `allow` | treated as `prefer` (Steward never chooses plaintext first) | as `prefer` |
//! | `prefer` (the default) | if the server offers TLS, else plaintext | only if `sslrootcert` is given: chain to it, name not checked |
//! | `require` | always; fails if the server does not offer TLS | only if `sslrootcert` is given: chain to it, name not checked |
//! | `verify-ca` | always | chain to `sslrootcert` (required); name not checked |
//! | `verify-full` | always | chain to `sslrootcert` (required) and the host name (or IP address) matches |
//!
//! As in libpq, `require` without a root certificate protects against
//! eavesdropping, not against an active man in the middle: it accepts any
//! certificate, though the handshake signatures are still verified (so the
//! peer does hold the key of the certificate it sent).
//!
//! Differences from libpq, on purpose:
//! - `sslrootcert` must be given explicitly; `~/.postgresql/root.crt` is
//!   never read, and `sslrootcert=system` is refused. For the operating
//!   system's CAs name its bundle, e.g.
//!   `sslrootcert=/etc/ssl/certs/ca-certificates.crt`. `verify-ca` and
//!   `verify-full` without `sslrootcert` are refused with that advice.
//! - An `sslrootcert` that cannot be read or holds no certificate is an
//!   error in every mode but `disable` (libpq silently ignores a missing
//!   file under `prefer` and `require`).
//! - Client certificates (`sslcert`, `sslkey`), CRLs and the other `ssl*`
//!   parameters are not supported; tokio-postgres refuses them as unknown
//!   options.
//!
//! Every connection uses rustls with the `ring` provider, TLS 1.3 or 1.2,
//! and offers the ALPN protocol `postgresql` (so `sslnegotiation=direct`
//! works with PostgreSQL 17). Channel binding (`tls-server-end-point`) is
//! available to SCRAM when TLS is in use.
//!
//! tokio-postgres itself only knows `disable`, `prefer` and `require` and
//! rejects `sslrootcert`, so both parameters are taken out of the
//! connection string here (URL or key-value form) before it is parsed.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::{self, PemObject};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{StoreError, StoreResult};

/// The parsed connection string and the TLS connector its `sslmode` asks for.
pub(crate) struct ConnectSettings {
    pub config: tokio_postgres::Config,
    pub tls: MakeRustlsConnect,
}

/// `sslmode` as libpq spells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl Mode {
    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "disable" => Self::Disable,
            "allow" | "prefer" => Self::Prefer,
            "require" => Self::Require,
            "verify-ca" => Self::VerifyCa,
            "verify-full" => Self::VerifyFull,
            _ => {
                return Err(invalid(
                    "sslmode must be one of disable, allow, prefer, require, verify-ca or verify-full",
                ))
            }
        })
    }

    fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyCa => "verify-ca",
            Self::VerifyFull => "verify-full",
        }
    }
}

/// The `ssl*` parameters taken out of a connection string.
#[derive(Debug, Default, PartialEq, Eq)]
struct SslParams {
    mode: Option<String>,
    rootcert: Option<String>,
}

impl SslParams {
    /// Takes `key = value` if it is one of ours; `false` if it is not.
    fn take(&mut self, key: &str, value: String) -> bool {
        match key {
            "sslmode" => self.mode = Some(value),
            "sslrootcert" => self.rootcert = Some(value),
            _ => return false,
        }
        true
    }
}

fn invalid(what: &str) -> StoreError {
    StoreError::Backend(format!("invalid PostgreSQL URL: {what}"))
}

/// Parses `url` (`postgres://…` or `key=value …`; never echoed in errors, as
/// it may hold a password) and builds the TLS connector for its `sslmode`.
pub(crate) fn connect_settings(url: &str) -> StoreResult<ConnectSettings> {
    let (rest, params) = split_ssl_params(url);
    let mut config = tokio_postgres::Config::from_str(&rest).map_err(|e| invalid(&parse_error(&e)))?;
    let mode = match params.mode.as_deref() {
        Some(m) => Mode::parse(m)?,
        None => Mode::Prefer,
    };
    config.ssl_mode(match mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    let roots = match (mode, params.rootcert.as_deref()) {
        (Mode::Disable, _) => None,
        (_, Some("system")) => {
            return Err(invalid(
                "sslrootcert=system is not supported; name a PEM file of CA certificates instead, e.g. sslrootcert=/etc/ssl/certs/ca-certificates.crt",
            ))
        }
        (_, Some(path)) => Some(Arc::new(load_roots(Path::new(path))?)),
        (Mode::VerifyCa | Mode::VerifyFull, None) => {
            return Err(StoreError::Backend(format!(
                "sslmode={} needs sslrootcert=PATH naming a PEM file of trusted CA certificates (for the system's CAs, e.g. sslrootcert=/etc/ssl/certs/ca-certificates.crt)",
                mode.name()
            )))
        }
        (_, None) => None,
    };
    let tls = MakeRustlsConnect::new(client_config(mode, roots)?);
    Ok(ConnectSettings { config, tls })
}

/// tokio-postgres's parse error, with the cause when it names an option
/// (other causes may quote a character of the string, e.g. of a password).
fn parse_error(e: &tokio_postgres::Error) -> String {
    match std::error::Error::source(e).map(ToString::to_string) {
        Some(cause) if cause.starts_with("unknown option") || cause.starts_with("invalid value for option") => {
            format!("{e}: {cause}")
        }
        _ => e.to_string(),
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(mode: Mode, roots: Option<Arc<RootCertStore>>) -> StoreResult<ClientConfig> {
    let provider = provider();
    let algorithms = provider.signature_verification_algorithms;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| StoreError::Backend(format!("cannot set up TLS for PostgreSQL: {e}")))?;
    let mut config = match (mode, roots) {
        (Mode::VerifyFull, Some(roots)) => builder.with_root_certificates(roots).with_no_client_auth(),
        (_, Some(roots)) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ChainOnly { roots, algorithms }))
            .with_no_client_auth(),
        (_, None) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(EncryptionOnly { algorithms }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The CA certificates in the PEM file `path`.
fn load_roots(path: &Path) -> StoreResult<RootCertStore> {
    let shown = path.display();
    let fail = |e: pem::Error| match e {
        pem::Error::Io(e) => StoreError::Backend(format!("cannot read the sslrootcert file {shown}: {e}")),
        _ => StoreError::Backend(format!("the sslrootcert file {shown} is not valid PEM")),
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(fail)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(fail)?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(StoreError::Backend(format!(
            "the sslrootcert file {shown} holds no usable CA certificate"
        )));
    }
    Ok(roots)
}

/// `require` and `prefer` without a root certificate: any certificate is
/// accepted, but the handshake must be signed by its key.
struct EncryptionOnly {
    algorithms: WebPkiSupportedAlgorithms,
}

/// `verify-ca` (and `require`/`prefer` with `sslrootcert`): the chain must
/// lead to one of `roots`; the name is not checked.
struct ChainOnly {
    roots: Arc<RootCertStore>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl fmt::Debug for EncryptionOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EncryptionOnly")
    }
}

impl fmt::Debug for ChainOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChainOnly").field("roots", &self.roots.len()).finish()
    }
}

impl ServerCertVerifier for EncryptionOnly {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Takes `sslmode` and `sslrootcert` out of a connection string, keeping
/// everything else as written. A string this cannot make sense of is
/// returned unchanged, for tokio-postgres to report.
fn split_ssl_params(url: &str) -> (String, SslParams) {
    let split = if let Some(rest) = url
        .strip_prefix("postgres://")
        .or_else(|| url.strip_prefix("postgresql://"))
    {
        split_url(url, url.len() - rest.len())
    } else {
        split_key_values(url)
    };
    split.unwrap_or_else(|| (url.to_owned(), SslParams::default()))
}

/// URL form. Like tokio-postgres (and libpq), the user info runs to the
/// first `@`, the query from the next `?`; parameters are `&`-separated
/// `key=value` pairs, percent-encoded.
fn split_url(url: &str, authority_start: usize) -> Option<(String, SslParams)> {
    let rest = &url[authority_start..];
    let after_credentials = rest.find('@').map_or(0, |i| i + 1);
    let Some(q) = rest[after_credentials..].find('?') else {
        return Some((url.to_owned(), SslParams::default()));
    };
    let query_start = authority_start + after_credentials + q;
    let mut params = SslParams::default();
    let mut kept: Vec<&str> = Vec::new();
    for pair in url[query_start + 1..].split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        if !params.take(&percent_decode(key)?, percent_decode(value)?) {
            kept.push(pair);
        }
    }
    let mut out = url[..query_start].to_owned();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    Some((out, params))
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits stays as is.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        if let Some(b) = escaped {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Key-value form (`host=h sslmode='require' …`), tokenised exactly as
/// tokio-postgres does: values may be single-quoted, `\` escapes the next
/// character.
fn split_key_values(s: &str) -> Option<(String, SslParams)> {
    let mut params = SslParams::default();
    let mut kept: Vec<&str> = Vec::new();
    let mut it = s.char_indices().peekable();
    let skip_ws = |it: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while it.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
    };
    loop {
        skip_ws(&mut it);
        let Some(&(start, _)) = it.peek() else { break };
        let mut key_end = start;
        while let Some((i, c)) = it.next_if(|&(_, c)| !c.is_whitespace() && c != '=') {
            key_end = i + c.len_utf8();
        }
        let key = &s[start..key_end];
        if key.is_empty() {
            return None;
        }
        skip_ws(&mut it);
        it.next_if(|&(_, c)| c == '=')?;
        skip_ws(&mut it);
        let mut value = String::new();
        let quoted = it.next_if(|&(_, c)| c == '\'').is_some();
        let mut end = s.len();
        loop {
            let Some(&(i, c)) = it.peek() else {
                if quoted {
                    return None;
                }
                break;
            };
            if (quoted && c == '\'') || (!quoted && c.is_whitespace()) {
                end = if quoted { i + 1 } else { i };
                if quoted {
                    it.next();
                }
                break;
            }
            it.next();
            if c == '\\' {
                if let Some((_, escaped)) = it.next() {
                    value.push(escaped);
                }
            } else {
                value.push(c);
            }
        }
        if !quoted && value.is_empty() {
            return None;
        }
        if !params.take(key, value) {
            kept.push(&s[start..end]);
        }
    }
    Some((kept.join(" "), params))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn params(mode: Option<&str>, rootcert: Option<&str>) -> SslParams {
        SslParams {
            mode: mode.map(str::to_owned),
            rootcert: rootcert.map(str::to_owned),
        }
    }

    #[test]
    fn ssl_parameters_are_taken_out_of_urls() {
        let cases = [
            ("postgres://u:p@h/db", "postgres://u:p@h/db", params(None, None)),
            (
                "postgres://u:p@h:5432/db?sslmode=verify-full",
                "postgres://u:p@h:5432/db",
                params(Some("verify-full"), None),
            ),
            (
                "postgresql://h/db?application_name=a&sslmode=require&sslrootcert=%2Fetc%2Fca%20x.pem&connect_timeout=5",
                "postgresql://h/db?application_name=a&connect_timeout=5",
                params(Some("require"), Some("/etc/ca x.pem")),
            ),
            (
                "postgres://u:p%3Fx@h?sslmode=disable",
                "postgres://u:p%3Fx@h",
                params(Some("disable"), None),
            ),
            // A `?` in the password (before the `@`) does not start the query.
            (
                "postgres://u:a?b@h/db?sslmode=prefer",
                "postgres://u:a?b@h/db",
                params(Some("prefer"), None),
            ),
            ("postgres://h/db?sslmode=a&sslmode=b", "postgres://h/db", params(Some("b"), None)),
        ];
        for (url, rest, expected) in cases {
            let (r, p) = split_ssl_params(url);
            assert_eq!(r, rest, "{url}");
            assert_eq!(p, expected, "{url}");
        }
    }

    #[test]
    fn ssl_parameters_are_taken_out_of_key_value_strings() {
        let cases = [
            ("host=h dbname=d", "host=h dbname=d", params(None, None)),
            (
                "host=h sslmode=verify-ca  sslrootcert='/a b/c\\'d.pem' user = u",
                "host=h user = u",
                params(Some("verify-ca"), Some("/a b/c'd.pem")),
            ),
            (
                "password='x y' sslmode = require",
                "password='x y'",
                params(Some("require"), None),
            ),
        ];
        for (s, rest, expected) in cases {
            let (r, p) = split_ssl_params(s);
            assert_eq!(r, rest, "{s}");
            assert_eq!(p, expected, "{s}");
            // What is left still parses.
            tokio_postgres::Config::from_str(&r).unwrap();
        }
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b%2F").unwrap(), "a b/");
        assert_eq!(percent_decode("100%").unwrap(), "100%");
        assert_eq!(percent_decode("%zz%4").unwrap(), "%zz%4");
        assert_eq!(percent_decode("%C3%A9").unwrap(), "é");
        assert!(percent_decode("%FF").is_none());
    }

    fn error(url: &str) -> String {
        match connect_settings(url) {
            Ok(_) => panic!("{url} was accepted"),
            Err(StoreError::Backend(m)) => m,
            Err(e) => panic!("{url}: unexpected {e:?}"),
        }
    }

    #[test]
    fn modes_map_to_tokio_postgres() {
        for (mode, expected) in [
            ("disable", SslMode::Disable),
            ("allow", SslMode::Prefer),
            ("prefer", SslMode::Prefer),
            ("require", SslMode::Require),
        ] {
            let s = connect_settings(&format!("postgres://u:secret@h/db?sslmode={mode}")).unwrap();
            assert_eq!(s.config.get_ssl_mode(), expected, "{mode}");
        }
        let s = connect_settings("postgres://u:secret@h/db").unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Prefer);
        assert_eq!(s.config.get_dbname(), Some("db"));
    }

    #[test]
    fn bad_settings_are_refused_without_echoing_the_url() {
        let m = error("postgres://u:secret@h/db?sslmode=bogus");
        assert!(m.contains("sslmode must be one of"), "{m}");
        assert!(!m.contains("secret"), "{m}");

        let m = error("postgres://u:secret@h/db?sslmode=verify-full");
        assert!(m.contains("sslmode=verify-full needs sslrootcert"), "{m}");
        let m = error("postgres://u:secret@h/db?sslmode=verify-ca");
        assert!(m.contains("sslmode=verify-ca needs sslrootcert"), "{m}");

        let m = error("postgres://u:secret@h/db?sslmode=verify-full&sslrootcert=system");
        assert!(m.contains("sslrootcert=system is not supported"), "{m}");

        let m = error("postgres://u:secret@h/db?sslmode=require&sslrootcert=/nonexistent/steward-ca.pem");
        assert!(
            m.contains("cannot read the sslrootcert file /nonexistent/steward-ca.pem"),
            "{m}"
        );

        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        let m = error(&format!(
            "postgres://u:secret@h/db?sslmode=verify-ca&sslrootcert={}",
            empty.display()
        ));
        assert!(m.contains("holds no usable CA certificate"), "{m}");

        let m = error("postgres://u:secret@h/db?sslcert=/x.pem");
        assert!(m.contains("unknown option"), "{m}");
        assert!(!m.contains("secret"), "{m}");

        // With TLS off, the root certificate is not even read.
        let s = connect_settings("postgres://h/db?sslmode=disable&sslrootcert=/nonexistent.pem").unwrap();
        assert_eq!(s.config.get_ssl_mode(), SslMode::Disable);
    }

    // ---- Against the PostgreSQL in STEWARD_TEST_DATABASE_URL (skipped when unset).

    use crate::postgres::testing::{connect_client, fresh_test_database, test_database_url, with_database};
    use crate::postgres::PgStore;
    use crate::Store;

    /// A self-signed CA that signed nothing any server uses (its key is gone).
    const UNRELATED_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBvDCCAWGgAwIBAgIUCc+p7L2hCFOUbRPFkaDnYw2r76owCgYIKoZIzj0EAwIw
MjEwMC4GA1UEAwwnU3Rld2FyZCB0ZXN0IENBIHVucmVsYXRlZCB0byBhbnkgc2Vy
dmVyMCAXDTI2MTEyOTAzMDEzNloYDzIxMjYxMTA1MDMwMTM2WjAyMTAwLgYDVQQD
DCdTdGV3YXJkIHRlc3QgQ0EgdW5yZWxhdGVkIHRvIGFueSBzZXJ2ZXIwWTATBgcq
hkjOPQIBBggqhkjOPQMBBwNCAAT2eIUH6xAdzHytBXkQjHhsWiUGCTpD6cmxOaF1
KqaNsk+PyclPj+05vN3yyrun+TOVk3xvUoihKwQcwJU0sycyo1MwUTAdBgNVHQ4E
FgQU9lAwM/qCt0EgGKHSjKtS6ab7S4cwHwYDVR0jBBgwFoAU9lAwM/qCt0EgGKHS
jKtS6ab7S4cwDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNJADBGAiEAzdAG
+g0RXMK82tjU+kfjfoNievD2047vQYjFQQRXwHECIQCFAqJCRs9TysxHZIs95Dp3
0PpiPu2zJNEg16HI2OsPgQ==
-----END CERTIFICATE-----
";

    /// Debian's default server certificate (`ssl = on` out of the box).
    const SNAKEOIL: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";

    /// `url` with its `ssl*` parameters replaced by `extra` (`k=v&k=v`).
    fn with_ssl(url: &str, extra: &str) -> String {
        let (rest, _) = split_ssl_params(url);
        if rest.starts_with("postgres://") || rest.starts_with("postgresql://") {
            let sep = if rest.contains('?') { '&' } else { '?' };
            format!("{rest}{sep}{extra}")
        } else {
            format!("{rest} {}", extra.replace('&', " "))
        }
    }

    /// The test server's admin URL, if the tests are configured and the
    /// server has TLS on; `None` (with a note) otherwise.
    async fn tls_server() -> Option<String> {
        let admin = test_database_url()?;
        let client = connect_client(&with_ssl(&admin, "sslmode=disable"))
            .await
            .expect("connect with sslmode=disable");
        let row = client.query_one("SHOW ssl", &[]).await.expect("SHOW ssl");
        let ssl: String = row.get(0);
        if ssl != "on" {
            eprintln!("note: skipped: the test PostgreSQL server has ssl = {ssl}");
            return None;
        }
        Some(admin)
    }

    /// Whether this connection is encrypted, and with which protocol.
    async fn ssl_state(client: &tokio_postgres::Client) -> (bool, Option<String>) {
        let row = client
            .query_one("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()", &[])
            .await
            .expect("pg_stat_ssl");
        (row.get(0), row.get(1))
    }

    fn connect_error(r: StoreResult<tokio_postgres::Client>) -> String {
        match r {
            Ok(_) => panic!("the connection was expected to fail"),
            Err(StoreError::Backend(m)) => m,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[tokio::test]
    async fn require_encrypts_and_disable_does_not() {
        let Some(admin) = tls_server().await else { return };

        let client = connect_client(&with_ssl(&admin, "sslmode=require"))
            .await
            .expect("sslmode=require");
        let (ssl, version) = ssl_state(&client).await;
        assert!(ssl, "sslmode=require gives an encrypted connection");
        let version = version.unwrap_or_default();
        assert!(version == "TLSv1.3" || version == "TLSv1.2", "{version}");

        let client = connect_client(&with_ssl(&admin, "sslmode=disable"))
            .await
            .expect("sslmode=disable");
        assert!(!ssl_state(&client).await.0, "sslmode=disable stays in plaintext");

        // No sslmode: libpq's default, prefer, encrypts when the server can.
        let (plain, _) = split_ssl_params(&admin);
        let client = connect_client(&plain).await.expect("default sslmode");
        assert!(ssl_state(&client).await.0, "the default sslmode (prefer) encrypts");
    }

    #[tokio::test]
    async fn verify_full_refuses_a_server_the_root_did_not_sign() {
        let Some(admin) = tls_server().await else { return };
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("unrelated-ca.pem");
        std::fs::write(&ca, UNRELATED_CA).unwrap();
        for mode in ["verify-full", "verify-ca", "require"] {
            let url = with_ssl(&admin, &format!("sslmode={mode}&sslrootcert={}", ca.display()));
            let m = connect_error(connect_client(&url).await);
            assert!(m.contains("TLS") && m.contains("certificate"), "{mode}: {m}");
            assert!(!m.contains("steward_ci:"), "{mode}: the URL is not echoed: {m}");
        }
        // The same through the store, which names the failure once.
        let url = with_ssl(&admin, &format!("sslmode=verify-full&sslrootcert={}", ca.display()));
        let vault = tempfile::tempdir().expect("vault dir");
        match PgStore::connect(&url, &vault.path().join("subject-keys.db")).await {
            Ok(_) => panic!("PgStore::connect accepted an unverifiable server"),
            Err(StoreError::Backend(m)) => {
                assert!(m.starts_with("cannot connect to PostgreSQL: "), "{m}");
                assert!(m.contains("certificate"), "{m}");
            }
            Err(e) => panic!("unexpected {e:?}"),
        }
    }

    #[tokio::test]
    async fn the_store_connects_with_sslmode_require() {
        let Some(admin) = tls_server().await else { return };
        let (url, db) = fresh_test_database(&admin).await.expect("test database");
        let url = with_ssl(&with_database(&url, db.name()), "sslmode=require");
        let store = PgStore::connect(&url, &db.vault_path())
            .await
            .expect("PgStore over TLS");
        assert_eq!(store.count_users().await.expect("a query over TLS"), 0);
        store.close().await;
        db.drop_now().await.expect("drop test database");
    }

    /// The certificate chain the server at `host:port` presents, read with
    /// PostgreSQL's SSLRequest and a handshake that accepts anything.
    fn server_chain(host: &str, port: u16) -> Option<Vec<CertificateDer<'static>>> {
        use std::io::{Read, Write};
        let mut tcp = std::net::TcpStream::connect((host, port)).ok()?;
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(10))).ok()?;
        tcp.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]).ok()?;
        let mut answer = [0u8; 1];
        tcp.read_exact(&mut answer).ok()?;
        if answer[0] != b'S' {
            return None;
        }
        let config = client_config(Mode::Require, None).ok()?;
        let mut conn =
            rustls::ClientConnection::new(Arc::new(config), ServerName::try_from("localhost").ok()?.to_owned()).ok()?;
        while conn.is_handshaking() {
            conn.complete_io(&mut tcp).ok()?;
        }
        conn.peer_certificates()
            .map(|c| c.iter().map(|c| c.clone().into_owned()).collect())
    }

    #[tokio::test]
    async fn verify_ca_checks_the_chain_and_verify_full_also_the_name() {
        let Some(admin) = tls_server().await else { return };
        let settings = connect_settings(&admin).unwrap();
        let (Some(tokio_postgres::config::Host::Tcp(host)), Some(port)) =
            (settings.config.get_hosts().first(), settings.config.get_ports().first())
        else {
            eprintln!("note: skipped: the test server is not reached over TCP");
            return;
        };
        let Ok(snakeoil) = CertificateDer::from_pem_file(SNAKEOIL) else {
            eprintln!("note: skipped: no {SNAKEOIL} to use as the root certificate");
            return;
        };
        let chain = server_chain(host, *port).expect("the server's certificate");
        if chain.len() != 1 || chain[0] != snakeoil {
            eprintln!("note: skipped: the test server does not use the self-signed {SNAKEOIL}");
            return;
        }
        // Reach the server by address under a name its certificate does not
        // carry: verify-ca does not care, verify-full must refuse.
        let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
        let c = &settings.config;
        let password = c.get_password().map(|p| String::from_utf8_lossy(p).into_owned());
        let named = |name: &str, mode: &str| {
            format!(
                "host={name} hostaddr={host} port={port} user={} password={} dbname={} sslmode={mode} sslrootcert={}",
                quote(c.get_user().unwrap_or_default()),
                quote(password.as_deref().unwrap_or_default()),
                quote(c.get_dbname().unwrap_or("postgres")),
                quote(SNAKEOIL),
            )
        };
        let wrong_name = |mode: &str| named("steward-wrong-name.invalid", mode);
        let client = connect_client(&wrong_name("verify-ca"))
            .await
            .expect("verify-ca with the server's own certificate as root");
        assert!(ssl_state(&client).await.0);
        let client = connect_client(&wrong_name("require"))
            .await
            .expect("require with a root certificate checks the chain only");
        assert!(ssl_state(&client).await.0);
        let m = connect_error(connect_client(&wrong_name("verify-full")).await);
        assert!(m.contains("not valid for name"), "verify-full checks the name: {m}");
        assert!(m.starts_with("PostgreSQL: error performing TLS handshake: "), "{m}");

        // Debian's snakeoil certificate names the machine; usually localhost too.
        match connect_client(&named("localhost", "verify-full")).await {
            Ok(client) => assert!(ssl_state(&client).await.0),
            Err(StoreError::Backend(m)) if m.contains("not valid for name") => {
                eprintln!("note: verify-full success not checked: {SNAKEOIL} does not name localhost");
            }
            Err(e) => panic!("verify-full to localhost: {e:?}"),
        }
    }
}
