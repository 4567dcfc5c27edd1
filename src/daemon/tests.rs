//! The scheduler against a settable clock: no test waits for a real Monday.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::*;
use crate::{
    config::{Config, Environment, LinkSecret},
    domain::IssueStatus,
};

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("date")
}

struct Fixture {
    dir: tempfile::TempDir,
    publication: Arc<Publication>,
}

impl Fixture {
    async fn new(tz: &str, cron: &str, catch_up: &str) -> Self {
        Self::with(tz, &format!("[schedule]\ncron = \"{cron}\"\ncatch_up = \"{catch_up}\"\n")).await
    }

    /// A publication whose schedule is `schedule` (`[schedule]`, or `[[edition]]`s).
    async fn with(tz: &str, schedule: &str) -> Self {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("articles")).expect("mkdir");
        std::fs::write(dir.path().join("list.csv"), "email\nann@example.org\nbob@example.org\n").expect("csv");
        let config = format!(
            "[publication]\nname = \"T\"\nfrom = \"t@example.org\"\ntimezone = \"{tz}\"\nlists = [\"weekly\"]\n\
             [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"7d\"\n\
             {schedule}\
             [[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n[delivery]\noutbox = \"outbox\"\n"
        );
        let file = dir.path().join("gazette.toml");
        std::fs::write(&file, &config).expect("config");
        let config = Config::parse(&config, &file, &Environment::default()).expect("config parses");
        let publication = Arc::new(Publication::open(config, LinkSecret::from_bytes(vec![1; 32])).await.expect("open"));
        Self { dir, publication }
    }

    async fn store(&self) -> Store {
        Store::open(&format!("sqlite://{}", self.dir.path().join("g.db").display())).await.expect("store")
    }

    fn article(&self, name: &str, date: DateTime<Utc>) {
        let text = format!("+++\ntitle = \"{name}\"\ndate = \"{}\"\n+++\nBody of {name}.\n", date.to_rfc3339());
        std::fs::write(self.dir.path().join("articles").join(format!("{name}.md")), text).expect("article");
    }

    async fn tick(&self, store: &Store, now: DateTime<Utc>) -> Vec<(Slot, SlotAction)> {
        serve_due_slots(&self.publication, store, now).await.expect("tick")
    }

    /// Marks every queued delivery of every sending issue as sent, as a worker would.
    async fn deliver_all(&self, store: &Store, now: DateTime<Utc>) {
        for n in store.sending_issues().await.expect("issues") {
            let claimed = store.claim(n, "w", 1000, now, std::time::Duration::from_secs(30)).await.expect("claim");
            let outcomes: Vec<_> = claimed
                .iter()
                .map(|c| crate::domain::Outcome::Sent {
                    delivery_id: c.delivery_id,
                    message_id: "<x@t>".into(),
                    reply: None,
                })
                .collect();
            store.record("w", &outcomes, now).await.expect("record");
            store.finish_issue_if_done(n, now).await.expect("finish");
        }
    }
}

fn created(actions: &[(Slot, SlotAction)]) -> Vec<u32> {
    actions.iter().filter_map(|(_, a)| if let SlotAction::Created(n) = a { Some(*n) } else { None }).collect()
}

/// Ticks every hour from `from` to `to`, adding an article a day before each Monday and
/// delivering what each slot created; returns the UTC instants of the slots that made issues.
async fn weekly_across(f: &Fixture, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
    let store = f.store().await;
    let mut t = from;
    let mut made = Vec::new();
    let mut week = 0;
    while t <= to {
        if t.format("%a %H").to_string() == "Sun 12" {
            week += 1;
            f.article(&format!("week-{week}"), t);
        }
        for (slot, action) in f.tick(&store, t).await {
            if let SlotAction::Created(_) = action {
                made.push(slot.at);
            }
        }
        f.deliver_all(&store, t).await;
        t += Duration::hours(1);
    }
    made
}

#[tokio::test]
async fn weekly_at_nine_in_paris_across_both_dst_changes() {
    let f = Fixture::new("Europe/Paris", "0 0 9 * * Mon", "24h").await;
    let spring = weekly_across(&f, utc(2024, 3, 16, 0, 0), utc(2024, 4, 9, 0, 0)).await;
    let hours: Vec<String> = spring.iter().map(|t| t.format("%m-%d %H:%M").to_string()).collect();
    assert_eq!(hours, ["03-18 08:00", "03-25 08:00", "04-01 07:00", "04-08 07:00"]);
    let f = Fixture::new("Europe/Paris", "0 0 9 * * Mon", "24h").await;
    let autumn = weekly_across(&f, utc(2024, 10, 19, 0, 0), utc(2024, 11, 6, 0, 0)).await;
    let hours: Vec<String> = autumn.iter().map(|t| t.format("%m-%d %H:%M").to_string()).collect();
    assert_eq!(hours, ["10-21 07:00", "10-28 08:00", "11-04 08:00"]);
}

#[tokio::test]
async fn a_slot_in_new_yorks_missing_and_doubled_hours_fires_once() {
    // 02:30 on Sundays: on 10 March 2024 that hour does not exist, on 3 November 01:30 is doubled.
    let f = Fixture::new("America/New_York", "0 30 2 * * Sun", "24h").await;
    let store = f.store().await;
    f.article("spring", utc(2024, 3, 9, 12, 0));
    let mut fired = Vec::new();
    let mut t = utc(2024, 3, 9, 20, 0);
    while t <= utc(2024, 3, 10, 20, 0) {
        fired.extend(created(&f.tick(&store, t).await).into_iter().map(|n| (n, t)));
        t += Duration::minutes(10);
    }
    assert_eq!(fired.len(), 1, "{fired:?}");
    assert_eq!(fired[0].1, utc(2024, 3, 10, 7, 30), "03:30 EDT, right after the gap");

    let f = Fixture::new("America/New_York", "0 30 1 * * Sun", "24h").await;
    let store = f.store().await;
    f.article("autumn", utc(2024, 11, 2, 12, 0));
    let mut fired = 0;
    let mut t = utc(2024, 11, 3, 0, 0);
    while t <= utc(2024, 11, 3, 12, 0) {
        fired += created(&f.tick(&store, t).await).len();
        t += Duration::minutes(10);
    }
    assert_eq!(fired, 1);
}

#[tokio::test]
async fn down_for_two_slots_one_is_made_up_and_the_older_is_recorded_missed() {
    let f = Fixture::new("UTC", "0 0 9 * * *", "12h").await;
    let store = f.store().await;
    f.article("a", utc(2024, 3, 10, 8, 0));
    assert_eq!(created(&f.tick(&store, utc(2024, 3, 10, 9, 0)).await), [1]);
    f.deliver_all(&store, utc(2024, 3, 10, 10, 0)).await;
    // Down from the 10th until the 12th at 15:00: the 11th is a day old (beyond catch_up), the
    // 12th six hours old (within it).
    f.article("b", utc(2024, 3, 12, 7, 0));
    let actions = f.tick(&store, utc(2024, 3, 12, 15, 0)).await;
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0].1, SlotAction::Missed);
    assert_eq!(actions[1].1, SlotAction::Created(2));
    let slots = store.slots().await.expect("slots");
    assert_eq!(slots.iter().map(|s| s.outcome.as_str()).collect::<Vec<_>>(), ["issue", "missed", "issue"]);
    // Ticking again changes nothing.
    assert!(created(&f.tick(&store, utc(2024, 3, 12, 15, 1)).await).is_empty());
    // Down past the next slot's catch_up too: no issue, the slot is recorded missed.
    f.deliver_all(&store, utc(2024, 3, 12, 16, 0)).await;
    f.article("c", utc(2024, 3, 13, 7, 0));
    let actions = f.tick(&store, utc(2024, 3, 13, 23, 0)).await;
    assert_eq!(actions.last().map(|a| a.1.clone()), Some(SlotAction::Missed));
}

#[tokio::test]
async fn two_daemons_on_one_file_make_one_issue_per_slot() {
    let f = Fixture::new("UTC", "0 0 9 * * *", "24h").await;
    f.article("a", utc(2024, 3, 10, 8, 0));
    let (a, b) = (f.store().await, f.store().await);
    let now = utc(2024, 3, 10, 9, 0);
    let (ra, rb) = tokio::join!(serve_due_slots(&f.publication, &a, now), serve_due_slots(&f.publication, &b, now));
    let made = created(&ra.expect("a")).len() + created(&rb.expect("b")).len();
    assert_eq!(made, 1);
    assert_eq!(a.issues().await.expect("issues").len(), 1);
}

#[tokio::test]
async fn empty_weeks_are_skipped_with_the_reason_and_clock_jumps_change_nothing() {
    let f = Fixture::new("UTC", "0 0 9 * * *", "24h").await;
    let store = f.store().await;
    let actions = f.tick(&store, utc(2024, 3, 10, 9, 0)).await;
    assert!(matches!(&actions[0].1, SlotAction::Skipped(r) if r.contains("no article")), "{actions:?}");
    f.article("a", utc(2024, 3, 11, 8, 0));
    assert_eq!(created(&f.tick(&store, utc(2024, 3, 11, 9, 0)).await), [1]);
    f.deliver_all(&store, utc(2024, 3, 11, 9, 30)).await;
    // The clock jumps back an hour, then forward again: the slot is not served twice.
    assert!(created(&f.tick(&store, utc(2024, 3, 11, 8, 0)).await).is_empty());
    assert!(created(&f.tick(&store, utc(2024, 3, 11, 9, 30)).await).is_empty());
    // The next day nothing is new: skipped, since the only article was carried.
    let actions = f.tick(&store, utc(2024, 3, 12, 9, 0)).await;
    assert!(matches!(&actions[0].1, SlotAction::Skipped(r) if r.contains("nothing new")), "{actions:?}");
    assert_eq!(store.issues().await.expect("issues").len(), 1);
}

#[tokio::test]
async fn an_unfinished_issue_is_finished_before_a_new_slot_is_served() {
    let f = Fixture::new("UTC", "0 0 9 * * *", "24h").await;
    let store = f.store().await;
    f.article("a", utc(2024, 3, 10, 8, 0));
    assert_eq!(created(&f.tick(&store, utc(2024, 3, 10, 9, 0)).await), [1]);
    // A restart with issue 1 still going out: the next slot waits for it.
    f.article("b", utc(2024, 3, 11, 8, 0));
    let actions = f.tick(&store, utc(2024, 3, 11, 9, 0)).await;
    assert_eq!(actions[0].1, SlotAction::Waiting(1));
    f.deliver_all(&store, utc(2024, 3, 11, 9, 1)).await;
    assert_eq!(store.issue(1).await.expect("i").map(|i| i.status), Some(IssueStatus::Sent));
    assert_eq!(created(&f.tick(&store, utc(2024, 3, 11, 9, 2)).await), [2]);
}

const EDITIONS: &str = "[[edition]]\nname = \"Daily\"\ncron = \"0 0 9 * * *\"\nmax_age = \"1d\"\n\
     [[edition]]\nname = \"weekly\"\ncron = \"0 0 9 * * Mon\"\nmax_age = \"7d\"\ndefault = true\n\
     [[edition]]\nname = \"special\"\nmax_age = \"30d\"\n";

#[tokio::test]
async fn each_edition_serves_its_own_slots_once_under_keys_of_its_own() {
    let f = Fixture::with("UTC", EDITIONS).await;
    let store = f.store().await;
    // Sunday 10 to Monday 18 March 2024, an article every morning; slots at 09:00 daily and on
    // Mondays. Ticks every half hour, and each tick twice, as two daemons would.
    let mut made = 0;
    let mut t = utc(2024, 3, 10, 0, 0);
    while t <= utc(2024, 3, 18, 12, 0) {
        if t.format("%H:%M").to_string() == "08:00" {
            f.article(&format!("day-{}", t.format("%d")), t);
        }
        made += created(&f.tick(&store, t).await).len();
        made += created(&f.tick(&store, t).await).len();
        f.deliver_all(&store, t).await;
        t += Duration::minutes(30);
    }
    let slots = store.slots().await.expect("slots");
    let mut keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
    keys.sort_unstable();
    // The first tick, at midnight, serves the 9th's daily slot (within catch_up): no article yet.
    let mut expected: Vec<String> = (9..=18).map(|d| format!("daily@2024-03-{d:02}T09:00:00 UTC")).collect();
    expected.push("weekly@2024-03-11T09:00:00 UTC".into());
    expected.push("weekly@2024-03-18T09:00:00 UTC".into());
    expected.sort_unstable();
    assert_eq!(keys, expected, "every slot of each edition once, none of the edition without a cron");
    // An issue for each slot that says it made one, and no other.
    let with_issue = slots.iter().filter(|s| s.outcome == "issue").count();
    assert_eq!(made, with_issue);
    assert_eq!(store.issues().await.expect("issues").len(), with_issue);
    let daily: Vec<&str> = slots.iter().filter(|s| s.key.starts_with("daily@")).map(|s| s.outcome.as_str()).collect();
    assert_eq!(daily[0], "skipped");
    assert!(daily[1..].iter().all(|o| *o == "issue"), "{slots:?}");
    // Ticking again, even with the clock set back, serves nothing twice.
    assert!(created(&f.tick(&store, utc(2024, 3, 18, 9, 0)).await).is_empty());
    assert!(created(&f.tick(&store, utc(2024, 3, 14, 9, 0)).await).is_empty());
}

#[tokio::test]
async fn without_editions_slot_keys_are_as_they_were() {
    let f = Fixture::new("Europe/Paris", "0 0 9 * * *", "24h").await;
    let store = f.store().await;
    f.article("a", utc(2024, 3, 10, 7, 0));
    assert_eq!(created(&f.tick(&store, utc(2024, 3, 10, 8, 0)).await), [1]);
    let keys: Vec<String> = store.slots().await.expect("slots").into_iter().map(|s| s.key).collect();
    assert_eq!(keys, ["2024-03-10T09:00:00 Europe/Paris"]);
    let t = Timetable::all(&f.publication.config);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].prefix(), "");
}

#[tokio::test]
async fn an_edition_missed_or_passed_over_is_recorded_under_its_own_key() {
    let f = Fixture::with("UTC", EDITIONS).await;
    let store = f.store().await;
    f.article("a", utc(2024, 3, 11, 8, 0));
    // Monday 11 March: both editions' slots served (the daily first, in the file's order).
    for t in [utc(2024, 3, 11, 9, 0), utc(2024, 3, 11, 9, 10)] {
        f.tick(&store, t).await;
        f.deliver_all(&store, t).await;
    }
    // Down until Tuesday 19: the daily slots between and Monday 18's weekly one, more than the
    // default catch_up of 24h old, are recorded missed, each under its own edition's key.
    f.article("b", utc(2024, 3, 19, 8, 0));
    f.tick(&store, utc(2024, 3, 19, 9, 30)).await;
    let slots = store.slots().await.expect("slots");
    let outcomes = |prefix: &str| -> Vec<&str> {
        slots.iter().filter(|s| s.key.starts_with(prefix)).map(|s| s.outcome.as_str()).collect()
    };
    assert_eq!(
        outcomes("daily@"),
        ["issue", "missed", "missed", "missed", "missed", "missed", "missed", "missed", "issue"]
    );
    assert_eq!(outcomes("weekly@").len(), 2, "{slots:?}");
    assert_eq!(outcomes("weekly@")[1], "missed");
    assert_eq!(
        store.last_slot_at_of("weekly@").await.expect("last"),
        Some(utc(2024, 3, 18, 9, 0)),
        "the weekly edition's own last slot, not the daily one's"
    );
}

#[tokio::test]
async fn under_review_each_editions_next_slot_is_drafted_ahead_once() {
    let review = format!("{EDITIONS}[review]\neditors = [\"ed@example.org\"]\nlead = \"24h\"\n");
    let f = Fixture::with("UTC", &review).await;
    let store = f.store().await;
    // Monday 18 March 09:00 is the next slot of both editions; less than a day ahead, both are
    // drafted.
    f.article("old", utc(2024, 3, 14, 8, 0));
    f.article("new", utc(2024, 3, 17, 9, 30));
    let actions = draft_ahead(&f.publication, &store, utc(2024, 3, 17, 10, 0)).await.expect("drafts");
    assert_eq!(actions, [SlotAction::Drafted(1), SlotAction::Drafted(2)]);
    let slots = store.slots().await.expect("slots");
    let keys: Vec<(&str, Option<u32>)> = slots.iter().map(|s| (s.key.as_str(), s.issue_number)).collect();
    assert_eq!(keys, [("daily@2024-03-18T09:00:00 UTC", Some(1)), ("weekly@2024-03-18T09:00:00 UTC", Some(2))]);
    // Each edition's draft is chosen with its own max_age: four days old is too old for the daily.
    let titles = |n: u32| {
        let store = store.clone();
        async move {
            let i = store.issue(n).await.expect("read").expect("issue");
            assert_eq!(i.status, IssueStatus::Draft);
            i.articles.iter().map(|a| a.title.clone()).collect::<Vec<_>>()
        }
    };
    assert_eq!(titles(1).await, ["new"]);
    assert!(titles(2).await.contains(&"old".to_owned()));
    // Drafted once: later passes, and the slots themselves, make nothing more.
    assert!(draft_ahead(&f.publication, &store, utc(2024, 3, 17, 11, 0)).await.expect("again").is_empty());
    assert!(created(&f.tick(&store, utc(2024, 3, 18, 9, 0)).await).is_empty());
    assert_eq!(store.issues().await.expect("issues").len(), 2);
}
