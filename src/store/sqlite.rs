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
    Arguments, ConnectOptions, Row, Sqlite, SqlitePool, Transaction,
    error::BoxDynError,
    sqlite::{
        SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
    },
};

use super::{
    Claimed, ConsentEvent, Deferred, DeliveryCounts, Failure, IssueRecord, LedgerCounts, NewIssue, Outcome, SentIssue,
    StoreError,
};
use crate::domain::{IssueStatus, ListName, SubscriberStatus};

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) pool: SqlitePool,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX / 2)
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
     SELECT value, $2, $3, $4 FROM json_each($1) ORDER BY key";
/// The addresses of the list file being synced, kept by the database rather than in memory;
/// created inside the transaction, so a rollback takes it away too.
pub(super) const OPEN_LISTED: &[&str] =
    &["CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT PRIMARY KEY)", "DELETE FROM temp.listed"];
pub(super) const LIST_ADDRESSES: &str = "INSERT OR IGNORE INTO temp.listed (email) SELECT value FROM json_each($1)";
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

fn rows_and_time<T: serde::Serialize>(rows: &[T], now: i64) -> Result<SqliteArguments, BoxDynError> {
    let mut args = SqliteArguments::default();
    args.add(serde_json::to_string(rows)?)?;
    args.add(now)?;
    Ok(args)
}

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

    pub async fn history(&self) -> Result<(u32, HashSet<String>), StoreError> {
        let max: Option<i64> = sqlx::query_scalar("SELECT max(number) FROM issues").fetch_one(&self.pool).await?;
        let carried: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT a.identity FROM issue_articles a JOIN issues i ON i.number = a.issue_number WHERE i.status != 'cancelled'",
        )
        .fetch_all(&self.pool)
        .await?;
        let next = u32::try_from(max.unwrap_or(0) + 1).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok((next, carried.into_iter().collect()))
    }

    pub async fn first_seen(
        &self,
        identities: &[String],
        now: DateTime<Utc>,
        record: bool,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let mut tx = if record { self.write().await? } else { self.pool.begin().await? };
        let mut out = HashMap::new();
        for id in identities {
            if record {
                sqlx::query("INSERT OR IGNORE INTO article_first_seen (identity, first_seen) VALUES (?, ?)")
                    .bind(id)
                    .bind(ms(now))
                    .execute(&mut *tx)
                    .await?;
            }
            let t: Option<i64> = sqlx::query_scalar("SELECT first_seen FROM article_first_seen WHERE identity = ?")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
            if let Some(t) = t {
                out.insert(id.clone(), from_ms(t));
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    pub async fn unfinished_issue(&self) -> Result<Option<IssueRecord>, StoreError> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT min(number) FROM issues WHERE status = 'sending'").fetch_one(&self.pool).await?;
        match n {
            Some(n) => self.issue(u32::try_from(n).map_err(|e| StoreError::Corrupt(e.to_string()))?).await,
            None => Ok(None),
        }
    }

    /// Creates the issue and queues one delivery per active subscriber of `lists` (one for
    /// someone on two of them), all in one transaction.
    pub async fn create_issue(
        &self,
        issue: &NewIssue,
        lists: &[ListName],
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        let mut tx = self.write().await?;
        let articles = serde_json::to_string(&issue.articles).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let inserted = sqlx::query(
            "INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at) VALUES (?, 'sending', ?, ?, ?, ?, ?) \
             ON CONFLICT DO NOTHING",
        )
        .bind(i64::from(issue.number))
        .bind(&issue.subject)
        .bind(ms(issue.date))
        .bind(articles)
        .bind(issue.slot.as_ref().map(|s| &s.key))
        .bind(ms(now))
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::IssueExists(issue.number));
        }
        if let Some(slot) = &issue.slot {
            let taken = sqlx::query(
                "INSERT INTO slots (key, at, outcome, issue_number, recorded_at) VALUES (?, ?, 'issue', ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&slot.key)
            .bind(ms(slot.at))
            .bind(i64::from(issue.number))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?
            .rows_affected()
                == 0;
            if taken {
                return Err(StoreError::SlotTaken(slot.key.clone()));
            }
        }
        for id in &issue.identities {
            sqlx::query("INSERT OR IGNORE INTO issue_articles (issue_number, identity) VALUES (?, ?)")
                .bind(i64::from(issue.number))
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let names = serde_json::to_string(&lists.iter().map(|l| l.as_ref()).collect::<Vec<_>>())
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(QUEUE_ISSUE)
            .bind(i64::from(issue.number))
            .bind(ms(now))
            .bind(ms(now))
            .bind(names)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        self.issue(issue.number).await?.ok_or_else(|| StoreError::Corrupt("the new issue vanished".into()))
    }

    pub async fn issue(&self, number: u32) -> Result<Option<IssueRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT number, status, subject, issue_date, articles, slot, created_at, finished_at FROM issues WHERE number = ?",
        )
        .bind(i64::from(number))
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let mut issue = issue_row(&row)?;
        issue.counts = self.counts(number).await?;
        Ok(Some(issue))
    }

    async fn counts(&self, number: u32) -> Result<DeliveryCounts, StoreError> {
        let rows = sqlx::query("SELECT state, count(*) FROM deliveries WHERE issue_number = ? GROUP BY state")
            .bind(i64::from(number))
            .fetch_all(&self.pool)
            .await?;
        let mut counts = DeliveryCounts::default();
        for r in rows {
            counts.add(parse(r.get::<&str, _>(0))?, u64::try_from(r.get::<i64, _>(1)).unwrap_or_default());
        }
        Ok(counts)
    }

    pub async fn issues(&self) -> Result<Vec<IssueRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, status, subject, issue_date, articles, slot, created_at, finished_at FROM issues ORDER BY number",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let mut issue = issue_row(&r)?;
            issue.counts = self.counts(issue.number).await?;
            out.push(issue);
        }
        Ok(out)
    }

    pub async fn failures(&self, number: u32) -> Result<Vec<Failure>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.email, d.last_reply, d.attempts FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_number = ? AND d.state = 'failed' ORDER BY s.email",
        )
        .bind(i64::from(number))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Failure {
                email: r.get(0),
                reply: r.get(1),
                attempts: u32::try_from(r.get::<i64, _>(2)).unwrap_or_default(),
            })
            .collect())
    }

    /// The deliveries of an issue waiting for another attempt, the soonest first.
    pub async fn deferred(&self, number: u32) -> Result<Vec<Deferred>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.email, d.last_reply, d.attempts, d.next_attempt_at FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_number = ? AND d.state = 'deferred' ORDER BY d.next_attempt_at, s.email",
        )
        .bind(i64::from(number))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .iter()
            .map(|r| Deferred {
                email: r.get(0),
                reply: r.get(1),
                attempts: u32::try_from(r.get::<i64, _>(2)).unwrap_or_default(),
                next_attempt: from_ms(r.get(3)),
            })
            .collect())
    }

    pub async fn cancel_issue(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = sqlx::query(
            "UPDATE issues SET status = 'cancelled', finished_at = ? WHERE number = ? AND status = 'sending'",
        )
        .bind(ms(now))
        .bind(i64::from(number))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            "UPDATE deliveries SET state = 'skipped', last_reply = 'issue cancelled', lease_owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE issue_number = ? AND state IN ('queued', 'deferred')",
        )
        .bind(ms(now))
        .bind(i64::from(number))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done > 0)
    }

    /// Puts a finished issue back to sending, so that its deliveries that can still go out do.
    pub async fn reopen_issue(&self, number: u32, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE issues SET status = 'sending', finished_at = NULL WHERE number = ? AND status = 'sent'",
        )
        .bind(i64::from(number))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    pub async fn finish_issue_if_done(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE issues SET status = 'sent', finished_at = ? WHERE number = ? AND status = 'sending' \
             AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_number = ? AND state IN ('queued', 'deferred'))",
        )
        .bind(ms(now))
        .bind(i64::from(number))
        .bind(i64::from(number))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    /// Takes up to `limit` due deliveries of the issue under a lease. Deliveries whose subscriber
    /// is no longer active are marked skipped instead: they get nothing more.
    pub async fn claim(
        &self,
        number: u32,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.write().await?;
        let n = i64::from(number);
        let now_ms = ms(now);
        // The due index is walked in its own order and the walk stops at the limit: a claim
        // costs the same on the first row of a million as on the last.
        let rows = sqlx::query(
            "UPDATE deliveries SET lease_owner = ?, lease_until = ? \
             WHERE id IN (SELECT id FROM deliveries WHERE issue_number = ? AND state IN ('queued', 'deferred') \
                          AND next_attempt_at <= ? AND (lease_until IS NULL OR lease_until < ?) LIMIT ?) \
             RETURNING id, subscriber_id, attempts",
        )
        .bind(owner)
        .bind(now_ms + lease_ms(lease))
        .bind(n)
        .bind(now_ms)
        .bind(now_ms)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(&mut *tx)
        .await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(1)).collect();
        let ids_json = serde_json::to_string(&ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let people: HashMap<i64, SqliteRow> = sqlx::query(
            "SELECT id, email, name, attributes, status FROM subscribers WHERE id IN (SELECT value FROM json_each(?))",
        )
        .bind(ids_json)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.get::<i64, _>(0), r))
        .collect();
        let mut claimed = Vec::with_capacity(rows.len());
        for r in rows {
            let delivery_id: i64 = r.get(0);
            let subscriber_id: i64 = r.get(1);
            let s = people
                .get(&subscriber_id)
                .ok_or_else(|| StoreError::Corrupt("a delivery without its subscriber".into()))?;
            let status: SubscriberStatus = parse(s.get::<&str, _>(4))?;
            if status != SubscriberStatus::Active {
                // Left (or bounced) since the issue was queued: they get nothing more from it.
                sqlx::query(
                    "UPDATE deliveries SET state = 'skipped', last_reply = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE id = ?",
                )
                .bind(format!("subscriber is {status}"))
                .bind(now_ms)
                .bind(delivery_id)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            claimed.push(Claimed {
                delivery_id,
                subscriber_id,
                email: parse(s.get::<&str, _>(1))?,
                name: s.get(2),
                attributes: serde_json::from_str(s.get::<&str, _>(3)).unwrap_or_default(),
                attempts: u32::try_from(r.get::<i64, _>(2)).unwrap_or_default(),
            });
        }
        tx.commit().await?;
        claimed.sort_by_key(|c| c.delivery_id);
        Ok(claimed)
    }

    /// Extends the leases `owner` holds on `ids` (the deliveries it has claimed and not yet
    /// recorded): by id, so no index on the owner has to follow every claim.
    pub async fn renew_leases(
        &self,
        owner: &str,
        ids: &[i64],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        Ok(sqlx::query(
            "UPDATE deliveries SET lease_until = ? WHERE id IN (SELECT value FROM json_each(?)) AND lease_owner = ? \
             AND state IN ('queued', 'deferred')",
        )
        .bind(ms(now) + lease_ms(lease))
        .bind(ids)
        .bind(owner)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }

    /// Writes a batch of outcomes in one transaction.
    pub async fn record(&self, owner: &str, outcomes: &[Outcome], now: DateTime<Utc>) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.write().await?;
        let now_ms = ms(now);
        // Sent is by far the most common outcome: one statement records a whole batch of them.
        let sent: Vec<serde_json::Value> = outcomes
            .iter()
            .filter_map(|o| match o {
                Outcome::Sent { delivery_id, message_id, reply } => {
                    Some(serde_json::json!({ "id": delivery_id, "mid": message_id, "reply": reply }))
                }
                _ => None,
            })
            .collect();
        if !sent.is_empty() {
            sqlx::query(
                "UPDATE deliveries SET state = 'sent', attempts = attempts + 1, message_id = j.mid, last_reply = j.reply, \
                 sent_at = ?, updated_at = ?, lease_owner = NULL, lease_until = NULL \
                 FROM (SELECT value ->> '$.id' AS id, value ->> '$.mid' AS mid, value ->> '$.reply' AS reply FROM json_each(?)) AS j \
                 WHERE deliveries.id = j.id",
            )
            .bind(now_ms)
            .bind(now_ms)
            .bind(serde_json::Value::Array(sent).to_string())
            .execute(&mut *tx)
            .await?;
        }
        for o in outcomes {
            match o {
                Outcome::Sent { .. } => {}
                Outcome::Deferred { delivery_id, reply, retry_at } => {
                    sqlx::query(
                        "UPDATE deliveries SET state = 'deferred', attempts = attempts + 1, last_reply = ?, next_attempt_at = ?, \
                         updated_at = ?, lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ? AND state != 'sent'",
                    )
                    .bind(reply)
                    .bind(ms(*retry_at))
                    .bind(now_ms)
                    .bind(delivery_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                }
                Outcome::Failed { delivery_id, reply, bounce } => {
                    sqlx::query(
                        "UPDATE deliveries SET state = 'failed', attempts = attempts + 1, last_reply = ?, updated_at = ?, \
                         lease_owner = NULL, lease_until = NULL WHERE id = ? AND state != 'sent'",
                    )
                    .bind(reply)
                    .bind(now_ms)
                    .bind(delivery_id)
                    .execute(&mut *tx)
                    .await?;
                    if let Some(subscriber_id) = bounce {
                        let changed = sqlx::query(
                            "UPDATE subscribers SET status = 'bounced', updated_at = ? WHERE id = ? AND status = 'active'",
                        )
                        .bind(now_ms)
                        .bind(subscriber_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if changed > 0 {
                            consent(&mut tx, Some(*subscriber_id), ConsentEvent::Bounce, reply, now).await?;
                        }
                    }
                }
                Outcome::Released { delivery_id } => {
                    sqlx::query(
                        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE id = ? AND lease_owner = ?",
                    )
                    .bind(delivery_id)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query("UPDATE deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ?")
            .bind(owner)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }

    pub async fn next_due(&self, number: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> = sqlx::query_scalar(
            "SELECT min(max(next_attempt_at, coalesce(lease_until, 0))) FROM deliveries WHERE issue_number = ? AND state IN ('queued', 'deferred')",
        )
        .bind(i64::from(number))
        .fetch_one(&self.pool)
        .await?;
        Ok(t.map(from_ms))
    }
}

impl SqliteStore {
    pub async fn sending_issues(&self) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar("SELECT number FROM issues WHERE status = 'sending' ORDER BY number")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().filter_map(|n| u32::try_from(n).ok()).collect())
    }
}

impl SqliteStore {
    /// Answers when the database does, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Issues by status, for metrics.
    pub async fn issue_status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT status, count(*) FROM issues GROUP BY status").fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, u64> = IssueStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for r in rows {
            out.insert(r.get(0), u64::try_from(r.get::<i64, _>(1)).unwrap_or_default());
        }
        Ok(out)
    }

    /// Deliveries by their issue's status and their state, for metrics: the whole ledger, whichever
    /// process recorded each outcome. Counted per issue first, which the ledger's index on
    /// (issue, state) answers alone, then summed over the few issues.
    pub async fn ledger_counts(&self) -> Result<LedgerCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT i.status, c.state, sum(c.n) FROM \
             (SELECT issue_number, state, count(*) AS n FROM deliveries GROUP BY issue_number, state) c \
             JOIN issues i ON i.number = c.issue_number GROUP BY i.status, c.state",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = LedgerCounts::default();
        for r in rows {
            let n = u64::try_from(r.get::<i64, _>(2)).unwrap_or_default();
            out.add(parse(r.get::<&str, _>(0))?, parse(r.get::<&str, _>(1))?, n);
        }
        Ok(out)
    }

    /// The issues that went out or are going out (at least one delivery sent: a reader may
    /// already hold it), newest first, without their delivery counts (which cost a walk of
    /// the ledger).
    pub async fn sent_issues(&self) -> Result<Vec<SentIssue>, StoreError> {
        let rows = sqlx::query(
            "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
             WHERE status = 'sent' OR (status = 'sending' AND EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')) \
             ORDER BY number DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(sent_issue_row).collect()
    }

    /// One issue, if it went out or is going out.
    pub async fn sent_issue(&self, number: u32) -> Result<Option<SentIssue>, StoreError> {
        let row = sqlx::query(
            "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
             WHERE number = ? AND (status = 'sent' OR (status = 'sending' AND EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')))",
        )
        .bind(i64::from(number))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sent_issue_row).transpose()
    }
}

fn sent_issue_row(r: &SqliteRow) -> Result<SentIssue, StoreError> {
    let created_at = from_ms(r.get(4));
    Ok(SentIssue {
        number: u32::try_from(r.get::<i64, _>(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        subject: r.get(1),
        date: from_ms(r.get(2)),
        articles: serde_json::from_str(r.get::<&str, _>(3)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        sent_at: r.get::<Option<i64>, _>(5).map_or(created_at, from_ms),
        finished: r.get::<&str, _>(6) == IssueStatus::Sent.as_str(),
    })
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

/// One delivery per active subscriber of the lists ?4, a JSON array (one for someone on two of
/// them).
const QUEUE_ISSUE: &str = "INSERT INTO deliveries (issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at) \
     SELECT DISTINCT ?1, s.id, 'queued', 0, ?2, ?3 FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each(?4))";
/// How many deliveries `QUEUE_ISSUE` would queue for the lists ?1.
pub(super) const COUNT_RECIPIENTS: &str = "SELECT count(DISTINCT s.id) FROM subscribers s \
     JOIN memberships m ON m.subscriber_id = s.id JOIN lists l ON l.id = m.list_id \
     WHERE s.status = 'active' AND l.name IN (SELECT value FROM json_each(?1))";

fn issue_row(r: &SqliteRow) -> Result<IssueRecord, StoreError> {
    Ok(IssueRecord {
        number: u32::try_from(r.get::<i64, _>(0)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        status: parse::<IssueStatus>(r.get::<&str, _>(1))?,
        subject: r.get(2),
        date: from_ms(r.get(3)),
        articles: serde_json::from_str(r.get::<&str, _>(4)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        slot: r.get(5),
        created_at: from_ms(r.get(6)),
        finished_at: r.get::<Option<i64>, _>(7).map(from_ms),
        counts: DeliveryCounts::default(),
    })
}
