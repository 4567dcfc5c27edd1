//! Bounces and complaints through the real binary: an issue sent to a real SMTP server on loopback
//! with `[bounces] return_path`, each message's envelope sender taken from what the server
//! received, reports written back to those addresses and read by `gazette bounces ingest` (as
//! files, on stdin as an MTA pipes them, in a Maildir, in an mbox), and what that did to the
//! readers, the issue and the record. Each test runs on both stores, as `deliver.rs`'s do.

use std::{io::Write, process::Stdio, time::Duration};

use serde_json::Value;

use crate::{
    deliver::{AS_OF, Backend, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
    support::{Publication, fixture},
};

on_each_backend!(
    each_message_goes_out_from_its_own_return_address_and_its_bounces_come_home,
    forged_return_addresses_test_copies_and_strangers_change_nothing,
);

/// `[bounces]` for a publication of `deliver::publication`.
const BOUNCES: &str = "concurrency = 2\n\n[bounces]\nreturn_path = \"bounces@example.org\"\n";

/// The envelope sender the server received for `rcpt`'s message, and its Message-ID.
pub fn sent_to(server: &SmtpServer, rcpt: &str) -> (String, String) {
    let m = server
        .messages()
        .into_iter()
        .find(|m| m.rcpt_tos.iter().any(|r| r == rcpt))
        .unwrap_or_else(|| panic!("nothing went to {rcpt}"));
    (m.mail_from.clone(), m.message_id.clone().expect("a Message-ID"))
}

/// A DSN as Postfix writes one, about `rcpt`, sent to `to`, quoting `message_id`.
pub fn dsn(to: &str, rcpt: &str, message_id: &str, status: &str, id: &str) -> String {
    format!(
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n\
         To: {to}\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 18 Mar 2024 13:00:09 +0000\r\n\
         Message-Id: <{id}@mx.example.net>\r\n\
         Auto-Submitted: auto-replied\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         <{rcpt}>: host mx.example.net said: 550 {status} no such user\r\n\
         \r\n\
         --B\r\n\
         Content-Type: message/delivery-status\r\n\
         \r\n\
         Reporting-MTA: dns; mx.example.net\r\n\
         \r\n\
         Final-Recipient: rfc822; {rcpt}\r\n\
         Action: failed\r\n\
         Status: {status}\r\n\
         Diagnostic-Code: smtp; 550 {status} <{rcpt}>: no such user\r\n\
         \r\n\
         --B\r\n\
         Content-Type: text/rfc822-headers\r\n\
         \r\n\
         From: \"The Weekly Mirror\" <weekly@example.org>\r\n\
         To: {rcpt}\r\n\
         Subject: The Weekly Mirror: 16 March 2024\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         --B--\r\n"
    )
}

/// An ARF abuse report of the message that went out from `envelope_from`, sent to the
/// publisher's feedback-loop address (not to the return address).
fn complaint(envelope_from: &str, rcpt: &str, message_id: &str) -> String {
    format!(
        "From: <feedback@fbl.example.com>\r\n\
         To: <fbl@example.org>\r\n\
         Subject: FW: The Weekly Mirror: 16 March 2024\r\n\
         Message-ID: <arf-1@fbl.example.com>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"F\"\r\n\
         \r\n\
         --F\r\n\
         Content-Type: text/plain\r\n\
         \r\n\
         This is an email abuse report.\r\n\
         \r\n\
         --F\r\n\
         Content-Type: message/feedback-report\r\n\
         \r\n\
         Feedback-Type: abuse\r\n\
         User-Agent: ExampleFBL/1.2\r\n\
         Version: 1\r\n\
         Original-Mail-From: <{envelope_from}>\r\n\
         Original-Rcpt-To: <{rcpt}>\r\n\
         \r\n\
         --F\r\n\
         Content-Type: message/rfc822\r\n\
         \r\n\
         From: \"The Weekly Mirror\" <weekly@example.org>\r\n\
         To: <{rcpt}>\r\n\
         Subject: The Weekly Mirror: 16 March 2024\r\n\
         Message-ID: {message_id}\r\n\
         \r\n\
         The Weekly Mirror.\r\n\
         \r\n\
         --F--\r\n"
    )
}

fn subscriber(p: &Publication, email: &str) -> Value {
    let all = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    all["subscribers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["email"] == email).cloned())
        .unwrap_or_else(|| panic!("{email} is no subscriber: {all:#}"))
}

fn counts(p: &Publication) -> Value {
    p.gazette(&["issues", "show", "1", "--json"]).ok().json()["counts"].clone()
}

/// `bounces ingest` of one file; its one message's line of the document.
fn ingest(p: &Publication, name: &str, text: &str) -> Value {
    let file = p.write(name, text);
    let doc = p.gazette(&["bounces", "ingest", file.to_str().expect("utf-8"), "--json"]).ok().json();
    assert_eq!(doc["messages"].as_array().map(Vec::len), Some(1), "{doc:#}");
    doc["messages"][0].clone()
}

fn each_message_goes_out_from_its_own_return_address_and_its_bounces_come_home(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 3, &server.url(), &format!("{BOUNCES}\n[selection]\nsend_when_empty = true\n"));
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let senders: std::collections::HashSet<String> = server.messages().into_iter().map(|m| m.mail_from).collect();
    assert_eq!(senders.len(), 3, "one return address per message: {senders:?}");
    for s in &senders {
        let (local, domain) = s.split_once('@').expect("an address");
        assert_eq!(domain, "example.org");
        assert!(local.starts_with("bounces+d") && local.len() <= 64, "{s}");
        assert_eq!(local, local.to_ascii_lowercase(), "nothing a server could fold: {s}");
    }
    for m in server.messages() {
        let from = m.parsed().from().and_then(|a| a.first()).and_then(|a| a.address()).map(str::to_owned);
        assert_eq!(from.as_deref(), Some("weekly@example.org"), "the From header stays the publication's");
    }

    // A hard bounce to reader0's return address: reader0 bounced, the issue counts it.
    let (verp0, id0) = sent_to(&server, "reader0@example.org");
    let hard = dsn(&verp0, "reader0@example.org", &id0, "5.1.1", "hard-0");
    let line = ingest(&p, "hard.eml", &hard);
    assert_eq!(line["kind"], "hard", "{line:#}");
    assert_eq!(line["email"], "reader0@example.org");
    assert_eq!(line["issue"], 1);
    assert_eq!(line["status"], "5.1.1");
    assert!(line["diagnostic"].as_str().is_some_and(|d| d.starts_with("550 5.1.1")), "{line:#}");
    assert_eq!(line["applied"], true);
    assert!(line["source"].as_str().is_some_and(|s| s.ends_with("hard.eml")), "{line:#}");
    assert_eq!(subscriber(&p, "reader0@example.org")["status"], "bounced");
    let c = counts(&p);
    assert_eq!((c["sent"].as_u64(), c["bounced"].as_u64(), c["complained"].as_u64()), (Some(3), Some(1), Some(0)));

    // The same report again: recognised, and nothing changes.
    let again = ingest(&p, "hard-again.eml", &hard);
    assert_eq!((again["applied"].clone(), again["email"].clone()), (Value::Bool(false), "reader0@example.org".into()));
    assert_eq!(counts(&p), c);
    let listed = p.gazette(&["bounces", "list", "--json"]).ok().json();
    assert_eq!(listed["bounces"].as_array().map(Vec::len), Some(1), "{listed:#}");
    let b = &listed["bounces"][0];
    for key in ["email", "issue", "kind", "status", "diagnostic", "at"] {
        assert!(b.get(key).is_some(), "{key} in {b:#}");
    }
    assert_eq!(
        (b["email"].as_str(), b["issue"].as_u64(), b["kind"].as_str()),
        (Some("reader0@example.org"), Some(1), Some("hard"))
    );

    // A soft bounce piped on stdin, its return address only in the pipe's environment.
    let (verp1, id1) = sent_to(&server, "reader1@example.org");
    let soft = dsn("bounces@example.org", "reader1@example.org", &id1, "4.2.2", "soft-1")
        .replace("Action: failed", "Action: delayed");
    let mut child = p
        .command(&["bounces", "ingest", "-", "--json"])
        .env("ORIGINAL_RECIPIENT", &verp1)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gazette");
    child.stdin.take().expect("stdin").write_all(soft.as_bytes()).expect("pipe");
    let out = child.wait_with_output().expect("gazette");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let doc: Value = serde_json::from_slice(&out.stdout).expect("json");
    let line = &doc["messages"][0];
    assert_eq!(
        (line["source"].as_str(), line["kind"].as_str(), line["applied"].as_bool()),
        (Some("-"), Some("soft"), Some(true)),
        "{doc:#}"
    );
    assert_eq!(line["email"], "reader1@example.org");
    assert_eq!(subscriber(&p, "reader1@example.org")["status"], "active", "one soft bounce is not enough");

    // A complaint, sent to the feedback-loop address, found by the envelope sender it quotes.
    let (verp2, id2) = sent_to(&server, "reader2@example.org");
    let line = ingest(&p, "arf.eml", &complaint(&verp2, "reader2@example.org", &id2));
    assert_eq!(
        (line["kind"].as_str(), line["email"].as_str(), line["applied"].as_bool()),
        (Some("complaint"), Some("reader2@example.org"), Some(true)),
        "{line:#}"
    );
    let reader2 = subscriber(&p, "reader2@example.org");
    assert_eq!(reader2["status"], "complained");
    assert_eq!(reader2["lists"], Value::Array(vec![]), "off every list");
    let c = counts(&p);
    assert_eq!((c["bounced"].as_u64(), c["complained"].as_u64()), (Some(2), Some(1)), "{c:#}");
    let complaints = p.gazette(&["bounces", "list", "--kind", "complaint", "--json"]).ok().json();
    assert_eq!(complaints["bounces"].as_array().map(Vec::len), Some(1), "{complaints:#}");
    let human = p.gazette(&["bounces", "list", "--issue", "1"]).ok().stdout();
    assert!(human.contains("reader0@example.org") && human.contains("complaint"), "{human}");

    // The next issue goes to nobody who bounced or complained, list file or not.
    let later = "2024-03-23T12:00:00-04:00";
    p.gazette(&["send", "--yes", "--as-of", later]).ok();
    let second: Vec<String> = server.messages().into_iter().skip(3).flat_map(|m| m.rcpt_tos).collect();
    assert_eq!(second, ["reader1@example.org"], "{second:?}");
}

fn forged_return_addresses_test_copies_and_strangers_change_nothing(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 2, &server.url(), BOUNCES);

    // A test copy goes out from a return address of its own; its bounce changes nothing.
    p.gazette(&["send", "--as-of", AS_OF, "--to", "reader0@example.org"]).ok();
    let test = server.wait_for(1, Duration::from_secs(5));
    assert!(test[0].mail_from.starts_with("bounces+t"), "{}", test[0].mail_from);
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let line = ingest(&p, "test.eml", &dsn(&test[0].mail_from, "reader0@example.org", "<x@example.org>", "5.1.1", "t"));
    assert_eq!(
        (line["applied"].as_bool(), line["issue"].as_u64(), line["email"].clone()),
        (Some(false), Some(1), Value::Null),
        "{line:#}"
    );
    assert_eq!(subscriber(&p, "reader0@example.org")["status"], "active");

    // A forged token, beside the real recipient and the real Message-ID: nothing is looked up.
    let (verp, id) = sent_to(&server, "reader1@example.org");
    let (local, domain) = verp.split_once('@').expect("address");
    let last = local.chars().last().expect("a token");
    let forged = format!("{}{}@{domain}", &local[..local.len() - 1], if last == 'a' { 'b' } else { 'a' });
    let line = ingest(&p, "forged.eml", &dsn(&forged, "reader1@example.org", &id, "5.1.1", "f"));
    assert_eq!(
        (line["applied"].as_bool(), line["email"].clone(), line["kind"].as_str()),
        (Some(false), Value::Null, Some("hard")),
        "{line:#}"
    );
    assert_eq!(subscriber(&p, "reader1@example.org")["status"], "active");

    // A stranger's bounce, an mbox of samples signed with no key of ours, a Maildir: nothing.
    let stranger = dsn("bounces@example.org", "nobody@example.net", "<y@example.org>", "5.1.1", "s");
    let line = ingest(&p, "stranger.eml", &stranger);
    assert_eq!(line["applied"], false, "{line:#}");
    let mbox = fixture("bounces/two.mbox");
    let doc = p.gazette(&["bounces", "ingest", mbox.to_str().expect("utf-8"), "--json"]).ok().json();
    let kinds: Vec<&str> =
        doc["messages"].as_array().expect("messages").iter().filter_map(|m| m["kind"].as_str()).collect();
    assert_eq!(kinds, ["hard", "complaint"], "{doc:#}");
    assert!(doc["messages"].as_array().expect("messages").iter().all(|m| m["applied"] == false), "{doc:#}");
    assert!(doc["messages"][1]["source"].as_str().is_some_and(|s| s.ends_with("two.mbox#2")), "{doc:#}");

    let maildir = p.path().join("Maildir");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(maildir.join(sub)).expect("mkdir");
    }
    std::fs::copy(fixture("bounces/vacation.eml"), maildir.join("new/1.vacation")).expect("copy");
    std::fs::write(maildir.join("new/2.stranger"), &stranger).expect("write");
    let doc = p.gazette(&["bounces", "ingest", maildir.to_str().expect("utf-8"), "--json"]).ok().json();
    let kinds: Vec<&str> =
        doc["messages"].as_array().expect("messages").iter().filter_map(|m| m["kind"].as_str()).collect();
    assert_eq!(kinds, ["auto_reply", "hard"], "{doc:#}");
    assert!(
        maildir.join("cur/1.vacation:2,S").is_file() && maildir.join("cur/2.stranger:2,S").is_file(),
        "read ones move to cur/"
    );
    assert_eq!(std::fs::read_dir(maildir.join("new")).expect("new").count(), 0);

    let c = counts(&p);
    assert_eq!((c["bounced"].as_u64(), c["complained"].as_u64()), (Some(0), Some(0)), "{c:#}");
    let listed = p.gazette(&["bounces", "list", "--json"]).ok().json();
    assert_eq!(listed["bounces"], Value::Array(vec![]), "nothing recorded");

    // A path that is not there changes nothing and says which.
    let run = p.gazette(&["bounces", "ingest", "missing.eml", "--json"]);
    assert_eq!(run.code(), 2, "{}", run.stdout());
    assert!(run.json()["error"]["message"].as_str().is_some_and(|m| m.contains("missing.eml")));
}

/// Without an SMTP server, the outbox shows each message's envelope sender as the `Return-Path`
/// a mail server would write at delivery: the VERP return address of its delivery.
#[test]
fn the_outbox_records_each_message_s_return_address() {
    let p = crate::deliver::publication(
        2,
        "smtp://127.0.0.1:1",
        &format!("{BOUNCES}\n[selection]\nsend_when_empty = true\n"),
    );
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("transport = \"smtp\"", "transport = \"outbox\""));
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let mut senders = Vec::new();
    for f in std::fs::read_dir(p.path().join("outbox/new")).expect("the outbox") {
        let raw = std::fs::read(f.expect("a message").path()).expect("a message");
        let message = mail_parser::MessageParser::default().parse(&raw).expect("a message");
        senders.push(message.return_path().as_text().map(str::to_owned).expect("a Return-Path"));
    }
    senders.sort();
    senders.dedup();
    assert_eq!(senders.len(), 2, "one return address per message: {senders:?}");
    assert!(senders.iter().all(|s| s.starts_with("bounces+d") && s.ends_with("@example.org")), "{senders:?}");
}
