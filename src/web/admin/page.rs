//! A dashboard page: an admin template rendered with what every page shows (the publication,
//! who is signed in, their CSRF token for the forms, the navigation and the stylesheet), and
//! never kept by a cache.

use axum::{
    http::{HeaderValue, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;

use super::{SignedIn, css_url};
use crate::web::{AppState, WebError};

/// One entry of the navigation.
#[derive(Debug, Clone, Serialize)]
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    /// What a page sets as `section` to be marked as the current one.
    pub section: &'static str,
}

/// The navigation every signed-in page shows; Users only for owners.
pub fn nav(who: &SignedIn) -> Vec<NavItem> {
    let mut items = vec![
        NavItem { href: "/admin/", label: "Overview", section: "overview" },
        NavItem { href: "/admin/issues", label: "Issues", section: "issues" },
        NavItem { href: "/admin/subscribers", label: "Subscribers", section: "subscribers" },
        NavItem { href: "/admin/lists", label: "Lists", section: "lists" },
        NavItem { href: "/admin/log", label: "Log", section: "log" },
    ];
    if who.is_owner() {
        items.push(NavItem { href: "/admin/users", label: "Users", section: "users" });
    }
    items
}

#[derive(Serialize)]
struct Me<'a> {
    email: &'a str,
    role: &'a str,
}

/// Renders `template` (a name of `web::views`) for `who` with `ctx`, which should set `section`
/// (the navigation's current entry) and `title` where the template does not.
pub fn render(state: &AppState, who: &SignedIn, template: &str, mut ctx: tera::Context) -> Result<Response, WebError> {
    ctx.extend(state.views.context());
    ctx.insert("me", &Me { email: who.email.as_str(), role: who.role.as_str() });
    ctx.insert("csrf", &who.csrf);
    ctx.insert("nav", &nav(who));
    ctx.insert("admin_css_url", css_url());
    if !ctx.contains_key("section") {
        ctx.insert("section", "");
    }
    Ok(no_store(state.views.render(template, &ctx)?.into_response()))
}

/// Renders a page shown before signing in (the sign-in form): no `me`, no navigation.
pub fn render_public(state: &AppState, template: &str, mut ctx: tera::Context) -> Result<Response, WebError> {
    ctx.extend(state.views.context());
    ctx.insert("admin_css_url", css_url());
    ctx.insert("nav", &Vec::<NavItem>::new());
    ctx.insert("section", "");
    Ok(no_store(state.views.render(template, &ctx)?.into_response()))
}

/// Marks a response as not to be kept by any cache.
pub fn no_store(mut response: Response) -> Response {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
