//! A real SMTP server on a free loopback port, for the delivery tests: `tests/smtp/server.py`
//! (Python, aiosmtpd) run as a child process, with the faults a mail provider has on a bad day
//! (4xx, 5xx, dropped connections, stalls, refused logins, TLS) switched on per test.
//!
//! ```ignore
//! let server = SmtpServer::start(Options::default().auth("u", "p").tempfail_first(1));
//! // point gazette at server.url() …
//! let got = server.wait_for(3, Duration::from_secs(10));
//! ```
//!
//! Each server has its own temporary folder (the spool the Python side writes, its log, any
//! certificate made for it) and its own port, so tests run in parallel. The server is stopped
//! when the value is dropped.

// Helpers for the delivery tests: not every test uses every one.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use crate::support::repo;

/// How long the server may take to print `READY`: Python starting on a loaded 2-core machine.
const STARTUP: Duration = Duration::from_secs(20);

/// The server's certificate and private key, and the CA that signed the certificate: PEM files.
#[derive(Clone, Debug)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsFiles {
    /// The file a client must trust (gazette's `ca_file`).
    pub fn ca(&self) -> &Path {
        &self.ca
    }
}

/// What the server does; everything off by default (a plain server that accepts all mail).
#[derive(Clone, Debug, Default)]
pub struct Options {
    port: Option<u16>,
    auth: Option<(String, String)>,
    tls: Option<TlsFiles>,
    self_signed: bool,
    require_tls: bool,
    implicit_tls: bool,
    tempfail_first: u32,
    tempfail_at_rcpt: bool,
    throttle_first: u32,
    /// Throttle every message for this long after the first; `None`: never; negative: always.
    throttle_seconds: Option<f64>,
    /// Recipients containing one of these are always throttled.
    throttle: Vec<String>,
    reject: Vec<String>,
    reject_at_data: bool,
    drop_every: u32,
    stall_every: u32,
    stall: Duration,
    max_connections: u32,
    accept_delay: Duration,
    pipelining: bool,
    no_smtputf8: bool,
    inject_after_starttls: bool,
    bounce_later: Vec<String>,
    bounce_maildir: Option<PathBuf>,
}

impl Options {
    /// Listen on this port rather than a free one: a server started again where one was.
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Require AUTH (PLAIN or LOGIN) with these credentials before MAIL; others get 535.
    pub fn auth(mut self, user: &str, pass: &str) -> Self {
        self.auth = Some((user.to_owned(), pass.to_owned()));
        self
    }

    /// Offer STARTTLS with this certificate.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// Offer STARTTLS with a fresh certificate for 127.0.0.1 and localhost from [`self_signed_cert`],
    /// kept in the server's folder; [`SmtpServer::tls_files`] gives the CA file for the client.
    pub fn self_signed_tls(mut self) -> Self {
        self.self_signed = true;
        self
    }

    /// Answer 530 to MAIL (and everything else but EHLO/HELO/NOOP/RSET/QUIT) before STARTTLS.
    pub fn require_tls(mut self) -> Self {
        self.require_tls = true;
        self
    }

    /// Speak TLS from the first byte (smtps) instead of offering STARTTLS.
    pub fn implicit_tls(mut self) -> Self {
        self.implicit_tls = true;
        self
    }

    /// The first `n` attempts for each recipient get `451 4.3.0` at DATA.
    pub fn tempfail_first(mut self, n: u32) -> Self {
        self.tempfail_first = n;
        self
    }

    /// The first `n` attempts for each recipient get `421 4.7.0 … slow down` at DATA.
    pub fn throttle_first(mut self, n: u32) -> Self {
        self.throttle_first = n;
        self
    }

    /// Every message in the first `seconds` after the first one (included) gets `421 4.7.0 … slow
    /// down` at DATA; a negative `seconds`, every message.
    pub fn throttle_for(mut self, seconds: f64) -> Self {
        self.throttle_seconds = Some(seconds);
        self
    }

    /// Messages to recipients containing `substring` always get `421 4.7.0 … slow down` at DATA.
    pub fn throttle(mut self, substring: &str) -> Self {
        self.throttle.push(substring.to_owned());
        self
    }

    /// Give the `tempfail_first` 451s at RCPT instead of DATA.
    pub fn tempfail_at_rcpt(mut self) -> Self {
        self.tempfail_at_rcpt = true;
        self
    }

    /// Recipients containing `substring` get `550 5.1.1 <addr>: user unknown` at RCPT.
    pub fn reject(mut self, substring: &str) -> Self {
        self.reject.push(substring.to_owned());
        self
    }

    /// Give the `reject` 550s at DATA (after the whole message) instead of RCPT.
    pub fn reject_at_data(mut self) -> Self {
        self.reject_at_data = true;
        self
    }

    /// Every `n`th message (across the server) loses its connection at the final dot, with no
    /// reply; it is not recorded.
    pub fn drop_every(mut self, n: u32) -> Self {
        self.drop_every = n;
        self
    }

    /// Every `n`th message gets no reply for `stall`, then the connection is closed; it is not
    /// recorded.
    pub fn stall_every(mut self, n: u32, stall: Duration) -> Self {
        self.stall_every = n;
        self.stall = stall;
        self
    }

    /// Every message is answered only after `delay`: a slow server, whose sending can be watched.
    pub fn accept_slowly(mut self, delay: Duration) -> Self {
        self.accept_delay = delay;
        self
    }

    /// More than `n` connections at once: the extra ones get `421 4.7.0` and are closed.
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n;
        self
    }

    /// Offer PIPELINING; `Stats::pipelined_mail` then counts the transactions sent pipelined.
    pub fn pipelining(mut self) -> Self {
        self.pipelining = true;
        self
    }

    /// Leave SMTPUTF8 out of the EHLO reply, as many servers do.
    pub fn no_smtputf8(mut self) -> Self {
        self.no_smtputf8 = true;
        self
    }

    /// Put a stray plain-text reply right behind STARTTLS's 220, as an attacker on the path would.
    pub fn inject_after_starttls(mut self) -> Self {
        self.inject_after_starttls = true;
        self
    }

    /// Accept recipients containing `substring`, then write a DSN about each to its envelope
    /// sender into `maildir`, as a remote server would later.
    pub fn bounce_later(mut self, substring: &str, maildir: &Path) -> Self {
        self.bounce_later.push(substring.to_owned());
        self.bounce_maildir = Some(maildir.to_owned());
        self
    }

    fn args(&self, tls: Option<&TlsFiles>) -> Vec<String> {
        let mut a: Vec<String> = Vec::new();
        let mut flag = |name: &str, value: String| {
            a.push(name.to_owned());
            a.push(value);
        };
        if let Some((user, pass)) = &self.auth {
            flag("--auth", format!("{user}:{pass}"));
        }
        if let Some(t) = tls {
            flag("--tls-cert", t.cert.display().to_string());
            flag("--tls-key", t.key.display().to_string());
        }
        if self.tempfail_first > 0 {
            flag("--tempfail-first", self.tempfail_first.to_string());
            flag("--tempfail-at", if self.tempfail_at_rcpt { "rcpt" } else { "data" }.to_owned());
        }
        if self.throttle_first > 0 {
            flag("--throttle-first", self.throttle_first.to_string());
        }
        if let Some(s) = self.throttle_seconds {
            flag("--throttle-seconds", s.to_string());
        }
        for t in &self.throttle {
            flag("--throttle", t.clone());
        }
        for r in &self.reject {
            flag("--reject", r.clone());
        }
        if self.reject_at_data {
            flag("--reject-at", "data".to_owned());
        }
        if self.drop_every > 0 {
            flag("--drop-every", self.drop_every.to_string());
        }
        if !self.accept_delay.is_zero() {
            flag("--accept-delay", self.accept_delay.as_secs_f64().to_string());
        }
        if self.stall_every > 0 {
            flag("--stall-every", self.stall_every.to_string());
            flag("--stall-seconds", self.stall.as_secs_f64().to_string());
        }
        if self.max_connections > 0 {
            flag("--max-connections", self.max_connections.to_string());
        }
        if self.require_tls {
            a.push("--require-tls".to_owned());
        }
        if self.implicit_tls {
            a.push("--implicit-tls".to_owned());
        }
        if self.pipelining {
            a.push("--pipelining".to_owned());
        }
        if self.inject_after_starttls {
            a.push("--inject-after-starttls".to_owned());
        }
        if self.no_smtputf8 {
            a.push("--no-smtputf8".to_owned());
        }
        for b in &self.bounce_later {
            a.push("--bounce-later".to_owned());
            a.push(b.clone());
        }
        if let Some(dir) = &self.bounce_maildir {
            a.push("--bounce-maildir".to_owned());
            a.push(dir.display().to_string());
        }
        a
    }
}

/// One message the server accepted (answered 250 to), in the order it accepted them.
#[derive(Clone, Debug)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_tos: Vec<String>,
    /// Unix time, in seconds, when the server accepted it.
    pub received_at: f64,
    /// The `Message-ID` header as sent (with its angle brackets), if it parsed.
    pub message_id: Option<String>,
    /// The client's address and port, `127.0.0.1:54321`: one value per connection.
    pub peer: String,
    /// The DATA bytes as received (dot-unstuffed, CRLF line ends).
    pub raw: Vec<u8>,
}

impl Received {
    /// The message read by a real MIME parser.
    pub fn parsed(&self) -> mail_parser::Message<'_> {
        mail_parser::MessageParser::default().parse(&self.raw).expect("the server received a parseable message")
    }
}

/// The server's connection counters (`DIR/stats.json`, rewritten as they change).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub connections_now: u64,
    pub peak_connections: u64,
    pub connections_total: u64,
    pub refused_connections: u64,
    pub messages_accepted: u64,
    /// MAIL commands that arrived with the next command behind them (with `pipelining`).
    pub pipelined_mail: u64,
    /// Throttling replies given (`throttle_first`, `throttle_for`).
    pub throttled: u64,
}

/// A running `tests/smtp/server.py`; stopped (SIGTERM, then SIGKILL) when dropped.
pub struct SmtpServer {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    auth: Option<(String, String)>,
    implicit_tls: bool,
    tls: Option<TlsFiles>,
    /// Killed by the test: nothing is left to stop, and its id may be another process's now.
    killed: bool,
}

impl SmtpServer {
    /// Starts the server and waits until it listens; panics with its stderr if it does not.
    pub fn start(opts: Options) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for the SMTP server");
        let spool = dir.path().join("spool");
        let tls = match (&opts.tls, opts.self_signed) {
            (Some(files), _) => Some(files.clone()),
            (None, true) => Some(self_signed_cert(dir.path())),
            (None, false) => None,
        };
        let log_path = dir.path().join("server.log");
        // stderr goes to a file rather than a pipe: nobody has to drain it, and a failing test
        // can still show it.
        let log = std::fs::File::create(&log_path).expect("create the server's log file");
        let mut child = Command::new("python3")
            .arg(repo().join("tests/smtp/server.py"))
            .arg("--port")
            .arg(opts.port.unwrap_or(0).to_string())
            .arg("--spool")
            .arg(&spool)
            .args(opts.args(tls.as_ref()))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("spawn python3 tests/smtp/server.py (is python3 on PATH?)");

        // Read stdout on a thread so the wait can time out; the thread then drains stdout to
        // EOF, and its end (the server exiting early) shows up here as a closed channel.
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let ready = rx.recv_timeout(STARTUP);
        let port = ready.as_deref().ok().and_then(|l| l.strip_prefix("READY ")).and_then(|p| p.trim().parse().ok());
        let Some(port) = port else {
            let _ = child.kill();
            let status = child.wait();
            panic!(
                "the SMTP test server did not start ({ready:?}, exit {status:?}); its stderr:\n{}\n\
                 (it needs aiosmtpd: python3 -m pip install aiosmtpd, as scripts/test.sh does)",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            );
        };
        Self { port, dir, child, auth: opts.auth, implicit_tls: opts.implicit_tls, tls, killed: false }
    }

    /// `smtp://127.0.0.1:PORT` (`smtps://` with implicit TLS), with `user:pass@` when the server
    /// requires AUTH: the form `gazette.toml`'s `smtp_url` takes.
    pub fn url(&self) -> String {
        let scheme = if self.implicit_tls { "smtps" } else { "smtp" };
        let mut url = url::Url::parse(&format!("{scheme}://127.0.0.1:{}", self.port)).expect("a valid SMTP URL");
        if let Some((user, pass)) = &self.auth {
            // set_username/set_password percent-encode whatever the credentials hold
            url.set_username(user).expect("URL has a host");
            url.set_password(Some(pass)).expect("URL has a host");
        }
        url.to_string()
    }

    /// Kills the server at once (SIGKILL), as a crash would: open connections drop without a
    /// reply. What it accepted before stays readable.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.killed = true;
    }

    /// The certificate the server presents, if it speaks TLS (`ca()` is the client's CA file).
    pub fn tls_files(&self) -> Option<&TlsFiles> {
        self.tls.as_ref()
    }

    /// Where the server writes `<n>.eml`, `log.jsonl` and `stats.json`.
    pub fn spool(&self) -> PathBuf {
        self.dir.path().join("spool")
    }

    /// How many messages were accepted so far: cheap enough to poll on a large run.
    pub fn accepted(&self) -> usize {
        std::fs::read(self.spool().join("log.jsonl")).map_or(0, |log| log.iter().filter(|b| **b == b'\n').count())
    }

    /// The messages accepted so far, in order.
    pub fn messages(&self) -> Vec<Received> {
        let spool = self.spool();
        let log = match std::fs::read_to_string(spool.join("log.jsonl")) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("read the SMTP server's log.jsonl: {e}"),
        };
        // Only lines that end in a newline are whole; the server writes each in one write().
        log.split_inclusive('\n')
            .filter(|l| l.ends_with('\n'))
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).expect("log.jsonl lines are JSON");
                let text = |key: &str| v[key].as_str().map(str::to_owned);
                let file = text("file").expect("log line names its .eml");
                Received {
                    mail_from: text("mail_from").unwrap_or_default(),
                    rcpt_tos: v["rcpt_tos"]
                        .as_array()
                        .expect("rcpt_tos is an array")
                        .iter()
                        .filter_map(|r| r.as_str().map(str::to_owned))
                        .collect(),
                    received_at: v["received_at"].as_f64().expect("received_at is a number"),
                    message_id: text("message_id"),
                    peer: text("peer").unwrap_or_default(),
                    raw: std::fs::read(spool.join(&file)).expect("the .eml a log line names exists"),
                }
            })
            .collect()
    }

    /// Waits until at least `count` messages have been accepted and returns them all; panics
    /// after `timeout` with what did arrive and the server's log.
    #[track_caller]
    pub fn wait_for(&self, count: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= count {
                return got;
            }
            if Instant::now() >= deadline {
                let rcpts: Vec<&Vec<String>> = got.iter().map(|m| &m.rcpt_tos).collect();
                panic!(
                    "expected {count} messages within {timeout:?}, the SMTP server got {}: {rcpts:?}\n{}",
                    got.len(),
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The connection counters as the server last wrote them.
    pub fn stats(&self) -> Stats {
        let text = std::fs::read_to_string(self.spool().join("stats.json")).expect("read stats.json");
        let v: serde_json::Value = serde_json::from_str(&text).expect("stats.json is JSON");
        let n = |key: &str| v[key].as_u64().unwrap_or_default();
        Stats {
            connections_now: n("connections_now"),
            peak_connections: n("peak_connections"),
            connections_total: n("connections_total"),
            refused_connections: n("refused_connections"),
            messages_accepted: n("messages_accepted"),
            pipelined_mail: n("pipelined_mail"),
            throttled: n("throttled"),
        }
    }

    /// The last `lines` lines of the server's stderr (every command it saw), for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if self.killed {
            return;
        }
        // SIGTERM lets it write its last stats; std has no signal API, so ask kill(1).
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A certificate for `localhost` and `127.0.0.1` and a throwaway CA that signed it, made by the
/// `openssl` command into `dir` (`ca.pem`, `cert.pem`, `key.pem`). Not a single self-signed
/// certificate: rustls (webpki) will not take a server's own certificate as its trust anchor
/// (`UnknownIssuer`), so the client trusts `ca.pem` and the server presents `cert.pem`.
pub fn self_signed_cert(dir: &Path) -> TlsFiles {
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem"), ca: dir.join("ca.pem") };
    let ca_key = dir.join("ca.key");
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .arg("-keyout")
            .arg(&ca_key)
            .arg("-out")
            .arg(&files.ca)
            .args(["-days", "3650", "-subj", "/CN=gazette test CA"])
            .args(["-addext", "basicConstraints=critical,CA:TRUE"])
            .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]),
    );
    openssl(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .arg("-CA")
            .arg(&files.ca)
            .arg("-CAkey")
            .arg(&ca_key)
            .arg("-keyout")
            .arg(&files.key)
            .arg("-out")
            .arg(&files.cert)
            .args(["-days", "3650", "-subj", "/CN=localhost"])
            .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
            // `req -x509` marks certificates as CAs unless told otherwise, and rustls refuses a CA
            // certificate presented as a server's own
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .args(["-addext", "keyUsage=critical,digitalSignature"])
            .args(["-addext", "extendedKeyUsage=serverAuth"]),
    );
    files
}

fn openssl(cmd: &mut Command) {
    let out = cmd.output().expect("run openssl (Debian package openssl, 3.0 or later)");
    assert!(out.status.success(), "openssl failed:\n{}", String::from_utf8_lossy(&out.stderr));
}
