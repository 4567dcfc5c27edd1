//! The store: subscribers, lists, the consent record, issues and the delivery ledger. The only
//! module that speaks SQL. SQLite is the embedded default (created and migrated on first use);
//! the backend is chosen from the URL's scheme. Callers see typed values, never rows.

mod backend;
mod bucket;
mod consent;
mod error;
mod feeds;
mod import;
mod keys;
mod lists;
mod model;
mod postgres;
mod signup;
mod slots;
mod sqlite;
mod subscribers;
mod transfer;

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};

pub use error::StoreError;
pub use model::*;
pub use transfer::TransferReport;

use crate::domain::ListName;

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
    pub async fn history(&self) -> Result<(u32, HashSet<String>), StoreError>;
    pub async fn first_seen(&self, identities: &[String], now: DateTime<Utc>, record: bool) -> Result<HashMap<String, DateTime<Utc>>, StoreError>;
    pub async fn unfinished_issue(&self) -> Result<Option<IssueRecord>, StoreError>;
    pub async fn create_issue(&self, issue: &NewIssue, lists: &[ListName], now: DateTime<Utc>) -> Result<IssueRecord, StoreError>;
    pub async fn issue(&self, number: u32) -> Result<Option<IssueRecord>, StoreError>;
    pub async fn issues(&self) -> Result<Vec<IssueRecord>, StoreError>;
    pub async fn failures(&self, number: u32) -> Result<Vec<Failure>, StoreError>;
    pub async fn deferred(&self, number: u32) -> Result<Vec<Deferred>, StoreError>;
    pub async fn cancel_issue(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn reopen_issue(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn finish_issue_if_done(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError>;
    pub async fn claim(&self, number: u32, owner: &str, limit: usize, now: DateTime<Utc>, lease: Duration) -> Result<Vec<Claimed>, StoreError>;
    pub async fn renew_leases(&self, owner: &str, ids: &[i64], now: DateTime<Utc>, lease: Duration) -> Result<u64, StoreError>;
    pub async fn record(&self, owner: &str, outcomes: &[Outcome], now: DateTime<Utc>) -> Result<(), StoreError>;
    pub async fn release(&self, owner: &str) -> Result<u64, StoreError>;
    pub async fn next_due(&self, number: u32) -> Result<Option<DateTime<Utc>>, StoreError>;
    pub async fn sending_issues(&self) -> Result<Vec<u32>, StoreError>;
    pub async fn ping(&self) -> Result<(), StoreError>;
    pub async fn issue_status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError>;
    pub async fn ledger_counts(&self) -> Result<LedgerCounts, StoreError>;
    pub async fn sent_issues(&self) -> Result<Vec<SentIssue>, StoreError>;
    pub async fn sent_issue(&self, number: u32) -> Result<Option<SentIssue>, StoreError>;
}

#[cfg(test)]
mod tests;
