//! `/preferences/{token}`: a reader's page, linked from the foot of every issue. A GET shows their
//! edition, topics, name and pause, and a button to leave; the POST changes them (the form's
//! `action` is `save` or `unsubscribe`), as the other signed-link pages do: the token alone says
//! who, so there is no CSRF token, and a GET changes nothing. A forged token, and a token of an
//! address that is no subscriber or was forgotten, get the same page, so that nobody learns who
//! subscribes; an expired one says to use the link of a newer issue.

use axum::{
    body::Bytes,
    extract::{Path, State},
    response::Html,
};
use chrono::{DateTime, Utc};
use serde::Serialize;
use tracing::info;

use crate::{
    domain::{EmailAddress, SubscriberStatus},
    store::SubscriberRecord,
    subscribers::{self, MAX_PAUSE_WEEKS, TypedPreferences, Via},
    tokens::{Purpose, TokenError},
    web::{AppState, error::WebError, views},
};

/// The pauses offered, in weeks.
const PAUSES: &[u32] = &[1, 2, 4, 8, 12];

/// The reader a token names, if the token is good and they are still a subscriber.
async fn reader(state: &AppState, token: &str) -> Result<(EmailAddress, SubscriberRecord), WebError> {
    let claims = match state.publication.signer.verify(token, Purpose::Preferences, state.clock.now()) {
        Err(TokenError::Expired) => return Err(WebError::OldPreferencesLink),
        other => other?,
    };
    match state.store.subscriber(&claims.email).await? {
        Some(record) => Ok((claims.email, record)),
        None => Err(WebError::Link(TokenError::Invalid)),
    }
}

#[derive(Debug, Serialize)]
struct Choice {
    name: String,
    chosen: bool,
}

/// What the form offers and what this reader chose.
fn context(state: &AppState, record: &SubscriberRecord, now: DateTime<Utc>) -> tera::Context {
    let config = &state.publication.config;
    let mut ctx = state.views.context();
    let default = config.default_edition().map(|e| e.name.key());
    let theirs = record.edition.clone().or(default);
    let editions: Vec<Choice> = config
        .editions
        .iter()
        .map(|e| Choice { name: e.name.as_str().to_owned(), chosen: theirs.as_deref() == Some(e.name.key().as_str()) })
        .collect();
    let topics: Vec<Choice> = config
        .topics
        .iter()
        .map(|t| Choice { name: t.name.as_str().to_owned(), chosen: record.topics.contains(&t.name.key()) })
        .collect();
    let paused_until = record
        .paused_until
        .filter(|until| *until > now)
        .map(|until| until.with_timezone(&config.publication.timezone).format("%-d %B %Y").to_string());
    ctx.insert("email", &record.email);
    ctx.insert("name", &record.name);
    ctx.insert("editions", &editions);
    ctx.insert("topics", &topics);
    ctx.insert("paused_until", &paused_until);
    ctx.insert("pauses", PAUSES);
    ctx.insert("subscribed", &matches!(record.status, SubscriberStatus::Active | SubscriberStatus::Unconfirmed));
    ctx.insert("saved", &false);
    ctx
}

pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, WebError> {
    let (_, record) = reader(&state, &token).await?;
    let mut ctx = context(&state, &record, state.clock.now());
    ctx.insert("token", &token);
    Ok(state.views.render(views::PREFERENCES, &ctx)?)
}

/// The form as sent: `topic` may come once per topic, so it is read by hand.
#[derive(Debug, Default, PartialEq, Eq)]
struct Form {
    unsubscribe: bool,
    typed: TypedPreferences,
}

fn read_form(body: &[u8]) -> Result<Form, WebError> {
    let mut form = Form::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "action" => form.unsubscribe = value == "unsubscribe",
            "edition" => form.typed.edition = Some(value.into_owned()),
            "topic" => form.typed.topics.push(value.into_owned()),
            "name" => form.typed.name = Some(value.into_owned()),
            "pause" if value.trim().is_empty() => {}
            "pause" => {
                let weeks = value.trim().parse::<u32>().ok().filter(|w| *w <= MAX_PAUSE_WEEKS);
                form.typed.pause_weeks =
                    Some(weeks.ok_or_else(|| WebError::BadInput("Choose a pause from the list.".into()))?);
            }
            _ => {}
        }
    }
    Ok(form)
}

pub async fn change(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<Html<String>, WebError> {
    let (email, record) = reader(&state, &token).await?;
    let form = read_form(&body)?;
    let now = state.clock.now();
    if form.unsubscribe {
        if subscribers::unsubscribe(&state.store, &email, Via::Web, now).await?.changed {
            info!(source = Via::Web.source(), "unsubscribed");
        }
        let mut ctx = state.views.context();
        ctx.insert("email", &record.email);
        return Ok(state.views.render(views::UNSUBSCRIBED, &ctx)?);
    }
    let subscribed = matches!(record.status, SubscriberStatus::Active | SubscriberStatus::Unconfirmed);
    let config = &state.publication.config;
    if subscribed && subscribers::set_preferences(&state.store, config, &email, &form.typed, Via::Web, now).await? {
        info!("preferences changed");
    }
    let record = state.store.subscriber(&email).await?.ok_or(WebError::Link(TokenError::Invalid))?;
    let mut ctx = context(&state, &record, now);
    ctx.insert("token", &token);
    ctx.insert("saved", &subscribed);
    Ok(state.views.render(views::PREFERENCES, &ctx)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_repeated_topics_and_a_pause() {
        let form = read_form(b"edition=Weekly&topic=Science&topic=Arts+%26+Culture&name=Ann&pause=2").expect("form");
        assert!(!form.unsubscribe);
        assert_eq!(form.typed.edition.as_deref(), Some("Weekly"));
        assert_eq!(form.typed.topics, ["Science", "Arts & Culture"]);
        assert_eq!((form.typed.name.as_deref(), form.typed.pause_weeks), (Some("Ann"), Some(2)));
        let keep = read_form(b"pause=").expect("form");
        assert_eq!((keep.typed.pause_weeks, keep.typed.name), (None, None));
        assert!(read_form(b"action=unsubscribe").expect("form").unsubscribe);
        assert!(read_form(b"pause=999").is_err());
        assert!(read_form(b"pause=-1").is_err());
    }
}
