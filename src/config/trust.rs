//! The certificates a TLS client trusts: Mozilla's roots, a CA file the publisher names for a
//! server with a private CA, and `$SSL_CERT_FILE` where the environment sets one. Read once,
//! when a client is made, so that a bad file is said at start, by the key that named it.

use std::path::{Path, PathBuf};

use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, pem::PemObject};

/// A CA file that cannot be trusted, named by where it was set (`delivery.ca_file`,
/// `$SSL_CERT_FILE`…).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{origin}: {}: {why}", file.display())]
pub struct TrustError {
    pub origin: &'static str,
    pub file: PathBuf,
    pub why: String,
}

/// The public roots, `ca_file` (set by the key `origin`) and `$SSL_CERT_FILE`.
pub async fn roots(origin: &'static str, ca_file: Option<&Path>) -> Result<RootCertStore, TrustError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let mut files: Vec<(&'static str, PathBuf)> = ca_file.map(|f| (origin, f.to_owned())).into_iter().collect();
    if let Some(extra) = std::env::var_os("SSL_CERT_FILE") {
        files.push(("$SSL_CERT_FILE", PathBuf::from(extra)));
    }
    for (origin, file) in files {
        let bad = |why: String| TrustError { origin, file: file.clone(), why };
        let pem = tokio::fs::read(&file).await.map_err(|e| bad(format!("cannot read it: {e}")))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if certs.is_empty() {
            return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
        }
        for der in certs {
            roots.add(der).map_err(|e| bad(e.to_string()))?;
        }
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_without_a_certificate_is_named_by_its_key() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate\n").expect("write");
        let e = roots("bounces.imap_ca_file", Some(&file)).await.expect_err("refused");
        assert_eq!((e.origin, e.file.as_path()), ("bounces.imap_ca_file", file.as_path()));
        assert!(e.to_string().contains("holds no PEM certificate"), "{e}");
        let missing = dir.path().join("missing.pem");
        let e = roots("delivery.ca_file", Some(&missing)).await.expect_err("refused");
        assert!(e.to_string().starts_with("delivery.ca_file: "), "{e}");
        assert!(roots("delivery.ca_file", None).await.is_ok_and(|r| !r.is_empty()));
    }
}
