//! The web end to end: the real `gazette serve` on a free loopback port, read with a real HTTP
//! client that follows no redirects, mailing through a real SMTP server. A reader signs up,
//! confirms, receives an issue and leaves with the one-click POST a mail provider sends; links
//! that do not work change nothing; nobody can tell who subscribes; the limits hold.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex, mpsc},
    time::{Duration, Instant},
};

use chrono::Utc;
use gazette::{
    config::LinkSecret,
    tokens::{Claims, Signer},
};
use reqwest::{StatusCode, header};

use crate::{
    smtp::{Options, SmtpServer},
    support::Publication,
};

/// What `support::Publication::gazette` gives every run.
pub const SECRET: &str = "test-secret-0123456789abcdef";
/// Where the links in mail point; requests go to the bound address instead.
pub const BASE: &str = "https://news.example.org";

/// `gazette serve` (or `run`) as a child process, stopped when dropped.
pub struct WebServer {
    child: Child,
    pub addr: String,
    log: Arc<Mutex<String>>,
}

impl WebServer {
    pub fn serve(p: &Publication) -> Self {
        Self::start(p, &["serve", "--listen", "127.0.0.1:0"])
    }

    pub fn start(p: &Publication, args: &[&str]) -> Self {
        Self::start_with(p, args, &[("GAZETTE_LOG", "info")])
    }

    /// With these environment variables set as well.
    pub fn start_with(p: &Publication, args: &[&str], env: &[(&str, &str)]) -> Self {
        // The tokens are removed before `env` is given, so a test may still set them.
        let mut child = p
            .command(args)
            .env("GAZETTE_SECRET", SECRET)
            .env_remove("GAZETTE_ADMIN_TOKEN")
            .env_remove("GAZETTE_METRICS_TOKEN")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start gazette");
        // The log is read to its end by a thread of its own: a pipe nobody reads would fill
        // and stall the server.
        let stderr = child.stderr.take().expect("stderr");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let kept = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on http://") {
                    let _ = tx.send(addr.trim().to_owned());
                }
                let mut log = kept.lock().expect("log");
                log.push_str(&line);
                log.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(a) => a,
            Err(_) => {
                let _ = child.kill();
                panic!("gazette did not say where it listens:\n{}", log.lock().expect("log"));
            }
        };
        Self { child, addr, log }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A link from a message, pointed at this server.
    pub fn local(&self, link: &str) -> String {
        assert!(link.starts_with(BASE), "{link} is not under {BASE}");
        self.url(&link[BASE.len()..])
    }

    pub fn log(&self) -> String {
        self.log.lock().expect("log").clone()
    }

    /// SIGTERM, then the exit status (within 20 s).
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "gazette did not stop within 20 s of SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A client that shows every answer as it is: no redirect followed.
pub fn client() -> reqwest::Client {
    gazette::sources::install_crypto_provider();
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client")
}

/// A publication with an open list (no list file), one article dated yesterday, mailing
/// through `smtp` (or into the outbox).
pub fn publication(smtp: Option<&SmtpServer>, web: &str) -> Publication {
    let p = Publication::with_config("");
    article(&p, "first", "The harbour at low tide", 1);
    let delivery = match smtp {
        Some(s) => format!("[delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n", s.url()),
        None => "[delivery]\ntransport = \"outbox\"\noutbox = \"outbox\"\n".to_owned(),
    };
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"Harbour Notes\"\nfrom = \"Harbour Notes <notes@example.org>\"\n\
             base_url = \"{BASE}\"\ntimezone = \"Europe/London\"\nlists = [\"weekly\"]\n\
             postal_address = \"1 Quay Street, Portsmouth\"\n\
             [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"7d\"\n\
             [[list]]\nname = \"weekly\"\n\
             [storage]\ndatabase_url = \"sqlite://gazette.db\"\n{delivery}[web]\n{web}\n"
        ),
    );
    p
}

pub fn article(p: &Publication, slug: &str, title: &str, days_ago: i64) {
    let date = (Utc::now() - chrono::Duration::days(days_ago)).to_rfc3339();
    p.write(
        &format!("articles/{slug}.md"),
        &format!("+++\ntitle = \"{title}\"\ndate = \"{date}\"\nurl = \"https://example.org/{slug}\"\n+++\nWhat {title} shows.\n"),
    );
}

/// Each subscriber's status, from `gazette subscribers list --json`.
pub fn statuses(p: &Publication) -> Vec<(String, String, Vec<String>)> {
    let out = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    out["subscribers"]
        .as_array()
        .expect("subscribers")
        .iter()
        .map(|s| {
            let lists = s["lists"].as_array().map(|l| l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect());
            (
                s["email"].as_str().unwrap_or_default().to_owned(),
                s["status"].as_str().unwrap_or_default().to_owned(),
                lists.unwrap_or_default(),
            )
        })
        .collect()
}

pub fn status_of(p: &Publication, email: &str) -> Option<String> {
    statuses(p).into_iter().find(|(e, _, _)| e == email).map(|(_, s, _)| s)
}

/// The first link in `text` that starts with `prefix`.
pub fn link_in(text: &str, prefix: &str) -> String {
    let at = text.find(prefix).unwrap_or_else(|| panic!("no {prefix} link in:\n{text}"));
    text[at..].chars().take_while(|c| !c.is_whitespace() && !"<>\"".contains(*c)).collect()
}

fn signer() -> Signer {
    Signer::new(LinkSecret::from_bytes(SECRET.as_bytes().to_vec()))
}

/// The https link of a message's `List-Unsubscribe` header.
fn list_unsubscribe(m: &crate::smtp::Received) -> String {
    let raw = String::from_utf8_lossy(&m.raw);
    let head = raw.split("\r\n\r\n").next().unwrap_or_default();
    let at = head.find("\r\nList-Unsubscribe:").expect("a List-Unsubscribe header");
    link_in(&head[at..], &format!("{BASE}/unsubscribe/"))
}

fn messages_to(smtp: &SmtpServer, to: &str) -> Vec<crate::smtp::Received> {
    smtp.messages().into_iter().filter(|m| m.rcpt_tos.iter().any(|r| r == to)).collect()
}

#[tokio::test]
async fn sign_up_confirm_receive_an_issue_and_leave_with_one_click() {
    let smtp = SmtpServer::start(Options::default());
    let p = publication(Some(&smtp), "welcome = true");
    p.gazette(&["subscribers", "add", "stays@example.org", "--list", "weekly"]).ok();
    p.gazette(&["subscribers", "add", "bob@example.org", "--list", "weekly"]).ok();
    let server = WebServer::serve(&p);
    let http = client();

    // Sign up with the form.
    let r = http
        .post(server.url("/subscribe"))
        .form(&[("email", "ann@example.org"), ("name", "Ann\r\nBcc: eve@example.org")])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("Check your inbox"));
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("unconfirmed"));

    // The confirmation: a text and HTML pair from the publication, with the signed link.
    let got = smtp.wait_for(1, Duration::from_secs(20));
    assert_eq!(got[0].rcpt_tos, vec!["ann@example.org".to_owned()], "nobody else: {:?}", got[0].rcpt_tos);
    let mail = got[0].parsed();
    assert_eq!(mail.from().and_then(|f| f.first()).and_then(|a| a.address()), Some("notes@example.org"));
    assert!(mail.subject().unwrap_or_default().contains("Harbour Notes"), "{:?}", mail.subject());
    let to = mail.to().and_then(|t| t.first()).expect("To");
    assert_eq!(to.address(), Some("ann@example.org"));
    assert_eq!(to.name(), Some("Ann Bcc: eve@example.org"), "a name is folded onto one line");
    assert!(mail.header("Bcc").is_none());
    let text = mail.body_text(0).expect("text part").into_owned();
    let html = mail.body_html(0).expect("html part").into_owned();
    let link = link_in(&text, &format!("{BASE}/confirm/"));
    assert!(html.contains(&link), "the HTML part carries the same link");

    // The link's page only shows a button: opening it changes nothing.
    let r = http.get(server.local(&link)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains("method=\"post\"") && page.contains("<button"), "{page}");
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("unconfirmed"));

    // Pressing it confirms, joins the list, and sends the welcome.
    let r = http.post(server.local(&link)).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("You are subscribed"));
    let ann = statuses(&p).into_iter().find(|(e, _, _)| e == "ann@example.org").expect("ann");
    assert_eq!((ann.1.as_str(), ann.2.clone()), ("active", vec!["weekly".to_owned()]));
    let got = smtp.wait_for(2, Duration::from_secs(20));
    let welcome = got[1].parsed();
    assert!(welcome.subject().unwrap_or_default().starts_with("Welcome"), "{:?}", welcome.subject());
    assert!(welcome.header("List-Unsubscribe").is_some());

    // The next issue reaches her.
    p.gazette(&["send", "--yes"]).ok();
    let issue = messages_to(&smtp, "ann@example.org");
    assert_eq!(issue.len(), 3, "confirmation, welcome, issue 1");
    let issue = issue[2].parsed();
    assert_eq!(issue.header("List-Unsubscribe-Post").and_then(|h| h.as_text()), Some("List-Unsubscribe=One-Click"));
    let unsubscribe = list_unsubscribe(&messages_to(&smtp, "ann@example.org")[2]);

    // A GET of the unsubscribe link changes nothing; the provider's one-click POST (form
    // encoded) unsubscribes, and is harmless a second time.
    let r = http.get(server.local(&unsubscribe)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("active"));
    for _ in 0..2 {
        let r = http
            .post(server.local(&unsubscribe))
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .expect("post");
        assert_eq!(r.status(), StatusCode::OK);
    }
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));

    // The same, multipart, as some providers send it.
    let bob_link = list_unsubscribe(&messages_to(&smtp, "bob@example.org")[0]);
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    let r = http.post(server.local(&bob_link)).multipart(form).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status_of(&p, "bob@example.org").as_deref(), Some("unsubscribed"));

    // The confirmation link, pressed again now, cannot bring her back.
    let r = http.post(server.local(&link)).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));

    // The next issue goes to who stayed, and to neither of them.
    article(&p, "second", "Gulls at the breakwater", 0);
    p.gazette(&["send", "--yes"]).ok();
    assert_eq!(messages_to(&smtp, "stays@example.org").len(), 2);
    assert_eq!(messages_to(&smtp, "ann@example.org").len(), 3);
    assert_eq!(messages_to(&smtp, "bob@example.org").len(), 1);

    let log = server.log();
    assert!(!log.contains("ann@example.org"), "no address in the log:\n{log}");
    assert!(!log.contains(&link[BASE.len() + "/confirm/".len()..]), "no token in the log:\n{log}");
    assert!(log.contains("/confirm/{token}"), "requests are logged by route:\n{log}");
}

#[tokio::test]
async fn links_that_do_not_work_get_a_page_and_change_nothing() {
    let p = publication(None, "");
    p.gazette(&["subscribers", "add", "ann@example.org", "--list", "weekly"]).ok();
    let server = WebServer::serve(&p);
    let http = client();
    let ann: gazette::domain::EmailAddress = "ann@example.org".parse().expect("address");
    let now = Utc::now();
    let week = chrono::Duration::days(7);
    let unsubscribe = signer().sign(&Claims::unsubscribe(ann.clone()));
    let forged = Signer::new(LinkSecret::from_bytes(b"another secret, not the publication's".to_vec()))
        .sign(&Claims::unsubscribe(ann.clone()));
    let expired = signer().sign(&Claims::confirm(ann.clone(), None, now - chrono::Duration::days(8), week));
    let tampered = {
        let mut t = unsubscribe.clone();
        t.insert(3, 'x');
        t
    };
    let cases = [
        (format!("/unsubscribe/{forged}"), StatusCode::BAD_REQUEST),
        (format!("/unsubscribe/{tampered}"), StatusCode::BAD_REQUEST),
        (format!("/confirm/{expired}"), StatusCode::GONE),
        (format!("/confirm/{unsubscribe}"), StatusCode::BAD_REQUEST),
        ("/unsubscribe/".to_owned(), StatusCode::NOT_FOUND),
    ];
    for (path, want) in &cases {
        for post in [false, true] {
            let r = if post {
                http.post(server.url(path)).form(&[("List-Unsubscribe", "One-Click")]).send().await
            } else {
                http.get(server.url(path)).send().await
            }
            .expect("request");
            assert_eq!(r.status(), *want, "{} {path}", if post { "POST" } else { "GET" });
            let page = r.text().await.expect("body");
            assert!(page.contains("<h1") && page.contains("Harbour Notes"), "a page of the publication: {page}");
        }
    }
    // A genuine link, opened by a mail scanner: nothing changes either.
    let r = http.get(server.url(&format!("/unsubscribe/{unsubscribe}"))).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("active"));
    // A confirmation link made before she left cannot bring her back.
    let old = signer().sign(&Claims::confirm(ann.clone(), None, now - chrono::Duration::hours(1), week));
    let r = http.post(server.url(&format!("/unsubscribe/{unsubscribe}"))).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let r = http.post(server.url(&format!("/confirm/{old}"))).send().await.expect("post");
    assert_eq!(r.status(), StatusCode::GONE);
    assert!(r.text().await.expect("body").contains("cannot sign you up again"));
    assert_eq!(status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));
}

#[tokio::test]
async fn nobody_can_tell_who_subscribes_and_every_answer_is_guarded() {
    let p = publication(None, "subscribe_rate = \"100/m\"");
    p.gazette(&["subscribers", "add", "known@example.org", "--list", "weekly"]).ok();
    let mut server = WebServer::serve(&p);
    let http = client();
    let ask = |email: &'static str| {
        let http = http.clone();
        let url = server.url("/subscribe");
        async move {
            let r = http.post(url).form(&[("email", email), ("name", "")]).send().await.expect("post");
            (r.status(), r.text().await.expect("body"))
        }
    };
    let known = ask("known@example.org").await;
    let unknown = ask("stranger@example.org").await;
    let pending = ask("stranger@example.org").await;
    assert_eq!(known.0, StatusCode::OK);
    assert_eq!(known, unknown, "the same status and body for a subscriber and a stranger");
    assert_eq!(known, pending, "and for an address waiting for its confirmation");
    let json = |email: &'static str| {
        let http = http.clone();
        let url = server.url("/subscribe");
        async move {
            let r = http.post(url).json(&serde_json::json!({ "email": email })).send().await.expect("post");
            (r.status(), r.text().await.expect("body"))
        }
    };
    assert_eq!(json("known@example.org").await, json("another@example.org").await);

    // The security headers, on pages, the stylesheet, errors.
    let home = http.get(server.url("/")).send().await.expect("get");
    let page_css = {
        let h = home.headers().clone();
        let body = home.text().await.expect("body");
        assert!(body.contains("<form") && body.contains("action=\"/subscribe\""));
        (h, body.split("rel=\"stylesheet\" href=\"").nth(1).and_then(|s| s.split('"').next()).map(str::to_owned))
    };
    let css = http.get(server.url(page_css.1.as_deref().expect("a stylesheet"))).send().await.expect("css");
    assert_eq!(css.status(), StatusCode::OK);
    assert!(css.headers()[header::CONTENT_TYPE].to_str().expect("type").starts_with("text/css"));
    let missing = http.get(server.url("/nothing-here")).send().await.expect("get");
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    for headers in [&page_css.0, css.headers(), missing.headers()] {
        let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().expect("csp");
        for d in [
            "default-src 'none'",
            "style-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ] {
            assert!(csp.contains(d), "{csp}");
        }
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff");
        assert_eq!(headers[header::REFERRER_POLICY], "no-referrer");
    }

    // A body over the limit is refused before it is read.
    let big = format!("email=a%40example.org&name={}", "x".repeat(64 * 1024));
    let r = http
        .post(server.url("/subscribe"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(big)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // SIGTERM: a clean stop.
    assert!(server.stop().success(), "{}", server.log());
}

#[tokio::test]
async fn sign_ups_are_limited_per_client_and_confirmations_per_address() {
    let p = publication(None, "subscribe_rate = \"8/m\"");
    let server = WebServer::serve(&p);
    let http = client();
    let mut codes = Vec::new();
    for i in 0..10 {
        // Five for one address, then others: the address limit and the client limit both show.
        let email = if i < 5 { "ann@example.org".to_owned() } else { format!("reader{i}@example.org") };
        let r = http.post(server.url("/subscribe")).form(&[("email", email.as_str())]).send().await.expect("post");
        codes.push(r.status().as_u16());
        // A 429 says when to come back: an attempt returns every 7.5 s.
        let retry_after = r.headers().get(header::RETRY_AFTER).map(|v| v.to_str().expect("ascii").to_owned());
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            let seconds: u64 = retry_after.as_deref().expect("Retry-After").parse().expect("whole seconds");
            assert!((1..=8).contains(&seconds), "Retry-After: {seconds}");
        } else {
            assert_eq!(retry_after, None);
        }
    }
    assert_eq!(codes, [200, 200, 200, 200, 200, 200, 200, 200, 429, 429]);
    // Three confirmations for ann (the cap a day), one each for the three others let in.
    let outbox = p.path().join("outbox/new");
    let deadline = Instant::now() + Duration::from_secs(10);
    let count = || std::fs::read_dir(&outbox).map(|d| d.count()).unwrap_or(0);
    while count() < 6 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let mail: Vec<String> = std::fs::read_dir(&outbox)
        .expect("outbox")
        .map(|e| std::fs::read_to_string(e.expect("entry").path()).expect("read"))
        .collect();
    assert_eq!(mail.len(), 6, "3 for ann and 1 for each of the 3 others");
    assert_eq!(mail.iter().filter(|m| m.contains("To: ann@example.org")).count(), 3);
}

#[tokio::test]
async fn gazette_run_serves_the_web_beside_the_scheduler_and_stops_on_sigterm() {
    let p = publication(None, "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &format!("{config}\n[schedule]\ncron = \"0 0 9 * * Mon\"\n"));
    let mut server = WebServer::start(&p, &["run", "--listen", "127.0.0.1:0"]);
    let r = client().get(server.url("/")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("Harbour Notes"));
    assert!(server.stop().success(), "{}", server.log());
}

/// Whether the server still holds `stream` open (no end of stream, no reset waiting on it).
fn still_open(stream: &std::net::TcpStream) -> bool {
    stream.set_nonblocking(true).expect("nonblocking");
    let mut buf = [0u8; 16];
    match std::io::Read::read(&mut &*stream, &mut buf) {
        Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
        Ok(n) => n > 0,
    }
}

#[tokio::test]
async fn idle_connections_cannot_keep_the_health_check_out() {
    let p = publication(None, "");
    let server = WebServer::serve(&p);
    // Connections that never send a byte: each waits for its headers for 10 s.
    let idle: Vec<std::net::TcpStream> =
        (0..300).map(|_| std::net::TcpStream::connect(&server.addr).expect("connect")).collect();
    let started = Instant::now();
    let r = client().get(server.url("/healthz")).timeout(Duration::from_secs(5)).send().await.expect("an answer");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(3), "/healthz took {:?}", started.elapsed());
    // The server holds no more than its limit, the health check's connection among them: the
    // idle ones it let go made room.
    let limit = gazette::web::server::MAX_CONNECTIONS;
    let deadline = Instant::now() + Duration::from_secs(3);
    let open = loop {
        let open = idle.iter().filter(|s| still_open(s)).count();
        if open < limit || Instant::now() > deadline {
            break open;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(open < limit, "{open} of 300 idle connections still open; the limit is {limit}");
    assert!(!still_open(&idle[0]), "the oldest idle connection made room first");
}

#[tokio::test]
async fn request_headers_over_the_limit_are_refused() {
    let p = publication(None, "");
    let server = WebServer::serve(&p);
    let mut stream = std::net::TcpStream::connect(&server.addr).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request = format!("GET / HTTP/1.1\r\nHost: news.example.org\r\nX-Pad: {}\r\n\r\n", "a".repeat(200 * 1024));
    // The server may stop reading, and close, before all of it is written.
    let _ = std::io::Write::write_all(&mut stream, request.as_bytes());
    let mut answer = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut answer);
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 431"), "{answer}");
    // A request of the usual size is still answered.
    let r = client().get(server.url("/")).header("x-pad", "a".repeat(4 * 1024)).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::OK);
}
