//! The dashboard end to end, over HTTP against the real `gazette serve`: its users made by
//! `gazette users`, sessions and their cookies, CSRF on every form, the sign-in limits, roles,
//! and what an attacker without a session, a token or a role gets: nothing, and no change.

use std::{io::Write, process::Stdio};

use reqwest::{StatusCode, header};

use crate::{
    support::{Publication, Run},
    web::{WebServer, client, publication},
};

pub const OWNER: &str = "owner@example.org";
pub const EDITOR: &str = "editor@example.org";
pub const PASSWORD: &str = "correct horse battery staple";

/// `gazette users add EMAIL --role ROLE` with `password` on stdin.
pub fn add_user(p: &Publication, email: &str, role: &str, password: &str) -> Run {
    let mut child = p
        .command(&["users", "add", email, "--role", role])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gazette");
    child.stdin.take().expect("stdin").write_all(format!("{password}\n").as_bytes()).expect("write password");
    Run(child.wait_with_output().expect("wait"))
}

/// The value of `name="csrf"` in a page.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().expect("value").to_owned()
}

/// The `name=value` of the cookie `name` a response sets.
fn set_cookie<'a>(r: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    r.headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

/// A signed-in browser: its session cookie and the token its forms carry.
pub struct Session {
    pub cookie: String,
    pub csrf: String,
}

/// The sign-in form's cookie and token.
pub async fn login_form(web: &WebServer) -> (String, String) {
    let r = client().get(web.url("/admin/login")).send().await.expect("login form");
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = set_cookie(&r, "gazette_login").expect("a login cookie").split(';').next().expect("pair").to_owned();
    let csrf = csrf_of(&r.text().await.expect("body"));
    (cookie, csrf)
}

/// Posts the sign-in form as a browser would.
pub async fn try_sign_in(web: &WebServer, email: &str, password: &str) -> reqwest::Response {
    let (cookie, csrf) = login_form(web).await;
    client()
        .post(web.url("/admin/login"))
        .header(header::COOKIE, cookie)
        .form(&[("email", email), ("password", password), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("sign in")
}

pub async fn sign_in(web: &WebServer, email: &str, password: &str) -> Session {
    let r = try_sign_in(web, email, password).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "signing in as {email}");
    let cookie =
        set_cookie(&r, "gazette_session").expect("a session cookie").split(';').next().expect("pair").to_owned();
    let page = get(web, &cookie, "/admin/").await;
    assert_eq!(page.status(), StatusCode::OK);
    let csrf = csrf_of(&page.text().await.expect("body"));
    Session { cookie, csrf }
}

pub async fn get(web: &WebServer, cookie: &str, path: &str) -> reqwest::Response {
    client().get(web.url(path)).header(header::COOKIE, cookie).send().await.expect("get")
}

pub async fn post(web: &WebServer, cookie: &str, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    client().post(web.url(path)).header(header::COOKIE, cookie).form(form).send().await.expect("post")
}

/// A publication served, with an owner and an editor.
pub fn served() -> (Publication, WebServer) {
    let p = publication(None, "");
    add_user(&p, OWNER, "owner", PASSWORD).ok();
    add_user(&p, EDITOR, "editor", PASSWORD).ok();
    let web = WebServer::serve(&p);
    (p, web)
}

#[test]
fn users_are_added_listed_and_removed_with_the_password_on_stdin() {
    let p = publication(None, "");
    let short = add_user(&p, OWNER, "owner", "short");
    assert_eq!(short.code(), 2, "{}", short.stderr());
    assert!(short.stderr().contains("at least 12"), "{}", short.stderr());
    let empty = add_user(&p, OWNER, "owner", "");
    assert_eq!(empty.code(), 2);
    assert_eq!(add_user(&p, OWNER, "boss", PASSWORD).code(), 2, "an unknown role");
    // Without --role, the first user is an owner and the next ones editors.
    let first = |email: &str| {
        let mut child = p
            .command(&["users", "add", email])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run gazette");
        child.stdin.take().expect("stdin").write_all(format!("{PASSWORD}\n").as_bytes()).expect("write password");
        Run(child.wait_with_output().expect("wait")).ok()
    };
    first(OWNER);
    first(EDITOR);

    let list = p.gazette(&["users", "list", "--json"]).ok().json();
    let users = list["users"].as_array().expect("users");
    assert_eq!(users.len(), 2);
    assert_eq!(users[0]["email"], EDITOR);
    assert_eq!(users[0]["role"], "editor");
    assert_eq!(users[1]["role"], "owner");
    assert!(users[1]["created_at"].as_str().is_some_and(|t| t.contains('T')));
    let table = p.gazette(&["users", "list"]).ok().stdout();
    assert!(table.contains(OWNER) && table.contains("owner"), "{table}");
    assert!(!table.contains("argon2"), "no hash is shown");

    p.gazette(&["users", "remove", EDITOR]).ok();
    let list = p.gazette(&["users", "list", "--json"]).ok().json();
    assert_eq!(list["users"].as_array().expect("users").len(), 1);
    let log = p.gazette(&["users", "remove", EDITOR]).ok().stdout();
    assert!(log.contains("was not a user"), "{log}");
}

#[tokio::test]
async fn a_session_is_needed_its_cookie_is_locked_down_and_signing_out_ends_it() {
    let (_p, web) = served();
    let r = client().get(web.url("/admin/")).send().await.expect("get");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/admin/login");
    let forged = get(&web, "gazette_session=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "/admin/").await;
    assert_eq!(forged.status(), StatusCode::SEE_OTHER, "a made-up session is none");

    let r = try_sign_in(&web, OWNER, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = set_cookie(&r, "gazette_session").expect("session cookie");
    for flag in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/admin"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    let session = sign_in(&web, OWNER, PASSWORD).await;
    let page = get(&web, &session.cookie, "/admin/").await;
    assert_eq!(page.headers()[header::CACHE_CONTROL], "no-store");
    assert!(page.headers()[header::CONTENT_SECURITY_POLICY].to_str().expect("csp").contains("default-src 'none'"));
    let html = page.text().await.expect("body");
    assert!(html.contains("Overview") && html.contains(OWNER), "{html}");

    let out = post(&web, &session.cookie, "/admin/logout", &[("csrf", &session.csrf)]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert_eq!(get(&web, &session.cookie, "/admin/").await.status(), StatusCode::SEE_OTHER, "the session ended");
}

#[tokio::test]
async fn a_form_without_its_token_is_refused_and_changes_nothing() {
    let (_p, web) = served();
    // The sign-in form without its token, or with another browser's.
    let (cookie, csrf) = login_form(&web).await;
    let bare = client()
        .post(web.url("/admin/login"))
        .header(header::COOKIE, &cookie)
        .form(&[("email", OWNER), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(bare.status(), StatusCode::FORBIDDEN);
    assert!(set_cookie(&bare, "gazette_session").is_none());
    let (_, other) = login_form(&web).await;
    let crossed = client()
        .post(web.url("/admin/login"))
        .header(header::COOKIE, &cookie)
        .form(&[("email", OWNER), ("password", PASSWORD), ("csrf", other.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(crossed.status(), StatusCode::FORBIDDEN);
    let no_cookie = client()
        .post(web.url("/admin/login"))
        .form(&[("email", OWNER), ("password", PASSWORD), ("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(no_cookie.status(), StatusCode::FORBIDDEN);

    // Signing out with a forged token leaves the session as it was.
    let session = sign_in(&web, OWNER, PASSWORD).await;
    for form in [vec![], vec![("csrf", "forged")], vec![("csrf", "")]] {
        let r = post(&web, &session.cookie, "/admin/logout", &form).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    assert_eq!(get(&web, &session.cookie, "/admin/").await.status(), StatusCode::OK, "still signed in");
}

#[tokio::test]
async fn many_wrong_passwords_are_slowed_and_an_unknown_address_reads_as_a_wrong_password() {
    let (_p, web) = served();
    // The quickest of three tries each, alternating, so that a busy machine's pauses (other
    // tests run beside this one) do not pass for a difference between the two answers.
    let (mut wrong_took, mut unknown_took) = (std::time::Duration::MAX, std::time::Duration::MAX);
    let (mut wrong, mut unknown) = (None, None);
    for _ in 0..3 {
        let started = std::time::Instant::now();
        wrong = Some(try_sign_in(&web, OWNER, "not the password at all").await);
        wrong_took = wrong_took.min(started.elapsed());
        let started = std::time::Instant::now();
        unknown = Some(try_sign_in(&web, "nobody@example.org", "not the password at all").await);
        unknown_took = unknown_took.min(started.elapsed());
    }
    let (wrong, unknown) = (wrong.expect("tried"), unknown.expect("tried"));
    // Both check a password hash: an unknown address is not answered in a fraction of the time.
    assert!(unknown_took * 3 > wrong_took, "unknown {unknown_took:?}, wrong {wrong_took:?}");
    assert!(wrong_took * 3 > unknown_took, "unknown {unknown_took:?}, wrong {wrong_took:?}");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(unknown.status(), wrong.status());
    let (wrong, unknown) = (wrong.text().await.expect("body"), unknown.text().await.expect("body"));
    let message =
        |html: &str| html.split("role=\"alert\"").nth(1).map(|s| s.split('<').next().unwrap_or("").to_owned());
    assert!(message(&wrong).is_some(), "{wrong}");
    assert_eq!(message(&wrong), message(&unknown));

    let mut last = None;
    for _ in 0..6 {
        let r = try_sign_in(&web, OWNER, "not the password at all").await;
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            last = Some(r);
            break;
        }
    }
    let slowed = last.expect("a 429 within six more tries");
    let wait: u64 = slowed.headers()[header::RETRY_AFTER].to_str().expect("ascii").parse().expect("seconds");
    assert!(wait >= 1);
    // Even the right password waits now.
    assert_eq!(try_sign_in(&web, OWNER, PASSWORD).await.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_removed_users_session_ends_at_once() {
    let (p, web) = served();
    let session = sign_in(&web, EDITOR, PASSWORD).await;
    p.gazette(&["users", "remove", EDITOR]).ok();
    assert_eq!(get(&web, &session.cookie, "/admin/").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(try_sign_in(&web, EDITOR, PASSWORD).await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_admin_api_token_keeps_working_beside_sessions() {
    let p = publication(None, "");
    add_user(&p, OWNER, "owner", PASSWORD).ok();
    let token = "api-token-0123456789abcdef0123456789abcdef";
    let web = WebServer::start_with(
        &p,
        &["serve", "--listen", "127.0.0.1:0"],
        &[("GAZETTE_LOG", "info"), ("GAZETTE_ADMIN_TOKEN", token)],
    );
    let r = client().get(web.url("/api/issues")).bearer_auth(token).send().await.expect("api");
    assert_eq!(r.status(), StatusCode::OK);
    let session = sign_in(&web, OWNER, PASSWORD).await;
    let r = client().get(web.url("/api/issues")).header(header::COOKIE, &session.cookie).send().await.expect("api");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "a session is no API token");
}

#[tokio::test]
async fn an_editor_cannot_manage_users_and_an_owner_can() {
    let (p, web) = served();
    let editor = sign_in(&web, EDITOR, PASSWORD).await;
    assert_eq!(get(&web, &editor.cookie, "/admin/users").await.status(), StatusCode::FORBIDDEN);
    let overview = get(&web, &editor.cookie, "/admin/").await.text().await.expect("body");
    assert!(!overview.contains("/admin/users"), "no Users entry for an editor");
    let add =
        [("csrf", editor.csrf.as_str()), ("email", "mallory@example.org"), ("role", "owner"), ("password", PASSWORD)];
    assert_eq!(post(&web, &editor.cookie, "/admin/users/add", &add).await.status(), StatusCode::FORBIDDEN);
    let remove = [("csrf", editor.csrf.as_str()), ("email", OWNER)];
    assert_eq!(post(&web, &editor.cookie, "/admin/users/remove", &remove).await.status(), StatusCode::FORBIDDEN);
    let users = p.gazette(&["users", "list", "--json"]).ok().json();
    assert_eq!(users["users"].as_array().expect("users").len(), 2, "nothing changed: {users}");

    let owner = sign_in(&web, OWNER, PASSWORD).await;
    let add = [("csrf", owner.csrf.as_str()), ("email", "new@example.org"), ("role", "editor"), ("password", PASSWORD)];
    let r = post(&web, &owner.cookie, "/admin/users/add", &add).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("new@example.org may now sign in"));
    // Removing the editor ends the session they hold.
    let remove = [("csrf", owner.csrf.as_str()), ("email", EDITOR)];
    assert_eq!(post(&web, &owner.cookie, "/admin/users/remove", &remove).await.status(), StatusCode::OK);
    assert_eq!(get(&web, &editor.cookie, "/admin/").await.status(), StatusCode::SEE_OTHER);
    let users = p.gazette(&["users", "list", "--json"]).ok().json();
    let emails: Vec<&str> =
        users["users"].as_array().expect("users").iter().filter_map(|u| u["email"].as_str()).collect();
    assert_eq!(emails, ["new@example.org", OWNER]);
    let log = get(&web, &owner.cookie, "/admin/log").await.text().await.expect("body");
    assert!(log.contains("added a user") && log.contains("removed a user"), "{log}");
}

#[tokio::test]
async fn subscriber_changes_need_the_token_and_are_logged_with_their_user() {
    let (p, web) = served();
    let s = sign_in(&web, EDITOR, PASSWORD).await;
    let forged = [("csrf", "forged"), ("email", "ann@example.org"), ("name", "Ann"), ("list", "weekly")];
    assert_eq!(post(&web, &s.cookie, "/admin/subscribers/add", &forged).await.status(), StatusCode::FORBIDDEN);
    let none = [("email", "ann@example.org"), ("name", "Ann"), ("list", "weekly")];
    assert_eq!(post(&web, &s.cookie, "/admin/subscribers/add", &none).await.status(), StatusCode::FORBIDDEN);
    let out = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    assert_eq!(out["subscribers"].as_array().expect("subscribers").len(), 0, "nothing was added");

    let add = [("csrf", s.csrf.as_str()), ("email", "ann@example.org"), ("name", "Ann"), ("list", "weekly")];
    let r = post(&web, &s.cookie, "/admin/subscribers/add", &add).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("ann@example.org is active"));
    let add = [("csrf", s.csrf.as_str()), ("email", "=cmd@example.org"), ("name", "@SUM(1)"), ("list", "weekly")];
    post(&web, &s.cookie, "/admin/subscribers/add", &add).await;

    let found = get(&web, &s.cookie, "/admin/subscribers?q=ANN").await.text().await.expect("body");
    assert!(found.contains("ann@example.org") && !found.contains("cmd@example.org"), "{found}");
    let csv = get(&web, &s.cookie, "/admin/subscribers/export").await;
    assert_eq!(csv.headers()[header::CONTENT_TYPE], "text/csv; charset=utf-8");
    let csv = csv.text().await.expect("body");
    assert!(csv.contains("'=cmd@example.org") && csv.contains("'@SUM(1)"), "formula-safe: {csv}");

    let forged = [("csrf", "x"), ("email", "ann@example.org"), ("forget", "yes")];
    assert_eq!(post(&web, &s.cookie, "/admin/subscribers/remove", &forged).await.status(), StatusCode::FORBIDDEN);
    let remove = [("csrf", s.csrf.as_str()), ("email", "ann@example.org")];
    assert_eq!(post(&web, &s.cookie, "/admin/subscribers/remove", &remove).await.status(), StatusCode::OK);
    let statuses = crate::web::statuses(&p);
    assert!(statuses.iter().any(|(e, s, _)| e == "ann@example.org" && s == "unsubscribed"), "{statuses:?}");

    let log = get(&web, &s.cookie, "/admin/log").await.text().await.expect("body");
    assert!(log.contains("added a subscriber") && log.contains("unsubscribed a subscriber"), "{log}");
    assert!(log.contains(EDITOR), "the user is named: {log}");
    let lists = get(&web, &s.cookie, "/admin/lists").await.text().await.expect("body");
    assert!(lists.contains("weekly"), "{lists}");
}

#[tokio::test]
async fn an_upload_names_each_bad_row_and_needs_the_token() {
    let (p, web) = served();
    let s = sign_in(&web, OWNER, PASSWORD).await;
    let csv = "email,name\nann@example.org,Ann\nnot-an-address,Bob\nbea@example.org,Bea\n";
    let upload = |csrf: &str| {
        let file = reqwest::multipart::Part::bytes(csv.as_bytes().to_vec())
            .file_name("people.csv")
            .mime_str("text/csv")
            .expect("mime");
        reqwest::multipart::Form::new().text("csrf", csrf.to_owned()).text("list", "weekly").part("file", file)
    };
    let r = client()
        .post(web.url("/admin/subscribers/import"))
        .header(header::COOKIE, &s.cookie)
        .multipart(upload("forged"))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        p.gazette(&["subscribers", "list", "--json"]).ok().json()["subscribers"].as_array().expect("list").len(),
        0
    );
    let r = client()
        .post(web.url("/admin/subscribers/import"))
        .header(header::COOKIE, &s.cookie)
        .multipart(upload(&s.csrf))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.expect("body");
    let report = html.split("id=\"import-report\"").nth(1).expect("a report");
    assert!(report.contains("<dt>Imported</dt><dd>2</dd>"), "{report}");
    let rejected = report.split("id=\"rejected-rows\"").nth(1).expect("the bad rows");
    assert!(rejected.contains(">3<") && rejected.contains("not-an-address"), "line 3 named: {rejected}");
    assert_eq!(
        p.gazette(&["subscribers", "list", "--json"]).ok().json()["subscribers"].as_array().expect("list").len(),
        2
    );
}
