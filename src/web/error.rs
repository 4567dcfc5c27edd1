//! What can go wrong while answering a page, and the status each answer carries. A `WebError`
//! becomes a response that says what happened without telling the visitor anything about the
//! store or the server; `pages_with_layout` (see `mod.rs`) turns it into the publication's own
//! error page. The cause chain is logged once here, never with a token or an address.

use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};

use crate::{store::StoreError, subscribers::SubscriberError, tokens::TokenError};

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    #[error("no such page")]
    NotFound,
    #[error("{0}")]
    BadInput(String),
    #[error("this link does not work: {0}")]
    Link(#[from] TokenError),
    #[error("this link was made before you left, so it cannot sign you up again")]
    StaleLink,
    /// A preferences link past its time: a newer issue carries a fresh one.
    #[error("this preferences link has expired")]
    OldPreferencesLink,
    /// Over the sign-up limit; the client may try again after this long.
    #[error("too many requests")]
    TooMany(std::time::Duration),
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error(transparent)]
    View(#[from] super::views::ViewError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A subscriber rule the reader's pages never meet; a fault of ours if they do.
    #[error(transparent)]
    Subscribers(SubscriberError),
}

impl From<SubscriberError> for WebError {
    fn from(e: SubscriberError) -> Self {
        match e {
            SubscriberError::Store(e) => Self::Store(e),
            SubscriberError::NoSuchList => Self::BadInput("There is no such list to join.".into()),
            SubscriberError::SignupsClosed => Self::BadInput("Sign-ups are closed for now.".into()),
            SubscriberError::UnknownChoice { what, .. } => {
                Self::BadInput(format!("This publication has no such {what}; choose one of those on the page."))
            }
            SubscriberError::Invalid { field, reason } => Self::BadInput(format!("The {field} {reason}.")),
            other => Self::Subscribers(other),
        }
    }
}

impl WebError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::BadInput(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Link(TokenError::Invalid) => StatusCode::BAD_REQUEST,
            Self::Link(TokenError::Expired) | Self::StaleLink | Self::OldPreferencesLink => StatusCode::GONE,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Template { .. } | Self::View(_) | Self::Store(_) | Self::Subscribers(_) => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    /// What the visitor reads: the reason where it is theirs to act on, nothing of the inside.
    pub fn problem(&self) -> Problem {
        let (title, detail) = match self {
            Self::NotFound => ("Page not found", "There is nothing at this address.".to_owned()),
            Self::BadInput(why) => ("Please check the form", why.clone()),
            Self::Link(TokenError::Invalid) => (
                "This link does not work",
                "The link is incomplete or was not made by this publication. Copy the whole link from the email and try again.".to_owned(),
            ),
            Self::Link(TokenError::Expired) => (
                "This link has expired",
                "Confirmation links work for 7 days. Sign up again and we will send a new one.".to_owned(),
            ),
            Self::OldPreferencesLink => (
                "This link has expired",
                "Links to your preferences work for 90 days. Use the link at the foot of a newer issue.".to_owned(),
            ),
            Self::StaleLink => (
                "This link can no longer be used",
                "You left after this link was sent, so it cannot sign you up again. Sign up again if you want to come back.".to_owned(),
            ),
            Self::TooMany(wait) => ("Too many attempts", come_back(*wait)),
            Self::Template { .. } | Self::View(_) | Self::Store(_) | Self::Subscribers(_) => {
                ("Something went wrong", "We could not finish this. Please try again in a few minutes.".to_owned())
            }
        };
        Problem { status: self.status(), title: title.to_owned(), detail }
    }

    /// The headers this error's answer carries in any shape (page or JSON): a 429 says when
    /// to come back, in whole seconds rounded up, so a client that waits that long gets in.
    pub fn add_headers(&self, response: &mut Response) {
        if let Self::TooMany(wait) = self {
            let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
        }
    }
}

/// When to come back, in the visitor's words.
fn come_back(wait: std::time::Duration) -> String {
    match wait.as_secs().div_ceil(60) {
        0 | 1 => "Please wait a minute and try again.".to_owned(),
        minutes => format!("Please wait {minutes} minutes and try again."),
    }
}

/// An error page to be laid out: carried in the response's extensions until the layout layer
/// renders it with the publication's templates.
#[derive(Debug, Clone)]
pub struct Problem {
    pub status: StatusCode,
    pub title: String,
    pub detail: String,
}

impl Problem {
    /// The page for a status a layer answered with (body too large, timeout, rate limit).
    pub fn for_status(status: StatusCode) -> Self {
        let (title, detail) = match status {
            StatusCode::NOT_FOUND => ("Page not found", "There is nothing at this address."),
            StatusCode::METHOD_NOT_ALLOWED => ("Not allowed", "This page cannot be used that way."),
            StatusCode::PAYLOAD_TOO_LARGE => ("Too much data", "The form sent more than this page accepts."),
            StatusCode::REQUEST_TIMEOUT => ("Too slow", "The request took too long. Please try again."),
            StatusCode::TOO_MANY_REQUESTS => ("Too many attempts", "Please wait a minute and try again."),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ("Please check the form", "Send the form as a web form or as JSON."),
            s if s.is_client_error() => ("Please check the form", "The request could not be read."),
            _ => ("Something went wrong", "We could not finish this. Please try again in a few minutes."),
        };
        Self { status, title: title.to_owned(), detail: detail.to_owned() }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if self.status().is_server_error() {
            tracing::error!(error = %chain(&self), "request failed");
        }
        let problem = self.problem();
        let mut response = (problem.status, problem.detail.clone()).into_response();
        self.add_headers(&mut response);
        response.extensions_mut().insert(problem);
        response
    }
}

/// An error and its causes on one line, for the log.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cur = c.source();
    }
    out
}

/// Lays out error answers as the publication's error page: a `WebError` (which says what went
/// wrong) or a plain-text answer from an extractor or a layer (body too large, a bad form).
/// Answers that are already pages or JSON are left alone.
pub async fn lay_out(
    axum::extract::State(state): axum::extract::State<super::AppState>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let plain = response
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|t| t.starts_with("text/plain"));
    let problem = match response.extensions().get::<Problem>() {
        Some(p) => p.clone(),
        None if plain => Problem::for_status(status),
        None => return response,
    };
    page(&state, &problem, response)
}

/// The error page for `problem`, keeping the headers of the answer it replaces.
pub fn page(state: &super::AppState, problem: &Problem, original: Response) -> Response {
    let mut ctx = state.views.context();
    ctx.insert("problem_title", &problem.title);
    ctx.insert("problem_detail", &problem.detail);
    match state.views.render(super::views::ERROR, &ctx) {
        Ok(html) => {
            let (mut parts, _) = original.into_parts();
            parts.headers.remove(axum::http::header::CONTENT_LENGTH);
            parts.headers.remove(axum::http::header::CONTENT_TYPE);
            let mut response = (problem.status, html).into_response();
            for (name, value) in parts.headers.iter() {
                response.headers_mut().entry(name.clone()).or_insert_with(|| value.clone());
            }
            response
        }
        Err(e) => {
            tracing::error!(error = %chain(&e), "the error page did not render");
            original
        }
    }
}
