//! Feeds over HTTP are fetched with a conditional GET once a store holds the last body: the
//! second `send` asks with the ETag, gets 304, and still knows the feed's articles.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
};

use crate::support::{Publication, fixture};

struct FeedServer {
    child: Child,
    port: u16,
    log: std::path::PathBuf,
}

impl FeedServer {
    fn start(file: &std::path::Path, log: &std::path::Path) -> Self {
        let script = crate::support::repo().join("tests/http/feed_server.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg("--file")
            .arg(file)
            .arg("--log")
            .arg(log)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the feed server");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("READY line");
        let port = line.trim().strip_prefix("READY ").and_then(|p| p.parse().ok()).expect("READY <port>");
        Self { child, port, log: log.to_owned() }
    }

    fn requests(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("log line"))
            .collect()
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_second_send_asks_with_the_etag_and_uses_the_kept_body() {
    let p = Publication::with_config("");
    let feed = p.path().join("served.xml");
    std::fs::copy(fixture("feeds/seed-mirror.xml"), &feed).expect("copy feed");
    let server = FeedServer::start(&feed, &p.path().join("requests.jsonl"));
    p.write("list.csv", "email\nann@example.org\n");
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"M\"\nfrom = \"m@example.org\"\nlists = [\"weekly\"]\n\
             [[source]]\nfeed = \"http://127.0.0.1:{}/feed.xml\"\n[[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n",
            server.port
        ),
    );
    // Queue issue 1 and cancel it: a cancelled issue carries nothing, so the next send must
    // find the same six articles again, from the kept body.
    let first =
        p.gazette(&["send", "--yes", "--as-of", "2024-03-16T12:00:00-04:00", "--queue-only", "--json"]).ok().json();
    assert_eq!(first["articles"].as_array().map(Vec::len), Some(6), "{first:#}");
    p.gazette(&["issues", "cancel", "1"]).ok();
    let second =
        p.gazette(&["send", "--yes", "--as-of", "2024-03-16T12:00:00-04:00", "--queue-only", "--json"]).ok().json();
    assert_eq!(second["number"], 2, "{second:#}");
    assert_eq!(second["articles"].as_array().map(Vec::len), Some(6), "the kept body was read: {second:#}");
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert!(requests[0]["if_none_match"].is_null());
    assert_eq!(requests[0]["status"], 200);
    assert!(requests[1]["if_none_match"].as_str().is_some_and(|e| e.starts_with('"')), "{requests:?}");
    assert_eq!(requests[1]["status"], 304);
}
