//! The reader's pages: the front page with the sign-up form, the "check your inbox" answer,
//! the confirmation and unsubscribe links (a GET shows one button, the POST acts), a reader's
//! preferences (a GET shows them, the POST changes them), and the
//! stylesheet they share. One file per flow.

mod confirm;
mod home;
mod preferences;
mod subscribe;
mod unsubscribe;

use axum::{
    Router,
    routing::{get, post},
};

use super::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/static/site.css", get(home::stylesheet))
        .route("/subscribe", post(subscribe::submit))
        .route("/confirm/{token}", get(confirm::page).post(confirm::confirm))
        .route("/unsubscribe/{token}", get(unsubscribe::page).post(unsubscribe::unsubscribe))
        .route("/preferences/{token}", get(preferences::page).post(preferences::change))
}

#[cfg(test)]
mod tests;
