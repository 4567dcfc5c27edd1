//! The admin API under `/api/`: subscribers and issues as JSON, for the publisher's own tools.
//! Every request carries `Authorization: Bearer $GAZETTE_ADMIN_TOKEN`; without the variable the
//! API is off and every request gets 401. Input is parsed into the domain's types at the door
//! (an address into an `EmailAddress`, a list into a `ListName`); a bad value gets 422 and the
//! field it came in, as `{"error": {"message", "field"}}`.
//!
//! ```text
//! GET    /api/subscribers?list=&status=&limit=&after=   one page, in address order
//! POST   /api/subscribers                                {email, name, lists, attributes}
//!                                                        (lists: default the ones no file decides)
//! GET    /api/subscribers/{email}
//! DELETE /api/subscribers/{email}?forget=true            unsubscribe (and forget)
//! GET    /api/issues
//! GET    /api/issues/{number}                            counts and failed recipients
//! POST   /api/issues/{number}/preview                    {to}: a test copy, recorded nowhere
//! ```

use std::collections::BTreeMap;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRequestParts, Path, RawQuery, State},
    http::{HeaderValue, StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use serde_json::{Map, Value, json};

use super::AppState;
use crate::{
    domain::{EmailAddress, ListName, SubscriberStatus},
    issue::{self, IssueError},
    store::StoreError,
    subscribers::{self, Addition, Field, SubscriberError, Via},
    views::{AddedView, IssueSummary, IssueView, LeftView, SubscriberView},
};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1000;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/subscribers", get(list_subscribers).post(add_subscriber))
        .route("/subscribers/{email}", get(show_subscriber).delete(remove_subscriber))
        .route("/issues", get(list_issues))
        .route("/issues/{number}", get(show_issue))
        .route("/issues/{number}/preview", post(preview_issue))
        .fallback(unknown)
}

/// Why an API request was not done, and the status that says so.
#[derive(Debug, thiserror::Error)]
enum ApiError {
    #[error("send the admin token: Authorization: Bearer $GAZETTE_ADMIN_TOKEN")]
    Unauthorized,
    #[error("{message}")]
    Invalid { field: Option<String>, message: String },
    #[error("the body is not JSON: {0}")]
    NotJson(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the mail server failed: {0}")]
    MailServer(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Issue(IssueError),
    /// A subscriber rule no request here can break; a fault of ours if one does.
    #[error(transparent)]
    Subscribers(SubscriberError),
}

impl ApiError {
    fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::Invalid { field: Some(field.to_owned()), message: message.into() }
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::NotJson(_) => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::MailServer(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) | Self::Issue(_) | Self::Subscribers(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<IssueError> for ApiError {
    fn from(e: IssueError) -> Self {
        match e {
            IssueError::Store(e) => Self::Store(e),
            IssueError::Deliver(e) => Self::MailServer(e.to_string()),
            IssueError::TestCopy { to, reply, refused: true } => {
                Self::invalid("to", format!("the mail server refused {to}: {reply}"))
            }
            IssueError::TestCopy { to, reply, refused: false } => Self::MailServer(format!("{to}: {reply}")),
            other => Self::Issue(other),
        }
    }
}

impl From<SubscriberError> for ApiError {
    fn from(e: SubscriberError) -> Self {
        match e {
            SubscriberError::Store(e) => Self::Store(e),
            SubscriberError::Invalid { field, reason } => match field {
                Field::Email => Self::invalid("email", format!("email: {reason}")),
                Field::Name => Self::invalid("name", format!("name {reason}")),
                Field::Lists => Self::invalid("lists", reason),
                Field::Attribute(k) => Self::invalid(&format!("attributes.{k}"), format!("attribute `{k}` {reason}")),
                Field::Pause => Self::invalid("pause", format!("pause {reason}")),
            },
            SubscriberError::UnknownChoice { what, .. } => {
                Self::invalid(if what == "topic" { "topics" } else { what }, e.to_string())
            }
            SubscriberError::FileKept(kept) => Self::invalid("lists", kept.to_string()),
            SubscriberError::LeftEarlier(_) => Self::Conflict(e.to_string()),
            SubscriberError::NotFound(_) => Self::NotFound(e.to_string()),
            other => Self::Subscribers(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (message, field) = match &self {
            Self::Store(_) | Self::Issue(_) | Self::Subscribers(_) => {
                tracing::error!(error = %chain(&self), "admin API request failed");
                ("something went wrong inside gazette; the log says what".to_owned(), None)
            }
            Self::Invalid { field, message } => (message.clone(), field.clone()),
            other => (other.to_string(), None),
        };
        let mut response = (status, Json(json!({ "error": { "message": message, "field": field } }))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"gazette\""));
        }
        response
    }
}

use super::error::chain;

/// Proof that the request carries the admin token. Every handler takes it first, so nothing is
/// read or parsed for a caller without it.
struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if state.tokens.admits_admin(&parts.headers) { Ok(Self) } else { Err(ApiError::Unauthorized) }
    }
}

async fn unknown(_: Admin) -> ApiError {
    ApiError::NotFound("no such API route; see the README's admin API section".into())
}

/// The query string as pairs, refusing names the route does not take (a typo would otherwise
/// widen a listing silently).
fn query(raw: Option<&str>, allowed: &[&str]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
        if !allowed.contains(&k.as_ref()) {
            return Err(ApiError::invalid(
                &k,
                format!("unknown parameter `{k}`; this route takes {}", allowed.join(", ")),
            ));
        }
        out.insert(k.into_owned(), v.into_owned());
    }
    Ok(out)
}

/// The body as a JSON object with only the fields the route takes.
fn object(body: &[u8], allowed: &[&str]) -> Result<Map<String, Value>, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::NotJson(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(ApiError::Invalid { field: None, message: "the body must be a JSON object".into() });
    };
    if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(ApiError::invalid(k, format!("unknown field `{k}`; this route takes {}", allowed.join(", "))));
    }
    Ok(map)
}

fn email(field: &str, s: &str) -> Result<EmailAddress, ApiError> {
    s.parse().map_err(|e| ApiError::invalid(field, format!("{field}: {e}")))
}

/// A string field: `None` when absent or null.
fn text<'a>(map: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>, ApiError> {
    match map.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(ApiError::invalid(field, format!("{field} must be a string"))),
    }
}

async fn list_subscribers(
    _: Admin,
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw.as_deref(), &["list", "status", "limit", "after"])?;
    let list = q
        .get("list")
        .map(|l| l.parse::<ListName>().map_err(|e| ApiError::invalid("list", e.to_string())))
        .transpose()?;
    let status = q
        .get("status")
        .map(|s| s.parse::<SubscriberStatus>().map_err(|e| ApiError::invalid("status", e.to_string())))
        .transpose()?;
    let limit =
        match q.get("limit") {
            None => DEFAULT_PAGE,
            Some(l) => l.parse::<u32>().ok().filter(|n| (1..=MAX_PAGE).contains(n)).ok_or_else(|| {
                ApiError::invalid("limit", format!("limit must be a whole number from 1 to {MAX_PAGE}"))
            })?,
        };
    let after = q.get("after").map(|a| email("after", a)).transpose()?;
    // One more than asked for says whether another page follows.
    let mut page = state.store.subscribers_page(list.as_ref(), status, after.as_ref(), limit + 1).await?;
    let more = page.len() > limit as usize;
    page.truncate(limit as usize);
    let next = if more { page.last().map(|s| s.email.clone()) } else { None };
    let page: Vec<SubscriberView> = page.iter().map(|s| SubscriberView::new(s, &state.publication.config)).collect();
    Ok(Json(json!({ "subscribers": page, "next": next })))
}

async fn add_subscriber(_: Admin, State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let map = object(&body, &["email", "name", "lists", "attributes", "edition", "topics"])?;
    let email = text(&map, "email")?.ok_or_else(|| ApiError::invalid("email", "email is required"))?;
    let name = text(&map, "name")?;
    let lists: Option<Vec<&str>> = match map.get("lists") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| ApiError::invalid("lists", "lists must be an array of list names"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(ApiError::invalid("lists", "lists must be an array of list names")),
    };
    let attributes: Vec<(String, String)> = match map.get("attributes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(attrs)) => attrs
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                _ => Err(ApiError::invalid(&format!("attributes.{k}"), format!("attribute `{k}` must be a string"))),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(ApiError::invalid("attributes", "attributes must be an object of strings")),
    };
    // Without `lists`, the lists a reader may join; the rules are those of every way in.
    let edition = text(&map, "edition")?;
    let topics: Option<Vec<&str>> = match map.get("topics") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|item| {
                    item.as_str().ok_or_else(|| ApiError::invalid("topics", "topics must be an array of topic names"))
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => return Err(ApiError::invalid("topics", "topics must be an array of topic names")),
    };
    let addition = Addition::parse(email, name, lists, attributes)?.choosing(
        &state.publication.config,
        edition,
        topics.as_deref(),
    )?;
    let added =
        subscribers::add(&state.publication.config, &state.store, addition, Via::Api, state.clock.now()).await?;
    let status = if added.created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!(AddedView::new(&added, &state.publication.config)))).into_response())
}

async fn show_subscriber(
    _: Admin,
    State(state): State<AppState>,
    Path(address): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let address = email("email", &address)?;
    let record = state.store.subscriber(&address).await?.ok_or_else(|| not_subscribed(&address))?;
    Ok(Json(json!({ "subscriber": SubscriberView::new(&record, &state.publication.config) })))
}

fn not_subscribed(address: &EmailAddress) -> ApiError {
    ApiError::NotFound(format!("{address} is not a subscriber"))
}

async fn remove_subscriber(
    _: Admin,
    State(state): State<AppState>,
    Path(address): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let q = query(raw.as_deref(), &["forget"])?;
    let forget = match q.get("forget").map(String::as_str) {
        None | Some("false" | "0") => false,
        Some("true" | "1" | "") => true,
        Some(_) => return Err(ApiError::invalid("forget", "forget must be true or false")),
    };
    let address = email("email", &address)?;
    let now = state.clock.now();
    let left = if forget {
        subscribers::forget(&state.store, &address, Via::Api, now).await?
    } else {
        subscribers::unsubscribe(&state.store, &address, Via::Api, now).await?
    };
    if !left.known {
        return Err(not_subscribed(&address));
    }
    Ok(Json(json!(LeftView::from(&left))))
}

async fn list_issues(_: Admin, State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let issues = state.store.issues().await?;
    Ok(Json(json!({ "issues": issues.iter().map(IssueSummary::from).collect::<Vec<_>>() })))
}

fn number(s: &str) -> Result<u32, ApiError> {
    s.parse().map_err(|_| ApiError::invalid("number", format!("`{s}` is not an issue number")))
}

async fn existing_issue(state: &AppState, number: u32) -> Result<crate::store::IssueRecord, ApiError> {
    state.store.issue(number).await?.ok_or_else(|| ApiError::NotFound(format!("there is no issue #{number}")))
}

async fn show_issue(_: Admin, State(state): State<AppState>, Path(n): Path<String>) -> Result<Json<Value>, ApiError> {
    let i = existing_issue(&state, number(&n)?).await?;
    let failures = state.store.failures(i.number).await?;
    let deferred = state.store.deferred(i.number).await?;
    let history = state.store.issue_actions(i.number).await?;
    let relays = state.store.relays(i.number).await?;
    Ok(Json(json!(
        IssueView::new(&i, &failures, &deferred, &state.publication.config.publication)
            .with_history(&history)
            .with_relays(&relays)
    )))
}

async fn preview_issue(
    _: Admin,
    State(state): State<AppState>,
    Path(n): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let number = number(&n)?;
    let map = object(&body, &["to"])?;
    let to = email("to", text(&map, "to")?.ok_or_else(|| ApiError::invalid("to", "to is required"))?)?;
    let issue = existing_issue(&state, number).await?;
    issue::send_test_copies(
        state.publication.clone(),
        &issue,
        &state.transport,
        std::slice::from_ref(&to),
        state.clock.clone(),
    )
    .await?;
    Ok(Json(json!({ "number": number, "to": to, "sent": true, "recorded": false })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_parameters_are_named() {
        match object(br#"{"email": "a@example.org", "lsts": []}"#, &["email", "lists"]) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field.as_deref(), Some("lsts")),
            other => panic!("expected the field named, got {other:?}"),
        }
        match query(Some("list=weekly&stauts=active"), &["list", "status"]) {
            Err(ApiError::Invalid { field, .. }) => assert_eq!(field.as_deref(), Some("stauts")),
            other => panic!("expected the parameter named, got {other:?}"),
        }
        assert!(matches!(object(b"{not json", &[]), Err(ApiError::NotJson(_))));
    }
}
