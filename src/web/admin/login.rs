//! Signing in and out. The sign-in form carries a CSRF token like every other form: before
//! there is a session it is checked against a cookie of its own, set with the form. A wrong
//! password and an unknown address get the same answer after the same work (an Argon2 check),
//! and both count against the client's and the address's attempts.

use std::time::Instant;

use axum::{
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;

use super::{
    auth::{CsrfForm, SignedIn, forbidden},
    page, session,
};
use crate::{
    accounts::{self, Password},
    domain::EmailAddress,
    store::{NewAction, NewSession},
    web::{AppState, WebError, limit::ClientIp, views},
};

const WRONG: &str = "That address and password do not match a user of this dashboard.";

fn secure(state: &AppState) -> bool {
    state.publication.config.publication.base_url.scheme() == "https"
}

/// `GET /admin/login`: the form, or the overview for someone already signed in.
pub async fn form(State(state): State<AppState>, request: axum::extract::Request) -> Result<Response, WebError> {
    let (parts, _) = request.into_parts();
    if SignedIn::from_cookie(&parts, &state).await?.is_some() {
        return Ok(Redirect::to("/admin/").into_response());
    }
    login_page(&state, &parts.headers, StatusCode::OK, None, "")
}

/// The sign-in page with `message` (an error) and the address typed, keeping the form's token
/// where the browser has one.
fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    message: Option<&str>,
    email: &str,
) -> Result<Response, WebError> {
    let token = session::cookie(headers, session::LOGIN_COOKIE).map_or_else(session::new_token, str::to_owned);
    let mut ctx = tera::Context::new();
    ctx.insert("csrf", &token);
    ctx.insert("error", &message);
    ctx.insert("email", email);
    let mut response = page::render_public(state, views::ADMIN_LOGIN, ctx)?;
    *response.status_mut() = status;
    let cookie = session::set_cookie(session::LOGIN_COOKIE, &token, 3600, secure(state));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct Credentials {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// `POST /admin/login`: `email`, `password` and `csrf`.
pub async fn sign_in(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let Ok(given) = serde_urlencoded::from_bytes::<Credentials>(&body) else {
        return Ok(forbidden("The sign-in form could not be read. Reload the page and try again."));
    };
    let expected = session::cookie(&headers, session::LOGIN_COOKIE).unwrap_or_default();
    if !session::same_token(&given.csrf, expected) {
        return Ok(forbidden("This form has expired. Reload the page and try again."));
    }
    let typed = given.email.trim();
    state.logins.allow(client, &typed.to_lowercase(), Instant::now()).map_err(WebError::TooMany)?;
    let password = Password::given(&given.password);
    let user = match typed.parse::<EmailAddress>() {
        Ok(email) => state.store.user(&email).await?.map(|u| (email, u)),
        Err(_) => None,
    };
    let matched = match user {
        Some((email, user)) => accounts::verify(password, user.password_hash).await.then_some(email),
        None => {
            accounts::verify_unknown(password).await;
            None
        }
    };
    let Some(email) = matched else {
        return login_page(&state, &headers, StatusCode::UNAUTHORIZED, Some(WRONG), typed);
    };
    let now = state.clock.now();
    let token = session::new_token();
    let digest = session::digest(&token);
    let csrf = session::new_token();
    let new = NewSession { token_digest: &digest, email: &email, csrf: &csrf, expires_at: now + session::ABSOLUTE };
    state.store.start_session(&new, now).await?;
    let actor = crate::domain::Actor::User(email.clone());
    let action = NewAction { actor: &actor, action: "signed in", issue: None, subscriber: None, detail: "" };
    state.store.record_action(&action, now).await?;
    let mut response = page::no_store(Redirect::to("/admin/").into_response());
    let secure = secure(&state);
    for cookie in [
        session::set_cookie(session::SESSION_COOKIE, &token, session::ABSOLUTE.num_seconds(), secure),
        session::set_cookie(session::LOGIN_COOKIE, "", 0, secure),
    ] {
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(response)
}

#[derive(Deserialize)]
pub struct Nothing {}

/// `POST /admin/logout`: ends the session and forgets its cookie.
pub async fn sign_out(State(state): State<AppState>, form: CsrfForm<Nothing>) -> Result<Response, WebError> {
    state.store.end_session(&form.who.session).await?;
    let mut response = page::no_store(Redirect::to("/admin/login").into_response());
    let cookie = session::set_cookie(session::SESSION_COOKIE, "", 0, secure(&state));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(response)
}
