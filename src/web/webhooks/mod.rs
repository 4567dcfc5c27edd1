//! `POST /webhooks/{provider}`: bounces and complaints as sending providers report them
//! (`postmark`, `mailgun`, `sendgrid`, and `ses` through SNS). Each provider's file reads its
//! documented payload and verifies it the provider's way; what verifies becomes provider-neutral
//! [`Event`]s, which `bounces` matches and applies exactly as it does reports that came back by
//! mail. Nothing is applied from a request that does not verify (401), and a provider whose
//! secret is not set is not there at all (404, as for an unknown one). A store that fails is a
//! 503, so that the provider sends the request again; an event applied before is then `seen`.
//!
//! The secrets come from the environment once, at start ([`WebhookVars`]), and never reach a
//! log, a label or an answer; neither does a reader's address.

mod mailgun;
mod postmark;
mod sendgrid;
mod ses;
mod sns;

use std::{fmt, sync::Arc};

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::json;

pub use sns::{CERTIFICATE_HOSTS, sns_client_builder};

use super::AppState;
use crate::{
    bounces::{Event, Ingest, Outcome, Provider},
    metrics,
    store::StoreError,
};

/// The largest webhook body taken: SendGrid posts events in batches, and SES's notifications
/// carry the message's headers.
pub const BODY_LIMIT: usize = 1024 * 1024;

pub const POSTMARK_VAR: &str = "GAZETTE_POSTMARK_WEBHOOK_AUTH";
pub const MAILGUN_VAR: &str = "GAZETTE_MAILGUN_SIGNING_KEY";
pub const SENDGRID_VAR: &str = "GAZETTE_SENDGRID_PUBLIC_KEY";
pub const SES_VAR: &str = "GAZETTE_SES_TOPIC_ARN";

/// The environment's values for the webhooks, as given; blank is unset.
#[derive(Default, Clone)]
pub struct WebhookVars {
    /// `user:password` that Postmark's requests carry as HTTP basic auth.
    pub postmark_auth: Option<String>,
    /// Mailgun's HTTP webhook signing key.
    pub mailgun_signing_key: Option<String>,
    /// SendGrid's verification key: base64 of a DER SubjectPublicKeyInfo (ECDSA P-256).
    pub sendgrid_public_key: Option<String>,
    /// The SNS topics (ARNs, separated by commas) whose notifications are taken.
    pub ses_topic_arns: Option<String>,
}

impl fmt::Debug for WebhookVars {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |v: &Option<String>| if v.is_some() { "set" } else { "unset" };
        f.debug_struct("WebhookVars")
            .field("postmark_auth", &set(&self.postmark_auth))
            .field("mailgun_signing_key", &set(&self.mailgun_signing_key))
            .field("sendgrid_public_key", &set(&self.sendgrid_public_key))
            .field("ses_topic_arns", &set(&self.ses_topic_arns))
            .finish()
    }
}

impl WebhookVars {
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            postmark_auth: var(POSTMARK_VAR),
            mailgun_signing_key: var(MAILGUN_VAR),
            sendgrid_public_key: var(SENDGRID_VAR),
            ses_topic_arns: var(SES_VAR),
        }
    }
}

/// A webhook variable that cannot be used; it names the variable, never its value.
#[derive(Debug, thiserror::Error)]
pub enum WebhookSetupError {
    #[error("{variable} {reason}")]
    Invalid { variable: &'static str, reason: &'static str },
}

impl WebhookSetupError {
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Invalid { variable, .. } => variable,
        }
    }
}

/// What each configured provider's webhook needs; a provider left out answers 404.
#[derive(Clone, Default)]
pub struct Webhooks {
    postmark: Option<postmark::Credentials>,
    mailgun: Option<mailgun::SigningKey>,
    sendgrid: Option<sendgrid::PublicKey>,
    ses: Option<Arc<sns::Sns>>,
}

impl fmt::Debug for Webhooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.providers()).finish()
    }
}

impl Webhooks {
    /// The webhooks `vars` turn on. `sns_client` fetches SNS's signing certificates and follows
    /// its subscription confirmations: [`sns_client_builder`]'s client, which tests may point
    /// at a server of their own.
    pub fn new(vars: WebhookVars, sns_client: reqwest::Client) -> Result<Self, WebhookSetupError> {
        Ok(Self {
            postmark: vars.postmark_auth.map(|v| postmark::Credentials::parse(&v)).transpose()?,
            mailgun: vars.mailgun_signing_key.map(|v| mailgun::SigningKey::parse(&v)).transpose()?,
            sendgrid: vars.sendgrid_public_key.map(|v| sendgrid::PublicKey::parse(&v)).transpose()?,
            ses: vars.ses_topic_arns.map(|v| sns::Sns::new(&v, sns_client)).transpose()?.map(Arc::new),
        })
    }

    /// The providers whose webhooks are on.
    pub fn providers(&self) -> Vec<Provider> {
        let on = [self.postmark.is_some(), self.mailgun.is_some(), self.sendgrid.is_some(), self.ses.is_some()];
        Provider::ALL.into_iter().zip(on).filter_map(|(p, on)| on.then_some(p)).collect()
    }
}

/// Why a webhook request was not taken.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WebhookError {
    /// No such provider, or one whose secret is not set.
    #[error("no such webhook")]
    NotFound,
    #[error("the request does not verify: {0}")]
    Unverified(&'static str),
    #[error("the request cannot be read: {0}")]
    Malformed(String),
    /// SNS's certificate, or its confirmation address, could not be fetched: worth a retry.
    #[error("SNS could not be reached: {0}")]
    Unreachable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// A body that is not the provider's JSON, said by where it went wrong: serde's own words
    /// may quote a value, and a value may be an address.
    pub(crate) fn json(e: serde_json::Error) -> Self {
        let what = match e.classify() {
            serde_json::error::Category::Data => "not the fields the provider sends",
            _ => "not JSON",
        };
        Self::Malformed(format!("{what} (line {}, column {})", e.line(), e.column()))
    }

    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Unverified(_) => StatusCode::UNAUTHORIZED,
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unreachable(_) => StatusCode::BAD_GATEWAY,
            Self::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The word the metrics count it by.
    fn outcome(&self) -> &'static str {
        match self {
            Self::NotFound => "not_found",
            Self::Unverified(_) => "unverified",
            Self::Malformed(_) => "malformed",
            Self::Unreachable(_) | Self::Store(_) => "failed",
        }
    }

    /// What the provider is told: the reason, but nothing of the store or a secret.
    fn answer(&self) -> String {
        match self {
            Self::Store(_) => "the store is unavailable; send the request again later".to_owned(),
            other => other.to_string(),
        }
    }
}

/// What a verified request holds: the events to apply, and how many of its events gazette does
/// not act on (deliveries, opens, an address it cannot read…).
#[derive(Debug, Default)]
pub(crate) struct Batch {
    pub events: Vec<Event>,
    pub ignored: usize,
}

/// What a verified request came to.
enum Received {
    Events(Batch),
    /// An SNS subscription confirmed, or an unsubscription noted.
    Subscription(&'static str),
}

/// The webhook routes, with their own body limit.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/{provider}", post(receive))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT))
}

async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // An unknown provider and one that is off answer alike. Only known providers are counted:
    // the path is the caller's to choose, and a label of it would be too.
    let Ok(provider) = provider.parse::<Provider>() else { return refused(None, &WebhookError::NotFound) };
    match take(&state, provider, &headers, &body).await {
        Ok(Taken { received: Received::Events(batch), token }) => match apply(&state, provider, &batch).await {
            Ok(answer) => {
                metrics::webhook_request(provider.as_str(), "accepted");
                (StatusCode::OK, Json(answer)).into_response()
            }
            Err(e) => {
                if let Some(token) = token
                    && let Err(forget) = state.store.forget_webhook_token(provider.as_str(), &token).await
                {
                    tracing::warn!(error = %forget, "a webhook token could not be forgotten after a failure");
                }
                refused(Some(provider), &e)
            }
        },
        Ok(Taken { received: Received::Subscription(what), .. }) => {
            metrics::webhook_request(provider.as_str(), "accepted");
            tracing::info!(provider = provider.as_str(), what, "webhook subscription");
            (StatusCode::OK, Json(json!({ what: true }))).into_response()
        }
        Err(e) => refused(Some(provider), &e),
    }
}

/// A verified request, with the token noted for it (Mailgun's), which is forgotten again when
/// its events cannot be applied, so that the provider's next attempt is taken.
struct Taken {
    received: Received,
    token: Option<String>,
}

impl Taken {
    fn events(batch: Batch) -> Self {
        Self { received: Received::Events(batch), token: None }
    }
}

/// Verifies a request the provider's way and reads its events.
async fn take(state: &AppState, provider: Provider, headers: &HeaderMap, body: &[u8]) -> Result<Taken, WebhookError> {
    let hooks = &state.webhooks;
    let now = state.clock.now();
    match provider {
        Provider::Postmark => {
            let credentials = hooks.postmark.as_ref().ok_or(WebhookError::NotFound)?;
            credentials.verify(headers)?;
            postmark::events(body).map(Taken::events)
        }
        Provider::Mailgun => {
            let key = hooks.mailgun.as_ref().ok_or(WebhookError::NotFound)?;
            let signed = key.verify(body, now)?;
            let keep_since = now - mailgun::TOKENS_KEPT;
            if !state.store.note_webhook_token(provider.as_str(), &signed.token, now, keep_since).await? {
                return Err(WebhookError::Unverified("this token was used before"));
            }
            Ok(Taken { received: Received::Events(signed.batch), token: Some(signed.token) })
        }
        Provider::Sendgrid => {
            let key = hooks.sendgrid.as_ref().ok_or(WebhookError::NotFound)?;
            key.verify(headers, body)?;
            sendgrid::events(body).map(Taken::events)
        }
        Provider::Ses => {
            let sns = hooks.ses.as_ref().ok_or(WebhookError::NotFound)?;
            let received = match sns.receive(body, now).await? {
                sns::Delivered::Message(message) => Received::Events(ses::events(&message)?),
                sns::Delivered::Subscribed => Received::Subscription("subscribed"),
                sns::Delivered::Unsubscribed => Received::Subscription("unsubscribed"),
            };
            Ok(Taken { received, token: None })
        }
    }
}

/// Applies each event of a verified batch; the answer says what became of each, by kind and
/// result, without an address.
async fn apply(state: &AppState, provider: Provider, batch: &Batch) -> Result<serde_json::Value, WebhookError> {
    let ingest =
        Ingest { store: &state.store, signer: &state.publication.signer, settings: &state.publication.config.bounces };
    let now = state.clock.now();
    let mut results = Vec::with_capacity(batch.events.len());
    for event in &batch.events {
        let (_, outcome) = ingest.event(event, now).await?;
        metrics::webhook_event(provider.as_str(), outcome_word(&outcome));
        results.push(json!({
            "kind": event.kind.as_str(),
            "applied": outcome.applied(),
            "note": outcome.note(),
        }));
    }
    for _ in 0..batch.ignored {
        metrics::webhook_event(provider.as_str(), "ignored");
    }
    let applied = results.iter().filter(|r| r["applied"] == true).count();
    tracing::info!(
        provider = provider.as_str(),
        events = batch.events.len(),
        applied,
        ignored = batch.ignored,
        "webhook events"
    );
    Ok(json!({ "events": results, "applied": applied, "ignored": batch.ignored }))
}

fn outcome_word(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Applied(_) => "applied",
        Outcome::Seen => "seen",
        Outcome::NotABounce => "ignored",
        Outcome::TestCopy => "test_copy",
        Outcome::Forged => "forged",
        Outcome::Unmatched => "unmatched",
    }
}

/// The answer to a request not taken, counted and logged once (its reason, never its content).
fn refused(provider: Option<Provider>, e: &WebhookError) -> Response {
    if let Some(provider) = provider {
        metrics::webhook_request(provider.as_str(), e.outcome());
        match e {
            WebhookError::NotFound => {}
            WebhookError::Store(_) | WebhookError::Unreachable(_) => {
                tracing::warn!(provider = provider.as_str(), error = %e, "webhook request failed");
            }
            _ => tracing::info!(provider = provider.as_str(), error = %e, "webhook request refused"),
        }
    }
    (e.status(), Json(json!({ "error": e.answer() }))).into_response()
}
