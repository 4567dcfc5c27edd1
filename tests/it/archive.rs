//! The archive of the real `gazette serve` after a real `gazette send`: the list, one issue as a
//! web page with no reader in it, the Atom feed read back by a feed parser, 404s for issues that
//! did not go out, and the "view in your browser" link of a delivered message.

use reqwest::{StatusCode, header};

use crate::{
    support::Publication,
    web_api::{Server, client},
};

const READERS: [&str; 3] = ["ada@example.org", "grace@example.org", "ken@example.net"];

/// The sample publication with issue 1 sent to its three readers through the Maildir outbox.
fn sent() -> Publication {
    let p = Publication::sample();
    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    p
}

fn issue_json(p: &Publication, n: u32) -> serde_json::Value {
    p.gazette(&["--json", "issues", "show", &n.to_string()]).ok().json()
}

fn titles(issue: &serde_json::Value) -> Vec<String> {
    issue["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["title"].as_str().expect("title").to_owned())
        .collect()
}

/// How tera writes a title into HTML.
fn escaped(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#x27;")
}

async fn get(server: &Server, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = client().get(server.url(path)).send().await.expect("the server answers");
    let status = response.status();
    let headers = response.headers().clone();
    (status, headers, response.text().await.expect("a body"))
}

#[tokio::test]
async fn the_archive_lists_the_sent_issue_and_shows_it_without_any_reader() {
    let p = sent();
    let issue = issue_json(&p, 1);
    let subject = issue["subject"].as_str().expect("subject").to_owned();
    let titles = titles(&issue);
    assert!(!titles.is_empty());
    let server = Server::start(&p, &[]);

    let (status, _, list) = get(&server, "/archive").await;
    assert_eq!(status, StatusCode::OK);
    assert!(list.contains(&escaped(&subject)), "{list}");
    assert!(list.contains("href=\"/archive/1\""), "{list}");
    assert!(list.contains("href=\"/archive/feed.xml\""), "{list}");
    assert!(list.contains("<link rel=\"stylesheet\""), "the shared layout: {list}");

    let (status, headers, page) = get(&server, "/archive/1").await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers[header::CONTENT_TYPE].to_str().expect("ascii").starts_with("text/html"));
    for t in &titles {
        assert!(page.contains(&escaped(t)), "{t} is missing from the page");
    }
    assert!(page.contains(&format!("<title>{}</title>", escaped(&subject))), "the subject it went out with");
    for reader in READERS {
        assert!(!page.contains(reader), "{reader} is on the archive page");
    }
    assert!(!page.contains("/unsubscribe/"), "a reader's unsubscribe link is on the archive page");
    assert!(!page.contains("You receive this because"), "the reader's footer is on the archive page");
    assert!(page.contains("@media"), "the digest's media queries are kept");
    let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii");
    for directive in ["style-src 'unsafe-inline'", "script-src 'none'", "default-src 'none'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("script-src 'unsafe"), "{csp}");

    // Served again from memory, the same.
    let (_, _, again) = get(&server, "/archive/1").await;
    assert_eq!(again, page);
    // The other pages keep the site's own policy.
    let (_, headers, _) = get(&server, "/archive").await;
    assert!(!headers[header::CONTENT_SECURITY_POLICY].to_str().expect("ascii").contains("unsafe-inline"));
}

#[tokio::test]
async fn the_feed_parses_and_links_each_issue() {
    let p = sent();
    let subject = issue_json(&p, 1)["subject"].as_str().expect("subject").to_owned();
    let server = Server::start(&p, &[]);
    let response = client().get(server.url("/archive/feed.xml")).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("application/atom+xml"), "{content_type}");
    let bytes = response.bytes().await.expect("body");
    let feed = feed_rs::parser::parse(&bytes[..]).expect("the feed parses");
    assert_eq!(feed.feed_type, feed_rs::model::FeedType::Atom);
    assert_eq!(feed.title.map(|t| t.content).as_deref(), Some("The Weekly Mirror"));
    assert_eq!(feed.entries.len(), 1);
    let entry = &feed.entries[0];
    assert_eq!(entry.title.as_ref().map(|t| t.content.as_str()), Some(subject.as_str()));
    assert_eq!(entry.links.first().map(|l| l.href.as_str()), Some("http://127.0.0.1:8080/archive/1"));
    assert!(entry.updated.is_some() && entry.published.is_some());
    let text = String::from_utf8_lossy(&bytes);
    for reader in READERS {
        assert!(!text.contains(reader), "{reader} is in the feed");
    }
}

#[tokio::test]
async fn issues_that_did_not_go_out_are_404() {
    let p = sent();
    // Issue 2, queued but not delivered, then cancelled.
    p.write(
        "articles/2024-03-20-late.md",
        "+++\ntitle = \"A late article\"\ndate = \"2024-03-20T10:00:00-04:00\"\n+++\nLate.\n",
    );
    p.gazette(&["send", "--as-of", "2024-03-21", "--queue-only", "--yes"]).ok();
    let server = Server::start(&p, &[]);
    for path in ["/archive/2", "/archive/3", "/archive/0", "/archive/01", "/archive/one", "/archive/99999999999"] {
        let (status, _, body) = get(&server, path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(body.contains("Page not found"), "{path}: the publication's error page, got {body}");
    }
    let (_, _, list) = get(&server, "/archive").await;
    assert!(!list.contains("/archive/2"), "{list}");
    p.gazette(&["issues", "cancel", "2"]).ok();
    let (status, _, _) = get(&server, "/archive/2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, _) = get(&server, "/archive/1").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn the_view_in_browser_link_of_a_delivered_message_resolves_to_the_archive_page() {
    let p = sent();
    let server = Server::start(&p, &[]);
    let outbox = p.path().join("outbox/new");
    let message = std::fs::read_dir(&outbox)
        .expect("the outbox")
        .map(|e| e.expect("entry").path())
        .find(|f| f.extension().is_some_and(|x| x == "eml"))
        .expect("a delivered message");
    let raw = std::fs::read(&message).expect("read the message");
    let parsed = mail_parser::MessageParser::default().parse(&raw).expect("a message");
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    let at = html.find("View in your browser").expect("the link's text");
    let href_start = html[..at].rfind("href=\"").expect("an href before it") + "href=\"".len();
    let href = &html[href_start..href_start + html[href_start..].find('"').expect("the href's end")];
    assert_eq!(href, "http://127.0.0.1:8080/archive/1", "base_url + /archive/{{number}}");
    let path = href.strip_prefix("http://127.0.0.1:8080").expect("under base_url");
    let (status, _, page) = get(&server, path).await;
    assert_eq!(status, StatusCode::OK);
    let subject = parsed.subject().expect("a subject");
    assert!(page.contains(&escaped(subject)), "the page of the issue the message carried");
}
