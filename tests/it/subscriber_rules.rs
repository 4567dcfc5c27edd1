//! The subscriber rules are kept in one place: the command line and the admin API, run on one
//! publication, refuse the same lists, clean names the same way, put a subscriber added without
//! a list on the same lists, and leave a bounce as it is when asked to unsubscribe it.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::{
    support::Publication,
    web::{WebServer, client},
};

const TOKEN: &str = "admin-token-for-tests-0123456789";

/// `gazette serve` on the sample publication (`weekly` kept by `subscribers/weekly.csv`,
/// `readers` open to anyone), with the admin API on.
fn serve(p: &Publication) -> WebServer {
    WebServer::start_with(p, &["serve", "--listen", "127.0.0.1:0"], &[("GAZETTE_ADMIN_TOKEN", TOKEN)])
}

async fn admin(server: &WebServer, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = client().request(method, server.url(path)).bearer_auth(TOKEN);
    if let Some(b) = body {
        request = request.json(&b);
    }
    let response = request.send().await.expect("the server answers");
    let status = response.status();
    let text = response.text().await.expect("a body");
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {text}")))
}

/// The subscriber as `subscribers list --json` shows it.
fn listed(p: &Publication, email: &str) -> Option<Value> {
    let doc = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    doc["subscribers"].as_array().expect("subscribers").iter().find(|s| s["email"] == email).cloned()
}

#[tokio::test]
async fn both_refuse_a_list_that_its_file_keeps_saying_to_edit_the_file() {
    let p = Publication::sample();
    let server = serve(&p);

    let cli = p.gazette(&["subscribers", "add", "ann@example.org", "--list", "weekly"]);
    assert_eq!(cli.code(), 2, "{}{}", cli.stdout(), cli.stderr());
    let (status, api) = admin(
        &server,
        Method::POST,
        "/api/subscribers",
        Some(json!({ "email": "bob@example.org", "lists": ["weekly"] })),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{api}");
    assert_eq!(api["error"]["field"], "lists", "{api}");
    let reason = api["error"]["message"].as_str().expect("message");
    for needle in ["subscribers/weekly.csv", "add them to that file"] {
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
    assert!(cli.stderr().contains(reason), "the command line gives the API's reason:\n{}\n{reason}", cli.stderr());

    let json = p.gazette(&["subscribers", "add", "ann@example.org", "--list", "weekly", "--json"]);
    assert_eq!(json.json()["error"]["field"], "--list");
    assert_eq!(listed(&p, "ann@example.org"), None);
    assert_eq!(listed(&p, "bob@example.org"), None);
}

#[tokio::test]
async fn both_clean_a_name_and_refuse_a_control_character_alike() {
    let p = Publication::sample();
    let server = serve(&p);
    let typed = "  Zoe\r\n\tQuinn \u{FEFF}";

    p.gazette(&["subscribers", "add", "zoe@example.org", "--name", typed, "--list", "readers"]).ok();
    let (status, body) = admin(
        &server,
        Method::POST,
        "/api/subscribers",
        Some(json!({ "email": "zed@example.org", "name": typed, "lists": ["readers"] })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let by_cli = listed(&p, "zoe@example.org").expect("zoe");
    let by_api = listed(&p, "zed@example.org").expect("zed");
    assert_eq!(by_cli["name"], "Zoe Quinn");
    assert_eq!(by_api["name"], by_cli["name"]);

    let bad = "Dan\u{1b}[2J";
    let cli = p.gazette(&["subscribers", "add", "dan@example.org", "--name", bad, "--json"]);
    assert_eq!(cli.code(), 2);
    let cli_error = &cli.json()["error"];
    assert_eq!(cli_error["field"], "--name");
    let (status, api) =
        admin(&server, Method::POST, "/api/subscribers", Some(json!({ "email": "dan@example.org", "name": bad })))
            .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{api}");
    assert_eq!(api["error"]["field"], "name");
    let reason = "holds the control character U+001B; remove it";
    for message in [&cli_error["message"], &api["error"]["message"]] {
        assert!(message.as_str().is_some_and(|m| m.ends_with(reason)), "{message}");
    }
    assert_eq!(listed(&p, "dan@example.org"), None);
}

/// Without lists, a subscriber goes on the lists a reader may join: `readers`, never `weekly`,
/// whose file would drop it again.
#[tokio::test]
async fn both_put_a_subscriber_added_without_lists_on_the_lists_a_reader_may_join() {
    let p = Publication::sample();
    let server = serve(&p);
    let added = p.gazette(&["subscribers", "add", "cli@example.org", "--json"]).ok();
    assert!(!added.stderr().contains("on no list"), "{}", added.stderr());
    assert_eq!(added.json()["subscriber"]["lists"], json!(["readers"]));
    let (_, body) = admin(&server, Method::POST, "/api/subscribers", Some(json!({ "email": "api@example.org" }))).await;
    assert_eq!(body["subscriber"]["lists"], json!(["readers"]), "{body}");
}

/// An address that bounced stays bounced when it is unsubscribed, by either way: its status says
/// more, and it receives no issue either way.
#[tokio::test]
async fn both_leave_a_bounce_as_it_is() {
    let p = Publication::sample();
    for who in ["one@example.org", "two@example.org"] {
        p.gazette(&["subscribers", "add", who, "--list", "readers"]).ok();
        let bounced = format!("UPDATE subscribers SET status = 'bounced' WHERE email = '{who}'");
        assert!(crate::subscribers::edit_store(&p, &bounced), "{who} bounced");
    }
    let server = serve(&p);

    let cli = p.gazette(&["subscribers", "remove", "one@example.org", "--json"]).ok().json();
    assert_eq!(cli["changed"], false, "{cli:#}");
    let (status, api) = admin(&server, Method::DELETE, "/api/subscribers/two@example.org", None).await;
    assert_eq!(status, StatusCode::OK, "{api}");
    assert_eq!((api["changed"].as_bool(), api["status"].as_str()), (Some(false), Some("bounced")), "{api}");
    for who in ["one@example.org", "two@example.org"] {
        assert_eq!(listed(&p, who).expect("still there")["status"], "bounced");
    }

    // Unknown to both: the command line says so and succeeds, the API answers 404.
    let nobody = p.gazette(&["subscribers", "remove", "nobody@example.org"]).ok();
    assert!(nobody.stdout().contains("was not subscribed"), "{}", nobody.stdout());
    let (status, _) = admin(&server, Method::DELETE, "/api/subscribers/nobody@example.org", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
