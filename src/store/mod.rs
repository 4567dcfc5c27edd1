//! The store: subscribers, lists, the consent record, issues and the delivery ledger. The only
//! module that speaks SQL. SQLite is the embedded default (created and migrated on first use);
//! the backend is chosen from the URL's scheme. Callers see typed values, never rows.

mod actions;
mod backend;
mod bounces;
mod bucket;
mod consent;
mod error;
mod feeds;
mod figures;
mod guard;
mod import;
mod issues;
mod keys;
mod ledger;
mod lists;
mod model;
mod postgres;
pub mod preferences;
mod review;
mod signup;
mod slots;
mod sqlite;
mod subscribers;
mod transfer;
mod users;
mod variants;
mod webhooks;

pub use actions::{ActionRecord, NewAction};
pub use error::StoreError;
pub use figures::{FailureReason, MAX_POINTS, ReportReason, SubscriberDay, TimePoint, Timeline};
pub use guard::{CameBack, MIN_SENT, Standing};
pub use issues::FIRST_CHUNK;
pub use model::*;
pub use review::{AtSlot, Revision};
pub use transfer::TransferReport;
pub use users::{NewSession, NewUser, SessionRecord, UserRecord};

/// A store of one publication.
#[derive(Debug, Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// How a store is opened, beyond its URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections to a PostgreSQL server at most (`[storage] pool_size`); SQLite keeps its own
    /// three, since it has one writer at a time whatever the number.
    pub pool_size: u32,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self { pool_size: 10 }
    }
}

impl Store {
    /// Opens (creating and migrating when needed) the store at `url`.
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        Self::open_with(url, StoreOptions::default()).await
    }

    /// Answers when the database does, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        backend::with_backend!(self, |pool, db| sqlx::query("SELECT 1").execute(pool).await.map(drop)?);
        Ok(())
    }

    /// Opens the store at `url` with `options`.
    pub async fn open_with(url: &str, options: StoreOptions) -> Result<Self, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Self::Sqlite(sqlite::SqliteStore::open(url).await?))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Self::Postgres(postgres::PgStore::open(url, options.pool_size).await?))
        } else {
            Err(StoreError::Unsupported(format!(
                "`{}` is not a database URL; write sqlite://gazette.db or postgres://user@host/database",
                url.split(['/', '@']).next().unwrap_or_default()
            )))
        }
    }
}

#[cfg(test)]
mod tests;
