//! The store: subscribers, lists, the consent record, issues and the delivery ledger. The only
//! module that speaks SQL. SQLite is the embedded default (created and migrated on first use);
//! the backend is chosen from the URL's scheme. Callers see typed values, never rows.

mod backend;
mod bounces;
mod bucket;
mod consent;
mod error;
mod feeds;
mod import;
mod issues;
mod keys;
mod ledger;
mod model;
mod postgres;
mod slots;
mod sqlite;
mod transfer;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

pub use error::StoreError;
pub use model::*;
pub use transfer::TransferReport;

use crate::domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus};

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

macro_rules! delegate {
    ($(pub async fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty;)+) => {
        impl Store {
            $(
                pub async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    match self {
                        Self::Sqlite(s) => s.$name($($arg),*).await,
                        Self::Postgres(s) => s.$name($($arg),*).await,
                    }
                }
            )+
        }
    };
}

delegate! {
    pub async fn import(&self, rows: &[NewSubscriber], source: &str, now: DateTime<Utc>) -> Result<ImportCounts, StoreError>;
    pub async fn import_stream(&self, parts: tokio::sync::mpsc::Receiver<ImportPart>, source: &str, now: DateTime<Utc>) -> Result<ImportCounts, StoreError>;
    pub async fn sync_list_stream(&self, list: &ListName, parts: tokio::sync::mpsc::Receiver<ImportPart>, now: DateTime<Utc>) -> Result<ImportCounts, StoreError>;
    pub async fn recipients_after_sync(&self, files: Vec<(ListName, tokio::sync::mpsc::Receiver<ImportPart>)>, lists: &[ListName], now: DateTime<Utc>) -> Result<(Vec<ImportCounts>, u64), StoreError>;
    pub async fn set_status(&self, email: &EmailAddress, status: SubscriberStatus, event: ConsentEvent, source: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn forget(&self, email: &EmailAddress, source: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<SubscriberRecord>, StoreError>;
    pub async fn subscribers(&self, list: Option<&ListName>, status: Option<SubscriberStatus>) -> Result<Vec<SubscriberRecord>, StoreError>;
    pub async fn list_counts(&self) -> Result<Vec<ListCounts>, StoreError>;
    pub async fn note_list_file(&self, list: &ListName, digest: &str, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn request_subscription(&self, email: &EmailAddress, name: Option<&SubscriberName>, source: &str, now: DateTime<Utc>) -> Result<Signup, StoreError>;
    pub async fn confirm_subscription(&self, email: &EmailAddress, lists: &[ListName], issued: DateTime<Utc>, source: &str, now: DateTime<Utc>) -> Result<Confirmation, StoreError>;
    pub async fn status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError>;
    pub async fn subscribers_page(&self, list: Option<&ListName>, status: Option<SubscriberStatus>, after: Option<&EmailAddress>, limit: u32) -> Result<Vec<SubscriberRecord>, StoreError>;
}

#[cfg(test)]
mod tests;
