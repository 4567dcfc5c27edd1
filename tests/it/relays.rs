//! `gazette send` through several `[[relay]]`s, each a real SMTP server on loopback (or a port
//! nobody listens on): relays that are down or refuse the login are set aside and every reader
//! still gets one copy; weights share the traffic; a relay that dies mid-issue and comes back is
//! taken back; with every relay down nothing is counted against a reader; and the config errors.

use std::{collections::HashMap, net::TcpListener, time::Duration};

use crate::{
    deliver::{AS_OF, Backend, Stored, by_recipient, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
};

on_each_backend!(
    relays_that_are_down_or_refuse_the_login_are_set_aside_and_every_reader_gets_one_copy,
    with_every_relay_down_the_run_stops_and_counts_nothing_against_readers,
    two_workers_keep_a_relays_rate_together,
);

/// The URL `publication_on` is given and that the relays then replace.
const NO_SMTP_URL: &str = "smtp://127.0.0.1:1";

/// A publication of `n` readers sending through `relays` (each the body of a `[[relay]]`).
fn with_relays(backend: Backend, n: usize, delivery: &str, relays: &[String]) -> Stored {
    let p = publication_on(backend, n, NO_SMTP_URL, delivery);
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let mut config = config.replace(&format!("smtp_url = {NO_SMTP_URL:?}\n"), "");
    for r in relays {
        config.push_str(&format!("\n[[relay]]\n{r}\n"));
    }
    p.write("gazette.toml", &config);
    p
}

fn relay(url: &str, extra: &str) -> String {
    format!("url = {url:?}\n{extra}")
}

/// A loopback port nobody listens on (bound for a moment, then let go).
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("its address").port()
}

fn merged(servers: &[&SmtpServer]) -> HashMap<String, usize> {
    let mut all = HashMap::new();
    for s in servers {
        for (reader, n) in by_recipient(s) {
            *all.entry(reader).or_insert(0) += n;
        }
    }
    all
}

fn relays_that_are_down_or_refuse_the_login_are_set_aside_and_every_reader_gets_one_copy(backend: Backend) {
    let down = closed_port();
    let locked = SmtpServer::start(Options::default().auth("mailer", "right"));
    let healthy = SmtpServer::start(Options::default());
    let p = with_relays(
        backend,
        30,
        "concurrency = 4",
        &[
            relay(&format!("smtp://127.0.0.1:{down}"), "weight = 5"),
            relay(&locked.url().replace("right", "hunter2-wrong"), "weight = 5"),
            relay(&healthy.url(), ""),
        ],
    );
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok();
    let doc = run.json();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(30), Some(0)), "{doc:#}");
    let counts = by_recipient(&healthy);
    assert_eq!(counts.len(), 30);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(locked.accepted(), 0);
    let stderr = run.stderr();
    assert!(!stderr.contains("hunter2") && !run.stdout().contains("hunter2"), "{stderr}");
    for port in [down, locked.port] {
        assert!(stderr.contains(&format!("relay 127.0.0.1:{port} set aside")), "{stderr}");
    }
}

fn with_every_relay_down_the_run_stops_and_counts_nothing_against_readers(backend: Backend) {
    let (a, b) = (closed_port(), closed_port());
    let p = with_relays(
        backend,
        5,
        "",
        &[relay(&format!("smtp://mailer:hunter2@127.0.0.1:{a}"), ""), relay(&format!("smtp://127.0.0.1:{b}"), "")],
    );
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains(&format!("127.0.0.1:{a}")) && all.contains(&format!("127.0.0.1:{b}")), "{all}");
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!((show["counts"]["queued"].as_u64(), show["counts"]["failed"].as_u64()), (Some(5), Some(0)), "{show:#}");
}

#[test]
fn weights_share_the_traffic() {
    let (a, b) = (SmtpServer::start(Options::default()), SmtpServer::start(Options::default()));
    let p = with_relays(
        Backend::Sqlite,
        2000,
        "concurrency = 8",
        &[relay(&a.url(), "weight = 3"), relay(&b.url(), "weight = 1")],
    );
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 2000, "{doc:#}");
    let counts = merged(&[&a, &b]);
    assert_eq!(counts.len(), 2000);
    assert!(counts.values().all(|c| *c == 1));
    let share = a.accepted() as f64 / 2000.0;
    assert!((0.72..=0.78).contains(&share), "the weight-3 relay took {share:.3} of the messages");
}

/// A relay killed mid-issue: its unfinished messages go again, through the other relay, and once
/// a new server listens on its port it is taken back and gets messages again.
#[test]
fn a_relay_that_dies_mid_issue_and_comes_back_is_taken_back() {
    let mut first = SmtpServer::start(Options::default());
    let other = SmtpServer::start(Options::default());
    let port = first.port;
    let n = 240;
    // 40 a second: the run lasts about 6 s, long enough for the relay to die and be taken back.
    let p = with_relays(
        Backend::Sqlite,
        n,
        "concurrency = 4\nrate = 40\nmax_attempts = 6",
        &[relay(&first.url(), ""), relay(&other.url(), "")],
    );
    let child = p
        .command(&["send", "--yes", "--as-of", AS_OF, "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start gazette");
    first.wait_for(20, Duration::from_secs(20));
    first.kill();
    std::thread::sleep(Duration::from_millis(800));
    let revived = SmtpServer::start(Options::default().port(port));
    let out = child.wait_with_output().expect("gazette ends");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(doc["counts"]["sent"], n, "{doc:#}");
    let counts = merged(&[&first, &other, &revived]);
    assert_eq!(counts.len(), n);
    assert!(counts.values().all(|c| *c == 1), "{:?}", counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>());
    assert!(revived.accepted() > 0, "the relay was not taken back:\n{stderr}");
    assert!(stderr.contains(&format!("relay 127.0.0.1:{port} works again")), "{stderr}");
}

#[test]
fn a_relay_beside_smtp_url_is_a_config_error_naming_both() {
    let p = publication_on(Backend::Sqlite, 1, "smtp://127.0.0.1:2525", "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &format!("{config}\n[[relay]]\nurl = \"smtp://127.0.0.1:2526\"\n"));
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("[[relay]]") && run.stderr().contains("delivery.smtp_url"), "{}", run.stderr());
}

#[test]
fn a_url_env_naming_an_unset_variable_is_a_config_error_naming_it() {
    let p = with_relays(Backend::Sqlite, 1, "", &["url_env = \"GAZETTE_TEST_RELAY_UNSET\"".to_owned()]);
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("GAZETTE_TEST_RELAY_UNSET"), "{}", run.stderr());
    // Set, it is used.
    let server = SmtpServer::start(Options::default());
    let run = p.gazette_with(&["send", "--yes", "--as-of", AS_OF], &[("GAZETTE_TEST_RELAY_UNSET", &server.url())]).ok();
    assert_eq!(server.accepted(), 1, "{}", run.stderr());
}

/// A relay's `concurrency` caps the connections to it and its `rate` paces what it is handed,
/// while the other relay takes the rest.
#[test]
fn a_relays_cap_and_rate_hold_while_the_other_takes_the_rest() {
    let (capped, free) = (SmtpServer::start(Options::default()), SmtpServer::start(Options::default()));
    let p = with_relays(
        Backend::Sqlite,
        120,
        "concurrency = 4",
        &[relay(&capped.url(), "concurrency = 1\nrate = 10"), relay(&free.url(), "")],
    );
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 120, "{doc:#}");
    let counts = merged(&[&capped, &free]);
    assert_eq!(counts.len(), 120);
    assert!(counts.values().all(|c| *c == 1));
    assert_eq!(capped.stats().peak_connections, 1, "one connection at most to the capped relay");
    let times: Vec<f64> = capped.messages().iter().map(|m| m.received_at).collect();
    assert!(times.len() >= 2, "the capped relay got {} messages", times.len());
    let span = times[times.len() - 1] - times[0];
    // Starts are 100 ms apart at 10/s; an exchange's own length, stretched on a busy machine,
    // moves either end by up to one interval.
    assert!(span >= (times.len() - 1) as f64 * 0.1 - 0.1, "{} messages in {span:.2}s", times.len());
}

/// Two relays, one answering `421 4.7.0 … slow down` to everything for its first 2 s: it rests
/// and takes fewer at a time, so the other takes the traffic meanwhile (the throttling relay
/// turns away a handful, not the half of what came in those seconds its weight would give it);
/// once it clears it is used again. Every reader gets one copy, and no attempt is spent on the
/// throttled tries.
#[test]
fn a_throttling_relay_slows_down_and_the_other_takes_its_traffic_until_it_clears() {
    let slow = SmtpServer::start(Options::default().throttle_for(2.0));
    let other = SmtpServer::start(Options::default());
    let n = 200;
    // 40 a second: the run lasts about 5 s, the throttling the first two of them.
    let p = with_relays(
        Backend::Sqlite,
        n,
        "concurrency = 4\nrate = 40\nmax_attempts = 2",
        &[relay(&slow.url(), ""), relay(&other.url(), "")],
    );
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok();
    let doc = run.json();
    assert_eq!(
        (doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()),
        (Some(n as u64), Some(0)),
        "{doc:#}"
    );
    let counts = merged(&[&slow, &other]);
    assert_eq!(counts.len(), n);
    assert!(counts.values().all(|c| *c == 1), "{:?}", counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>());
    assert_eq!(crate::throttle::attempts(&p), vec![1; n], "the throttled tries are not counted");
    let throttled = slow.stats().throttled;
    assert!(throttled > 0, "the relay never throttled, so this proved nothing");
    assert!(throttled <= 12, "the throttling relay was handed {throttled} messages while it throttled");
    assert!(slow.accepted() > 0, "the relay was not used again once it cleared:\n{}", run.stderr());
    assert!(other.accepted() > slow.accepted(), "{} and {}", other.accepted(), slow.accepted());
    assert!(run.stderr().contains(&format!("relay 127.0.0.1:{} asked to slow down", slow.port)), "{}", run.stderr());
}

/// `issues show` says what the issue sent through each relay, named by `host:port` and never by
/// its credentials, in the table and in `--json`; a relay that refused every login sent nothing
/// and is not there.
#[test]
fn issues_show_says_what_went_through_each_relay() {
    let locked = SmtpServer::start(Options::default().auth("mailer", "right"));
    let (a, b) = (SmtpServer::start(Options::default()), SmtpServer::start(Options::default().reject("reader3@")));
    let p = with_relays(
        Backend::Sqlite,
        12,
        "concurrency = 2",
        &[
            relay(&locked.url().replace("right", "hunter2-wrong"), ""),
            relay(&a.url().replace("127.0.0.1", "mailer:hunter2@127.0.0.1"), ""),
            relay(&b.url(), ""),
        ],
    );
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok();
    assert!(!show.stdout().contains("hunter2"), "{}", show.stdout());
    let doc = show.json();
    let relays = doc["relays"].as_array().expect("a relays array");
    let names: Vec<&str> = relays.iter().filter_map(|r| r["relay"].as_str()).collect();
    let (name_a, name_b) = (format!("127.0.0.1:{}", a.port), format!("127.0.0.1:{}", b.port));
    let mut expected = vec![name_a.as_str(), name_b.as_str()];
    expected.sort_unstable();
    assert_eq!(names, expected, "{doc:#}");
    let of = |name: &str| relays.iter().find(|r| r["relay"] == name).expect("the relay").clone();
    let (ra, rb) = (of(&name_a), of(&name_b));
    assert_eq!(ra["sent"].as_u64(), Some(a.accepted() as u64), "{ra:#}");
    assert_eq!(rb["sent"].as_u64(), Some(b.accepted() as u64), "{rb:#}");
    let failed = ra["failed"].as_u64().unwrap_or_default() + rb["failed"].as_u64().unwrap_or_default();
    assert_eq!(a.accepted() + b.accepted() + failed as usize, 12, "{doc:#}");
    for r in [&ra, &rb] {
        assert_eq!(r["deferred"], 0);
        assert!(r["last_reply"].as_str().is_some_and(|s| s.starts_with("250") || s.starts_with("550")), "{r:#}");
    }
    let table = p.gazette(&["issues", "show", "1"]).ok().stdout();
    assert!(table.contains("RELAY") && table.contains(&name_a) && table.contains(&name_b), "{table}");
    assert!(!table.contains("hunter2"), "{table}");
}

/// One SMTP server (`smtp_url`) is that one relay; the outbox is none.
#[test]
fn one_smtp_server_is_one_relay_and_the_outbox_none() {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(Backend::Sqlite, 3, &server.url(), "");
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let doc = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(doc["relays"].as_array().map(Vec::len), Some(1), "{doc:#}");
    assert_eq!(doc["relays"][0]["relay"], format!("127.0.0.1:{}", server.port));
    assert_eq!(doc["relays"][0]["sent"], 3);

    let outbox = publication_on(Backend::Sqlite, 2, NO_SMTP_URL, "");
    let config = std::fs::read_to_string(outbox.path().join("gazette.toml")).expect("config");
    outbox.write("gazette.toml", &config.replace("transport = \"smtp\"", "transport = \"outbox\""));
    outbox.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let doc = outbox.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 2, "{doc:#}");
    assert_eq!(doc["relays"], serde_json::json!([]), "{doc:#}");
}

/// Two relays, one at `rate = 2` and one without a rate: the capped relay's turns are few, and a
/// message whose relay by weight is held back by its rate goes to the other rather than waiting
/// (waiting, half the messages would queue behind the 2 a second). Every reader gets one copy.
#[test]
fn a_rate_capped_relay_sends_its_traffic_to_the_other_rather_than_waiting() {
    let (capped, free) = (SmtpServer::start(Options::default()), SmtpServer::start(Options::default()));
    let n = 120;
    let p =
        with_relays(Backend::Sqlite, n, "concurrency = 4", &[relay(&capped.url(), "rate = 2"), relay(&free.url(), "")]);
    let started = std::time::Instant::now();
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    let took = started.elapsed();
    assert_eq!(doc["counts"]["sent"], n, "{doc:#}");
    let counts = merged(&[&capped, &free]);
    assert_eq!(counts.len(), n);
    assert!(counts.values().all(|c| *c == 1), "{:?}", counts.iter().filter(|(_, c)| **c > 1).collect::<Vec<_>>());
    // Two a second over the run, and the first at once.
    let most = (took.as_secs_f64() * 2.0).ceil() as usize + 1;
    assert!(capped.accepted() <= most, "the capped relay took {} in {took:?}", capped.accepted());
    assert!(capped.accepted() < n / 4, "the capped relay took {} of {n}", capped.accepted());
    assert!(free.accepted() > n / 2, "{}", free.accepted());
}

/// Two processes (workers) on one store send one issue through one relay at `rate = 20`: the
/// relay's rate holds for both together, as measured from the server's receive times (each
/// alone would send at 20 a second, so the issue would take half the time).
fn two_workers_keep_a_relays_rate_together(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let n = 60;
    let rate = 20;
    let p = with_relays(backend, n, "concurrency = 2", &[relay(&server.url(), &format!("rate = {rate}"))]);
    let queued = p.gazette(&["send", "--queue-only", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(queued["counts"]["queued"], n, "{queued:#}");
    let start = || {
        p.command(&["worker"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("start a worker")
    };
    let mut workers = [start(), start()];
    let received = server.wait_for(n, Duration::from_secs(30));
    // Let the last outcomes be recorded before the workers go.
    std::thread::sleep(Duration::from_millis(500));
    for w in &mut workers {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(w.id().to_string()).status();
    }
    let mut stderr = String::new();
    for w in workers {
        let out = w.wait_with_output().expect("the worker ends");
        stderr.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(received.len(), n, "{stderr}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), n);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    let mut times: Vec<f64> = received.iter().map(|m| m.received_at).collect();
    times.sort_by(f64::total_cmp);
    let span = times[n - 1] - times[0];
    // 60 at 20 a second, shared, take about 3 s; each worker at the full rate, about 1.5 s.
    let spaced = (n - 1) as f64 / rate as f64;
    assert!(span >= spaced * 0.85, "{n} messages at {rate} a second over two workers took {span:.2}s\n{stderr}");
}
