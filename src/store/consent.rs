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
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    let Some((_, first)) = rows.first() else { return Ok(()) };
    if rows.iter().all(|(_, source)| source == first) {
        // An import's thousands of rows share one source: bound once, not once a row, which
        // costs SQLite a tenth of an import's time.
        let subscribers: Vec<i64> = rows.iter().map(|(id, _)| *id).collect();
        sqlx::query(DB::CONSENTS_FROM_ONE)
            .bind(Values(&subscribers))
            .bind(event.as_str())
            .bind(*first)
            .bind(ms(now))
            .execute(&mut **tx)
            .await?;
    } else {
        sqlx::query_with(DB::CONSENTS, DB::consents(rows, event.as_str(), ms(now))?).execute(&mut **tx).await?;
    }
    Ok(())
}
