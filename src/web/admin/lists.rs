//! `/admin/lists`: each list with its subscribers by status, and whether a file keeps it.

use axum::{extract::State, response::Response, routing::get};
use serde::Serialize;

use super::{SignedIn, page};
use crate::{
    domain::SubscriberStatus,
    web::{AppState, WebError, views},
};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/lists", get(list))
}

#[derive(Serialize)]
struct ListLine {
    name: String,
    /// The counts in the order of `statuses`.
    counts: Vec<u64>,
    total: u64,
    /// The file that keeps it, if one does.
    file: Option<String>,
    /// Whether the publication sends to it.
    sent_to: bool,
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let config = &state.publication.config;
    let kept = config.file_kept_lists();
    let lines: Vec<ListLine> = state
        .store
        .list_counts()
        .await?
        .into_iter()
        .map(|l| {
            let counts: Vec<u64> =
                SubscriberStatus::ALL.iter().map(|s| l.counts.get(s.as_str()).copied().unwrap_or(0)).collect();
            ListLine {
                total: counts.iter().sum(),
                counts,
                file: kept.iter().find(|k| k.list.as_ref() == l.name).map(|k| k.file.display().to_string()),
                sent_to: config.publication.lists.iter().any(|n| n.as_ref() == l.name),
                name: l.name,
            }
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "lists");
    ctx.insert("statuses", &SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ctx.insert("lists", &lines);
    page::render(&state, &who, views::ADMIN_LISTS, ctx)
}
