//! The reader's pages: the front page with the sign-up form, the "check your inbox" answer,
//! the confirmation and unsubscribe links (a GET shows one button, the POST acts), and the
//! stylesheet they share. One file per flow.

mod confirm;
mod home;
mod subscribe;
mod unsubscribe;

use axum::{
    Router,
    routing::{get, post},
};

use super::AppState;
use crate::{config::Config, domain::ListName};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home::page))
        .route("/static/site.css", get(home::stylesheet))
        .route("/subscribe", post(subscribe::submit))
        .route("/confirm/{token}", get(confirm::page).post(confirm::confirm))
        .route("/unsubscribe/{token}", get(unsubscribe::page).post(unsubscribe::unsubscribe))
}

/// The lists a reader may join from the web: the publication's lists that no list file
/// decides (a file's list is made to match the file before each issue, which would drop a
/// web sign-up again).
pub fn open_lists(config: &Config) -> Vec<ListName> {
    config
        .publication
        .lists
        .iter()
        .filter(|name| !config.lists.iter().any(|l| &l.name == *name && l.file.is_some()))
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests;
