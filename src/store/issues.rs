//! Issues: made once per number (and per schedule slot), with the articles they carried and one
//! queued delivery per active subscriber of their lists, all in one transaction; then read back
//! with their delivery counts, cancelled, reopened, and listed for the archive.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Transaction, Type};

use super::{
    DeliveryCounts, Filled, IssueRecord, NewIssue, ReportCounts, SentIssue, SlotRef, Store, StoreError,
    backend::{Values, count, from_ms, in_tx, issue_number, ms, parse, to_json, with_backend},
};

/// Readers queued by one statement: a bound list stays well within what either database takes.
pub(super) const QUEUE_CHUNK: usize = 10_000;
/// Readers queued with a new issue, in its own transaction: few enough that its first message
/// leaves at once, whatever the size of its lists. The rest follow a chunk at a time
/// ([`Store::queue_more`]) while it is delivered.
pub const FIRST_CHUNK: usize = 2_000;
use crate::domain::{IssueStatus, ListName};

const ONE: &str = "SELECT number, status, subject, issue_date, articles, slot, created_at, finished_at, note, \
     intro, left_out, edited_subject, send_at, edition FROM issues WHERE number = $1";
const ALL: &str = "SELECT number, status, subject, issue_date, articles, slot, created_at, finished_at, note, \
     intro, left_out, edited_subject, send_at, edition FROM issues ORDER BY number";
const NEXT_NUMBER: &str = "SELECT max(number) FROM issues";
/// The articles an issue that was not cancelled carried: `since_last_issue` leaves them out.
const CARRIED: &str = "SELECT DISTINCT a.identity FROM issue_articles a JOIN issues i ON i.number = a.issue_number \
     WHERE i.status <> 'cancelled'";
const UNFINISHED: &str = "SELECT min(number) FROM issues WHERE status = 'sending'";
/// An edition's issue is one with its key ($1), or one made without editions when it is the
/// default edition ($2).
const UNFINISHED_OF: &str =
    "SELECT min(number) FROM issues WHERE status = 'sending' AND (edition = $1 OR (edition IS NULL AND $2))";
const PAUSED_OF: &str =
    "SELECT min(number) FROM issues WHERE status = 'paused' AND (edition = $1 OR (edition IS NULL AND $2))";
/// The articles the issues of one edition carried (see `OF_EDITION`).
const CARRIED_BY_EDITION: &str = "SELECT DISTINCT a.identity FROM issue_articles a JOIN issues i ON i.number = a.issue_number \
     WHERE i.status <> 'cancelled' AND (i.edition = $1 OR (i.edition IS NULL AND $2))";
const SENDING: &str = "SELECT number FROM issues WHERE status = 'sending' ORDER BY number";
const PAUSED: &str = "SELECT min(number) FROM issues WHERE status = 'paused'";
/// `$8` is the queueing cursor: 0 for an issue whose readers are queued a chunk at a time, NULL
/// for one queued whole in this transaction.
const INSERT: &str = "INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at, edition, \
     queued_through) VALUES ($1, 'sending', $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
/// Moves issue $1's queueing cursor to $2 (NULL: every reader is queued).
const SET_CURSOR: &str = "UPDATE issues SET queued_through = $2 WHERE number = $1";
/// Is issue $1 still having its readers queued?
const FILLING: &str = "SELECT queued_through IS NOT NULL FROM issues WHERE number = $1";
/// Returns the issue's number when the slot was free, no row when another issue took it.
const TAKE_SLOT: &str = "INSERT INTO slots (key, at, outcome, issue_number, recorded_at) VALUES ($1, $2, 'issue', $3, $4) \
     ON CONFLICT DO NOTHING RETURNING issue_number";
/// An issue's deliveries by state; the ledger's index on (issue, state) answers it alone.
pub(super) const COUNTS: &str = "SELECT state, count(*) FROM deliveries WHERE issue_number = $1 GROUP BY state";
/// An issue under review (draft, held, approved) may be cancelled too: it never goes out, and the
/// articles it carried are free for a later issue.
/// Its readers still to queue never will be: the cursor goes with it.
const CANCEL: &str = "UPDATE issues SET status = 'cancelled', finished_at = $1, queued_through = NULL \
     WHERE number = $2 AND status IN ('sending', 'paused', 'draft', 'held', 'approved')";
/// What a cancelled issue had not yet sent is skipped, never sent later.
pub(super) const CANCEL_DELIVERIES: &str = "UPDATE deliveries SET state = 'skipped', last_reply = 'issue cancelled', \
     lease_owner = NULL, lease_until = NULL, updated_at = $1 WHERE issue_number = $2 AND state IN ('queued', 'deferred')";
const REOPEN: &str = "UPDATE issues SET status = 'sending', finished_at = NULL WHERE number = $1 AND status = 'sent'";
const BY_STATUS: &str = "SELECT status, count(*) FROM issues GROUP BY status";
/// Issues a reader may already hold: sent, or sending (or paused) with at least one delivery sent.
const SENT: &str = "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
     WHERE status = 'sent' OR (status IN ('sending', 'paused') AND EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')) \
     ORDER BY number DESC";
const SENT_ONE: &str = "SELECT number, subject, issue_date, articles, created_at, finished_at, status FROM issues i \
     WHERE number = $1 AND (status = 'sent' OR (status IN ('sending', 'paused') AND EXISTS \
         (SELECT 1 FROM deliveries d WHERE d.issue_number = i.number AND d.state = 'sent')))";

#[derive(sqlx::FromRow)]
pub(super) struct Row {
    number: i64,
    status: String,
    subject: String,
    issue_date: i64,
    articles: String,
    slot: Option<String>,
    created_at: i64,
    finished_at: Option<i64>,
    note: Option<String>,
    intro: Option<String>,
    left_out: String,
    edited_subject: Option<String>,
    send_at: Option<i64>,
    edition: Option<String>,
}

impl Row {
    pub(super) fn record(self, counts: DeliveryCounts, reports: ReportCounts) -> Result<IssueRecord, StoreError> {
        Ok(IssueRecord {
            number: issue_number(self.number)?,
            status: parse(&self.status)?,
            subject: self.subject,
            date: from_ms(self.issue_date),
            articles: serde_json::from_str(&self.articles).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            slot: self.slot,
            created_at: from_ms(self.created_at),
            finished_at: self.finished_at.map(from_ms),
            note: self.note,
            counts,
            reports,
            intro: self.intro,
            left_out: serde_json::from_str(&self.left_out).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            subject_edited: self.edited_subject.is_some(),
            send_at: self.send_at.map(from_ms),
            edition: self.edition,
        })
    }
}

#[derive(sqlx::FromRow)]
struct SentRow {
    number: i64,
    subject: String,
    issue_date: i64,
    articles: String,
    created_at: i64,
    finished_at: Option<i64>,
    status: String,
}

impl TryFrom<SentRow> for SentIssue {
    type Error = StoreError;

    fn try_from(r: SentRow) -> Result<Self, StoreError> {
        let created_at = from_ms(r.created_at);
        Ok(Self {
            number: issue_number(r.number)?,
            subject: r.subject,
            date: from_ms(r.issue_date),
            articles: serde_json::from_str(&r.articles).map_err(|e| StoreError::Corrupt(e.to_string()))?,
            sent_at: r.finished_at.map_or(created_at, from_ms),
            finished: r.status == IssueStatus::Sent.as_str(),
        })
    }
}

/// Who of an issue's readers (active on `$names`, of edition `$edition`, not paused) gets which
/// of `$plan`'s candidates, decided inside the transaction `$tx` that queues them
/// ([`variants::assign`]). A macro, as the store's other per-backend steps are, since the
/// statements differ per database: issue creation and a draft's approval both run it.
macro_rules! assign_readers {
    ($tx:ident, $db:ident, $plan:expr, $names:expr, $edition:expr, $now:expr) => {{
        let plan: &$crate::store::VariantPlan = $plan;
        let candidate_keys: Vec<&str> =
            plan.candidates.iter().flat_map(|c| c.keys.iter().map(String::as_str)).collect();
        let readers: Vec<(i64, Option<String>)> = sqlx::query_as($db::AUDIENCE)
            .bind($crate::store::backend::Values($names))
            .bind($crate::store::backend::ms($now))
            .bind($edition)
            .bind(plan.default_edition)
            .bind($crate::store::backend::Values(&plan.editions))
            .fetch_all(&mut *$tx)
            .await?;
        // What earlier copies carried is read for this edition's readers alone.
        let ids: Vec<i64> = readers.iter().map(|(id, _)| *id).collect();
        let last: std::collections::HashMap<i64, i64> = sqlx::query_as::<_, (i64, i64)>($db::LAST_COPY)
            .bind($crate::store::backend::ms(plan.oldest))
            .bind($crate::store::backend::Values(&ids))
            .fetch_all(&mut *$tx)
            .await?
            .into_iter()
            .collect();
        let pairs: Vec<(i64, String)> = sqlx::query_as($db::RECEIVED)
            .bind($crate::store::backend::Values(&candidate_keys))
            .bind($crate::store::backend::Values(&ids))
            .fetch_all(&mut *$tx)
            .await?;
        let mut received: std::collections::HashMap<i64, std::collections::HashSet<String>> =
            std::collections::HashMap::new();
        for (id, identity) in pairs {
            received.entry(id).or_default().insert(identity);
        }
        let readers: Vec<$crate::store::variants::Reader<'_>> = readers
            .iter()
            .map(|(id, topics)| $crate::store::variants::Reader {
                id: *id,
                topics: topics.as_deref(),
                last: last.get(id).copied(),
            })
            .collect();
        $crate::store::variants::assign(plan, &readers, &received)
    }};
}
pub(super) use assign_readers;

/// Writes what [`assign_readers`] decided for issue `$number`: each variant with the articles it
/// carries, its readers' deliveries queued, and a `skipped` delivery for each reader with nothing
/// new.
macro_rules! queue_assigned {
    ($tx:ident, $db:ident, $number:expr, $plan:expr, $assigned:expr, $now:expr) => {{
        let number: i64 = $number;
        let plan: &$crate::store::VariantPlan = $plan;
        let a: &$crate::store::variants::Assignment = $assigned;
        for (v, positions) in a.variants.iter().enumerate() {
            let variant = i64::try_from(v).map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
            let keys: Vec<&str> =
                positions.iter().flat_map(|&at| plan.candidates[a.kept[at]].keys.iter().map(String::as_str)).collect();
            sqlx::query($crate::store::variants::INSERT_VARIANT)
                .bind(number)
                .bind(variant)
                .bind($crate::store::backend::to_json(positions)?)
                .execute(&mut *$tx)
                .await?;
            sqlx::query($db::VARIANT_ARTICLES)
                .bind(number)
                .bind(variant)
                .bind($crate::store::backend::Values(&keys))
                .execute(&mut *$tx)
                .await?;
            let ids: Vec<i64> = a.readers.iter().filter(|(_, r)| *r == Some(v)).map(|(id, _)| *id).collect();
            for chunk in ids.chunks($crate::store::issues::QUEUE_CHUNK) {
                sqlx::query($db::QUEUE_VARIANT)
                    .bind(number)
                    .bind($crate::store::backend::ms($now))
                    .bind(variant)
                    .bind($crate::store::backend::Values(chunk))
                    .execute(&mut *$tx)
                    .await?;
            }
        }
        let empty: Vec<i64> = a.readers.iter().filter(|(_, r)| r.is_none()).map(|(id, _)| *id).collect();
        for chunk in empty.chunks($crate::store::issues::QUEUE_CHUNK) {
            sqlx::query($db::SKIP_NOTHING_NEW)
                .bind(number)
                .bind($crate::store::backend::ms($now))
                .bind($crate::store::backend::Values(chunk))
                .execute(&mut *$tx)
                .await?;
        }
    }};
}
pub(super) use queue_assigned;

/// Queues issue `$number` for the next `$chunk` readers of `$names` after subscriber id `$cursor`
/// (in id order) inside the transaction `$tx`, and moves its cursor on: to the last reader
/// queued, or to NULL when the chunk found fewer than `$chunk` (every reader is queued). The
/// readers are read first and then inserted, so that the cursor follows who was read, whatever
/// the insert skipped. Evaluates to how many readers the chunk held and whether more may be left.
macro_rules! queue_chunk {
    ($tx:ident, $db:ident, $number:expr, $names:expr, $cursor:expr, $chunk:expr, $now:expr) => {{
        let number: i64 = $number;
        let chunk: usize = $chunk;
        let limit = i64::try_from(chunk).map_err(|e| $crate::store::StoreError::Corrupt(e.to_string()))?;
        let ids: Vec<i64> = sqlx::query_scalar($db::AUDIENCE_AFTER)
            .bind($crate::store::backend::Values($names))
            .bind($crate::store::backend::ms($now))
            .bind($cursor)
            .bind(limit)
            .fetch_all(&mut *$tx)
            .await?;
        for part in ids.chunks($crate::store::issues::QUEUE_CHUNK) {
            sqlx::query($db::QUEUE_READERS)
                .bind(number)
                .bind($crate::store::backend::ms($now))
                .bind($crate::store::backend::Values(part))
                .execute(&mut *$tx)
                .await?;
        }
        let more = ids.len() >= chunk;
        let next: Option<i64> = if more { ids.last().copied() } else { None };
        sqlx::query(SET_CURSOR).bind(number).bind(next).execute(&mut *$tx).await?;
        (ids.len() as u64, more)
    }};
}

/// Takes the schedule slot that made issue `number` (if a slot made it) inside the transaction
/// that makes the issue, a draft or one that sends at once: a slot makes one issue, however
/// many processes serve it.
pub(super) async fn take_slot<DB>(
    tx: &mut Transaction<'static, DB>,
    slot: Option<&SlotRef>,
    number: i64,
    now: DateTime<Utc>,
) -> Result<(), StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> i64: Decode<'r, DB>,
    usize: ColumnIndex<DB::Row>,
{
    let Some(slot) = slot else { return Ok(()) };
    let taken: Option<i64> = sqlx::query_scalar(TAKE_SLOT)
        .bind(slot.key.as_str())
        .bind(ms(slot.at))
        .bind(number)
        .bind(ms(now))
        .fetch_optional(&mut **tx)
        .await?;
    if taken.is_none() {
        return Err(StoreError::SlotTaken(slot.key.clone()));
    }
    Ok(())
}

/// Counts by status with every status present, those without a row at zero.
fn by_status<'a>(all: impl IntoIterator<Item = &'a str>, rows: Vec<(String, i64)>) -> BTreeMap<String, u64> {
    let mut out: BTreeMap<String, u64> = all.into_iter().map(|s| (s.to_owned(), 0)).collect();
    out.extend(rows.into_iter().map(|(status, n)| (status, count(n))));
    out
}

impl Store {
    /// The next issue's number and the articles earlier issues carried.
    pub async fn history(&self) -> Result<(u32, HashSet<String>), StoreError> {
        let (max, carried): (Option<i64>, Vec<String>) = with_backend!(self, |pool, db| (
            sqlx::query_scalar(NEXT_NUMBER).fetch_one(pool).await?,
            sqlx::query_scalar(CARRIED).fetch_all(pool).await?
        ));
        Ok((issue_number(max.unwrap_or(0) + 1)?, carried.into_iter().collect()))
    }

    /// The articles the issues of one edition carried (`key`; `default`: issues made without
    /// editions count as its own), for its `since_last_issue`.
    pub async fn carried_by_edition(&self, key: &str, default: bool) -> Result<HashSet<String>, StoreError> {
        let carried: Vec<String> = with_backend!(self, |pool, db| {
            sqlx::query_scalar(CARRIED_BY_EDITION).bind(key).bind(default).fetch_all(pool).await?
        });
        Ok(carried.into_iter().collect())
    }

    /// The oldest issue of one edition still sending (`default`: issues made without editions
    /// are its own), or paused with `paused`.
    pub async fn unfinished_issue_of(
        &self,
        key: &str,
        default: bool,
        paused: bool,
    ) -> Result<Option<IssueRecord>, StoreError> {
        let query = if paused { PAUSED_OF } else { UNFINISHED_OF };
        let n: Option<i64> = with_backend!(self, |pool, db| {
            sqlx::query_scalar(query).bind(key).bind(default).fetch_one(pool).await?
        });
        match n {
            Some(n) => self.issue(issue_number(n)?).await,
            None => Ok(None),
        }
    }

    /// When each of `identities` was first seen; with `record`, those never seen before are
    /// noted as seen `now` (the first writer's time stands).
    pub async fn first_seen(
        &self,
        identities: &[String],
        now: DateTime<Utc>,
        record: bool,
    ) -> Result<HashMap<String, DateTime<Utc>>, StoreError> {
        let rows: Vec<(String, i64)> = with_backend!(self, |pool, db| {
            if record {
                sqlx::query(db::NOTE_FIRST_SEEN).bind(Values(identities)).bind(ms(now)).execute(pool).await?;
            }
            sqlx::query_as(db::FIRST_SEEN).bind(Values(identities)).fetch_all(pool).await?
        });
        Ok(rows.into_iter().map(|(identity, t)| (identity, from_ms(t))).collect())
    }

    /// The oldest issue still sending, if any.
    pub async fn unfinished_issue(&self) -> Result<Option<IssueRecord>, StoreError> {
        let n: Option<i64> = with_backend!(self, |pool, db| sqlx::query_scalar(UNFINISHED).fetch_one(pool).await?);
        match n {
            Some(n) => self.issue(issue_number(n)?).await,
            None => Ok(None),
        }
    }

    /// The oldest paused issue, if any: nothing new goes out until a person has looked at it.
    pub async fn paused_issue(&self) -> Result<Option<IssueRecord>, StoreError> {
        let n: Option<i64> = with_backend!(self, |pool, db| sqlx::query_scalar(PAUSED).fetch_one(pool).await?);
        match n {
            Some(n) => self.issue(issue_number(n)?).await,
            None => Ok(None),
        }
    }

    pub async fn sending_issues(&self) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> = with_backend!(self, |pool, db| sqlx::query_scalar(SENDING).fetch_all(pool).await?);
        Ok(rows.into_iter().filter_map(|n| u32::try_from(n).ok()).collect())
    }

    /// Creates the issue and queues one delivery per active subscriber of `lists` (one for
    /// someone on two of them): the first [`FIRST_CHUNK`] of them in the transaction that makes
    /// it, the rest by [`Store::queue_more`]. A second process creating the same number, or
    /// serving the same slot, waits on the first and then finds it taken.
    pub async fn create_issue(
        &self,
        issue: &NewIssue,
        lists: &[ListName],
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        self.create_issue_queueing(issue, lists, FIRST_CHUNK, now).await
    }

    /// As [`Store::create_issue`], queueing the first `first` readers with the issue. An issue
    /// with variants (editions or topics) is queued whole, since who gets which copy is decided
    /// over all its readers at once.
    pub async fn create_issue_queueing(
        &self,
        issue: &NewIssue,
        lists: &[ListName],
        first: usize,
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        let first = first.max(1);
        let number = i64::from(issue.number);
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        in_tx!(self, |tx, db| {
            // With variants, who gets what is read and decided first: the issue keeps only the
            // articles some reader's copy carries.
            let assigned = match &issue.variants {
                None => None,
                Some(plan) => Some(assign_readers!(tx, db, plan, &names, issue.edition.as_deref(), now)),
            };
            let (articles, identities) = match (&assigned, &issue.variants) {
                (Some(a), Some(plan)) => {
                    let kept: Vec<&crate::domain::Article> = a.kept.iter().map(|&i| &issue.articles[i]).collect();
                    let keys: HashSet<&str> =
                        a.kept.iter().flat_map(|&i| plan.candidates[i].keys.iter().map(String::as_str)).collect();
                    (to_json(&kept)?, keys.into_iter().map(str::to_owned).collect::<Vec<_>>())
                }
                _ => (to_json(&issue.articles)?, issue.identities.clone()),
            };
            let inserted = sqlx::query(INSERT)
                .bind(number)
                .bind(&issue.subject)
                .bind(ms(issue.date))
                .bind(&articles)
                .bind(issue.slot.as_ref().map(|s| &s.key))
                .bind(ms(now))
                .bind(issue.edition.as_deref())
                .bind(issue.variants.is_none().then_some(0_i64))
                .execute(&mut *tx)
                .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::IssueExists(issue.number));
            }
            take_slot(&mut tx, issue.slot.as_ref(), number, now).await?;
            sqlx::query(db::CARRY_ARTICLES).bind(number).bind(Values(&identities)).execute(&mut *tx).await?;
            match (&assigned, &issue.variants) {
                (Some(a), Some(plan)) => queue_assigned!(tx, db, number, plan, a, now),
                _ => {
                    queue_chunk!(tx, db, number, &names, 0_i64, first, now);
                }
            }
            Ok(())
        })?;
        self.issue(issue.number).await?.ok_or_else(|| StoreError::Corrupt("the new issue vanished".into()))
    }

    /// Queues the next `chunk` readers of `lists` for issue `number`, after the last one queued,
    /// in one transaction that holds the issue's cursor: several processes may fill one issue at
    /// once, and each reader is queued once. Only an issue that is sending is filled: a paused
    /// one keeps its cursor for when it is resumed, a cancelled one is never filled again.
    /// Answers how many readers this chunk queued and whether more may be left.
    pub async fn queue_more(
        &self,
        number: u32,
        lists: &[ListName],
        chunk: usize,
        now: DateTime<Utc>,
    ) -> Result<Filled, StoreError> {
        let chunk = chunk.max(1);
        let n = i64::from(number);
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        in_tx!(self, |tx, db| {
            let row: Option<(String, Option<i64>)> =
                sqlx::query_as(db::LOCK_FILL).bind(n).fetch_optional(&mut *tx).await?;
            let cursor = match row {
                Some((status, Some(cursor))) if status == IssueStatus::Sending.as_str() => cursor,
                _ => return Ok(Filled { queued: 0, more: false }),
            };
            let (queued, more) = queue_chunk!(tx, db, n, &names, cursor, chunk, now);
            Ok(Filled { queued, more })
        })
    }

    /// Queues every reader of issue `number` still to be queued, a `chunk` at a time.
    pub async fn queue_all(
        &self,
        number: u32,
        lists: &[ListName],
        chunk: usize,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let mut queued = 0;
        loop {
            let filled = self.queue_more(number, lists, chunk, now).await?;
            queued += filled.queued;
            if !filled.more {
                return Ok(queued);
            }
        }
    }

    /// Is issue `number` still having its readers queued (its cursor set)? False for an issue
    /// that does not exist.
    pub async fn filling(&self, number: u32) -> Result<bool, StoreError> {
        let filling: Option<bool> = with_backend!(self, |pool, db| {
            sqlx::query_scalar(FILLING).bind(i64::from(number)).fetch_optional(pool).await?
        });
        Ok(filling.unwrap_or(false))
    }

    pub async fn issue(&self, number: u32) -> Result<Option<IssueRecord>, StoreError> {
        let row: Option<Row> =
            with_backend!(self, |pool, db| sqlx::query_as(ONE).bind(i64::from(number)).fetch_optional(pool).await?);
        let Some(row) = row else { return Ok(None) };
        let counts = self.delivery_counts(number).await?;
        let reports = self.report_counts(number).await?;
        row.record(counts, reports).map(Some)
    }

    pub async fn issues(&self) -> Result<Vec<IssueRecord>, StoreError> {
        let rows: Vec<Row> = with_backend!(self, |pool, db| sqlx::query_as(ALL).fetch_all(pool).await?);
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let number = issue_number(row.number)?;
            let counts = self.delivery_counts(number).await?;
            let reports = self.report_counts(number).await?;
            out.push(row.record(counts, reports)?);
        }
        Ok(out)
    }

    /// An issue's deliveries by state.
    pub(super) async fn delivery_counts(&self, number: u32) -> Result<DeliveryCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(COUNTS).bind(i64::from(number)).fetch_all(pool).await?);
        let mut counts = DeliveryCounts::default();
        for (state, n) in rows {
            counts.add(parse(&state)?, count(n));
        }
        Ok(counts)
    }

    /// Cancels an issue still sending; what it had not sent is skipped. False when it was not
    /// sending.
    pub async fn cancel_issue(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let n = i64::from(number);
        in_tx!(self, |tx, db| {
            let done = sqlx::query(CANCEL).bind(ms(now)).bind(n).execute(&mut *tx).await?.rows_affected();
            sqlx::query(CANCEL_DELIVERIES).bind(ms(now)).bind(n).execute(&mut *tx).await?;
            Ok(done > 0)
        })
    }

    /// Puts a finished issue back to sending, so that its deliveries that can still go out do.
    pub async fn reopen_issue(&self, number: u32, _now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = with_backend!(self, |pool, db| {
            sqlx::query(REOPEN).bind(i64::from(number)).execute(pool).await?.rows_affected()
        });
        Ok(done > 0)
    }

    /// Issues by status, for metrics.
    pub async fn issue_status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(BY_STATUS).fetch_all(pool).await?);
        Ok(by_status(IssueStatus::ALL.iter().map(|s| s.as_str()), rows))
    }

    /// The issues that went out or are going out (at least one delivery sent: a reader may
    /// already hold it), newest first, without their delivery counts (which cost a walk of
    /// the ledger).
    pub async fn sent_issues(&self) -> Result<Vec<SentIssue>, StoreError> {
        let rows: Vec<SentRow> = with_backend!(self, |pool, db| sqlx::query_as(SENT).fetch_all(pool).await?);
        rows.into_iter().map(SentIssue::try_from).collect()
    }

    /// One issue, if it went out or is going out.
    pub async fn sent_issue(&self, number: u32) -> Result<Option<SentIssue>, StoreError> {
        let row: Option<SentRow> = with_backend!(self, |pool, db| {
            sqlx::query_as(SENT_ONE).bind(i64::from(number)).fetch_optional(pool).await?
        });
        row.map(SentIssue::try_from).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_is_counted_even_at_zero() {
        let counts = by_status(["sending", "sent", "cancelled"], vec![("sent".into(), 3)]);
        assert_eq!(counts, BTreeMap::from([("cancelled".into(), 0), ("sending".into(), 0), ("sent".into(), 3)]));
    }
}
