//! SMTP with lettre: `smtp://` upgrades with STARTTLS when the server offers it (and insists with
//! `?tls=required`), `smtps://` speaks TLS from the first byte. Certificates are always verified;
//! `ca_file` (or `$SSL_CERT_FILE`) adds a trusted CA. The URL's password is never printed: what
//! this module says names the host and port only.

use std::{path::PathBuf, time::Duration};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Tokio1Executor,
    address::Envelope,
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::SendError;

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub url: SecretString,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Connections kept for reuse; the engine bounds how many are used at once.
    pub pool_size: u32,
}

#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    timeout: Duration,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Smtp({})", self.server)
    }
}

impl Smtp {
    pub async fn new(settings: &SmtpSettings) -> Result<Self, SendError> {
        let bad = |why: &str| SendError::server(format!("delivery.smtp_url: {why}"));
        let url = Url::parse(settings.url.expose_secret()).map_err(|_| bad("not a URL"))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_owned();
        let implicit = match url.scheme() {
            "smtps" => true,
            "smtp" => false,
            _ => return Err(bad("the scheme must be smtp:// or smtps://")),
        };
        let required = url.query_pairs().any(|(k, v)| k == "tls" && v == "required");
        let port = url.port().unwrap_or(if implicit { 465 } else { 587 });

        let mut params = TlsParameters::builder(host.clone());
        let mut ca_files: Vec<PathBuf> = settings.ca_file.iter().cloned().collect();
        if let Some(extra) = std::env::var_os("SSL_CERT_FILE") {
            ca_files.push(PathBuf::from(extra));
        }
        for file in ca_files {
            let pem = tokio::fs::read(&file)
                .await
                .map_err(|e| SendError::server(format!("delivery.ca_file: cannot read {}: {e}", file.display())))?;
            let cert = Certificate::from_pem(&pem).map_err(|e| {
                SendError::server(format!("delivery.ca_file: {} is not a PEM certificate: {e}", file.display()))
            })?;
            params = params.add_root_certificate(cert);
        }
        let params = params.build_rustls().map_err(|e| SendError::server(format!("TLS setup: {e}")))?;
        let tls = if implicit {
            Tls::Wrapper(params)
        } else if required {
            Tls::Required(params)
        } else {
            Tls::Opportunistic(params)
        };

        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .tls(tls)
            .timeout(Some(settings.timeout))
            .pool_config(PoolConfig::new().max_size(settings.pool_size.max(1)).idle_timeout(Duration::from_secs(30)));
        if !url.username().is_empty() {
            let decode = |s: &str| percent_decode(s);
            builder = builder
                .credentials(Credentials::new(decode(url.username()), decode(url.password().unwrap_or_default())));
        }
        Ok(Self { transport: builder.build(), server: format!("{host}:{port}"), timeout: settings.timeout })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Connects, greets, upgrades to TLS and logs in, sending nothing.
    pub async fn check(&self) -> Result<(), SendError> {
        // lettre's own timeout bounds the connect only; a server that stalls later is caught here.
        let Ok(result) = tokio::time::timeout(self.timeout, self.transport.test_connection()).await else {
            return Err(SendError::server(format!("{} did not answer within {:?}", self.server, self.timeout)));
        };
        match result {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::server(format!("{} did not answer as an SMTP server", self.server))),
            Err(e) => Err(SendError::server(format!("{}: {}", self.server, describe(&e)))),
        }
    }

    pub async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<String, SendError> {
        let Ok(result) = tokio::time::timeout(self.timeout, self.transport.send_raw(envelope, bytes)).await else {
            return Err(SendError::connection(format!("{} did not answer within {:?}", self.server, self.timeout)));
        };
        match result {
            Ok(response) => Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" "))),
            Err(e) if e.is_permanent() => Err(SendError::permanent(describe(&e))),
            Err(e) if e.is_transient() => Err(SendError::temporary(describe(&e))),
            Err(e) => Err(SendError::connection(describe(&e))),
        }
    }
}

/// lettre's error with its causes, on one line.
fn describe(e: &lettre::transport::smtp::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = std::error::Error::source(e);
    while let Some(c) = cur {
        let s = c.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
        cur = c.source();
    }
    parts.join(": ").split_whitespace().collect::<Vec<_>>().join(" ")
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}
