//! Who is asking: the extractors every dashboard handler takes. [`SignedIn`] is anyone with a
//! live session (a page asked for without one is redirected to the sign-in form; anything else
//! is refused); [`Owner`] is a signed-in owner; [`CsrfForm`] is a form posted by a signed-in user
//! that carries their session's CSRF token, refused with 403 before the handler runs otherwise.

use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{Method, StatusCode, header, request::Parts},
    response::{IntoResponse, Redirect, Response},
};
use serde::{Deserialize, de::DeserializeOwned};

use super::session;
use crate::{
    domain::{Actor, EmailAddress, Role},
    web::{AppState, WebError, error::Problem},
};

/// A user with a live session.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub email: EmailAddress,
    pub role: Role,
    /// The token each of their forms carries.
    pub csrf: String,
    /// The digest of their session's token, to end it.
    pub(super) session: String,
}

impl SignedIn {
    /// Who the log of actions names for what they do.
    pub fn actor(&self) -> Actor {
        Actor::User(self.email.clone())
    }

    /// Whether `given` (a form's `csrf` field) is this session's token; for a handler that
    /// reads its form itself (a file upload), before it acts.
    pub fn csrf_matches(&self, given: &str) -> bool {
        session::same_token(given, &self.csrf)
    }

    pub fn is_owner(&self) -> bool {
        self.role == Role::Owner
    }

    /// The live session the request's cookie names, if any; its use is noted.
    pub(super) async fn from_cookie(parts: &Parts, state: &AppState) -> Result<Option<Self>, WebError> {
        let Some(token) = session::cookie(&parts.headers, session::SESSION_COOKIE) else { return Ok(None) };
        let digest = session::digest(token);
        let Some(record) = state.store.session(&digest).await? else { return Ok(None) };
        let now = state.clock.now();
        if !session::live(record.created_at, record.seen_at, record.expires_at, now) {
            state.store.end_session(&digest).await?;
            return Ok(None);
        }
        if now - record.seen_at >= session::TOUCH_EVERY {
            state.store.touch_session(&digest, now).await?;
        }
        let Ok(email) = record.email.parse::<EmailAddress>() else { return Ok(None) };
        Ok(Some(Self { email, role: record.role, csrf: record.csrf, session: digest }))
    }
}

/// A 403 that says why, laid out as an error page.
pub fn forbidden(detail: &str) -> Response {
    let problem = Problem { status: StatusCode::FORBIDDEN, title: "Not allowed".into(), detail: detail.into() };
    let mut response = (StatusCode::FORBIDDEN, problem.detail.clone()).into_response();
    response.extensions_mut().insert(problem);
    response
}

pub const EXPIRED_FORM: &str =
    "This form has expired or did not come from this dashboard. Go back, reload the page and try again.";

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        match Self::from_cookie(parts, state).await {
            Ok(Some(who)) => Ok(who),
            Ok(None) if parts.method == Method::GET || parts.method == Method::HEAD => {
                Err(Redirect::to("/admin/login").into_response())
            }
            Ok(None) => Err(forbidden(EXPIRED_FORM)),
            Err(e) => Err(e.into_response()),
        }
    }
}

/// A signed-in owner; an editor is refused with 403.
#[derive(Debug, Clone)]
pub struct Owner(pub SignedIn);

impl std::ops::Deref for Owner {
    type Target = SignedIn;

    fn deref(&self) -> &SignedIn {
        &self.0
    }
}

impl FromRequestParts<AppState> for Owner {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let who = SignedIn::from_request_parts(parts, state).await?;
        if who.is_owner() { Ok(Self(who)) } else { Err(forbidden("Only an owner of this publication can do this.")) }
    }
}

/// The field every dashboard form carries.
#[derive(Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

/// An urlencoded form posted by a signed-in user with their session's CSRF token.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub who: SignedIn,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let (parts, body) = request.into_parts();
        let who = match SignedIn::from_cookie(&parts, state).await {
            Ok(Some(who)) => who,
            Ok(None) => return Err(forbidden(EXPIRED_FORM)),
            Err(e) => return Err(e.into_response()),
        };
        let urlencoded = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !urlencoded {
            return Err(forbidden(EXPIRED_FORM));
        }
        let bytes =
            Bytes::from_request(Request::from_parts(parts, body), state).await.map_err(IntoResponse::into_response)?;
        let field: CsrfField = serde_urlencoded::from_bytes(&bytes).map_err(|_| forbidden(EXPIRED_FORM))?;
        if !who.csrf_matches(&field.csrf) {
            return Err(forbidden(EXPIRED_FORM));
        }
        let form = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| WebError::BadInput(format!("The form could not be read: {e}.")).into_response())?;
        Ok(Self { who, form })
    }
}
