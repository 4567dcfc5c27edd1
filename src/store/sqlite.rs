//! The SQLite store: one file, WAL, a busy timeout, claims under `BEGIN IMMEDIATE` so that two
//! processes on the same file never hold the same delivery.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    path::Path,
    str::FromStr,
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::{
    ConnectOptions, Row, Sqlite, SqlitePool, Transaction,
    sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};

use super::{
    Confirmation, ConsentEvent, ImportCounts, ImportPart, ListCounts, NewSubscriber, Signup, StoreError,
    SubscriberRecord, import, keys,
};
use crate::domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus};

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
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
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each($3))";
/// The articles (identities, a JSON array $2) issue $1 carried. SQLite needs the WHERE to read
/// ON CONFLICT after a SELECT as the upsert it is.
pub(super) const CARRY_ARTICLES: &str = "INSERT INTO issue_articles (issue_number, identity) \
     SELECT $1, value FROM json_each($2) WHERE true ON CONFLICT DO NOTHING";
/// Notes the articles $1 (a JSON array) as first seen at $2, unless they were seen before.
pub(super) const NOTE_FIRST_SEEN: &str = "INSERT INTO article_first_seen (identity, first_seen) \
     SELECT value, $2 FROM json_each($1) WHERE true ON CONFLICT DO NOTHING";
pub(super) const FIRST_SEEN: &str = "SELECT identity, first_seen FROM article_first_seen \
     WHERE identity IN (SELECT value FROM json_each($1))";

/// A list of texts as one parameter: a JSON array, which `json_each` reads.
pub(super) fn texts<S: AsRef<str>>(v: &[S]) -> Result<String, StoreError> {
    to_json(&v.iter().map(AsRef::as_ref).collect::<Vec<&str>>())
}

/// A subscriber's status, read to decide on it; the write transaction already holds the only
/// writer's lock.
pub(super) const LOCK_SUBSCRIBER_ID: &str = "SELECT status FROM subscribers WHERE id = $1";

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

/// A batch of values as SQLite's statements take it: one JSON array (of arrays, for rows of
/// several columns), unpacked by `json_each`.
pub(super) fn bind_rows<'q, R: serde::Serialize>(
    query: sqlx::query::Query<'q, Sqlite, SqliteArguments>,
    rows: &[R],
) -> Result<sqlx::query::Query<'q, Sqlite, SqliteArguments>, StoreError> {
    Ok(query.bind(to_json(&rows)?))
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
     RETURNING id, subscriber_id, attempts";
pub(super) const CLAIM_PEOPLE: &str =
    "SELECT id, email, name, attributes, status FROM subscribers WHERE id IN (SELECT value FROM json_each($1))";
pub(super) const SKIP_LEFT: &str = "UPDATE deliveries SET state = 'skipped', last_reply = j.value ->> 1, \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 \
     FROM json_each($2) AS j WHERE deliveries.id = j.value ->> 0";
pub(super) const RENEW_LEASES: &str = "UPDATE deliveries SET lease_until = $1 \
     WHERE id IN (SELECT value FROM json_each($2)) AND lease_owner = $3 AND state IN ('queued', 'deferred')";
pub(super) const RECORD_SENT: &str = "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, \
     message_id = j.value ->> 1, last_reply = j.value ->> 2, sent_at = $1, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM json_each($2) AS j WHERE deliveries.id = j.value ->> 0";
pub(super) const RECORD_DEFERRED: &str = "UPDATE deliveries SET state = 'deferred', attempts = attempts + 1, \
     last_reply = j.value ->> 1, next_attempt_at = j.value ->> 2, updated_at = $1, lease_owner = NULL, lease_until = NULL \
     FROM json_each($2) AS j \
     WHERE deliveries.id = j.value ->> 0 AND deliveries.lease_owner = $3 AND deliveries.state <> 'sent'";
pub(super) const RECORD_FAILED: &str = "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, \
     last_reply = j.value ->> 1, updated_at = $1, lease_owner = NULL, lease_until = NULL \
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
            .pragma("temp_store", "memory")
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

    async fn write(&self) -> Result<Transaction<'static, Sqlite>, StoreError> {
        Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?)
    }

    pub async fn import(
        &self,
        rows: &[NewSubscriber],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut tx = self.write().await?;
        let mut counts = ImportCounts::default();
        let mut ids = ListIds::new();
        upsert(&mut tx, rows, source, now, &mut counts, &mut ids).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Imports rows as they arrive, in one transaction, committed at `End`. The writer's lock is
    /// held meanwhile: the rows' producer should be quick.
    pub async fn import_stream(
        &self,
        parts: tokio::sync::mpsc::Receiver<ImportPart>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut tx = self.write().await?;
        let counts = take_rows(&mut tx, parts, None, source, now).await?;
        tx.commit().await?;
        Ok(counts)
    }

    /// Makes the list's members exactly the rows that arrive (adding, updating, and removing
    /// memberships the file no longer names), in one transaction committed at `End`. Never
    /// brings back an address that left.
    pub async fn sync_list_stream(
        &self,
        list: &ListName,
        parts: tokio::sync::mpsc::Receiver<ImportPart>,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        let mut tx = self.write().await?;
        let counts = sync_list(&mut tx, list, parts, now).await?;
        tx.commit().await?;
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
        let mut tx = self.write().await?;
        let mut synced = Vec::with_capacity(files.len());
        for (list, parts) in files {
            synced.push(sync_list(&mut tx, &list, parts, now).await?);
        }
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        let recipients: i64 = sqlx::query_scalar(COUNT_RECIPIENTS).bind(to_json(&names)?).fetch_one(&mut *tx).await?;
        tx.rollback().await?;
        Ok((synced, u64::try_from(recipients).unwrap_or_default()))
    }

    pub async fn set_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        event: ConsentEvent,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, status FROM subscribers WHERE lower(email) = ?")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(false) };
        let id: i64 = row.get(0);
        let current: SubscriberStatus = parse(row.get::<&str, _>(1))?;
        if current == status {
            return Ok(false);
        }
        sqlx::query("UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?")
            .bind(status.as_str())
            .bind(ms(now))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        consent(&mut tx, Some(id), event, source, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn forget(&self, email: &EmailAddress, source: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let Some(id) = sqlx::query_scalar::<_, i64>("SELECT id FROM subscribers WHERE lower(email) = ?")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await?
        else {
            return Ok(false);
        };
        sqlx::query(
            "UPDATE subscribers SET email = ?, name = '', attributes = '{}', status = 'unsubscribed', updated_at = ? WHERE id = ?",
        )
        .bind(keys::forgotten(email))
        .bind(ms(now))
        .bind(id)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM memberships WHERE subscriber_id = ?").bind(id).execute(&mut *tx).await?;
        consent(&mut tx, Some(id), ConsentEvent::Forget, source, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<SubscriberRecord>, StoreError> {
        let rows = self.select_subscribers("WHERE lower(s.email) = ?", Some(&email.key()), None).await?;
        Ok(rows.into_iter().next())
    }

    pub async fn subscribers(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let mut all = self.select_subscribers("WHERE s.email NOT LIKE 'forgotten:%'", None, status).await?;
        if let Some(l) = list {
            all.retain(|s| s.lists.iter().any(|x| x == l.as_ref()));
        }
        Ok(all)
    }

    async fn select_subscribers(
        &self,
        filter: &str,
        email: Option<&str>,
        status: Option<SubscriberStatus>,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let mut sql = format!(
            "SELECT s.id, s.email, s.name, s.status, s.attributes, \
             (SELECT group_concat(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) \
             FROM subscribers s {filter}"
        );
        if status.is_some() {
            sql.push_str(" AND s.status = ?");
        }
        sql.push_str(" ORDER BY s.id");
        // Only our own constant fragments are put together here; values are bound.
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(e) = email {
            q = q.bind(e);
        }
        if let Some(s) = status {
            q = q.bind(s.as_str());
        }
        q.fetch_all(&self.pool).await?.iter().map(subscriber_row).collect()
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
                last.counts.insert(status, u64::try_from(r.get::<i64, _>(2)).unwrap_or_default());
            }
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// Notes `digest` as the content of `list`'s file; true when it differs from the one noted
    /// before (or none was).
    pub async fn note_list_file(&self, list: &ListName, digest: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = sqlx::query(
            "INSERT INTO list_files (list, digest, changed_at) VALUES (?, ?, ?) \
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
}

impl SqliteStore {
    /// A sign-up from the web form. An unknown address is stored as unconfirmed; any other is
    /// left as it is (a request is not consent). The request joins the consent record either way.
    pub async fn request_subscription(
        &self,
        email: &EmailAddress,
        name: Option<&SubscriberName>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Signup, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, status FROM subscribers WHERE lower(email) = ?")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await?;
        let (id, before) = match row {
            Some(r) => (r.get::<i64, _>(0), Some(parse::<SubscriberStatus>(r.get::<&str, _>(1))?)),
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
                     VALUES (?, ?, '{}', 'unconfirmed', ?, ?) RETURNING id",
                )
                .bind(email.as_str())
                .bind(name.map_or("", |n| n.as_str()))
                .bind(ms(now))
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
                (id, None)
            }
        };
        let mailbox = keys::mailbox_digest(email);
        let day_ago = ms(now) - 24 * 3600 * 1000;
        sqlx::query("DELETE FROM signup_requests WHERE at <= ?").bind(day_ago).execute(&mut *tx).await?;
        let recent: i64 = sqlx::query_scalar("SELECT count(*) FROM signup_requests WHERE mailbox = ? AND at > ?")
            .bind(&mailbox)
            .bind(day_ago)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("INSERT INTO signup_requests (mailbox, at) VALUES (?, ?)")
            .bind(&mailbox)
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
        consent(&mut tx, Some(id), ConsentEvent::Subscribe, source, now).await?;
        tx.commit().await?;
        Ok(Signup { before, recent_requests: u32::try_from(recent).unwrap_or(u32::MAX) })
    }

    /// Acts on a confirmation link made at `issued`: the address becomes active and joins
    /// `lists`, unless it left after the link was made.
    pub async fn confirm_subscription(
        &self,
        email: &EmailAddress,
        lists: &[ListName],
        issued: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Confirmation, StoreError> {
        let mut tx = self.write().await?;
        let row = sqlx::query("SELECT id, status FROM subscribers WHERE lower(email) = ?")
            .bind(email.key())
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else { return Ok(Confirmation::Unknown) };
        let id: i64 = row.get(0);
        let status: SubscriberStatus = parse(row.get::<&str, _>(1))?;
        let left_since: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM consent_events WHERE subscriber_id = ? \
             AND event IN ('unsubscribe', 'bounce', 'complaint', 'forget') AND at >= ?",
        )
        .bind(id)
        .bind(ms(issued))
        .fetch_one(&mut *tx)
        .await?;
        if left_since > 0 && status != SubscriberStatus::Active {
            return Ok(Confirmation::Stale);
        }
        let outcome = if status == SubscriberStatus::Active {
            Confirmation::AlreadyActive
        } else {
            sqlx::query("UPDATE subscribers SET status = 'active', updated_at = ? WHERE id = ?")
                .bind(ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            consent(&mut tx, Some(id), ConsentEvent::Confirm, source, now).await?;
            Confirmation::Confirmed
        };
        let mut ids = ListIds::new();
        for l in lists {
            join(&mut tx, id, l, now, &mut ids).await?;
        }
        tx.commit().await?;
        Ok(outcome)
    }

    /// Subscribers by status, for metrics.
    pub async fn status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows =
            sqlx::query("SELECT status, count(*) FROM subscribers GROUP BY status").fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, u64> = SubscriberStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for r in rows {
            out.insert(r.get(0), u64::try_from(r.get::<i64, _>(1)).unwrap_or_default());
        }
        Ok(out)
    }
}

impl SqliteStore {
    /// One page of subscribers in address order: at most `limit`, each after `after`.
    pub async fn subscribers_page(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
        after: Option<&EmailAddress>,
        limit: u32,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id, s.email, s.name, s.status, s.attributes, \
             (SELECT group_concat(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) \
             FROM subscribers s WHERE s.email > ? AND s.email NOT LIKE 'forgotten:%' \
             AND (? IS NULL OR s.status = ?) \
             AND (? IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                       WHERE m.subscriber_id = s.id AND l.name = ?)) \
             ORDER BY s.email LIMIT ?",
        )
        .bind(after.map_or("", EmailAddress::as_str))
        .bind(status.map(SubscriberStatus::as_str))
        .bind(status.map(SubscriberStatus::as_str))
        .bind(list.map(AsRef::<str>::as_ref))
        .bind(list.map(AsRef::<str>::as_ref))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(subscriber_row).collect()
    }
}

async fn list_id(tx: &mut Transaction<'static, Sqlite>, list: &ListName) -> Result<i64, StoreError> {
    sqlx::query("INSERT OR IGNORE INTO lists (name) VALUES (?)").bind(list.as_ref()).execute(&mut **tx).await?;
    Ok(sqlx::query_scalar("SELECT id FROM lists WHERE name = ?").bind(list.as_ref()).fetch_one(&mut **tx).await?)
}

async fn consent(
    tx: &mut Transaction<'static, Sqlite>,
    subscriber: Option<i64>,
    event: ConsentEvent,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO consent_events (subscriber_id, event, source, at) VALUES (?, ?, ?, ?)")
        .bind(subscriber)
        .bind(event.as_str())
        .bind(source)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// How many deliveries `QUEUE_ISSUE` would queue for the lists ?1.
const COUNT_RECIPIENTS: &str = "SELECT count(DISTINCT s.id) FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each(?1))";

/// Makes the list's members exactly the rows that arrive, inside `tx`.
async fn sync_list(
    tx: &mut Transaction<'static, Sqlite>,
    list: &ListName,
    parts: tokio::sync::mpsc::Receiver<ImportPart>,
    now: DateTime<Utc>,
) -> Result<ImportCounts, StoreError> {
    // The file's addresses, kept by the database rather than in memory; created inside the
    // transaction, so a rollback takes it away too.
    sqlx::query("CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT PRIMARY KEY)").execute(&mut **tx).await?;
    sqlx::query("DELETE FROM temp.listed").execute(&mut **tx).await?;
    let mut counts = take_rows(tx, parts, Some(list), &format!("list file {list}"), now).await?;
    let list_id = list_id(tx, list).await?;
    counts.removed = sqlx::query(SYNC_REMOVE).bind(list_id).execute(&mut **tx).await?.rows_affected();
    sqlx::query("DELETE FROM temp.listed").execute(&mut **tx).await?;
    Ok(counts)
}

/// Upserts the rows that arrive until `End`. For a list file (`listed`), every row is put on the
/// list and its address into `temp.listed`.
async fn take_rows(
    tx: &mut Transaction<'static, Sqlite>,
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
        upsert(tx, &rows, source, now, &mut counts, &mut ids).await?;
        if listed.is_some() {
            let emails: Vec<String> = rows.iter().map(|r| r.email.key()).collect();
            sqlx::query("INSERT OR IGNORE INTO temp.listed (email) SELECT value FROM json_each(?)")
                .bind(to_json(&emails)?)
                .execute(&mut **tx)
                .await?;
        }
    }
    Err(StoreError::InputEnded)
}

/// The members of list ?1 the list file no longer names.
const SYNC_REMOVE: &str = "DELETE FROM memberships WHERE list_id = ?1 AND NOT EXISTS \
     (SELECT 1 FROM subscribers s JOIN temp.listed k ON k.email = lower(s.email) WHERE s.id = memberships.subscriber_id)";

/// Rows an import writes per statement. Each chunk travels as one JSON array that `json_each`
/// unpacks, so a chunk costs a handful of statements where a row cost four: sqlx hands every
/// statement to the connection's thread and back, and that hop, not SQLite, was the import's time.
const IMPORT_CHUNK: usize = 2000;

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// Adds or updates subscribers from an import, a list file or a command. New addresses are
/// active (the publisher vouches for their consent); one that left stays as it is.
async fn upsert(
    tx: &mut Transaction<'static, Sqlite>,
    rows: &[NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<(), StoreError> {
    for chunk in import::chunks(rows, IMPORT_CHUNK) {
        upsert_chunk(tx, chunk, source, now, counts, ids).await?;
    }
    Ok(())
}

/// Writes rows with distinct addresses. The transaction is `BEGIN IMMEDIATE`: no other writer
/// can add an address between the read and the insert.
async fn upsert_chunk(
    tx: &mut Transaction<'static, Sqlite>,
    rows: &[NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<(), StoreError> {
    let keys: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let [forgotten, as_given] = keys::forgotten_forms(&r.email);
            [r.email.key(), forgotten, as_given]
        })
        .collect();
    let found: HashMap<String, (i64, String, String, SubscriberStatus)> = sqlx::query(
        "SELECT id, lower(email), name, attributes, status FROM subscribers \
         WHERE lower(email) IN (SELECT value FROM json_each(?))",
    )
    .bind(to_json(&keys)?)
    .fetch_all(&mut **tx)
    .await?
    .into_iter()
    .map(|r| Ok((r.get(1), (r.get(0), r.get(2), r.get(3), parse(r.get::<&str, _>(4))?))))
    .collect::<Result<_, StoreError>>()?;
    let plan = import::Plan::new(rows, |row| {
        let (id, name, attributes, status) = found
            .get(&row.email.key())
            .or_else(|| keys::forgotten_forms(&row.email).iter().find_map(|f| found.get(f)))?;
        Some(import::Stored { id: *id, name, attributes, status: *status })
    })?;

    if !plan.updates.is_empty() {
        sqlx::query(
            "UPDATE subscribers SET name = u.value ->> 1, attributes = u.value ->> 2, status = 'active', updated_at = ?2 \
             FROM json_each(?1) AS u WHERE subscribers.id = u.value ->> 0",
        )
        .bind(to_json(&plan.updates)?)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?;
        consent_many(tx, &plan.reactivated, ConsentEvent::Import, source, now).await?;
    }

    let mut added: Vec<(i64, &NewSubscriber)> = Vec::new();
    if !plan.fresh.is_empty() {
        let mut columns: Vec<(&str, String, String)> = Vec::with_capacity(plan.fresh.len());
        for row in &plan.fresh {
            columns.push((
                row.email.as_str(),
                row.name.as_ref().map_or("", |n| n.as_str()).to_owned(),
                to_json(&row.attributes)?,
            ));
        }
        // In the file's order, so ids (and the consent record) follow it.
        let inserted: HashMap<String, i64> = sqlx::query(
            "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, 'active', ?2, ?2 FROM json_each(?1) ORDER BY key \
             RETURNING id, email",
        )
        .bind(to_json(&columns)?)
        .bind(ms(now))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|r| (r.get::<String, _>(1), r.get::<i64, _>(0)))
        .collect();
        for &row in &plan.fresh {
            let id = inserted
                .get(row.email.as_str())
                .ok_or_else(|| StoreError::Corrupt("an imported address was not added, nor found".into()))?;
            added.push((*id, row));
        }
        added.sort_by_key(|(id, _)| *id);
        let new_ids: Vec<i64> = added.iter().map(|(id, _)| *id).collect();
        let event = if source == "add" { ConsentEvent::Add } else { ConsentEvent::Import };
        consent_many(tx, &new_ids, event, source, now).await?;
    }

    let mut pairs: Vec<(i64, i64)> = Vec::new();
    for (id, row) in plan.existing.iter().map(|(id, _, row)| (*id, *row)).chain(added.iter().copied()) {
        for l in &row.lists {
            pairs.push((cached_list_id(tx, l, ids).await?, id));
        }
    }
    let joined: HashSet<i64> = if pairs.is_empty() {
        HashSet::new()
    } else {
        // RETURNING names only the rows inserted, not those ignored as already there.
        sqlx::query_scalar(
            "INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) \
             SELECT value ->> 0, value ->> 1, ?2 FROM json_each(?1) ORDER BY key RETURNING subscriber_id",
        )
        .bind(to_json(&pairs)?)
        .bind(ms(now))
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .collect()
    };
    plan.count(added.len(), &joined, counts);
    Ok(())
}

async fn consent_many(
    tx: &mut Transaction<'static, Sqlite>,
    subscribers: &[i64],
    event: ConsentEvent,
    source: &str,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    if subscribers.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO consent_events (subscriber_id, event, source, at) \
         SELECT value, ?2, ?3, ?4 FROM json_each(?1) ORDER BY key",
    )
    .bind(to_json(&subscribers)?)
    .bind(event.as_str())
    .bind(source)
    .bind(ms(now))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// List ids met during one transaction: an import of a million rows names the same few lists.
type ListIds = HashMap<ListName, i64>;

async fn cached_list_id(
    tx: &mut Transaction<'static, Sqlite>,
    list: &ListName,
    ids: &mut ListIds,
) -> Result<i64, StoreError> {
    if let Some(id) = ids.get(list) {
        return Ok(*id);
    }
    let id = list_id(tx, list).await?;
    ids.insert(list.clone(), id);
    Ok(id)
}

async fn join(
    tx: &mut Transaction<'static, Sqlite>,
    subscriber: i64,
    list: &ListName,
    now: DateTime<Utc>,
    ids: &mut ListIds,
) -> Result<bool, StoreError> {
    let list = cached_list_id(tx, list, ids).await?;
    Ok(sqlx::query("INSERT OR IGNORE INTO memberships (list_id, subscriber_id, created_at) VALUES (?, ?, ?)")
        .bind(list)
        .bind(subscriber)
        .bind(ms(now))
        .execute(&mut **tx)
        .await?
        .rows_affected()
        > 0)
}

fn subscriber_row(r: &SqliteRow) -> Result<SubscriberRecord, StoreError> {
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
