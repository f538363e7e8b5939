//! Why a connection to a cluster failed, when tonic only says "connection closed".
//!
//! tonic reports two common TLS mistakes without their cause: a server in two-way TLS mode
//! refuses a client without a certificate *after* the handshake (TLS 1.3 sends that alert on
//! the first read, which hyper sees as a closed connection: `Cancelled`), and an `http://` URI
//! pointing at a TLS port fails as a broken pipe. When the first call of a new connection
//! fails like that, the adapter opens one more connection here, with the same trust settings,
//! and reads what the server says: a TLS alert, a certificate error, or a TLS server where
//! plaintext was expected. Nothing is sent beyond a handshake and the HTTP/2 preface.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::ResolvesClientCert;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore, SignatureScheme};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::credentials::TlsMaterial;
use crate::domain::Address;
use crate::tls::TlsFailure;

/// How long the probe waits for each step.
const STEP: Duration = Duration::from_secs(5);
/// The HTTP/2 connection preface and an empty SETTINGS frame, as every gRPC client sends.
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The TLS failure that explains a failed connection to `address`, if there is one.
pub(super) async fn diagnose(address: &Address, material: &TlsMaterial) -> Option<TlsFailure> {
    crate::tls::install_crypto_provider();
    let tcp = tokio::time::timeout(
        STEP,
        TcpStream::connect((address.host.as_str(), address.port)),
    )
    .await
    .ok()?
    .ok()?;
    if address.tls {
        after_handshake(tcp, address, material).await
    } else {
        speaks_tls(tcp, address).await
    }
}

/// Handshakes as the real connection does, then reads the server's first answer to the
/// HTTP/2 preface: an alert there, or a connection closed without one after the server asked
/// for a client certificate, is the server refusing us.
async fn after_handshake(
    tcp: TcpStream,
    address: &Address,
    material: &TlsMaterial,
) -> Option<TlsFailure> {
    let (config, asked) = client_config(material)?;
    let name = material
        .server_name
        .clone()
        .unwrap_or_else(|| address.host.clone());
    let name = ServerName::try_from(name).ok()?;
    let connected = tokio::time::timeout(
        STEP,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .ok()?;
    let mut tls = match connected {
        Ok(tls) => tls,
        Err(e) => return TlsFailure::find(&e),
    };
    if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
        return Some(TlsFailure::NoHttp2);
    }
    let answer = match tls.write_all(H2_PREFACE).await {
        Err(e) => Err(e),
        Ok(()) => {
            let mut buf = [0u8; 64];
            match tokio::time::timeout(STEP, tls.read(&mut buf)).await {
                Ok(read) => read,
                // Silence: the server is waiting for us, so it did not refuse anything.
                Err(_) => return None,
            }
        }
    };
    let found = answer.as_ref().err().and_then(|e| TlsFailure::find(e));
    let closed = matches!(answer, Ok(0)) || (answer.is_err() && found.is_none());
    match found {
        Some(f) => Some(f),
        // Some servers (BoringSSL's, behind grpc) close without an alert when they refuse a
        // client; that they asked for a certificate says why.
        None if closed && asked.load(Ordering::SeqCst) => Some(match material.identity {
            None => TlsFailure::ClientCertRequired,
            Some(_) => TlsFailure::ClientCertRefused(
                "it closed the connection right after the handshake".into(),
            ),
        }),
        None => None,
    }
}

/// Whether a server reached over plaintext is a TLS server: it answers a ClientHello with a
/// certificate (which an empty trust store then refuses).
async fn speaks_tls(tcp: TcpStream, address: &Address) -> Option<TlsFailure> {
    let config = ClientConfig::builder()
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth();
    let name = ServerName::try_from(address.host.clone()).ok()?;
    let result = tokio::time::timeout(
        STEP,
        TlsConnector::from(Arc::new(config)).connect(name, tcp),
    )
    .await
    .ok()?;
    match result {
        Ok(_) => Some(TlsFailure::SpeaksTls),
        // A certificate (or an alert) came back: only a TLS server sends one.
        Err(e) => match TlsFailure::find(&e) {
            None | Some(TlsFailure::NotTls | TlsFailure::Other(_)) => None,
            Some(_) => Some(TlsFailure::SpeaksTls),
        },
    }
}

/// The same trust as tonic's: the given CA alone, or the platform's roots; the client
/// identity when there is one; ALPN h2. The flag records whether the server asked for a
/// client certificate.
fn client_config(material: &TlsMaterial) -> Option<(ClientConfig, Arc<AtomicBool>)> {
    let mut roots = RootCertStore::empty();
    match &material.ca_pem {
        Some(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
                roots.add(cert.ok()?).ok()?;
            }
        }
        None => {
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        }
    }
    let identity = match &material.identity {
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert.as_bytes())
                .collect::<Result<Vec<_>, _>>()
                .ok()?;
            let key = PrivateKeyDer::from_pem_slice(key.expose().as_bytes()).ok()?;
            let provider = rustls::crypto::CryptoProvider::get_default()?;
            let signer = provider.key_provider.load_private_key(key).ok()?;
            Some(Arc::new(CertifiedKey::new(chain, signer)))
        }
        None => None,
    };
    let asked = Arc::new(AtomicBool::new(false));
    let mut config = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_client_cert_resolver(Arc::new(Asked {
            asked: asked.clone(),
            identity,
        }));
    config.alpn_protocols = vec![b"h2".to_vec()];
    Some((config, asked))
}

/// Presents the client identity, if any, and notes that the server asked for one.
#[derive(Debug)]
struct Asked {
    asked: Arc<AtomicBool>,
    identity: Option<Arc<CertifiedKey>>,
}

impl ResolvesClientCert for Asked {
    fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.identity.clone()
    }

    fn has_certs(&self) -> bool {
        // Always asked, so that a request for a certificate is noticed even without one.
        true
    }
}
