//! The issue pages in headless Chromium: an editor signs in, opens the draft on the desk, leaves
//! an article out, writes an intro and approves it; then watches the issue's page while a slow
//! server takes its messages, the counts rising without a reload. The desk and the page while
//! sending are looked at at a phone's and a desktop's width, light and dark
//! (`target/look/web-desk-*.png`, `target/look/web-issue-sending-*.png`), and the issue once sent,
//! with two readers refused (`target/look/web-issue-sent-*.png`).

use std::{
    process::Stdio,
    time::{Duration, Instant},
};

use fantoccini::{Client, Locator};

use crate::{
    browser::{Driver, look},
    dashboard::{EDITOR, PASSWORD},
    issue_pages::{reviewed, show},
    smtp::{Options, SmtpServer},
    web::WebServer,
};

const READERS: usize = 30;

async fn sign_in(b: &Client, web: &WebServer) {
    b.goto(&web.url("/admin/login")).await.expect("login page");
    b.find(Locator::Id("email")).await.expect("email").send_keys(EDITOR).await.expect("type");
    b.find(Locator::Id("password")).await.expect("password").send_keys(PASSWORD).await.expect("type");
    b.find(Locator::Css("main form button[type=submit]")).await.expect("button").click().await.expect("sign in");
    wait_until(b, "the overview", "return document.querySelector('h1')?.textContent === 'Overview'").await;
}

/// Waits until `script` (a function body returning a boolean) is true on the page.
async fn wait_until(b: &Client, what: &str, script: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if b.execute(script, vec![]).await.ok().and_then(|v| v.as_bool()) == Some(true) {
            return;
        }
        assert!(Instant::now() < deadline, "waited 30 s for {what} on {:?}", b.current_url().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn number(b: &Client, id: &str) -> u64 {
    let v = b.execute(&format!("return document.getElementById('{id}')?.textContent"), vec![]).await.expect("count");
    v.as_str().and_then(|s| s.trim().parse().ok()).unwrap_or_else(|| panic!("#{id} holds no number: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_editor_edits_and_approves_a_draft_then_watches_it_go_out_in_chromium() {
    // Two readers' servers refuse them, for the failures by reason.
    let server = SmtpServer::start(
        Options::default().accept_slowly(Duration::from_millis(250)).reject("reader4@").reject("reader9@"),
    );
    let p = reviewed(&server, "concurrency = 1", READERS);
    p.gazette(&["draft", "--as-of", "2024-03-17"]).ok();
    let web = WebServer::serve(&p);
    let driver = Driver::start();
    let b = driver.browser().await;
    sign_in(&b, &web).await;

    b.goto(&web.url("/admin/issues/1")).await.expect("the draft");
    wait_until(&b, "the desk", "return !!document.querySelector('form.edit')").await;
    // The frames load the reader's copy; give them a moment before the pictures are taken.
    tokio::time::sleep(Duration::from_millis(800)).await;
    look(&b, "desk").await;

    let left_out = show(&p, 1)["articles"][1]["url"].as_str().expect("url").to_owned();
    b.find(Locator::Css("input[name=keep_1]")).await.expect("checkbox").click().await.expect("untick");
    b.find(Locator::Id("intro")).await.expect("intro").send_keys("A word from the **garden**.").await.expect("type");
    b.find(Locator::Css("form.edit button[type=submit]")).await.expect("save").click().await.expect("save");
    wait_until(&b, "the saved notice", "return !!document.querySelector('.notice.ok')").await;
    let edited = show(&p, 1);
    assert_eq!(edited["intro"], "A word from the **garden**.");
    let left: Vec<&str> =
        edited["left_out"].as_array().expect("left out").iter().filter_map(|a| a["url"].as_str()).collect();
    assert_eq!(left, [left_out.as_str()]);
    assert_eq!(edited["articles"].as_array().map(Vec::len), Some(2));

    b.find(Locator::Css("form[action$='/approve'] button")).await.expect("approve").click().await.expect("approve");
    wait_until(&b, "the approval", "return document.querySelector('.notice.ok')?.textContent === 'Approved.'").await;
    assert_eq!(show(&p, 1)["status"], "sending");

    // The issue goes out through a slow server while the page stays open.
    let mut send = p
        .command(&["send", "--yes", "--as-of", "2024-03-17"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("send");
    b.goto(&web.url("/admin/issues/1")).await.expect("the issue");
    wait_until(&b, "the live figures", "return document.getElementById('live')?.dataset.live === 'true'").await;
    b.execute("window.stillHere = true; return true", vec![]).await.expect("mark the page");
    let first = number(&b, "count-sent").await;
    wait_until(
        &b,
        "some messages sent",
        &format!("return Number(document.getElementById('count-sent')?.textContent) > {first} + 2"),
    )
    .await;
    wait_until(&b, "a chart", "return !!document.querySelector('#live svg.chart[role=img]')").await;
    look(&b, "issue-sending").await;
    let rose = number(&b, "count-sent").await;
    assert!(rose > first, "the counts rose from {first} to {rose}");
    let same_page = b.execute("return window.stillHere === true", vec![]).await.expect("read the mark");
    assert_eq!(same_page.as_bool(), Some(true), "the counts rose without a reload");

    let status = tokio::task::spawn_blocking(move || send.wait()).await.expect("join").expect("send ends");
    assert!(status.success(), "send: {status:?}");
    wait_until(&b, "the end of the sending", "return document.getElementById('live')?.dataset.live === 'false'").await;
    assert_eq!(number(&b, "count-sent").await, READERS as u64 - 2);
    assert_eq!(number(&b, "count-failed").await, 2);
    b.refresh().await.expect("reload");
    wait_until(&b, "the failures' chart", "return !!document.querySelector('svg.chart[aria-labelledby^=failures]')")
        .await;
    let reasons = b.find(Locator::Css("section[aria-labelledby=failures-heading] table")).await.expect("table");
    let reasons = reasons.text().await.expect("text");
    assert!(reasons.contains("550 5.1.1") && !reasons.contains("reader4@"), "{reasons}");
    look(&b, "issue-sent").await;
    b.close().await.expect("close");
}
