//! What the log may hold: at `trace`, the most it can say, a send over SMTP with a login and a
//! web sign-up leave no subscriber's address, no token and no password in it, whether gazette
//! or a library it uses would have written them (lettre traces every SMTP command, html5ever
//! walks the confirmation mail). `GAZETTE_LOG_FORMAT=json` makes every line a JSON object.

use std::time::{Duration, Instant};

use base64::Engine as _;

use crate::{
    deliver::{AS_OF, publication},
    smtp::{Options, SmtpServer},
    web::{WebServer, client},
};

const USER: &str = "mailer";
const PASSWORD: &str = "s3cret pass";

/// What must never appear in a log: the password as typed, percent-encoded and in the AUTH
/// PLAIN and LOGIN forms.
fn secrets() -> Vec<String> {
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    vec![PASSWORD.to_owned(), "s3cret%20pass".to_owned(), b64(&format!("\0{USER}\0{PASSWORD}")), b64(PASSWORD)]
}

fn assert_clean(log: &str, addresses: &[&str], tokens: &[String]) {
    for secret in secrets() {
        assert!(!log.contains(&secret), "the log holds the SMTP password ({secret:?}):\n{log}");
    }
    for a in addresses {
        assert!(!log.contains(a), "the log holds the address {a}:\n{log}");
    }
    for t in tokens {
        assert!(!log.contains(t.as_str()), "the log holds a live token {t}:\n{log}");
    }
}

#[test]
fn a_send_with_a_login_logs_no_address_and_no_password_at_trace() {
    for format in ["text", "json"] {
        let server = SmtpServer::start(Options::default().auth(USER, PASSWORD).self_signed_tls().require_tls());
        let ca = server.tls_files().expect("tls").ca().display().to_string();
        let url = server.url().replace("127.0.0.1", "localhost");
        let p = publication(3, &url, &format!("ca_file = {ca:?}"));
        let run = p.gazette_with(
            &["send", "--as-of", AS_OF, "--yes"],
            &[("GAZETTE_LOG", "trace"), ("GAZETTE_LOG_FORMAT", format)],
        );
        assert_eq!(run.code(), 0, "{}", run.stderr());
        let log = run.stderr();
        // The log is on: gazette's own events at trace show, so a clean log means something.
        assert!(log.contains("delivering"), "{format}: no event was logged:\n{log}");
        let tokens: Vec<String> = server
            .messages()
            .iter()
            .filter_map(|m| {
                let html = m.parsed().body_html(0)?.into_owned();
                let at = html.find("/unsubscribe/")?;
                Some(html[at + 13..].split(['"', '<']).next()?.to_owned())
            })
            .collect();
        assert_eq!(tokens.len(), 3, "every message carries an unsubscribe token");
        assert_clean(&log, &["reader0@example.org", "reader1@example.org", "reader2@example.org"], &tokens);
        if format == "json" {
            for line in log.lines() {
                let v: serde_json::Value =
                    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
                assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
            }
        } else {
            assert!(!log.contains('\u{1b}'), "colours in a log that is not a terminal:\n{log}");
        }
    }
}

#[tokio::test]
async fn a_web_sign_up_logs_no_address_and_no_token_at_trace() {
    let smtp = SmtpServer::start(Options::default().auth(USER, PASSWORD));
    let p = crate::web::publication(Some(&smtp), "subscribe_rate = \"100/m\"");
    let mut server = WebServer::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], &[("GAZETTE_LOG", "trace")]);
    let http = client();
    let r = http
        .post(server.url("/subscribe"))
        .form(&[("email", "Secret.Reader@example.org"), ("name", "Hidden Name")])
        .send()
        .await
        .expect("post");
    assert!(r.status().is_success(), "{}", r.status());
    let deadline = Instant::now() + Duration::from_secs(20);
    while smtp.messages().is_empty() {
        assert!(Instant::now() < deadline, "no confirmation mail:\n{}", server.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mail = smtp.messages()[0].parsed().body_text(0).expect("text").into_owned();
    let link = crate::web::link_in(&mail, &format!("{}/confirm/", crate::web::BASE));
    let token = link.rsplit('/').next().expect("token").to_owned();
    // Confirming writes its own log lines.
    let page = http.post(server.local(&link)).send().await.expect("confirm");
    assert!(page.status().is_success(), "{}", page.status());
    assert!(server.stop().success());
    let log = server.log();
    assert!(log.contains("web email sent") && log.contains("subscription confirmed"), "the log is on:\n{log}");
    assert_clean(&log, &["Secret.Reader@example.org", "secret.reader@example.org", "Hidden Name"], &[token]);
}
