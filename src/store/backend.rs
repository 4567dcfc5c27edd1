//! How the concern modules (`ledger`, `subscribers`, `issues`…) reach whichever database the
//! store is, and the conversions both backends share.
//!
//! A concern writes each operation once: its decisions, its statements and its row mapping.
//! [`with_backend!`] expands that code once per backend, so each expansion is plain sqlx code
//! on a concrete database type, and names the backend's module (`db`) for what differs:
//! statements whose SQL text is the backend's own (PostgreSQL's arrays and row locks, SQLite's
//! JSON lists), how a write transaction begins, and which errors are worth a second run.
//! Statements both databases read alike are written once, with `$N` placeholders, which SQLite
//! reads as numbered parameters.
//!
//! A helper several operations share is written once too, generic over the database type with
//! explicit bounds, and called on either backend's transaction. Where it needs what differs, it
//! asks [`Dialect`], which each database type implements from its backend's module, since a
//! generic function cannot name `db::`. A list of values travels as one parameter, [`Values`].

use std::{str::FromStr, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::{Database, Encode, Postgres, Sqlite, Type, encode::IsNull, error::BoxDynError};

use super::{StoreError, postgres, sqlite};

/// How many times a transaction that met a deadlock or a serialisation failure is run again.
pub(super) const RETRIES: u32 = 5;

/// Evaluates `$body` with `$pool` bound to the store's pool and `$db` to its backend's module
/// (`store::sqlite` or `store::postgres`), once per backend.
macro_rules! with_backend {
    ($store:expr, |$pool:ident, $db:ident| $body:expr) => {
        match $store {
            $crate::store::Store::Sqlite(store) => {
                #[allow(unused_imports)]
                use $crate::store::sqlite as $db;
                let $pool = &store.pool;
                $body
            }
            $crate::store::Store::Postgres(store) => {
                #[allow(unused_imports)]
                use $crate::store::postgres as $db;
                let $pool = &store.pool;
                $body
            }
        }
    };
}
pub(super) use with_backend;

/// Runs `$body` in a write transaction (`$db::begin`: SQLite takes the writer's lock at once,
/// PostgreSQL relies on row locks) with `$tx` bound to it, and commits what it returns `Ok`; an
/// `Err` rolls back. A failure the backend calls transient (PostgreSQL's deadlocks and
/// serialisation failures, which wrote nothing) runs the body again in a new transaction, a few
/// times, after a short random pause: the body must read what it decides on inside the
/// transaction, and must not consume input it cannot read again.
macro_rules! in_tx {
    ($store:expr, |$tx:ident, $db:ident| $body:block) => {
        $crate::store::backend::with_backend!($store, |pool, $db| {
            let mut attempt: u32 = 0;
            loop {
                let mut $tx = $db::begin(pool).await?;
                let result: Result<_, $crate::store::StoreError> = async { $body }.await;
                let result = match result {
                    Ok(value) => $tx.commit().await.map(|()| value).map_err($crate::store::StoreError::from),
                    Err(e) => Err(e),
                };
                match result {
                    Err(e) if attempt < $crate::store::backend::RETRIES && $db::transient(&e) => {
                        attempt += 1;
                        tokio::time::sleep($crate::store::backend::retry_pause(attempt)).await;
                    }
                    other => break other,
                }
            }
        })
    };
}
pub(super) use in_tx;

/// A failure of a transaction that cannot run again by itself, since its rows came from a stream
/// and are gone: a transient one (`transient`, the backend's) is said as such, so that the
/// publisher runs the command again, which is safe, since nothing was written.
pub(super) fn contended(e: StoreError, transient: fn(&StoreError) -> bool) -> StoreError {
    if transient(&e) { StoreError::Contended(e.to_string()) } else { e }
}

/// A short pause, longer with each attempt and random, so that two transactions that collided
/// do not collide again.
pub(super) fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(10 * u64::from(attempt) + rand::random::<u64>() % 20)
}

/// Times are stored as milliseconds since the epoch in both backends.
pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

pub(super) fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
}

/// A stored text read back as the typed value it was written from.
pub(super) fn parse<T: FromStr>(s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(e.to_string()))
}

pub(super) fn issue_number(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A count from SQL (a signed integer) as the unsigned count it is.
pub(super) fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

pub(super) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Runs one statement, atomic on its own, again after a failure `transient` calls worth a second
/// run, as [`in_tx!`] runs a transaction again: a single write needs no transaction around it.
pub(super) async fn retrying<T, F, Fut>(transient: fn(&StoreError) -> bool, mut statement: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, StoreError>>,
{
    let mut attempt = 0;
    loop {
        match statement().await {
            Err(e) if attempt < RETRIES && transient(&e) => {
                attempt += 1;
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            other => return other,
        }
    }
}

/// A list of values bound as one parameter: a JSON array on SQLite, which `json_each` reads, an
/// array on PostgreSQL, which `UNNEST` and `= ANY` read.
pub(super) struct Values<'a, T>(pub &'a [T]);

impl<T: Serialize> Type<Sqlite> for Values<'_, T> {
    fn type_info() -> <Sqlite as Database>::TypeInfo {
        <String as Type<Sqlite>>::type_info()
    }
}

impl<T: Serialize> Encode<'_, Sqlite> for Values<'_, T> {
    fn encode_by_ref(&self, buf: &mut <Sqlite as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <String as Encode<'_, Sqlite>>::encode(serde_json::to_string(self.0)?, buf)
    }
}

impl<T> Type<Postgres> for Values<'_, T>
where
    [T]: Type<Postgres>,
{
    fn type_info() -> <Postgres as Database>::TypeInfo {
        <[T] as Type<Postgres>>::type_info()
    }
}

impl<'q, T> Encode<'q, Postgres> for Values<'_, T>
where
    for<'a> &'a [T]: Encode<'q, Postgres>,
{
    fn encode_by_ref(&self, buf: &mut <Postgres as Database>::ArgumentBuffer) -> Result<IsNull, BoxDynError> {
        <&[T] as Encode<'q, Postgres>>::encode_by_ref(&self.0, buf)
    }
}

/// A subscriber an import changes: (id, name, attributes as JSON).
pub(super) type Update = (i64, String, String);
/// A subscriber an import adds: (address, name, attributes as JSON).
pub(super) type Addition<'a> = (&'a str, &'a str, String);

/// What a helper written once over the database type needs of its backend: the statements whose
/// text is the backend's own, and the arguments of those that take rows of several columns,
/// which SQLite reads as one JSON array of rows and PostgreSQL as one array a column. Each is
/// the backend module's item of the same name.
pub(super) trait Dialect: Database {
    /// Rows an import writes per statement.
    const IMPORT_CHUNK: usize;
    /// The stored rows of the addresses $1 (keys and forgotten forms), held until the end of
    /// the transaction: (id, key, name, attributes, status).
    const LOCK_SUBSCRIBERS: &'static str;
    /// Notes the addresses $1 in the stream's temporary table (`OPEN_LISTED`) and returns those
    /// it did not hold yet.
    const LIST_ADDRESSES: &'static str;
    /// Makes each [`Update`] active with its name and attributes.
    const UPDATE_SUBSCRIBERS: &'static str;
    /// Adds each [`Addition`] as active, in their order, skipping an address another
    /// transaction added first; returns (id, address) of those added.
    const INSERT_SUBSCRIBERS: &'static str;
    /// Puts each (list id, subscriber id) on its list; returns the subscriber of each one added.
    const JOIN_LISTS: &'static str;
    /// One consent event for each (subscriber, source) of [`Dialect::consents`], in their order.
    const CONSENTS: &'static str;
    /// One consent event for each subscriber of $1, in their order, all of event $2 from source
    /// $3 at $4.
    const CONSENTS_FROM_ONE: &'static str;

    fn updates(rows: &[Update], now: i64) -> Result<Self::Arguments, StoreError>;
    fn additions(rows: &[Addition<'_>], now: i64) -> Result<Self::Arguments, StoreError>;
    fn memberships(pairs: &[(i64, i64)], now: i64) -> Result<Self::Arguments, StoreError>;
    fn consents(rows: &[(i64, &str)], event: &str, now: i64) -> Result<Self::Arguments, StoreError>;
}

fn encoding(e: BoxDynError) -> StoreError {
    StoreError::Query(sqlx::Error::Encode(e))
}

impl Dialect for Sqlite {
    const IMPORT_CHUNK: usize = sqlite::IMPORT_CHUNK;
    const LOCK_SUBSCRIBERS: &'static str = sqlite::LOCK_SUBSCRIBERS;
    const LIST_ADDRESSES: &'static str = sqlite::LIST_ADDRESSES;
    const UPDATE_SUBSCRIBERS: &'static str = sqlite::UPDATE_SUBSCRIBERS;
    const INSERT_SUBSCRIBERS: &'static str = sqlite::INSERT_SUBSCRIBERS;
    const JOIN_LISTS: &'static str = sqlite::JOIN_LISTS;
    const CONSENTS: &'static str = sqlite::CONSENTS;
    const CONSENTS_FROM_ONE: &'static str = sqlite::CONSENTS_FROM_ONE;

    fn updates(rows: &[Update], now: i64) -> Result<Self::Arguments, StoreError> {
        sqlite::updates(rows, now).map_err(encoding)
    }

    fn additions(rows: &[Addition<'_>], now: i64) -> Result<Self::Arguments, StoreError> {
        sqlite::additions(rows, now).map_err(encoding)
    }

    fn memberships(pairs: &[(i64, i64)], now: i64) -> Result<Self::Arguments, StoreError> {
        sqlite::memberships(pairs, now).map_err(encoding)
    }

    fn consents(rows: &[(i64, &str)], event: &str, now: i64) -> Result<Self::Arguments, StoreError> {
        sqlite::consents(rows, event, now).map_err(encoding)
    }
}

impl Dialect for Postgres {
    const IMPORT_CHUNK: usize = postgres::IMPORT_CHUNK;
    const LOCK_SUBSCRIBERS: &'static str = postgres::LOCK_SUBSCRIBERS;
    const LIST_ADDRESSES: &'static str = postgres::LIST_ADDRESSES;
    const UPDATE_SUBSCRIBERS: &'static str = postgres::UPDATE_SUBSCRIBERS;
    const INSERT_SUBSCRIBERS: &'static str = postgres::INSERT_SUBSCRIBERS;
    const JOIN_LISTS: &'static str = postgres::JOIN_LISTS;
    const CONSENTS: &'static str = postgres::CONSENTS;
    const CONSENTS_FROM_ONE: &'static str = postgres::CONSENTS_FROM_ONE;

    fn updates(rows: &[Update], now: i64) -> Result<Self::Arguments, StoreError> {
        postgres::updates(rows, now).map_err(encoding)
    }

    fn additions(rows: &[Addition<'_>], now: i64) -> Result<Self::Arguments, StoreError> {
        postgres::additions(rows, now).map_err(encoding)
    }

    fn memberships(pairs: &[(i64, i64)], now: i64) -> Result<Self::Arguments, StoreError> {
        postgres::memberships(pairs, now).map_err(encoding)
    }

    fn consents(rows: &[(i64, &str)], event: &str, now: i64) -> Result<Self::Arguments, StoreError> {
        postgres::consents(rows, event, now).map_err(encoding)
    }
}
