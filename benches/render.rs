//! Rendering throughput: one issue of 20 articles personalised for 100,000 subscribers on one
//! core, as rendered bodies and as whole MIME messages; and composing an issue from all the
//! fixture feeds. Run with `cargo bench --bench render` (GAZETTE_BENCH_READERS to change the
//! count).

use std::{collections::BTreeMap, path::PathBuf, time::Instant};

use chrono::{TimeZone, Utc};
use gazette::{
    compose::message,
    config::{Config, Environment, LinkSecret},
    publication::{History, Publication},
};

fn fixture_feeds() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/feeds");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "xml" || x == "json"))
        .collect();
    v.sort();
    v
}

fn config(feeds: &[PathBuf], max_items: usize) -> Config {
    let mut text = format!(
        "[publication]\nname = \"Bench Weekly\"\nfrom = \"Bench Weekly <weekly@example.org>\"\nbase_url = \"https://news.example.org\"\nlists = [\"weekly\"]\nunsubscribe_mailto = \"unsubscribe@example.org\"\n[selection]\nmax_age = \"99999d\"\nmax_items = {max_items}\n"
    );
    for f in feeds {
        text.push_str(&format!("[[source]]\nfeed = {:?}\n", f.display().to_string()));
    }
    Config::parse(&text, &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("bench.toml"), &Environment::default())
        .expect("bench config")
}

fn main() {
    gazette::sources::install_crypto_provider();
    let readers: usize = std::env::var("GAZETTE_BENCH_READERS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).single().expect("date");
    let secret = LinkSecret::from_bytes(vec![7; 32]);

    // Composing from every fixture feed: read, parse, sanitise, select, render once.
    let feeds = fixture_feeds();
    let started = Instant::now();
    let publication = rt.block_on(Publication::open(config(&feeds, 20), secret.clone())).expect("open");
    let draft = rt.block_on(publication.draft(None, now, &History::first())).expect("draft");
    let prepared = publication.prepare(&draft).expect("prepare");
    let compose = started.elapsed();
    println!(
        "compose: {} feeds → {} articles considered, {} carried, rendered once: {:.1} ms",
        feeds.len(),
        draft.selected.articles.len() + draft.selected.left_out.len(),
        draft.selected.articles.len(),
        compose.as_secs_f64() * 1e3
    );
    assert_eq!(draft.selected.articles.len(), 20);
    assert!(prepared.is_shared(), "the default templates take the shared path");

    let recipients: Vec<_> = (0..readers)
        .map(|i| {
            let email = format!("reader{i}@example.org").parse().expect("address");
            publication.recipient(email, &format!("Reader {i}"), BTreeMap::new())
        })
        .collect();

    let started = Instant::now();
    let mut bytes = 0usize;
    for r in &recipients {
        let m = prepared.personalize(r).expect("personalise");
        bytes += m.html.len() + m.text.len();
    }
    let t = started.elapsed().as_secs_f64();
    println!(
        "personalise: {readers} readers in {:.2} s = {:.0} messages/s (one core), {:.1} KB of HTML+text each",
        t,
        readers as f64 / t,
        bytes as f64 / readers as f64 / 1024.0
    );

    let settings = publication.message_settings();
    let started = Instant::now();
    let mut bytes = 0usize;
    for r in &recipients {
        let m = prepared.letter(r).expect("personalise");
        let id = publication.message_id(draft.number, &r.email).expect("message id");
        let msg = message::build(&settings, r, m, &id, now, None).expect("build");
        bytes += msg.formatted().len();
    }
    let t = started.elapsed().as_secs_f64();
    println!(
        "personalise + MIME: {readers} readers in {:.2} s = {:.0} messages/s (one core), {:.1} KB a message",
        t,
        readers as f64 / t,
        bytes as f64 / readers as f64 / 1024.0
    );
}
