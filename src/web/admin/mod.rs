//! The publisher's dashboard at `/admin/`: signing in (`login`), who is asking (`auth`, over
//! the sessions of `session`), how a page is rendered (`page`), and the pages themselves, one
//! file each. Every page is server-rendered from `templates/web/admin/`, every form carries the
//! session's CSRF token, nothing is cached, and every change is recorded in the log of actions
//! with the user who made it. Other parts add their pages by merging their own `routes()` here.

pub mod auth;
mod issues;
mod lists;
mod log;
mod login;
mod overview;
pub mod page;
pub mod session;
mod subscribers;
mod throttle;
mod users;

use axum::{
    Router,
    http::header,
    middleware,
    response::IntoResponse,
    routing::{get, post},
};

pub use auth::{CsrfForm, Owner, SignedIn};
pub use throttle::LoginLimits;

use super::{AppState, error};

const ADMIN_CSS: &str = include_str!("../../../templates/web/admin/admin.css");

/// The stylesheet's address, versioned by its content so that it can be cached for long.
pub fn css_url() -> &'static str {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(ADMIN_CSS.as_bytes());
        format!("/admin/admin.css?v={}", hex::encode(&digest[..6]))
    })
}

/// The dashboard's routes, relative to `/admin` (where [`mount`] nests them). A part that adds
/// pages merges its own routes here.
pub fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/", get(overview::page))
        .route("/login", get(login::form).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .merge(issues::routes())
        .merge(subscribers::routes())
        .merge(lists::routes())
        .merge(users::routes())
        .merge(log::routes());
    Router::new().merge(no_store(pages)).route("/admin.css", get(stylesheet))
}

/// The dashboard at `/admin` (and `/admin/`, which a nested `/` does not answer), its error
/// answers laid out as error pages.
pub fn mount(state: AppState) -> Router<AppState> {
    let root = no_store(Router::new().route("/admin/", get(overview::page)));
    Router::new().nest("/admin", routes()).merge(root).layer(middleware::from_fn_with_state(state, error::lay_out))
}

/// Pages are never kept by a cache: they show subscribers' addresses and a CSRF token.
fn no_store(router: Router<AppState>) -> Router<AppState> {
    router.layer(tower_http::set_header::SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    ))
}

async fn stylesheet() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=86400")], ADMIN_CSS)
}
