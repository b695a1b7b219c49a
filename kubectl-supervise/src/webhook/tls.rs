//! The webhook's certificate: loaded from PEM files, and reloaded when they change.
//!
//! Theory of operation. rustls asks a [`ResolvesServerCert`] for the certificate at each
//! handshake; ours hands out the current one, which a watcher thread replaces when the files
//! change (cert-manager rotates them in place; the kubelet swaps a Secret volume's files with a
//! symlink, so the inode changes). Connections already open keep the session they negotiated:
//! nothing is dropped, and the next handshake gets the new certificate. The files are compared
//! by (device, inode, size, mtime) of what the paths point to, every [`Reloader::check`]. A pair
//! that does not load - a key written before its certificate, a key that does not match - is
//! reported once and the old pair stays in service until the files change again.
//!
//! The crypto provider is graviola (rustls-graviola): pure Rust and assembly, so the static
//! musl build needs nothing but rustc. ring and aws-lc-rs compile C, which needs a musl C cross
//! compiler (`x86_64-linux-musl-gcc`) the build machines do not have. Graviola offers the same
//! algorithms as rustls' ring provider (TLS 1.2 and 1.3, ECDSA, RSA, Ed25519 keys), on x86_64
//! with AVX2/BMI2/ADX/AES-NI and on aarch64.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TlsError {
    #[error("--cert {path}: {message}")]
    Cert { path: String, message: String },
    #[error("--key {path}: {message}")]
    Key { path: String, message: String },
    #[error("--cert and --key do not belong together: {0}")]
    Mismatch(String),
}

/// The crypto provider of every TLS configuration here (see the module doc).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls_graviola::default_provider())
}

/// Loads a certificate chain and its key, checking that they belong together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, TlsError> {
    let shown = |p: &Path| p.display().to_string();
    let cert_err = |message: String| TlsError::Cert {
        path: shown(cert),
        message,
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| cert_err(e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| cert_err(e.to_string()))?;
    if chain.is_empty() {
        return Err(cert_err("no PEM certificate in it".into()));
    }
    let der = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsError::Key {
        path: shown(key),
        message: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, der, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::Mismatch(e.to_string()),
        other => TlsError::Key {
            path: shown(key),
            message: other.to_string(),
        },
    })
}

/// What identifies a file's content without reading it.
type Stamp = Option<(u64, u64, u64, i64, i64)>;

/// The stamps of a (certificate, key) pair.
type Pair = (Stamp, Stamp);

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()))
}

/// The current certificate, for rustls, and the files it came from.
#[derive(Debug)]
pub struct Reloader {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    /// The stamps of the pair in service, and of the last pair that failed to load.
    seen: Mutex<(Pair, Option<Pair>)>,
}

/// What a [`Reloader::check`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reload {
    Unchanged,
    Reloaded,
    /// The files changed but do not load; the old pair stays (reported once per change).
    Failed(TlsError),
}

impl Reloader {
    /// Loads the pair; fails if it does not load.
    pub fn new(cert: &Path, key: &Path, provider: Arc<CryptoProvider>) -> Result<Self, TlsError> {
        let stamps = (stamp(cert), stamp(key));
        let pair = load(cert, key, &provider)?;
        Ok(Reloader {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(pair)),
            seen: Mutex::new((stamps, None)),
        })
    }

    /// Reloads the pair if the files changed since it was loaded.
    pub fn check(&self) -> Reload {
        let now = (stamp(&self.cert), stamp(&self.key));
        let Ok(mut seen) = self.seen.lock() else {
            return Reload::Unchanged;
        };
        if seen.0 == now || seen.1 == Some(now) {
            return Reload::Unchanged;
        }
        match load(&self.cert, &self.key, &self.provider) {
            Ok(pair) => {
                if let Ok(mut cur) = self.current.write() {
                    *cur = Arc::new(pair);
                }
                *seen = (now, None);
                Reload::Reloaded
            }
            Err(e) => {
                seen.1 = Some(now);
                Reload::Failed(e)
            }
        }
    }
}

impl ResolvesServerCert for Reloader {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| Arc::clone(&c))
    }
}

/// A server configuration that serves the reloader's current certificate over HTTP/1.1.
pub fn server_config(reloader: Arc<Reloader>) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::clone(&reloader.provider))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(reloader);
    // The API server speaks HTTP/2 when offered; we serve HTTP/1.1 only.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}
