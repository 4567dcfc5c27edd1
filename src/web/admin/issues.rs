//! The issue pages of the dashboard: every issue with its status and counts; one issue with its
//! delivery over time, its failures, bounces and complaints by reason and its history; and, for a
//! draft or a held issue, the desk: the reader's copy as on a phone and a desktop, the edit form,
//! a test copy to oneself, approve and hold. While an issue sends, its page asks `live` for the
//! figures again every few seconds (`issue.js`); without the script it shows them as loaded.
//!
//! Every change goes through `review`, which logs it with its actor; every POST through
//! `CsrfForm`. The reader's copy is served to its frames under a policy of its own: sandboxed, no
//! script, framed only by the dashboard.

use std::collections::HashMap;

use axum::{
    Router,
    extract::{Path, Query, State},
    http::{HeaderValue, StatusCode, header},
    response::{Html, IntoResponse, Redirect, Response},
    routing::{get, post},
};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tera::Context;

use super::{CsrfForm, SignedIn, page};
use crate::{
    domain::{Article, IssueStatus},
    review::{self, Edit, ReviewError},
    store::{ActionRecord, IssueRecord},
    web::{
        AppState, WebError,
        error::Problem,
        figures,
        views::{ADMIN_ISSUE, ADMIN_ISSUE_LIVE, ADMIN_ISSUES},
    },
};

const ISSUE_JS: &str = include_str!("../../../templates/web/admin/issue.js");

/// The pages' policy: the dashboard's own script, its figures asked from the same origin, and
/// the reader's copy framed from the same origin.
const PAGE_CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
     frame-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
/// The reader's copy in its frame: the digest's inline styles and remote images, no script, no
/// form, no link that navigates the dashboard (`sandbox`), framed by the dashboard alone.
const PREVIEW_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; \
     frame-ancestors 'self'; base-uri 'none'; form-action 'none'; sandbox";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/issues", get(list))
        .route("/issues/{n}", get(show))
        .route("/issues/{n}/live", get(live))
        .route("/issues/{n}/preview", get(preview))
        .route("/issues/{n}/edit", post(edit))
        .route("/issues/{n}/test", post(test))
        .route("/issues/{n}/approve", post(approve))
        .route("/issues/{n}/hold", post(hold))
        .route("/issue.js", get(script))
}

/// What the pages say of an issue.
#[derive(Debug, Serialize)]
struct IssueView {
    number: u32,
    status: IssueStatus,
    subject: String,
    note: Option<String>,
    intro: String,
    created: String,
    created_iso: String,
    finished: Option<String>,
    finished_iso: Option<String>,
    send_at: Option<String>,
    send_at_iso: Option<String>,
    articles: Vec<ArticleView>,
    left_out: Vec<ArticleView>,
    sent: u64,
    pending: u64,
    failed: u64,
    bounced: u64,
    complained: u64,
}

#[derive(Debug, Serialize)]
struct ArticleView {
    title: String,
    url: Option<String>,
}

#[derive(Debug, Serialize)]
struct ActionView {
    at: String,
    at_iso: String,
    actor: String,
    action: String,
    detail: String,
}

fn when(t: DateTime<Utc>, zone: Tz) -> String {
    t.with_timezone(&zone).format("%a %-d %b %Y, %H:%M").to_string()
}

fn articles(list: &[Article]) -> Vec<ArticleView> {
    list.iter().map(|a| ArticleView { title: a.title.clone(), url: a.url.as_ref().map(|u| u.to_string()) }).collect()
}

impl IssueView {
    fn new(i: &IssueRecord, zone: Tz) -> Self {
        Self {
            number: i.number,
            status: i.status,
            subject: i.subject.clone(),
            note: i.note.clone(),
            intro: i.intro.clone().unwrap_or_default(),
            created: when(i.created_at, zone),
            created_iso: i.created_at.to_rfc3339(),
            finished: i.finished_at.map(|t| when(t, zone)),
            finished_iso: i.finished_at.map(|t| t.to_rfc3339()),
            send_at: i.send_at.map(|t| when(t, zone)),
            send_at_iso: i.send_at.map(|t| t.to_rfc3339()),
            articles: articles(&i.articles),
            left_out: articles(&i.left_out),
            sent: i.counts.sent,
            pending: i.counts.pending(),
            failed: i.counts.failed,
            bounced: i.reports.bounced,
            complained: i.reports.complained,
        }
    }
}

impl ActionView {
    fn new(a: &ActionRecord, zone: Tz) -> Self {
        Self {
            at: when(a.at, zone),
            at_iso: a.at.to_rfc3339(),
            actor: a.actor.clone(),
            action: a.action.clone(),
            detail: a.detail.clone(),
        }
    }
}

/// Is issue `status` one an editor still works on?
fn on_the_desk(status: IssueStatus) -> bool {
    matches!(status, IssueStatus::Draft | IssueStatus::Held)
}

fn zone(state: &AppState) -> Tz {
    state.publication.config.publication.timezone
}

fn with_csp(mut response: Response, csp: &'static str) -> Response {
    response.headers_mut().insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    response
}

/// A review that failed, as the dashboard answers it: the reason on the error page, which the
/// dashboard's layer lays out (`web::error::lay_out`).
fn refused(e: ReviewError) -> Response {
    if e.is_not_found() {
        return WebError::NotFound.into_response();
    }
    let (status, title) = if e.is_conflict() {
        (StatusCode::CONFLICT, "This issue cannot do that now")
    } else if e.is_bad_input() {
        (StatusCode::BAD_REQUEST, "Please check the form")
    } else {
        tracing::error!(error = %e, "a review action failed");
        (StatusCode::INTERNAL_SERVER_ERROR, "The action failed")
    };
    let detail = if status.is_server_error() { "The server's log says why.".to_owned() } else { e.to_string() };
    let mut response = (status, detail.clone()).into_response();
    response.extensions_mut().insert(Problem { status, title: title.to_owned(), detail });
    response
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let zone = zone(&state);
    let mut issues: Vec<IssueView> = state.store.issues().await?.iter().map(|i| IssueView::new(i, zone)).collect();
    issues.reverse();
    let mut ctx = Context::new();
    ctx.insert("section", "issues");
    ctx.insert("issues", &issues);
    page::render(&state, &who, ADMIN_ISSUES, ctx)
}

#[derive(Debug, Default, Deserialize)]
struct Shown {
    /// What was just done, said once above the issue.
    done: Option<String>,
}

fn notice(done: Option<&str>) -> Option<&'static str> {
    match done? {
        "edited" => Some("Your changes are saved."),
        "test" => Some("A test copy is on its way to you."),
        "approved" => Some("Approved."),
        "held" => Some("Held: nothing sends it until it is approved."),
        _ => None,
    }
}

async fn show(
    State(state): State<AppState>,
    who: SignedIn,
    Path(n): Path<u32>,
    Query(shown): Query<Shown>,
) -> Result<Response, WebError> {
    let zone = zone(&state);
    let issue = state.store.issue(n).await?.ok_or(WebError::NotFound)?;
    let history: Vec<ActionView> =
        state.store.issue_actions(n).await?.iter().map(|a| ActionView::new(a, zone)).collect();
    let figures = figures::issue(&state.store, &issue, zone).await?;
    let mut ctx = Context::new();
    ctx.insert("section", "issues");
    ctx.insert("issue", &IssueView::new(&issue, zone));
    ctx.insert("desk", &on_the_desk(issue.status));
    ctx.insert("figures", &figures);
    ctx.insert("history", &history);
    ctx.insert("notice", &notice(shown.done.as_deref()));
    Ok(with_csp(page::render(&state, &who, ADMIN_ISSUE, ctx)?, PAGE_CSP))
}

/// The live section alone, for the page's script.
async fn live(State(state): State<AppState>, _who: SignedIn, Path(n): Path<u32>) -> Result<Response, WebError> {
    let issue = state.store.issue(n).await?.ok_or(WebError::NotFound)?;
    let figures = figures::issue(&state.store, &issue, zone(&state)).await?;
    let mut ctx = state.views.context();
    ctx.insert("figures", &figures);
    Ok(state.views.render(ADMIN_ISSUE_LIVE, &ctx)?.into_response())
}

async fn preview(State(state): State<AppState>, _who: SignedIn, Path(n): Path<u32>) -> Response {
    match review::preview_html(&state.publication, &state.store, n).await {
        Ok(html) => {
            let mut r = with_csp(Html(html).into_response(), PREVIEW_CSP);
            r.headers_mut().insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("SAMEORIGIN"));
            r
        }
        Err(e) => refused(e),
    }
}

fn back_to(n: u32, done: &str) -> Response {
    Redirect::to(&format!("/admin/issues/{n}?done={done}")).into_response()
}

/// What the edit form was made from.
struct Desk<'a> {
    subject: &'a str,
    intro: Option<&'a str>,
    articles: &'a [Article],
    left_out: &'a [Article],
}

impl<'a> From<&'a IssueRecord> for Desk<'a> {
    fn from(i: &'a IssueRecord) -> Self {
        Self { subject: &i.subject, intro: i.intro.as_deref(), articles: &i.articles, left_out: &i.left_out }
    }
}

/// The edit form's fields: `subject`, `intro`, and for the article at each position `i`,
/// `url_i`, `keep_i` (ticked: kept) and `pos_i` (its wanted position); for each left-out one,
/// `outurl_j` and `back_j` (ticked: put back).
fn edit_from_form(form: &HashMap<String, String>, issue: &Desk<'_>) -> Edit {
    let mut edit = Edit::default();
    if let Some(subject) = form.get("subject").filter(|s| s.trim() != issue.subject) {
        edit.subject = Some(subject.clone());
    }
    let intro = form.get("intro").map(|s| s.replace("\r\n", "\n"));
    if intro.as_deref().map(str::trim) != Some(issue.intro.unwrap_or_default().trim()) {
        edit.intro = intro;
    }
    let mut kept: Vec<(usize, usize, String)> = Vec::new();
    for (i, article) in issue.articles.iter().enumerate() {
        let Some(url) = article.url.as_ref().map(|u| u.to_string()) else { continue };
        // The form names its article by URL too: a page older than the issue's last change
        // does not leave out the wrong one.
        if form.get(&format!("url_{i}")) != Some(&url) {
            continue;
        }
        if form.contains_key(&format!("keep_{i}")) {
            let pos = form.get(&format!("pos_{i}")).and_then(|p| p.trim().parse().ok()).unwrap_or(i + 1);
            kept.push((pos, i, url));
        } else {
            edit.exclude.push(url);
        }
    }
    let before: Vec<String> = kept.iter().map(|(_, _, u)| u.clone()).collect();
    // An article given another's position goes before it: it is the one that was moved.
    kept.sort_by_key(|(pos, i, _)| (*pos, *pos == i + 1, *i));
    let after: Vec<String> = kept.into_iter().map(|(_, _, u)| u).collect();
    if after != before {
        edit.order = Some(after);
    }
    for (j, article) in issue.left_out.iter().enumerate() {
        let Some(url) = article.url.as_ref().map(|u| u.to_string()) else { continue };
        if form.get(&format!("outurl_{j}")) == Some(&url) && form.contains_key(&format!("back_{j}")) {
            edit.include.push(url);
        }
    }
    edit
}

async fn edit(State(state): State<AppState>, Path(n): Path<u32>, form: CsrfForm<HashMap<String, String>>) -> Response {
    let CsrfForm { who, form } = form;
    let issue = match state.store.issue(n).await {
        Ok(Some(issue)) => issue,
        Ok(None) => return WebError::NotFound.into_response(),
        Err(e) => return WebError::from(e).into_response(),
    };
    let edit = edit_from_form(&form, &Desk::from(&issue));
    if edit == Edit::default() {
        return back_to(n, "edited");
    }
    match review::edit(&state.publication, &state.store, n, &edit, &who.actor(), state.clock.now()).await {
        Ok(_) => back_to(n, "edited"),
        Err(e) => refused(e),
    }
}

/// No field but the CSRF token, which `CsrfForm` checks.
#[derive(Debug, Deserialize)]
struct Nothing {}

async fn test(State(state): State<AppState>, Path(n): Path<u32>, form: CsrfForm<Nothing>) -> Response {
    let who = form.who;
    let sent = review::send_test(
        &state.publication,
        &state.store,
        &state.transport,
        state.clock.clone(),
        n,
        &who.email,
        &who.actor(),
    )
    .await;
    match sent {
        Ok(()) => back_to(n, "test"),
        Err(e) => refused(e),
    }
}

async fn approve(State(state): State<AppState>, Path(n): Path<u32>, form: CsrfForm<Nothing>) -> Response {
    match review::approve(&state.publication, &state.store, n, &form.who.actor(), state.clock.now()).await {
        Ok(_) => back_to(n, "approved"),
        Err(e) => refused(e),
    }
}

async fn hold(State(state): State<AppState>, Path(n): Path<u32>, form: CsrfForm<Nothing>) -> Response {
    match review::hold(&state.publication, &state.store, n, &form.who.actor(), state.clock.now()).await {
        Ok(_) => back_to(n, "held"),
        Err(e) => refused(e),
    }
}

async fn script() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/javascript; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
        ],
        ISSUE_JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn article(n: usize) -> Article {
        serde_json::from_value(serde_json::json!({
            "id": format!("a{n}"), "title": format!("A{n}"), "url": format!("https://e.org/{n}"),
            "date": null, "author": null, "summary": "", "content_html": "", "image": null, "tags": [],
            "source": "s", "source_id": "s", "draft": false
        }))
        .expect("article")
    }

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn the_form_says_what_changed_and_nothing_else() {
        let (articles, left_out) = ([article(0), article(1), article(2)], [article(3)]);
        let desk = Desk { subject: "S", intro: Some("Hi"), articles: &articles, left_out: &left_out };
        let untouched = form(&[
            ("csrf", "t"),
            ("subject", "S"),
            ("intro", "Hi\r\n"),
            ("url_0", "https://e.org/0"),
            ("keep_0", "on"),
            ("pos_0", "1"),
            ("url_1", "https://e.org/1"),
            ("keep_1", "on"),
            ("pos_1", "2"),
            ("url_2", "https://e.org/2"),
            ("keep_2", "on"),
            ("pos_2", "3"),
            ("outurl_0", "https://e.org/3"),
        ]);
        assert_eq!(edit_from_form(&untouched, &desk), Edit::default());

        let mut changed = untouched.clone();
        changed.insert("subject".into(), "New".into());
        changed.insert("intro".into(), "".into());
        changed.remove("keep_1");
        changed.insert("pos_2".into(), "1".into());
        changed.insert("back_0".into(), "on".into());
        let edit = edit_from_form(&changed, &desk);
        assert_eq!(edit.subject.as_deref(), Some("New"));
        assert_eq!(edit.intro.as_deref(), Some(""), "an emptied intro is removed");
        assert_eq!(edit.exclude, ["https://e.org/1"]);
        assert_eq!(edit.order, Some(vec!["https://e.org/2".to_owned(), "https://e.org/0".to_owned()]));
        assert_eq!(edit.include, ["https://e.org/3"]);

        // A form made before the articles changed names other URLs: it leaves nothing out.
        let mut stale = untouched.clone();
        stale.insert("url_1".into(), "https://e.org/9".into());
        stale.remove("keep_1");
        assert_eq!(edit_from_form(&stale, &desk).exclude, Vec::<String>::new());
    }
}
