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
    Arguments, ConnectOptions, Connection, PgConnection, PgPool, Row,
    error::BoxDynError,
    postgres::{PgArguments, PgConnectOptions, PgPoolOptions, PgRow},
};

use super::{
    Claimed, ConsentEvent, Deferred, DeliveryCounts, Failure, IssueRecord, LedgerCounts, NewIssue, Outcome, SentIssue,
    StoreError,
};
use crate::domain::{IssueStatus, ListName, SubscriberStatus};

mod tls;

pub(super) static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// How often a transaction that lost a deadlock or a serialisation conflict is run again.
const RETRIES: u32 = 5;

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
/// Every lease `owner` holds; a lease only ever sits on a delivery still to send.
pub(super) const RELEASE: &str = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
     WHERE issue_number IN (SELECT number FROM issues WHERE status = 'sending') \
     AND state IN ('queued', 'deferred') AND lease_owner = $1 AND lease_until IS NOT NULL";
/// The earliest moment a delivery of issue $1 can be claimed: min over the deliveries still to
/// send of max(next_attempt_at, lease_until), written as two index walks that each stop early.
pub(super) const NEXT_DUE: &str = "SELECT LEAST( \
     (SELECT min(next_attempt_at) FROM deliveries WHERE issue_number = $1 AND state IN ('queued', 'deferred') \
      AND (lease_until IS NULL OR lease_until <= next_attempt_at)), \
     (SELECT min(lease_until) FROM deliveries WHERE issue_number = $1 AND state IN ('queued', 'deferred') \
      AND lease_until > next_attempt_at))";
pub(super) const FINISH_ISSUE: &str = "UPDATE issues SET status = 'sent', finished_at = $1 \
     WHERE number = $2 AND status = 'sending' \
     AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_number = $2 AND state IN ('queued', 'deferred'))";
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
pub(super) const COUNTS: &str = "SELECT state, count(*) FROM deliveries WHERE issue_number = $1 GROUP BY state";
pub(super) const CANCEL_DELIVERIES: &str = "UPDATE deliveries SET state = 'skipped', last_reply = 'issue cancelled', \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE issue_number = $2 AND state IN ('queued', 'deferred')";
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
const CONSENT_MANY: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT u.id, $1, u.source, $2 FROM UNNEST($3::bigint[], $4::text[]) AS u(id, source)";
pub(super) const CONSENTS: &str = "INSERT INTO consent_events (subscriber_id, event, source, at) \
     SELECT u.id, $2, $3, $4 FROM UNNEST($1::bigint[]) AS u(id)";
/// The addresses of the list files a transaction syncs, kept by the server rather than in
/// memory; one table for every file, gone with the transaction.
pub(super) const OPEN_LISTED: &[&str] = &[
    "CREATE TEMP TABLE IF NOT EXISTS listed (email TEXT COLLATE \"C\" PRIMARY KEY) ON COMMIT DROP",
    "TRUNCATE listed",
];
pub(super) const LIST_ADDRESSES: &str =
    "INSERT INTO listed (email) SELECT * FROM UNNEST($1::text[]) ON CONFLICT DO NOTHING";
/// Statistics for `SYNC_REMOVE`'s anti-join: the table is new, and PostgreSQL would otherwise
/// guess its size.
pub(super) const LISTED_READY: &[&str] = &["ANALYZE listed"];
pub(super) const CLOSE_LISTED: &[&str] = &[];
const ISSUE_COLUMNS: &str = "number, status, subject, issue_date, articles, slot, created_at, finished_at";

#[derive(Debug, Clone)]
pub struct PgStore {
    pub(super) pool: PgPool,
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

fn issue_number(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn count(v: i64) -> u64 {
    u64::try_from(v).unwrap_or_default()
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// A rate bucket's numbers, locked until the transaction ends.
pub(super) const LOCK_BUCKET: &str = "SELECT tokens, updated_at FROM rate_buckets WHERE name = $1 FOR UPDATE";

/// Begins a transaction; row locks and `ON CONFLICT` keep writers apart.
pub(super) async fn begin(pool: &PgPool) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, StoreError> {
    Ok(pool.begin().await?)
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

/// Runs one statement (atomic on its own) again after a deadlock or serialisation failure, as
/// [`in_tx!`] runs a transaction again.
async fn retrying<T, F, Fut>(mut statement: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut attempt = 0;
    loop {
        match statement().await.map_err(StoreError::from) {
            Err(e) if attempt < RETRIES && transient(&e) => {
                attempt += 1;
                tokio::time::sleep(retry_pause(attempt)).await;
            }
            other => return other,
        }
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

    pub async fn history(&self) -> Result<(u32, HashSet<String>), StoreError> {
        let max: Option<i64> = sqlx::query_scalar("SELECT max(number) FROM issues").fetch_one(&self.pool).await?;
        let carried: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT a.identity FROM issue_articles a JOIN issues i ON i.number = a.issue_number \
             WHERE i.status <> 'cancelled'",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok((issue_number(max.unwrap_or(0) + 1)?, carried.into_iter().collect()))
    }

    pub async fn first_seen(
        &self,
        identities: &[String],
        now: DateTime<Utc>,
        record: bool,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        if record {
            // The first writer's time stands; a later one's is ignored.
            sqlx::query(
                "INSERT INTO article_first_seen (identity, first_seen) SELECT u.identity, $2 \
                 FROM UNNEST($1::text[]) AS u(identity) ON CONFLICT DO NOTHING",
            )
            .bind(identities)
            .bind(ms(now))
            .execute(&self.pool)
            .await?;
        }
        let rows = sqlx::query("SELECT identity, first_seen FROM article_first_seen WHERE identity = ANY($1::text[])")
            .bind(identities)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(|r| (r.get::<String, _>(0), from_ms(r.get(1)))).collect())
    }

    pub async fn unfinished_issue(&self) -> Result<Option<IssueRecord>, StoreError> {
        let n: Option<i64> =
            sqlx::query_scalar("SELECT min(number) FROM issues WHERE status = 'sending'").fetch_one(&self.pool).await?;
        match n {
            Some(n) => self.issue(issue_number(n)?).await,
            None => Ok(None),
        }
    }

    /// Creates the issue and queues one delivery per active subscriber of `lists` (one for
    /// someone on two of them), all in one transaction. A second process creating the same
    /// number, or serving the same slot, waits on the first and then finds it taken.
    pub async fn create_issue(
        &self,
        issue: &NewIssue,
        lists: &[ListName],
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        let articles = to_json(&issue.articles)?;
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        let number = i64::from(issue.number);
        in_tx!(self, |tx| {
            let inserted = sqlx::query(
                "INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at) \
                 VALUES ($1, 'sending', $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(number)
            .bind(&issue.subject)
            .bind(ms(issue.date))
            .bind(&articles)
            .bind(issue.slot.as_ref().map(|s| &s.key))
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::IssueExists(issue.number));
            }
            if let Some(slot) = &issue.slot {
                let taken = sqlx::query(
                    "INSERT INTO slots (key, at, outcome, issue_number, recorded_at) VALUES ($1, $2, 'issue', $3, $4) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&slot.key)
                .bind(ms(slot.at))
                .bind(number)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?
                .rows_affected()
                    == 0;
                if taken {
                    return Err(StoreError::SlotTaken(slot.key.clone()));
                }
            }
            sqlx::query(
                "INSERT INTO issue_articles (issue_number, identity) SELECT $1, u.identity \
                 FROM UNNEST($2::text[]) AS u(identity) ON CONFLICT DO NOTHING",
            )
            .bind(number)
            .bind(&issue.identities)
            .execute(&mut *tx)
            .await?;
            sqlx::query(QUEUE_ISSUE).bind(number).bind(ms(now)).bind(&names).execute(&mut *tx).await?;
            Ok(())
        })?;
        self.issue(issue.number).await?.ok_or_else(|| StoreError::Corrupt("the new issue vanished".into()))
    }

    pub async fn issue(&self, number: u32) -> Result<Option<IssueRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ISSUE_COLUMNS} FROM issues WHERE number = $1")))
            .bind(i64::from(number))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let mut issue = issue_row(&row)?;
        issue.counts = self.counts(number).await?;
        Ok(Some(issue))
    }

    async fn counts(&self, number: u32) -> Result<DeliveryCounts, StoreError> {
        let rows = sqlx::query(COUNTS).bind(i64::from(number)).fetch_all(&self.pool).await?;
        let mut counts = DeliveryCounts::default();
        for r in rows {
            counts.add(parse(r.get::<&str, _>(0))?, count(r.get(1)));
        }
        Ok(counts)
    }

    pub async fn issues(&self) -> Result<Vec<IssueRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT {ISSUE_COLUMNS} FROM issues ORDER BY number")))
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
             WHERE d.issue_number = $1 AND d.state = 'failed' ORDER BY s.email",
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
             WHERE d.issue_number = $1 AND d.state = 'deferred' ORDER BY d.next_attempt_at, s.email",
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
        in_tx!(self, |tx| {
            let done = sqlx::query(
                "UPDATE issues SET status = 'cancelled', finished_at = $1 WHERE number = $2 AND status = 'sending'",
            )
            .bind(ms(now))
            .bind(i64::from(number))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query(CANCEL_DELIVERIES).bind(ms(now)).bind(i64::from(number)).execute(&mut *tx).await?;
            Ok(done > 0)
        })
    }

    /// Puts a finished issue back to sending, so that its deliveries that can still go out do.
    pub async fn reopen_issue(&self, number: u32, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE issues SET status = 'sending', finished_at = NULL WHERE number = $1 AND status = 'sent'",
        )
        .bind(i64::from(number))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    pub async fn finish_issue_if_done(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = sqlx::query(FINISH_ISSUE).bind(ms(now)).bind(i64::from(number)).execute(&self.pool).await?;
        Ok(done.rows_affected() > 0)
    }

    /// Takes up to `limit` due deliveries of the issue under a lease, committed before this
    /// returns. Rows another worker is claiming at this instant are skipped, not waited for;
    /// expired leases are taken over. Deliveries whose subscriber is no longer active are marked
    /// skipped instead: they get nothing more.
    pub async fn claim(
        &self,
        number: u32,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now_ms = ms(now);
        let mut claimed = in_tx!(self, |tx| {
            let rows = sqlx::query(CLAIM)
                .bind(owner)
                .bind(now_ms + lease_ms(lease))
                .bind(i64::from(number))
                .bind(now_ms)
                .bind(i64::try_from(limit).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await?;
            let ids: Vec<i64> = rows.iter().map(|r| r.get::<i64, _>(1)).collect();
            let people: HashMap<i64, PgRow> = sqlx::query(CLAIM_PEOPLE)
                .bind(&ids)
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(|r| (r.get::<i64, _>(0), r))
                .collect();
            let mut claimed = Vec::with_capacity(rows.len());
            let (mut left, mut why) = (Vec::new(), Vec::new());
            for r in rows {
                let delivery_id: i64 = r.get(0);
                let subscriber_id: i64 = r.get(1);
                let s = people
                    .get(&subscriber_id)
                    .ok_or_else(|| StoreError::Corrupt("a delivery without its subscriber".into()))?;
                let status: SubscriberStatus = parse(s.get::<&str, _>(4))?;
                if status != SubscriberStatus::Active {
                    // Left (or bounced) since the issue was queued: they get nothing more from it.
                    left.push(delivery_id);
                    why.push(format!("subscriber is {status}"));
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
            if !left.is_empty() {
                sqlx::query(SKIP_LEFT).bind(now_ms).bind(&left).bind(&why).execute(&mut *tx).await?;
            }
            Ok(claimed)
        })?;
        claimed.sort_by_key(|c| c.delivery_id);
        Ok(claimed)
    }

    /// Extends the leases `owner` holds on `ids` (the deliveries it has claimed and not yet
    /// recorded).
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
        // Rows are locked in id order here and in `record`, so the two never wait on each other
        // in a cycle; a deadlock with anything else is retried.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        let ids = &ids;
        let until = ms(now) + lease_ms(lease);
        Ok(retrying(
            || async move { sqlx::query(RENEW_LEASES).bind(until).bind(ids).bind(owner).execute(&self.pool).await },
        )
        .await?
        .rows_affected())
    }

    /// Writes a batch of outcomes in one transaction, one statement per kind of outcome.
    pub async fn record(&self, owner: &str, outcomes: &[Outcome], now: DateTime<Utc>) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let now_ms = ms(now);
        // In id order, as `renew_leases` locks them: see there.
        let mut outcomes: Vec<&Outcome> = outcomes.iter().collect();
        outcomes.sort_unstable_by_key(|o| o.delivery_id());
        let mut sent = (Vec::new(), Vec::new(), Vec::new());
        let mut deferred = (Vec::new(), Vec::new(), Vec::new());
        let mut failed = (Vec::new(), Vec::new());
        let mut bounces: Vec<(i64, &str)> = Vec::new();
        let mut released = Vec::new();
        for o in outcomes {
            match o {
                Outcome::Sent { delivery_id, message_id, reply } => {
                    sent.0.push(*delivery_id);
                    sent.1.push(message_id.as_str());
                    sent.2.push(reply.as_deref());
                }
                Outcome::Deferred { delivery_id, reply, retry_at } => {
                    deferred.0.push(*delivery_id);
                    deferred.1.push(reply.as_str());
                    deferred.2.push(ms(*retry_at));
                }
                Outcome::Failed { delivery_id, reply, bounce } => {
                    failed.0.push(*delivery_id);
                    failed.1.push(reply.as_str());
                    if let Some(subscriber_id) = bounce
                        && !bounces.iter().any(|(id, _)| id == subscriber_id)
                    {
                        bounces.push((*subscriber_id, reply.as_str()));
                    }
                }
                Outcome::Released { delivery_id } => released.push(*delivery_id),
            }
        }
        if deferred.0.is_empty() && failed.0.is_empty() && released.is_empty() {
            // Only sends, by far the common batch: one statement is atomic on its own, and saves
            // the round trips of a transaction around it.
            let sent = &sent;
            retrying(|| async move {
                sqlx::query(RECORD_SENT)
                    .bind(now_ms)
                    .bind(&sent.0)
                    .bind(&sent.1)
                    .bind(&sent.2)
                    .execute(&self.pool)
                    .await
            })
            .await?;
            return Ok(());
        }
        in_tx!(self, |tx| {
            if !sent.0.is_empty() {
                sqlx::query(RECORD_SENT)
                    .bind(now_ms)
                    .bind(&sent.0)
                    .bind(&sent.1)
                    .bind(&sent.2)
                    .execute(&mut *tx)
                    .await?;
            }
            if !deferred.0.is_empty() {
                sqlx::query(RECORD_DEFERRED)
                    .bind(now_ms)
                    .bind(&deferred.0)
                    .bind(&deferred.1)
                    .bind(&deferred.2)
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            if !failed.0.is_empty() {
                sqlx::query(RECORD_FAILED).bind(now_ms).bind(&failed.0).bind(&failed.1).execute(&mut *tx).await?;
            }
            if !bounces.is_empty() {
                let ids: Vec<i64> = bounces.iter().map(|(id, _)| *id).collect();
                let changed: HashSet<i64> = sqlx::query_scalar(RECORD_BOUNCES)
                    .bind(now_ms)
                    .bind(&ids)
                    .fetch_all(&mut *tx)
                    .await?
                    .into_iter()
                    .collect();
                let (ids, replies): (Vec<i64>, Vec<&str>) =
                    bounces.iter().filter(|(id, _)| changed.contains(id)).copied().unzip();
                consent_many(&mut tx, &ids, ConsentEvent::Bounce, &replies, now).await?;
            }
            if !released.is_empty() {
                sqlx::query(RECORD_RELEASED).bind(&released).bind(owner).execute(&mut *tx).await?;
            }
            Ok(())
        })
    }

    pub async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(sqlx::query(RELEASE).bind(owner).execute(&self.pool).await?.rows_affected())
    }

    pub async fn next_due(&self, number: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> = sqlx::query_scalar(NEXT_DUE).bind(i64::from(number)).fetch_one(&self.pool).await?;
        Ok(t.map(from_ms))
    }

    pub async fn sending_issues(&self) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> = sqlx::query_scalar("SELECT number FROM issues WHERE status = 'sending' ORDER BY number")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().filter_map(|n| u32::try_from(n).ok()).collect())
    }

    /// Issues by status, for metrics.
    pub async fn issue_status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows = sqlx::query("SELECT status, count(*) FROM issues GROUP BY status").fetch_all(&self.pool).await?;
        let mut out: BTreeMap<String, u64> = IssueStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        for r in rows {
            out.insert(r.get(0), count(r.get(1)));
        }
        Ok(out)
    }

    /// Deliveries by their issue's status and their state, for metrics: the whole ledger, whichever
    /// process recorded each outcome. Counted per issue first, which the ledger's index on
    /// (issue, state) answers alone, then summed over the few issues.
    pub async fn ledger_counts(&self) -> Result<LedgerCounts, StoreError> {
        let rows = sqlx::query(
            "SELECT i.status, c.state, sum(c.n)::bigint FROM \
             (SELECT issue_number, state, count(*) AS n FROM deliveries GROUP BY issue_number, state) c \
             JOIN issues i ON i.number = c.issue_number GROUP BY i.status, c.state",
        )
        .fetch_all(&self.pool)
        .await?;
        let mut out = LedgerCounts::default();
        for r in rows {
            out.add(parse(r.get::<&str, _>(0))?, parse(r.get::<&str, _>(1))?, count(r.get(2)));
        }
        Ok(out)
    }

    /// The issues that went out or are going out (at least one delivery sent: a reader may
    /// already hold it), newest first, without their delivery counts (which cost a walk of
    /// the ledger).
    pub async fn sent_issues(&self) -> Result<Vec<SentIssue>, StoreError> {
        sqlx::query(
            "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
             WHERE status = 'sent' OR (status = 'sending' AND EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')) \
             ORDER BY number DESC",
        )
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(sent_issue_row)
        .collect()
    }

    /// One issue, if it went out or is going out.
    pub async fn sent_issue(&self, number: u32) -> Result<Option<SentIssue>, StoreError> {
        let row = sqlx::query(
            "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
             WHERE number = $1 AND (status = 'sent' OR (status = 'sending' AND EXISTS \
                 (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')))",
        )
        .bind(i64::from(number))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(sent_issue_row).transpose()
    }

    /// Answers when the database does, for health checks.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
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

fn issue_row(r: &PgRow) -> Result<IssueRecord, StoreError> {
    Ok(IssueRecord {
        number: issue_number(r.get(0))?,
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

fn sent_issue_row(r: &PgRow) -> Result<SentIssue, StoreError> {
    let created_at = from_ms(r.get(4));
    Ok(SentIssue {
        number: issue_number(r.get(0))?,
        subject: r.get(1),
        date: from_ms(r.get(2)),
        articles: serde_json::from_str(r.get::<&str, _>(3)).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        sent_at: r.get::<Option<i64>, _>(5).map_or(created_at, from_ms),
        finished: r.get::<&str, _>(6) == IssueStatus::Sent.as_str(),
    })
}
