//! Scale-out on PostgreSQL: one `gazette run` and three `gazette worker` processes drain one
//! issue together; one worker is SIGKILLed half-way. Every subscriber gets the issue, duplicates
//! stay within what the killed worker had in flight, and the global `rate` holds across all of
//! them, as measured from the SMTP server's receive times.

use std::{
    collections::HashMap,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use crate::{
    deliver::{AS_OF, by_recipient, publication},
    postgres::TestDatabase,
    smtp::{Options, SmtpServer},
    support::Publication,
};

const SUBSCRIBERS: usize = 20_000;
const CONCURRENCY: usize = 4;
/// Well under what four processes reach on two cores, so that the rate, not the machine, paces
/// the run: without the shared bucket each process alone would send at this rate.
const RATE: usize = 200;

fn start(p: &Publication, db: &TestDatabase, command: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .arg(command)
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn gazette")
}

fn terminate(child: &mut Child) {
    // SIGTERM: in-flight sends finish and unsent claims go back.
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The most messages the server accepted in any window of `width` seconds.
fn busiest(times: &[f64], width: f64) -> usize {
    let mut best = 0;
    let mut start = 0;
    for end in 0..times.len() {
        while times[end] - times[start] >= width {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

#[test]
fn three_workers_and_a_daemon_share_one_issue_and_one_rate_through_a_kill() {
    let db = TestDatabase::create();
    let server = SmtpServer::start(Options::default());
    let p =
        publication(SUBSCRIBERS, &server.url(), &format!("concurrency = {CONCURRENCY}\nrate = {RATE}\nlease = \"3s\""));
    let queued = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .args(["send", "--queue-only", "--as-of", AS_OF, "--yes", "--json"])
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .env("DATABASE_URL", db.url())
        .output()
        .expect("queue the issue");
    assert!(queued.status.success(), "{}", String::from_utf8_lossy(&queued.stderr));

    let mut daemon = start(&p, &db, "run");
    let mut workers: Vec<Child> = (0..3).map(|_| start(&p, &db, "worker")).collect();
    let started = Instant::now();
    while server.accepted() < SUBSCRIBERS / 2 {
        assert!(started.elapsed() < Duration::from_secs(150), "half the issue took too long");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut victim = workers.remove(0);
    victim.kill().expect("SIGKILL");
    victim.wait().expect("reap");
    let at_kill = server.accepted();

    while server.accepted() < SUBSCRIBERS {
        assert!(started.elapsed() < Duration::from_secs(240), "the issue was not finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Let the survivors record their last outcomes and finish the issue.
    std::thread::sleep(Duration::from_secs(2));
    for w in &mut workers {
        terminate(w);
    }
    terminate(&mut daemon);

    let counts: HashMap<String, usize> = by_recipient(&server);
    assert_eq!(counts.len(), SUBSCRIBERS, "every subscriber got the issue");
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    eprintln!("killed at {at_kill} messages; {duplicates} duplicates");
    assert!(duplicates <= CONCURRENCY, "{duplicates} duplicates, more than the killed worker had in flight");

    let mut times: Vec<f64> = server.messages().iter().map(|m| m.received_at).collect();
    times.sort_by(f64::total_cmp);
    let span = times.last().copied().unwrap_or_default() - times.first().copied().unwrap_or_default();
    let average = times.len() as f64 / span.max(1e-3);
    let peak = busiest(&times, 1.0);
    eprintln!("average {average:.0} msg/s over {span:.1} s; busiest second {peak}; rate {RATE}");
    // Over the rate in one second: the bucket's fiftieth of a second, what each of the four
    // processes holds unspent (as much again), and the server stamping a message after its last
    // byte, so a window can catch what every sender started just before it.
    let slack = RATE / 50 * 5 + CONCURRENCY * 4;
    assert!(peak <= RATE + slack, "busiest second {peak} > rate {RATE} + {slack}");
    assert!(average <= RATE as f64 * 1.02, "average {average:.0} > rate {RATE}");
    // And the rate was what held them back: a run the machine slowed down proves nothing.
    assert!(average >= RATE as f64 * 0.7, "average {average:.0}: the run was not paced by the rate");

    let run = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .args(["issues", "show", "1", "--json"])
        .env("DATABASE_URL", db.url())
        .output()
        .expect("issues show");
    let doc: serde_json::Value = serde_json::from_slice(&run.stdout).expect("json");
    assert_eq!(doc["status"], "sent", "{doc:#}");
    assert_eq!(doc["counts"]["sent"], SUBSCRIBERS as u64, "{doc:#}");
}
