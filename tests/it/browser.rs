//! The reader's pages in a real browser: headless Chromium driven through chromedriver. A reader
//! fills the form with the keyboard alone, follows the confirmation link and presses its
//! button, leaves from the unsubscribe page, and reads the archive. Every page is checked at a
//! phone's width (375 px) and a desktop's (1200 px), in light and dark colours: nothing scrolls
//! sideways, the dark scheme is dark. Screenshots are kept as `target/look/web-*.png`.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use axum::http::Method;
use base64::Engine;
use fantoccini::{
    Client, ClientBuilder, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    key::Key,
    wd::WebDriverCompatibleCommand,
};
use gazette::{
    config::LinkSecret,
    tokens::{Claims, Signer},
};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use crate::{
    support::repo,
    web::{self, WebServer},
};

/// `chromedriver` on a free loopback port, stopped when dropped.
pub struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    pub fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver is installed by scripts/test.sh (Debian's chromium-driver)");
        let driver = Self { child, port, profile: tempfile::tempdir().expect("profile") };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not start within 20 s");
            std::thread::sleep(Duration::from_millis(50));
        }
        driver
    }

    pub async fn browser(&self) -> Client {
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert("goog:chromeOptions".into(), json!({ "binary": "/usr/bin/chromium", "args": args }));
        ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Chrome DevTools command, through chromedriver's `goog/cdp/execute`.
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base: &url::Url, session: Option<&str>) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/goog/cdp/execute", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({ "cmd": self.0, "params": self.1 }).to_string()))
    }
}

pub async fn cdp(b: &Client, cmd: &'static str, params: Value) -> Value {
    b.issue_cmd(Cdp(cmd, params)).await.unwrap_or_else(|e| panic!("{cmd}: {e}"))
}

/// Presses keys, one after another, on whatever has the focus.
async fn press(b: &Client, keys: &str) {
    let mut actions = KeyActions::new("keyboard".into());
    for c in keys.chars() {
        actions = actions.then(KeyAction::Down { value: c }).then(KeyAction::Up { value: c });
    }
    b.perform_actions(actions).await.expect("keys");
}

/// Tabs through the page until the element with `id` has the focus: it must be reachable with
/// the keyboard, within a few stops.
async fn tab_to(b: &Client, id: &str) {
    for _ in 0..12 {
        press(b, &Key::Tab.to_string()).await;
        let focused = b.active_element().await.expect("focus").attr("id").await.expect("id");
        if focused.as_deref() == Some(id) {
            return;
        }
    }
    panic!("#{id} cannot be reached with the Tab key");
}

async fn heading(b: &Client) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(h) = b.find(Locator::Css("h1")).await
            && let Ok(t) = h.text().await
        {
            return t;
        }
        assert!(Instant::now() < deadline, "no heading on {:?}", b.current_url().await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub async fn wait_for_heading(b: &Client, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let h = heading(b).await;
        if h.contains(want) {
            return;
        }
        assert!(Instant::now() < deadline, "the page says {h:?}, not {want:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Checks the page at both widths in both schemes and keeps a full-page screenshot of each.
pub async fn look(b: &Client, name: &str) {
    let dir: PathBuf = repo().join("target/look");
    std::fs::create_dir_all(&dir).expect("mkdir target/look");
    let mut backgrounds = Vec::new();
    for (width, device) in [(375u32, "phone"), (1200, "desktop")] {
        for scheme in ["light", "dark"] {
            cdp(
                b,
                "Emulation.setDeviceMetricsOverride",
                json!({ "width": width, "height": 800, "deviceScaleFactor": 1, "mobile": width < 500 }),
            )
            .await;
            cdp(
                b,
                "Emulation.setEmulatedMedia",
                json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
            )
            .await;
            // A framed page (the desk's previews) repaints for the new scheme after the page
            // itself: a moment's wait keeps the capture from catching it half drawn.
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            let m = b
                .execute(
                    "return [document.documentElement.scrollWidth, window.innerWidth, getComputedStyle(document.body).backgroundColor]",
                    vec![],
                )
                .await
                .expect("measure");
            let scroll = m[0].as_u64().unwrap_or(u64::MAX);
            assert!(scroll <= u64::from(width), "{name} scrolls sideways at {width} px ({scroll} px wide)");
            backgrounds.push((scheme, m[2].as_str().unwrap_or_default().to_owned()));
            let shot =
                cdp(b, "Page.captureScreenshot", json!({ "format": "png", "captureBeyondViewport": true })).await;
            let png = base64::engine::general_purpose::STANDARD
                .decode(shot["data"].as_str().expect("screenshot data"))
                .expect("base64");
            std::fs::write(dir.join(format!("web-{name}-{device}-{scheme}.png")), png).expect("write screenshot");
        }
    }
    cdp(b, "Emulation.clearDeviceMetricsOverride", json!({})).await;
    cdp(b, "Emulation.setEmulatedMedia", json!({ "features": [] })).await;
    let light = &backgrounds[0].1;
    let dark = &backgrounds[1].1;
    assert_ne!(light, dark, "{name}: the dark scheme changes the background");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_signs_up_confirms_leaves_and_reads_the_archive_in_chromium() {
    let p = web::publication(None, "subscribe_rate = \"100/m\"");
    // One issue out already, for the archive and the front page.
    p.gazette(&["subscribers", "add", "reader@example.org", "--list", "weekly"]).ok();
    p.gazette(&["send", "--yes"]).ok();
    let server = WebServer::serve(&p);
    let driver = Driver::start();
    let b = driver.browser().await;

    // The form, with the keyboard alone.
    b.goto(&server.url("/")).await.expect("front page");
    look(&b, "home").await;
    tab_to(&b, "signup-email").await;
    press(&b, &format!("ann@example.org{}Ann Lee{}", Key::Tab, Key::Enter)).await;
    wait_for_heading(&b, "Check your inbox").await;
    look(&b, "check-inbox").await;

    // The link in the confirmation email: a page with one button; pressing it confirms.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mail = loop {
        let found: Vec<PathBuf> = std::fs::read_dir(p.path().join("outbox/new"))
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        if let Some(f) = found.iter().find(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("ann@example.org")))
        {
            break std::fs::read(f).expect("read");
        }
        assert!(Instant::now() < deadline, "no confirmation email");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let parsed = mail_parser::MessageParser::default().parse(&mail).expect("a message");
    let link = web::link_in(&parsed.body_text(0).expect("text part"), &format!("{}/confirm/", web::BASE));
    b.goto(&server.local(&link)).await.expect("confirm page");
    wait_for_heading(&b, "Confirm your subscription").await;
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("unconfirmed"));
    look(&b, "confirm").await;
    b.find(Locator::Css("button[type=submit]")).await.expect("the button").click().await.expect("click");
    wait_for_heading(&b, "You are subscribed").await;
    look(&b, "confirmed").await;
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("active"));

    // Leaving: the page's one button.
    let token = Signer::new(LinkSecret::from_bytes(web::SECRET.as_bytes().to_vec()))
        .sign(&Claims::unsubscribe("ann@example.org".parse().expect("address")));
    b.goto(&server.url(&format!("/unsubscribe/{token}"))).await.expect("unsubscribe page");
    wait_for_heading(&b, "Unsubscribe").await;
    look(&b, "unsubscribe").await;
    b.find(Locator::Css("button[type=submit]")).await.expect("the button").click().await.expect("click");
    wait_for_heading(&b, "You have unsubscribed").await;
    look(&b, "unsubscribed").await;
    assert_eq!(web::status_of(&p, "ann@example.org").as_deref(), Some("unsubscribed"));

    // The archive, and an issue in it.
    b.goto(&server.url("/archive")).await.expect("archive");
    look(&b, "archive").await;
    b.goto(&server.url("/archive/1")).await.expect("an issue");
    let page = b.source().await.expect("source");
    assert!(page.contains("The harbour at low tide"), "issue 1 carries its article");
    look(&b, "archive-issue").await;

    // A page that does not exist, and a link that does not work.
    b.goto(&server.url("/no-such-page")).await.expect("404");
    wait_for_heading(&b, "Page not found").await;
    look(&b, "not-found").await;
    b.goto(&server.url("/confirm/not-a-token")).await.expect("bad link");
    wait_for_heading(&b, "This link does not work").await;
    look(&b, "bad-link").await;

    b.close().await.expect("close");
}

/// The dashboard in Chromium: signing in with the keyboard alone, the overview, and a CSV
/// import whose bad row is named by its line. The sign-in, overview and subscribers pages are
/// checked and kept like the reader's (`target/look/web-admin-*.png`), and so are the lists,
/// users and log pages.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_signs_in_and_imports_a_csv_with_a_bad_row_in_chromium() {
    let p = web::publication(None, "");
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &format!("{config}\n[schedule]\ncron = \"0 0 9 * * Mon\"\n"));
    for (email, name) in [("reader@example.org", "Rea Der"), ("ann.longname-with-parts@example.org", "Ann Lee")] {
        p.gazette(&["subscribers", "add", email, "--name", name, "--list", "weekly"]).ok();
    }
    p.gazette(&["send", "--yes"]).ok();
    crate::dashboard::add_user(&p, crate::dashboard::OWNER, "owner", crate::dashboard::PASSWORD).ok();
    let server = WebServer::serve(&p);
    let driver = Driver::start();
    let b = driver.browser().await;

    b.goto(&server.url("/admin/")).await.expect("dashboard");
    wait_for_heading(&b, "Sign in").await;
    look(&b, "admin-login").await;
    tab_to(&b, "email").await;
    press(&b, &format!("{}{}{}{}", crate::dashboard::OWNER, Key::Tab, crate::dashboard::PASSWORD, Key::Enter)).await;
    wait_for_heading(&b, "Overview").await;
    let page = b.source().await.expect("source");
    assert!(page.contains("Monday") && page.contains("Europe/London"), "the next send, in the publication's zone");
    look(&b, "admin-overview").await;

    b.goto(&server.url("/admin/subscribers")).await.expect("subscribers");
    wait_for_heading(&b, "Subscribers").await;
    let csv = p.write("people.csv", "email,name\nbea@example.org,Bea\nnot an address,Bob\n");
    b.find(Locator::Id("import-file"))
        .await
        .expect("file field")
        .send_keys(&csv.display().to_string())
        .await
        .expect("choose");
    b.find(Locator::Css("#import-file ~ button[type=submit]"))
        .await
        .expect("the import button")
        .click()
        .await
        .expect("click");
    let deadline = Instant::now() + Duration::from_secs(10);
    let report = loop {
        if let Ok(r) = b.find(Locator::Id("rejected-rows")).await {
            break r.text().await.expect("text");
        }
        assert!(Instant::now() < deadline, "no import report");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(report.contains('3') && report.contains("not an address"), "line 3 is named: {report}");
    assert_eq!(web::status_of(&p, "bea@example.org").as_deref(), Some("active"));
    look(&b, "admin-subscribers").await;
    for (path, heading, name) in [
        ("/admin/lists", "Lists", "admin-lists"),
        ("/admin/users", "Users", "admin-users"),
        ("/admin/log", "Log", "admin-log"),
    ] {
        b.goto(&server.url(path)).await.expect("page");
        wait_for_heading(&b, heading).await;
        look(&b, name).await;
    }

    b.close().await.expect("close");
}
