//! The web side: the publication's page and sign-up form, confirmation and unsubscribe links,
//! the archive, health and metrics, and the admin API. Served by `gazette serve` alone or
//! inside `gazette run`.

mod api;
mod archive;
mod ops;
mod pages;
mod state;

pub use state::AppState;

use axum::Router;

/// Every route, with the state they share.
pub fn router(state: AppState) -> Router {
    Router::new()
        .merge(pages::routes())
        .merge(archive::routes())
        .merge(ops::routes())
        .nest("/api", api::routes())
        .with_state(state)
}
