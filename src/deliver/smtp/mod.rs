//! SMTP with lettre's protocol client over connections gazette opens itself: TCP_NODELAY is set
//! on each socket (without it, the small `.` that ends every message waits for a delayed ACK, up
//! to 40 ms a message), and idle connections are kept for the next message. `smtp://` upgrades
//! with STARTTLS when the server offers it (and insists with `?tls=required`); `smtps://` speaks
//! TLS from the first byte. Certificates are always verified; `ca_file` (or `$SSL_CERT_FILE`)
//! adds a trusted CA. The URL's password is never printed: messages name the host and port.
//!
//! A message goes in two steps: [`Smtp::open`] has the envelope accepted and sends the content,
//! and [`OpenMail::finish`] sends the final dot that makes the server take it. Only that last,
//! small step has to wait for the ledger.

mod wire;

use std::{
    fmt,
    path::PathBuf,
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::{
    address::Envelope,
    transport::smtp::{
        authentication::{Credentials, Mechanism},
        client::AsyncSmtpConnection,
        commands::{Data, Ehlo, Mail, Rcpt, Starttls},
        extension::{ClientId, Extension, MailBodyParameter, MailParameter},
    },
};
use rustls_pki_types::ServerName;
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpStream;
use url::Url;

use self::wire::Wire;
use super::{SendError, SendErrorKind};

#[derive(Debug, Clone)]
pub struct SmtpSettings {
    pub url: SecretString,
    pub ca_file: Option<PathBuf>,
    pub timeout: Duration,
    /// Idle connections kept for reuse; the engine bounds how many are used at once.
    pub pool_size: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Security {
    Implicit,
    StartTls { required: bool },
}

struct Inner {
    host: String,
    port: u16,
    security: Security,
    tls: Arc<rustls::ClientConfig>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<Connection>>,
    pool_size: usize,
}

/// An SMTP server and the connections open to it.
#[derive(Clone)]
pub struct Smtp {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Smtp({})", self.server())
    }
}

impl Smtp {
    pub async fn new(settings: &SmtpSettings) -> Result<Self, SendError> {
        let bad = |why: &str| SendError::server(format!("delivery.smtp_url: {why}"));
        let url = Url::parse(settings.url.expose_secret()).map_err(|_| bad("not a URL"))?;
        let host = url.host_str().ok_or_else(|| bad("no host"))?.trim_matches(['[', ']']).to_owned();
        let security = match url.scheme() {
            "smtps" => Security::Implicit,
            "smtp" => Security::StartTls { required: url.query_pairs().any(|(k, v)| k == "tls" && v == "required") },
            _ => return Err(bad("the scheme must be smtp:// or smtps://")),
        };
        let port = url.port().unwrap_or(if security == Security::Implicit { 465 } else { 587 });

        let roots = crate::config::trust::roots("delivery.ca_file", settings.ca_file.as_deref())
            .await
            .map_err(|e| SendError::server(e.to_string()))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| SendError::server(format!("TLS setup: {e}")))?
            .with_root_certificates(roots)
            .with_no_client_auth();

        let credentials = (!url.username().is_empty()).then(|| {
            let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
            Credentials::new(decode(url.username()), decode(url.password().unwrap_or_default()))
        });
        Ok(Self {
            inner: Arc::new(Inner {
                host,
                port,
                security,
                tls: Arc::new(tls),
                credentials,
                timeout: settings.timeout,
                hello: ClientId::default(),
                idle: Mutex::new(Vec::new()),
                pool_size: usize::try_from(settings.pool_size.max(1)).unwrap_or(1),
            }),
        })
    }

    /// `host:port`, for messages.
    pub fn server(&self) -> String {
        format!("{}:{}", self.inner.host, self.inner.port)
    }

    /// Connects, greets, upgrades to TLS and logs in, sending nothing.
    pub async fn check(&self) -> Result<(), SendError> {
        let mut c = self.connect().await?;
        let _ = tokio::time::timeout(self.inner.timeout, c.conn.quit()).await;
        Ok(())
    }

    /// Opens a ready connection; every failure here is the server's as a whole.
    async fn connect(&self) -> Result<Connection, SendError> {
        let i = &self.inner;
        let server = self.server();
        let fail = |what: String| SendError::server(format!("{server}: {what}"));
        let work = async {
            let tcp = TcpStream::connect((i.host.as_str(), i.port))
                .await
                .map_err(|e| fail(format!("cannot connect: {e}")))?;
            tcp.set_nodelay(true).map_err(|e| fail(e.to_string()))?;
            let wire = Wire::plain(tcp).map_err(|e| fail(e.to_string()))?;
            let name = ServerName::try_from(i.host.clone()).map_err(|e| fail(format!("bad host name: {e}")))?;
            let connector = tokio_rustls::TlsConnector::from(Arc::clone(&i.tls));
            let handshake = |e: std::io::Error| fail(format!("TLS handshake refused: {e}"));
            if i.security == Security::Implicit {
                wire.start_tls(connector.clone(), name.clone()).await.map_err(handshake)?;
            }
            // A greeting of 421 (too many connections) asks to slow down; the server is there.
            let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(wire.clone()), &i.hello)
                .await
                .map_err(|e| match classify(&e) {
                    t if t.kind == SendErrorKind::Throttled => SendError::throttled(format!("{server}: {}", t.reply)),
                    _ => fail(describe(&e)),
                })?;
            if let Security::StartTls { required } = i.security {
                if conn.can_starttls() {
                    conn.command(Starttls).await.map_err(|e| fail(format!("STARTTLS failed: {}", describe(&e))))?;
                    wire.start_tls(connector, name).await.map_err(handshake)?;
                    // The dialogue starts over inside TLS with a new client: it says EHLO and learns
                    // the extensions offered there, and anything the server sent in plain text
                    // after its 220 is dropped with the old client's buffer, never read as a reply.
                    wire.replay(format!("220 {} TLS started\r\n", i.host).as_bytes());
                    conn = AsyncSmtpConnection::connect_with_transport(Box::new(wire.clone()), &i.hello)
                        .await
                        .map_err(|e| fail(format!("after STARTTLS: {}", describe(&e))))?;
                } else if required {
                    return Err(fail("the server does not offer STARTTLS and ?tls=required insists".into()));
                }
            }
            // lettre keeps only the extensions it acts on; PIPELINING is read from a second EHLO.
            let hello = conn.command(Ehlo::new(i.hello.clone())).await.map_err(|e| fail(describe(&e)))?;
            let pipelining = hello.message().any(|line| line.trim().eq_ignore_ascii_case("PIPELINING"));
            if let Some(c) = &i.credentials {
                conn.auth(&[Mechanism::Plain, Mechanism::Login], c)
                    .await
                    .map_err(|e| fail(format!("login refused: {}", describe(&e))))?;
            }
            Ok(Connection { conn, wire, pipelining })
        };
        tokio::time::timeout(i.timeout, work)
            .await
            .unwrap_or_else(|_| Err(fail(format!("no answer within {:?}", i.timeout))))
    }

    /// Starts a mail transaction for `bytes`: the server accepts its envelope (MAIL, RCPT and
    /// DATA) and receives its content, all but the final dot. Until [`OpenMail::finish`] sends
    /// that dot the server delivers nothing, and dropping the transaction drops the message.
    pub async fn open(&self, envelope: &Envelope, bytes: &[u8]) -> Result<OpenMail, SendError> {
        let pooled = self.inner.idle.lock().map(|mut idle| idle.pop()).unwrap_or(None);
        let mut conn = match pooled {
            Some(c) => c,
            None => self.connect().await?,
        };
        let started = std::time::Instant::now();
        let exchange = tokio::time::timeout(self.inner.timeout, conn.start(envelope, bytes)).await;
        if !matches!(exchange, Ok(Ok(()))) {
            crate::metrics::smtp_send(started.elapsed(), false);
        }
        match exchange {
            Ok(Ok(())) => Ok(OpenMail { conn, smtp: self.clone(), spent: started.elapsed() }),
            // Refused before a command was sent: the connection is as good as before.
            Ok(Err(Refused { error, .. })) if error.kind == SendErrorKind::Unsendable => {
                self.keep(conn);
                Err(error)
            }
            Ok(Err(Refused { error, in_data })) => {
                // The connection is not reused. Without pipelining a server that refused a
                // command is between commands and gets a polite QUIT, as lettre gives. With it,
                // replies may still be on their way (a server that took DATA after refusing the
                // recipient would take a QUIT for content), and inside DATA a QUIT would be
                // content too: the connection is just closed, and an unfinished DATA delivers
                // nothing.
                if !conn.pipelining && !in_data {
                    let _ = tokio::time::timeout(self.inner.timeout, conn.conn.abort()).await;
                }
                Err(error)
            }
            // A server that said nothing for a whole timeout gets no second wait for a QUIT.
            Err(_) => Err(self.silent()),
        }
    }

    fn silent(&self) -> SendError {
        SendError::connection(format!("{} did not answer within {:?}", self.server(), self.inner.timeout))
    }

    fn keep(&self, conn: Connection) {
        if !conn.conn.has_broken()
            && let Ok(mut idle) = self.inner.idle.lock()
            && idle.len() < self.inner.pool_size
        {
            idle.push(conn);
        }
    }
}

/// A mail transaction whose envelope and content the server has, waiting for the final dot.
pub struct OpenMail {
    conn: Connection,
    smtp: Smtp,
    /// Time spent with the server so far, for the latency histogram.
    spent: Duration,
}

impl std::fmt::Debug for OpenMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OpenMail({})", self.smtp.server())
    }
}

impl OpenMail {
    /// Sends the final dot: from the server's reply on, the message is theirs.
    pub async fn finish(mut self) -> Result<String, SendError> {
        let started = std::time::Instant::now();
        let exchange = tokio::time::timeout(self.smtp.inner.timeout, self.conn.conn.command(EndOfData)).await;
        crate::metrics::smtp_send(self.spent + started.elapsed(), matches!(exchange, Ok(Ok(_))));
        match exchange {
            Ok(Ok(response)) => {
                self.smtp.keep(self.conn);
                Ok(format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" ")))
            }
            Ok(Err(e)) => {
                let _ = tokio::time::timeout(self.smtp.inner.timeout, self.conn.conn.abort()).await;
                Err(classify(&e))
            }
            Err(_) => Err(self.smtp.silent()),
        }
    }
}

/// An open, greeted (and where asked, encrypted and logged-in) connection.
struct Connection {
    conn: AsyncSmtpConnection,
    /// The socket under `conn`, for writing content without its final dot.
    wire: Wire,
    /// The server takes MAIL, RCPT and DATA in one write (RFC 2920): one round trip, not three.
    pipelining: bool,
}

/// The line that ends DATA. The content written before it may lack a last line break, so one
/// comes first, as lettre's own `message` sends it.
struct EndOfData;

impl fmt::Display for EndOfData {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\r\n.\r\n")
    }
}

/// Why a transaction could not start, and whether the server was already taking content.
struct Refused {
    error: SendError,
    in_data: bool,
}

impl Connection {
    /// The envelope, then the content without its final dot.
    async fn start(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<(), Refused> {
        self.announce(envelope, bytes).await.map_err(|error| Refused { error, in_data: false })?;
        let content = wire::transparent(bytes);
        self.wire
            .write_all(&content)
            .await
            .map_err(|e| Refused { error: SendError::connection(format!("sending the content: {e}")), in_data: true })
    }

    /// MAIL, RCPT and DATA, with the parameters lettre's own `send` would give them.
    async fn announce(&mut self, envelope: &Envelope, bytes: &[u8]) -> Result<(), SendError> {
        let conn = &mut self.conn;
        let mut options = Vec::new();
        // An address's domain reaches lettre as its ASCII (punycode) form, so only a local part
        // that is not ASCII needs SMTPUTF8. A server that does not offer it cannot take such an
        // address however often it is asked: the delivery fails at once, told why, and the
        // reader, whose address may be fine, is not marked bounced. The same holds for content
        // that is not ASCII (a header with such an address) without 8BITMIME.
        let non_ascii = |a: &lettre::Address| !AsRef::<str>::as_ref(a).is_ascii();
        if envelope.from().is_some_and(non_ascii) || envelope.to().iter().any(non_ascii) {
            if !conn.server_info().supports_feature(Extension::SmtpUtfEight) {
                return Err(SendError::unsendable(
                    "the server does not offer SMTPUTF8, which this address needs (its part before the @ is not ASCII)",
                ));
            }
            options.push(MailParameter::SmtpUtfEight);
        }
        if !bytes.is_ascii() {
            if !conn.server_info().supports_feature(Extension::EightBitMime) {
                return Err(SendError::unsendable(
                    "the server does not offer 8BITMIME, which this message needs (it is not ASCII)",
                ));
            }
            options.push(MailParameter::Body(MailBodyParameter::EightBitMime));
        }
        let mail = Mail::new(envelope.from().cloned(), options);
        let rcpts = envelope.to().iter().map(|to| Rcpt::new(to.clone(), Vec::new()));
        let check = |r: Result<_, lettre::transport::smtp::Error>| r.map(|_| ()).map_err(|e| classify(&e));
        if self.pipelining {
            // The replies come back in order; the first refusal is the answer, and the
            // connection is not reused after one, so the replies left unread do not matter.
            let batch = std::iter::once(mail.to_string()).chain(rcpts.map(|r| r.to_string())).collect::<String>()
                + &Data.to_string();
            check(conn.command(batch).await)?;
            for _ in envelope.to() {
                check(conn.read_response().await)?;
            }
            check(conn.read_response().await)
        } else {
            check(conn.command(mail).await)?;
            for rcpt in rcpts {
                check(conn.command(rcpt).await)?;
            }
            check(conn.command(Data).await)
        }
    }
}

fn classify(e: &lettre::transport::smtp::Error) -> SendError {
    let reply = describe(e);
    if e.is_transient() && e.status().is_some_and(|code| is_throttling(u16::from(code), &reply)) {
        SendError::throttled(reply)
    } else if e.is_permanent() {
        SendError::permanent(describe(e))
    } else if e.is_transient() {
        SendError::temporary(describe(e))
    } else {
        SendError::connection(describe(e))
    }
}

/// Is a temporary reply `code` with `text` a request to slow down? 421 (the server is closing,
/// often for too many connections or messages), 454 (the lower layer is busy), and any enhanced
/// status of class 4.7 (security or policy, where providers put their rate limits): these say
/// nothing about the message, only about the pace.
fn is_throttling(code: u16, text: &str) -> bool {
    let policy = |word: &str| {
        let word = word.trim_matches(|c: char| !c.is_ascii_digit() && c != '.');
        word.strip_prefix("4.7.")
            .is_some_and(|d| !d.is_empty() && d.len() <= 3 && d.bytes().all(|b| b.is_ascii_digit()))
    };
    (400..500).contains(&code) && (code == 421 || code == 454 || text.split_whitespace().any(policy))
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

#[cfg(test)]
mod tests {
    use super::is_throttling;

    #[test]
    fn slow_down_replies_are_throttling_and_other_temporary_ones_are_not() {
        for (code, text) in [
            (421, "4.7.0 too many connections, try again later"),
            (421, "mx.example.org closing the connection"),
            (454, "TLS not available due to temporary reason"),
            (451, "4.7.1 please try again later, rate limited"),
            (452, "4.7.0 too much mail from your address"),
            (450, "transient error (450): 4.7.28 the rate of mail from you is unusually high"),
        ] {
            assert!(is_throttling(code, text), "{code} {text}");
        }
        for (code, text) in [
            (450, "4.2.1 mailbox busy"),
            (451, "4.3.0 try again later"),
            (452, "4.2.2 mailbox full"),
            (451, "greylisted for 4.7 minutes"),
            (550, "5.7.1 refused by policy"),
            (421, "5.7.0 nonsense outside a 4xx"),
        ] {
            assert_eq!(is_throttling(code, text), code == 421, "{code} {text}");
        }
    }
}
