//! The TLS side of a `tcp://` listener: rustls with required client certificates, the
//! configuration reloaded from its files on SIGHUP, and an accept loop whose handshakes run
//! beside each other so a slow or hostile client cannot hold up the others.
//!
//! tonic's own `ServerTlsConfig` is fixed once the server runs; we terminate TLS ourselves
//! with tokio-rustls and hand tonic finished streams, which it already knows how to read
//! the peer's certificates from.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::server::TlsStream;

/// Most TLS handshakes in progress at once.
const MAX_HANDSHAKES: usize = 256;

/// How long a client may take to finish its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The files of the server's TLS identity and of the CA its clients must be signed by.
#[derive(Debug, Clone, PartialEq)]
pub struct TlsFiles {
    /// PEM certificate chain of the server.
    pub cert: PathBuf,
    /// PEM private key of the server.
    pub key: PathBuf,
    /// PEM certificate(s) of the CA that signs client certificates.
    pub client_ca: PathBuf,
}

/// A rustls server configuration that can be swapped while connections are served.
pub struct ReloadableTls {
    files: TlsFiles,
    /// ALPN protocols offered (`h2` for the gRPC API).
    alpn: Vec<Vec<u8>>,
    current: RwLock<Arc<rustls::ServerConfig>>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The PEM certificates of `p` (at least one).
pub fn read_certs(p: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let certs: Vec<_> = CertificateDer::pem_file_iter(p)
        .map_err(|e| anyhow::anyhow!("read certificates from {}: {e}", p.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("parse certificates in {}: {e}", p.display()))?;
    if certs.is_empty() {
        anyhow::bail!("no PEM certificate in {}", p.display());
    }
    Ok(certs)
}

/// A server configuration without client certificates (the CRI streaming endpoint, whose
/// URLs carry their own single-use tokens): `cert`'s chain and `key`, offering `alpn`.
pub fn load_server_only(
    cert: &std::path::Path,
    key: &std::path::Path,
    alpn: &[Vec<u8>],
) -> anyhow::Result<rustls::ServerConfig> {
    let chain = read_certs(cert)?;
    let k = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| anyhow::anyhow!("read private key from {}: {e}", key.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?
        .with_no_client_auth()
        .with_single_cert(chain, k)
        .map_err(|e| anyhow::anyhow!("certificate {} / key {}: {e}", cert.display(), key.display()))?;
    cfg.alpn_protocols = alpn.to_vec();
    Ok(cfg)
}

/// Builds a server configuration that requires a client certificate signed by the CA.
pub fn load(files: &TlsFiles, alpn: &[Vec<u8>]) -> anyhow::Result<rustls::ServerConfig> {
    let chain = read_certs(&files.cert)?;
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| anyhow::anyhow!("read private key from {}: {e}", files.key.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in read_certs(&files.client_ca)? {
        roots.add(c).map_err(|e| anyhow::anyhow!("client CA {}: {e}", files.client_ca.display()))?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| anyhow::anyhow!("client CA {}: {e}", files.client_ca.display()))?;
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS versions: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| {
            anyhow::anyhow!("server certificate {} / key {}: {e}", files.cert.display(), files.key.display())
        })?;
    cfg.alpn_protocols = alpn.to_vec();
    Ok(cfg)
}

impl ReloadableTls {
    /// Loads the files once; fails (naming the file) if any is missing or invalid.
    pub fn new(files: TlsFiles) -> anyhow::Result<Arc<ReloadableTls>> {
        Self::with_alpn(files, vec![b"h2".to_vec()])
    }

    /// Like [`ReloadableTls::new`], offering the ALPN protocols `alpn` (e.g. `http/1.1`).
    pub fn with_alpn(files: TlsFiles, alpn: Vec<Vec<u8>>) -> anyhow::Result<Arc<ReloadableTls>> {
        let cfg = load(&files, &alpn)?;
        Ok(Arc::new(ReloadableTls { files, alpn, current: RwLock::new(Arc::new(cfg)) }))
    }

    /// Reads the files again; on error the old configuration stays in use. New connections
    /// get the new one, established ones keep theirs.
    pub fn reload(&self) -> anyhow::Result<()> {
        let cfg = load(&self.files, &self.alpn)?;
        if let Ok(mut cur) = self.current.write() {
            *cur = Arc::new(cfg);
        }
        Ok(())
    }

    fn config(&self) -> Arc<rustls::ServerConfig> {
        match self.current.read() {
            Ok(c) => Arc::clone(&c),
            Err(p) => Arc::clone(&p.into_inner()),
        }
    }

    /// Accepts TCP connections and yields those whose TLS handshake succeeded.
    pub fn incoming(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
    ) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<TlsStream<tokio::net::TcpStream>>> {
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        // Handshakes in flight are bounded: clients that never finish one cannot use up the
        // agent's descriptors.
        let slots = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
        tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else { return };
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let acceptor = tokio_rustls::TlsAcceptor::from(self.config());
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => {
                            let _ = tx.send(Ok(s)).await;
                        }
                        Ok(Err(e)) => tracing::warn!(%peer, error = %e, "TLS handshake refused"),
                        Err(_) => tracing::warn!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }
}
