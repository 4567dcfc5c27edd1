//! The guard on what comes back, through the binary: an issue to 1,000 readers where the server
//! accepts every message and 8% of them bounce a moment later (the test server writes each DSN
//! to the message's return address, into a Maildir, as a remote server would), while the
//! bounces are read as they arrive, as an MTA piping them would. With `max_bounce_rate = "5%"`
//! the issue ends `paused` with a note saying why, the rest stays queued, nothing new goes out,
//! and `issues resume` sends the rest, each reader once.

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    deliver::{AS_OF, Backend, by_recipient, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
    support::Publication,
};

on_each_backend!(an_issue_whose_bounces_pass_the_limit_is_paused_until_a_person_resumes_it);

const READERS: usize = 1000;

/// Reader `i`'s address: two in every 25 (8%) are addresses the next hop does not know.
fn address(i: usize) -> String {
    if i % 25 < 2 { format!("gone{i}@example.org") } else { format!("reader{i}@example.org") }
}

fn issue(p: &Publication) -> Value {
    p.gazette(&["issues", "show", "1", "--json"]).ok().json()
}

fn an_issue_whose_bounces_pass_the_limit_is_paused_until_a_person_resumes_it(backend: Backend) {
    let returned = tempfile::tempdir().expect("tmp");
    let maildir = returned.path().join("bounces");
    let server = SmtpServer::start(Options::default().bounce_later("gone", &maildir));
    // Slow enough that bounces come back while it sends, as they do for a large list.
    let p = publication_on(
        backend,
        0,
        &server.url(),
        "concurrency = 2\nrate = \"150/s\"\n\n[bounces]\nreturn_path = \"bounces@example.org\"\n\
         max_bounce_rate = \"5%\"\n\n[selection]\nsend_when_empty = true\n",
    );
    let mut csv = String::from("email,name\n");
    for i in 0..READERS {
        csv.push_str(&format!("{},Reader {i}\n", address(i)));
    }
    p.write("subscribers/weekly.csv", &csv);

    let mut send = p
        .command(&["send", "--yes", "--as-of", AS_OF])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("gazette send");
    // The bounces are read as they come back, until the send ends.
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut applied = 0;
    while send.try_wait().expect("send").is_none() {
        assert!(Instant::now() < deadline, "the send did not end");
        if maildir.join("new").is_dir() {
            let doc = p.gazette(&["bounces", "ingest", maildir.to_str().expect("utf-8"), "--json"]).ok().json();
            let lines = doc["messages"].as_array().cloned().unwrap_or_default();
            applied += lines.iter().filter(|m| m["applied"] == true).count();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = send.wait_with_output().expect("send");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "a paused issue is work that could not finish: {stderr}");
    assert!(
        stderr.contains("issue #1 is paused")
            && stderr.contains("max_bounce_rate 5%")
            && stderr.contains("issues resume 1"),
        "the publisher is told why and what to do: {stderr}"
    );

    let doc = issue(&p);
    let c = &doc["counts"];
    let (sent, queued) = (c["sent"].as_u64().expect("sent"), c["queued"].as_u64().expect("queued"));
    assert_eq!(doc["status"], "paused", "{doc:#}");
    let note = doc["note"].as_str().unwrap_or_default();
    assert!(note.contains("bounced hard") && note.contains("past max_bounce_rate 5%"), "{note}");
    let shown = p.gazette(&["issues", "show", "1"]).ok().stdout();
    assert!(shown.contains("paused") && shown.contains(note), "the table says why too: {shown}");
    assert!(sent >= 200, "no rate is judged before 200 went out: {sent} sent");
    assert!(queued > 0 && sent + queued == READERS as u64, "the rest waits, queued: {c:#}");
    assert!(applied > 10, "{applied} bounces applied while sending");
    assert_eq!(server.accepted() as u64, sent, "nothing past the ledger went out");

    // Nothing new goes out while it is paused: not the rest, not a new issue.
    let again = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(again.code(), 1, "{}", again.stderr());
    assert!(again.stderr().contains("issue #1 is paused"), "{}", again.stderr());
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(server.accepted() as u64, sent, "a paused issue sends nothing");
    let listed = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(listed["issues"].as_array().map(Vec::len), Some(1), "{listed:#}");

    // A person resumes it; the bounces are no longer read, so its fresh rate stays clean.
    let resumed = p.gazette(&["issues", "resume", "1", "--json"]);
    assert_eq!(resumed.code(), 0, "{}", resumed.stderr());
    let doc = issue(&p);
    assert_eq!(doc["status"], "sent", "{doc:#}");
    assert_eq!(doc["note"], Value::Null);
    let got = by_recipient(&server);
    assert_eq!(got.len(), READERS, "every reader reached");
    assert!(got.values().all(|n| *n == 1), "each reader once");
}
