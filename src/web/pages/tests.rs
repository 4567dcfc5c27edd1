//! The reader's pages through the whole router, on a real SQLite store and a Maildir outbox:
//! what a visitor sees, and what changes in the store.

use std::{sync::Arc, time::Duration};

use axum::{
    Router,
    body::{Body, to_bytes},
    http::{Request, StatusCode, header},
};
use chrono::Utc;
use tower::ServiceExt;

use crate::{
    clock::{Clock, SystemClock},
    config::{Config, Environment, LinkSecret},
    deliver::{Outbox, Transport},
    domain::{EmailAddress, SubscriberStatus},
    publication::Publication,
    store::Store,
    tokens::Claims,
    web::{AppState, router},
};

struct Site {
    dir: tempfile::TempDir,
    app: Router,
    state: AppState,
}

async fn site(extra: &str) -> Site {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("gazette.toml");
    std::fs::write(
        &file,
        format!(
            "[publication]\nname = \"Harbour Notes\"\nfrom = \"Harbour Notes <notes@example.org>\"\n\
             base_url = \"https://news.example.org\"\nlists = [\"weekly\"]\n\
             [[list]]\nname = \"weekly\"\n[storage]\ndatabase_url = \"sqlite://g.db\"\n{extra}"
        ),
    )
    .expect("write config");
    let config = Config::load(&file, &Environment::default()).await.expect("config");
    let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.expect("store");
    let outbox = Outbox::open(&dir.path().join("outbox")).await.expect("outbox");
    let publication =
        Publication::open(config, LinkSecret::from_bytes(b"0123456789abcdef0123".to_vec())).await.expect("publication");
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let state = AppState::new(Arc::new(publication), store, Arc::new(Transport::outbox(outbox, None)), clock)
        .await
        .expect("state");
    Site { app: router(state.clone()), state, dir }
}

impl Site {
    async fn call(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    async fn get(&self, uri: &str) -> (StatusCode, String) {
        self.call(Request::get(uri).body(Body::empty()).expect("request")).await
    }

    async fn post(&self, uri: &str, content_type: &str, body: &str) -> (StatusCode, String) {
        self.call(
            Request::post(uri)
                .header(header::CONTENT_TYPE, content_type)
                .body(Body::from(body.to_owned()))
                .expect("request"),
        )
        .await
    }

    async fn subscribe(&self, email: &str) -> (StatusCode, String) {
        self.post("/subscribe", "application/x-www-form-urlencoded", &format!("email={email}&name=Ann")).await
    }

    async fn status(&self, email: &str) -> Option<SubscriberStatus> {
        let email: EmailAddress = email.parse().expect("address");
        self.state.store.subscriber(&email).await.expect("store").map(|s| s.status)
    }

    fn token(&self, claims: &Claims) -> String {
        self.state.publication.signer.sign(claims)
    }

    /// Messages in the outbox, once the background sends have had their moment.
    async fn mail(&self, at_least: usize) -> Vec<String> {
        let dir = self.dir.path().join("outbox/new");
        for _ in 0..100 {
            let files: Vec<_> = std::fs::read_dir(&dir).expect("outbox").filter_map(Result::ok).collect();
            if files.len() >= at_least {
                return files.iter().map(|f| std::fs::read_to_string(f.path()).expect("read")).collect();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fewer than {at_least} messages in the outbox");
    }
}

fn email(s: &str) -> EmailAddress {
    s.parse().expect("address")
}

#[tokio::test]
async fn the_answer_is_the_same_for_new_waiting_active_and_gone_addresses() {
    let site = site("[web]\nsubscribe_rate = \"100/m\"\n").await;
    let now = Utc::now();
    let store = &site.state.store;
    store.request_subscription(&email("waiting@example.org"), None, "test", now).await.expect("store");
    store.request_subscription(&email("active@example.org"), None, "test", now).await.expect("store");
    store.confirm_subscription(&email("active@example.org"), &[], now, "test", now).await.expect("store");
    let first = site.subscribe("new@example.org").await;
    assert_eq!(first.0, StatusCode::OK);
    assert!(first.1.contains("Check your inbox"));
    for address in ["waiting@example.org", "active@example.org", "NEW@example.org", "other@example.org"] {
        assert_eq!(site.subscribe(address).await, first, "{address}");
    }
    let json = |e: &str| format!("{{\"email\": \"{e}\"}}");
    let a = site.post("/subscribe", "application/json", &json("active@example.org")).await;
    let b = site.post("/subscribe", "application/json", &json("nobody@example.org")).await;
    assert_eq!(a, b);
    assert!(a.1.contains("check_inbox"));
    assert_eq!(site.status("new@example.org").await, Some(SubscriberStatus::Unconfirmed));
    assert_eq!(site.status("active@example.org").await, Some(SubscriberStatus::Active));
}

#[tokio::test]
async fn a_confirmation_link_shows_a_button_and_only_its_post_confirms() {
    let site = site("").await;
    site.subscribe("ann@example.org").await;
    // Undo quoted-printable's soft line breaks; a token has no `=` to decode.
    let mail = site.mail(1).await.remove(0).replace("=\r\n", "");
    let at = mail.find("https://news.example.org/confirm/").expect("a confirmation link in the text part");
    let link: String = mail[at..].chars().take_while(|c| !c.is_whitespace()).collect();
    let path = link.trim_start_matches("https://news.example.org");

    let (status, page) = site.get(path).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<button type=\"submit\">"));
    assert_eq!(site.status("ann@example.org").await, Some(SubscriberStatus::Unconfirmed), "a GET changes nothing");

    let (status, page) = site.post(path, "application/x-www-form-urlencoded", "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("You are subscribed"));
    let record = site.state.store.subscriber(&email("ann@example.org")).await.expect("store").expect("there");
    assert_eq!(record.status, SubscriberStatus::Active);
    assert_eq!(record.lists, vec!["weekly".to_owned()]);
    let (status, page) = site.post(path, "application/x-www-form-urlencoded", "").await;
    assert_eq!(status, StatusCode::OK, "a second press is harmless");
    assert!(page.contains("already subscribed"));
}

#[tokio::test]
async fn forged_expired_and_stale_links_change_nothing() {
    let site = site("").await;
    let ann = email("ann@example.org");
    site.subscribe(ann.as_str()).await;
    let now = Utc::now();
    let genuine = site.token(&Claims::confirm(ann.clone(), None, now, chrono::Duration::days(7)));
    let forged = format!("{}{}", &genuine[..genuine.len() - 1], if genuine.ends_with('x') { 'y' } else { 'x' });
    let expired =
        site.token(&Claims::confirm(ann.clone(), None, now - chrono::Duration::days(8), chrono::Duration::days(7)));
    let unsubscribe = site.token(&Claims::unsubscribe(ann.clone()));
    for (path, want) in [
        (format!("/confirm/{forged}"), StatusCode::BAD_REQUEST),
        (format!("/confirm/{expired}"), StatusCode::GONE),
        (format!("/confirm/{unsubscribe}"), StatusCode::BAD_REQUEST),
        ("/confirm/nonsense".to_owned(), StatusCode::BAD_REQUEST),
        ("/unsubscribe/nonsense".to_owned(), StatusCode::BAD_REQUEST),
    ] {
        for post in [false, true] {
            let (status, page) = if post { site.post(&path, "text/plain", "").await } else { site.get(&path).await };
            assert_eq!(status, want, "{path}");
            assert!(page.contains("<h1"), "a page, laid out: {page}");
        }
    }
    assert_eq!(site.status(ann.as_str()).await, Some(SubscriberStatus::Unconfirmed));

    // A link made before the reader left cannot bring them back.
    let old =
        site.token(&Claims::confirm(ann.clone(), None, now - chrono::Duration::hours(1), chrono::Duration::days(7)));
    let (status, _) = site.post(&format!("/unsubscribe/{unsubscribe}"), "text/plain", "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status(ann.as_str()).await, Some(SubscriberStatus::Unsubscribed));
    let (status, page) = site.post(&format!("/confirm/{old}"), "text/plain", "").await;
    assert_eq!(status, StatusCode::GONE, "{page}");
    assert_eq!(site.status(ann.as_str()).await, Some(SubscriberStatus::Unsubscribed));
}

#[tokio::test]
async fn one_click_unsubscribes_in_either_encoding_and_a_get_does_not() {
    let site = site("").await;
    let now = Utc::now();
    for who in ["a@example.org", "b@example.org"] {
        site.state.store.request_subscription(&email(who), None, "t", now).await.expect("store");
        site.state.store.confirm_subscription(&email(who), &[], now, "t", now).await.expect("store");
    }
    let a = format!("/unsubscribe/{}", site.token(&Claims::unsubscribe(email("a@example.org"))));
    let b = format!("/unsubscribe/{}", site.token(&Claims::unsubscribe(email("b@example.org"))));
    assert_eq!(site.get(&a).await.0, StatusCode::OK);
    assert_eq!(site.status("a@example.org").await, Some(SubscriberStatus::Active));
    let (status, _) = site.post(&a, "application/x-www-form-urlencoded", "List-Unsubscribe=One-Click").await;
    assert_eq!(status, StatusCode::OK);
    let multipart =
        "--XyZ\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--XyZ--\r\n";
    let (status, _) = site.post(&b, "multipart/form-data; boundary=XyZ", multipart).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(site.status("a@example.org").await, Some(SubscriberStatus::Unsubscribed));
    assert_eq!(site.status("b@example.org").await, Some(SubscriberStatus::Unsubscribed));
    assert_eq!(site.post(&a, "text/plain", "").await.0, StatusCode::OK, "twice is harmless");
}

#[tokio::test]
async fn limits_attempts_per_client_and_confirmations_per_address() {
    let site = site("[web]\nsubscribe_rate = \"6/h\"\n").await;
    for _ in 0..5 {
        assert_eq!(site.subscribe("ann@example.org").await.0, StatusCode::OK);
    }
    assert_eq!(site.subscribe("bob@example.org").await.0, StatusCode::OK);
    let (status, page) = site.subscribe("cat@example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many attempts"));
    // Three confirmations for ann, one for bob, none for cat.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mail = site.mail(4).await;
    assert_eq!(mail.len(), 4);
    assert_eq!(
        mail.iter().filter(|m| m.contains("To: Ann <ann@example.org>") || m.contains("To: ann@example.org")).count(),
        3
    );
}

#[tokio::test]
async fn a_refused_sign_up_says_when_to_come_back() {
    // One attempt every 10 minutes.
    let site = site("[web]\nsubscribe_rate = \"6/h\"\n").await;
    for i in 0..6 {
        assert_eq!(site.subscribe(&format!("reader{i}@example.org")).await.0, StatusCode::OK);
    }
    for content_type in ["application/x-www-form-urlencoded", "application/json"] {
        let body = if content_type == "application/json" {
            r#"{"email": "ann@example.org"}"#
        } else {
            "email=ann%40example.org"
        };
        let request = Request::post("/subscribe")
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from(body))
            .expect("request");
        let response = site.app.clone().oneshot(request).await.expect("response");
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS, "{content_type}");
        let seconds: u64 = response
            .headers()
            .get(header::RETRY_AFTER)
            .unwrap_or_else(|| panic!("{content_type}: no Retry-After"))
            .to_str()
            .expect("ascii")
            .parse()
            .expect("whole seconds");
        assert!((590..=600).contains(&seconds), "{content_type}: Retry-After {seconds}");
        let body = to_bytes(response.into_body(), 1 << 20).await.expect("body");
        assert!(String::from_utf8_lossy(&body).contains("10 minutes"), "{content_type}");
    }
}

#[tokio::test]
async fn bad_input_and_big_bodies_get_a_page_not_a_crash() {
    let site = site("").await;
    let (status, page) = site.subscribe("not-an-address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(page.contains("does not look like an email address"));
    let big = format!("email=a@example.org&name={}", "x".repeat(20 * 1024));
    let (status, page) = site.post("/subscribe", "application/x-www-form-urlencoded", &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(page.contains("<h1"), "{page}");
    let (status, page) = site.get("/no/such/page").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(page.contains("Page not found"));
}

#[tokio::test]
async fn the_front_page_has_a_labelled_form_and_the_stylesheet_is_served() {
    let site = site("").await;
    let (status, page) = site.get("/").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("<label for=\"signup-email\">"));
    assert!(page.contains("action=\"/subscribe\""));
    assert!(!page.contains("<script") && !page.contains("style=\""), "no inline script or style");
    let css_url = page.split("href=\"").nth(1).and_then(|s| s.split('"').next()).expect("a stylesheet link");
    let (status, css) = site.get(css_url).await;
    assert_eq!(status, StatusCode::OK);
    assert!(css.contains("prefers-color-scheme: dark"));
}
