//! `/admin/log`: the last actions, newest first, with who did them and when (in the
//! publication's time zone).

use axum::{extract::State, response::Response, routing::get};
use serde::Serialize;

use super::{SignedIn, page};
use crate::web::{AppState, WebError, views};

/// Actions the log shows.
const SHOWN: u32 = 200;

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/log", get(list))
}

#[derive(Serialize)]
struct Entry {
    at: String,
    at_iso: String,
    actor: String,
    action: String,
    issue: Option<u32>,
    subscriber: Option<String>,
    detail: String,
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let tz = state.publication.config.publication.timezone;
    let entries: Vec<Entry> = state
        .store
        .recent_actions(SHOWN)
        .await?
        .into_iter()
        .map(|a| {
            let local = a.at.with_timezone(&tz);
            Entry {
                at: local.format("%Y-%m-%d %H:%M").to_string(),
                at_iso: local.to_rfc3339(),
                actor: a.actor,
                action: a.action,
                issue: a.issue,
                // A forgotten reader's row holds a digest, not an address: shown as such.
                subscriber: a
                    .subscriber
                    .map(|s| if s.starts_with("forgotten:") { "(forgotten)".to_owned() } else { s }),
                detail: a.detail,
            }
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "log");
    ctx.insert("entries", &entries);
    ctx.insert("timezone", tz.name());
    page::render(&state, &who, views::ADMIN_LOG, ctx)
}
