//! The PostgreSQL store: the same schema and behaviour as the SQLite one, for more than one
//! machine. Workers claim deliveries with `FOR UPDATE SKIP LOCKED` under a lease committed before
//! any sending; where SQLite serialises writers with `BEGIN IMMEDIATE`, this store uses row locks,
//! `ON CONFLICT` and, for imports, a transaction-scoped advisory lock, and runs a transaction
//! again when PostgreSQL reports a deadlock or a serialisation failure.
//!
//! The hot statements are constants so that the index test (`tests.rs`) explains the very text
//! this store runs.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    str::FromStr,
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::{
    ConnectOptions, Connection, Encode, PgConnection, PgPool, Postgres, Row, Type,
    postgres::{PgArguments, PgConnectOptions, PgHasArrayType, PgPoolOptions, PgRow},
};

use super::{
    Confirmation, ConsentEvent, ImportCounts, ImportPart, ListCounts, NewSubscriber, Signup, StoreError,
    SubscriberRecord, import, keys,
};
use crate::domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus};

mod tls;

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How often a transaction that lost a deadlock or a serialisation conflict is run again.
const RETRIES: u32 = 5;

/// Rows written per statement by imports: big enough that a million rows take a few hundred
/// statements, small enough that the arrays stay a few megabytes.
const IMPORT_CHUNK: usize = 5000;

/// The advisory lock imports and list syncs take in turn, as they do under SQLite's write lock:
/// two of them at once would only wait on each other's rows.
const IMPORT_LOCK: i64 = 0x6761_7a65_7474_6501;

// The hot statements, in the words the index test explains.

/// Takes up to $5 due, unleased deliveries of issue $3 for owner $1 until $2 ($4 is now).
pub(super) const CLAIM: &str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM deliveries WHERE issue_number = $3 AND state IN ('queued', 'deferred') \
                  AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until < $4) \
                  LIMIT $5 FOR UPDATE SKIP LOCKED) \
     RETURNING id, subscriber_id, attempts";
/// The claimed deliveries' subscribers.
pub(super) const CLAIM_PEOPLE: &str =
    "SELECT id, email, name, attributes, status FROM subscribers WHERE id = ANY($1::bigint[])";
/// Claimed deliveries whose subscriber left since the issue was queued.
pub(super) const SKIP_LEFT: &str = "UPDATE deliveries AS d SET state = 'skipped', last_reply = u.reply, \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 \
     FROM UNNEST($2::bigint[], $3::text[]) AS u(id, reply) WHERE d.id = u.id";
pub(super) const RENEW_LEASES: &str = "UPDATE deliveries SET lease_until = $1 \
     WHERE id = ANY($2::bigint[]) AND lease_owner = $3 AND state IN ('queued', 'deferred')";
pub(super) const RECORD_SENT: &str = "UPDATE deliveries AS d SET state = 'sent', attempts = d.attempts + 1, \
     message_id = u.message_id, last_reply = u.reply, sent_at = $1, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS u(id, message_id, reply) WHERE d.id = u.id";
pub(super) const RECORD_DEFERRED: &str = "UPDATE deliveries AS d SET state = 'deferred', attempts = d.attempts + 1, \
     last_reply = u.reply, next_attempt_at = u.retry_at, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[], $4::bigint[]) AS u(id, reply, retry_at) \
     WHERE d.id = u.id AND d.lease_owner = $5 AND d.state <> 'sent'";
pub(super) const RECORD_FAILED: &str = "UPDATE deliveries AS d SET state = 'failed', attempts = d.attempts + 1, \
     last_reply = u.reply, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[]) AS u(id, reply) WHERE d.id = u.id AND d.state <> 'sent'";
pub(super) const RECORD_BOUNCES: &str = "UPDATE subscribers SET status = 'bounced', updated_at = $1 \
     WHERE id = ANY($2::bigint[]) AND status = 'active' RETURNING id";
pub(super) const RECORD_RELEASED: &str = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
     WHERE id = ANY($1::bigint[]) AND lease_owner = $2";
/// The earliest moment a delivery of issue $1 can be claimed: min over the deliveries still to
/// send of max(next_attempt_at, lease_until), written as two index walks that each stop early.
pub(super) const NEXT_DUE: &str = "SELECT LEAST( \
     (SELECT min(next_attempt_at) FROM deliveries WHERE issue_number = $1 AND state IN ('queued', 'deferred') \
      AND (lease_until IS NULL OR lease_until <= next_attempt_at)), \
     (SELECT min(lease_until) FROM deliveries WHERE issue_number = $1 AND state IN ('queued', 'deferred') \
      AND lease_until > next_attempt_at))";
/// The members of list $1 the list file no longer names.
pub(super) const SYNC_REMOVE: &str = "DELETE FROM memberships m WHERE m.list_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM subscribers s JOIN listed k ON k.email = lower(s.email) WHERE s.id = m.subscriber_id)";
/// One delivery per active subscriber of the lists $3 (one for someone on two of them).
pub(super) const QUEUE_ISSUE: &str = "INSERT INTO deliveries (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at) \
     SELECT $1, s.id, 'queued', 0, $2, $2 FROM subscribers s WHERE s.status = 'active' \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name = ANY($3::text[])) \
     ORDER BY s.id";
/// How many deliveries `QUEUE_ISSUE` would queue for the lists $1.
pub(super) const COUNT_RECIPIENTS: &str = "SELECT count(*) FROM subscribers s WHERE s.status = 'active' \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name = ANY($1::text[]))";
pub(super) const SUBSCRIBER_BY_EMAIL: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) \
     FROM subscribers s WHERE lower(s.email) = $1";
/// One subscriber, locked until the transaction ends: the web's sign-ups, confirmations and
/// unsubscriptions of one address take their turn.
pub(super) const LOCK_SUBSCRIBER: &str = "SELECT id, status FROM subscribers WHERE lower(email) = $1 FOR UPDATE";
/// The rows an import chunk may touch (addresses and their forgotten forms), locked in id order
/// so that two writers never wait on each other in a circle.
pub(super) const LOCK_SUBSCRIBERS: &str = "SELECT id, lower(email), name, attributes, status FROM subscribers \
     WHERE lower(email) = ANY($1::text[]) ORDER BY id FOR UPDATE";
/// Sign-up requests to one mailbox in the last day; older ones are dropped first.
pub(super) const PRUNE_SIGNUPS: &str = "DELETE FROM signup_requests WHERE at <= $1";
pub(super) const RECENT_SIGNUPS: &str = "SELECT count(*) FROM signup_requests WHERE mailbox = $1 AND at > $2";
pub(super) const RECORD_SIGNUP: &str = "INSERT INTO signup_requests (mailbox, at) VALUES ($1, $2)";
pub(super) const LEFT_SINCE: &str = "SELECT count(*) FROM consent_events WHERE subscriber_id = $1 \
     AND event IN ('unsubscribe', 'bounce', 'complaint', 'forget') AND at >= $2";

const INSERT_SUBSCRIBERS: &str = "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
     SELECT u.email, u.name, u.attributes, 'active', $4, $4 \
     FROM UNNEST($1::text[], $2::text[], $3::text[]) AS u(email, name, attributes) ORDER BY u.email \
     ON CONFLICT (lower(email)) DO NOTHING RETURNING id, email";
const UPDATE_SUBSCRIBERS: &str = "UPDATE subscribers AS s SET name = u.name, attributes = u.attributes, \
     status = 'active', updated_at = $4 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(id, name, attributes) \
     WHERE s.id = u.id";
const JOIN_LISTS: &str = "INSERT INTO memberships (list_id, subscriber_id, created_at) \
     SELECT u.list_id, u.subscriber_id, $3 FROM UNNEST($1::bigint[], $2::bigint[]) AS u(list_id, subscriber_id) \
     ORDER BY u.list_id, u.subscriber_id ON CONFLICT DO NOTHING RETURNING subscriber_id";
const CONSENT_MANY: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT u.id, $1, u.source, $2 FROM UNNEST($3::bigint[], $4::text[]) AS u(id, source)";
const SUBSCRIBERS: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) \
     FROM subscribers s WHERE s.email NOT LIKE 'forgotten:%' \
     AND ($1::text IS NULL OR s.status = $1) \
     AND ($2::text IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                      WHERE m.subscriber_id = s.id AND l.name = $2)) \
     ORDER BY s.id";
/// The admin API's pages of subscribers, in address order from after $1. The email column
/// sorts bytewise (COLLATE "C"), as SQLite does, so pages end and resume at the same addresses on
/// both backends, and its unique index serves the order.
pub(super) const SUBSCRIBERS_PAGE: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) \
     FROM subscribers s WHERE s.email > $1 AND s.email NOT LIKE 'forgotten:%' \
     AND ($2::text IS NULL OR s.status = $2) \
     AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                      WHERE m.subscriber_id = s.id AND l.name = $3)) \
     ORDER BY s.email LIMIT $4";

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn parse<T: FromStr>(s: &str) -> Result<T, StoreError>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e: T::Err| StoreError::Corrupt(e.to_string()))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The articles (identities $2) issue $1 carried.
pub(super) const CARRY_ARTICLES: &str = "INSERT INTO issue_articles (issue_number, identity) \
     SELECT $1, u.identity FROM UNNEST($2::text[]) AS u(identity) ON CONFLICT DO NOTHING";
/// Notes the articles $1 as first seen at $2, unless they were seen before.
pub(super) const NOTE_FIRST_SEEN: &str = "INSERT INTO article_first_seen (identity, first_seen) \
     SELECT u.identity, $2 FROM UNNEST($1::text[]) AS u(identity) ON CONFLICT DO NOTHING";
pub(super) const FIRST_SEEN: &str =
    "SELECT identity, first_seen FROM article_first_seen WHERE identity = ANY($1::text[])";

/// A list of texts as one parameter: a PostgreSQL array.
pub(super) fn texts<S: AsRef<str>>(v: &[S]) -> Result<Vec<&str>, StoreError> {
    Ok(v.iter().map(AsRef::as_ref).collect())
}

/// A rate bucket's numbers, locked until the transaction ends.
/// A subscriber's status, locked until the transaction ends: two reports about one reader
/// decide one after the other, each counting the other's bounce.
pub(super) const LOCK_SUBSCRIBER_ID: &str = "SELECT status FROM subscribers WHERE id = $1 FOR UPDATE";
pub(super) const LOCK_BUCKET: &str = "SELECT tokens, updated_at FROM rate_buckets WHERE name = $1 FOR UPDATE";

/// Begins a transaction; row locks and `ON CONFLICT` keep writers apart.
pub(super) async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    Ok(pool.begin().await?)
}

/// A deadlock or a serialisation failure: nothing was written, and the same transaction run
/// again will most likely go through.
pub(super) fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Query(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

type PgQuery<'q> = sqlx::query::Query<'q, Postgres, PgArguments>;

/// A batch of rows as PostgreSQL's statements take it: one array per column, which `UNNEST`
/// joins again, so that a statement's text (and plan) is the same whatever the batch's length.
pub(super) trait Columns: Sized {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q>;
}

impl Columns for i64 {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q> {
        query.bind(rows)
    }
}

/// What a column's values must be for an array of them to be bound. The lifetime is the values'
/// own: asking for every lifetime would ask borrowed text to live forever.
pub(super) trait Value<'v>: Clone + Encode<'v, Postgres> + Type<Postgres> + PgHasArrayType {}

impl<'v, T: Clone + Encode<'v, Postgres> + Type<Postgres> + PgHasArrayType> Value<'v> for T {}

fn column<'q, 'v, R, T: Value<'v>>(query: PgQuery<'q>, rows: &[R], field: impl Fn(&R) -> T) -> PgQuery<'q> {
    let values: Vec<T> = rows.iter().map(field).collect();
    // As a slice: a `Vec`'s encoding asks its borrowed values to live forever.
    query.bind(values.as_slice())
}

impl<'v, A: Value<'v>, B: Value<'v>> Columns for (A, B) {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q> {
        let query = column(query, rows, |r| r.0.clone());
        column(query, rows, |r| r.1.clone())
    }
}

impl<'v, A: Value<'v>, B: Value<'v>, C: Value<'v>> Columns for (A, B, C) {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q> {
        let query = column(query, rows, |r| r.0.clone());
        let query = column(query, rows, |r| r.1.clone());
        column(query, rows, |r| r.2.clone())
    }
}

/// Binds `rows` as the next parameters of `query`, a column each.
pub(super) fn bind_rows<'q, R: Columns>(query: PgQuery<'q>, rows: &[R]) -> Result<PgQuery<'q>, StoreError> {
    Ok(R::bind(query, rows))
}

/// A deadlock or serialisation failure in a transaction that cannot be run again by itself (its
/// rows came from a stream and are gone): said as such, so that the publisher runs it again.
fn contended(e: StoreError) -> StoreError {
    if transient(&e) { StoreError::Contended(e.to_string()) } else { e }
}

/// Makes the list's members exactly the rows that arrive, inside `conn`'s transaction.
async fn sync_list(
    conn: &mut PgConnection,
    list: &ListName,
    parts: tokio::sync::mpsc::Receiver<ImportPart>,
    now: DateTime<Utc>,
) -> Result<ImportCounts, StoreError> {
    // The file's addresses, kept by the server rather than in memory; one table for every file
    // a transaction syncs.
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT COLLATE \"C\" PRIMARY KEY) ON COMMIT DROP")
        .execute(&mut *conn)
        .await?;
    sqlx::query("TRUNCATE listed").execute(&mut *conn).await?;
    let source = format!("list file {list}");
    let mut counts = take_rows(conn, parts, Some(list), &source, now).await.map_err(contended)?;
    let list_id = list_id(conn, list, &mut ListIds::new()).await?;
    // Statistics for the anti-join below: the table is new, and PostgreSQL would otherwise
    // guess its size.
    sqlx::query("ANALYZE listed").execute(&mut *conn).await?;
    counts.removed = sqlx::query(SYNC_REMOVE)
        .bind(list_id)
        .execute(&mut *conn)
        .await
        .map_err(|e| contended(e.into()))?
        .rows_affected();
    Ok(counts)
}

/// Upserts the rows that arrive until `End`. For a list file (`listed`), every row is put on the
/// list and its address into the temporary table `listed`.
async fn take_rows(
    conn: &mut PgConnection,
    mut parts: tokio::sync::mpsc::Receiver<ImportPart>,
    listed: Option<&ListName>,
    source: &str,
    now: DateTime<Utc>,
) -> Result<ImportCounts, StoreError> {
    let mut counts = ImportCounts::default();
    let mut ids = ListIds::new();
    while let Some(part) = parts.recv().await {
        let ImportPart::Rows(mut rows) = part else { return Ok(counts) };
        if let Some(list) = listed {
            import::put_on(&mut rows, list);
        }
        upsert(conn, &rows, source, now, &mut counts, &mut ids).await?;
        if listed.is_some() {
            let emails: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
            sqlx::query("INSERT INTO listed (email) SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING")
                .bind(&emails)
                .execute(&mut *conn)
                .await?;
        }
    }
    Err(StoreError::InputEnded)
}

fn database_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Runs `$body` in a transaction on `$store`'s pool, with `$tx` bound to it, and commits what
/// it returns `Ok`; an `Err` rolls back. A deadlock or serialisation failure (which wrote
/// nothing) runs the body again in a new transaction, a few times, after a short random pause.
macro_rules! in_tx {
    ($store:expr, |$tx:ident| $body:block) => {{
        let mut attempt: u32 = 0;
        loop {
            let mut $tx = $store.pool.begin().await?;
            let result: Result<_, StoreError> = async { $body }.await;
            let result = match result {
                Ok(value) => $tx.commit().await.map(|()| value).map_err(StoreError::from),
                Err(e) => Err(e),
            };
            match result {
                Err(e) if attempt < RETRIES && transient(&e) => {
                    attempt += 1;
                    tokio::time::sleep(retry_pause(attempt)).await;
                }
                other => break other,
            }
        }
    }};
}

fn retry_pause(attempt: u32) -> Duration {
    Duration::from_millis(10 * u64::from(attempt) + rand::random::<u64>() % 20)
}

impl PgStore {
    /// Connects with at most `pool_size` connections, creating the database when it does not
    /// exist yet and migrating it.
    pub async fn open(url: &str, pool_size: u32) -> Result<Self, StoreError> {
        let mut options = PgConnectOptions::from_str(url)
            .map_err(StoreError::Open)?
            .application_name("gazette")
            // Queuing an issue is one long statement by design; sqlx would warn of it.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        // Under the default plan cache mode, PostgreSQL plans the ledger's writes anew on every
        // run: a custom plan for a 3-element array always looks cheaper than the generic one,
        // which assumes 100 elements. That planning was a fifth of the server's CPU. Every
        // predicate gazette passes as a parameter is a key or a time, never one a partial index
        // depends on, and the index test checks the generic plans of the hot statements. A
        // `plan_cache_mode` in the URL's options is the publisher's and is kept.
        if !options.get_options().is_some_and(|o| o.contains("plan_cache_mode")) {
            options = options.options([("plan_cache_mode", "force_generic_plan")]);
        }
        let options = tls::configure(url, options).await?;
        migrate(&options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size.max(1))
            .acquire_timeout(Duration::from_secs(30))
            // A ping before every checkout doubles the round trips of the ledger's small,
            // frequent writes; a connection the server dropped fails its statement instead, and
            // the engine retries.
            .test_before_acquire(false)
            .connect_with(options)
            .await
            .map_err(tls::opening)?;
        Ok(Self { pool })
    }

    pub async fn import(
        &self,
        rows: &[NewSubscriber],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        in_tx!(self, |tx| {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(IMPORT_LOCK).execute(&mut *tx).await?;
            let mut counts = ImportCounts::default();
            upsert(&mut tx, rows, source, now, &mut counts, &mut ListIds::new()).await?;
            Ok(counts)
        })
    }

    /// Imports rows as they arrive, in one transaction, committed at `End`. Unlike `import`, it
    /// cannot run again after a deadlock, since the rows are gone: it says to run the command
    /// again, which is safe, because nothing was written.
    pub async fn import_stream(
        &self,
        parts: tokio::sync::mpsc::Receiver<ImportPart>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(IMPORT_LOCK).execute(&mut *tx).await?;
        let counts = take_rows(&mut tx, parts, None, source, now).await.map_err(contended)?;
        tx.commit().await.map_err(|e| contended(e.into()))?;
        Ok(counts)
    }

    /// Makes the list's members exactly the rows that arrive (adding, updating, and removing
    /// memberships the file no longer names), in one transaction committed at `End`. Never
    /// brings back an address that left. Like `import_stream`, it cannot run again by itself.
    pub async fn sync_list_stream(
        &self,
        list: &ListName,
        parts: tokio::sync::mpsc::Receiver<ImportPart>,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(IMPORT_LOCK).execute(&mut *tx).await?;
        let counts = sync_list(&mut tx, list, parts, now).await?;
        tx.commit().await.map_err(|e| contended(e.into()))?;
        Ok(counts)
    }

    /// How many subscribers an issue to `lists` would be queued for once each list file had been
    /// synced: the syncs of `files` made as `sync_list_stream` makes them, then the count, in one
    /// transaction that is rolled back, so nothing changes.
    pub async fn recipients_after_sync(
        &self,
        files: Vec<(ListName, tokio::sync::mpsc::Receiver<ImportPart>)>,
        lists: &[ListName],
        now: DateTime<Utc>,
    ) -> Result<(Vec<ImportCounts>, u64), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(IMPORT_LOCK).execute(&mut *tx).await?;
        let mut synced = Vec::with_capacity(files.len());
        for (list, parts) in files {
            synced.push(sync_list(&mut tx, &list, parts, now).await?);
        }
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        let recipients: i64 = sqlx::query_scalar(COUNT_RECIPIENTS).bind(&names).fetch_one(&mut *tx).await?;
        tx.rollback().await?;
        Ok((synced, count(recipients)))
    }

    pub async fn set_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        event: ConsentEvent,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        in_tx!(self, |tx| {
            let row = sqlx::query(LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(false) };
            let id: i64 = row.get(0);
            let current: SubscriberStatus = parse(row.get::<&str, _>(1))?;
            if current == status {
                return Ok(false);
            }
            sqlx::query("UPDATE subscribers SET status = $1, updated_at = $2 WHERE id = $3")
                .bind(status.as_str())
                .bind(ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            consent(&mut tx, id, event, source, now).await?;
            Ok(true)
        })
    }

    pub async fn forget(&self, email: &EmailAddress, source: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        in_tx!(self, |tx| {
            let row = sqlx::query(LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(false) };
            let id: i64 = row.get(0);
            sqlx::query(
                "UPDATE subscribers SET email = $1, name = '', attributes = '{}', status = 'unsubscribed', updated_at = $2 \
                 WHERE id = $3",
            )
            .bind(keys::forgotten(email))
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM memberships WHERE subscriber_id = $1").bind(id).execute(&mut *tx).await?;
            consent(&mut tx, id, ConsentEvent::Forget, source, now).await?;
            Ok(true)
        })
    }

    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<SubscriberRecord>, StoreError> {
        let row = sqlx::query(SUBSCRIBER_BY_EMAIL).bind(email.key()).fetch_optional(&self.pool).await?;
        row.as_ref().map(subscriber_row).transpose()
    }

    pub async fn subscribers(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        sqlx::query(SUBSCRIBERS)
            .bind(status.map(SubscriberStatus::as_str))
            .bind(list.map(AsRef::<str>::as_ref))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(subscriber_row)
            .collect()
    }

    /// One page of subscribers in address order: at most `limit`, each after `after`.
    pub async fn subscribers_page(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
        after: Option<&EmailAddress>,
        limit: u32,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        sqlx::query(SUBSCRIBERS_PAGE)
            .bind(after.map_or("", EmailAddress::as_str))
            .bind(status.map(SubscriberStatus::as_str))
            .bind(list.map(AsRef::<str>::as_ref))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(subscriber_row)
            .collect()
    }

    pub async fn list_counts(&self) -> Result<Vec<ListCounts>, StoreError> {
        let rows = sqlx::query(
            "SELECT l.name, s.status, count(s.id) FROM lists l \
             LEFT JOIN memberships m ON m.list_id = l.id LEFT JOIN subscribers s ON s.id = m.subscriber_id \
             GROUP BY l.name, s.status ORDER BY l.name",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out: Vec<ListCounts> = Vec::new();
        for r in rows {
            let name: String = r.get(0);
            if out.last().is_none_or(|l| l.name != name) {
                out.push(ListCounts {
                    name: name.clone(),
                    counts: SubscriberStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect(),
                });
            }
            if let (Some(status), Some(last)) = (r.get::<Option<String>, _>(1), out.last_mut()) {
                last.counts.insert(status, count(r.get(2)));
            }
        }
        Ok(out)
    }

    /// Notes `digest` as the content of `list`'s file; true when it differs from the one noted
    /// before (or none was).
    pub async fn note_list_file(&self, list: &ListName, digest: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "INSERT INTO list_files (list, digest, changed_at) VALUES ($1, $2, $3) \
             ON CONFLICT (list) DO UPDATE SET digest = excluded.digest, changed_at = excluded.changed_at \
             WHERE list_files.digest <> excluded.digest",
        )
        .bind(list.as_ref())
        .bind(digest)
        .bind(ms(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(changed > 0)
    }

    /// A sign-up from the web form. An unknown address is stored as unconfirmed; any other is
    /// left as it is (a request is not consent). The request joins the consent record either way.
    /// Two requests for one address take their turn on its row; two for a new address race to
    /// insert it, and the loser carries on with the winner's row.
    pub async fn request_subscription(
        &self,
        email: &EmailAddress,
        name: Option<&SubscriberName>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Signup, StoreError> {
        in_tx!(self, |tx| {
            let mut found = None;
            for _ in 0..RETRIES {
                let row = sqlx::query(LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
                if let Some(r) = row {
                    found = Some((r.get::<i64, _>(0), Some(parse::<SubscriberStatus>(r.get::<&str, _>(1))?)));
                    break;
                }
                let id: Option<i64> = sqlx::query_scalar(
                    "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
                     VALUES ($1, $2, '{}', 'unconfirmed', $3, $3) ON CONFLICT (lower(email)) DO NOTHING RETURNING id",
                )
                .bind(email.as_str())
                .bind(name.map_or("", |n| n.as_str()))
                .bind(ms(now))
                .fetch_optional(&mut *tx)
                .await?;
                if let Some(id) = id {
                    found = Some((id, None));
                    break;
                }
            }
            let Some((id, before)) = found else {
                return Err(StoreError::Contended("an address kept changing while it signed up".into()));
            };
            let mailbox = keys::mailbox_digest(email);
            let day_ago = ms(now) - 24 * 3600 * 1000;
            sqlx::query(PRUNE_SIGNUPS).bind(day_ago).execute(&mut *tx).await?;
            let recent: i64 =
                sqlx::query_scalar(RECENT_SIGNUPS).bind(&mailbox).bind(day_ago).fetch_one(&mut *tx).await?;
            sqlx::query(RECORD_SIGNUP).bind(&mailbox).bind(ms(now)).execute(&mut *tx).await?;
            consent(&mut tx, id, ConsentEvent::Subscribe, source, now).await?;
            Ok(Signup { before, recent_requests: u32::try_from(recent).unwrap_or(u32::MAX) })
        })
    }

    /// Acts on a confirmation link made at `issued`: the address becomes active and joins
    /// `lists`, unless it left after the link was made. The address's row is locked first, so a
    /// departure cannot slip in between the check and the change.
    pub async fn confirm_subscription(
        &self,
        email: &EmailAddress,
        lists: &[ListName],
        issued: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Confirmation, StoreError> {
        in_tx!(self, |tx| {
            let row = sqlx::query(LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some(row) = row else { return Ok(Confirmation::Unknown) };
            let id: i64 = row.get(0);
            let status: SubscriberStatus = parse(row.get::<&str, _>(1))?;
            let left_since: i64 = sqlx::query_scalar(LEFT_SINCE).bind(id).bind(ms(issued)).fetch_one(&mut *tx).await?;
            if left_since > 0 && status != SubscriberStatus::Active {
                return Ok(Confirmation::Stale);
            }
            let outcome = if status == SubscriberStatus::Active {
                Confirmation::AlreadyActive
            } else {
                sqlx::query("UPDATE subscribers SET status = 'active', updated_at = $1 WHERE id = $2")
                    .bind(ms(now))
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
                consent(&mut tx, id, ConsentEvent::Confirm, source, now).await?;
                Confirmation::Confirmed
            };
            let mut ids = ListIds::new();
            let mut list_ids = Vec::with_capacity(lists.len());
            for l in lists {
                list_ids.push(list_id(&mut tx, l, &mut ids).await?);
            }
            sqlx::query(JOIN_LISTS)
                .bind(&list_ids)
                .bind(vec![id; list_ids.len()])
                .bind(ms(now))
                .execute(&mut *tx)
                .await?;
            Ok(outcome)
        })
    }

    /// Subscribers by status, for metrics.
    pub async fn status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows =
            sqlx::query("SELECT status, count(*) FROM subscribers GROUP BY status").fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, u64> = SubscriberStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for r in rows {
            out.insert(r.get(0), count(r.get(1)));
        }
        Ok(out)
    }
}

/// Creates the database when it does not exist, then migrates it on a connection of its own.
/// sqlx holds a PostgreSQL advisory lock (per database) while it migrates, so processes that
/// start together on a new database take turns and the later ones find the work done; the lock
/// is a session's, so it dies with the connection if this process does.
async fn migrate(options: &PgConnectOptions) -> Result<(), StoreError> {
    let single = |options: PgConnectOptions| PgPoolOptions::new().max_connections(1).connect_with(options);
    let pool = match single(options.clone()).await {
        Ok(pool) => pool,
        Err(e) if database_code(&e).as_deref() == Some("3D000") => {
            create_database(options).await?;
            single(options.clone()).await.map_err(tls::opening)?
        }
        Err(e) => return Err(tls::opening(e)),
    };
    let migrated = MIGRATIONS.run(&pool).await.map_err(StoreError::Migrate);
    // Closing ends the session, and with it the migration lock, even when a migration failed
    // halfway and sqlx returned without unlocking.
    pool.close().await;
    migrated
}

async fn create_database(options: &PgConnectOptions) -> Result<(), StoreError> {
    let name = options.get_database().unwrap_or_default().to_owned();
    let cannot = |source| StoreError::CreateDatabase { name: name.clone(), source };
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await.map_err(cannot)?;
    let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\""))))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match created {
        Ok(_) => Ok(()),
        // Another process created it first.
        Err(e) if matches!(database_code(&e).as_deref(), Some("42P04" | "23505")) => Ok(()),
        Err(e) => Err(cannot(e)),
    }
}

async fn consent(
    conn: &mut PgConnection,
    subscriber: i64,
    event: ConsentEvent,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO consent_events (subscriber_id, event, source, at) VALUES ($1, $2, $3, $4)")
        .bind(subscriber)
        .bind(event.as_str())
        .bind(source)
        .bind(ms(now))
        .execute(conn)
        .await?;
    Ok(())
}

/// One consent event per subscriber in `ids`, each with its own source.
async fn consent_many(
    conn: &mut PgConnection,
    ids: &[i64],
    event: ConsentEvent,
    sources: &[&str],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(CONSENT_MANY).bind(event.as_str()).bind(ms(now)).bind(ids).bind(sources).execute(conn).await?;
    Ok(())
}

/// List ids met during one transaction: an import of a million rows names the same few lists.
type ListIds = HashMap<ListName, i64>;

async fn list_id(conn: &mut PgConnection, list: &ListName, ids: &mut ListIds) -> Result<i64, StoreError> {
    if let Some(id) = ids.get(list) {
        return Ok(*id);
    }
    // Two statements, not one: a list another transaction creates meanwhile is waited for by the
    // insert, and only a new statement's snapshot sees it.
    sqlx::query("INSERT INTO lists (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(list.as_ref())
        .execute(&mut *conn)
        .await?;
    let id: i64 =
        sqlx::query_scalar("SELECT id FROM lists WHERE name = $1").bind(list.as_ref()).fetch_one(&mut *conn).await?;
    ids.insert(list.clone(), id);
    Ok(id)
}

/// Adds or updates subscribers from an import, a list file or a command, with the meaning of
/// writing the rows one by one: new addresses are active (the publisher vouches for their
/// consent); one that left stays as it is. Rows go in chunks in which no address repeats, a few
/// statements a chunk.
async fn upsert(
    conn: &mut PgConnection,
    rows: &[NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<(), StoreError> {
    for chunk in import::chunks(rows, IMPORT_CHUNK) {
        let mut chunk: Vec<&NewSubscriber> = chunk.iter().collect();
        // Addresses another writer (a web sign-up) inserted since the chunk was read are written
        // again as the existing rows they now are.
        for _ in 0..RETRIES {
            if chunk.is_empty() {
                break;
            }
            chunk = upsert_chunk(conn, &chunk, source, now, counts, ids).await?;
        }
        if !chunk.is_empty() {
            return Err(StoreError::Contended("subscribers kept being added while this import ran".into()));
        }
    }
    Ok(())
}

/// Writes rows with distinct addresses; returns those that another transaction inserted first.
async fn upsert_chunk<'r>(
    conn: &mut PgConnection,
    rows: &[&'r NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<Vec<&'r NewSubscriber>, StoreError> {
    let now_ms = ms(now);
    let wanted: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let [forgotten, as_given] = keys::forgotten_forms(&r.email);
            [r.email.key(), forgotten, as_given]
        })
        .collect();
    let found: HashMap<String, (i64, String, String, SubscriberStatus)> = sqlx::query(LOCK_SUBSCRIBERS)
        .bind(&wanted)
        .fetch_all(&mut *conn)
        .await?
        .into_iter()
        .map(|r| Ok((r.get(1), (r.get(0), r.get(2), r.get(3), parse(r.get::<&str, _>(4))?))))
        .collect::<Result<_, StoreError>>()?;
    let plan = import::Plan::new(rows.iter().copied(), |row| {
        let (id, name, attributes, status) = found
            .get(&row.email.key())
            .or_else(|| keys::forgotten_forms(&row.email).iter().find_map(|f| found.get(f)))?;
        Some(import::Stored { id: *id, name, attributes, status: *status })
    })?;
    if !plan.updates.is_empty() {
        let (ids, (names, attributes)): (Vec<i64>, (Vec<&str>, Vec<&str>)) =
            plan.updates.iter().map(|(id, n, a)| (*id, (n.as_str(), a.as_str()))).unzip();
        sqlx::query(UPDATE_SUBSCRIBERS)
            .bind(&ids)
            .bind(&names)
            .bind(&attributes)
            .bind(now_ms)
            .execute(&mut *conn)
            .await?;
        consent_many(conn, &plan.reactivated, ConsentEvent::Import, &vec![source; plan.reactivated.len()], now).await?;
    }

    let mut conflicted = Vec::new();
    let mut added: Vec<(i64, &NewSubscriber)> = Vec::new();
    if !plan.fresh.is_empty() {
        let mut columns = (Vec::new(), Vec::new(), Vec::new());
        for row in &plan.fresh {
            columns.0.push(row.email.as_str());
            columns.1.push(row.name.as_ref().map_or("", |n| n.as_str()).to_owned());
            columns.2.push(to_json(&row.attributes)?);
        }
        let inserted: HashMap<String, i64> = sqlx::query(INSERT_SUBSCRIBERS)
            .bind(&columns.0)
            .bind(&columns.1)
            .bind(&columns.2)
            .bind(now_ms)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .map(|r| (r.get::<String, _>(1), r.get::<i64, _>(0)))
            .collect();
        for &row in &plan.fresh {
            match inserted.get(row.email.as_str()) {
                Some(id) => added.push((*id, row)),
                None => conflicted.push(row),
            }
        }
        added.sort_by_key(|(id, _)| *id);
        let new_ids: Vec<i64> = added.iter().map(|(id, _)| *id).collect();
        let event = if source == "add" { ConsentEvent::Add } else { ConsentEvent::Import };
        consent_many(conn, &new_ids, event, &vec![source; new_ids.len()], now).await?;
    }

    let mut pairs = (Vec::new(), Vec::new());
    for (id, row) in plan.existing.iter().map(|(id, _, row)| (*id, *row)).chain(added.iter().copied()) {
        for l in &row.lists {
            pairs.0.push(list_id(conn, l, ids).await?);
            pairs.1.push(id);
        }
    }
    let joined: HashSet<i64> = if pairs.0.is_empty() {
        HashSet::new()
    } else {
        sqlx::query_scalar(JOIN_LISTS)
            .bind(&pairs.0)
            .bind(&pairs.1)
            .bind(now_ms)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect()
    };
    plan.count(added.len(), &joined, counts);
    Ok(conflicted)
}

fn subscriber_row(r: &PgRow) -> Result<SubscriberRecord, StoreError> {
    let lists: Option<String> = r.get(5);
    let mut lists: Vec<String> = lists.map(|l| l.split(';').map(str::to_owned).collect()).unwrap_or_default();
    lists.sort();
    Ok(SubscriberRecord {
        id: r.get(0),
        email: r.get(1),
        name: r.get(2),
        status: parse(r.get::<&str, _>(3))?,
        attributes: serde_json::from_str(r.get::<&str, _>(4)).unwrap_or_default(),
        lists,
    })
}
