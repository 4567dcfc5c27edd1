//! The archive: `GET /archive` lists every issue that went out, newest first, in the site's
//! layout; `GET /archive/{number}` is one issue as a web page, rendered with the publication's
//! digest template exactly as it was mailed but with no reader in it; `GET /archive/feed.xml`
//! is an Atom feed of them. An issue is on the archive from its first delivery on (a reader may
//! click "view in your browser" while the rest are still going out); one not yet going out,
//! cancelled or unknown is a 404. An issue never changes once sent, so each page is rendered
//! once and kept in memory.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use atom_syndication::{Entry, Feed, Link, Person, Text};
use axum::{
    Extension, Router,
    extract::{Path, State},
    http::header,
    response::{Html, IntoResponse, Response},
    routing::get,
};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{AppState, error::WebError, views};
use crate::{compose::context, compose::templates::DIGEST_HTML, store::SentIssue};

/// The issue pages carry inlined `style` attributes and a `<style>` block (for dark mode and
/// phones), as mail clients want them; that needs inline styles, and nothing else: no script,
/// no form, no frame, images from anywhere an article's image may be.
pub const ISSUE_PAGE_CSP: &str = "default-src 'none'; style-src 'unsafe-inline'; img-src https: http: data:; \
     script-src 'none'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Issue pages are the same for everyone and never change once sent.
const ISSUE_PAGE_CACHE: &str = "public, max-age=3600";
const FEED_PATH: &str = "/archive/feed.xml";
/// How long the list of issues is reused while no issue changes status: an issue whose first
/// delivery goes out joins the list within this span.
const LISTING_TTL: Duration = Duration::from_secs(30);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/archive", get(index))
        .route(FEED_PATH, get(feed))
        .route("/archive/{number}", get(issue_page))
        .layer(Extension(Rendered::default()))
}

/// One line of the archive: what a reader needs to choose an issue.
#[derive(Debug, Clone, Serialize)]
pub struct IssueSummary {
    pub number: u32,
    pub subject: String,
    /// The issue's date, RFC 3339 in the publication's zone (for tera's `date` filter).
    pub date: String,
    /// Where it is on this site: `/archive/{number}`.
    pub url: String,
    pub titles: Vec<String>,
    #[serde(skip)]
    sent_at: DateTime<Utc>,
    #[serde(skip)]
    issue_date: DateTime<Utc>,
}

/// What the archive has rendered: the page of each issue that went out, and the list of issues
/// as of a given count of issues by status.
#[derive(Clone, Default)]
struct Rendered {
    pages: Arc<RwLock<HashMap<u32, Arc<str>>>>,
    listing: Arc<Mutex<Option<Listing>>>,
}

/// The issues as last read: the counts by status they were read at, and when.
type Listing = (BTreeMap<String, u64>, Instant, Arc<Vec<IssueSummary>>);

impl Rendered {
    fn page(&self, number: u32) -> Option<Arc<str>> {
        self.pages.read().ok().and_then(|p| p.get(&number).cloned())
    }

    fn keep_page(&self, number: u32, html: Arc<str>) {
        if let Ok(mut p) = self.pages.write() {
            p.insert(number, html);
        }
    }

    /// The issues that went out, newest first: read again when an issue was created, finished
    /// or cancelled, and at least every [`LISTING_TTL`] (reading them parses every article).
    async fn listing(&self, state: &AppState) -> Result<Arc<Vec<IssueSummary>>, WebError> {
        let counts = state.store.issue_status_counts().await?;
        if let Ok(guard) = self.listing.lock()
            && let Some((at_counts, at, list)) = guard.as_ref()
            && *at_counts == counts
            && at.elapsed() < LISTING_TTL
        {
            return Ok(Arc::clone(list));
        }
        let list = Arc::new(sent_issues(state).await?);
        if let Ok(mut guard) = self.listing.lock() {
            *guard = Some((counts, Instant::now(), Arc::clone(&list)));
        }
        Ok(list)
    }
}

/// Every issue that went out (or is going out), newest first, as the archive lists them (the
/// front page may show the first few).
pub(crate) async fn sent_issues(state: &AppState) -> Result<Vec<IssueSummary>, WebError> {
    let tz = state.publication.config.publication.timezone;
    Ok(state
        .store
        .sent_issues()
        .await?
        .into_iter()
        .map(|i: SentIssue| IssueSummary {
            number: i.number,
            subject: i.subject,
            date: context::local(i.date, tz),
            url: format!("/archive/{}", i.number),
            titles: i.articles.into_iter().map(|a| a.title).collect(),
            sent_at: i.sent_at,
            issue_date: i.date,
        })
        .collect())
}

async fn index(State(state): State<AppState>, Extension(rendered): Extension<Rendered>) -> Result<Response, WebError> {
    let issues = rendered.listing(&state).await?;
    let mut ctx = state.views.context();
    ctx.insert("issues", issues.as_slice());
    Ok(state.views.render(views::ARCHIVE, &ctx)?.into_response())
}

async fn issue_page(
    State(state): State<AppState>,
    Extension(rendered): Extension<Rendered>,
    Path(number): Path<String>,
) -> Result<Response, WebError> {
    // `/archive/007` and `/archive/+7` are not issue 7: one address per issue.
    let number = number.parse::<u32>().ok().filter(|n| n.to_string() == number).ok_or(WebError::NotFound)?;
    let html = match rendered.page(number) {
        Some(html) => html,
        None => {
            let issue = state.store.sent_issue(number).await?.ok_or(WebError::NotFound)?;
            // One still going out could yet be cancelled: it is asked for again next time.
            let keep = issue.finished;
            let html: Arc<str> = render(&state, issue).await?.into();
            if keep {
                rendered.keep_page(number, Arc::clone(&html));
            }
            html
        }
    };
    Ok((
        [(header::CONTENT_SECURITY_POLICY, ISSUE_PAGE_CSP), (header::CACHE_CONTROL, ISSUE_PAGE_CACHE)],
        Html(html.to_string()),
    )
        .into_response())
}

/// Renders off the async threads: inlining the CSS of a long issue takes milliseconds.
async fn render(state: &AppState, issue: SentIssue) -> Result<String, WebError> {
    let publication = Arc::clone(&state.publication);
    let failed = |message: String| WebError::Template { name: DIGEST_HTML.to_owned(), message };
    tokio::task::spawn_blocking(move || {
        publication.archive_page(issue.number, issue.date, &issue.subject, issue.articles)
    })
    .await
    .map_err(|e| failed(e.to_string()))?
    .map_err(|e| failed(e.to_string()))
}

async fn feed(State(state): State<AppState>, Extension(rendered): Extension<Rendered>) -> Result<Response, WebError> {
    let issues = rendered.listing(&state).await?;
    let xml = atom(&state, &issues)
        .write_to(Vec::new())
        .map_err(|e| WebError::Template { name: FEED_PATH.to_owned(), message: e.to_string() })?;
    Ok(([(header::CONTENT_TYPE, "application/atom+xml; charset=utf-8")], xml).into_response())
}

fn atom(state: &AppState, issues: &[IssueSummary]) -> Feed {
    let p = &state.publication;
    let name = &p.config.publication.name;
    let link = |rel: &str, href: String, mime: &str| Link {
        href,
        rel: rel.to_owned(),
        mime_type: Some(mime.to_owned()),
        ..Link::default()
    };
    let entries = issues
        .iter()
        .map(|i| {
            let url = p.link(&format!("archive/{}", i.number));
            Entry {
                id: url.clone(),
                title: Text::plain(i.subject.clone()),
                updated: i.sent_at.fixed_offset(),
                published: Some(i.issue_date.fixed_offset()),
                links: vec![link("alternate", url, "text/html")],
                summary: (!i.titles.is_empty()).then(|| Text::plain(i.titles.join(" · "))),
                ..Entry::default()
            }
        })
        .collect();
    Feed {
        id: p.link("archive"),
        title: Text::plain(name.clone()),
        updated: issues.first().map_or_else(|| state.clock.now(), |i| i.sent_at).fixed_offset(),
        authors: vec![Person { name: name.clone(), uri: Some(p.link("")), ..Person::default() }],
        links: vec![
            link("self", p.link(FEED_PATH.trim_start_matches('/')), "application/atom+xml"),
            link("alternate", p.link("archive"), "text/html"),
        ],
        entries,
        ..Feed::default()
    }
}
