//! `gazette migrate-store`: a publication that sent an issue on SQLite moves to PostgreSQL and
//! reads back the same subscribers, consent, issues, ledger and bounces; the new store goes on numbering
//! after the copied rows; a destination that already holds data is refused untouched.

use crate::{
    deliver::{AS_OF, publication},
    postgres::TestDatabase,
    smtp::{Options, SmtpServer},
    support::Publication,
};

/// What a publisher can read of the store, command by command.
fn snapshot(p: &Publication) -> Vec<serde_json::Value> {
    vec![
        p.gazette(&["subscribers", "list", "--format", "json"]).ok().json(),
        p.gazette(&["--json", "lists"]).ok().json(),
        p.gazette(&["--json", "issues", "list"]).ok().json(),
        p.gazette(&["--json", "issues", "show", "1"]).ok().json(),
        p.gazette(&["--json", "bounces", "list"]).ok().json(),
        p.gazette(&["--json", "users", "list"]).ok().json(),
    ]
}

fn use_store(p: &Publication, config: &str, url: &str) {
    let config = config.replace("[storage]\ndatabase_url = \"sqlite://gazette.db\"\n", "");
    p.write("gazette.toml", &format!("{config}\n[storage]\ndatabase_url = {url:?}\n"));
}

fn subscribers(doc: &serde_json::Value) -> &Vec<serde_json::Value> {
    doc["subscribers"].as_array().expect("a list of subscribers")
}

#[test]
fn a_sqlite_publication_moves_to_postgresql_without_losing_a_row() {
    let server = SmtpServer::start(Options::default().reject("reader7@"));
    let p = publication(30, &server.url(), "concurrency = 4");
    let sent = p.gazette(&["--json", "send", "--as-of", AS_OF, "--yes"]).json();
    assert_eq!(sent["counts"]["sent"], 29, "{sent:#}");
    p.gazette(&["subscribers", "remove", "reader3@example.org"]).ok();
    p.gazette(&["subscribers", "remove", "reader4@example.org", "--forget"]).ok();
    // A bounce that came back later, found by the Message-ID it quotes.
    let (_, id) = crate::bounces::sent_to(&server, "reader5@example.org");
    let report =
        p.write("bounce.eml", &crate::bounces::dsn("weekly@example.org", "reader5@example.org", &id, "5.1.1", "m"));
    let read = p.gazette(&["--json", "bounces", "ingest", report.to_str().expect("utf-8")]).ok().json();
    assert_eq!(read["messages"][0]["applied"], true, "{read:#}");
    crate::dashboard::add_user(&p, crate::dashboard::OWNER, "owner", crate::dashboard::PASSWORD).ok();
    let before = snapshot(&p);

    let db = TestDatabase::create();
    let moved = p.gazette(&["--json", "migrate-store", "--to", db.url()]).ok().json();
    assert_eq!(moved["tables"]["deliveries"], 30, "{moved:#}");
    assert_eq!(moved["tables"]["subscribers"], 30, "{moved:#}");
    assert_eq!(moved["tables"]["bounces"], 1, "{moved:#}");
    assert_eq!(moved["tables"]["users"], 1, "{moved:#}");

    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    use_store(&p, &config, db.url());
    let after = snapshot(&p);
    assert_eq!(before, after, "the same store, read back from PostgreSQL");
    let bounced =
        &subscribers(&after[0]).iter().find(|s| s["email"] == "reader7@example.org").expect("reader7")["status"];
    assert_eq!(bounced, "bounced");

    // New rows are numbered after the copied ones.
    p.gazette(&["subscribers", "add", "newcomer@example.org", "--list", "news"]).ok();
    let list = p.gazette(&["subscribers", "list", "--format", "json"]).ok().json();
    assert_eq!(subscribers(&list).len(), 30, "{list:#}");

    // Into a store that holds data: refused, and nothing in it changes.
    use_store(&p, &config, "sqlite://gazette.db");
    let again = p.gazette(&["migrate-store", "--to", db.url()]);
    assert_ne!(again.code(), 0);
    assert!(again.stderr().contains("empty database"), "{}", again.stderr());
    use_store(&p, &config, db.url());
    assert_eq!(p.gazette(&["subscribers", "list", "--format", "json"]).ok().json(), list);
}

#[test]
fn postgresql_moves_back_to_sqlite_too() {
    let db = TestDatabase::create();
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    use_store(&p, &config, db.url());
    p.gazette(&["subscribers", "add", "one@example.org", "--name", "Ünïcødé \"quoted\""]).ok();
    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    let before = snapshot(&p);
    let target = format!("sqlite://{}", p.path().join("back.db").display());
    p.gazette(&["migrate-store", "--to", &target]).ok();
    use_store(&p, &config, &target);
    assert_eq!(before, snapshot(&p));
}
