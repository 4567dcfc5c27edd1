//! A long list queued while its issue goes out: `gazette send` SIGKILLed while readers are still
//! being queued, then run again, which takes the queueing up where it stopped. Every reader gets
//! the issue, none twice beyond the one message a sender may have had in flight at the kill, and
//! the issue ends sent. On each backend.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    deliver::{AS_OF, Backend, by_recipient, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
};

on_each_backend!(killed_while_its_readers_are_queued_and_sent_again_every_reader_gets_one_copy);

fn killed_while_its_readers_are_queued_and_sent_again_every_reader_gets_one_copy(backend: Backend) {
    let n = 3000;
    let server = SmtpServer::start(Options::default());
    // Small chunks and one sender: the queueing is far from done when the first message arrives,
    // and a kill leaves at most one message sent but not recorded.
    let p = publication_on(backend, n, &server.url(), "concurrency = 1\nlease = \"2s\"\nqueue_chunk = 10");
    let mut child = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .args(["send", "--as-of", AS_OF, "--yes"])
        .env_remove("DATABASE_URL")
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gazette");
    let deadline = Instant::now() + Duration::from_secs(60);
    while server.messages().is_empty() {
        assert!(Instant::now() < deadline, "no message arrived");
        assert!(child.try_wait().expect("wait").is_none(), "the send ended before it was killed");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");

    let doc = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    let c = &doc["counts"];
    let in_ledger: u64 = ["queued", "sent", "deferred", "failed", "skipped"].iter().filter_map(|k| c[k].as_u64()).sum();
    assert!(in_ledger < n as u64, "the kill came after every reader was queued: {doc:#}");
    assert_eq!(doc["status"], "sending");

    let run = p.gazette(&["send", "--as-of", AS_OF, "--yes", "--json"]).ok().json();
    assert_eq!(run["status"], "sent", "{run:#}");
    assert_eq!(run["counts"]["sent"], n as u64, "{run:#}");
    assert!(run["first_message_seconds"].as_f64().is_some(), "{run:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), n, "every reader got the issue");
    let twice: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(twice.len() <= 1 && twice.iter().all(|(_, c)| **c == 2), "more than the one in flight: {twice:?}");
}
