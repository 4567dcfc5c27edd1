//! Providers' webhooks through a real server on a loopback port: an issue sent first to a real
//! SMTP server (so that each reader has a delivery, a VERP envelope sender and a Message-ID),
//! then each provider's events, signed by the test the provider's way, posted to
//! `/webhooks/{provider}`, and what they did to the readers read back with the binary. Postmark,
//! Mailgun and SendGrid go to `gazette serve` itself; SES goes to the library's router, whose
//! https client for SNS is pointed at a certificate server of the test's own on loopback.

use std::{
    net::SocketAddr,
    path::Path,
    process::Command,
    sync::{Arc, Mutex},
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{Engine, engine::general_purpose::STANDARD};
use hmac::{Hmac, Mac};
use p256::{
    ecdsa::{Signature as EcSignature, SigningKey as EcSigningKey, signature::Signer},
    pkcs8::EncodePublicKey,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::{
    bounces::sent_to,
    deliver::{Backend, Stored, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
    web_api::{Server, client},
};

on_each_backend!(mailgun_events_are_signed_fresh_and_taken_once);

/// Three readers and a return path, so that each message goes out from its own VERP address.
const BOUNCES: &str = "concurrency = 2\n\n[bounces]\nreturn_path = \"bounces@example.org\"\n\n\
                       [selection]\nsend_when_empty = true\n";

/// An issue sent to reader0..2@example.org, now, through a real SMTP server.
fn sent(backend: Backend) -> (SmtpServer, Stored) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 3, &server.url(), BOUNCES);
    p.gazette(&["send", "--yes"]).ok();
    assert_eq!(server.messages().len(), 3, "the issue went out");
    (server, p)
}

/// Each reader's status, by address.
fn status(p: &Stored, email: &str) -> String {
    let all = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    let found = all["subscribers"].as_array().and_then(|s| s.iter().find(|s| s["email"] == email).cloned());
    found.map(|s| s["status"].as_str().unwrap_or_default().to_owned()).unwrap_or_else(|| panic!("{email}: {all:#}"))
}

fn statuses(p: &Stored) -> Vec<String> {
    (0..3).map(|i| status(p, &format!("reader{i}@example.org"))).collect()
}

async fn post(url: &str, headers: &[(&str, String)], body: Vec<u8>) -> (StatusCode, Value) {
    let mut request = client().post(url).header("content-type", "application/json").body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_secs()
}

const POSTMARK_AUTH: &str = "hook:postmark-pass-0123456789";

fn postmark_record(record_type: &str, kind: &str, id: u64, email: &str) -> Vec<u8> {
    json!({
        "RecordType": record_type, "ID": id, "Type": kind, "TypeCode": 1, "Email": email,
        "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483", "From": "weekly@example.org",
        "Description": "The server was unable to deliver your message",
        "Details": "smtp;550 5.1.1 The email account that you tried to reach does not exist",
        "Subject": "The Weekly Mirror", "BouncedAt": "2024-03-18T13:00:00Z"
    })
    .to_string()
    .into_bytes()
}

fn basic(user_password: &str) -> Vec<(&'static str, String)> {
    vec![("authorization", format!("Basic {}", STANDARD.encode(user_password)))]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postmark_bounces_and_complaints_need_the_basic_auth() {
    let (_smtp, p) = sent(Backend::Sqlite);
    let metrics_token = "metrics-token-for-webhook-tests-0123";
    let server = Server::start(
        &p,
        &[("GAZETTE_POSTMARK_WEBHOOK_AUTH", POSTMARK_AUTH), ("GAZETTE_METRICS_TOKEN", metrics_token)],
    );
    let url = server.url("/webhooks/postmark");
    let hard = postmark_record("Bounce", "HardBounce", 101, "reader0@example.org");

    for headers in [vec![], basic("hook:wrong-password"), basic("other:postmark-pass-0123456789")] {
        let (code, _) = post(&url, &headers, hard.clone()).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(statuses(&p), ["active", "active", "active"], "nothing changed without the right auth");

    let (code, body) = post(&url, &basic(POSTMARK_AUTH), hard.clone()).await;
    assert_eq!(code, StatusCode::OK, "{body}");
    assert_eq!(body["applied"], 1, "{body}");
    assert_eq!(body["events"][0], json!({ "kind": "hard", "applied": true, "note": null }));
    let (code, body) = post(&url, &basic(POSTMARK_AUTH), hard).await;
    assert_eq!(
        (code, body["events"][0]["note"].clone()),
        (StatusCode::OK, json!("read before")),
        "the same event twice"
    );

    let complaint = postmark_record("SpamComplaint", "SpamComplaint", 102, "reader1@example.org");
    let (code, body) = post(&url, &basic(POSTMARK_AUTH), complaint).await;
    assert_eq!((code, body["applied"].clone()), (StatusCode::OK, json!(1)), "{body}");
    let stranger = postmark_record("Bounce", "HardBounce", 103, "stranger@example.net");
    let (_, body) = post(&url, &basic(POSTMARK_AUTH), stranger).await;
    assert_eq!(body["events"][0]["note"], "no delivery of ours", "{body}");
    let auto = postmark_record("Bounce", "AutoResponder", 104, "reader2@example.org");
    let (_, body) = post(&url, &basic(POSTMARK_AUTH), auto).await;
    assert_eq!((body["applied"].clone(), body["ignored"].clone()), (json!(0), json!(1)), "{body}");
    assert_eq!(statuses(&p), ["bounced", "complained", "active"]);

    // An unknown provider and one without its secret look alike.
    for other in ["/webhooks/sparkpost", "/webhooks/mailgun", "/webhooks/sendgrid", "/webhooks/ses"] {
        let (code, _) = post(&server.url(other), &basic(POSTMARK_AUTH), b"{}".to_vec()).await;
        assert_eq!(code, StatusCode::NOT_FOUND, "{other}");
    }
    // A body over the webhooks' own limit is refused; one over the rest of the site's is not.
    let mut big = postmark_record("Bounce", "SoftBounce", 105, "reader2@example.org");
    big.truncate(big.len() - 1);
    big.extend(format!(",\"Content\":\"{}\"}}", "x".repeat(200 * 1024)).into_bytes());
    let (code, body) = post(&url, &basic(POSTMARK_AUTH), big).await;
    assert_eq!(code, StatusCode::OK, "200 KiB is a webhook body: {body}");
    assert_eq!(announced_body(&server, "/webhooks/postmark", 2 * 1024 * 1024), "HTTP/1.1 413 Payload Too Large");

    let metrics = client()
        .get(server.url("/metrics"))
        .bearer_auth(metrics_token)
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    for line in [
        "gazette_webhook_requests_total{provider=\"postmark\",outcome=\"unverified\"} 3",
        "gazette_webhook_requests_total{provider=\"mailgun\",outcome=\"not_found\"} 1",
        "gazette_webhook_events_total{provider=\"postmark\",outcome=\"applied\"} 3",
        "gazette_webhook_events_total{provider=\"postmark\",outcome=\"seen\"} 1",
        "gazette_webhook_events_total{provider=\"postmark\",outcome=\"unmatched\"} 1",
    ] {
        assert!(metrics.contains(line), "{line} in:\n{metrics}");
    }
    assert!(!metrics.contains("sparkpost"), "an unknown provider is no label");

    let log = server.log();
    for secret in ["postmark-pass-0123456789", "reader0@example.org", "reader1@example.org"] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
}

/// The status line the server answers to headers that announce a body of `length` bytes, none
/// of which is sent: a body over the limit is refused on its length alone, and a client that
/// wrote megabytes meanwhile could meet a closed connection instead of the answer.
fn announced_body(server: &Server, path: &str, length: usize) -> String {
    use std::io::{BufRead, BufReader, Write};
    let addr = server.base.trim_start_matches("http://");
    let mut tcp = std::net::TcpStream::connect(addr).expect("connect");
    let auth = basic(POSTMARK_AUTH).remove(0).1;
    write!(
        tcp,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n\
         Content-Length: {length}\r\n\r\n"
    )
    .expect("write");
    let mut line = String::new();
    BufReader::new(tcp).read_line(&mut line).expect("an answer");
    line.trim_end().to_owned()
}

const MAILGUN_KEY: &str = "key-mailgun-0123456789abcdef0123456789";

fn mailgun(key: &str, timestamp: u64, token: &str, event: Value) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("a key");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(token.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    json!({
        "signature": { "timestamp": timestamp.to_string(), "token": token, "signature": signature },
        "event-data": event
    })
    .to_string()
    .into_bytes()
}

fn failed(id: &str, recipient: &str, sender: &str, message_id: &str, subject: &str) -> Value {
    json!({
        "event": "failed", "id": id, "severity": "permanent", "reason": "bounce", "recipient": recipient,
        "envelope": { "sender": sender, "targets": recipient },
        "message": { "headers": { "to": recipient, "message-id": message_id.trim_matches(['<', '>']), "subject": subject } },
        "delivery-status": { "code": 550, "message": "5.1.1 no such user", "description": "" }
    })
}

fn mailgun_events_are_signed_fresh_and_taken_once(backend: Backend) {
    let (smtp, p) = sent(backend);
    let server = Server::start(&p, &[("GAZETTE_MAILGUN_SIGNING_KEY", MAILGUN_KEY)]);
    let url = server.url("/webhooks/mailgun");
    let (from0, id0) = sent_to(&smtp, "reader0@example.org");
    let (_, id1) = sent_to(&smtp, "reader1@example.org");
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    runtime.block_on(async {
        let now = unix_now();
        let bounce = failed("ev-1", "reader0@example.org", &from0, &id0, "The Weekly Mirror");
        let (code, _) =
            post(&url, &[], mailgun("key-someone-else-0123456789abcdef", now, "tok-1", bounce.clone())).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "a wrong signature");
        let (code, _) = post(&url, &[], mailgun(MAILGUN_KEY, now - 3600, "tok-2", bounce.clone())).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "an hour-old timestamp");
        assert_eq!(statuses(&p), ["active", "active", "active"]);

        let (code, body) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-3", bounce.clone())).await;
        assert_eq!((code, body["applied"].clone()), (StatusCode::OK, json!(1)), "{body}");
        let (code, _) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-3", bounce.clone())).await;
        assert_eq!(code, StatusCode::UNAUTHORIZED, "a replayed token");
        let (code, body) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-4", bounce)).await;
        assert_eq!((code, body["events"][0]["note"].clone()), (StatusCode::OK, json!("read before")));

        // A made-up VERP token beside a reader's address, and a test copy of the issue.
        let forged = failed("ev-2", "reader1@example.org", "bounces+d2-aaaaaaaaaaaaaaaa@example.org", &id1, "x");
        let (_, body) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-5", forged)).await;
        assert_eq!(body["events"][0]["note"], "forged return address", "{body}");
        let test_copy = failed("ev-3", "reader1@example.org", "weekly@example.org", &id1, "[Test] The Weekly Mirror");
        let (_, body) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-6", test_copy)).await;
        assert_eq!(body["events"][0]["note"], "a test copy", "{body}");
        let complaint = json!({ "event": "complained", "id": "ev-4", "recipient": "reader2@example.org" });
        let (_, body) = post(&url, &[], mailgun(MAILGUN_KEY, now, "tok-7", complaint)).await;
        assert_eq!(body["applied"], 1, "found by its address among the recent issues: {body}");
    });
    assert_eq!(statuses(&p), ["bounced", "active", "complained"]);
    assert!(!server.log().contains(MAILGUN_KEY));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendgrid_batches_are_verified_with_the_public_key() {
    let (smtp, p) = sent(Backend::Sqlite);
    let signing = EcSigningKey::from_slice(&[0x42; 32]).expect("a scalar");
    let public = STANDARD.encode(signing.verifying_key().to_public_key_der().expect("der").as_bytes());
    let server = Server::start(&p, &[("GAZETTE_SENDGRID_PUBLIC_KEY", public.as_str())]);
    let url = server.url("/webhooks/sendgrid");
    let (_, id0) = sent_to(&smtp, "reader0@example.org");
    let body = json!([
        { "email": "reader0@example.org", "timestamp": 1_700_000_000, "smtp-id": id0, "event": "bounce",
          "sg_event_id": "sg-1", "reason": "550 5.1.1 unknown recipient", "status": "5.1.1", "type": "bounce" },
        { "email": "reader1@example.org", "event": "spamreport", "sg_event_id": "sg-2" },
        { "email": "reader2@example.org", "event": "open", "sg_event_id": "sg-3" }
    ])
    .to_string()
    .into_bytes();
    let sign = |key: &EcSigningKey, timestamp: &str, body: &[u8]| {
        let signature: EcSignature = key.sign(&[timestamp.as_bytes(), body].concat());
        vec![
            ("x-twilio-email-event-webhook-signature", STANDARD.encode(signature.to_der())),
            ("x-twilio-email-event-webhook-timestamp", timestamp.to_owned()),
        ]
    };
    let stranger = EcSigningKey::from_slice(&[0x24; 32]).expect("a scalar");
    let (code, _) = post(&url, &sign(&stranger, "1700000000", &body), body.clone()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "another key's signature");
    let mut headers = sign(&signing, "1700000000", &body);
    headers[1].1 = "1700000001".into();
    let (code, _) = post(&url, &headers, body.clone()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "the timestamp is signed");
    let (code, _) = post(&url, &[], body.clone()).await;
    assert_eq!(code, StatusCode::UNAUTHORIZED, "no signature");
    assert_eq!(statuses(&p), ["active", "active", "active"]);

    let (code, answer) = post(&url, &sign(&signing, "1700000000", &body), body).await;
    assert_eq!(code, StatusCode::OK, "{answer}");
    assert_eq!((answer["applied"].clone(), answer["ignored"].clone()), (json!(2), json!(1)), "{answer}");
    assert_eq!(statuses(&p), ["bounced", "complained", "active"]);
}

// SES through SNS: a certificate server of the test's own, reached by name.

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:gazette-bounces";
const SNS_HOST: &str = "sns.us-east-1.amazonaws.com";

/// What the https server on loopback was asked for, by path and query.
type Requests = Arc<Mutex<Vec<String>>>;

/// Makes the CA, the server's certificate for [`SNS_HOST`] and the RSA certificate SNS signs
/// with, with the `openssl` command.
fn sns_certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl").args(args).current_dir(dir).output().expect("run openssl");
        assert!(out.status.success(), "openssl {args:?}:\n{}", String::from_utf8_lossy(&out.stderr));
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30"];
    run(&[&["req", "-x509"][..], &ec, &["-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=webhook test CA"]]
        .concat());
    run(&[
        &["req", "-x509"][..],
        &ec,
        &["-CA", "ca.pem", "-CAkey", "ca.key", "-keyout", "tls.key", "-out", "tls.pem", "-subj", "/CN=sns"],
        &["-addext", "subjectAltName=DNS:sns.us-east-1.amazonaws.com", "-addext", "basicConstraints=critical,CA:FALSE"],
        &["-addext", "extendedKeyUsage=serverAuth"],
    ]
    .concat());
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "30",
        "-keyout",
        "signing.key",
        "-out",
        "signing.pem",
        "-subj",
        "/CN=sns.amazonaws.com",
    ]);
}

/// Serves `signing.pem` at `/cert.pem` and answers 200 to anything else, over TLS on loopback.
async fn sns_server(dir: &Path) -> (SocketAddr, Requests) {
    use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    gazette::sources::install_crypto_provider();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("tls.pem")).expect("pem").collect::<Result<_, _>>().expect("certs");
    let key = PrivateKeyDer::from_pem_file(dir.join("tls.key")).expect("key");
    let config = rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).expect("tls");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let certificate = std::fs::read(dir.join("signing.pem")).expect("signing.pem");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let requests: Requests = Arc::default();
    let seen = Arc::clone(&requests);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, certificate, seen) = (acceptor.clone(), certificate.clone(), Arc::clone(&seen));
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned();
                let target = line.split(' ').nth(1).unwrap_or_default().to_owned();
                seen.lock().expect("lock").push(target.clone());
                let body = if target == "/cert.pem" { certificate } else { b"<ConfirmSubscriptionResponse/>".to_vec() };
                let head = format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(&body).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, requests)
}

/// An SNS message with every field, signed with `signing.key` (version 1: SHA-1, 2: SHA-256)
/// over SNS's canonical string.
fn sns_message(dir: &Path, version: u8, fields: &[(&str, &str)]) -> Value {
    use rsa::{
        RsaPrivateKey,
        pkcs1v15::SigningKey,
        pkcs8::DecodePrivateKey,
        signature::{SignatureEncoding, Signer as _},
    };
    let get = |k: &str| fields.iter().find(|(f, _)| *f == k).map(|(_, v)| *v);
    let order: &[&str] = if get("Type") == Some("Notification") {
        &["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    } else {
        &["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    };
    let canonical: String = order.iter().filter_map(|k| get(k).map(|v| format!("{k}\n{v}\n"))).collect();
    let pem = std::fs::read_to_string(dir.join("signing.key")).expect("signing.key");
    let key = RsaPrivateKey::from_pkcs8_pem(&pem).expect("an RSA key");
    let signature = match version {
        1 => SigningKey::<sha1::Sha1>::new(key).sign(canonical.as_bytes()).to_vec(),
        _ => SigningKey::<Sha256>::new(key).sign(canonical.as_bytes()).to_vec(),
    };
    let mut message: serde_json::Map<String, Value> =
        fields.iter().map(|(k, v)| ((*k).to_owned(), Value::String((*v).to_owned()))).collect();
    message.insert("SignatureVersion".into(), Value::String(version.to_string()));
    message.insert("Signature".into(), Value::String(STANDARD.encode(signature)));
    message.entry("SigningCertURL").or_insert_with(|| Value::String(format!("https://{SNS_HOST}/cert.pem")));
    Value::Object(message)
}

fn ses_notification(kind: &str, recipient: &str, source: &str, message_id: &str, feedback: &str) -> String {
    let mail = json!({
        "timestamp": "2024-03-18T12:59:00.000Z", "source": source, "messageId": "0100018e-ses-0001",
        "destination": [recipient],
        "commonHeaders": { "messageId": message_id, "subject": "The Weekly Mirror" }
    });
    match kind {
        "Complaint" => json!({
            "notificationType": "Complaint", "mail": mail,
            "complaint": { "complainedRecipients": [{ "emailAddress": recipient }], "feedbackId": feedback,
                           "complaintFeedbackType": "abuse", "timestamp": "2024-03-18T13:00:00.000Z" }
        }),
        _ => json!({
            "notificationType": "Bounce", "mail": mail,
            "bounce": { "bounceType": "Permanent", "bounceSubType": "General", "feedbackId": feedback,
                        "bouncedRecipients": [{ "emailAddress": recipient, "action": "failed", "status": "5.1.1",
                                                "diagnosticCode": "smtp; 550 5.1.1 user unknown" }],
                        "timestamp": "2024-03-18T13:00:00.000Z" }
        }),
    }
    .to_string()
}

/// The library's router on a loopback port over the publication's store, with webhooks for
/// SES whose https client trusts only the test's CA and finds SNS at `sns`.
async fn library_server(p: &Stored, dir: &Path, sns: SocketAddr) -> String {
    use gazette::{
        clock::{Clock, SystemClock},
        config::{Config, Environment, LinkSecret},
        deliver::{Outbox, Transport},
        publication::Publication,
        store::Store,
        web::{
            AppState,
            webhooks::{WebhookVars, Webhooks, sns_client_builder},
        },
    };
    use secrecy::ExposeSecret;

    let config = Config::load(&p.path().join("gazette.toml"), &Environment::default()).await.expect("config");
    let store = Store::open(config.storage.database_url.expose_secret()).await.expect("store");
    let publication = Publication::open(config, LinkSecret::from_bytes(b"test-secret-0123456789abcdef".to_vec()))
        .await
        .expect("open");
    let outbox = Outbox::open(&dir.join("outbox")).await.expect("outbox");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(Arc::new(publication), store, Arc::new(Transport::outbox(outbox, None)), clock)
        .await
        .expect("state");
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.join("ca.pem")).expect("ca.pem")).expect("ca");
    let sns_client = sns_client_builder().resolve(SNS_HOST, sns).tls_certs_only([ca]).build().expect("client");
    let vars = WebhookVars { ses_topic_arns: Some(TOPIC.to_owned()), ..WebhookVars::default() };
    let state = state.with_webhooks(Webhooks::new(vars, sns_client).expect("webhooks"));
    let listener = gazette::web::server::bind("127.0.0.1:0".parse().expect("addr")).await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(gazette::web::serve(state, listener, std::future::pending()));
    format!("http://{addr}/webhooks/ses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ses_notifications_are_verified_by_the_certificate_sns_serves() {
    let (smtp, p) = sent(Backend::Sqlite);
    let dir = tempfile::tempdir().expect("tempdir");
    sns_certificates(dir.path());
    let (sns, requests) = sns_server(dir.path()).await;
    let url = library_server(&p, dir.path(), sns).await;
    let d = dir.path();
    let asked = || requests.lock().expect("lock").clone();
    let send = |message: Value| {
        let url = url.clone();
        async move { post(&url, &[], message.to_string().into_bytes()).await }
    };

    // A subscription is confirmed by fetching its SubscribeURL.
    let subscribe = format!("https://{SNS_HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=tok-sub");
    let confirmation = sns_message(
        d,
        1,
        &[
            ("Type", "SubscriptionConfirmation"),
            ("MessageId", "sub-1"),
            ("Token", "tok-sub"),
            ("TopicArn", TOPIC),
            ("Message", "You have chosen to subscribe to the topic."),
            ("SubscribeURL", &subscribe),
            ("Timestamp", "2024-03-18T12:00:00.000Z"),
        ],
    );
    let (code, body) = send(confirmation).await;
    assert_eq!((code, body.clone()), (StatusCode::OK, json!({ "subscribed": true })), "{body}");
    assert_eq!(asked(), ["/cert.pem", &subscribe[subscribe.find("/?").expect("query")..]]);

    let (from0, id0) = sent_to(&smtp, "reader0@example.org");
    let (_, id1) = sent_to(&smtp, "reader1@example.org");
    let notification = |version: u8, id: &str, message: &str| {
        sns_message(
            d,
            version,
            &[
                ("Type", "Notification"),
                ("MessageId", id),
                ("TopicArn", TOPIC),
                ("Message", message),
                ("Timestamp", "2024-03-18T13:00:01.000Z"),
            ],
        )
    };
    let bounce = ses_notification("Bounce", "reader0@example.org", &from0, &id0, "fb-1");

    // A signature over other words, another topic, and certificates from elsewhere: refused, and
    // nothing fetched.
    let mut tampered = notification(2, "n-0", &bounce);
    tampered["Message"] = Value::String(bounce.replace("fb-1", "fb-9"));
    assert_eq!(send(tampered).await.0, StatusCode::UNAUTHORIZED);
    let mut other_topic = notification(2, "n-0", &bounce);
    other_topic["TopicArn"] = json!("arn:aws:sns:us-east-1:999999999999:theirs");
    assert_eq!(send(other_topic).await.0, StatusCode::UNAUTHORIZED);
    for elsewhere in [
        "https://evil.example/cert.pem",
        "http://sns.us-east-1.amazonaws.com/other.pem",
        "https://sns.us-east-1.amazonaws.com.evil.example/other.pem",
    ] {
        let mut m = notification(2, "n-0", &bounce);
        m["SigningCertURL"] = json!(elsewhere);
        assert_eq!(send(m).await.0, StatusCode::UNAUTHORIZED, "{elsewhere}");
    }
    assert_eq!(asked().len(), 2, "nothing more was fetched: {:?}", asked());
    assert_eq!(statuses(&p), ["active", "active", "active"]);

    // Signed by the certificate SNS serves, in either version: applied, the certificate
    // fetched once.
    let (code, body) = send(notification(2, "n-1", &bounce)).await;
    assert_eq!((code, body["applied"].clone()), (StatusCode::OK, json!(1)), "{body}");
    let complaint = ses_notification("Complaint", "reader1@example.org", "weekly@example.org", &id1, "fb-2");
    let (code, body) = send(notification(1, "n-2", &complaint)).await;
    assert_eq!((code, body["applied"].clone()), (StatusCode::OK, json!(1)), "{body}");
    let (_, body) = send(notification(2, "n-3", &bounce)).await;
    assert_eq!(body["events"][0]["note"], "read before", "{body}");
    assert_eq!(asked().iter().filter(|a| *a == "/cert.pem").count(), 1, "kept by URL: {:?}", asked());
    assert_eq!(statuses(&p), ["bounced", "complained", "active"]);
}

#[test]
fn a_webhook_secret_that_cannot_be_used_stops_serve_naming_its_variable() {
    let p = crate::support::Publication::sample();
    for (variable, value) in [
        ("GAZETTE_SENDGRID_PUBLIC_KEY", "c2VjcmV0LWJ1dC1ub3QtYS1rZXk="),
        ("GAZETTE_POSTMARK_WEBHOOK_AUTH", "no-colon-secret"),
        ("GAZETTE_SES_TOPIC_ARN", "my-topic-secret"),
    ] {
        let run = p.gazette_with(&["serve", "--listen", "127.0.0.1:0"], &[(variable, value)]);
        assert_eq!(run.code(), 2, "{variable}: {}", run.stderr());
        assert!(run.stderr().contains(variable), "{}", run.stderr());
        assert!(!run.stderr().contains(value), "the value was printed: {}", run.stderr());
    }
}
