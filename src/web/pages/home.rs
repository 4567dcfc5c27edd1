//! `GET /`: the publication's name, the sign-up form and the latest issues. And the stylesheet
//! every page links to.

use axum::{
    extract::State,
    http::header,
    response::{Html, IntoResponse},
};
use serde::Serialize;

use crate::{
    subscribers,
    web::{AppState, error::WebError, views},
};

/// Issues listed on the front page; the archive has them all.
const LATEST: usize = 5;

#[derive(Serialize)]
struct IssueLine {
    number: u32,
    subject: String,
    date: String,
}

pub async fn page(State(state): State<AppState>) -> Result<Html<String>, WebError> {
    // Only issues that went out: the same list the archive shows, so every link resolves.
    let lines: Vec<IssueLine> = crate::web::archive::sent_issues(&state)
        .await?
        .into_iter()
        .take(LATEST)
        .map(|i| IssueLine { number: i.number, subject: i.subject, date: i.date })
        .collect();
    let mut ctx = state.views.context();
    ctx.insert("issues", &lines);
    ctx.insert("open_lists", &subscribers::joinable(&state.publication.config));
    Ok(state.views.render(views::HOME, &ctx)?)
}

pub async fn stylesheet(State(state): State<AppState>) -> impl IntoResponse {
    // The page links to it with a version of its content in the query: it can be kept for long.
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")],
        state.views.css().to_owned(),
    )
}
