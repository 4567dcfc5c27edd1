//! `gazette run` as a real process on a schedule of a few seconds, against a real SMTP server:
//! new articles make exactly one issue, quiet ticks send nothing, and SIGTERM in the middle of a
//! send followed by a restart loses and duplicates nothing.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::Utc;

use crate::{
    smtp::{Options, SmtpServer},
    support::Publication,
};

fn feed(items: &[(&str, chrono::DateTime<Utc>)]) -> String {
    let mut xml = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rss version=\"2.0\"><channel><title>Ticks</title><link>https://ticks.example.org/</link><description>d</description>\n",
    );
    for (title, date) in items {
        let slug = title.to_lowercase().replace(' ', "-");
        xml.push_str(&format!(
            "<item><title>{title}</title><link>https://ticks.example.org/{slug}</link><pubDate>{}</pubDate><description>About {title}.</description></item>\n",
            date.to_rfc2822()
        ));
    }
    xml.push_str("</channel></rss>\n");
    xml
}

fn publication(server: &SmtpServer, subscribers: usize, delivery: &str) -> Publication {
    let p = Publication::with_config("");
    let mut csv = String::from("email\n");
    for i in 0..subscribers {
        csv.push_str(&format!("reader{i}@example.org\n"));
    }
    p.write("list.csv", &csv);
    p.write("feed.xml", &feed(&[]));
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"Ticks\"\nfrom = \"Ticks <ticks@example.org>\"\nbase_url = \"https://ticks.example.org\"\nlists = [\"weekly\"]\n\
             [[source]]\nfeed = \"feed.xml\"\n[selection]\nmax_age = \"7d\"\n\
             [schedule]\ncron = \"*/2 * * * * *\"\ncatch_up = \"1m\"\n\
             [[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n\
             [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n{delivery}\n",
            server.url()
        ),
    );
    p
}

/// Starts `gazette run` or `gazette worker`. Its logs are dropped: a pipe nobody reads would
/// fill and stall the daemon.
pub(crate) fn start(p: &Publication, command: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .arg(command)
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the gazette daemon")
}

pub(crate) fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = child.try_wait().expect("wait") {
            return s;
        }
        assert!(Instant::now() < deadline, "gazette run did not stop within 20 s of SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Messages received per (issue, recipient), read from the Message-IDs.
fn per_issue(server: &SmtpServer) -> HashMap<(String, String), usize> {
    let mut out = HashMap::new();
    for m in server.messages() {
        let issue = m
            .message_id
            .clone()
            .unwrap_or_default()
            .split('.')
            .next()
            .unwrap_or_default()
            .trim_start_matches('<')
            .to_owned();
        for r in &m.rcpt_tos {
            *out.entry((issue.clone(), r.clone())).or_insert(0) += 1;
        }
    }
    out
}

pub(crate) fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn new_articles_make_one_issue_and_quiet_ticks_send_nothing() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, 5, "");
    let mut child = start(&p, "run");
    // A few empty ticks first: each is recorded as skipped, nothing is sent.
    std::thread::sleep(Duration::from_secs(3));
    assert!(server.messages().is_empty());
    p.write("feed.xml", &feed(&[("First news", Utc::now() - chrono::Duration::hours(1))]));
    wait_until("the first issue", Duration::from_secs(20), || server.messages().len() >= 5);
    // Several more ticks with nothing new.
    std::thread::sleep(Duration::from_secs(5));
    assert_eq!(server.messages().len(), 5, "quiet ticks sent something");
    let status = terminate(&mut child);
    assert!(status.success(), "{status:?}");
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(1), "{issues:#}");
    let counts = per_issue(&server);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
}

#[test]
fn sigterm_mid_send_then_restart_loses_and_duplicates_nothing() {
    let server = SmtpServer::start(Options::default());
    let n = 150;
    let p = publication(&server, n, "rate = 40\nconcurrency = 4");
    let mut child = start(&p, "run");
    p.write("feed.xml", &feed(&[("Big news", Utc::now() - chrono::Duration::hours(1))]));
    wait_until("the send to start", Duration::from_secs(20), || server.messages().len() >= 20);
    let status = terminate(&mut child);
    assert!(status.success(), "a graceful stop exits 0: {status:?}");
    let at_stop = server.messages().len();
    assert!(at_stop < n, "the stop came too late to test anything ({at_stop} of {n})");
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(show["status"], "sending");
    assert_eq!(show["counts"]["sent"].as_u64(), Some(at_stop as u64), "every message received was recorded: {show:#}");

    let mut again = start(&p, "run");
    wait_until("the rest of the issue", Duration::from_secs(30), || server.messages().len() >= n);
    std::thread::sleep(Duration::from_secs(3));
    terminate(&mut again);
    let counts = per_issue(&server);
    assert_eq!(counts.len(), n, "every subscriber got issue 1");
    assert!(
        counts.values().all(|c| *c == 1),
        "duplicates: {:?}",
        counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>()
    );
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(show["status"], "sent");
}

#[test]
fn queue_only_then_a_worker_delivers_the_issue() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, 12, "");
    p.write("feed.xml", &feed(&[("Queued news", Utc::now() - chrono::Duration::hours(1))]));
    let queued = p.gazette(&["send", "--yes", "--queue-only", "--json"]).ok().json();
    assert_eq!(queued["counts"]["queued"], 12, "{queued:#}");
    assert!(server.messages().is_empty(), "--queue-only sent something");
    let mut worker = start(&p, "worker");
    wait_until("the worker to deliver", Duration::from_secs(20), || server.messages().len() >= 12);
    std::thread::sleep(Duration::from_secs(2));
    assert!(terminate(&mut worker).success());
    assert_eq!(server.messages().len(), 12);
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(show["status"], "sent");
    // A worker has no schedule of its own: no second issue appeared.
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(1));
}

/// `gazette run` on a free web port, its log (stderr, not a terminal) gathered as it is written
/// by a thread of its own, so the pipe never fills. The level is the default one.
fn start_logged(p: &Publication) -> (Child, Arc<Mutex<String>>) {
    let mut child = p
        .command(&["run", "--listen", "127.0.0.1:0"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gazette run");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = kept.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, log)
}

/// At its default level the daemon says what it does, in the publication's zone: the next runs
/// at start, each slot skipped and why, the issue made, the issue sent with its counts and how
/// long it took, and its stop. It names no reader and writes no escape codes into a pipe.
#[test]
fn the_daemon_logs_what_it_does_and_names_no_reader() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, 5, "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write(
        "gazette.toml",
        &config.replacen("lists = [\"weekly\"]", "timezone = \"America/New_York\"\nlists = [\"weekly\"]", 1),
    );
    let (mut child, log) = start_logged(&p);
    let read = || log.lock().expect("log").clone();
    wait_until("a slot skipped", Duration::from_secs(20), || read().contains("skipped"));
    p.write("feed.xml", &feed(&[("Logged news", Utc::now() - chrono::Duration::hours(1))]));
    wait_until("the issue sent", Duration::from_secs(30), || read().contains("issue #1 sent"));
    assert!(terminate(&mut child).success());
    std::thread::sleep(Duration::from_millis(200));
    let log = read();

    let line = |what: &str| {
        log.lines().find(|l| l.contains(what)).unwrap_or_else(|| panic!("no line with {what:?} in:\n{log}")).to_owned()
    };
    let start = line("scheduler started");
    assert!(start.contains("America/New_York") && start.contains("next runs"), "{start}");
    let zoned = start.matches(" EDT").count() + start.matches(" EST").count();
    assert!(zoned >= 3, "a few next runs, in New York's time: {start}");
    let skipped = line("skipped, no issue");
    assert!(
        skipped.contains("no article within max_age") && (skipped.contains(" EDT") || skipped.contains(" EST")),
        "{skipped}"
    );
    let made = line("issue #1 made");
    assert!(made.contains("1 article,") && made.contains("5 readers"), "{made}");
    let sent = line("issue #1 sent");
    assert!(sent.contains("5 sent, 0 failed, 0 deferred") && sent.contains("since it was made"), "{sent}");
    line("stopping");
    assert!(log.lines().last().is_some_and(|l| l.contains("stopped")), "{log}");

    assert!(!log.contains('\x1b'), "escape codes in a log that is not a terminal:\n{log:?}");
    assert!(!log.contains("@example.org"), "an address in the log:\n{log}");
    assert!(!log.contains("test-secret"), "the secret in the log:\n{log}");
}
