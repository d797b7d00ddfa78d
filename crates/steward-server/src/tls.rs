//! HTTPS: loading a PEM certificate and key into a rustls configuration, and
//! serving the application router over TLS.
//!
//! The configuration is deliberately narrow:
//! - the `ring` crypto provider (never a process-wide default provider),
//! - TLS 1.3 and TLS 1.2 only, with the provider's default cipher suites,
//!   which are all AEAD (AES-GCM and ChaCha20-Poly1305, ECDHE key exchange
//!   for TLS 1.2),
//! - ALPN `http/1.1` only; connections are served by hyper's HTTP/1.1
//!   server, so HTTP/2 is neither advertised nor accepted,
//! - no client certificates.
//!
//! [`serve_tls`] accepts TCP connections, runs each TLS handshake in its own
//! task (bounded by [`HANDSHAKE_TIMEOUT`]) and serves the same router as the
//! plain-HTTP [`crate::serve`], with every layer (request ids, tracing, body
//! limit) plus `Strict-Transport-Security` on every response. A failed
//! handshake, e.g. plain HTTP sent to the HTTPS port, is logged at debug level
//! and only drops that connection. Shutdown works as in [`crate::serve`]:
//! stop accepting, let in-flight requests finish (at most
//! [`crate::SHUTDOWN_GRACE`]), then close the service so that queued writes
//! commit.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rustls::ServerConfig;
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use steward_service::Service;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::{router_with, RouterOptions, SHUTDOWN_GRACE};

/// How long a client may take to complete the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The `Strict-Transport-Security` value sent on every HTTPS response: two
/// years, subdomains included.
pub const HSTS_VALUE: &str = "max-age=63072000; includeSubDomains";

/// Why a certificate or key file cannot be used. Each message is one
/// sentence naming the file; none ever contains key material.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error("cannot read the TLS certificate file {}: {source}", .path.display())]
    ReadCertificate {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the TLS certificate file {} is not valid PEM ({reason})", .path.display())]
    CertificateNotPem { path: PathBuf, reason: &'static str },
    #[error(
        "the TLS certificate file {} holds no PEM certificate (expected a BEGIN CERTIFICATE block)",
        .path.display()
    )]
    NoCertificate { path: PathBuf },
    #[error("the TLS certificate file {} holds a certificate that cannot be parsed", .path.display())]
    InvalidCertificate { path: PathBuf },
    #[error("cannot read the TLS key file {}: {source}", .path.display())]
    ReadKey {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the TLS key file {} is not valid PEM ({reason})", .path.display())]
    KeyNotPem { path: PathBuf, reason: &'static str },
    #[error(
        "the TLS key file {} holds no private key (expected a PEM PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block)",
        .path.display()
    )]
    NoKey { path: PathBuf },
    #[error(
        "the TLS key file {} holds a private key that cannot be used (supported: RSA, ECDSA P-256 or P-384, Ed25519)",
        .path.display()
    )]
    UnusableKey { path: PathBuf },
    #[error(
        "the private key in {} does not match the certificate in {}",
        .key.display(),
        .certificate.display()
    )]
    KeyMismatch { certificate: PathBuf, key: PathBuf },
    #[error(
        "cannot set up TLS with the certificate {} and the key {}: {reason}",
        .certificate.display(),
        .key.display()
    )]
    Setup {
        certificate: PathBuf,
        key: PathBuf,
        reason: String,
    },
}

/// What went wrong in a PEM file, without quoting any of it.
fn pem_reason(e: &pem::Error) -> &'static str {
    match e {
        pem::Error::MissingSectionEnd { .. } => "a section has no END line",
        pem::Error::IllegalSectionStart { .. } => "a BEGIN line is malformed",
        pem::Error::Base64Decode(_) => "a section is not valid base64",
        pem::Error::SectionTooLarge => "a section is too large",
        _ => "it cannot be parsed",
    }
}

/// The crypto provider for every TLS configuration Steward builds.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Reads the PEM certificate chain (end-entity certificate first) at
/// `cert_path` and the PEM private key (PKCS#8, PKCS#1 or SEC1) at
/// `key_path`, checks that they belong together, and returns the server
/// configuration described in the module documentation.
pub fn load_tls_config(cert_path: &Path, key_path: &Path) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let certs = read_certificates(cert_path)?;
    let key = read_key(key_path)?;
    let setup = |e: &dyn std::fmt::Display| TlsConfigError::Setup {
        certificate: cert_path.to_owned(),
        key: key_path.to_owned(),
        reason: e.to_string(),
    };
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| setup(&e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| match e {
            rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => TlsConfigError::KeyMismatch {
                certificate: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => {
                TlsConfigError::InvalidCertificate {
                    path: cert_path.to_owned(),
                }
            }
            // The ring key provider reports an unparsable or unsupported
            // key as a general error.
            rustls::Error::General(_) => TlsConfigError::UnusableKey {
                path: key_path.to_owned(),
            },
            other => setup(&other),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let map = |e: pem::Error| match e {
        pem::Error::Io(source) => TlsConfigError::ReadCertificate {
            path: path.to_owned(),
            source,
        },
        pem::Error::NoItemsFound => TlsConfigError::NoCertificate { path: path.to_owned() },
        other => TlsConfigError::CertificateNotPem {
            path: path.to_owned(),
            reason: pem_reason(&other),
        },
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(map)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(map)?;
    if certs.is_empty() {
        return Err(TlsConfigError::NoCertificate { path: path.to_owned() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        pem::Error::Io(source) => TlsConfigError::ReadKey {
            path: path.to_owned(),
            source,
        },
        pem::Error::NoItemsFound => TlsConfigError::NoKey { path: path.to_owned() },
        other => TlsConfigError::KeyNotPem {
            path: path.to_owned(),
            reason: pem_reason(&other),
        },
    })
}

/// Serves the API over HTTPS on `listener` until `shutdown` resolves, then
/// lets in-flight requests finish (at most [`SHUTDOWN_GRACE`]) and closes
/// the service, committing queued writes. Every acknowledged write was
/// committed before its response was sent.
///
/// Every response carries `Strict-Transport-Security` ([`HSTS_VALUE`]).
/// `tls_config` is normally the one [`load_tls_config`] returns.
pub async fn serve_tls(
    listener: TcpListener,
    service: Arc<Service>,
    tls_config: Arc<ServerConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let app = router_with(Arc::clone(&service), RouterOptions { hsts: true });
    let acceptor = TlsAcceptor::from(tls_config);
    let graceful = GracefulShutdown::new();
    // Tells connections still in their handshake to give up.
    let (stopping, _) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // Per-connection failures (the peer reset before we took
                    // it) and resource exhaustion (too many open files) are
                    // both survivable; back off briefly on the latter.
                    tracing::warn!(error = %e, "cannot accept a connection");
                    if !is_connection_error(&e) {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        // Taken before the handshake, so that shutdown also waits for
        // connections that are just finishing theirs.
        let watcher = graceful.watcher();
        let mut stop = stopping.subscribe();
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp));
            let tls = tokio::select! {
                done = handshake => match done {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed; connection dropped");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!(%peer, "TLS handshake timed out; connection dropped");
                        return;
                    }
                },
                // No request can be in flight before the handshake is done.
                _ = stop.wait_for(|stopping| *stopping) => return,
            };
            // The client's address, as `axum::serve` provides it on plain HTTP.
            let app = tower::ServiceExt::map_request(app, move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(axum::extract::ConnectInfo(peer));
                req
            });
            let service = TowerToHyperService::new(app);
            let mut http = hyper::server::conn::http1::Builder::new();
            // The timer makes hyper enforce its header read timeout (30 s).
            http.timer(TokioTimer::new());
            let conn = http.serve_connection(TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "HTTPS connection ended with an error");
            }
        });
    }
    // Stop accepting, abandon handshakes, and let requests in flight finish.
    drop(listener);
    stopping.send_replace(true);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
    if drained.is_err() {
        tracing::warn!("requests still open after the shutdown grace period; closing");
    }
    service.shutdown().await;
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let e = load_tls_config(&cert, &key).unwrap_err();
        assert!(matches!(e, TlsConfigError::ReadCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains(&cert.display().to_string()), "{e}");
        assert!(e.to_string().starts_with("cannot read the TLS certificate file"), "{e}");
    }

    #[test]
    fn a_file_without_pem_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "hello, not a certificate\n").unwrap();
        std::fs::write(&key, "hello\n").unwrap();
        let e = load_tls_config(&cert, &key).unwrap_err();
        assert!(matches!(e, TlsConfigError::NoCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains(&cert.display().to_string()), "{e}");
    }

    #[test]
    fn broken_pem_is_refused_without_quoting_it() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        std::fs::write(&cert, "-----BEGIN CERTIFICATE-----\nc2VjcmV0LWJ5dGVz\n").unwrap();
        std::fs::write(&key, "").unwrap();
        let e = load_tls_config(&cert, &key).unwrap_err();
        assert!(matches!(e, TlsConfigError::CertificateNotPem { .. }), "{e:?}");
        assert!(!e.to_string().contains("c2VjcmV0"), "{e}");
    }

    #[test]
    fn a_certificate_block_that_is_not_x509_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        let key = dir.path().join("key.pem");
        let made = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "ed25519", "-out"])
            .arg(&key)
            .output();
        if !made.is_ok_and(|o| o.status.success()) {
            eprintln!("note: skipped: cannot run openssl");
            return;
        }
        std::fs::write(
            &cert,
            "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let e = load_tls_config(&cert, &key).unwrap_err();
        assert!(matches!(e, TlsConfigError::InvalidCertificate { .. }), "{e:?}");
        assert!(e.to_string().contains(&cert.display().to_string()), "{e}");
    }

    #[test]
    fn messages_are_one_line() {
        let p = PathBuf::from("/etc/steward/key.pem");
        let errors = [
            TlsConfigError::NoKey { path: p.clone() },
            TlsConfigError::UnusableKey { path: p.clone() },
            TlsConfigError::KeyMismatch {
                certificate: p.clone(),
                key: p.clone(),
            },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(!s.contains('\n') && s.contains("/etc/steward/key.pem"), "{s}");
        }
    }
}
