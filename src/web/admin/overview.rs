//! `GET /admin/`: the overview. When the next issue goes out (in the publication's time zone),
//! the subscribers by status, and the last issues at a glance with their delivery counts.

use axum::{extract::State, response::Response};
use serde::Serialize;

use super::{SignedIn, page};
use crate::{
    daemon::Timetable,
    domain::SubscriberStatus,
    schedule,
    views::IssueSummary,
    web::{AppState, WebError, figures, views},
};

/// Issues the overview shows; the issues page has them all.
const LAST_ISSUES: usize = 5;

/// One schedule's next slot, as the page shows it.
#[derive(Serialize)]
struct NextSend {
    /// The edition's name; `None` for `[schedule]`.
    edition: Option<String>,
    text: String,
    at: String,
    #[serde(skip)]
    utc: chrono::DateTime<chrono::Utc>,
}

#[derive(Serialize)]
struct StatusCount {
    status: String,
    count: u64,
}

pub async fn page(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let config = &state.publication.config;
    let tz = config.publication.timezone;
    let now = state.clock.now();
    // Each schedule's next slot (each edition's, in the file's order); the soonest is the next send.
    let next_sends: Vec<NextSend> = Timetable::all(config)
        .iter()
        .filter_map(|t| {
            let slot = schedule::next_slots(&t.schedule.cron, tz, now, 1).into_iter().next()?;
            let local = slot.at.with_timezone(&tz);
            Some(NextSend {
                edition: t.edition.map(|e| e.name.to_string()),
                text: local.format("%A %-d %B %Y, %H:%M").to_string(),
                at: local.to_rfc3339(),
                utc: slot.at,
            })
        })
        .collect();
    let next_send = next_sends.iter().min_by_key(|n| n.utc).map(|n| (n.text.clone(), n.at.clone()));
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
    // Per edition only when there are editions: without them the page is as it was.
    let per_edition: Vec<&NextSend> = next_sends.iter().filter(|n| n.edition.is_some()).collect();
    ctx.insert("next_sends", &per_edition);
    ctx.insert("timezone", tz.name());
    ctx.insert("status_counts", &counts);
    ctx.insert("subscribers_total", &total);
    ctx.insert("issues", &issues);
    let subscribers = figures::subscribers(&state.store, now, tz).await?;
    ctx.insert("subscribers_over_time", &subscribers);
    page::render(&state, &who, views::ADMIN_OVERVIEW, ctx)
}
