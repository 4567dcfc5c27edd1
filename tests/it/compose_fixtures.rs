//! Every real-world feed in the fixtures, composed into one issue and rendered in all three forms.

use mail_parser::MessageParser;

use crate::support::{Publication, feeds_config, repo};

fn all_feeds() -> Vec<std::path::PathBuf> {
    let mut feeds: Vec<_> = std::fs::read_dir(repo().join("tests/fixtures/feeds"))
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml" || x == "json"))
        .collect();
    feeds.sort();
    feeds
}

#[test]
fn every_fixture_feed_composes_into_one_issue() {
    let feeds = all_feeds();
    assert_eq!(feeds.len(), 28, "27 real-world feeds and the seed");
    let p = Publication::with_config(&feeds_config(&feeds, "[selection]\nmax_age = \"99999d\"\nmax_items = 10\n"));
    let json = p.gazette(&["articles", "--as-of", "2026-01-01", "--json", "--all"]).ok().json();
    assert_eq!(json["articles"].as_array().map(Vec::len), Some(10));
    let total = json["articles"].as_array().map_or(0, Vec::len) + json["left_out"].as_array().map_or(0, Vec::len);
    assert!(total > 300, "every feed contributes articles: {total}");

    let run = p.gazette(&["preview", "--as-of", "2026-01-01", "--format", "eml"]).ok();
    let msg = MessageParser::default().parse(&run.0.stdout).expect("a MIME message");
    let html = msg.body_html(0).expect("html");
    assert!(html.len() < 102 * 1024, "a ten-article digest stays under Gmail's clip: {} bytes", html.len());
    for bad in ["<script", "javascript:", "onerror=", "<iframe", "data:text"] {
        assert!(!html.to_ascii_lowercase().contains(bad), "{bad} reached the digest");
    }
}

#[test]
fn a_hostile_feed_leaves_nothing_dangerous_in_the_digest() {
    let hostile = repo().join("tests/fixtures/hostile-feed.xml");
    let p = Publication::with_config(&feeds_config(&[hostile], "[selection]\nmax_age = \"99999d\"\n"));
    let html = p.gazette(&["preview", "--as-of", "2026-01-01", "--format", "html"]).ok().stdout().to_ascii_lowercase();
    assert!(html.contains("<html"), "rendered");
    for bad in [
        "<script",
        "javascript:",
        " onerror",
        " onclick",
        " onload",
        "<iframe",
        "<form",
        "<object",
        "<embed",
        "data:",
        "/_/stat",
        "expression(",
    ] {
        assert!(!html.contains(bad), "{bad} reached the digest");
    }
}
