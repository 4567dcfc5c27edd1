//! TLS to PostgreSQL: sqlx's rustls (on ring) does the handshake; this module makes its settings
//! mean what gazette promises, and says what to do when a certificate is refused.
//!
//! sqlx checks certificates in `verify-ca` and `verify-full` only, against the CA named by
//! `sslrootcert` and Mozilla's roots beside it (so `verify-ca` takes any publicly issued
//! certificate, whatever its name); its `require` encrypts without checking anything. gazette
//! reads `require` as `verify-full`: a publisher who asks for TLS gets TLS to the server they
//! named, never to whoever answers in between. (libpq's `require` checks nothing without a root
//! certificate; a server whose certificate no public CA signed needs `sslrootcert`.)

use rustls::CertificateError;
use rustls_pki_types::{CertificateDer, pem::PemObject};
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use crate::store::StoreError;

/// The URL's settings with `require` read as `verify-full`, once the CA they name (in the URL or
/// `$PGSSLROOTCERT`) is known to hold a certificate. sqlx reads that file at every connection
/// and, when it is missing, reports a bare "No such file or directory".
pub(super) async fn configure(url: &str, options: PgConnectOptions) -> Result<PgConnectOptions, StoreError> {
    let options = match options.get_ssl_mode() {
        PgSslMode::Require => options.ssl_mode(PgSslMode::VerifyFull),
        // Unasked for, TLS to a server on this machine protects nothing and costs much: an
        // import of 100,000 subscribers took 9.5 s over it on loopback, 4.0 s without.
        PgSslMode::Prefer if !mode_given(url) && is_local(options.get_host()) => options.ssl_mode(PgSslMode::Disable),
        _ => options,
    };
    let Some(root) = root_cert(url) else {
        return Ok(options);
    };
    if matches!(options.get_ssl_mode(), PgSslMode::VerifyCa | PgSslMode::VerifyFull) {
        check_root_cert(&root).await?;
    }
    Ok(options)
}

/// Whether the URL or `$PGSSLMODE` names a mode; without one, sqlx prefers TLS.
fn mode_given(url: &str) -> bool {
    let in_url = url::Url::parse(url)
        .ok()
        .is_some_and(|url| url.query_pairs().any(|(key, _)| matches!(key.as_ref(), "sslmode" | "ssl-mode")));
    in_url || std::env::var("PGSSLMODE").is_ok_and(|v| !v.trim().is_empty())
}

/// A server reached without leaving this machine: over loopback or a Unix socket.
fn is_local(host: &str) -> bool {
    host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || host.trim_matches(['[', ']']).parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The `sslrootcert` sqlx will use: the URL's last (under any of the names sqlx reads), else
/// `$PGSSLROOTCERT`.
fn root_cert(url: &str) -> Option<String> {
    let in_url = url::Url::parse(url).ok().and_then(|url| {
        url.query_pairs()
            .filter(|(key, _)| matches!(key.as_ref(), "sslrootcert" | "ssl-root-cert" | "ssl-ca"))
            .map(|(_, value)| value.into_owned())
            .last()
    });
    in_url.or_else(|| std::env::var("PGSSLROOTCERT").ok()).filter(|v| !v.trim().is_empty())
}

async fn check_root_cert(root: &str) -> Result<(), StoreError> {
    // sqlx takes a value that looks like PEM for the certificate itself, not a file name.
    let inline = root.trim().starts_with("-----BEGIN");
    let shown = if inline { "(a PEM certificate)".to_owned() } else { root.to_owned() };
    let bad = |reason: String| StoreError::RootCert { file: shown.clone(), reason };
    let pem = if inline {
        root.as_bytes().to_vec()
    } else {
        tokio::fs::read(root).await.map_err(|e| bad(format!("cannot read it: {e}")))?
    };
    let mut certs = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        certs += 1;
    }
    if certs == 0 {
        return Err(bad("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    Ok(())
}

/// The error of a connection that could not be opened: a refused certificate says why and what
/// to change, anything else is `Open`.
pub(super) fn opening(e: sqlx::Error) -> StoreError {
    let refusal = match &e {
        // The handshake's errors reach sqlx through rustls' I/O.
        sqlx::Error::Io(io) => io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()),
        sqlx::Error::Tls(inner) => inner.downcast_ref::<rustls::Error>(),
        _ => None,
    };
    match refusal {
        Some(rustls::Error::InvalidCertificate(why)) => StoreError::Certificate { advice: advice(why), source: e },
        _ => StoreError::Open(e),
    }
}

fn advice(why: &CertificateError) -> &'static str {
    match why {
        CertificateError::UnknownIssuer | CertificateError::BadSignature => {
            "it is not signed by a CA gazette trusts: name the file of the CA that signed it with \
             sslrootcert=/path/to/ca.pem in [storage] database_url (or $DATABASE_URL)"
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            "it does not name the host of the database URL (sslmode=verify-full): connect by a name \
             or address the certificate holds"
        }
        CertificateError::Expired
        | CertificateError::ExpiredContext { .. }
        | CertificateError::NotValidYet
        | CertificateError::NotValidYetContext { .. } => {
            "it is outside its validity dates: renew it on the server, or check this machine's clock"
        }
        _ => "check the certificate the server presents and the CA named by sslrootcert",
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    #[tokio::test]
    async fn require_is_read_as_verify_full() {
        let dir = tempfile::tempdir().expect("tmp");
        let ca = dir.path().join("ca.pem");
        // Only read as PEM here, never parsed as X.509: any certificate block will do.
        std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").expect("write");
        let url = format!("postgres://u@db.example.org/g?sslmode=require&sslrootcert={}", ca.display());
        let options = configure(&url, PgConnectOptions::from_str(&url).expect("url")).await.expect("configure");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));

        let url = "postgres://u@db.example.org/g?sslmode=require";
        let options = configure(url, PgConnectOptions::from_str(url).expect("url")).await.expect("configure");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull), "without a root certificate too");

        let url = format!("postgres://u@db.example.org/g?sslmode=verify-full&sslrootcert={}", ca.display());
        let options = configure(&url, PgConnectOptions::from_str(&url).expect("url")).await.expect("configure");
        assert!(matches!(options.get_ssl_mode(), PgSslMode::VerifyFull));
    }

    #[tokio::test]
    async fn a_server_on_this_machine_is_reached_without_tls_unless_asked() {
        for (url, expected) in [
            ("postgres://u@127.0.0.1:5432/g", "disable"),
            ("postgres://u@localhost/g", "disable"),
            ("postgres://u@[::1]:5432/g", "disable"),
            ("postgres://u@db.example.org/g", "prefer"),
            ("postgres://u@127.0.0.1/g?sslmode=prefer", "prefer"),
            ("postgres://u@127.0.0.1/g?sslmode=require", "verify-full"),
        ] {
            let options = configure(url, PgConnectOptions::from_str(url).expect("url")).await.expect("configure");
            let got = match options.get_ssl_mode() {
                PgSslMode::Disable => "disable",
                PgSslMode::Prefer => "prefer",
                PgSslMode::VerifyFull => "verify-full",
                _ => "other",
            };
            assert_eq!(got, expected, "{url}");
        }
    }

    #[tokio::test]
    async fn a_root_cert_that_cannot_be_used_is_named() {
        let dir = tempfile::tempdir().expect("tmp");
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        for (file, says) in [(&missing, "cannot read it"), (&empty, "holds no PEM certificate")] {
            let url = format!("postgres://u@db.example.org/g?sslmode=verify-full&sslrootcert={}", file.display());
            let error = configure(&url, PgConnectOptions::from_str(&url).expect("url")).await.expect_err("unusable");
            let text = error.to_string();
            assert!(text.contains(&file.display().to_string()) && text.contains(says), "{text}");
        }
    }
}
