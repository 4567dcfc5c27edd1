//! The PostgreSQL store: the same schema and behaviour as the SQLite one, for more than one
//! machine. Workers claim deliveries with `FOR UPDATE SKIP LOCKED` under a lease committed before
//! any sending; where SQLite serialises writers with `BEGIN IMMEDIATE`, this store uses row locks,
//! `ON CONFLICT` and, for imports, a transaction-scoped advisory lock, and runs a transaction
//! again when PostgreSQL reports a deadlock or a serialisation failure.
//!
//! The hot statements are constants so that the index test (`tests.rs`) explains the very text
//! this store runs.

use std::{str::FromStr, time::Duration};

use sqlx::{
    Arguments, ConnectOptions, Connection, Encode, PgConnection, PgPool, Postgres, Type,
    error::BoxDynError,
    postgres::{PgArguments, PgConnectOptions, PgHasArrayType, PgPoolOptions},
};

use super::StoreError;

mod tls;

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Rows written per statement by imports: big enough that a million rows take a few hundred
/// statements, small enough that the arrays stay a few megabytes.
pub(super) const IMPORT_CHUNK: usize = 5000;

/// The advisory lock imports and list syncs take in turn, as they do under SQLite's write lock:
/// two of them at once would only wait on each other's rows.
const IMPORT_LOCK: i64 = 0x6761_7a65_7474_6501;

// The hot statements, in the words the index test explains.

/// Takes up to $5 due, unleased deliveries of issue $3 for owner $1 until $2 ($4 is now).
pub(super) const CLAIM: &str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM deliveries WHERE issue_number = $3 AND state IN ('queued', 'deferred') \
                  AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until < $4) \
                  LIMIT $5 FOR UPDATE SKIP LOCKED) \
     RETURNING id, subscriber_id, attempts, variant";
/// The claimed deliveries' subscribers.
pub(super) const CLAIM_PEOPLE: &str =
    "SELECT id, email, name, attributes, status, topics FROM subscribers WHERE id = ANY($1::bigint[])";
/// Claimed deliveries whose subscriber left since the issue was queued.
pub(super) const SKIP_LEFT: &str = "UPDATE deliveries AS d SET state = 'skipped', last_reply = u.reply, \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 \
     FROM UNNEST($2::bigint[], $3::text[]) AS u(id, reply) WHERE d.id = u.id";
pub(super) const RENEW_LEASES: &str = "UPDATE deliveries SET lease_until = $1 \
     WHERE id = ANY($2::bigint[]) AND lease_owner = $3 AND state IN ('queued', 'deferred')";
pub(super) const RECORD_SENT: &str = "UPDATE deliveries AS d SET state = 'sent', attempts = d.attempts + 1, \
     message_id = u.message_id, last_reply = u.reply, relay = u.relay, sent_at = $1, updated_at = $1, \
     lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[], $4::text[], $5::text[]) AS u(id, message_id, reply, relay) WHERE d.id = u.id";
pub(super) const RECORD_DEFERRED: &str = "UPDATE deliveries AS d SET state = 'deferred', attempts = d.attempts + u.spent, \
     last_reply = u.reply, next_attempt_at = u.retry_at, relay = u.relay, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::bigint[], $6::text[]) AS u(id, reply, retry_at, spent, relay) \
     WHERE d.id = u.id AND d.lease_owner = $7 AND d.state <> 'sent'";
pub(super) const RECORD_FAILED: &str = "UPDATE deliveries AS d SET state = 'failed', attempts = d.attempts + 1, \
     last_reply = u.reply, relay = u.relay, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM UNNEST($2::bigint[], $3::text[], $4::text[]) AS u(id, reply, relay) WHERE d.id = u.id AND d.state <> 'sent'";
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
     AND (s.paused_until IS NULL OR s.paused_until <= $2) \
     ORDER BY s.id";
/// The next $4 active, unpaused ($2 is now) readers of the lists $1 after subscriber id $3, in
/// id order: an issue's next chunk of readers, walked along the primary key.
pub(super) const AUDIENCE_AFTER: &str = "SELECT s.id FROM subscribers s \
     WHERE s.id > $3 AND s.status = 'active' AND (s.paused_until IS NULL OR s.paused_until <= $2) \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name = ANY($1::text[])) \
     ORDER BY s.id LIMIT $4";
/// Queues issue $1 for the readers $3; $2 is now. A reader already queued is left as they are:
/// the issue's locked cursor keeps two fillers apart, and this keeps them apart should it not.
pub(super) const QUEUE_READERS: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at) \
     SELECT $1, u.id, 'queued', 0, $2, $2 FROM UNNEST($3::bigint[]) AS u(id) ON CONFLICT DO NOTHING";
/// The active, unpaused ($2 is now) readers of the lists $1 who get edition $3's issues (its key;
/// NULL: every reader, without editions), readers who chose none too when $4 (it is the default
/// edition), as do those whose edition is none of those offered ($5: theirs was renamed or
/// removed), with their topics.
pub(super) const AUDIENCE: &str = "SELECT s.id, s.topics FROM subscribers s WHERE s.status = 'active' \
     AND (s.paused_until IS NULL OR s.paused_until <= $2) \
     AND ($3::text IS NULL OR s.edition = $3::text \
          OR ((s.edition IS NULL OR NOT (s.edition = ANY($5::text[]))) AND $4::boolean)) \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name = ANY($1::text[])) \
     ORDER BY s.id";
/// Which of the readers $2 received which of the identities $1, in a copy sent or still to send: a
/// delivery without a variant carried its whole issue. Asked of the issue's own readers only.
pub(super) const RECEIVED: &str = "SELECT d.subscriber_id, a.identity FROM issue_articles a \
     JOIN deliveries d ON d.issue_number = a.issue_number \
     WHERE a.identity = ANY($1::text[]) AND d.variant IS NULL AND d.state IN ('queued', 'deferred', 'sent') \
     AND d.subscriber_id = ANY($2::bigint[]) \
     UNION SELECT d.subscriber_id, v.identity FROM variant_articles v \
     JOIN deliveries d ON d.issue_number = v.issue_number AND d.variant = v.variant \
     WHERE v.identity = ANY($1::text[]) AND d.state IN ('queued', 'deferred', 'sent') \
     AND d.subscriber_id = ANY($2::bigint[])";
/// When each of the readers $2 last had a copy (sent or still to send) made, among issues made
/// since $1.
pub(super) const LAST_COPY: &str = "SELECT d.subscriber_id, max(i.created_at) FROM deliveries d \
     JOIN issues i ON i.number = d.issue_number \
     WHERE i.created_at >= $1 AND d.state IN ('queued', 'deferred', 'sent') \
     AND d.subscriber_id = ANY($2::bigint[]) GROUP BY d.subscriber_id";
/// The identities $3 variant $2 of issue $1 carried.
pub(super) const VARIANT_ARTICLES: &str = "INSERT INTO variant_articles (issue_number, variant, identity) \
     SELECT $1, $2, u.identity FROM UNNEST($3::text[]) AS u(identity) ON CONFLICT DO NOTHING";
/// Queues variant $3 of issue $1 for the readers $4; $2 is now.
pub(super) const QUEUE_VARIANT: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at, variant) \
     SELECT $1, u.id, 'queued', 0, $2, $2, $3 FROM UNNEST($4::bigint[]) AS u(id)";
/// Records issue $1 as skipped for the readers $3 with nothing new; $2 is now.
pub(super) const SKIP_NOTHING_NEW: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at, last_reply) \
     SELECT $1, u.id, 'skipped', 0, $2, $2, 'nothing new in their topics' FROM UNNEST($3::bigint[]) AS u(id)";
/// How many deliveries `QUEUE_ISSUE` would queue for the lists $1.
pub(super) const COUNT_RECIPIENTS: &str = "SELECT count(*) FROM subscribers s WHERE s.status = 'active' \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name = ANY($1::text[]))";
/// One subscriber, locked until the transaction ends: the web's sign-ups, confirmations and
/// unsubscriptions of one address take their turn.
pub(super) const LOCK_SUBSCRIBER: &str = "SELECT id, status FROM subscribers WHERE lower(email) = $1 FOR UPDATE";
/// The rows an import chunk may touch (addresses and their forgotten forms), locked in id order
/// so that two writers never wait on each other in a circle.
pub(super) const LOCK_SUBSCRIBERS: &str = "SELECT id, lower(email) AS key, name, attributes, status FROM subscribers \
     WHERE lower(email) = ANY($1::text[]) ORDER BY id FOR UPDATE";
/// In the rows' order, so ids (and the consent record) follow the file. An address a web sign-up
/// inserts meanwhile is skipped, then written as the existing row it has become.
pub(super) const INSERT_SUBSCRIBERS: &str = "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
     SELECT u.email, u.name, u.attributes, 'active', $4, $4 \
     FROM UNNEST($1::text[], $2::text[], $3::text[]) WITH ORDINALITY AS u(email, name, attributes, n) ORDER BY u.n \
     ON CONFLICT (lower(email)) DO NOTHING RETURNING id, email";
pub(super) const UPDATE_SUBSCRIBERS: &str = "UPDATE subscribers AS s SET name = u.name, attributes = u.attributes, \
     status = 'active', updated_at = $4 FROM UNNEST($1::bigint[], $2::text[], $3::text[]) AS u(id, name, attributes) \
     WHERE s.id = u.id";
pub(super) const JOIN_LISTS: &str = "INSERT INTO memberships (list_id, subscriber_id, created_at) \
     SELECT u.list_id, u.subscriber_id, $3 FROM UNNEST($1::bigint[], $2::bigint[]) AS u(list_id, subscriber_id) \
     ORDER BY u.list_id, u.subscriber_id ON CONFLICT DO NOTHING RETURNING subscriber_id";
pub(super) const CONSENTS: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT u.id, $3, u.source, $4 FROM UNNEST($1::bigint[], $2::text[]) AS u(id, source)";
pub(super) const CONSENTS_FROM_ONE: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT u.id, $2, $3, $4 FROM UNNEST($1::bigint[]) AS u(id)";
/// The addresses of the list files a transaction syncs, kept by the server rather than in
/// memory; one table for every file, gone with the transaction.
pub(super) const OPEN_LISTED: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT COLLATE \"C\" PRIMARY KEY) ON COMMIT DROP",
    "TRUNCATE listed",
];
/// Notes the addresses $1 and returns those that were not noted yet: the others repeat.
pub(super) const LIST_ADDRESSES: &str =
    "INSERT INTO listed (email) SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING RETURNING email";
/// Statistics for `SYNC_REMOVE`'s anti-join: the table is new, and PostgreSQL would otherwise
/// guess its size.
pub(super) const LISTED_READY: &[&str] = &["ANALYZE listed"];
pub(super) const CLOSE_LISTED: &[&str] = &[];
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
}

/// The articles (identities $2) issue $1 carried.
pub(super) const CARRY_ARTICLES: &str = "INSERT INTO issue_articles (issue_number, identity) \
     SELECT $1, u.identity FROM UNNEST($2::text[]) AS u(identity) ON CONFLICT DO NOTHING";
/// Notes the articles $1 as first seen at $2, unless they were seen before.
pub(super) const NOTE_FIRST_SEEN: &str = "INSERT INTO article_first_seen (identity, first_seen) \
     SELECT u.identity, $2 FROM UNNEST($1::text[]) AS u(identity) ON CONFLICT DO NOTHING";
pub(super) const FIRST_SEEN: &str =
    "SELECT identity, first_seen FROM article_first_seen WHERE identity = ANY($1::text[])";

/// An issue, locked until the transaction ends: two editors' changes to one draft, or an
/// approval and the scheduler at its slot, take their turn.
pub(super) const LOCK_ISSUE: &str = "SELECT number, status, subject, issue_date, articles, slot, created_at, \
     finished_at, note, intro, left_out, edited_subject, send_at, edition FROM issues WHERE number = $1 FOR UPDATE";

/// An issue's status and queueing cursor, locked until the transaction ends: two processes
/// filling one issue take their turn, and each chunk is queued once.
pub(super) const LOCK_FILL: &str = "SELECT status, queued_through FROM issues WHERE number = $1 FOR UPDATE";

/// A rate bucket's numbers, locked until the transaction ends.
/// A subscriber's status, locked until the transaction ends: two reports about one reader
/// decide one after the other, each counting the other's bounce.
pub(super) const LOCK_SUBSCRIBER_ID: &str = "SELECT status FROM subscribers WHERE id = $1 FOR UPDATE";
pub(super) const LOCK_BUCKET: &str = "SELECT tokens, updated_at FROM rate_buckets WHERE name = $1 FOR UPDATE";

/// Begins a transaction; row locks and `ON CONFLICT` keep writers apart.
pub(super) async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    Ok(pool.begin().await?)
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

impl<'v, A: Value<'v>, B: Value<'v>, C: Value<'v>, D: Value<'v>> Columns for (A, B, C, D) {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q> {
        let query = column(query, rows, |r| r.0.clone());
        let query = column(query, rows, |r| r.1.clone());
        let query = column(query, rows, |r| r.2.clone());
        column(query, rows, |r| r.3.clone())
    }
}

impl<'v, A: Value<'v>, B: Value<'v>, C: Value<'v>, D: Value<'v>, E: Value<'v>> Columns for (A, B, C, D, E) {
    fn bind<'q>(query: PgQuery<'q>, rows: &[Self]) -> PgQuery<'q> {
        let query = column(query, rows, |r| r.0.clone());
        let query = column(query, rows, |r| r.1.clone());
        let query = column(query, rows, |r| r.2.clone());
        let query = column(query, rows, |r| r.3.clone());
        column(query, rows, |r| r.4.clone())
    }
}

/// Binds `rows` as the next parameters of `query`, a column each.
pub(super) fn bind_rows<'q, R: Columns>(query: PgQuery<'q>, rows: &[R]) -> Result<PgQuery<'q>, StoreError> {
    Ok(R::bind(query, rows))
}

/// Imports and list syncs take their turn on `IMPORT_LOCK`, until the transaction ends.
pub(super) async fn lock_imports(tx: &mut sqlx::Transaction<'static, sqlx::Postgres>) -> Result<(), StoreError> {
    sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(IMPORT_LOCK).execute(&mut **tx).await?;
    Ok(())
}

/// The arguments of `UPDATE_SUBSCRIBERS`: one array a column, then the time.
pub(super) fn updates(rows: &[(i64, String, String)], now: i64) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    args.add(rows.iter().map(|r| r.0).collect::<Vec<i64>>())?;
    args.add(rows.iter().map(|r| r.1.as_str()).collect::<Vec<&str>>())?;
    args.add(rows.iter().map(|r| r.2.as_str()).collect::<Vec<&str>>())?;
    args.add(now)?;
    Ok(args)
}

/// The arguments of `INSERT_SUBSCRIBERS`.
pub(super) fn additions(rows: &[(&str, &str, String)], now: i64) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    args.add(rows.iter().map(|r| r.0).collect::<Vec<&str>>())?;
    args.add(rows.iter().map(|r| r.1).collect::<Vec<&str>>())?;
    args.add(rows.iter().map(|r| r.2.as_str()).collect::<Vec<&str>>())?;
    args.add(now)?;
    Ok(args)
}

/// The arguments of `CONSENTS`: the subscribers, their sources, the event, the time.
pub(super) fn consents(rows: &[(i64, &str)], event: &str, now: i64) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    args.add(rows.iter().map(|r| r.0).collect::<Vec<i64>>())?;
    args.add(rows.iter().map(|r| r.1).collect::<Vec<&str>>())?;
    args.add(event)?;
    args.add(now)?;
    Ok(args)
}

/// The arguments of `JOIN_LISTS`.
pub(super) fn memberships(pairs: &[(i64, i64)], now: i64) -> Result<PgArguments, BoxDynError> {
    let mut args = PgArguments::default();
    args.add(pairs.iter().map(|p| p.0).collect::<Vec<i64>>())?;
    args.add(pairs.iter().map(|p| p.1).collect::<Vec<i64>>())?;
    args.add(now)?;
    Ok(args)
}

/// A deadlock or a serialisation failure: nothing was written, and the same transaction run
/// again will most likely go through.
pub(super) fn transient(e: &StoreError) -> bool {
    match e {
        StoreError::Query(sqlx::Error::Database(db)) => matches!(db.code().as_deref(), Some("40001" | "40P01")),
        _ => false,
    }
}

fn database_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
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
