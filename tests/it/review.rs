//! Review before sending, end to end: the daemon's scheduler run in this process against a clock
//! the test sets, delivering to the real SMTP test server; and the commands against the binary.
//! A draft is made `lead` before its slot and mailed to the editors; at the slot an approved
//! issue goes to every reader, an unapproved one is held (with `approval = "required"`) and the
//! editors told, a held one is not sent; edits reach every reader's copy.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, TimeZone, Utc};
use gazette::{
    clock::Clock,
    config::{Config, Environment, LinkSecret},
    daemon::{self, Roles},
    deliver::Stop,
    domain::{Actor, IssueStatus},
    publication::Publication as Live,
    review,
    store::Store,
};

use crate::{
    postgres::TestDatabase,
    smtp::{Options, Received, SmtpServer},
    support::Publication,
};

/// A clock the test moves.
struct SetClock(Mutex<DateTime<Utc>>);

impl Clock for SetClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().expect("clock")
    }
}

impl SetClock {
    fn set(&self, t: DateTime<Utc>) {
        *self.0.lock().expect("clock") = t;
    }
}

const READERS: [&str; 3] = ["ann@example.org", "bob@example.org", "cy@example.org"];
const EDITOR: &str = "editor@example.org";

/// Sunday 17 March 2024, 08:00 UTC: 25 hours before the slot.
fn sunday(h: u32, m: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 17, h, m, 0).single().expect("time")
}

/// The slot: Monday 18 March 2024, 09:00 UTC.
fn slot() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 18, 9, 0, 0).single().expect("time")
}

fn publication(server: &SmtpServer, approval: &str, database: &str) -> Publication {
    let p = Publication::with_config("");
    let mut csv = String::from("email\n");
    for r in READERS {
        csv.push_str(r);
        csv.push('\n');
    }
    p.write("list.csv", &csv);
    for (n, title) in [(1, "Spring planting"), (2, "Winter pruning"), (3, "Compost again")] {
        p.write(
            &format!("articles/{n}.md"),
            &format!(
                "+++\ntitle = \"{title}\"\ndate = \"2024-03-1{n}T12:00:00Z\"\nurl = \"https://garden.example.org/{n}\"\n+++\nAbout {title}.\n"
            ),
        );
    }
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"Garden\"\nfrom = \"Garden <garden@example.org>\"\nbase_url = \"https://garden.example.org\"\nlists = [\"weekly\"]\n\
             [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"7d\"\n\
             [schedule]\ncron = \"0 0 9 * * Mon\"\ncatch_up = \"2h\"\n\
             [[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n\
             [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n\
             [storage]\ndatabase_url = {database:?}\n\
             [review]\neditors = [{EDITOR:?}]\nlead = \"24h\"\napproval = {approval:?}\n",
            server.url()
        ),
    );
    p
}

/// The daemon of `p` in this process, on `clock`, until dropped.
struct Daemon {
    live: Arc<Live>,
    store: Store,
    stop: tokio::sync::watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Daemon {
    async fn start(p: &Publication, clock: Arc<SetClock>) -> Self {
        let file = p.path().join("gazette.toml");
        let text = std::fs::read_to_string(&file).expect("config");
        let config = Config::parse(&text, &file, &Environment::default()).expect("config parses");
        let store = gazette::setup::open_store(&config).await.expect("store");
        let transport = gazette::setup::transport(&config).await.expect("transport");
        let live = Arc::new(Live::open(config, LinkSecret::from_bytes(vec![7; 32])).await.expect("publication"));
        let (stop, watch) = Stop::new();
        let roles = Roles { scheduler: true, workers: true };
        let task = tokio::spawn({
            let (live, store) = (Arc::clone(&live), store.clone());
            async move {
                daemon::run(live, store, transport, clock, watch, roles).await.expect("the daemon runs");
            }
        });
        Self { live, store, stop, task }
    }

    async fn status(&self, number: u32) -> IssueStatus {
        self.store.issue(number).await.expect("read").expect("issue").status
    }

    async fn stop(self) {
        let _ = self.stop.send(true);
        tokio::time::timeout(Duration::from_secs(20), self.task).await.expect("stops").expect("joins");
    }
}

fn to(server: &SmtpServer, who: &str) -> Vec<Received> {
    server.messages().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == who)).collect()
}

fn readers_got(server: &SmtpServer) -> usize {
    READERS.iter().map(|r| to(server, r).len()).sum()
}

async fn wait(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Both parts of a received message, as text.
fn parts(m: &Received) -> (String, String, String) {
    let parsed = m.parsed();
    (
        parsed.subject().unwrap_or_default().to_owned(),
        parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default(),
        parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default(),
    )
}

/// The store beside the config.
const SQLITE: &str = "sqlite://gazette.db";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_reaches_the_editors_ahead_and_once_approved_goes_to_every_reader_with_its_edits() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, "required", SQLITE);
    let clock = Arc::new(SetClock(Mutex::new(sunday(8, 0))));
    let d = Daemon::start(&p, Arc::clone(&clock)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(server.messages().is_empty(), "nothing before slot minus lead");

    clock.set(sunday(9, 30));
    wait("the review copy", || !to(&server, EDITOR).is_empty()).await;
    assert_eq!(d.status(1).await, IssueStatus::Draft);
    let review = to(&server, EDITOR);
    assert_eq!(review.len(), 1);
    let (subject, text, html) = parts(&review[0]);
    assert!(subject.starts_with("[Review] "), "{subject}");
    assert!(text.contains("https://garden.example.org/admin/issues/1"), "{text}");
    assert!(html.contains("https://garden.example.org/admin/issues/1"), "the HTML links to the desk");
    assert!(text.contains("Spring planting"), "the review copy is the issue as readers will see it");
    assert_eq!(readers_got(&server), 0);

    // The editor edits from the command line: subject, intro, one article left out, the order.
    let intro = p.write("intro.md", "A *warm* welcome to spring.\n\nSecond paragraph here.\n");
    let intro = intro.to_str().expect("a UTF-8 path");
    let edited = p
        .gazette(&[
            "issues",
            "edit",
            "1",
            "--subject",
            "Garden: spring is here",
            "--intro",
            intro,
            "--exclude",
            "https://garden.example.org/2",
            "--order",
            "https://garden.example.org/1,https://garden.example.org/3",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(edited["subject"], "Garden: spring is here");
    assert_eq!(edited["left_out"][0]["url"], "https://garden.example.org/2");
    assert_eq!(edited["history"][0]["action"], "edited");
    let unknown = p.gazette(&["issues", "edit", "1", "--exclude", "https://garden.example.org/9"]);
    assert_eq!(unknown.code(), 2, "{}", unknown.stderr());

    review::approve(&d.live, &d.store, 1, &Actor::CommandLine, clock.now()).await.expect("approve");
    assert_eq!(d.status(1).await, IssueStatus::Approved, "approved ahead, it waits for its slot");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(readers_got(&server), 0, "not before the slot");

    clock.set(slot() + chrono::Duration::seconds(1));
    wait("every reader's copy", || readers_got(&server) == READERS.len()).await;
    for r in READERS {
        let got = to(&server, r);
        assert_eq!(got.len(), 1, "{r} got one copy");
        let (subject, text, html) = parts(&got[0]);
        assert_eq!(subject, "Garden: spring is here");
        assert!(text.contains("A warm welcome to spring."), "{text}");
        assert!(text.contains("Second paragraph here."), "{text}");
        assert!(html.contains("<em>warm</em>"), "the intro is Markdown rendered");
        assert!(!text.contains("Winter pruning") && !html.contains("Winter pruning"), "the left-out article");
        let (first, third) = (text.find("Spring planting").expect("1"), text.find("Compost again").expect("3"));
        assert!(first < third, "the editor's order");
        let intro_at = text.find("A warm welcome").expect("intro");
        assert!(intro_at < first, "the intro stands above the articles");
    }
    wait("the issue sent", || server.messages().len() == READERS.len() + 1).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_draft_not_approved_by_its_slot_is_held_and_sent_at_once_when_approved() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, "required", SQLITE);
    let clock = Arc::new(SetClock(Mutex::new(sunday(10, 0))));
    let d = Daemon::start(&p, Arc::clone(&clock)).await;
    wait("the review copy", || to(&server, EDITOR).len() == 1).await;

    clock.set(slot() + chrono::Duration::seconds(1));
    wait("the editors told", || to(&server, EDITOR).len() == 2).await;
    let (_, text, _) = parts(&to(&server, EDITOR)[1]);
    assert!(text.contains("held"), "{text}");
    assert!(text.contains("https://garden.example.org/admin/issues/1"), "{text}");
    assert_eq!(d.status(1).await, IssueStatus::Held);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(readers_got(&server), 0, "a held issue is not sent");

    let sent = p.gazette(&["send", "--yes"]);
    assert_eq!(sent.code(), 2, "{}", sent.stdout());
    assert!(sent.stderr().contains("gazette issues approve 1"), "{}", sent.stderr());

    review::approve(&d.live, &d.store, 1, &Actor::CommandLine, clock.now()).await.expect("approve");
    wait("every reader's copy", || readers_got(&server) == READERS.len()).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_approval_a_held_draft_is_not_sent() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, "auto", SQLITE);
    let clock = Arc::new(SetClock(Mutex::new(sunday(10, 0))));
    let d = Daemon::start(&p, Arc::clone(&clock)).await;
    wait("the review copy", || to(&server, EDITOR).len() == 1).await;
    let held = p.gazette(&["issues", "hold", "1", "--json"]).ok().json();
    assert_eq!(held["status"], "held");
    clock.set(slot() + chrono::Duration::seconds(1));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(readers_got(&server), 0);
    assert_eq!(d.status(1).await, IssueStatus::Held);
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auto_approval_a_draft_nobody_held_goes_out_at_its_slot() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, "auto", SQLITE);
    let clock = Arc::new(SetClock(Mutex::new(sunday(10, 0))));
    let d = Daemon::start(&p, Arc::clone(&clock)).await;
    wait("the review copy", || to(&server, EDITOR).len() == 1).await;
    clock.set(slot() + chrono::Duration::seconds(1));
    wait("every reader's copy", || readers_got(&server) == READERS.len()).await;
    d.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_daemons_on_postgres_make_the_slots_draft_once() {
    let server = SmtpServer::start(Options::default());
    let db = TestDatabase::create();
    let p = publication(&server, "required", db.url());
    let clock = Arc::new(SetClock(Mutex::new(sunday(8, 0))));
    let (a, b) = (Daemon::start(&p, Arc::clone(&clock)).await, Daemon::start(&p, Arc::clone(&clock)).await);
    clock.set(sunday(9, 30));
    wait("the review copy", || !to(&server, EDITOR).is_empty()).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(to(&server, EDITOR).len(), 1, "one draft, mailed once");
    let issues = a.store.issues().await.expect("issues");
    assert_eq!(issues.len(), 1);
    assert_eq!(issues[0].status, IssueStatus::Draft);
    a.stop().await;
    b.stop().await;
}

/// `gazette draft` without a schedule's slot, and `send`'s refusal until it is approved.
#[test]
fn send_refuses_a_draft_that_needs_approval_and_delivers_it_once_approved() {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, "required", SQLITE);
    let drafted = p.gazette(&["draft", "--as-of", "2024-03-17", "--json"]).ok().json();
    assert_eq!(drafted["status"], "draft");
    assert_eq!(drafted["send_at"], serde_json::Value::Null);
    assert_eq!(to(&server, EDITOR).len(), 1, "the review copy went to the editor");
    let refused = p.gazette(&["send", "--yes", "--as-of", "2024-03-17"]);
    assert_eq!(refused.code(), 2);
    assert!(refused.stderr().contains("gazette issues approve 1"), "{}", refused.stderr());
    assert_eq!(readers_got(&server), 0);
    let again = p.gazette(&["issues", "edit", "1", "--subject", "two\nlines"]);
    assert_eq!(again.code(), 2);
    let approved = p.gazette(&["issues", "approve", "1", "--json"]).ok().json();
    assert_eq!(approved["status"], "sending", "no slot: queued at once");
    assert_eq!(p.gazette(&["issues", "approve", "1"]).code(), 2, "a wrong state is exit 2");
    p.gazette(&["send", "--yes", "--as-of", "2024-03-17"]).ok();
    assert_eq!(readers_got(&server), READERS.len());
    let shown = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    let actions: Vec<&str> =
        shown["history"].as_array().expect("history").iter().filter_map(|h| h["action"].as_str()).collect();
    assert_eq!(actions, ["approved", "drafted"]);
}
