//! Crashes and races: `gazette send` SIGKILLed at random moments and resumed, and two `send`
//! processes on one store at once. Every subscriber ends with a copy; duplicates never exceed
//! what was in flight at a kill; two processes never send the same pair. Both on each backend.

use std::{
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    deliver::{AS_OF, Backend, by_recipient, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
    support::Publication,
};

const CONCURRENCY: usize = 8;

fn spawn_send(p: &Publication) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .args(["send", "--as-of", AS_OF, "--yes"])
        // The config names the store.
        .env_remove("DATABASE_URL")
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gazette")
}

on_each_backend!(
    killed_at_random_moments_and_resumed_every_subscriber_gets_the_issue,
    two_processes_on_one_store_never_send_the_same_pair,
);

fn killed_at_random_moments_and_resumed_every_subscriber_gets_the_issue(backend: Backend) {
    let n = 1500;
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, n, &server.url(), &format!("concurrency = {CONCURRENCY}\nlease = \"2s\""));
    let mut kills = 0;
    let started = Instant::now();
    loop {
        let mut child = spawn_send(&p);
        let before = server.messages().len();
        // Kill somewhere between a little and a lot of progress, unless it finishes first.
        let wait = Duration::from_millis(150 + rand::random::<u64>() % 900);
        let deadline = Instant::now() + wait;
        let mut finished = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                finished = Some(status);
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if finished.is_none() && kills < 6 {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            kills += 1;
            eprintln!("kill {kills}: {} messages had arrived", server.messages().len() - before);
            continue;
        }
        let status = match finished {
            Some(s) => s,
            None => child.wait().expect("wait"),
        };
        if !status.success() {
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = std::io::Read::read_to_string(&mut e, &mut err);
            }
            panic!("the last run failed ({status}):\n{err}");
        }
        break;
    }
    assert!(started.elapsed() < Duration::from_secs(240));
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), n, "every subscriber got the issue");
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!("{kills} kills, {duplicates} duplicates");
    assert!(kills > 0, "the test killed nothing");
    assert!(duplicates <= CONCURRENCY * kills, "{duplicates} duplicates after {kills} kills");
    let doc = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], n as u64, "{doc:#}");
    assert_eq!(doc["status"], "sent");
}

fn two_processes_on_one_store_never_send_the_same_pair(backend: Backend) {
    let n = 600;
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, n, &server.url(), "concurrency = 4");
    let a = spawn_send(&p);
    let b = spawn_send(&p);
    for mut child in [a, b] {
        let status = child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            use std::io::Read;
            let _ = e.read_to_string(&mut err);
        }
        assert!(status.success(), "a send failed: {err}");
    }
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), n);
    let duplicates: Vec<_> = counts.iter().filter(|(_, c)| **c > 1).collect();
    assert!(duplicates.is_empty(), "{duplicates:?}");
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(1), "one issue, not two");
}
