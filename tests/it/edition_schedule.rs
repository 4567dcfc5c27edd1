//! Editions from the command line: `--edition` on `articles`, `preview`, `send` and `draft` (an
//! unknown name refused with the names offered), each edition's `max_age`, a subscriber's copy
//! of their edition and topics, and `check`'s next runs per edition.

use crate::{subscribers::edit_store, support::Publication};

const AS_OF: &str = "2024-03-16T08:00:00Z";

const CONFIG: &str = "[publication]\nname = \"Editions\"\nfrom = \"Editions <e@example.org>\"\n\
    base_url = \"https://e.example.org\"\ntimezone = \"UTC\"\nlists = [\"readers\"]\n\
    [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"7d\"\n\
    [[list]]\nname = \"readers\"\n[delivery]\ntransport = \"outbox\"\noutbox = \"outbox\"\n\
    [[topic]]\nname = \"Science\"\ntags = [\"science\"]\n\
    [[topic]]\nname = \"Arts & Culture\"\ntags = [\"arts\", \"culture\"]\n\
    [[edition]]\nname = \"Daily\"\ncron = \"0 0 9 * * *\"\nmax_age = \"1d\"\n\
    [[edition]]\nname = \"weekly\"\ncron = \"0 0 9 * * Mon\"\nmax_age = \"7d\"\ndefault = true\n";

fn publication() -> Publication {
    let p = Publication::with_config(CONFIG);
    for (name, date, tag) in [
        ("old-science", "2024-03-13T10:00:00Z", "science"),
        ("new-arts", "2024-03-15T20:00:00Z", "arts"),
        ("new-science", "2024-03-15T22:00:00Z", "science"),
    ] {
        p.write(
            &format!("articles/{name}.md"),
            &format!("+++\ntitle = \"{name}\"\ndate = \"{date}\"\ntags = [\"{tag}\"]\n+++\nAbout {name}.\n"),
        );
    }
    p
}

fn titles(json: &serde_json::Value) -> Vec<String> {
    let mut t: Vec<String> = json["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .filter_map(|a| a["title"].as_str().map(str::to_owned))
        .collect();
    t.sort_unstable();
    t
}

#[test]
fn an_unknown_edition_is_refused_naming_the_editions_offered() {
    let p = publication();
    for args in [
        &["articles", "--edition", "monthly"][..],
        &["preview", "--edition", "monthly"],
        &["send", "--edition", "monthly", "--yes"],
        &["send", "--edition", "monthly", "--dry-run"],
        &["draft", "--edition", "monthly"],
    ] {
        let run = p.gazette(args);
        assert_eq!(run.code(), 2, "{args:?}: {}", run.stderr());
        assert!(
            run.stderr().contains("--edition monthly") && run.stderr().contains("Daily, weekly"),
            "{}",
            run.stderr()
        );
    }
    // Nothing was made by any of them.
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    assert_eq!(issues["issues"].as_array().map(Vec::len), Some(0), "{issues}");

    // Without [[edition]], --edition names nothing that exists.
    let plain = Publication::with_config(&CONFIG[..CONFIG.find("[[topic]]").expect("topics")]);
    plain.write("articles/a.md", "+++\ntitle = \"a\"\ndate = \"2024-03-15T10:00:00Z\"\n+++\nA.\n");
    let run = plain.gazette(&["articles", "--edition", "weekly"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("no [[edition]]"), "{}", run.stderr());
    assert_eq!(titles(&plain.gazette(&["articles", "--as-of", AS_OF, "--json"]).ok().json()), ["a"]);
}

#[test]
fn each_edition_chooses_with_its_own_max_age_and_the_default_without_a_name() {
    let p = publication();
    let daily = p.gazette(&["articles", "--as-of", AS_OF, "--edition", "DAILY", "--json"]).ok().json();
    assert_eq!(titles(&daily), ["new-arts", "new-science"], "a day old at most");
    let weekly = p.gazette(&["articles", "--as-of", AS_OF, "--edition", "weekly", "--json"]).ok().json();
    assert_eq!(titles(&weekly), ["new-arts", "new-science", "old-science"]);
    let default = p.gazette(&["articles", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(titles(&default), titles(&weekly), "the default edition is weekly");
    let dry = p.gazette(&["send", "--as-of", AS_OF, "--edition", "daily", "--dry-run", "--json"]).ok().json();
    assert_eq!(dry["would_send"]["articles"].as_array().map(Vec::len), Some(2), "{dry}");
}

#[test]
fn a_subscribers_preview_is_their_edition_and_topics_unless_an_edition_is_named() {
    let p = publication();
    p.gazette(&["subscribers", "add", "ann@example.org", "--name", "Ann", "--list", "readers"]).ok();
    assert!(edit_store(
        &p,
        "UPDATE subscribers SET edition = 'daily', topics = ';science;' WHERE email = 'ann@example.org'"
    ));
    let preview = |extra: &[&str]| {
        let mut args =
            vec!["preview", "--as-of", AS_OF, "--subscriber", "ann@example.org", "--format", "text", "--json"];
        args.extend_from_slice(extra);
        p.gazette(&args).ok().json()
    };
    let own = preview(&[]);
    assert_eq!(own["edition"], "Daily", "{own}");
    assert_eq!(own["topics"], serde_json::json!(["Science"]));
    assert_eq!(own["articles"], 1, "the daily edition's science article only: {own}");
    let text = own["content"].as_str().expect("content");
    assert!(text.contains("new-science") && !text.contains("new-arts") && !text.contains("old-science"), "{text}");

    let weekly = preview(&["--edition", "Weekly"]);
    assert_eq!(weekly["edition"], "weekly");
    assert_eq!(weekly["articles"], 2, "the weekly edition's science articles: {weekly}");

    // Nothing of theirs in this edition: the preview says they would be skipped.
    assert!(edit_store(&p, "UPDATE subscribers SET topics = ';arts & culture;' WHERE email = 'ann@example.org'"));
    p.write(
        "articles/new-arts.md",
        "+++\ntitle = \"x\"\ndate = \"2020-01-01T00:00:00Z\"\ntags = [\"arts\"]\n+++\nX.\n",
    );
    let run = p.gazette(&["preview", "--as-of", AS_OF, "--subscriber", "ann@example.org", "--json"]).ok();
    assert_eq!(run.json()["articles"], 0);
    assert!(run.stderr().contains("skip"), "{}", run.stderr());

    // A reader who chose nothing gets the default edition and every topic.
    p.gazette(&["subscribers", "add", "bob@example.org", "--list", "readers"]).ok();
    let bob = p.gazette(&["preview", "--as-of", AS_OF, "--subscriber", "bob@example.org", "--json"]).ok().json();
    assert_eq!(bob["edition"], "weekly");
    assert_eq!(bob["topics"], serde_json::json!([]));
    assert_eq!(bob["articles"], 2, "{bob}");
}

#[test]
fn check_lists_the_next_runs_of_each_edition() {
    let p = publication();
    let run = p.gazette(&["check", "--json"]);
    let json = run.json();
    let runs = json["next_runs"].as_array().expect("next_runs");
    let of = |name: &str| runs.iter().filter(|r| r["edition"] == name).count();
    assert_eq!((of("Daily"), of("weekly")), (5, 5), "{json:#}");
    let ok: Vec<&str> = json["ok"].as_array().expect("ok").iter().filter_map(|o| o.as_str()).collect();
    assert!(ok.iter().any(|o| o.starts_with("edition Daily: schedule `0 0 9 * * *`")), "{ok:?}");
    let human = p.gazette(&["check"]).stdout();
    assert!(human.contains("next runs of the Daily edition:\n"), "{human}");
    assert!(human.contains("next runs of the weekly edition:\n"), "{human}");

    // Without editions, the runs are listed as they always were.
    let plain = Publication::sample();
    let json = plain.gazette(&["check", "--json"]).json();
    let runs = json["next_runs"].as_array().expect("next_runs");
    assert_eq!(runs.len(), 5);
    assert!(runs.iter().all(|r| r.get("edition").is_none()), "{runs:?}");
    assert!(plain.gazette(&["check"]).stdout().contains("next runs:\n"));
}

#[test]
fn run_needs_an_edition_with_a_cron_when_there_are_editions() {
    let config = CONFIG.replace("cron = \"0 0 9 * * *\"\n", "").replace("cron = \"0 0 9 * * Mon\"\n", "");
    let p = Publication::with_config(&config);
    let run = p.gazette(&["run", "--listen", "127.0.0.1:0"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("no [[edition]] has a cron"), "{}", run.stderr());
}

mod daemon {
    //! The scheduler in this process against a clock the test sets, delivering to the real SMTP
    //! test server: a daily and a weekly edition whose slots meet on Monday each make their issue
    //! once, and no reader gets a message twice.

    use std::{
        collections::HashSet,
        sync::{Arc, Mutex},
        time::Duration,
    };

    use chrono::{DateTime, TimeZone, Utc};
    use gazette::{
        clock::Clock,
        config::{Config, Environment, LinkSecret},
        daemon::{self, Roles},
        deliver::Stop,
        publication::Publication as Live,
        store::Store,
    };

    use crate::{
        smtp::{Options, SmtpServer},
        support::Publication,
    };

    struct SetClock(Mutex<DateTime<Utc>>);

    impl Clock for SetClock {
        fn now(&self) -> DateTime<Utc> {
            *self.0.lock().expect("clock")
        }
    }

    fn at(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, d, h, m, 0).single().expect("time")
    }

    fn article(p: &Publication, name: &str, date: DateTime<Utc>) {
        p.write(
            &format!("articles/{name}.md"),
            &format!("+++\ntitle = \"{name}\"\ndate = \"{}\"\n+++\nAbout {name}.\n", date.to_rfc3339()),
        );
    }

    /// Waits until every slot in `keys` is recorded and no issue is still going out.
    async fn settled(store: &Store, keys: usize) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let slots = store.slots().await.expect("slots").len();
            let sending = store.sending_issues().await.expect("sending").len();
            if slots == keys && sending == 0 {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "{slots} slots of {keys}, {sending} issues sending");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_daily_and_a_weekly_edition_each_serve_their_slots_once_over_real_smtp() {
        let server = SmtpServer::start(Options::default());
        let p = Publication::with_config("");
        p.write("list.csv", "email\nann@example.org\nbob@example.org\ncy@example.org\n");
        p.write(
            "gazette.toml",
            &format!(
                "[publication]\nname = \"Editions\"\nfrom = \"Editions <e@example.org>\"\n\
                 base_url = \"https://e.example.org\"\ntimezone = \"UTC\"\nlists = [\"all\"]\n\
                 [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"7d\"\n\
                 [[list]]\nname = \"all\"\nfile = \"list.csv\"\n\
                 [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n\
                 [[edition]]\nname = \"daily\"\ncron = \"0 0 9 * * *\"\nmax_age = \"1d\"\n\
                 [[edition]]\nname = \"weekly\"\ncron = \"0 0 9 * * Mon\"\nmax_age = \"7d\"\ndefault = true\n",
                server.url()
            ),
        );
        article(&p, "sunday", at(17, 7, 0));
        let file = p.path().join("gazette.toml");
        let text = std::fs::read_to_string(&file).expect("config");
        let config = Config::parse(&text, &file, &Environment::default()).expect("config parses");
        let store = gazette::setup::open_store(&config).await.expect("store");
        let transport = gazette::setup::transport(&config).await.expect("transport");
        let live = Arc::new(Live::open(config, LinkSecret::from_bytes(vec![7; 32])).await.expect("publication"));
        let clock = Arc::new(SetClock(Mutex::new(at(17, 8, 0))));
        let (stop, watch) = Stop::new();
        let task = tokio::spawn({
            let (store, clock) = (store.clone(), Arc::clone(&clock) as Arc<dyn Clock>);
            async move {
                let roles = Roles { scheduler: true, workers: true };
                daemon::run(live, store, transport, clock, watch, roles).await.expect("the daemon runs");
            }
        });
        // At start, Saturday's daily slot (within catch_up) is served: nothing was out by then.
        settled(&store, 1).await;
        // Sunday 09:00: the daily edition's slot alone.
        *clock.0.lock().expect("clock") = at(17, 9, 0) + chrono::Duration::seconds(1);
        settled(&store, 2).await;
        // Monday 09:00: both editions' slots at once.
        article(&p, "monday", at(18, 8, 0));
        *clock.0.lock().expect("clock") = at(18, 9, 0) + chrono::Duration::seconds(1);
        settled(&store, 4).await;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let slots = store.slots().await.expect("slots");
        let keys: Vec<&str> = slots.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "daily@2024-03-16T09:00:00 UTC",
                "daily@2024-03-17T09:00:00 UTC",
                "daily@2024-03-18T09:00:00 UTC",
                "weekly@2024-03-18T09:00:00 UTC"
            ]
        );
        let made: Vec<u32> = slots.iter().filter_map(|s| s.issue_number).collect();
        let issues = store.issues().await.expect("issues");
        assert_eq!(issues.len(), made.len(), "an issue for each slot that made one, and no other");
        assert!(!made.is_empty(), "{slots:?}");
        // What the server received is what the ledger says was sent, none of it twice.
        let sent: u64 = issues.iter().map(|i| i.counts.sent).sum();
        let messages = server.messages();
        assert_eq!(u64::try_from(messages.len()).expect("count"), sent);
        assert!(sent >= 3, "every reader got something: {issues:?}");
        let mut seen = HashSet::new();
        for m in &messages {
            let parsed = m.parsed();
            let id = parsed.message_id().expect("Message-ID").to_owned();
            assert!(seen.insert(id.clone()), "{id} received twice");
        }
        let _ = stop.send(true);
        tokio::time::timeout(Duration::from_secs(20), task).await.expect("stops").expect("joins");
    }
}

/// The dashboard's overview gives the next send of each edition that has a cron.
#[tokio::test]
async fn the_overview_shows_the_next_send_of_each_edition() {
    use crate::{
        dashboard::{OWNER, PASSWORD, add_user, get, sign_in},
        web::{WebServer, publication},
    };
    let p = publication(None, "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write(
        "gazette.toml",
        &format!(
            "{config}\n[[edition]]\nname = \"Daily\"\ncron = \"0 0 7 * * *\"\nmax_age = \"1d\"\n\
             [[edition]]\nname = \"weekly\"\ncron = \"0 0 9 * * Mon\"\ndefault = true\n\
             [[edition]]\nname = \"special\"\n"
        ),
    );
    add_user(&p, OWNER, "owner", PASSWORD).ok();
    let web = WebServer::serve(&p);
    let session = sign_in(&web, OWNER, PASSWORD).await;
    let html = get(&web, &session.cookie, "/admin/").await.text().await.expect("body");
    let at = html.find("Next issue").expect("the next issue card");
    let card = &html[at..at + html[at..].find("</section>").expect("card end")];
    assert!(card.contains("<strong>Daily</strong>: <time datetime="), "{card}");
    assert!(card.contains("<strong>weekly</strong>: <time datetime="), "{card}");
    assert!(card.contains(", 07:00</time>") && card.contains("Monday"), "{card}");
    assert!(!card.contains("special") && !card.contains("No schedule is set"), "{card}");
}
