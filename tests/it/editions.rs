//! Editions and topics over two simulated weeks, against a real SMTP server and a set clock:
//! three topics, a daily and a weekly edition, a reader for every mix, and two readers who switch
//! editions mid-week. Each reader's messages hold exactly the articles of their topics, none twice;
//! a reader with nothing new is skipped (recorded), and the others still get theirs.

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use gazette::{
    clock::{Clock, FixedClock},
    config::{Config, Environment, LinkSecret},
    deliver::Stop,
    issue::{self, Plan},
    publication::Publication as Pub,
};
use sqlx::SqlitePool;

use crate::{
    smtp::{Options, SmtpServer},
    support::Publication,
};

const TOPICS: [&str; 3] = ["arts", "science", "tech"];
const EDITIONS: [Option<&str>; 3] = [None, Some("daily"), Some("weekly")];

fn start() -> DateTime<Utc> {
    // A Monday.
    Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().expect("date")
}

/// The articles of day `day`: one per topic, tech only every third day, so that a reader of tech
/// alone has days with nothing new.
fn articles_of(day: i64) -> Vec<(String, &'static str)> {
    TOPICS.iter().filter(|t| **t != "tech" || day % 3 == 0).map(|t| (format!("Day {day} {t}"), *t)).collect()
}

fn write_day(p: &Publication, day: i64) {
    let at = start() + Duration::days(day) + Duration::hours(8);
    for (title, topic) in articles_of(day) {
        let slug = title.replace(' ', "-").to_lowercase();
        p.write(
            &format!("articles/{slug}.md"),
            &format!(
                "+++\ntitle = {title:?}\ndate = {:?}\ntags = [{topic:?}]\nurl = \"https://news.example.org/{slug}\"\n+++\n\nAbout {topic}.\n",
                at.to_rfc3339()
            ),
        );
    }
}

/// Each reader: address, edition, topics.
fn readers() -> Vec<(String, Option<&'static str>, Vec<&'static str>)> {
    let mixes: Vec<Vec<&str>> = vec![
        vec![],
        vec!["arts"],
        vec!["science"],
        vec!["tech"],
        vec!["arts", "science"],
        vec!["arts", "science", "tech"],
    ];
    let mut out = Vec::new();
    for edition in EDITIONS {
        for mix in &mixes {
            let name = format!(
                "{}-{}@example.org",
                edition.unwrap_or("none"),
                if mix.is_empty() { "all".into() } else { mix.join("-") }
            );
            out.push((name, edition, mix.clone()));
        }
    }
    out.push(("to-daily@example.org".into(), Some("weekly"), vec!["arts", "tech"]));
    out.push(("to-weekly@example.org".into(), Some("daily"), vec!["science", "tech"]));
    out
}

async fn choose(pool: &SqlitePool, email: &str, edition: Option<&str>, topics: &[&str]) {
    let column = gazette::store::preferences::topics_column(topics);
    sqlx::query("UPDATE subscribers SET edition = $1, topics = $2 WHERE email = $3")
        .bind(edition)
        .bind(column)
        .bind(email)
        .execute(pool)
        .await
        .expect("preferences");
}

/// Makes and sends the edition's next issue at `now`, if there is one.
async fn send(publication: &Arc<Pub>, store: &gazette::store::Store, edition: &str, now: DateTime<Utc>) {
    let edition = publication.config.edition(edition).cloned().expect("edition");
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
    let plan = issue::plan(publication, store, Some(&edition), now, true).await.expect("plan");
    let record = match plan {
        Plan::Create(draft) => issue::create(publication, store, &draft, None, now).await.expect("create"),
        Plan::Resume(i) => *i,
        Plan::Nothing(_) => return,
        Plan::Paused(i) => panic!("issue {} paused", i.number),
    };
    let transport = gazette::setup::transport(&publication.config).await.expect("transport");
    let (_stop, stop) = Stop::new();
    let done = issue::deliver(Arc::clone(publication), store, &record, transport, clock, Arc::new(()), stop, true)
        .await
        .expect("deliver");
    assert!(done.finished, "issue {} went out whole", record.number);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_two_weeks_each_reader_gets_the_articles_of_their_topics_once() {
    let smtp = SmtpServer::start(Options::default());
    let p = Publication::with_config("");
    let db = p.path().join("g.db");
    let mut csv = String::from("email\n");
    for (email, _, _) in readers() {
        csv.push_str(&format!("{email}\n"));
    }
    let file = p.write("readers.csv", &csv);
    let mut config = format!(
        "[publication]\nname = \"The Mirror\"\nfrom = \"The Mirror <mirror@example.org>\"\n\
         base_url = \"https://news.example.org\"\ntimezone = \"UTC\"\nlists = [\"all\"]\n\n\
         [[source]]\nfolder = \"articles\"\n\n[[list]]\nname = \"all\"\n\n\
         [storage]\ndatabase_url = \"sqlite://{}\"\n\n[delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\n\n\
         [selection]\nmax_items = 50\n\n",
        db.display(),
        smtp.url()
    );
    for t in TOPICS {
        config.push_str(&format!("[[topic]]\nname = {:?}\ntags = [{t:?}]\n\n", t.to_uppercase()));
    }
    config.push_str(
        "[[edition]]\nname = \"Daily\"\ncron = \"0 0 9 * * *\"\nmax_age = \"1d\"\n\n\
         [[edition]]\nname = \"Weekly\"\ncron = \"0 0 9 * * Mon\"\nmax_age = \"7d\"\ndefault = true\n",
    );
    p.write("gazette.toml", &config);
    write_day(&p, 0);
    p.gazette(&["subscribers", "import", &file.display().to_string(), "--list", "all"]).ok();

    let config = Config::load(&p.path().join("gazette.toml"), &Environment::default()).await.expect("config");
    let publication = Arc::new(Pub::open(config, LinkSecret::from_bytes(vec![7; 32])).await.expect("publication"));
    let store = gazette::setup::open_store(&publication.config).await.expect("store");
    let pool = SqlitePool::connect(&format!("sqlite://{}", db.display())).await.expect("pool");
    for (email, edition, topics) in readers() {
        choose(&pool, &email, edition, &topics).await;
    }

    for day in 0..=14 {
        if day > 0 {
            write_day(&p, day);
        }
        let nine = start() + Duration::days(day) + Duration::hours(9);
        send(&publication, &store, "daily", nine).await;
        if day % 7 == 0 {
            send(&publication, &store, "weekly", nine + Duration::minutes(5)).await;
        }
        // Mid-week switches, after the day's issues.
        if day == 2 {
            choose(&pool, "to-daily@example.org", Some("daily"), &["arts", "tech"]).await;
        }
        if day == 9 {
            choose(&pool, "to-weekly@example.org", Some("weekly"), &["science", "tech"]).await;
        }
    }

    let mut got: HashMap<String, Vec<String>> = HashMap::new();
    for m in smtp.messages() {
        let text = m.parsed().body_text(0).expect("a text part").into_owned();
        let titles: Vec<String> = (0..=14)
            .flat_map(|d| TOPICS.iter().map(move |t| format!("Day {d} {t}")))
            .filter(|title| text.lines().any(|l| l.trim_end().ends_with(&format!(". {title}"))))
            .collect();
        assert!(!titles.is_empty(), "a message with no article went out:\n{text}");
        assert!(text.contains("Your edition and topics:"), "the footer links to the preferences:\n{text}");
        assert!(text.contains("https://news.example.org/preferences/p."), "{text}");
        for rcpt in &m.rcpt_tos {
            got.entry(rcpt.clone()).or_default().extend(titles.iter().cloned());
        }
    }
    for (email, _, topics) in readers() {
        let mut received = got.remove(&email).unwrap_or_default();
        let count = received.len();
        received.sort();
        received.dedup();
        assert_eq!(received.len(), count, "{email} received an article twice");
        let mut expected: Vec<String> = (0..=14)
            .flat_map(articles_of)
            .filter(|(_, t)| topics.is_empty() || topics.contains(t))
            .map(|(title, _)| title)
            .collect();
        expected.sort();
        assert_eq!(received, expected, "{email} received exactly the articles of their topics");
    }
    let skipped: BTreeMap<String, i64> = sqlx::query_as(
        "SELECT s.email, count(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
         WHERE d.state = 'skipped' GROUP BY s.email",
    )
    .fetch_all(&pool)
    .await
    .expect("skipped")
    .into_iter()
    .collect();
    assert!(
        skipped.get("daily-tech@example.org").is_some_and(|n| *n >= 8),
        "days without tech are skipped: {skipped:?}"
    );
    assert!(!skipped.contains_key("daily-arts@example.org"), "{skipped:?}");
}
