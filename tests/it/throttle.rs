//! A server that asks to slow down, and `[[shaping]]`: throttling replies spend no attempt and
//! fail no reader; a capped group of domains is held to its rate, measured by the times the
//! server received each message, while the other domains go faster.

use crate::{
    deliver::{AS_OF, Backend, Stored, by_recipient, on_each_backend, publication_on},
    smtp::{Options, SmtpServer},
};

on_each_backend!(
    throttling_replies_spend_no_attempt_and_fail_no_reader,
    a_shaped_group_is_held_to_its_rate,
    a_group_throttled_without_end_stops_the_run_after_throttle_timeout_and_the_same_command_resumes,
);

/// The attempts the ledger holds for each delivery, read from the store itself.
pub(crate) fn attempts(p: &Stored) -> Vec<i64> {
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let postgres = config.lines().find_map(|l| {
        l.strip_prefix("database_url = ").map(|u| u.trim_matches('"').to_owned()).filter(|u| u.starts_with("postgres"))
    });
    let sqlite = format!("sqlite://{}", p.path().join("gazette.db").display());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            use sqlx::Connection;
            let sql = "SELECT attempts FROM deliveries ORDER BY id";
            match postgres {
                Some(url) => {
                    let mut c = sqlx::PgConnection::connect(&url).await.expect("open the store");
                    sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("attempts")
                }
                None => {
                    let mut c = sqlx::SqliteConnection::connect(&sqlite).await.expect("open the store");
                    sqlx::query_scalar(sql).fetch_all(&mut c).await.expect("attempts")
                }
            }
        })
    })
    .join()
    .expect("thread")
}

/// Every reader's first two tries get `421 4.7.0 … slow down`, with `max_attempts = 2`: were a
/// throttling reply an attempt, every reader would fail. Each is sent once instead, and the
/// ledger counts the one attempt that was taken.
fn throttling_replies_spend_no_attempt_and_fail_no_reader(backend: Backend) {
    let server = SmtpServer::start(Options::default().throttle_first(2));
    let p = publication_on(backend, 8, &server.url(), "concurrency = 4\nmax_attempts = 2");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(8), Some(0)), "{doc:#}");
    assert!(doc["failures"].as_array().is_some_and(Vec::is_empty), "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 8, "{counts:?}");
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(attempts(&p), [1; 8], "the throttled tries are not counted");
}

/// 60 readers at gmail.com, capped at `rate = 20`, and 60 elsewhere, uncapped, interleaved in the
/// list: no second of the server's log holds more than 20 gmail.com messages (and a little for
/// the first), and the others, which wait for no gmail.com permit, are all in long before.
fn a_shaped_group_is_held_to_its_rate(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(
        backend,
        0,
        &server.url(),
        "concurrency = 8\n\n[[shaping]]\ndomains = [\"gmail.com\", \"googlemail.com\"]\nrate = 20\n",
    );
    let mut csv = String::from("email,name,lists,city\n");
    for i in 0..60 {
        csv.push_str(&format!("reader{i}@GMail.com,G {i},,\nreader{i}@example.org,E {i},,\n"));
    }
    p.write("subscribers/weekly.csv", &csv);
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 120, "{doc:#}");

    let messages = server.messages();
    let times = |domain: &str| {
        let mut t: Vec<f64> = messages
            .iter()
            .filter(|m| m.rcpt_tos.iter().any(|r| r.to_ascii_lowercase().ends_with(domain)))
            .map(|m| m.received_at)
            .collect();
        t.sort_by(f64::total_cmp);
        t
    };
    let (gmail, others) = (times("@gmail.com"), times("@example.org"));
    assert_eq!((gmail.len(), others.len()), (60, 60));
    // Any window of one second, starting at each message.
    let busiest = gmail.iter().map(|start| gmail.iter().filter(|t| **t >= *start && **t < start + 1.0).count()).max();
    assert!(busiest.is_some_and(|n| n <= 22), "{busiest:?} gmail.com messages in one second, at rate = 20");
    let span = |t: &[f64]| t.last().copied().unwrap_or_default() - t.first().copied().unwrap_or_default();
    assert!(span(&gmail) >= 2.8, "60 at 20 a second take about 3 s, not {:.2} s", span(&gmail));
    let others_done = others.last().copied().unwrap_or_default();
    let gmail_done = gmail.last().copied().unwrap_or_default();
    assert!(
        others_done < gmail_done - 1.0,
        "the other domains wait for no gmail.com permit: done at {:.2} s, gmail.com at {:.2} s",
        others_done - gmail[0],
        gmail_done - gmail[0]
    );
}

/// A server that turns away connections beyond two with `421 4.7.0 too many connections`, and
/// six senders: the turned-away messages are throttled, not a server failure that stops the run,
/// and with `max_attempts = 1` none of them is failed either.
#[test]
fn too_many_connections_at_the_greeting_slows_the_sending_and_stops_nothing() {
    let server = SmtpServer::start(Options::default().max_connections(2));
    let p = publication_on(Backend::Sqlite, 20, &server.url(), "concurrency = 6\nmax_attempts = 1");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(20), Some(0)), "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 20, "{counts:?}");
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert!(
        server.stats().refused_connections > 0,
        "the server never turned a connection away, so this proved nothing"
    );
}

/// A server that throttles every message to gmail.com and never stops, with `throttle_timeout =
/// "2s"`: the other readers are sent, then, once only gmail.com's are left and every try of them
/// has been throttled for 2 s with none accepted, the run stops with exit 1 like a server that is
/// gone, naming the key. Nothing is counted against the gmail.com readers (no attempt spent, no
/// failure), and the same command, run again once the server accepts them, sends them, once.
fn a_group_throttled_without_end_stops_the_run_after_throttle_timeout_and_the_same_command_resumes(backend: Backend) {
    let mut server = SmtpServer::start(Options::default().throttle("@gmail.com"));
    let port = server.port;
    let p = publication_on(backend, 0, &server.url(), "concurrency = 2\nthrottle_timeout = \"2s\"");
    let mut csv = String::from("email,name,lists,city\n");
    for i in 0..4 {
        csv.push_str(&format!("reader{i}@gmail.com,G {i},,\nreader{i}@example.org,E {i},,\n"));
    }
    for i in 4..6 {
        csv.push_str(&format!("reader{i}@example.org,E {i},,\n"));
    }
    p.write("subscribers/weekly.csv", &csv);
    let started = std::time::Instant::now();
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(started.elapsed().as_secs_f64() < 30.0, "{:?}", started.elapsed());
    assert!(run.stderr().contains("throttle_timeout"), "{}", run.stderr());
    assert!(server.stats().throttled >= 4, "{:?}", server.stats());
    let sent = by_recipient(&server);
    assert_eq!(sent.len(), 6, "{sent:?}");
    assert!(sent.keys().all(|r| r.ends_with("@example.org")) && sent.values().all(|c| *c == 1), "{sent:?}");
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!((show["counts"]["sent"].as_u64(), show["counts"]["failed"].as_u64()), (Some(6), Some(0)), "{show:#}");
    let mut attempts = attempts(&p);
    attempts.sort_unstable();
    assert_eq!(attempts, [0, 0, 0, 0, 1, 1, 1, 1, 1, 1], "no attempt spent on a throttled try");

    server.kill();
    let relieved = SmtpServer::start(Options::default().port(port));
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 10, "{doc:#}");
    let resumed = by_recipient(&relieved);
    assert_eq!(resumed.len(), 4, "{resumed:?}");
    assert!(resumed.keys().all(|r| r.ends_with("@gmail.com")) && resumed.values().all(|c| *c == 1), "{resumed:?}");
}
