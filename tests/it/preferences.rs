//! A reader's preferences page end to end: the real `gazette serve`, a real HTTP client and
//! headless Chromium. A GET shows the reader's edition, topics, name and pause and changes
//! nothing; the POST changes them and `subscribers list` shows the change; a forged link, a link of
//! an address that is no subscriber and one of a forgotten reader get the same page; an expired
//! one says to use a newer issue's link.

use chrono::Utc;
use fantoccini::Locator;
use gazette::{
    config::LinkSecret,
    tokens::{Claims, Signer},
};
use reqwest::StatusCode;
use serde_json::Value;

use crate::{
    browser::{Driver, look, wait_for_heading},
    support::Publication,
    web::{self, WebServer, client},
};

const CHOICES: &str = "\n[[topic]]\nname = \"Science\"\ntags = [\"science\"]\n\
     [[topic]]\nname = \"Arts & Culture\"\ntags = [\"arts\"]\n\
     [[topic]]\nname = \"Harbour\"\ntags = [\"harbour\"]\n\
     [[edition]]\nname = \"Daily\"\nmax_age = \"1d\"\ndefault = true\n\
     [[edition]]\nname = \"Weekly\"\n";

/// The web tests' publication with three topics and two editions.
fn publication() -> Publication {
    let p = web::publication(None, "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &format!("{config}{CHOICES}"));
    p
}

fn signer() -> Signer {
    Signer::new(LinkSecret::from_bytes(web::SECRET.as_bytes().to_vec()))
}

fn link(email: &str) -> String {
    format!("/preferences/{}", signer().sign(&Claims::preferences(email.parse().expect("address"), Utc::now())))
}

/// `subscribers list --json`'s document of `email`.
fn listed(p: &Publication, email: &str) -> Value {
    let out = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    out["subscribers"]
        .as_array()
        .expect("subscribers")
        .iter()
        .find(|s| s["email"] == email)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_page_shows_on_get_and_changes_on_post_and_bad_links_change_nothing() {
    let p = publication();
    for who in ["ann@example.org", "bob@example.org"] {
        p.gazette(&["subscribers", "add", who, "--list", "weekly"]).ok();
    }
    p.gazette(&["subscribers", "remove", "bob@example.org", "--forget"]).ok();
    let server = WebServer::serve(&p);
    let http = client();
    let ann = link("ann@example.org");
    let before = listed(&p, "ann@example.org");
    assert_eq!((&before["edition"], &before["topics"]), (&Value::from("Daily"), &serde_json::json!([])));

    // Bad links, both ways: a forged one, one of nobody, one of a forgotten reader (the same page
    // for all three) and an expired one.
    let forged = Signer::new(LinkSecret::from_bytes(b"another secret, not the publication's".to_vec()))
        .sign(&Claims::preferences("ann@example.org".parse().expect("address"), Utc::now()));
    let expired = signer().sign(&Claims::preferences(
        "ann@example.org".parse().expect("address"),
        Utc::now() - chrono::Duration::days(91),
    ));
    let unsubscribe = signer().sign(&Claims::unsubscribe("ann@example.org".parse().expect("address")));
    let mut refused = Vec::new();
    for (path, want) in [
        (format!("/preferences/{forged}"), StatusCode::BAD_REQUEST),
        (link("nobody@example.org"), StatusCode::BAD_REQUEST),
        (link("bob@example.org"), StatusCode::BAD_REQUEST),
        (format!("/preferences/{unsubscribe}"), StatusCode::BAD_REQUEST),
        (format!("/preferences/{expired}"), StatusCode::GONE),
    ] {
        for post in [false, true] {
            let r = if post {
                http.post(server.url(&path)).form(&[("action", "unsubscribe")]).send().await
            } else {
                http.get(server.url(&path)).send().await
            }
            .expect("request");
            assert_eq!(r.status(), want, "{path}");
            let page = r.text().await.expect("body");
            assert!(page.contains("Harbour Notes") && page.contains("<h1"), "a page of the publication: {page}");
            if want == StatusCode::GONE {
                assert!(page.contains("newer issue"), "{page}");
            } else {
                refused.push(page);
            }
        }
    }
    assert!(refused.windows(2).all(|w| w[0] == w[1]), "forged, unknown and forgotten look alike");
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("active"));

    // A GET (a mail scanner's too) shows the choices and changes nothing.
    let r = http.get(server.url(&ann)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains(r#"value="Daily" checked"#), "the default edition is shown as hers: {page}");
    assert!(page.contains("Arts &amp; Culture") && !page.contains(r#"name="topic" value="Science" checked"#));
    assert_eq!(listed(&p, "ann@example.org"), before);

    // A name nobody offers changes nothing.
    let r = http.post(server.url(&ann)).form(&[("edition", "Hourly"), ("name", "Ann")]).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(listed(&p, "ann@example.org"), before);

    // The POST changes them, whatever the names' case.
    let form = [
        ("action", "save"),
        ("edition", "weekly"),
        ("topic", "SCIENCE"),
        ("topic", "Harbour"),
        ("name", "Ann Lee"),
        ("pause", "2"),
    ];
    let r = http.post(server.url(&ann)).form(&form).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains("Your choices are saved") && page.contains("Paused until"), "{page}");
    let after = listed(&p, "ann@example.org");
    assert_eq!(after["edition"], "Weekly");
    assert_eq!(after["topics"], serde_json::json!(["Harbour", "Science"]));
    assert_eq!((after["name"].as_str(), after["status"].as_str()), (Some("Ann Lee"), Some("active")));

    // Every topic again, and the pause ended; then leaving from the same page.
    let r = http.post(server.url(&ann)).form(&[("edition", "Daily"), ("pause", "0")]).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(!r.text().await.expect("body").contains("Paused until"));
    let back = listed(&p, "ann@example.org");
    assert_eq!((&back["edition"], &back["topics"]), (&Value::from("Daily"), &serde_json::json!([])));
    let r = http.post(server.url(&ann)).form(&[("action", "unsubscribe")]).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("You have unsubscribed"));
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));
    let r = http.get(server.url(&ann)).send().await.expect("get");
    assert!(r.text().await.expect("body").contains("receives no issues"), "no form for who left");

    let log = server.log();
    assert!(!log.contains("ann@example.org"), "no address in the log:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_changes_their_preferences_in_chromium() {
    let p = publication();
    p.gazette(&["subscribers", "add", "ann@example.org", "--list", "weekly", "--name", "Ann"]).ok();
    let server = WebServer::serve(&p);
    let driver = Driver::start();
    let b = driver.browser().await;

    b.goto(&server.url(&link("ann@example.org"))).await.expect("preferences page");
    wait_for_heading(&b, "Your preferences").await;
    look(&b, "preferences").await;
    b.find(Locator::Css(r#"input[name=edition][value=Weekly]"#)).await.expect("weekly").click().await.expect("click");
    b.find(Locator::Css(r#"input[name=topic][value="Arts & Culture"]"#))
        .await
        .expect("arts")
        .click()
        .await
        .expect("click");
    let name = b.find(Locator::Id("pref-name")).await.expect("name");
    name.clear().await.expect("clear");
    name.send_keys("Ann Lee").await.expect("type");
    b.find(Locator::Css(r#"#pref-pause option[value="4"]"#)).await.expect("pause").click().await.expect("choose");
    b.find(Locator::Css("button[value=save]")).await.expect("save").click().await.expect("click");
    // The answer replaces the page: wait for it, not for the heading both carry.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !b.source().await.expect("source").contains("Your choices are saved") {
        assert!(std::time::Instant::now() < deadline, "the choices were not saved");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    look(&b, "preferences-saved").await;

    let after = listed(&p, "ann@example.org");
    assert_eq!((after["edition"].as_str(), after["name"].as_str()), (Some("Weekly"), Some("Ann Lee")));
    assert_eq!(after["topics"], serde_json::json!(["Arts & Culture"]));

    b.find(Locator::Css("button[value=unsubscribe]")).await.expect("leave").click().await.expect("click");
    wait_for_heading(&b, "You have unsubscribed").await;
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));
    b.close().await.expect("close");
}

#[tokio::test]
async fn the_dashboard_counts_the_readers_of_each_edition_and_topic() {
    let p = publication();
    let file = p.write(
        "people.csv",
        "email,edition,topics\n\
         ann@example.org,Weekly,science;harbour\n\
         bob@example.org,,science\n\
         cy@example.org,,\n",
    );
    p.gazette(&["subscribers", "import", file.to_str().expect("utf-8"), "--list", "weekly"]).ok();
    crate::dashboard::add_user(&p, crate::dashboard::OWNER, "owner", crate::dashboard::PASSWORD).ok();
    let server = WebServer::serve(&p);
    let session = crate::dashboard::sign_in(&server, crate::dashboard::OWNER, crate::dashboard::PASSWORD).await;
    let page = crate::dashboard::get(&server, &session.cookie, "/admin/lists").await.text().await.expect("body");
    let row = |label: &str, name: &str, n: u32| {
        format!(r#"<tr><td data-label="{label}">{name}</td><td class="num" data-label="readers">{n}</td></tr>"#)
    };
    for want in [
        row("Edition", "Daily", 2),
        row("Edition", "Weekly", 1),
        row("Topic", "Science", 2),
        row("Topic", "Arts &amp; Culture", 0),
        row("Topic", "Harbour", 1),
        row("Topic", "every topic (none chosen)", 1),
    ] {
        assert!(page.contains(&want), "{want} in:\n{page}");
    }
}

#[test]
fn an_import_sets_preferences_refuses_unknown_names_by_row_and_migrate_store_keeps_them() {
    let p = publication();
    p.gazette(&["subscribers", "add", "ann@example.org", "--list", "weekly"]).ok();
    let file = p.write(
        "people.csv",
        "email,name,edition,topics\n\
         ann@example.org,Ann,WEEKLY,science;harbour\n\
         bob@example.org,Bob,,Arts & Culture\n\
         cy@example.org,Cy,hourly,\n\
         di@example.org,Di,daily,sport\n",
    );
    let out =
        p.gazette(&["subscribers", "import", file.to_str().expect("utf-8"), "--list", "weekly", "--json"]).ok().json();
    assert_eq!((out["imported"].as_u64(), out["updated"].as_u64()), (Some(1), Some(1)), "{out:#}");
    let rejected = out["rejected"].as_array().expect("rejected");
    assert_eq!(rejected.len(), 2, "{out:#}");
    assert_eq!(rejected[0]["line"], 4);
    assert!(rejected[0]["reason"].as_str().is_some_and(|r| r.contains("hourly") && r.contains("Daily, Weekly")));
    assert!(rejected[1]["reason"].as_str().is_some_and(|r| r.contains("sport")));
    let ann = listed(&p, "ann@example.org");
    assert_eq!((&ann["edition"], &ann["topics"]), (&Value::from("Weekly"), &serde_json::json!(["Harbour", "Science"])));
    let bob = listed(&p, "bob@example.org");
    assert_eq!((&bob["edition"], &bob["topics"]), (&Value::from("Daily"), &serde_json::json!(["Arts & Culture"])));
    assert_eq!(listed(&p, "cy@example.org"), Value::Null, "a row naming an unknown edition is not imported");

    // The export carries the choices, and imports back unchanged.
    let exported = p.gazette(&["subscribers", "export"]).ok().stdout();
    assert!(exported.starts_with("email,name,status,lists,edition,topics"), "{exported}");
    assert!(exported.contains("ann@example.org,Ann,active,weekly,weekly,harbour;science"), "{exported}");
    let back = p.write("back.csv", &exported);
    let again = p.gazette(&["subscribers", "import", back.to_str().expect("utf-8"), "--json"]).ok().json();
    assert_eq!((again["updated"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(2)), "{again:#}");

    let before = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    let db = crate::postgres::TestDatabase::create();
    p.gazette(&["migrate-store", "--to", db.url()]).ok();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let config = config.replace("[storage]\ndatabase_url = \"sqlite://gazette.db\"\n", "");
    p.write("gazette.toml", &format!("{config}\n[storage]\ndatabase_url = {:?}\n", db.url()));
    assert_eq!(p.gazette(&["subscribers", "list", "--json"]).ok().json(), before, "the choices move with the store");
}

#[tokio::test]
async fn the_admin_api_sets_and_shows_choices_by_name() {
    let p = publication();
    let token = "admin-token-for-tests-0123456789";
    let server = WebServer::start_with(
        &p,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("GAZETTE_LOG", "info"), ("GAZETTE_ADMIN_TOKEN", token)],
    );
    let post = |body: Value| client().post(server.url("/api/subscribers")).bearer_auth(token).json(&body).send();
    let r = post(serde_json::json!({ "email": "ann@example.org", "edition": "weekly", "topics": ["HARBOUR"] }))
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    let added: Value = r.json().await.expect("json");
    assert_eq!(added["subscriber"]["edition"], "Weekly");
    assert_eq!(added["subscriber"]["topics"], serde_json::json!(["Harbour"]));

    let r = post(serde_json::json!({ "email": "ann@example.org", "topics": ["sport"] })).await.expect("post");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let refused: Value = r.json().await.expect("json");
    assert_eq!(refused["error"]["field"], "topics", "{refused:#}");
    let r = client().get(server.url("/api/subscribers/ann@example.org")).bearer_auth(token).send().await.expect("get");
    let shown: Value = r.json().await.expect("json");
    assert_eq!(shown["subscriber"], added["subscriber"], "nothing changed by the refused request");
}
