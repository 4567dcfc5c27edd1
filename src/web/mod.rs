//! The web side: the publication's page and sign-up form, confirmation and unsubscribe links,
//! the archive, health and metrics, the admin API, and providers' bounce webhooks. Served by `gazette serve` alone or
//! inside `gazette run`.
//!
//! The reader's pages (`pages`, `archive`) share one layout (`views`), answer errors with the
//! publication's error page (`error`), and take small bodies; every response carries the
//! security headers (`security`). `server` binds, serves and stops.

pub mod access;
pub mod admin;
mod api;
mod archive;
pub mod charts;
pub mod error;
pub mod figures;
pub mod limit;
pub mod mail;
mod ops;
pub mod pages;
pub mod security;
pub mod server;
mod state;
pub mod views;
pub mod webhooks;

pub use error::WebError;
pub use server::{ServeError, serve};
pub use state::AppState;

use axum::{
    Router,
    extract::{DefaultBodyLimit, State},
    middleware,
    response::{IntoResponse, Response},
};

/// The largest body a reader's page accepts: a sign-up form is a few hundred bytes.
pub const PUBLIC_BODY_LIMIT: usize = 16 * 1024;
/// The largest body any route accepts but the webhooks (the admin API's are the largest: a
/// subscriber with its attributes), so that no route, present or future, reads an unbounded
/// one. The webhooks take up to [`webhooks::BODY_LIMIT`].
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route, with the state they share.
pub fn router(state: AppState) -> Router {
    let public = Router::new()
        .merge(pages::routes())
        .merge(archive::routes())
        .layer(middleware::from_fn_with_state(state.clone(), error::lay_out))
        .layer(DefaultBodyLimit::max(PUBLIC_BODY_LIMIT))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(PUBLIC_BODY_LIMIT));
    let limited = Router::new()
        .merge(public)
        .merge(ops::routes())
        .nest("/api", api::routes())
        .layer(tower_http::limit::RequestBodyLimitLayer::new(BODY_LIMIT));
    // The dashboard takes CSV uploads, larger than any other body; each of its routes says how
    // large (`DefaultBodyLimit`), the admin API's limit holding for the rest.
    let admin = admin::mount(state.clone());
    Router::new()
        .merge(limited)
        .merge(admin)
        .merge(webhooks::routes())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(ops::track_requests))
        .with_state(state)
}

async fn not_found(State(state): State<AppState>) -> Response {
    let problem = WebError::NotFound.problem();
    error::page(&state, &problem, axum::http::StatusCode::NOT_FOUND.into_response())
}
