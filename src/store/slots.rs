//! The schedule's slots: which cron slot made which issue, or why it made none. A slot is
//! recorded once; the second process to serve it finds it taken.

use chrono::{DateTime, Utc};

use super::{
    SlotOutcome, SlotRecord, Store, StoreError,
    backend::{from_ms, ms, with_backend},
};

const RECORD: &str = "INSERT INTO slots (key, at, outcome, reason, recorded_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT DO NOTHING";
const ONE: &str = "SELECT key, at, outcome, issue_number, reason FROM slots WHERE key = $1";
const ALL: &str = "SELECT key, at, outcome, issue_number, reason FROM slots ORDER BY at";
const LAST: &str = "SELECT max(at) FROM slots";
/// An edition's slots are those whose key starts with its name and `@`; `$2` is that prefix's
/// length in characters.
const LAST_OF: &str = "SELECT max(at) FROM slots WHERE substr(key, 1, $2) = $1";

#[derive(sqlx::FromRow)]
struct Row {
    key: String,
    at: i64,
    outcome: String,
    issue_number: Option<i64>,
    reason: Option<String>,
}

impl From<Row> for SlotRecord {
    fn from(r: Row) -> Self {
        Self {
            key: r.key,
            at: from_ms(r.at),
            outcome: r.outcome,
            issue_number: r.issue_number.and_then(|n| u32::try_from(n).ok()),
            reason: r.reason,
        }
    }
}

impl Store {
    /// Records a slot that made no issue; false when it was already recorded.
    pub async fn record_slot(
        &self,
        key: &str,
        at: DateTime<Utc>,
        outcome: SlotOutcome,
        reason: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = with_backend!(self, |pool, db| {
            sqlx::query(RECORD)
                .bind(key)
                .bind(ms(at))
                .bind(outcome.as_str())
                .bind(reason)
                .bind(ms(now))
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(done > 0)
    }

    pub async fn slot(&self, key: &str) -> Result<Option<SlotRecord>, StoreError> {
        let row: Option<Row> =
            with_backend!(self, |pool, db| sqlx::query_as(ONE).bind(key).fetch_optional(pool).await?);
        Ok(row.map(SlotRecord::from))
    }

    pub async fn slots(&self) -> Result<Vec<SlotRecord>, StoreError> {
        let rows: Vec<Row> = with_backend!(self, |pool, db| sqlx::query_as(ALL).fetch_all(pool).await?);
        Ok(rows.into_iter().map(SlotRecord::from).collect())
    }

    /// When the latest slot recorded fell.
    pub async fn last_slot_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> = with_backend!(self, |pool, db| sqlx::query_scalar(LAST).fetch_one(pool).await?);
        Ok(t.map(from_ms))
    }

    /// When the latest slot whose key starts with `prefix` fell: one edition's slots (`weekly@`),
    /// or every slot for an empty prefix.
    pub async fn last_slot_at_of(&self, prefix: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        if prefix.is_empty() {
            return self.last_slot_at().await;
        }
        // An edition's name is one short line; no prefix comes near i32's range.
        let len = i32::try_from(prefix.chars().count()).unwrap_or(i32::MAX);
        let t: Option<i64> =
            with_backend!(self, |pool, db| sqlx::query_scalar(LAST_OF).bind(prefix).bind(len).fetch_one(pool).await?);
        Ok(t.map(from_ms))
    }
}
