//! `GET /admin/`: the overview. When the next issue goes out (in the publication's time zone),
//! the subscribers by status, and the last issues at a glance with their delivery counts.

use axum::{extract::State, response::Response};
use serde::Serialize;

use super::{SignedIn, page};
use crate::{
    domain::SubscriberStatus,
    schedule,
    views::IssueSummary,
    web::{AppState, WebError, figures, views},
};

/// Issues the overview shows; the issues page has them all.
const LAST_ISSUES: usize = 5;

#[derive(Serialize)]
struct StatusCount {
    status: String,
    count: u64,
}

pub async fn page(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let config = &state.publication.config;
    let tz = config.publication.timezone;
    let now = state.clock.now();
    let next_send =
        config.schedule.as_ref().and_then(|s| schedule::next_slots(&s.cron, tz, now, 1).into_iter().next()).map(
            |slot| {
                let local = slot.at.with_timezone(&tz);
                (local.format("%A %-d %B %Y, %H:%M").to_string(), local.to_rfc3339())
            },
        );
    let counts = state.store.status_counts().await?;
    let total: u64 = counts.values().sum();
    // In the order a subscriber moves through them, not the alphabet's.
    let counts: Vec<StatusCount> = SubscriberStatus::ALL
        .iter()
        .map(|s| StatusCount { status: s.as_str().to_owned(), count: counts.get(s.as_str()).copied().unwrap_or(0) })
        .collect();
    let issues: Vec<IssueSummary> =
        state.store.issues().await?.iter().rev().take(LAST_ISSUES).map(IssueSummary::from).collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "overview");
    ctx.insert("next_send", &next_send.as_ref().map(|(text, _)| text));
    ctx.insert("next_send_at", &next_send.as_ref().map(|(_, at)| at));
    ctx.insert("timezone", tz.name());
    ctx.insert("status_counts", &counts);
    ctx.insert("subscribers_total", &total);
    ctx.insert("issues", &issues);
    let subscribers = figures::subscribers(&state.store, now, tz).await?;
    ctx.insert("subscribers_over_time", &subscribers);
    page::render(&state, &who, views::ADMIN_OVERVIEW, ctx)
}
