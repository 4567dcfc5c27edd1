//! DKIM: the key from `[dkim]`, and the headers docs/src/delivery.md says are signed
//! (Message-ID and both List-Unsubscribe headers besides lettre's defaults), relaxed/relaxed.

use std::path::Path;

use lettre::message::{
    dkim::{DkimCanonicalization, DkimCanonicalizationType, DkimConfig, DkimSigningAlgorithm, DkimSigningKey},
    header::HeaderName,
};

#[derive(Debug, thiserror::Error)]
pub enum DkimError {
    #[error("cannot read the DKIM key {}: {source}", file.display())]
    Read {
        file: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not a DKIM key gazette can use ({message}); give an RSA key as PKCS#1 PEM (`openssl genrsa`) or an Ed25519 key as base64", file.display())]
    Key { file: std::path::PathBuf, message: String },
}

const SIGNED: &[&str] = &[
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "List-Id",
    "Reply-To",
];

/// Reads the key and makes the signing configuration.
pub async fn load_dkim(domain: &str, selector: &str, file: &Path) -> Result<DkimConfig, DkimError> {
    let text =
        tokio::fs::read_to_string(file).await.map_err(|source| DkimError::Read { file: file.to_owned(), source })?;
    let trimmed = text.trim();
    let bad = |message: String| DkimError::Key { file: file.to_owned(), message };
    let key = if trimmed.starts_with("-----BEGIN PRIVATE KEY") {
        // PKCS#8: lettre reads PKCS#1, so the key is re-encoded (in memory only).
        use rsa::pkcs1::EncodeRsaPrivateKey;
        use rsa::pkcs8::DecodePrivateKey;
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(trimmed).map_err(|e| bad(e.to_string()))?;
        let pkcs1 = key.to_pkcs1_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| bad(e.to_string()))?;
        DkimSigningKey::new(&pkcs1, DkimSigningAlgorithm::Rsa)
    } else if trimmed.starts_with("-----BEGIN") {
        DkimSigningKey::new(trimmed, DkimSigningAlgorithm::Rsa)
    } else {
        DkimSigningKey::new(trimmed, DkimSigningAlgorithm::Ed25519)
    }
    .map_err(|e| bad(e.to_string()))?;
    Ok(DkimConfig::new(
        selector.to_owned(),
        domain.to_owned(),
        key,
        SIGNED.iter().map(|h| HeaderName::new_from_ascii_str(h)).collect(),
        DkimCanonicalization { header: DkimCanonicalizationType::Relaxed, body: DkimCanonicalizationType::Relaxed },
    ))
}
