//! Reports read from an IMAP mailbox (`[bounces] imap_url`), over TLS only: `imaps://` from the
//! first byte, `imap://` after STARTTLS, the server's certificate always verified against the
//! public roots and `imap_ca_file` (or `$SSL_CERT_FILE`).
//!
//! One pass logs in, selects the mailbox, and takes its unseen messages by UID, a batch at a
//! time. Each message is fetched with `BODY.PEEK[]`, which leaves it unseen, applied through
//! [`Ingest::one`], and only then marked `\Seen`: a pass cut short between the two reads the
//! message again next time, and a report is applied once, by its key, however often it is read.
//! Messages are never deleted or moved; what the mailbox keeps is its owner's to decide.
//!
//! Errors name the server as `imaps://host:993/INBOX`, never the user or the password.

use std::{future::Future, path::Path, sync::Arc, time::Duration};

use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures_util::TryStreamExt;
use rustls_pki_types::ServerName;
use secrecy::ExposeSecret;
use tokio::net::TcpStream;
use tokio_rustls::{TlsConnector, client::TlsStream};

use super::Ingest;
use crate::{
    config::{ImapSecurity, ImapUrl},
    store::StoreError,
};

/// Messages fetched and marked in one command: a mailbox that filled up while gazette was
/// stopped is read without one enormous response.
const BATCH: usize = 50;

/// How long one step (connecting, one command) may take before the pass gives up until the next.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);

type Connection = Session<TlsStream<TcpStream>>;

#[derive(Debug, thiserror::Error)]
pub enum ImapError {
    #[error(transparent)]
    CaFile(#[from] crate::config::TrustError),
    #[error("IMAP {server}: cannot connect: {source}")]
    Connect {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "IMAP {server}: TLS refused: {source}; the server's certificate must name its host and come from a public CA or the one in bounces.imap_ca_file"
    )]
    Tls {
        server: String,
        #[source]
        source: std::io::Error,
    },
    #[error("IMAP {server}: the server does not take STARTTLS ({why}); no password is sent in the clear: use imaps://")]
    NoStartTls { server: String, why: String },
    #[error("IMAP {server}: login refused: {why}; check the user and password of bounces.imap_url")]
    Login { server: String, why: String },
    #[error("IMAP {server}: cannot select the mailbox: {why}")]
    Mailbox { server: String, why: String },
    #[error("IMAP {server}: {step}: {why}")]
    Protocol { server: String, step: &'static str, why: String },
    #[error("IMAP {server}: {step}: no answer in {} s", STEP_TIMEOUT.as_secs())]
    Timeout { server: String, step: &'static str },
    #[error("IMAP {server}: a report could not be applied: {source}")]
    Store {
        server: String,
        #[source]
        source: StoreError,
    },
}

/// What one pass read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pass {
    pub read: usize,
    pub applied: usize,
}

/// An IMAP mailbox and how to reach it safely.
#[derive(Clone)]
pub struct Imap {
    url: ImapUrl,
    tls: TlsConnector,
}

impl std::fmt::Debug for Imap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Imap({})", self.url)
    }
}

impl Imap {
    /// Ready to connect: the trusted roots are read now, so a bad CA file is said at start.
    pub async fn new(url: ImapUrl, ca_file: Option<&Path>) -> Result<Self, ImapError> {
        let roots = crate::config::trust::roots("bounces.imap_ca_file", ca_file).await?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ImapError::Protocol { server: url.to_string(), step: "TLS setup", why: e.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Self { url, tls: TlsConnector::from(Arc::new(config)) })
    }

    /// The mailbox, as messages name it (no user, no password).
    pub fn url(&self) -> &ImapUrl {
        &self.url
    }

    /// Logs in and selects the mailbox, then leaves: what `gazette check` asks.
    pub async fn check(&self) -> Result<(), ImapError> {
        let mut session = self.open().await?;
        let _ = self.step("LOGOUT", async { session.logout().await.map_err(|e| self.protocol("LOGOUT", e)) }).await;
        Ok(())
    }

    /// Reads the unseen messages, applies each and marks it `\Seen`.
    pub async fn read(&self, ingest: &Ingest<'_>, now: DateTime<Utc>) -> Result<Pass, ImapError> {
        let mut session = self.open().await?;
        let result = self.read_unseen(&mut session, ingest, now).await;
        // A failed logout loses nothing: every applied message is marked already.
        let _ = self.step("LOGOUT", async { session.logout().await.map_err(|e| self.protocol("LOGOUT", e)) }).await;
        result
    }

    async fn read_unseen(
        &self,
        session: &mut Connection,
        ingest: &Ingest<'_>,
        now: DateTime<Utc>,
    ) -> Result<Pass, ImapError> {
        let found = self
            .step("UID SEARCH", async {
                session.uid_search("UNSEEN").await.map_err(|e| self.protocol("UID SEARCH", e))
            })
            .await?;
        let mut uids: Vec<u32> = found.into_iter().collect();
        uids.sort_unstable();
        let mut pass = Pass::default();
        for batch in uids.chunks(BATCH) {
            let set = uid_set(batch);
            let fetched = self
                .step("UID FETCH", async {
                    let stream = session
                        .uid_fetch(&set, "(UID BODY.PEEK[])")
                        .await
                        .map_err(|e| self.protocol("UID FETCH", e))?;
                    stream.try_collect::<Vec<_>>().await.map_err(|e| self.protocol("UID FETCH", e))
                })
                .await?;
            let mut applied_uids = Vec::new();
            let mut failure = None;
            for message in &fetched {
                let (Some(uid), Some(body)) = (message.uid, message.body()) else { continue };
                match ingest.one(body, None, now).await {
                    Ok(done) => {
                        pass.read += 1;
                        pass.applied += usize::from(done.outcome.applied());
                        applied_uids.push(uid);
                    }
                    Err(source) => {
                        failure = Some(ImapError::Store { server: self.url.to_string(), source });
                        break;
                    }
                }
            }
            // Those applied are marked even when a later one failed, so they are not read again.
            if !applied_uids.is_empty() {
                applied_uids.sort_unstable();
                let set = uid_set(&applied_uids);
                self.step("UID STORE", async {
                    let stream = session
                        .uid_store(&set, "+FLAGS.SILENT (\\Seen)")
                        .await
                        .map_err(|e| self.protocol("UID STORE", e))?;
                    stream.try_collect::<Vec<_>>().await.map_err(|e| self.protocol("UID STORE", e))
                })
                .await?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
        }
        Ok(pass)
    }

    /// Connected, encrypted, logged in, the mailbox selected.
    async fn open(&self) -> Result<Connection, ImapError> {
        let server = self.url.to_string();
        let tcp = self
            .step("connect", async {
                TcpStream::connect((self.url.host(), self.url.port()))
                    .await
                    .map_err(|source| ImapError::Connect { server: server.clone(), source })
            })
            .await?;
        let _ = tcp.set_nodelay(true);
        let tcp = match self.url.security() {
            ImapSecurity::Tls => tcp,
            ImapSecurity::StartTls => {
                let mut client = Client::new(tcp);
                self.step("greeting", greeting(&mut client, &server)).await?;
                self.step("STARTTLS", async {
                    client
                        .run_command_and_check_ok("STARTTLS", None)
                        .await
                        .map_err(|e| ImapError::NoStartTls { server: server.clone(), why: e.to_string() })
                })
                .await?;
                client.into_inner()
            }
        };
        let name = ServerName::try_from(self.url.host().to_owned())
            .map_err(|e| ImapError::Tls { server: server.clone(), source: std::io::Error::other(e.to_string()) })?;
        let tls = self
            .step("TLS", async {
                self.tls.connect(name, tcp).await.map_err(|source| ImapError::Tls { server: server.clone(), source })
            })
            .await?;
        let mut client = Client::new(tls);
        if self.url.security() == ImapSecurity::Tls {
            self.step("greeting", greeting(&mut client, &server)).await?;
        }
        let mut session = self
            .step("LOGIN", async {
                client
                    .login(self.url.user(), self.url.password().expose_secret())
                    .await
                    .map_err(|(e, _)| ImapError::Login { server: server.clone(), why: imap_why(&e) })
            })
            .await?;
        self.step("SELECT", async {
            session
                .select(self.url.mailbox())
                .await
                .map_err(|e| ImapError::Mailbox { server: server.clone(), why: imap_why(&e) })
        })
        .await?;
        Ok(session)
    }

    /// `fut`, given up after [`STEP_TIMEOUT`].
    async fn step<T>(
        &self,
        step: &'static str,
        fut: impl Future<Output = Result<T, ImapError>>,
    ) -> Result<T, ImapError> {
        tokio::time::timeout(STEP_TIMEOUT, fut)
            .await
            .map_err(|_| ImapError::Timeout { server: self.url.to_string(), step })?
    }

    fn protocol(&self, step: &'static str, e: async_imap::error::Error) -> ImapError {
        ImapError::Protocol { server: self.url.to_string(), step, why: imap_why(&e) }
    }
}

/// The server's first line, which must be there before anything is said.
async fn greeting<T>(client: &mut Client<T>, server: &str) -> Result<(), ImapError>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + std::fmt::Debug + Send,
{
    match client.read_response().await {
        Ok(Some(_)) => Ok(()),
        Ok(None) => Err(ImapError::Protocol {
            server: server.to_owned(),
            step: "greeting",
            why: "the server closed the connection".into(),
        }),
        Err(source) => Err(ImapError::Connect { server: server.to_owned(), source }),
    }
}

/// What the client's error says, without what it might quote of our input.
fn imap_why(e: &async_imap::error::Error) -> String {
    match e {
        async_imap::error::Error::Validate(_) => "a character IMAP cannot carry".into(),
        other => other.to_string(),
    }
}

/// `1:3,7`: UIDs (sorted) as an IMAP set, runs written as ranges.
fn uid_set(uids: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for &uid in uids {
        run = match run {
            Some((first, last)) if last.checked_add(1) == Some(uid) => Some((first, uid)),
            Some(done) => {
                out.push(range(done));
                Some((uid, uid))
            }
            None => Some((uid, uid)),
        };
    }
    out.extend(run.map(range));
    out.join(",")
}

fn range((first, last): (u32, u32)) -> String {
    if first == last { first.to_string() } else { format!("{first}:{last}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_written_as_ranges() {
        assert_eq!(uid_set(&[1, 2, 3, 7, 9, 10]), "1:3,7,9:10");
        assert_eq!(uid_set(&[5]), "5");
        assert_eq!(uid_set(&[u32::MAX - 1, u32::MAX]), format!("{}:{}", u32::MAX - 1, u32::MAX));
        assert_eq!(uid_set(&[]), "");
    }

    #[tokio::test]
    async fn a_ca_file_that_holds_no_certificate_is_said_at_start() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("ca.pem");
        std::fs::write(&file, "not a certificate").expect("write");
        let url = ImapUrl::parse("imaps://u:hunter2@127.0.0.1/INBOX").expect("parses");
        let err = Imap::new(url.clone(), Some(&file)).await.expect_err("refused");
        assert!(err.to_string().starts_with("bounces.imap_ca_file:"), "{err}");
        let err = Imap::new(url, Some(&dir.path().join("missing.pem"))).await.expect_err("refused");
        assert!(err.to_string().contains("cannot read it"), "{err}");
    }
}
