//! The admin API, `/healthz` and `/metrics` of the real `gazette serve`, over HTTP on a loopback
//! port, with a real SMTP server (aiosmtpd) behind the test copy.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::{
    smtp::{Options, SmtpServer},
    support::Publication,
};

const TOKEN: &str = "admin-token-for-tests-0123456789";

/// A running `gazette serve --listen 127.0.0.1:0`, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Server {
    child: Child,
    /// `http://127.0.0.1:PORT`, as the server printed it.
    pub base: String,
    log: Arc<Mutex<String>>,
}

impl Server {
    /// Starts the server on the publication, with `env` added to the environment the tests
    /// always give (`GAZETTE_SECRET`, and no admin or metrics token unless `env` sets one).
    pub fn start(p: &Publication, env: &[(&str, &str)]) -> Self {
        let mut child = without_tokens(p, &["serve", "--listen", "127.0.0.1:0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gazette serve");
        // stderr is read to its end on a thread: a pipe nobody reads would stall the server.
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let kept = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(url) = line.strip_prefix("listening on ") {
                    let _ = tx.send(url.trim().to_owned());
                }
                if let Ok(mut l) = kept.lock() {
                    l.push_str(&line);
                    l.push('\n');
                }
            }
        });
        let Ok(base) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "gazette serve did not say where it listens; its log:\n{}",
                log.lock().map(|l| l.clone()).unwrap_or_default()
            );
        };
        Self { child, base, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Everything the server has written to stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn client() -> reqwest::Client {
    gazette::sources::install_crypto_provider();
    reqwest::Client::builder().timeout(Duration::from_secs(20)).build().expect("an HTTP client")
}

/// One request to the admin API with the test token (or `token`), its status and JSON body.
async fn api(
    server: &Server,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = client().request(method, server.url(path));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    let json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}"));
    (status, json)
}

async fn admin(server: &Server, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    api(server, method, path, Some(TOKEN), body).await
}

#[track_caller]
fn assert_field(answer: &(StatusCode, Value), field: &str) {
    assert_eq!(answer.0, StatusCode::UNPROCESSABLE_ENTITY, "{}", answer.1);
    assert_eq!(answer.1["error"]["field"], field, "{}", answer.1);
    assert!(answer.1["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{}", answer.1);
}

#[tokio::test]
async fn without_the_token_set_the_api_is_off_and_says_so_once() {
    let p = Publication::sample();
    let server = Server::start(&p, &[]);
    for path in ["/api/subscribers", "/api/issues", "/api/no-such-route"] {
        for token in [None, Some(""), Some("guess")] {
            let response = {
                let mut r = client().get(server.url(path));
                if let Some(t) = token {
                    r = r.bearer_auth(t);
                }
                r.send().await.expect("answer")
            };
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{path} {token:?}");
            let challenge = response.headers()[header::WWW_AUTHENTICATE].to_str().expect("ascii");
            assert!(challenge.starts_with("Bearer"), "{challenge}");
        }
    }
    let log = server.log();
    assert_eq!(log.matches("admin API").count(), 1, "{log}");
    // The reader's pages do not need the token.
    assert_eq!(client().get(server.url("/healthz")).send().await.expect("answer").status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_or_missing_token_gets_401_and_the_right_one_gets_in() {
    let p = Publication::sample();
    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    for token in [None, Some("admin-token-for-tests-012345678"), Some("x"), Some(&format!("{TOKEN}x")[..])] {
        let (status, body) = api(&server, Method::GET, "/api/subscribers", token, None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}: {body}");
        assert!(body["error"]["message"].as_str().is_some());
    }
    // The scheme is the only spelling that may vary.
    let response = client()
        .get(server.url("/api/issues"))
        .header(header::AUTHORIZATION, format!("bearer {TOKEN}"))
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let (status, body) = admin(&server, Method::GET, "/api/no-such-route", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(!server.log().contains(TOKEN), "the token reached the log");
}

/// The sample publication with its list left to the store rather than to a file.
fn without_list_file() -> Publication {
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let config = config.replace("file = \"subscribers/weekly.csv\"\n", "");
    assert!(!config.contains("weekly.csv"), "the sample's [[list]] changed; update this test");
    p.write("gazette.toml", &config);
    p
}

#[tokio::test]
async fn subscribers_are_added_listed_by_page_shown_and_removed() {
    let p = without_list_file();
    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);

    let new = json!({
        "email": "zoe@Example.ORG",
        "name": "Zoe\nQuinn",
        "lists": ["friends"],
        "attributes": { "city": "Oslo" },
    });
    let (status, body) = admin(&server, Method::POST, "/api/subscribers", Some(new.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["subscriber"]["email"], "zoe@example.org");
    assert_eq!(body["subscriber"]["name"], "Zoe Quinn");
    assert_eq!(body["subscriber"]["status"], "active");
    assert_eq!(body["subscriber"]["lists"], json!(["friends"]));
    assert_eq!(body["subscriber"]["attributes"]["city"], "Oslo");
    let (status, body) = admin(&server, Method::POST, "/api/subscribers", Some(new)).await;
    assert_eq!(status, StatusCode::OK, "adding again updates: {body}");
    assert_eq!(body["created"], false);
    for i in 0..4 {
        let (status, _) =
            admin(&server, Method::POST, "/api/subscribers", Some(json!({ "email": format!("r{i}@example.org") })))
                .await;
        assert_eq!(status, StatusCode::CREATED);
    }

    // Without `lists`, the publication's lists that no file decides.
    let (_, body) = admin(&server, Method::GET, "/api/subscribers/r0@example.org", None).await;
    assert_eq!(body["subscriber"]["lists"], json!(["readers", "weekly"]));

    // Pages of two, in address order, until `next` is null.
    let mut seen = Vec::new();
    let mut path = "/api/subscribers?limit=2".to_owned();
    loop {
        let (status, body) = admin(&server, Method::GET, &path, None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let page = body["subscribers"].as_array().expect("an array");
        assert!(page.len() <= 2);
        seen.extend(page.iter().map(|s| s["email"].as_str().expect("email").to_owned()));
        match body["next"].as_str() {
            Some(next) => path = format!("/api/subscribers?limit=2&after={next}"),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 5, "{seen:?}");
    let (_, body) = admin(&server, Method::GET, "/api/subscribers?list=friends", None).await;
    assert_eq!(body["subscribers"].as_array().map(Vec::len), Some(1), "{body}");

    // Leaving: unsubscribed, then refused by a later add, then forgotten.
    let (status, body) = admin(&server, Method::DELETE, "/api/subscribers/zoe@example.org", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["changed"], true);
    let (_, body) = admin(&server, Method::GET, "/api/subscribers?status=unsubscribed", None).await;
    assert_eq!(body["subscribers"][0]["email"], "zoe@example.org", "{body}");
    let (status, body) =
        admin(&server, Method::POST, "/api/subscribers", Some(json!({ "email": "zoe@example.org" }))).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = admin(&server, Method::DELETE, "/api/subscribers/zoe@example.org?forget=true", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = admin(&server, Method::GET, "/api/subscribers/zoe@example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = admin(&server, Method::DELETE, "/api/subscribers/nobody@example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_input_gets_422_naming_the_field() {
    let p = Publication::sample();
    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    let post = |body: Value| admin(&server, Method::POST, "/api/subscribers", Some(body));
    assert_field(&post(json!({ "email": "not an address" })).await, "email");
    assert_field(&post(json!({ "name": "No Address" })).await, "email");
    assert_field(&post(json!({ "email": "a@example.org\r\nBcc: x@example.org" })).await, "email");
    assert_field(&post(json!({ "email": "a@example.org", "lists": ["no spaces"] })).await, "lists");
    assert_field(&post(json!({ "email": "a@example.org", "lists": "weekly" })).await, "lists");
    // The sample's list is decided by its file: an address added here would be dropped again.
    assert_field(&post(json!({ "email": "a@example.org", "lists": ["weekly"] })).await, "lists");
    assert_field(&post(json!({ "email": "a@example.org", "attributes": { "age": 7 } })).await, "attributes.age");
    assert_field(&post(json!({ "email": "a@example.org", "nmae": "typo" })).await, "nmae");
    assert_field(&post(json!({ "email": 7 })).await, "email");
    let get = |path: &'static str| admin(&server, Method::GET, path, None);
    assert_field(&get("/api/subscribers?status=gone").await, "status");
    assert_field(&get("/api/subscribers?limit=0").await, "limit");
    assert_field(&get("/api/subscribers?limit=many").await, "limit");
    assert_field(&get("/api/subscribers?after=nope").await, "after");
    assert_field(&get("/api/subscribers?lists=weekly").await, "lists");
    assert_field(&get("/api/subscribers/not-an-address").await, "email");
    assert_field(&get("/api/issues/first").await, "number");
    assert_field(&admin(&server, Method::DELETE, "/api/subscribers/a@example.org?forget=maybe", None).await, "forget");
    // Not JSON at all is a 400, still in the same shape.
    let response = client()
        .post(server.url("/api/subscribers"))
        .bearer_auth(TOKEN)
        .header(header::CONTENT_TYPE, "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .expect("answer");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.expect("JSON");
    assert!(body["error"]["message"].as_str().is_some_and(|m| m.contains("JSON")), "{body}");
    // Nothing of it was stored.
    let (_, body) = get("/api/subscribers?list=weekly").await;
    assert_eq!(body["subscribers"], json!([]), "{body}");
}

#[tokio::test]
async fn issues_show_their_counts_and_a_test_copy_goes_to_one_address_recorded_nowhere() {
    let smtp = SmtpServer::start(Options::default());
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let config = config.replace(
        "transport = \"outbox\"\noutbox = \"outbox\"",
        &format!("transport = \"smtp\"\nsmtp_url = {:?}", smtp.url()),
    );
    assert!(config.contains("smtp_url"), "the sample's [delivery] changed; update this test");
    p.write("gazette.toml", &config);
    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    assert_eq!(smtp.wait_for(3, Duration::from_secs(20)).len(), 3);

    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    let (status, body) = admin(&server, Method::GET, "/api/issues", None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["issues"][0]["number"], 1);
    assert_eq!(body["issues"][0]["status"], "sent");
    assert_eq!(body["issues"][0]["counts"]["sent"], 3);
    let (status, issue) = admin(&server, Method::GET, "/api/issues/1", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(issue["counts"]["sent"], 3);
    assert_eq!(issue["failures"], json!([]));
    assert!(issue["articles"].as_array().is_some_and(|a| !a.is_empty()), "{issue}");
    let (status, _) = admin(&server, Method::GET, "/api/issues/9", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    assert_field(&admin(&server, Method::POST, "/api/issues/1/preview", Some(json!({ "to": "nope" }))).await, "to");
    assert_field(&admin(&server, Method::POST, "/api/issues/1/preview", Some(json!({}))).await, "to");
    let (status, _) =
        admin(&server, Method::POST, "/api/issues/9/preview", Some(json!({ "to": "editor@example.org" }))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) =
        admin(&server, Method::POST, "/api/issues/1/preview", Some(json!({ "to": "editor@example.org" }))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let got = smtp.wait_for(4, Duration::from_secs(20));
    assert_eq!(got.len(), 4);
    let copy = &got[3];
    assert_eq!(copy.rcpt_tos, vec!["editor@example.org".to_owned()]);
    let parsed = copy.parsed();
    let html = parsed.body_html(0).expect("an HTML part").into_owned();
    for title in issue["articles"].as_array().expect("articles") {
        let title = title["title"].as_str().expect("title").replace('\'', "&#x27;");
        assert!(html.contains(&title), "{title} is missing from the test copy");
    }
    // Recorded nowhere: the ledger and the subscribers are as they were.
    let (_, after) = admin(&server, Method::GET, "/api/issues/1", None).await;
    assert_eq!(after["counts"], issue["counts"]);
    let (status, _) = admin(&server, Method::GET, "/api/subscribers/editor@example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn health_and_metrics_answer_without_addresses_or_tokens_in_labels() {
    let p = Publication::sample();
    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    let health = client().get(server.url("/healthz")).send().await.expect("answer");
    assert_eq!(health.status(), StatusCode::OK);
    assert_eq!(health.text().await.expect("body").trim(), "ok");

    // Requests with an address and a token in their paths.
    admin(&server, Method::GET, "/api/subscribers/ada@example.org", None).await;
    let _ = client().get(server.url("/unsubscribe/u.secret-looking-token")).send().await.expect("answer");
    let _ = client().get(server.url("/archive/1")).send().await.expect("answer");
    let _ = client().get(server.url("/no/such/page")).send().await.expect("answer");

    let response = client().get(server.url("/metrics")).bearer_auth(TOKEN).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()[header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    let text = response.text().await.expect("body");
    for line in [
        "gazette_subscribers{status=\"active\"} 3",
        "gazette_subscribers{status=\"unsubscribed\"} 0",
        "gazette_issues{status=\"sent\"} 1",
        "gazette_deliveries_total{outcome=\"sent\"}",
    ] {
        assert!(text.contains(line), "{line} is missing:\n{text}");
    }
    for route in ["/api/subscribers/{email}", "/unsubscribe/{token}", "/archive/{number}", "unmatched", "/healthz"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("gazette_http_requests_total{") && l.contains(&format!("route=\"{route}\""))),
            "no request counted for {route}:\n{text}"
        );
    }
    assert!(text.contains("gazette_http_request_duration_seconds_bucket"), "{text}");
    for secret in ["ada@example.org", "secret-looking-token", TOKEN, "/no/such/page"] {
        assert!(!text.contains(secret), "{secret} reached the metrics:\n{text}");
    }
}

const METRICS_TOKEN: &str = "metrics-token-for-tests-0123456789";

async fn metrics_status(server: &Server, token: Option<&str>) -> (StatusCode, Option<String>, String) {
    let mut request = client().get(server.url("/metrics"));
    if let Some(t) = token {
        request = request.bearer_auth(t);
    }
    let response = request.send().await.expect("the server answers");
    let challenge = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().expect("ascii").to_owned());
    (response.status(), challenge, response.text().await.expect("a body"))
}

#[tokio::test]
async fn metrics_answer_only_a_token_and_are_not_there_without_one() {
    let p = Publication::sample();
    // Nobody may read the figures that move with sign-ups and bounces.
    {
        let server = Server::start(&p, &[]);
        for token in [None, Some(TOKEN)] {
            assert_eq!(metrics_status(&server, token).await.0, StatusCode::NOT_FOUND, "{token:?}");
        }
    }
    let server = Server::start(&p, &[("GAZETTE_METRICS_TOKEN", METRICS_TOKEN), ("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    for token in [None, Some(""), Some("guess"), Some(&format!("{METRICS_TOKEN}x")[..])] {
        let (status, challenge, body) = metrics_status(&server, token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert!(challenge.is_some_and(|c| c.starts_with("Bearer")), "{token:?}");
        assert!(!body.contains("gazette_"), "{body}");
    }
    for token in [METRICS_TOKEN, TOKEN] {
        let (status, _, body) = metrics_status(&server, Some(token)).await;
        assert_eq!(status, StatusCode::OK, "{token}");
        assert!(body.contains("gazette_subscribers{"), "{body}");
    }
    // The metrics token opens /metrics and nothing else.
    let (status, _) = api(&server, Method::GET, "/api/subscribers", Some(METRICS_TOKEN), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let log = server.log();
    assert!(!log.contains(METRICS_TOKEN) && !log.contains(TOKEN), "a token reached the log:\n{log}");
}

/// The binary on `p` as every test runs it, with no admin or metrics token from the environment
/// that runs the tests.
fn without_tokens(p: &Publication, args: &[&str]) -> Command {
    let mut command = p.command(args);
    command.env_remove("GAZETTE_ADMIN_TOKEN").env_remove("GAZETTE_METRICS_TOKEN");
    command
}

/// Runs `gazette ARGS` with `env` for at most `limit` (a command still running then is
/// killed), and gives its exit code (`None`: it was still running) and stderr.
fn run_briefly(p: &Publication, args: &[&str], env: &[(&str, &str)], limit: Duration) -> (Option<i32>, String) {
    let mut child = without_tokens(p, args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gazette");
    let deadline = std::time::Instant::now() + limit;
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    (code, stderr)
}

#[test]
fn a_token_too_short_to_guard_anything_stops_serve_and_run() {
    let p = Publication::sample();
    let short = "short-token-0123456789";
    for (command, variable) in [("serve", "GAZETTE_ADMIN_TOKEN"), ("run", "GAZETTE_METRICS_TOKEN")] {
        let env = [(variable, short), ("GAZETTE_LOG", "debug")];
        let (code, stderr) = run_briefly(&p, &[command, "--listen", "127.0.0.1:0"], &env, Duration::from_secs(20));
        assert_eq!(code, Some(2), "{command} with a short {variable}:\n{stderr}");
        assert!(stderr.contains(variable) && stderr.contains("openssl rand -hex 32"), "{stderr}");
        assert!(!stderr.contains(short), "the token reached the log:\n{stderr}");
        assert!(!stderr.contains("listening on"), "{stderr}");
    }
    // A worker serves no web and needs no token.
    let (code, stderr) = run_briefly(&p, &["worker"], &[("GAZETTE_ADMIN_TOKEN", short)], Duration::from_secs(2));
    assert_eq!(code, None, "{stderr}");
}

#[tokio::test]
async fn deliveries_sent_by_a_worker_show_on_the_metrics_of_serve() {
    let p = Publication::sample();
    p.gazette(&["send", "--queue-only", "--as-of", "2024-03-16", "--yes"]).ok();
    let server = Server::start(&p, &[("GAZETTE_METRICS_TOKEN", METRICS_TOKEN)]);
    // Another process, as on a deployment with workers of their own: it serves no metrics.
    let mut worker = Command::new(env!("CARGO_BIN_EXE_gazette"))
        .arg("--config")
        .arg(p.path().join("gazette.toml"))
        .arg("worker")
        .env_remove("GAZETTE_SMTP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAZETTE_CONFIG")
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start gazette worker");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let doc = p.gazette(&["issues", "show", "1", "--json"]).json();
        if doc["status"] == "sent" {
            assert_eq!(doc["counts"]["sent"], 3, "{doc:#}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the worker did not send the issue: {doc:#}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = worker.kill();
    let _ = worker.wait();

    let (status, _, text) = metrics_status(&server, Some(METRICS_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    for line in [
        "gazette_ledger_deliveries{issue_status=\"sent\",state=\"sent\"} 3",
        "gazette_ledger_deliveries{issue_status=\"sending\",state=\"queued\"} 0",
        "gazette_issues{status=\"sent\"} 1",
        "gazette_issues{status=\"paused\"} 0",
        "gazette_bounces{kind=\"hard\"} 0",
        "gazette_bounces{kind=\"complaint\"} 0",
        // What this process recorded itself: nothing, the worker sent them all.
        "gazette_deliveries_total{outcome=\"sent\"} 0",
    ] {
        assert!(text.lines().any(|l| l == line), "{line} is missing:\n{text}");
    }
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_on_the_api_too() {
    let p = without_list_file();
    let server = Server::start(&p, &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);
    let big = json!({ "email": "zoe@example.org", "name": "z".repeat(100 * 1024) });
    let response =
        client().post(server.url("/api/subscribers")).bearer_auth(TOKEN).json(&big).send().await.expect("answer");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let (status, _) = admin(&server, Method::GET, "/api/subscribers/zoe@example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "nothing of it was stored");
    let small = json!({ "email": "zoe@example.org", "name": "z".repeat(200) });
    assert_eq!(admin(&server, Method::POST, "/api/subscribers", Some(small)).await.0, StatusCode::CREATED);
}
