//! `gazette send` against a real SMTP server on loopback: every subscriber once, with every
//! header; AUTH and STARTTLS; servers that defer, refuse, drop and stall; a wrong password.
//! Each test runs twice: as `sqlite::NAME` on the embedded store and as `postgres::NAME` on a
//! PostgreSQL database of its own.

use std::{collections::HashMap, time::Duration};

use mail_parser::MessageParser;

use crate::{
    postgres::TestDatabase,
    smtp::{Options, SmtpServer},
    support::{Publication, fixture},
};

pub const AS_OF: &str = "2024-03-16T12:00:00-04:00";

/// A publication reading the seed feed, with a list of `n` subscribers, sending to `smtp_url`.
pub fn publication(n: usize, smtp_url: &str, delivery: &str) -> Publication {
    let p = Publication::with_config("");
    let mut csv = String::from("email,name,lists,city\n");
    for i in 0..n {
        csv.push_str(&format!("reader{i}@example.org,Reader {i},,City {i}\n"));
    }
    p.write("subscribers/weekly.csv", &csv);
    let config = format!(
        "[publication]\nname = \"The Weekly Mirror\"\nfrom = \"The Weekly Mirror <weekly@example.org>\"\n\
         reply_to = \"editor@example.org\"\nunsubscribe_mailto = \"unsubscribe@example.org\"\n\
         base_url = \"https://news.example.org\"\ntimezone = \"America/New_York\"\nlists = [\"weekly\"]\n\n\
         [[source]]\nfeed = {:?}\n\n[[list]]\nname = \"weekly\"\nfile = \"subscribers/weekly.csv\"\n\n\
         [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n{delivery}\n",
        fixture("feeds/seed-mirror.xml").display().to_string(),
        smtp_url,
    );
    p.write("gazette.toml", &config);
    p
}

/// Where a test publication keeps its store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A publication and the database that holds its store, dropped together.
pub struct Stored {
    publication: Publication,
    _database: Option<TestDatabase>,
}

impl std::ops::Deref for Stored {
    type Target = Publication;

    fn deref(&self) -> &Publication {
        &self.publication
    }
}

/// `publication`, with its store on `backend`.
pub fn publication_on(backend: Backend, n: usize, smtp_url: &str, delivery: &str) -> Stored {
    let publication = publication(n, smtp_url, delivery);
    let database = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => {
            let db = TestDatabase::create();
            let config = std::fs::read_to_string(publication.path().join("gazette.toml")).expect("config");
            publication
                .write("gazette.toml", &format!("{config}\n[storage]\ndatabase_url = {:?}\npool_size = 4\n", db.url()));
            Some(db)
        }
    };
    Stored { publication, _database: database }
}

/// Runs each named `fn(Backend)` as a test on each backend.
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Sqlite);
                }
            )+
        }
        mod postgres {
            $(
                #[test]
                fn $name() {
                    super::$name(super::Backend::Postgres);
                }
            )+
        }
    };
}
pub(crate) use on_each_backend;

on_each_backend!(
    every_subscriber_gets_exactly_one_message_with_every_header,
    auth_and_starttls_with_a_trusted_ca,
    a_certificate_that_does_not_verify_is_refused_not_used_in_the_clear,
    a_wrong_password_is_exit_1_and_never_printed,
    temporary_failures_are_retried_until_accepted,
    permanent_refusals_are_recorded_and_bounce_the_subscriber,
    dropped_connections_and_stalls_are_retried_without_duplicates,
    a_test_copy_goes_to_the_given_address_only_and_is_recorded_nowhere,
    subscriber_on_two_lists_gets_one_copy_and_hostile_names_stay_out_of_headers,
    a_pipelining_server_gets_each_envelope_in_one_write_and_every_fault_is_handled,
    lines_that_start_with_a_dot_arrive_as_written,
    a_ca_file_without_a_certificate_is_named_and_nothing_is_sent,
    a_reply_injected_before_the_starttls_handshake_is_never_read,
    a_final_dot_left_unanswered_holds_back_no_other_sender,
    an_address_the_server_cannot_take_fails_at_once_and_bounces_no_one,
    deferred_deliveries_are_listed_with_their_next_attempt,
    the_closing_line_of_a_send_agrees_with_its_table,
    a_dry_run_counts_the_readers_the_send_reaches_after_the_list_file_sync,
);

pub fn by_recipient(server: &SmtpServer) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for m in server.messages() {
        for r in m.rcpt_tos {
            *counts.entry(r).or_insert(0) += 1;
        }
    }
    counts
}

fn every_subscriber_gets_exactly_one_message_with_every_header(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 25, &server.url(), "concurrency = 4");
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok();
    let doc = run.json();
    assert_eq!(doc["counts"]["sent"], 25, "{doc:#}");
    assert_eq!(doc["status"], "sent");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 25);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(server.stats().pipelined_mail, 0, "a server that does not offer PIPELINING gets one command at a time");

    for m in server.messages() {
        let msg = m.parsed();
        let to = msg.to().and_then(|a| a.first()).expect("To");
        let rcpt = &m.rcpt_tos[0];
        assert_eq!(to.address(), Some(rcpt.as_str()));
        assert!(to.name().is_some_and(|n| n.starts_with("Reader ")));
        assert_eq!(m.mail_from, "weekly@example.org");
        for h in [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "Reply-To",
        ] {
            assert!(msg.header_raw(h).is_some(), "{h} missing");
        }
        let unsub = msg.header_raw("List-Unsubscribe").unwrap_or_default();
        assert!(unsub.contains("https://news.example.org/unsubscribe/"), "{unsub}");
        assert_eq!(msg.text_body.len(), 1);
        assert_eq!(msg.html_body.len(), 1);
        assert!(msg.body_text(0).is_some_and(|t| t.contains("Armenian Sources Blast")));
    }
    let ids: std::collections::HashSet<_> = server.messages().into_iter().filter_map(|m| m.message_id).collect();
    assert_eq!(ids.len(), 25, "one Message-ID per subscriber");

    // Nothing new: the second send says so and sends nothing.
    let again = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert!(again["issue"].is_null(), "{again:#}");
    assert!(again["reason"].as_str().is_some_and(|r| r.contains("nothing new")));
    assert_eq!(server.messages().len(), 25);
}

/// gazette writes the content itself, ahead of the final dot, so its dot-stuffing is on trial:
/// a line of only a dot would end the message early, and a stray dot would show.
fn lines_that_start_with_a_dot_arrive_as_written(backend: Backend) {
    let server = SmtpServer::start(Options::default().pipelining());
    let p = publication_on(backend, 3, &server.url(), "concurrency = 2");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &format!("{config}\n[templates]\ndir = \"templates\"\n"));
    let lines = [".", ".hidden file", "..two dots", "a. middle dot", "...", "the end"];
    p.write("templates/email/digest.txt", &format!("{{{{ publication.name }}}}\n{}\n", lines.join("\n")));
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let messages = server.messages();
    assert_eq!(messages.len(), 3);
    for m in messages {
        let msg = m.parsed();
        let text = msg.body_text(0).expect("a text part");
        let got: Vec<&str> = text.lines().map(str::trim_end).skip(1).take(lines.len()).collect();
        assert_eq!(got, lines, "{text}");
        assert!(msg.body_html(0).is_some_and(|h| h.contains("</html>")), "the HTML part after the text arrived whole");
    }
}

fn auth_and_starttls_with_a_trusted_ca(backend: Backend) {
    let server = SmtpServer::start(Options::default().auth("mailer", "s3cret pass").self_signed_tls().require_tls());
    let ca = server.tls_files().expect("tls").ca().display().to_string();
    let url = server.url().replace("127.0.0.1", "localhost");
    let p = publication_on(backend, 3, &url, &format!("ca_file = {ca:?}"));
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    assert_eq!(server.messages().len(), 3);
}

/// Whatever arrives in plain text behind STARTTLS's 220 is dropped: every reply gazette reads
/// afterwards came through TLS, so the login and the PIPELINING it learns are the server's.
fn a_reply_injected_before_the_starttls_handshake_is_never_read(backend: Backend) {
    let server = SmtpServer::start(
        Options::default()
            .auth("mailer", "s3cret pass")
            .self_signed_tls()
            .require_tls()
            .pipelining()
            .inject_after_starttls(),
    );
    let ca = server.tls_files().expect("tls").ca().display().to_string();
    let url = server.url().replace("127.0.0.1", "localhost");
    let p = publication_on(backend, 4, &url, &format!("ca_file = {ca:?}\nconcurrency = 2"));
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 4);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    assert_eq!(server.stats().pipelined_mail, 4, "PIPELINING was learnt from the EHLO reply inside TLS");
}

fn a_ca_file_without_a_certificate_is_named_and_nothing_is_sent(backend: Backend) {
    let server = SmtpServer::start(Options::default().self_signed_tls());
    let url = server.url().replace("127.0.0.1", "localhost");
    let p = publication_on(backend, 2, &url, "ca_file = \"certs/ca.pem\"");
    p.write("certs/ca.pem", "this is a private key, pasted by mistake\n");
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_ne!(run.code(), 0);
    let said = run.stderr();
    assert!(said.contains("delivery.ca_file") && said.contains("ca.pem"), "{said}");
    assert!(said.contains("no PEM certificate"), "{said}");
    assert!(server.messages().is_empty());
}

fn a_certificate_that_does_not_verify_is_refused_not_used_in_the_clear(backend: Backend) {
    let server = SmtpServer::start(Options::default().self_signed_tls());
    let url = server.url().replace("127.0.0.1", "localhost");
    let p = publication_on(backend, 3, &url, "");
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(server.messages().is_empty());
    let issues = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(issues["counts"]["queued"], 3, "counted against no subscriber: {issues:#}");
}

fn a_wrong_password_is_exit_1_and_never_printed(backend: Backend) {
    let server = SmtpServer::start(Options::default().auth("mailer", "right"));
    let url = server.url().replace("right", "hunter2-wrong");
    let p = publication_on(backend, 2, &url, "");
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    assert_eq!(run.code(), 1);
    let all = format!("{}{}", run.stdout(), run.stderr());
    assert!(!all.contains("hunter2"), "{all}");
    assert!(all.contains("535") || all.to_lowercase().contains("auth"), "{all}");
    let show = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(show["counts"]["queued"], 2);
    assert_eq!(show["counts"]["failed"], 0);
}

fn temporary_failures_are_retried_until_accepted(backend: Backend) {
    let server = SmtpServer::start(Options::default().tempfail_first(2));
    let p = publication_on(backend, 5, &server.url(), "concurrency = 2\nmax_attempts = 4");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 5, "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 5);
    assert!(counts.values().all(|c| *c == 1));
}

fn permanent_refusals_are_recorded_and_bounce_the_subscriber(backend: Backend) {
    let server = SmtpServer::start(Options::default().reject("reader1@").reject("reader3@"));
    let p = publication_on(backend, 5, &server.url(), "");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(3), Some(2)), "{doc:#}");
    let failures = doc["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 2);
    for f in failures {
        assert!(f["reply"].as_str().is_some_and(|r| r.contains("550")), "{f}");
        assert_eq!(f["attempts"], 1);
    }
    let bounced = p.gazette(&["subscribers", "list", "--status", "bounced", "--json"]).ok().json();
    assert_eq!(bounced["subscribers"].as_array().map(Vec::len), Some(2));
    // A list file never brings a bounced address back.
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let bounced = p.gazette(&["subscribers", "list", "--status", "bounced", "--json"]).ok().json();
    assert_eq!(bounced["subscribers"].as_array().map(Vec::len), Some(2));
}

fn dropped_connections_and_stalls_are_retried_without_duplicates(backend: Backend) {
    let server = SmtpServer::start(Options::default().drop_every(4).stall_every(7, Duration::from_secs(5)));
    let p = publication_on(backend, 20, &server.url(), "concurrency = 3\ntimeout = \"1s\"\nmax_attempts = 6");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 20, "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 20);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
}

/// The ledger writer waits a moment for the outcomes of messages whose final dot is out; a
/// server that never answers one of them must not hold the others' records, and so their
/// senders, back for as long as it says nothing.
fn a_final_dot_left_unanswered_holds_back_no_other_sender(backend: Backend) {
    let stall = Duration::from_secs(6);
    // The 5th message's dot gets no reply for 6 s, then the server hangs up; it is retried.
    let server = SmtpServer::start(Options::default().stall_every(5, stall));
    let p = publication_on(backend, 16, &server.url(), "concurrency = 4\ntimeout = \"30s\"");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 16, "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 16);
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    // The 5th, 10th and 15th messages stall; the 13 others arrived while the first stall
    // lasted, each stalled sender leaving the rest to go on.
    let mut times: Vec<f64> = server.messages().iter().map(|m| m.received_at).collect();
    times.sort_by(f64::total_cmp);
    let first = times[0];
    let during = times.iter().filter(|t| **t - first < stall.as_secs_f64() / 2.0).count();
    assert_eq!(during, 13, "messages that arrived in the first {}s, of {times:?}", stall.as_secs() / 2);
}

/// With PIPELINING offered, MAIL, RCPT and DATA go in one write; a refusal in the middle of a
/// pipelined group, a 4xx at the end and a dropped connection each end as they do without it.
fn a_pipelining_server_gets_each_envelope_in_one_write_and_every_fault_is_handled(backend: Backend) {
    let server = SmtpServer::start(Options::default().pipelining().reject("reader2@").tempfail_first(1).drop_every(5));
    let p = publication_on(backend, 12, &server.url(), "concurrency = 3\nmax_attempts = 5");
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(11), Some(1)), "{doc:#}");
    let failures = doc["failures"].as_array().expect("failures");
    assert!(failures[0]["reply"].as_str().is_some_and(|r| r.contains("550")), "{doc:#}");
    let counts = by_recipient(&server);
    assert_eq!(counts.len(), 11, "{counts:?}");
    assert!(counts.values().all(|c| *c == 1), "{counts:?}");
    let bounced = p.gazette(&["subscribers", "list", "--status", "bounced", "--json"]).ok().json();
    assert_eq!(bounced["subscribers"].as_array().map(Vec::len), Some(1), "{bounced:#}");
    // Every transaction reached the server pipelined: 12 first tries, 11 retries after the
    // tempfail, and those the dropped connections cost again.
    let stats = server.stats();
    assert!(stats.pipelined_mail >= 23, "{stats:?}\n{}", server.log_tail(40));
}

fn a_test_copy_goes_to_the_given_address_only_and_is_recorded_nowhere(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 5, &server.url(), "");
    p.gazette(&["send", "--as-of", AS_OF, "--to", "editor@example.net"]).ok();
    let got = server.wait_for(1, Duration::from_secs(5));
    assert_eq!(got[0].rcpt_tos, ["editor@example.net"]);
    let subject = MessageParser::default().parse(&got[0].raw).and_then(|m| m.subject().map(str::to_owned));
    assert_eq!(subject.as_deref(), Some("[Test] The Weekly Mirror: 16 March 2024"), "a test copy says so");
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(0));
    let dry = p.gazette(&["send", "--as-of", AS_OF, "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["would_send"]["articles"].as_array().map(Vec::len), Some(6), "{dry:#}");
    assert_eq!(server.messages().len(), 1);
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(0));
}

fn subscriber_on_two_lists_gets_one_copy_and_hostile_names_stay_out_of_headers(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 0, &server.url(), "");
    p.write(
        "subscribers/weekly.csv",
        "email,name\nann@example.org,Ann\n\"eve@example.org\",\"Eve\r\nBcc: victim@example.com\"\n",
    );
    let mut config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    config = config.replace("lists = [\"weekly\"]", "lists = [\"weekly\", \"news\"]");
    config.push_str("\n[[list]]\nname = \"news\"\nfile = \"subscribers/news.csv\"\n");
    p.write("gazette.toml", &config);
    p.write("subscribers/news.csv", "email\nann@example.org\n");
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    let counts = by_recipient(&server);
    assert_eq!(counts.get("ann@example.org"), Some(&1));
    assert_eq!(counts.get("eve@example.org"), Some(&1));
    assert!(!counts.contains_key("victim@example.com"));
    for m in server.messages() {
        let raw = String::from_utf8_lossy(&m.raw).into_owned();
        let headers = raw.split("\r\n\r\n").next().unwrap_or_default().to_owned();
        assert!(!headers.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc:")), "{headers}");
        let _ = MessageParser::default().parse(&m.raw).expect("mime");
    }
}

/// A server that does not offer SMTPUTF8 can never take `zoë@example.org`: that delivery fails
/// at once with the reason, where it was retried as temporary until `max_attempts` ran out, and
/// the reader stays active, since nothing was said of the address. An international domain
/// needs no SMTPUTF8: it goes out in its ASCII form. A server that offers SMTPUTF8 gets both.
fn an_address_the_server_cannot_take_fails_at_once_and_bounces_no_one(backend: Backend) {
    let list = "email,name\nreader0@example.org,Ann\nzoë@example.org,Zoë\njan@příklad.cz,Jan\nreader1@example.org,Bo\n";
    let server = SmtpServer::start(Options::default().no_smtputf8());
    let p = publication_on(backend, 0, &server.url(), "concurrency = 2\nmax_attempts = 4");
    p.write("subscribers/weekly.csv", list);
    let started = std::time::Instant::now();
    let doc = p.gazette(&["send", "--as-of", AS_OF, "--yes", "--json"]).ok().json();
    let took = started.elapsed();
    assert_eq!((doc["counts"]["sent"].as_u64(), doc["counts"]["failed"].as_u64()), (Some(3), Some(1)), "{doc:#}");
    assert_eq!(doc["counts"]["deferred"], 0, "{doc:#}");
    let failures = doc["failures"].as_array().expect("failures");
    assert_eq!(failures.len(), 1, "{doc:#}");
    assert_eq!(failures[0]["email"], "zoë@example.org");
    assert_eq!(failures[0]["attempts"], 1, "decided at once, not retried: {doc:#}");
    assert!(failures[0]["reply"].as_str().is_some_and(|r| r.contains("does not offer SMTPUTF8")), "{doc:#}");
    assert!(took < Duration::from_secs(10), "no retry waits: took {took:?}");

    let mut got: Vec<String> = by_recipient(&server).into_keys().collect();
    got.sort();
    assert_eq!(got, ["jan@xn--pklad-zsa96e.cz", "reader0@example.org", "reader1@example.org"]);
    let jan = server.messages().into_iter().find(|m| m.rcpt_tos[0].starts_with("jan@")).expect("jan's copy");
    let raw = String::from_utf8_lossy(&jan.raw).into_owned();
    assert!(raw.is_ascii(), "the message itself needs neither SMTPUTF8 nor 8BITMIME");

    let active = p.gazette(&["subscribers", "list", "--status", "active", "--json"]).ok().json();
    let active: Vec<&str> =
        active["subscribers"].as_array().expect("subscribers").iter().filter_map(|s| s["email"].as_str()).collect();
    assert!(active.contains(&"zoë@example.org"), "not a bounce: {active:?}");
    let issues = p.gazette(&["issues", "show", "1"]).ok().stdout();
    assert!(issues.contains("zoë@example.org") && issues.contains("SMTPUTF8"), "{issues}");

    // A server that offers SMTPUTF8 takes every address as it was given.
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 0, &server.url(), "");
    p.write("subscribers/weekly.csv", list);
    let doc = p.gazette(&["send", "--as-of", AS_OF, "--yes", "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 4, "{doc:#}");
    assert!(by_recipient(&server).contains_key("zoë@example.org"));
}

/// `issues show` lists the deliveries waiting for another attempt, with the server's reply and
/// the next attempt in the publication's zone (America/New_York), in the table and in JSON.
fn deferred_deliveries_are_listed_with_their_next_attempt(backend: Backend) {
    let server = SmtpServer::start(Options::default().tempfail_first(100));
    let p = publication_on(backend, 3, &server.url(), "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("retry_backoff = \"1s\"", "retry_backoff = \"1h\""));
    p.gazette(&["send", "--as-of", AS_OF, "--queue-only", "--yes"]).ok();
    let mut worker = crate::daemon::start(&p, "worker");
    crate::daemon::wait_until("every delivery deferred", Duration::from_secs(30), || {
        p.gazette(&["issues", "show", "1", "--json"]).ok().json()["counts"]["deferred"] == 3
    });
    crate::daemon::terminate(&mut worker);

    let doc = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert!(doc["failures"].as_array().is_some_and(Vec::is_empty), "{doc:#}");
    let deferred = doc["deferred"].as_array().expect("deferred");
    let mut emails: Vec<&str> = deferred.iter().filter_map(|d| d["email"].as_str()).collect();
    emails.sort_unstable();
    assert_eq!(emails, ["reader0@example.org", "reader1@example.org", "reader2@example.org"]);
    for d in deferred {
        assert!(d["reply"].as_str().is_some_and(|r| r.contains("451")), "{d}");
        assert_eq!(d["attempts"], 1, "{d}");
        let next = d["next_attempt"].as_str().expect("next_attempt");
        let at = chrono::DateTime::parse_from_rfc3339(next).expect("RFC 3339");
        assert!(matches!(at.offset().local_minus_utc(), -18_000 | -14_400), "in New York's zone: {next}");
        let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
        assert!(wait > chrono::Duration::minutes(20), "the backoff of 1h, give or take jitter: {next}");
    }

    let human = p.gazette(&["issues", "show", "1"]).ok().stdout();
    assert!(human.contains("Deferred") && human.contains("NEXT ATTEMPT"), "{human}");
    for line in human.lines().filter(|l| l.starts_with("reader")) {
        assert!(line.contains("451") && (line.contains(" EDT ") || line.contains(" EST ")), "{line}");
    }
    assert_eq!(human.lines().filter(|l| l.starts_with("reader")).count(), 3, "{human}");
}

/// A send whose every message was deferred once before it went out ends with deferred 0: the
/// closing line counts deliveries as the table does, where it counted deferrals ("5 sent,
/// 5 deferred" above "deferred 0"). Its rate is a whole number, or has one decimal under ten.
fn the_closing_line_of_a_send_agrees_with_its_table(backend: Backend) {
    let server = SmtpServer::start(Options::default().tempfail_first(1));
    let p = publication_on(backend, 5, &server.url(), "concurrency = 2");
    let out = p.gazette(&["send", "--as-of", AS_OF, "--yes"]).ok().stdout();
    let first = out.lines().next().unwrap_or_default();
    assert!(first.contains(": 5 sent, 0 deferred, 0 failed in "), "{out}");
    let counts = out.lines().find(|l| l.starts_with("queued ")).expect("the counts line");
    assert!(counts.contains("sent 5") && counts.contains("deferred 0"), "{out}");
    let rate = first.rsplit_once('(').and_then(|(_, r)| r.strip_suffix("/s)")).expect("a rate");
    let decimals = rate.split_once('.').map_or(0, |(_, d)| d.len());
    let value: f64 = rate.parse().expect("a number");
    assert!(decimals == 0 || (decimals == 1 && value < 10.0), "{first}");

    let doc = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    assert_eq!(doc["counts"]["deferred"], 0);
    assert!(doc["deferred"].as_array().is_some_and(Vec::is_empty), "{doc:#}");
}

/// Every rate key takes a count a second or a count per span: `rate = "120/m"` is two messages a
/// second, spaced evenly, where it was refused as not a number.
#[test]
fn a_rate_written_per_minute_paces_the_send() {
    let server = SmtpServer::start(Options::default());
    let p = publication(5, &server.url(), "rate = \"120/m\"\nconcurrency = 4");
    p.gazette(&["send", "--as-of", AS_OF, "--yes"]).ok();
    let mut times: Vec<f64> = server.messages().iter().map(|m| m.received_at).collect();
    assert_eq!(times.len(), 5);
    times.sort_by(f64::total_cmp);
    let span = times[4] - times[0];
    assert!((1.8..4.0).contains(&span), "5 messages at 2 a second arrived over {span:.2} s: {times:?}");

    p.write(
        "gazette.toml",
        &std::fs::read_to_string(p.path().join("gazette.toml")).expect("config").replace("\"120/m\"", "\"fast\""),
    );
    let run = p.gazette(&["issues", "list"]);
    assert_eq!(run.code(), 2);
    let said = run.stderr();
    assert!(said.contains("delivery.rate") && said.contains("gazette.toml:") && said.contains("20/s"), "{said}");
}

/// The store's `weekly` (ann, bob, dan, from before the list had a file) differs from the file
/// (ann, bob, cat, and eve, who unsubscribed): the send syncs the file first and reaches ann, bob
/// and cat. The dry run must say 3 and change nothing.
fn a_dry_run_counts_the_readers_the_send_reaches_after_the_list_file_sync(backend: Backend) {
    let server = SmtpServer::start(Options::default());
    let p = publication_on(backend, 0, &server.url(), "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("file = \"subscribers/weekly.csv\"\n", ""));
    let before = p.write("before.csv", "email\nann@example.org\nbob@example.org\ndan@example.org\neve@example.org\n");
    p.gazette(&["subscribers", "import", before.to_str().expect("utf-8 path"), "--list", "weekly"]).ok();
    p.gazette(&["subscribers", "remove", "eve@example.org"]).ok();
    p.write("gazette.toml", &config);
    p.write("subscribers/weekly.csv", "email\nann@example.org\nBob@example.org\ncat@example.org\neve@example.org\n");
    let members = || p.gazette(&["subscribers", "list", "--list", "weekly", "--json"]).ok().stdout();
    let stored = members();

    let dry = p.gazette(&["send", "--as-of", AS_OF, "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["would_send"]["recipients"], 3, "{dry:#}");
    assert_eq!(members(), stored, "the dry run changed nothing");

    let sent = p.gazette(&["send", "--as-of", AS_OF, "--yes", "--json"]).ok().json();
    assert_eq!(sent["counts"]["sent"], dry["would_send"]["recipients"], "{sent:#}");
    let mut to: Vec<String> = by_recipient(&server).into_keys().collect();
    to.sort();
    assert_eq!(to, ["ann@example.org", "bob@example.org", "cat@example.org"]);
}
