//! The SQLite store: one file, WAL, a busy timeout, claims under `BEGIN IMMEDIATE` so that two
//! processes on the same file never hold the same delivery.

use std::{path::Path, str::FromStr, time::Duration};

use sqlx::{
    Arguments, ConnectOptions, Sqlite, SqlitePool, Transaction,
    error::BoxDynError,
    sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous},
};

use super::StoreError;

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

/// The database file `url` names, unless the database lives in memory.
fn on_disk<'a>(url: &str, options: &'a SqliteConnectOptions) -> Option<&'a Path> {
    let file = options.get_filename();
    let query = url.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let in_memory = url::form_urlencoded::parse(query.as_bytes()).any(|(k, v)| k == "mode" && v == "memory")
        || file.as_os_str().is_empty()
        || file == Path::new(":memory:")
        || file.to_string_lossy().starts_with("file:");
    (!in_memory).then_some(file)
}

/// Makes a new database file readable by its owner only, whatever the umask: SQLite would create
/// it 0644 less the umask, and gives its -wal and -shm files the database file's mode. An empty
/// file is an empty database to SQLite. A file that exists keeps the mode its owner gave it.
async fn create_private(file: &Path) {
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    options.mode(0o600);
    // Any failure but "it exists" (a missing folder, a read-only one) is SQLite's to report as
    // it opens the file, in the words a publisher already knows.
    let _ = options.open(file).await;
}

/// One delivery per active subscriber of the lists $3, a JSON array (one for someone on two of
/// them).
pub(super) const QUEUE_ISSUE: &str = "INSERT INTO deliveries (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at) \
     SELECT DISTINCT $1, s.id, 'queued', 0, $2, $2 FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each($3)) \
     AND (s.paused_until IS NULL OR s.paused_until <= $2)";
/// The next $4 active, unpaused ($2 is now) readers of the lists $1 (a JSON array) after
/// subscriber id $3, in id order: an issue's next chunk of readers, read by the primary key.
pub(super) const AUDIENCE_AFTER: &str = "SELECT s.id FROM subscribers s \
     WHERE s.id > $3 AND s.status = 'active' AND (s.paused_until IS NULL OR s.paused_until <= $2) \
     AND EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                 WHERE m.subscriber_id = s.id AND l.name IN (SELECT value FROM json_each($1))) \
     ORDER BY s.id LIMIT $4";
/// Queues issue $1 for the readers $3 (a JSON array of ids); $2 is now. A reader already queued
/// is left as they are: the issue's cursor keeps two fillers apart, and this keeps them apart
/// should it not.
pub(super) const QUEUE_READERS: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at) \
     SELECT $1, value, 'queued', 0, $2, $2 FROM json_each($3) WHERE true ON CONFLICT DO NOTHING";
/// The active, unpaused ($2 is now) readers of the lists $1 (a JSON array) who get edition $3's
/// issues (its key; NULL: every reader, without editions), readers who chose none too when $4
/// (it is the default edition), as do those whose edition is none of those offered ($5, a JSON
/// array of keys: theirs was renamed or removed), each once, with their topics.
pub(super) const AUDIENCE: &str = "SELECT DISTINCT s.id, s.topics FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each($1)) \
     AND (s.paused_until IS NULL OR s.paused_until <= $2) \
     AND (CAST($3 AS TEXT) IS NULL OR s.edition = $3 \
          OR ((s.edition IS NULL OR s.edition NOT IN (SELECT value FROM json_each($5))) AND $4)) ORDER BY s.id";
/// Which of the readers $2 (a JSON array of ids) received which of the identities $1, in a copy
/// sent or still to send: a delivery without a variant carried its whole issue. Asked of the
/// issue's own readers only: the others' copies are many and none of its business.
pub(super) const RECEIVED: &str = "SELECT d.subscriber_id, a.identity FROM issue_articles a \
     JOIN deliveries d ON d.issue_number = a.issue_number \
     WHERE a.identity IN (SELECT value FROM json_each($1)) AND d.variant IS NULL \
     AND d.state IN ('queued', 'deferred', 'sent') AND d.subscriber_id IN (SELECT value FROM json_each($2)) \
     UNION SELECT d.subscriber_id, v.identity FROM variant_articles v \
     JOIN deliveries d ON d.issue_number = v.issue_number AND d.variant = v.variant \
     WHERE v.identity IN (SELECT value FROM json_each($1)) AND d.state IN ('queued', 'deferred', 'sent') \
     AND d.subscriber_id IN (SELECT value FROM json_each($2))";
/// When each of the readers $2 (a JSON array of ids) last had a copy (sent or still to send)
/// made, among issues made since $1.
pub(super) const LAST_COPY: &str = "SELECT d.subscriber_id, max(i.created_at) FROM deliveries d \
     JOIN issues i ON i.number = d.issue_number \
     WHERE i.created_at >= $1 AND d.state IN ('queued', 'deferred', 'sent') \
     AND d.subscriber_id IN (SELECT value FROM json_each($2)) GROUP BY d.subscriber_id";
/// The identities (a JSON array $3) variant $2 of issue $1 carried.
pub(super) const VARIANT_ARTICLES: &str = "INSERT INTO variant_articles (issue_number, variant, identity) \
     SELECT $1, $2, value FROM json_each($3) WHERE true ON CONFLICT DO NOTHING";
/// Queues variant $3 of issue $1 for the readers $4 (a JSON array of ids); $2 is now.
pub(super) const QUEUE_VARIANT: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at, variant) \
     SELECT $1, value, 'queued', 0, $2, $2, $3 FROM json_each($4)";
/// Records issue $1 as skipped for the readers $3 (a JSON array of ids) with nothing new; $2 is now.
pub(super) const SKIP_NOTHING_NEW: &str = "INSERT INTO deliveries \
     (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at, last_reply) \
     SELECT $1, value, 'skipped', 0, $2, $2, 'nothing new in their topics' FROM json_each($3)";
/// The articles (identities, a JSON array $2) issue $1 carried. SQLite needs the WHERE to read
/// ON CONFLICT after a SELECT as the upsert it is.
pub(super) const CARRY_ARTICLES: &str = "INSERT INTO issue_articles (issue_number, identity) \
     SELECT $1, value FROM json_each($2) WHERE true ON CONFLICT DO NOTHING";
/// Notes the articles $1 (a JSON array) as first seen at $2, unless they were seen before.
pub(super) const NOTE_FIRST_SEEN: &str = "INSERT INTO article_first_seen (identity, first_seen) \
     SELECT value, $2 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING";
pub(super) const FIRST_SEEN: &str = "SELECT identity, first_seen FROM article_first_seen \
     WHERE identity IN (SELECT value FROM json_each($1))";

/// A subscriber's status, read to decide on it; the write transaction already holds the only
/// writer's lock.
pub(super) const LOCK_SUBSCRIBER_ID: &str = "SELECT status FROM subscribers WHERE id = $1";

/// An issue, read to decide on it; the write transaction already holds the only writer's lock.
pub(super) const LOCK_ISSUE: &str = "SELECT number, status, subject, issue_date, articles, slot, created_at, \
     finished_at, note, intro, left_out, edited_subject, send_at, edition FROM issues WHERE number = $1";

/// An issue's status and queueing cursor, read to fill it; the write transaction already holds
/// the only writer's lock, so two fillers take their turn.
pub(super) const LOCK_FILL: &str = "SELECT status, queued_through FROM issues WHERE number = $1";

/// A rate bucket's numbers; the write transaction already holds the only writer's lock.
pub(super) const LOCK_BUCKET: &str = "SELECT tokens, updated_at FROM rate_buckets WHERE name = $1";

/// Begins a write transaction holding the writer's lock from its first statement, so that two
/// processes never both read and then both write.
pub(super) async fn begin(pool: &SqlitePool) -> Result<Transaction<'static, Sqlite>, StoreError> {
    Ok(pool.begin_with("BEGIN IMMEDIATE").await?)
}

/// SQLite waits for the writer's lock (the busy timeout) instead of failing a transaction that
/// another could let through: nothing is worth a second run.
pub(super) fn transient(_: &StoreError) -> bool {
    false
}

// Subscribers, imports and list files. Lists of values are JSON arrays, which `json_each` reads;
// the write transaction holds the only writer's lock, so nothing here locks rows.

/// One subscriber by its key.
pub(super) const LOCK_SUBSCRIBER: &str = "SELECT id, status FROM subscribers WHERE lower(email) = $1";
/// Rows an import writes per statement. Each chunk travels as one JSON array that `json_each`
/// unpacks, so a chunk costs a handful of statements where a row cost four: sqlx hands every
/// statement to the connection's thread and back, and that hop, not SQLite, was the import's time.
pub(super) const IMPORT_CHUNK: usize = 2000;
pub(super) const LOCK_SUBSCRIBERS: &str = "SELECT id, lower(email) AS key, name, attributes, status FROM subscribers \
     WHERE lower(email) IN (SELECT value FROM json_each($1))";
pub(super) const UPDATE_SUBSCRIBERS: &str = "UPDATE subscribers SET name = u.value ->> 1, attributes = u.value ->> 2, \
     status = 'active', updated_at = $2 FROM json_each($1) AS u WHERE subscribers.id = u.value ->> 0";
/// In the rows' order, so ids (and the consent record) follow the file.
pub(super) const INSERT_SUBSCRIBERS: &str = "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
     SELECT value ->> 0, value ->> 1, value ->> 2, 'active', $2, $2 FROM json_each($1) ORDER BY key \
     ON CONFLICT DO NOTHING RETURNING id, email";
/// RETURNING names only the rows inserted, not those ignored as already there.
pub(super) const JOIN_LISTS: &str = "INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) \
     SELECT value ->> 0, value ->> 1, $2 FROM json_each($1) ORDER BY key RETURNING subscriber_id";
pub(super) const CONSENTS: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT value ->> 0, $2, value ->> 1, $3 FROM json_each($1) ORDER BY key";
pub(super) const CONSENTS_FROM_ONE: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT value, $2, $3, $4 FROM json_each($1) ORDER BY key";
/// The addresses of the list file being synced, kept by the database rather than in memory;
/// created inside the transaction, so a rollback takes it away too.
pub(super) const OPEN_LISTED: &[&str] =
    &["CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT PRIMARY KEY)", "DELETE FROM temp.listed"];
/// Notes the addresses $1 and returns those that were not noted yet: the others repeat.
pub(super) const LIST_ADDRESSES: &str =
    "INSERT OR IGNORE INTO temp.listed (email) SELECT value FROM json_each($1) RETURNING email";
pub(super) const LISTED_READY: &[&str] = &[];
/// The members of list $1 the list file no longer names.
pub(super) const SYNC_REMOVE: &str = "DELETE FROM memberships WHERE list_id = $1 AND NOT EXISTS \
     (SELECT 1 FROM subscribers s JOIN temp.listed k ON k.email = lower(s.email) WHERE s.id = memberships.subscriber_id)";
/// The table outlives the transaction on its pooled connection: emptied, it holds no memory.
pub(super) const CLOSE_LISTED: &[&str] = &["DELETE FROM temp.listed"];

/// Imports take their turn under the writer's lock, which the write transaction already holds.
pub(super) async fn lock_imports(_: &mut Transaction<'static, Sqlite>) -> Result<(), StoreError> {
    Ok(())
}

/// The arguments of `UPDATE_SUBSCRIBERS`: the rows, one JSON array, then the time.
pub(super) fn updates(rows: &[(i64, String, String)], now: i64) -> Result<SqliteArguments, BoxDynError> {
    rows_and_time(rows, now)
}

/// The arguments of `INSERT_SUBSCRIBERS`.
pub(super) fn additions(rows: &[(&str, &str, String)], now: i64) -> Result<SqliteArguments, BoxDynError> {
    rows_and_time(rows, now)
}

/// The arguments of `JOIN_LISTS`.
pub(super) fn memberships(pairs: &[(i64, i64)], now: i64) -> Result<SqliteArguments, BoxDynError> {
    rows_and_time(pairs, now)
}

/// The arguments of `CONSENTS`: the (subscriber, source) rows as one JSON array, the event, the
/// time.
pub(super) fn consents(rows: &[(i64, &str)], event: &str, now: i64) -> Result<SqliteArguments, BoxDynError> {
    let mut args = SqliteArguments::default();
    args.add(serde_json::to_string(rows)?)?;
    args.add(event.to_owned())?;
    args.add(now)?;
    Ok(args)
}

fn rows_and_time<T: serde::Serialize>(rows: &[T], now: i64) -> Result<SqliteArguments, BoxDynError> {
    let mut args = SqliteArguments::default();
    args.add(serde_json::to_string(rows)?)?;
    args.add(now)?;
    Ok(args)
}

/// A batch of values as SQLite's statements take it: one JSON array (of arrays, for rows of
/// several columns), unpacked by `json_each`.
pub(super) fn bind_rows<'q, R: serde::Serialize>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    rows: &[R],
) -> Result<sqlx::query::Query<'q, Sqlite, SqliteArguments>, StoreError> {
    let rows = serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    Ok(query.bind(rows))
}

// The ledger's statements whose text is SQLite's own (`ledger.rs` runs them). A list is one
// JSON parameter here where PostgreSQL takes an array per column, so a parameter after a list of
// rows is numbered apart from PostgreSQL's.

/// Takes up to $5 due, unleased deliveries of issue $3 for owner $1 until $2 ($4 is now). The due
/// index is walked in its own order and the walk stops at the limit: a claim costs the same on the
/// first row of a million as on the last. No row lock: the write transaction holds the only
/// writer's lock.
pub(super) const CLAIM: &str = "UPDATE deliveries SET lease_owner = $1, lease_until = $2 \
     WHERE id IN (SELECT id FROM deliveries WHERE issue_number = $3 AND state IN ('queued', 'deferred') \
                  AND next_attempt_at <= $4 AND (lease_until IS NULL OR lease_until < $4) LIMIT $5) \
     RETURNING id, subscriber_id, attempts, variant";
pub(super) const CLAIM_PEOPLE: &str =
    "SELECT id, email, name, attributes, status, topics FROM subscribers WHERE id IN (SELECT value FROM json_each($1))";
pub(super) const SKIP_LEFT: &str = "UPDATE deliveries SET state = 'skipped', last_reply = j.value ->> 1, \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 \
     FROM json_each($2) AS j WHERE deliveries.id = j.value ->> 0";
pub(super) const RENEW_LEASES: &str = "UPDATE deliveries SET lease_until = $1 \
     WHERE id IN (SELECT value FROM json_each($2)) AND lease_owner = $3 AND state IN ('queued', 'deferred')";
pub(super) const RECORD_SENT: &str = "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, \
     message_id = j.value ->> 1, last_reply = j.value ->> 2, relay = j.value ->> 3, sent_at = $1, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM json_each($2) AS j WHERE deliveries.id = j.value ->> 0";
pub(super) const RECORD_DEFERRED: &str = "UPDATE deliveries SET state = 'deferred', attempts = attempts + (j.value ->> 3), \
     last_reply = j.value ->> 1, next_attempt_at = j.value ->> 2, relay = j.value ->> 4, updated_at = $1, \
     lease_owner = NULL, lease_until = NULL FROM json_each($2) AS j \
     WHERE deliveries.id = j.value ->> 0 AND deliveries.lease_owner = $3 AND deliveries.state <> 'sent'";
pub(super) const RECORD_FAILED: &str = "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, \
     last_reply = j.value ->> 1, relay = j.value ->> 2, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM json_each($2) AS j WHERE deliveries.id = j.value ->> 0 AND deliveries.state <> 'sent'";
pub(super) const RECORD_BOUNCES: &str = "UPDATE subscribers SET status = 'bounced', updated_at = $1 \
     WHERE id IN (SELECT value FROM json_each($2)) AND status = 'active' RETURNING id";
pub(super) const RECORD_RELEASED: &str = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
     WHERE id IN (SELECT value FROM json_each($1)) AND lease_owner = $2";
/// The earliest moment a delivery of issue $1 can be claimed: min over the deliveries still to
/// send of max(next_attempt_at, lease_until).
pub(super) const NEXT_DUE: &str = "SELECT min(max(next_attempt_at, coalesce(lease_until, 0))) FROM deliveries \
     WHERE issue_number = $1 AND state IN ('queued', 'deferred')";

impl SqliteStore {
    pub async fn open(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreError::Open)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // NORMAL in WAL mode: a killed process loses no committed transaction.
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(30))
            .foreign_keys(true)
            // 4 MB of page cache a connection: the ledger's hot pages stay in memory, and three
            // connections stay well inside a worker's memory budget.
            .pragma("cache_size", "-4000")
            // Temporary tables and large sorts spill to a file past the temp schema's own small
            // cache: a list file's addresses (`temp.listed`) held in memory made a sync of a
            // million rows peak near 100 MB more.
            .pragma("temp_store", "file")
            // A large import or queuing is one long statement by design; sqlx would warn of it.
            .log_slow_statements(log::LevelFilter::Debug, Duration::from_secs(1));
        if let Some(file) = on_disk(url, &options) {
            create_private(file).await;
        }
        // Two processes opening a new file at once race to create it, set WAL and migrate it;
        // sqlx takes no lock on SQLite, so the loser (whose migration rolls back) tries again.
        let mut attempt = 0;
        let pool = loop {
            let opened = match SqlitePoolOptions::new().max_connections(3).connect_with(options.clone()).await {
                Ok(pool) => MIGRATIONS.run(&pool).await.map(|()| pool).map_err(StoreError::Migrate),
                Err(e) => Err(StoreError::Open(e)),
            };
            match opened {
                Ok(pool) => break pool,
                Err(_) if attempt < 5 => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                Err(e) => return Err(e),
            }
        };
        Ok(Self { pool })
    }
}

impl SqliteStore {}

impl SqliteStore {}

/// How many deliveries `QUEUE_ISSUE` would queue for the lists ?1.
pub(super) const COUNT_RECIPIENTS: &str = "SELECT count(DISTINCT s.id) FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each(?1))";
