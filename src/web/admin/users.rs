//! `/admin/users`, for owners alone: the users, adding one (or giving one a new role and
//! password, which ends their sessions) and removing one (their sessions end at once). An
//! owner cannot remove themselves here, so that the dashboard always keeps an owner.

use axum::{
    extract::State,
    response::Response,
    routing::{get, post},
};
use serde::{Deserialize, Serialize};

use super::{CsrfForm, Owner, SignedIn, auth, page};
use crate::{
    accounts::{self, Password},
    domain::{EmailAddress, Role},
    store::{NewAction, NewUser},
    web::{AppState, WebError, views},
};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/users", get(list)).route("/users/add", post(add)).route("/users/remove", post(remove))
}

#[derive(Serialize)]
struct UserLine {
    email: String,
    role: String,
    created_at: String,
    is_me: bool,
}

#[derive(Default, Serialize)]
struct Notice {
    ok: Option<String>,
    error: Option<String>,
}

async fn list(State(state): State<AppState>, owner: Owner) -> Result<Response, WebError> {
    render(&state, &owner, Notice::default()).await
}

async fn render(state: &AppState, who: &SignedIn, notice: Notice) -> Result<Response, WebError> {
    let tz = state.publication.config.publication.timezone;
    let users: Vec<UserLine> = state
        .store
        .users()
        .await?
        .into_iter()
        .map(|u| UserLine {
            is_me: u.email.eq_ignore_ascii_case(who.email.as_str()),
            created_at: u.created_at.with_timezone(&tz).format("%Y-%m-%d").to_string(),
            role: u.role.to_string(),
            email: u.email,
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "users");
    ctx.insert("users", &users);
    ctx.insert("roles", &Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>());
    ctx.insert("notice", &notice);
    ctx.insert("min_password", &accounts::MIN_PASSWORD_CHARS);
    page::render(state, who, views::ADMIN_USERS, ctx)
}

async fn record(state: &AppState, who: &SignedIn, action: &str, detail: &str) -> Result<(), WebError> {
    let actor = who.actor();
    let action = NewAction { actor: &actor, action, issue: None, subscriber: None, detail };
    Ok(state.store.record_action(&action, state.clock.now()).await?)
}

#[derive(Deserialize)]
struct AddForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    password: String,
}

async fn add(State(state): State<AppState>, CsrfForm { who, form }: CsrfForm<AddForm>) -> Result<Response, WebError> {
    if !who.is_owner() {
        return Ok(auth::forbidden("Only an owner of this publication can manage its users."));
    }
    let fail = |message: String| Notice { ok: None, error: Some(message) };
    let email = match form.email.trim().parse::<EmailAddress>() {
        Ok(email) => email,
        Err(e) => return render(&state, &who, fail(format!("Email address: {e}"))).await,
    };
    let role = match form.role.parse::<Role>() {
        Ok(role) => role,
        Err(e) => return render(&state, &who, fail(e.to_string())).await,
    };
    let password = match Password::new(&form.password) {
        Ok(p) => p,
        Err(e) => return render(&state, &who, fail(format!("Password: {e}"))).await,
    };
    let hash = accounts::hash(password).await.map_err(|e| WebError::BadInput(e.to_string()))?;
    let user = NewUser { email: &email, role, password_hash: &hash };
    let created = state.store.put_user(&user, state.clock.now()).await?;
    let (what, message) = if created {
        ("added a user", format!("{email} may now sign in as {role}."))
    } else {
        ("changed a user", format!("{email} is now {role}, with the new password; their sessions ended."))
    };
    record(&state, &who, what, &format!("{email} as {role}")).await?;
    render(&state, &who, Notice { ok: Some(message), error: None }).await
}

#[derive(Deserialize)]
struct RemoveForm {
    #[serde(default)]
    email: String,
}

async fn remove(
    State(state): State<AppState>,
    CsrfForm { who, form }: CsrfForm<RemoveForm>,
) -> Result<Response, WebError> {
    if !who.is_owner() {
        return Ok(auth::forbidden("Only an owner of this publication can manage its users."));
    }
    let Ok(email) = form.email.trim().parse::<EmailAddress>() else {
        return render(&state, &who, Notice { ok: None, error: Some("That is not an email address.".into()) }).await;
    };
    if email.key() == who.email.key() {
        let message = "You cannot remove yourself here; another owner can, or `gazette users remove`.";
        return render(&state, &who, Notice { ok: None, error: Some(message.into()) }).await;
    }
    let notice = if state.store.remove_user(&email).await? {
        record(&state, &who, "removed a user", email.as_str()).await?;
        Notice { ok: Some(format!("{email} removed; their sessions ended.")), error: None }
    } else {
        Notice { ok: None, error: Some(format!("{email} is not a user.")) }
    };
    render(&state, &who, notice).await
}
