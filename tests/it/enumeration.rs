//! Nobody can learn who subscribes from the sign-up form: for an address that is subscribed and
//! one that is not, every input (plain, a NUL or an escape in the name, an overlong name, a
//! reordering mark, an unknown list, JSON or a form) gets the same status and the same body, on
//! both stores, and the two take the same time to answer.

use std::time::{Duration, Instant};

use crate::{
    postgres::TestDatabase,
    support::Publication,
    web::{WebServer, client, publication},
};

/// The inputs a stranger might try, as form fields and as JSON.
fn inputs() -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("plain", vec![("name", "Ann".into())]),
        ("no name", vec![]),
        ("a NUL in the name", vec![("name", "An\0n".into())]),
        ("an escape in the name", vec![("name", "Ann\u{1b}[2J".into())]),
        ("a reordering mark", vec![("name", "Ann \u{202E}gro".into())]),
        ("a line break", vec![("name", "Ann\r\nBcc: x@y.org".into())]),
        ("201 characters", vec![("name", "x".repeat(201))]),
        ("an unknown list", vec![("list", "nope".into())]),
        ("a list with a NUL", vec![("list", "week\0ly".into())]),
    ]
}

async fn answer(
    http: &reqwest::Client,
    url: &str,
    email: &str,
    fields: &[(&str, String)],
    json: bool,
) -> (u16, String) {
    let mut all: Vec<(&str, String)> = vec![("email", email.to_owned())];
    all.extend(fields.iter().cloned());
    let request = if json {
        let map: serde_json::Map<String, serde_json::Value> =
            all.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(v.clone()))).collect();
        http.post(url).json(&map)
    } else {
        http.post(url).form(&all)
    };
    let r = request.send().await.expect("post");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn nobody_learns_who_subscribes(p: &Publication) {
    p.gazette(&["subscribers", "add", "known@example.org", "--name", "Known", "--list", "weekly"]).ok();
    let server = WebServer::serve(p);
    let http = client();
    let url = server.url("/subscribe");
    let mut n = 0;
    for (what, fields) in inputs() {
        for json in [false, true] {
            n += 1;
            let stranger = format!("stranger{n}@example.org");
            let known = answer(&http, &url, "known@example.org", &fields, json).await;
            let unknown = answer(&http, &url, &stranger, &fields, json).await;
            assert!(known.0 < 500, "{what} (json {json}): {known:?}\n{}", server.log());
            assert_eq!(known, unknown, "{what} (json {json}): a subscriber and a stranger are told apart");
            // Another spelling of the subscriber is the subscriber.
            let shouted = answer(&http, &url, "KNOWN@Example.org", &fields, json).await;
            assert_eq!(shouted, unknown, "{what} (json {json}): a spelling is told apart");
        }
    }

    // Timing: alternating requests, so that a slow moment of the machine falls on both.
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let fields = [("name", "Ann".to_owned())];
        let t = Instant::now();
        answer(&http, &url, "known@example.org", &fields, false).await;
        known.push(t.elapsed());
        let t = Instant::now();
        answer(&http, &url, &format!("timing{i}@example.org"), &fields, false).await;
        unknown.push(t.elapsed());
    }
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let gap = k.abs_diff(u);
    eprintln!("median answer: known {k:?}, unknown {u:?}");
    assert!(
        gap < Duration::from_millis(5) + k.max(u) / 2,
        "a subscriber's answer ({k:?}) and a stranger's ({u:?}) can be told apart by time"
    );
}

#[tokio::test]
async fn sqlite_sign_up_answers_the_same_for_subscribers_and_strangers() {
    let p = publication(None, "subscribe_rate = \"10000/m\"");
    nobody_learns_who_subscribes(&p).await;
}

#[tokio::test]
async fn postgres_sign_up_answers_the_same_for_subscribers_and_strangers() {
    let db = TestDatabase::create();
    let p = publication(None, "subscribe_rate = \"10000/m\"");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let config = config.replace("database_url = \"sqlite://gazette.db\"", &format!("database_url = {:?}", db.url()));
    p.write("gazette.toml", &config);
    nobody_learns_who_subscribes(&p).await;
}
