//! `/admin/subscribers`: search by address or name, filter by status and list, a page at a
//! time; add one; remove one (optionally forgetting them); import a CSV upload, showing what it
//! did and each bad row by its line; export every subscriber as a CSV, formula-safe. Every
//! change goes through `subscribers`, as the command line's do, and is logged with its user.

use axum::{
    extract::{DefaultBodyLimit, Multipart, Query, State},
    http::header,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{CsrfForm, SignedIn, auth, page};
use crate::{
    csv_import::{self, Rejected},
    domain::{EmailAddress, ListName, SubscriberStatus},
    store::{NewAction, SubscriberRecord},
    subscribers::{self, Addition, Import, SubscriberError, Via},
    web::{AppState, WebError, views},
};

/// Subscribers on a page.
const PAGE: u32 = 50;
/// The largest CSV the dashboard takes: some hundred thousand rows.
pub const IMPORT_LIMIT: usize = 16 * 1024 * 1024;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/subscribers", get(list))
        .route("/subscribers/add", post(add))
        .route("/subscribers/remove", post(remove))
        .route("/subscribers/import", post(import).layer(DefaultBodyLimit::max(IMPORT_LIMIT)))
        .route("/subscribers/export", get(export))
}

/// The search and filters, as the page's query string carries them.
#[derive(Debug, Default, Deserialize, Serialize, Clone)]
pub struct Search {
    #[serde(default)]
    q: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    list: String,
    /// The address the page starts after.
    #[serde(default)]
    after: String,
}

/// What a change did, shown above the list.
#[derive(Debug, Default, Serialize)]
struct Notice {
    ok: Option<String>,
    error: Option<String>,
}

#[derive(Serialize)]
struct Line {
    email: String,
    name: String,
    status: String,
    lists: String,
}

#[derive(Serialize)]
struct ImportReport {
    file: String,
    imported: u64,
    updated: u64,
    unchanged: u64,
    left_alone: u64,
    unlisted: u64,
    rejected: Vec<Rejected>,
}

async fn list(
    State(state): State<AppState>,
    who: SignedIn,
    Query(search): Query<Search>,
) -> Result<Response, WebError> {
    render(&state, &who, search, Notice::default(), None).await
}

/// The page: the search's results and the forms, with `notice` and an import's report.
async fn render(
    state: &AppState,
    who: &SignedIn,
    search: Search,
    notice: Notice,
    report: Option<ImportReport>,
) -> Result<Response, WebError> {
    let status = search.status.parse::<SubscriberStatus>().ok();
    let list = search.list.parse::<ListName>().ok();
    let after = (!search.after.is_empty()).then_some(search.after.as_str());
    let found = state.store.search_subscribers(&search.q, list.as_ref(), status, after, PAGE + 1).await?;
    let more = found.len() > PAGE as usize;
    let lines: Vec<Line> = found.iter().take(PAGE as usize).map(line).collect();
    let next = more.then(|| {
        let mut next = search.clone();
        next.after = lines.last().map(|l| l.email.clone()).unwrap_or_default();
        serde_urlencoded::to_string(&next).unwrap_or_default()
    });
    let first = (!search.after.is_empty()).then(|| {
        let mut first = search.clone();
        first.after.clear();
        serde_urlencoded::to_string(&first).unwrap_or_default()
    });
    let lists: Vec<String> = state.store.list_counts().await?.into_iter().map(|l| l.name).collect();
    let joinable: Vec<String> =
        subscribers::joinable(&state.publication.config).iter().map(ToString::to_string).collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "subscribers");
    ctx.insert("search", &search);
    ctx.insert("statuses", &SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ctx.insert("lists", &lists);
    ctx.insert("joinable", &joinable);
    ctx.insert("subscribers", &lines);
    ctx.insert("next_query", &next);
    ctx.insert("first_query", &first);
    ctx.insert("notice", &notice);
    ctx.insert("report", &report);
    ctx.insert("import_limit_mb", &(IMPORT_LIMIT / (1024 * 1024)));
    page::render(state, who, views::ADMIN_SUBSCRIBERS, ctx)
}

fn line(s: &SubscriberRecord) -> Line {
    Line { email: s.email.clone(), name: s.name.clone(), status: s.status.to_string(), lists: s.lists.join(", ") }
}

/// A refusal of the subscriber rules, in the publisher's words; a fault of the store is ours.
fn refusal(e: SubscriberError) -> Result<String, WebError> {
    match e {
        SubscriberError::Store(e) => Err(WebError::Store(e)),
        e => Ok(e.to_string()),
    }
}

async fn record(
    state: &AppState,
    who: &SignedIn,
    action: &str,
    subscriber: Option<&EmailAddress>,
    detail: &str,
) -> Result<(), WebError> {
    let actor = who.actor();
    let action = NewAction { actor: &actor, action, issue: None, subscriber, detail };
    Ok(state.store.record_action(&action, state.clock.now()).await?)
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    list: String,
}

async fn add(State(state): State<AppState>, CsrfForm { who, form }: CsrfForm<AddForm>) -> Result<Response, WebError> {
    let config = &state.publication.config;
    let name = Some(form.name.as_str()).filter(|n| !n.trim().is_empty());
    let lists = Some(form.list.as_str()).filter(|l| !l.is_empty()).map(|l| vec![l]);
    let outcome = match Addition::parse(form.email.trim(), name, lists, []) {
        Ok(addition) => subscribers::add(config, &state.store, addition, Via::Dashboard, state.clock.now()).await,
        Err(e) => Err(e),
    };
    let notice = match outcome {
        Ok(added) => {
            let email: EmailAddress =
                added.record.email.parse().map_err(|_| WebError::BadInput("bad address".into()))?;
            let what = if added.created { "added a subscriber" } else { "updated a subscriber" };
            record(&state, &who, what, Some(&email), &added.record.lists.join(", ")).await?;
            let lists = if added.record.lists.is_empty() {
                "on no list, so no issue reaches them".to_owned()
            } else {
                format!("on {}", added.record.lists.join(", "))
            };
            Notice { ok: Some(format!("{} is active, {lists}.", added.record.email)), error: None }
        }
        Err(e) => Notice { ok: None, error: Some(refusal(e)?) },
    };
    render(&state, &who, Search::default(), notice, None).await
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    email: String,
    /// Present when the box "forget" was ticked.
    #[serde(default)]
    forget: Option<String>,
}

async fn remove(
    State(state): State<AppState>,
    CsrfForm { who, form }: CsrfForm<RemoveForm>,
) -> Result<Response, WebError> {
    let Ok(email) = form.email.trim().parse::<EmailAddress>() else {
        let notice = Notice { ok: None, error: Some(format!("`{}` is not an email address.", form.email.trim())) };
        return render(&state, &who, Search::default(), notice, None).await;
    };
    let forget = form.forget.is_some();
    let now = state.clock.now();
    let left = if forget {
        subscribers::forget(&state.store, &email, Via::Dashboard, now).await
    } else {
        subscribers::unsubscribe(&state.store, &email, Via::Dashboard, now).await
    };
    let notice = match left {
        Ok(left) if left.changed => {
            // A forgotten reader is named in the log by the row that no longer holds them.
            let (what, named) =
                if forget { ("forgot a subscriber", None) } else { ("unsubscribed a subscriber", Some(&email)) };
            record(&state, &who, what, named, "").await?;
            let done = if forget { "unsubscribed and forgotten" } else { "unsubscribed" };
            Notice { ok: Some(format!("{email} {done}.")), error: None }
        }
        Ok(left) => match left.status {
            Some(s @ (SubscriberStatus::Bounced | SubscriberStatus::Complained)) => {
                Notice { ok: Some(format!("{email} is {s}, and stays so: no issue goes to it.")), error: None }
            }
            _ => Notice { ok: None, error: Some(format!("{email} was not subscribed.")) },
        },
        Err(e) => Notice { ok: None, error: Some(refusal(e)?) },
    };
    render(&state, &who, Search::default(), notice, None).await
}

/// The upload, read whole; its CSRF field is checked before anything is imported.
async fn import(State(state): State<AppState>, who: SignedIn, mut form: Multipart) -> Result<Response, WebError> {
    let (mut csrf, mut file, mut name, mut list) = (String::new(), None, String::new(), String::new());
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(WebError::BadInput(format!("The upload could not be read: {e}."))),
        };
        let key = field.name().unwrap_or_default().to_owned();
        match key.as_str() {
            "file" => {
                name = field.file_name().unwrap_or("upload.csv").to_owned();
                let bytes = field
                    .bytes()
                    .await
                    .map_err(|e| WebError::BadInput(format!("The upload could not be read: {e}.")))?;
                file = Some(bytes.to_vec());
            }
            "csrf" | "list" => {
                let text = field
                    .text()
                    .await
                    .map_err(|e| WebError::BadInput(format!("The upload could not be read: {e}.")))?;
                if key == "csrf" { csrf = text } else { list = text }
            }
            _ => {}
        }
    }
    if !who.csrf_matches(&csrf) {
        return Ok(auth::forbidden(auth::EXPIRED_FORM));
    }
    let Some(bytes) = file.filter(|b| !b.is_empty()) else {
        let notice = Notice { ok: None, error: Some("Choose a CSV file to import.".into()) };
        return render(&state, &who, Search::default(), notice, None).await;
    };
    let list = match Some(list.trim()).filter(|l| !l.is_empty()).map(str::parse::<ListName>).transpose() {
        Ok(list) => list,
        Err(e) => {
            let notice = Notice { ok: None, error: Some(format!("list: {e}")) };
            return render(&state, &who, Search::default(), notice, None).await;
        }
    };
    let name: String = name.chars().filter(|c| !c.is_control()).take(120).collect();
    let done = match Import::upload(&state.publication.config, &name, bytes, list, false) {
        Ok(import) => import.into_store(&state.store, state.clock.now()).await,
        Err(e) => Err(e),
    };
    match done {
        Ok(done) => {
            let c = done.counts;
            let detail = format!(
                "{name}: {} imported, {} updated, {} unchanged, {} rejected",
                c.imported,
                c.updated,
                c.unchanged + c.refused,
                done.rejected.len()
            );
            record(&state, &who, "imported subscribers", None, &detail).await?;
            let report = ImportReport {
                file: name,
                imported: c.imported,
                updated: c.updated,
                unchanged: c.unchanged + c.refused,
                left_alone: c.refused,
                unlisted: done.unlisted,
                rejected: done.rejected,
            };
            render(&state, &who, Search::default(), Notice::default(), Some(report)).await
        }
        Err(e) => {
            let notice = Notice { ok: None, error: Some(refusal(e)?) };
            render(&state, &who, Search::default(), notice, None).await
        }
    }
}

/// Every subscriber as CSV, as `gazette subscribers export` writes it.
async fn export(State(state): State<AppState>, _who: SignedIn) -> Result<Response, WebError> {
    let subs = state.store.subscribers(None, None).await?;
    let csv = csv_import::export(&subs);
    let file = format!("attachment; filename=\"subscribers-{}.csv\"", state.clock.now().format("%Y-%m-%d"));
    Ok(page::no_store(
        ([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, file)], csv)
            .into_response(),
    ))
}
