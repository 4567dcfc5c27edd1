//! The dashboard's issue pages over HTTP against the real `gazette serve`: the issues, one
//! issue's figures, and the desk of a draft made by `gazette draft`: its preview under a policy
//! of its own, an edit, a test copy to the signed-in editor, hold and approve; a POST without
//! the session's CSRF token, or for an unknown issue, changes nothing.

use reqwest::{StatusCode, header};
use serde_json::Value;

use crate::{
    dashboard::{EDITOR, OWNER, PASSWORD, Session, add_user, get, post, sign_in},
    smtp::{Options, SmtpServer},
    support::Publication,
    web::WebServer,
};

pub const TITLES: [&str; 3] = ["Spring planting", "Winter pruning", "Compost again"];

/// A publication with `readers` readers, three articles and `[review]`, sending to `server`
/// with `delivery`'s other settings.
pub fn reviewed(server: &SmtpServer, delivery: &str, readers: usize) -> Publication {
    let p = Publication::with_config("");
    let mut csv = String::from("email\n");
    for r in 0..readers {
        csv.push_str(&format!("reader{r}@example.org\n"));
    }
    p.write("list.csv", &csv);
    for (n, title) in TITLES.iter().enumerate() {
        p.write(
            &format!("articles/{n}.md"),
            &format!(
                "+++\ntitle = \"{title}\"\ndate = \"2024-03-1{n}T12:00:00Z\"\nurl = \"https://garden.example.org/{n}\"\n+++\nAbout {title}.\n"
            ),
        );
    }
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"Garden\"\nfrom = \"Garden <garden@example.org>\"\nbase_url = \"https://garden.example.org\"\n\
             timezone = \"Europe/Paris\"\nlists = [\"weekly\"]\n\
             [[source]]\nfolder = \"articles\"\n[selection]\nmax_age = \"30d\"\n\
             [[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n\
             [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\nretry_backoff = \"1s\"\n{delivery}\n\
             [storage]\ndatabase_url = \"sqlite://gazette.db\"\n\
             [review]\neditors = [{EDITOR:?}]\nlead = \"24h\"\napproval = \"required\"\n",
            server.url()
        ),
    );
    add_user(&p, OWNER, "owner", PASSWORD).ok();
    add_user(&p, EDITOR, "editor", PASSWORD).ok();
    p
}

pub fn show(p: &Publication, n: u32) -> Value {
    p.gazette(&["issues", "show", &n.to_string(), "--json"]).ok().json()
}

async fn body(r: reqwest::Response) -> String {
    r.text().await.expect("body")
}

#[tokio::test]
async fn the_desk_previews_edits_tests_holds_and_approves_a_draft_and_the_issue_shows_its_figures() {
    let server = SmtpServer::start(Options::default());
    let p = reviewed(&server, "", 3);
    p.gazette(&["draft", "--as-of", "2024-03-17"]).ok();
    let web = WebServer::serve(&p);
    let Session { cookie, csrf } = sign_in(&web, EDITOR, PASSWORD).await;

    let list = get(&web, &cookie, "/admin/issues").await;
    assert_eq!(list.status(), StatusCode::OK);
    let list = body(list).await;
    assert!(list.contains("href=\"/admin/issues/1\"") && list.contains("draft"), "{list}");

    let page = get(&web, &cookie, "/admin/issues/1").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("csp").to_owned();
    assert!(csp.contains("frame-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let page = body(page).await;
    for part in ["/admin/issues/1/preview", "sandbox=\"\"", "name=\"keep_1\"", "action=\"/admin/issues/1/approve\""] {
        assert!(page.contains(part), "{part}: {page}");
    }

    let preview = get(&web, &cookie, "/admin/issues/1/preview").await;
    assert_eq!(preview.status(), StatusCode::OK);
    let csp = preview.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("csp").to_owned();
    assert!(csp.contains("sandbox") && csp.contains("frame-ancestors 'self'"), "{csp}");
    assert_eq!(preview.headers()[header::X_FRAME_OPTIONS], "SAMEORIGIN");
    let preview = body(preview).await;
    assert!(TITLES.iter().all(|t| preview.contains(t)), "{preview}");
    assert_eq!(get(&web, "gazette_session=none", "/admin/issues/1/preview").await.status(), StatusCode::SEE_OTHER);

    // Without the session's token, or for an unknown issue: nothing happens.
    for path in ["/admin/issues/1/approve", "/admin/issues/1/hold", "/admin/issues/1/edit", "/admin/issues/1/test"] {
        let r = post(&web, &cookie, path, &[("subject", "Forged")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
        let r = post(&web, &cookie, path, &[("csrf", "not-the-token"), ("subject", "Forged")]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(show(&p, 1)["status"], "draft");
    assert_eq!(show(&p, 1)["history"].as_array().map(Vec::len), Some(1), "only `drafted`");
    assert_eq!(server.messages().iter().filter(|m| m.rcpt_tos.iter().any(|r| r == EDITOR)).count(), 1);
    assert_eq!(get(&web, &cookie, "/admin/issues/9").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&web, &cookie, "/admin/issues/9/live").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(get(&web, &cookie, "/admin/issues/9/preview").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        post(&web, &cookie, "/admin/issues/9/approve", &[("csrf", &csrf)]).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(post(&web, &cookie, "/admin/issues/9/hold", &[("csrf", &csrf)]).await.status(), StatusCode::NOT_FOUND);

    // The second article left out, the third moved first, an intro written.
    // The draft's articles come newest first: find the order it holds now.
    let before: Vec<String> = show(&p, 1)["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .filter_map(|a| a["url"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(before.len(), 3, "{before:?}");
    let mut fields: Vec<(String, String)> = vec![("csrf".into(), csrf.clone())];
    fields.push(("subject".into(), "Garden: spring".into()));
    fields.push(("intro".into(), "Hello **gardeners**.".into()));
    for (i, url) in before.iter().enumerate() {
        fields.push((format!("url_{i}"), url.clone()));
        if i != 1 {
            fields.push((format!("keep_{i}"), "on".into()));
        }
        fields.push((format!("pos_{i}"), if i == 2 { "1".into() } else { (i + 1).to_string() }));
    }
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let r = post(&web, &cookie, "/admin/issues/1/edit", &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/admin/issues/1?done=edited");
    let edited = show(&p, 1);
    assert_eq!(edited["subject"], "Garden: spring");
    assert_eq!(edited["intro"], "Hello **gardeners**.");
    let urls: Vec<&str> =
        edited["articles"].as_array().expect("articles").iter().filter_map(|a| a["url"].as_str()).collect();
    assert_eq!(urls, [before[2].as_str(), before[0].as_str()], "{edited:#}");
    let left: Vec<&str> =
        edited["left_out"].as_array().expect("left out").iter().filter_map(|a| a["url"].as_str()).collect();
    assert_eq!(left, [before[1].as_str()]);
    let page = body(get(&web, &cookie, "/admin/issues/1?done=edited").await).await;
    assert!(page.contains("Your changes are saved.") && page.contains("name=\"back_0\""), "{page}");

    let r = post(&web, &cookie, "/admin/issues/1/test", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let copies = server.wait_for(2, std::time::Duration::from_secs(10));
    let test = copies
        .iter()
        .find(|m| m.rcpt_tos.iter().any(|r| r == EDITOR) && String::from_utf8_lossy(&m.raw).contains("Garden: spring"));
    assert!(test.is_some(), "a test copy of the issue as edited reached the editor");

    let r = post(&web, &cookie, "/admin/issues/1/hold", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(show(&p, 1)["status"], "held");
    let r = post(&web, &cookie, "/admin/issues/1/approve", &[("csrf", &csrf)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(show(&p, 1)["status"], "sending", "no slot: queued at once");
    assert_eq!(post(&web, &cookie, "/admin/issues/1/hold", &[("csrf", &csrf)]).await.status(), StatusCode::CONFLICT);

    p.gazette(&["send", "--yes", "--as-of", "2024-03-17"]).ok();
    let page = get(&web, &cookie, "/admin/issues/1").await;
    assert_eq!(page.status(), StatusCode::OK);
    let page = body(page).await;
    assert!(page.contains("role=\"img\"") && page.contains("<title id=\"messages-title\">"), "{page}");
    assert!(!page.contains("action=\"/admin/issues/1/approve\""), "a sent issue has no desk");
    let history: Vec<&str> = ["approved", "held", "sent a test copy", "edited", "drafted"]
        .into_iter()
        .filter(|a| !page.contains(&format!("</strong> {a}")))
        .collect();
    assert!(history.is_empty(), "missing from the history: {history:?}\n{page}");
    let live = get(&web, &cookie, "/admin/issues/1/live").await;
    assert_eq!(live.status(), StatusCode::OK);
    let live = body(live).await;
    assert!(
        live.trim_start().starts_with("<div id=\"live\"")
            && live.contains("data-live=\"false\"")
            && live.contains("failures-heading"),
        "{live}"
    );
    // The overview's subscribers over time: three imported today, all active.
    let overview = body(get(&web, &cookie, "/admin/").await).await;
    assert!(overview.contains("<title id=\"subscribers-title\">Subscribers over time</title>"), "{overview}");
    assert!(
        overview.contains("<td class=\"num\">3</td><td class=\"num\">0</td><td class=\"num\">3</td>"),
        "{overview}"
    );
    let script = client_get(&web, "/admin/issue.js").await;
    assert!(script.contains("data") || script.contains("live"), "{script}");
}

async fn client_get(web: &WebServer, path: &str) -> String {
    crate::web::client().get(web.url(path)).send().await.expect("get").text().await.expect("body")
}
