//! The serving certificate: loaded from PEM files, handed to rustls through a resolver that new
//! handshakes ask each time, and reloaded when the files change. The folder is watched, not the
//! files, because Kubernetes Secret volumes (cert-manager) swap a `..data` symlink instead of
//! writing the files. A bad new pair is logged and the old one kept.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::Duration,
};

use notify::{RecursiveMode, Watcher};
use rustls::{
    ServerConfig,
    pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

use crate::Metrics;

/// Why a certificate pair could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read or held no PEM of the right kind.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// rustls refused the key or the configuration.
    #[error("{0}")]
    Rustls(#[from] rustls::Error),
    /// The file watcher could not start.
    #[error("watching the certificate folder: {0}")]
    Watch(#[from] notify::Error),
}

/// A loaded pair and the certificate's expiry (Unix seconds).
pub struct Loaded {
    /// Chain and signing key.
    pub key: Arc<CertifiedKey>,
    /// `notAfter` of the leaf certificate.
    pub not_after: i64,
}

/// Reads a PEM certificate chain and private key.
pub fn load(cert: &Path, key: &Path) -> Result<Loaded, TlsError> {
    let file_err = |path: &Path, message: String| TlsError::File { path: path.to_owned(), message };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| file_err(cert, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert, e.to_string()))?;
    let leaf = chain.first().ok_or_else(|| file_err(cert, "no CERTIFICATE block found".into()))?;
    let (_, parsed) = x509_parser::parse_x509_certificate(leaf)
        .map_err(|e| file_err(cert, format!("not an X.509 certificate: {e}")))?;
    let not_after = parsed.validity().not_after.timestamp();
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| file_err(key, e.to_string()))?;
    let signer = rustls::crypto::ring::sign::any_supported_type(&private)?;
    let certified = CertifiedKey::new(chain, signer);
    certified.keys_match().map_err(|e| file_err(key, format!("does not match the certificate: {e}")))?;
    Ok(Loaded { key: Arc::new(certified), not_after })
}

/// Gives every new handshake the current certificate.
#[derive(Debug)]
pub struct Resolver {
    current: RwLock<Arc<CertifiedKey>>,
}

impl Resolver {
    /// A resolver serving `key`.
    pub fn new(key: Arc<CertifiedKey>) -> Self {
        Self { current: RwLock::new(key) }
    }

    /// Replaces the certificate for handshakes from now on.
    pub fn set(&self, key: Arc<CertifiedKey>) {
        if let Ok(mut cur) = self.current.write() {
            *cur = key;
        }
    }
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|k| k.clone())
    }
}

/// TLS 1.2 and 1.3 with ring, ALPN `h2` then `http/1.1`.
pub fn server_config(resolver: Arc<Resolver>) -> Result<Arc<ServerConfig>, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_cert_resolver(resolver);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// True for events that can change what `cert` or `key` read as: a write, create, remove or
/// rename of one of the files themselves or of a `..`-prefixed entry (Kubernetes Secret volumes
/// swap a `..data` symlink). Reads are not: the reload itself opens the files, and counting
/// those made the server reload forever.
fn touches_pair(event: &notify::Event, names: &[std::ffi::OsString]) -> bool {
    let named = |n: &std::ffi::OsStr| names.iter().any(|m| m == n);
    use notify::EventKind;
    if matches!(event.kind, EventKind::Access(_)) {
        return matches!(
            event.kind,
            EventKind::Access(notify::event::AccessKind::Close(notify::event::AccessMode::Write))
        ) && event.paths.iter().any(|p| p.file_name().is_some_and(named));
    }
    event.paths.iter().any(|p| p.file_name().is_some_and(|n| named(n) || n.as_encoded_bytes().starts_with(b"..")))
        || event.paths.is_empty()
}

/// Watches the folders of `cert` and `key`; when either file changes (after 200 ms of quiet)
/// reloads the pair into `resolver`. Keep the returned watcher alive.
pub fn watch(
    cert: PathBuf,
    key: PathBuf,
    resolver: Arc<Resolver>,
    metrics: Arc<Metrics>,
) -> Result<notify::RecommendedWatcher, TlsError> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let names: Vec<std::ffi::OsString> =
        [&cert, &key].iter().filter_map(|p| p.file_name()).map(ToOwned::to_owned).collect();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // An error from the watcher (an overflowed queue) may hide a change: reload to be sure.
        if event.as_ref().map_or(true, |e| touches_pair(e, &names)) {
            let _ = tx.send(());
        }
    })?;
    let folder = |p: &Path| p.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_owned();
    let folders: std::collections::BTreeSet<PathBuf> = [folder(&cert), folder(&key)].into();
    for f in &folders {
        watcher.watch(f, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let a burst of events (a symlink swap, a cert and a key written one after the other)
            // settle before reading.
            while let Ok(Some(())) = tokio::time::timeout(Duration::from_millis(200), rx.recv()).await {}
            let outcome = match load(&cert, &key) {
                Ok(loaded) => {
                    resolver.set(loaded.key);
                    metrics.cert_expiry.set(loaded.not_after);
                    tracing::info!(cert = %cert.display(), not_after = loaded.not_after, "serving certificate reloaded");
                    "ok"
                }
                Err(e) => {
                    tracing::warn!(error = %e, "certificate files changed but do not load; keeping the current certificate");
                    "error"
                }
            };
            metrics.cert_reloads.get_or_create(&vec![("result".to_owned(), outcome.to_owned())]).inc();
        }
    });
    Ok(watcher)
}

#[cfg(test)]
mod tests {
    use notify::{
        Event, EventKind,
        event::{AccessKind, AccessMode, CreateKind, ModifyKind},
    };

    use super::*;

    fn event(kind: EventKind, path: &str) -> Event {
        Event::new(kind).add_path(PathBuf::from(path))
    }

    #[test]
    fn only_changes_to_the_pair_trigger_a_reload() {
        let names = [std::ffi::OsString::from("tls.crt"), std::ffi::OsString::from("tls.key")];
        let open = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let written = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let modified = EventKind::Modify(ModifyKind::Any);
        assert!(!touches_pair(&event(open, "/tls/tls.crt"), &names), "reading is not a change");
        assert!(!touches_pair(&event(read, "/tls/tls.key"), &names));
        assert!(touches_pair(&event(written, "/tls/tls.crt"), &names));
        assert!(touches_pair(&event(modified, "/tls/tls.key"), &names));
        assert!(touches_pair(&event(EventKind::Create(CreateKind::Any), "/tls/..data"), &names), "Secret volume swap");
        assert!(!touches_pair(&event(modified, "/tls/unrelated.log"), &names));
    }
}
