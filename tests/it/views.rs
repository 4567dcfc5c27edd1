//! One issue or one subscriber is one document, whoever asks: the command line's `--json` and
//! the admin API print the same fields with the same values, and every field they printed before
//! they shared a shape is still there.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::{
    support::Publication,
    web::{WebServer, client},
};

const TOKEN: &str = "admin-token-for-tests-0123456789";

async fn get(server: &WebServer, path: &str) -> Value {
    let response =
        client().request(Method::GET, server.url(path)).bearer_auth(TOKEN).send().await.expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.expect("JSON")
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap_or_else(|| panic!("not an object: {v}")).keys().map(String::as_str).collect()
}

#[tokio::test]
async fn the_command_line_and_the_api_print_the_same_issue_and_subscriber() {
    let p = Publication::sample();
    let added = p
        .gazette(&["subscribers", "add", "zoe@example.org", "--name", "Zoe", "--list", "readers", "--json"])
        .ok()
        .json();
    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    let server = WebServer::start_with(&p, &["serve", "--listen", "127.0.0.1:0"], &[("GAZETTE_ADMIN_TOKEN", TOKEN)]);

    let by_api = get(&server, "/api/subscribers/zoe@example.org").await;
    let listed = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    let by_cli = listed["subscribers"].as_array().and_then(|s| s.iter().find(|s| s["email"] == "zoe@example.org"));
    assert_eq!(by_cli, Some(&by_api["subscriber"]));
    assert_eq!(added["subscriber"], by_api["subscriber"]);
    assert_eq!(keys(&by_api["subscriber"]), ["attributes", "edition", "email", "lists", "name", "status", "topics"]);
    assert_eq!(added["created"], true);

    let shown = p.gazette(&["issues", "show", "1", "--json"]).ok().json();
    let api_issue = get(&server, "/api/issues/1").await;
    assert_eq!(shown, api_issue);
    assert_eq!(
        keys(&shown),
        [
            "articles",
            "counts",
            "created_at",
            "date",
            "deferred",
            "edition",
            "failures",
            "finished_at",
            "history",
            "intro",
            "left_out",
            "note",
            "number",
            "relays",
            "send_at",
            "status",
            "subject",
            "web_url"
        ]
    );
    assert_eq!(shown["web_url"], "http://127.0.0.1:8080/archive/1");
    assert_eq!(shown["counts"]["sent"], 4, "ada, grace and ken from the list file, and zoe");
    assert_eq!(keys(&shown["articles"][0]), ["author", "date", "source", "title", "url"]);

    let listed = p.gazette(&["issues", "list", "--json"]).ok().json();
    let api_list = get(&server, "/api/issues").await;
    assert_eq!(listed, api_list);
    assert_eq!(
        keys(&listed["issues"][0]),
        ["counts", "created_at", "date", "finished_at", "note", "number", "status", "subject"]
    );

    let removed = p.gazette(&["subscribers", "remove", "zoe@example.org", "--json"]).ok().json();
    assert_eq!(keys(&removed), ["changed", "email", "forgotten", "status"]);
    assert_eq!((removed["changed"].as_bool(), removed["status"].as_str()), (Some(true), Some("unsubscribed")));
}
