//! The SMTP test server against lettre's own client (the one gazette sends with): each fault
//! looks to the client the way the delivery engine must handle it, and the spool records a
//! message exactly when the client was told 250.

use std::{
    io::{BufRead, BufReader},
    net::TcpStream,
    time::Duration,
};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{
        AsyncSmtpTransportBuilder, Error,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};

use crate::smtp::{Options, SmtpServer, TlsFiles};

const WAIT: Duration = Duration::from_secs(5);

fn message(to: &str) -> Message {
    Message::builder()
        .from("Test Digest <digest@example.org>".parse().expect("from address"))
        .to(to.parse().expect("to address"))
        .subject("Issue 1")
        .body(String::from("Hello.\r\n.A line that starts with a dot.\r\n"))
        .expect("a message")
}

/// A plain (no TLS) client for the server, with a short connect timeout.
fn client(server: &SmtpServer) -> AsyncSmtpTransportBuilder {
    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous("127.0.0.1")
        .port(server.port)
        .timeout(Some(Duration::from_secs(5)))
}

fn trusting(files: &TlsFiles, name: &str) -> TlsParameters {
    let pem = std::fs::read(files.ca()).expect("read the CA file");
    TlsParameters::builder(name.to_owned())
        .add_root_certificate(Certificate::from_pem(&pem).expect("a PEM certificate"))
        .build()
        .expect("TLS parameters")
}

async fn send(mailer: &AsyncSmtpTransport<Tokio1Executor>, to: &str) -> Result<(), Error> {
    mailer.send(message(to)).await.map(drop)
}

/// Whether the client refused the server's certificate. lettre reports a failed handshake as a
/// connection error (`is_tls()` is false), with rustls' verdict inside an `io::Error`, whose
/// `source()` skips the error it wraps: hence `get_ref`.
fn certificate_refused(e: &Error) -> bool {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = next {
        let inner =
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).map(|e| e as &dyn std::error::Error);
        if let Some(rustls::Error::InvalidCertificate(_)) = inner.unwrap_or(err).downcast_ref::<rustls::Error>() {
            return true;
        }
        next = inner.or_else(|| err.source());
    }
    false
}

#[track_caller]
fn assert_code(result: Result<(), Error>, code: &str) -> Error {
    let e = result.expect_err("the server refuses");
    assert_eq!(e.status().map(|c| c.to_string()).as_deref(), Some(code), "{e:?}");
    e
}

#[tokio::test]
async fn plain_delivery_is_recorded_with_envelope_and_raw_bytes() {
    let server = SmtpServer::start(Options::default());
    let mailer = client(&server).build();
    send(&mailer, "ada@example.com").await.expect("accepted");
    send(&mailer, "Bob <bob@example.com>").await.expect("accepted");

    let got = server.wait_for(2, WAIT);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].mail_from, "digest@example.org");
    assert_eq!(got[0].rcpt_tos, ["ada@example.com"]);
    assert_eq!(got[1].rcpt_tos, ["bob@example.com"]);
    assert!(got[0].received_at <= got[1].received_at);
    assert!(got[0].peer.starts_with("127.0.0.1:"), "{}", got[0].peer);
    let m = got[0].parsed();
    assert_eq!(m.subject(), Some("Issue 1"));
    assert_eq!(got[0].message_id.as_deref(), m.message_id().map(|id| format!("<{id}>")).as_deref());
    // dot-stuffing undone, CRLF kept: the bytes are what the client meant to send
    let raw = String::from_utf8_lossy(&got[0].raw);
    assert!(raw.contains("\r\n.A line that starts with a dot.\r\n"), "{raw}");
    assert!(server.url().starts_with("smtp://127.0.0.1:"), "{}", server.url());
}

#[tokio::test]
async fn auth_accepts_the_right_login_and_answers_535_to_a_wrong_one() {
    let server = SmtpServer::start(Options::default().auth("gazette", "p@ss word"));
    assert_eq!(server.url(), format!("smtp://gazette:p%40ss%20word@127.0.0.1:{}", server.port));

    // the URL is one lettre itself understands, credentials and all
    let good = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url()).expect("lettre parses url()").build();
    send(&good, "ada@example.com").await.expect("logged in and accepted");

    let wrong = client(&server).credentials(Credentials::new("gazette".into(), "nope".into())).build();
    let e = assert_code(send(&wrong, "bob@example.com").await, "535");
    assert!(e.is_permanent(), "{e:?}");

    let anonymous = client(&server).build();
    let e = assert_code(send(&anonymous, "bob@example.com").await, "530");
    assert!(e.is_permanent(), "{e:?}");

    assert_eq!(server.wait_for(1, WAIT).len(), 1);
    assert_eq!(server.messages().len(), 1, "only the logged-in message is recorded");
}

#[tokio::test]
async fn starttls_works_for_a_client_that_trusts_the_cert_and_fails_for_one_that_does_not() {
    let server = SmtpServer::start(Options::default().self_signed_tls().require_tls());
    let files = server.tls_files().expect("TLS files").clone();

    for name in ["localhost", "127.0.0.1"] {
        let trusted = client(&server).tls(Tls::Required(trusting(&files, name))).build();
        send(&trusted, "ada@example.com").await.unwrap_or_else(|e| panic!("STARTTLS as {name}: {e:?}"));
    }

    let default_roots = TlsParameters::new("localhost".into()).expect("TLS parameters");
    let untrusting = client(&server).tls(Tls::Required(default_roots)).build();
    let e = send(&untrusting, "bob@example.com").await.expect_err("an unknown certificate is refused");
    assert!(certificate_refused(&e), "{e:?}");

    // --require-tls: a client that skips STARTTLS is turned away at MAIL
    let clear = client(&server).build();
    let e = assert_code(send(&clear, "carol@example.com").await, "530");
    assert!(e.is_permanent(), "{e:?}");

    let got = server.wait_for(2, WAIT);
    let rcpts: Vec<&str> = got.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    assert_eq!(rcpts, ["ada@example.com", "ada@example.com"]);
}

#[tokio::test]
async fn implicit_tls_speaks_tls_from_the_first_byte() {
    let server = SmtpServer::start(Options::default().self_signed_tls().implicit_tls().auth("u", "p"));
    assert!(server.url().starts_with("smtps://u:p@127.0.0.1:"), "{}", server.url());
    let files = server.tls_files().expect("TLS files");

    let mailer = AsyncSmtpTransport::<Tokio1Executor>::from_url(&server.url())
        .expect("lettre parses url()")
        .tls(Tls::Wrapper(trusting(files, "127.0.0.1")))
        .build();
    send(&mailer, "ada@example.com").await.expect("accepted over TLS");

    let untrusting = client(&server)
        .credentials(Credentials::new("u".into(), "p".into()))
        .tls(Tls::Wrapper(TlsParameters::new("127.0.0.1".into()).expect("TLS parameters")))
        .build();
    let e = send(&untrusting, "bob@example.com").await.expect_err("an unknown certificate is refused");
    assert!(certificate_refused(&e), "{e:?}");

    // plain SMTP to a TLS port: each side waits for the other to speak first, so only a
    // client-side timeout ends it
    let clear = client(&server).build();
    let r = tokio::time::timeout(Duration::from_millis(500), send(&clear, "carol@example.com")).await;
    assert!(!matches!(r, Ok(Ok(()))), "{r:?}");

    assert_eq!(server.wait_for(1, WAIT).len(), 1);
}

#[tokio::test]
async fn tempfail_first_two_gives_two_451_then_success() {
    for (opts, at) in [
        (Options::default().tempfail_first(2), "DATA"),
        (Options::default().tempfail_first(2).tempfail_at_rcpt(), "RCPT"),
    ] {
        let server = SmtpServer::start(opts);
        let mailer = client(&server).build();
        for attempt in 1..=2 {
            let e = assert_code(send(&mailer, "ada@example.com").await, "451");
            assert!(e.is_transient(), "attempt {attempt} at {at}: {e:?}");
        }
        // attempts are counted per address: another one starts from zero
        assert!(send(&mailer, "bob@example.com").await.expect_err("bob's first").is_transient());
        send(&mailer, "ada@example.com").await.unwrap_or_else(|e| panic!("third attempt at {at}: {e:?}"));
        let got = server.wait_for(1, WAIT);
        assert_eq!(got.len(), 1, "{at}");
        assert_eq!(got[0].rcpt_tos, ["ada@example.com"]);
    }
}

#[tokio::test]
async fn reject_gives_550_at_rcpt_or_at_data() {
    for opts in [Options::default().reject("bounce"), Options::default().reject("bounce").reject_at_data()] {
        let server = SmtpServer::start(opts);
        let mailer = client(&server).build();
        let e = assert_code(send(&mailer, "will.bounce@example.com").await, "550");
        assert!(e.is_permanent(), "{e:?}");
        assert!(e.to_string().contains("user unknown"), "{e}");
        send(&mailer, "ada@example.com").await.expect("others are accepted");
        let got = server.wait_for(1, WAIT);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].rcpt_tos, ["ada@example.com"]);
    }
}

#[tokio::test]
async fn drop_every_second_message_is_a_connection_error_and_not_recorded() {
    let server = SmtpServer::start(Options::default().drop_every(2));
    let mailer = client(&server).build();
    send(&mailer, "one@example.com").await.expect("message 1 accepted");
    let e = send(&mailer, "two@example.com").await.expect_err("message 2 dropped");
    assert!(!e.is_transient() && !e.is_permanent() && e.status().is_none(), "no reply at all: {e:?}");
    send(&mailer, "three@example.com").await.expect("message 3 accepted on a new connection");

    let got = server.wait_for(2, WAIT);
    let rcpts: Vec<&str> = got.iter().map(|m| m.rcpt_tos[0].as_str()).collect();
    assert_eq!(rcpts, ["one@example.com", "three@example.com"]);
    assert_eq!(server.stats().messages_accepted, 2);
}

#[tokio::test]
async fn stall_outlasts_a_client_timeout_and_is_not_recorded() {
    let stall = Duration::from_millis(1500);
    let server = SmtpServer::start(Options::default().stall_every(1, stall));
    // lettre's async `.timeout()` bounds only the TCP connect, not the replies: a client that
    // wants to give up on a silent server must wrap the send in its own timeout.
    let mailer = client(&server).timeout(Some(Duration::from_millis(200))).build();
    let waited = std::time::Instant::now();
    let r = tokio::time::timeout(Duration::from_millis(300), send(&mailer, "ada@example.com")).await;
    assert!(r.is_err(), "the client gave up first: {r:?}");
    assert!(waited.elapsed() < stall);

    // a client that waits the stall out sees the connection close, with no reply
    let patient = client(&server).build();
    let e = send(&patient, "bob@example.com").await.expect_err("no reply after the stall");
    assert!(e.status().is_none(), "{e:?}");
    assert!(server.messages().is_empty());
}

#[test]
fn connections_are_counted_and_those_over_max_connections_get_421() {
    let server = SmtpServer::start(Options::default().max_connections(1));
    let greeting = |s: &TcpStream| {
        let mut line = String::new();
        BufReader::new(s).read_line(&mut line).expect("a greeting");
        line
    };
    let first = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    assert!(greeting(&first).starts_with("220 "));
    let second = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    assert!(greeting(&second).starts_with("421 4.7.0"));

    let stats = server.stats();
    assert_eq!((stats.peak_connections, stats.refused_connections, stats.connections_total), (2, 1, 2), "{stats:?}");
    drop((first, second));
    let deadline = std::time::Instant::now() + WAIT;
    while server.stats().connections_now > 0 {
        assert!(std::time::Instant::now() < deadline, "{:?}", server.stats());
        std::thread::sleep(Duration::from_millis(20));
    }
}
