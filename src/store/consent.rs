//! The consent record: every change of a subscriber's standing, with its source and time.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};

use super::{
    ConsentEvent, StoreError,
    backend::{Dialect, Values, ms},
};

const ONE: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) VALUES ($1, $2, $3, $4)";

/// Records `event` for `subscriber` (none: the address was not stored) inside `tx`.
pub(super) async fn record<DB>(
    tx: &mut Transaction<'static, DB>,
    subscriber: Option<i64>,
    event: ConsentEvent,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(ONE).bind(subscriber).bind(event.as_str()).bind(source).bind(ms(now)).execute(&mut **tx).await?;
    Ok(())
}

/// Records `event` for each subscriber of `rows`, each with its own source, in that order,
/// inside `tx`: one statement however many they are, with the same text whatever their number,
/// so PostgreSQL plans it once.
pub(super) async fn record_many<DB>(
    tx: &mut Transaction<'static, DB>,
    rows: &[(i64, &str)],
    event: ConsentEvent,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a, 'q> Values<'a, i64>: Encode<'q, DB> + Type<DB>,
    for<'a, 'q> Values<'a, String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    if rows.is_empty() {
        return Ok(());
    }
    let (subscribers, sources): (Vec<i64>, Vec<String>) =
        rows.iter().map(|(id, source)| (*id, (*source).to_owned())).unzip();
    sqlx::query(DB::CONSENTS)
        .bind(Values(&subscribers))
        .bind(event.as_str())
        .bind(Values(&sources))
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
