//! The dashboard's users and their sessions. A user is found by the address's key (lower case);
//! their password is kept only as the hash `accounts` made. A session is found by the digest of
//! its token (the cookie's value never reaches the database) and ends when its user is removed,
//! their password replaced, or it is signed out; when it expires is the web's decision, made
//! from the times kept here.

use chrono::{DateTime, Utc};

use super::{
    Store, StoreError,
    backend::{from_ms, in_tx, ms, parse, with_backend},
};
use crate::domain::{EmailAddress, Role};

const USER_ID: &str = "SELECT id FROM users WHERE email_key = $1";
const INSERT_USER: &str =
    "INSERT INTO users (email, email_key, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5)";
const UPDATE_USER: &str = "UPDATE users SET email = $1, role = $2, password_hash = $3 WHERE id = $4";
const USER: &str = "SELECT email, role, password_hash, created_at FROM users WHERE email_key = $1";
const USERS: &str = "SELECT email, role, password_hash, created_at FROM users ORDER BY email_key";
const END_USER_SESSIONS: &str = "DELETE FROM sessions WHERE user_id = $1";
const DELETE_USER: &str = "DELETE FROM users WHERE id = $1";
const PRUNE_SESSIONS: &str = "DELETE FROM sessions WHERE expires_at <= $1";
const START_SESSION: &str = "INSERT INTO sessions (token_digest, user_id, csrf, created_at, seen_at, expires_at) \
     VALUES ($1, (SELECT id FROM users WHERE email_key = $2), $3, $4, $4, $5)";
const SESSION: &str = "SELECT u.email, u.role, s.csrf, s.created_at, s.seen_at, s.expires_at FROM sessions s \
     JOIN users u ON u.id = s.user_id WHERE s.token_digest = $1";
const TOUCH_SESSION: &str = "UPDATE sessions SET seen_at = $2 WHERE token_digest = $1";
const END_SESSION: &str = "DELETE FROM sessions WHERE token_digest = $1";

/// A user to add, or whose role and password to replace.
#[derive(Debug, Clone)]
pub struct NewUser<'a> {
    pub email: &'a EmailAddress,
    pub role: Role,
    /// The Argon2id PHC string `accounts` made.
    pub password_hash: &'a str,
}

/// A dashboard user as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub email: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

impl std::fmt::Debug for UserRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserRecord")
            .field("email", &self.email)
            .field("role", &self.role)
            .field("created_at", &self.created_at)
            .finish_non_exhaustive()
    }
}

/// A session to start.
#[derive(Debug, Clone)]
pub struct NewSession<'a> {
    /// The digest of the cookie's token, never the token.
    pub token_digest: &'a str,
    pub email: &'a EmailAddress,
    pub csrf: &'a str,
    /// When it ends whatever happens.
    pub expires_at: DateTime<Utc>,
}

/// A session as stored, with its user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub email: String,
    pub role: Role,
    pub csrf: String,
    pub created_at: DateTime<Utc>,
    pub seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct UserRow {
    email: String,
    role: String,
    password_hash: String,
    created_at: i64,
}

impl TryFrom<UserRow> for UserRecord {
    type Error = StoreError;

    fn try_from(r: UserRow) -> Result<Self, StoreError> {
        Ok(Self {
            email: r.email,
            role: parse(&r.role)?,
            password_hash: r.password_hash,
            created_at: from_ms(r.created_at),
        })
    }
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    email: String,
    role: String,
    csrf: String,
    created_at: i64,
    seen_at: i64,
    expires_at: i64,
}

impl TryFrom<SessionRow> for SessionRecord {
    type Error = StoreError;

    fn try_from(r: SessionRow) -> Result<Self, StoreError> {
        Ok(Self {
            email: r.email,
            role: parse(&r.role)?,
            csrf: r.csrf,
            created_at: from_ms(r.created_at),
            seen_at: from_ms(r.seen_at),
            expires_at: from_ms(r.expires_at),
        })
    }
}

impl Store {
    /// Adds a user, or replaces the role and password of the one with this address (whose
    /// sessions then end, as a new password should end them). Whether the user is new.
    pub async fn put_user(&self, user: &NewUser<'_>, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let key = user.email.key();
        in_tx!(self, |tx, db| {
            let id: Option<i64> = sqlx::query_scalar(USER_ID).bind(key.as_str()).fetch_optional(&mut *tx).await?;
            match id {
                Some(id) => {
                    sqlx::query(UPDATE_USER)
                        .bind(user.email.as_str())
                        .bind(user.role.as_str())
                        .bind(user.password_hash)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query(END_USER_SESSIONS).bind(id).execute(&mut *tx).await?;
                    Ok(false)
                }
                None => {
                    sqlx::query(INSERT_USER)
                        .bind(user.email.as_str())
                        .bind(key.as_str())
                        .bind(user.role.as_str())
                        .bind(user.password_hash)
                        .bind(ms(now))
                        .execute(&mut *tx)
                        .await?;
                    Ok(true)
                }
            }
        })
    }

    /// The user with this address, whatever the case of its letters.
    pub async fn user(&self, email: &EmailAddress) -> Result<Option<UserRecord>, StoreError> {
        let key = email.key();
        let row: Option<UserRow> =
            with_backend!(self, |pool, db| sqlx::query_as(USER).bind(key.as_str()).fetch_optional(pool).await?);
        row.map(UserRecord::try_from).transpose()
    }

    /// Every user, by address.
    pub async fn users(&self) -> Result<Vec<UserRecord>, StoreError> {
        let rows: Vec<UserRow> = with_backend!(self, |pool, db| sqlx::query_as(USERS).fetch_all(pool).await?);
        rows.into_iter().map(UserRecord::try_from).collect()
    }

    /// Removes the user with this address and ends their sessions at once. Whether there was one.
    pub async fn remove_user(&self, email: &EmailAddress) -> Result<bool, StoreError> {
        let key = email.key();
        in_tx!(self, |tx, db| {
            let id: Option<i64> = sqlx::query_scalar(USER_ID).bind(key.as_str()).fetch_optional(&mut *tx).await?;
            let Some(id) = id else { return Ok(false) };
            sqlx::query(END_USER_SESSIONS).bind(id).execute(&mut *tx).await?;
            sqlx::query(DELETE_USER).bind(id).execute(&mut *tx).await?;
            Ok(true)
        })
    }

    /// Starts a session for the user `session.email` at `now`, and forgets those that have
    /// ended by then, so that the table holds only live sessions and a few idle ones.
    pub async fn start_session(&self, session: &NewSession<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let key = session.email.key();
        in_tx!(self, |tx, db| {
            sqlx::query(PRUNE_SESSIONS).bind(ms(now)).execute(&mut *tx).await?;
            sqlx::query(START_SESSION)
                .bind(session.token_digest)
                .bind(key.as_str())
                .bind(session.csrf)
                .bind(ms(now))
                .bind(ms(session.expires_at))
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// The session whose token has this digest, with its user; none once it ended.
    pub async fn session(&self, token_digest: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row: Option<SessionRow> =
            with_backend!(self, |pool, db| sqlx::query_as(SESSION).bind(token_digest).fetch_optional(pool).await?);
        row.map(SessionRecord::try_from).transpose()
    }

    /// Notes that the session was used at `now` (its idle time starts again).
    pub async fn touch_session(&self, token_digest: &str, now: DateTime<Utc>) -> Result<(), StoreError> {
        with_backend!(self, |pool, db| sqlx::query(TOUCH_SESSION)
            .bind(token_digest)
            .bind(ms(now))
            .execute(pool)
            .await
            .map(drop)?);
        Ok(())
    }

    /// Ends the session whose token has this digest.
    pub async fn end_session(&self, token_digest: &str) -> Result<(), StoreError> {
        with_backend!(self, |pool, db| sqlx::query(END_SESSION).bind(token_digest).execute(pool).await.map(drop)?);
        Ok(())
    }
}
