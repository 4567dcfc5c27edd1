//! The consent record: every change of a subscriber's standing, with its source and time.

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, QueryBuilder, Transaction, Type};

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

/// Rows one statement of [`record_each`] inserts at most: four values each, well inside both
/// backends' limits on bound values.
const MANY: usize = 1000;

/// Records `event` for each subscriber of `rows`, each with its own source, inside `tx`: one
/// statement for a thousand of them.
pub(super) async fn record_each<DB>(
    tx: &mut Transaction<'static, DB>,
    rows: &[(i64, &str)],
    event: ConsentEvent,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB> + Default,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
{
    for chunk in rows.chunks(MANY) {
        let mut insert = QueryBuilder::<DB>::new("INSERT INTO consent_events (subscriber_id, event, source, at) ");
        insert.push_values(chunk, |mut row, (subscriber, source)| {
            row.push_bind(*subscriber).push_bind(event.as_str()).push_bind(*source).push_bind(ms(now));
        });
        insert.build().execute(&mut **tx).await?;
    }
    Ok(())
}

/// Records `event` for each of `subscribers`, in that order, all from `source`, inside `tx`: one
/// statement however many they are.
pub(super) async fn record_many<DB>(
    tx: &mut Transaction<'static, DB>,
    subscribers: &[i64],
    event: ConsentEvent,
    source: &str,
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
    if subscribers.is_empty() {
        return Ok(());
    }
    sqlx::query(DB::CONSENTS)
        .bind(Values(subscribers))
        .bind(event.as_str())
        .bind(source)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}
