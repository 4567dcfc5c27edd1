//! `/confirm/{token}`: the link in the confirmation email. A GET only shows a button (mail
//! scanners open links); the POST makes the address active, joins the list it asked for, and
//! sends the welcome email where `[web] welcome` is on. A link made before the reader left
//! cannot bring them back; a second press changes nothing.

use axum::{
    extract::{Path, State},
    response::Html,
};
use tracing::{info, warn};

use crate::{
    store::Confirmation,
    subscribers,
    tokens::{Claims, Purpose, TokenError},
    web::{AppState, error::WebError, mail, views},
};

fn claims(state: &AppState, token: &str) -> Result<Claims, WebError> {
    let claims = state.publication.signer.verify(token, Purpose::Confirm, state.clock.now())?;
    if claims.issued.is_none() {
        // Every confirmation link says when it was made; one that does not was not made here.
        return Err(TokenError::Invalid.into());
    }
    Ok(claims)
}

pub async fn page(State(state): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, WebError> {
    let claims = claims(&state, &token)?;
    let mut ctx = state.views.context();
    ctx.insert("email", claims.email.as_str());
    ctx.insert("list", &claims.list.as_ref().map(ToString::to_string));
    ctx.insert("token", &token);
    Ok(state.views.render(views::CONFIRM, &ctx)?)
}

pub async fn confirm(State(state): State<AppState>, Path(token): Path<String>) -> Result<Html<String>, WebError> {
    let claims = claims(&state, &token)?;
    let issued = claims.issued.ok_or(WebError::Link(TokenError::Invalid))?;
    let now = state.clock.now();
    let config = &state.publication.config;
    let outcome = subscribers::confirm(config, &state.store, &claims.email, claims.list.as_ref(), issued, now).await?;
    match outcome {
        Confirmation::Stale | Confirmation::Unknown => return Err(WebError::StaleLink),
        Confirmation::Confirmed => {
            info!("subscription confirmed");
            if state.publication.config.web.welcome {
                send_welcome(&state, &claims).await;
            }
        }
        Confirmation::AlreadyActive => {}
    }
    let mut ctx = state.views.context();
    ctx.insert("email", claims.email.as_str());
    ctx.insert("already", &(outcome == Confirmation::AlreadyActive));
    Ok(state.views.render(views::CONFIRMED, &ctx)?)
}

async fn send_welcome(state: &AppState, claims: &Claims) {
    let name = match state.store.subscriber(&claims.email).await {
        Ok(s) => s.map(|s| s.name).unwrap_or_default(),
        Err(e) => {
            warn!(error = %e, "welcome email not made");
            return;
        }
    };
    match mail::welcome(&state.publication, &state.views, &claims.email, &name, state.clock.now()) {
        Ok(m) => state.postman.post(m),
        Err(e) => warn!(error = %e, "welcome email not made"),
    }
}
