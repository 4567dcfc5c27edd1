//! Bounces and complaints that came back after a message went out: the delivery a report is
//! about, found by its id, by the Message-ID it went out with, or by its reader's address among
//! the recent issues; the report recorded once, with what it does to its reader, in one
//! transaction; and what was recorded, by issue and kind.

use chrono::{DateTime, Utc};

use super::{
    BounceOutcome, BounceRecord, BounceRule, BounceTarget, ConsentEvent, NewBounce, ReportCounts, Store, StoreError,
    backend::{count, from_ms, in_tx, issue_number, ms, parse, with_backend},
    consent,
};
use crate::domain::{BounceKind, EmailAddress, SubscriberStatus};

/// A delivery by id, with its reader; a forgotten reader is no one a report can be about.
pub(super) const BY_DELIVERY: &str = "SELECT d.id, d.subscriber_id, d.issue_number, s.email FROM deliveries d \
     JOIN subscribers s ON s.id = d.subscriber_id WHERE d.id = $1 AND s.email NOT LIKE 'forgotten:%'";
/// A sent delivery of issue $1 by the Message-ID it went out with: the ledger's index on (issue,
/// state) narrows it to the issue's sent deliveries.
pub(super) const BY_MESSAGE_ID: &str = "SELECT d.id, d.subscriber_id, d.issue_number, s.email FROM deliveries d \
     JOIN subscribers s ON s.id = d.subscriber_id \
     WHERE d.issue_number = $1 AND d.state = 'sent' AND d.message_id = $2 AND s.email NOT LIKE 'forgotten:%'";
/// The latest sent delivery to an address among the issues made since $2: one subscriber by its
/// key, then one delivery per recent issue by (issue, subscriber).
pub(super) const RECENT_TO: &str = "SELECT d.id, d.subscriber_id, d.issue_number, s.email FROM subscribers s \
     JOIN deliveries d ON d.subscriber_id = s.id JOIN issues i ON i.number = d.issue_number \
     WHERE lower(s.email) = $1 AND i.created_at >= $2 AND d.state = 'sent' \
     ORDER BY d.issue_number DESC LIMIT 1";
const RECORD: &str = "INSERT INTO bounces \
     (message_key, delivery_id, subscriber_id, issue_number, kind, status, diagnostic, at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (message_key) DO NOTHING";
/// A reader's soft bounces since $2, each message once: one message's delay warnings and its
/// final failure are one bounce, not three.
pub(super) const SOFT_SINCE: &str = "SELECT count(DISTINCT coalesce(delivery_id, -id)) FROM bounces \
     WHERE subscriber_id = $1 AND kind = 'soft' AND at > $2";
/// A bounce ends only an active reader's subscription: one who left or complained keeps that.
pub(super) const BOUNCED: &str =
    "UPDATE subscribers SET status = 'bounced', updated_at = $1 WHERE id = $2 AND status = 'active'";
pub(super) const COMPLAINED: &str = "UPDATE subscribers SET status = 'complained', updated_at = $1 \
     WHERE id = $2 AND status <> 'complained'";
pub(super) const OFF_EVERY_LIST: &str = "DELETE FROM memberships WHERE subscriber_id = $1";
/// An issue's deliveries that bounced or drew a complaint, each once.
const COUNTS: &str = "SELECT CASE WHEN kind = 'complaint' THEN 'complained' ELSE 'bounced' END, \
     count(DISTINCT subscriber_id) FROM bounces WHERE issue_number = $1 GROUP BY 1";
/// Every report recorded, by kind, for metrics.
const BY_KIND: &str = "SELECT kind, count(*) FROM bounces GROUP BY kind";
const LIST: &str = "SELECT s.email, b.issue_number, b.kind, b.status, b.diagnostic, b.at FROM bounces b \
     JOIN subscribers s ON s.id = b.subscriber_id \
     WHERE ($1 IS NULL OR b.issue_number = $1) AND ($2 IS NULL OR b.kind = $2) ORDER BY b.at, b.id";

#[derive(sqlx::FromRow)]
struct TargetRow {
    id: i64,
    subscriber_id: i64,
    issue_number: i64,
    email: String,
}

impl TryFrom<TargetRow> for BounceTarget {
    type Error = StoreError;

    fn try_from(r: TargetRow) -> Result<Self, StoreError> {
        Ok(Self {
            delivery_id: r.id,
            subscriber_id: r.subscriber_id,
            issue: issue_number(r.issue_number)?,
            email: parse(&r.email)?,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ListRow {
    email: String,
    issue_number: Option<i64>,
    kind: String,
    status: Option<String>,
    diagnostic: Option<String>,
    at: i64,
}

impl TryFrom<ListRow> for BounceRecord {
    type Error = StoreError;

    fn try_from(r: ListRow) -> Result<Self, StoreError> {
        Ok(Self {
            email: r.email,
            issue: r.issue_number.map(issue_number).transpose()?,
            kind: parse(&r.kind)?,
            status: r.status,
            diagnostic: r.diagnostic,
            at: from_ms(r.at),
        })
    }
}

/// What a recorded report does to its reader, given for a soft bounce how many of theirs the
/// window holds (this one among them): the status to move them to, if any.
fn verdict(kind: BounceKind, soft_in_window: u64, rule: BounceRule) -> Option<SubscriberStatus> {
    match kind {
        BounceKind::Hard => Some(SubscriberStatus::Bounced),
        BounceKind::Soft if soft_in_window >= u64::from(rule.soft_limit) => Some(SubscriberStatus::Bounced),
        BounceKind::Soft => None,
        BounceKind::Complaint => Some(SubscriberStatus::Complained),
    }
}

impl Store {
    /// Delivery `id` and its reader.
    pub async fn bounce_target(&self, id: i64) -> Result<Option<BounceTarget>, StoreError> {
        let row: Option<TargetRow> =
            with_backend!(self, |pool, db| sqlx::query_as(BY_DELIVERY).bind(id).fetch_optional(pool).await?);
        row.map(BounceTarget::try_from).transpose()
    }

    /// The delivery of issue `issue` that went out as `message_id` (`<left@right>`).
    pub async fn bounce_target_by_message_id(
        &self,
        issue: u32,
        message_id: &str,
    ) -> Result<Option<BounceTarget>, StoreError> {
        let row: Option<TargetRow> = with_backend!(self, |pool, db| {
            sqlx::query_as(BY_MESSAGE_ID).bind(i64::from(issue)).bind(message_id).fetch_optional(pool).await?
        });
        row.map(BounceTarget::try_from).transpose()
    }

    /// The latest delivery sent to `email` of an issue made since `since`.
    pub async fn bounce_target_by_address(
        &self,
        email: &EmailAddress,
        since: DateTime<Utc>,
    ) -> Result<Option<BounceTarget>, StoreError> {
        let row: Option<TargetRow> = with_backend!(self, |pool, db| {
            sqlx::query_as(RECENT_TO).bind(email.key()).bind(ms(since)).fetch_optional(pool).await?
        });
        row.map(BounceTarget::try_from).transpose()
    }

    /// Records a report and applies it to its reader, in one transaction: nothing when the same
    /// report (`key`) was recorded before; else a hard bounce, or the soft bounce that makes
    /// `rule.soft_limit` within `rule.soft_window`, makes an active reader `bounced`, and a
    /// complaint makes the reader `complained` and takes them off every list; each change with
    /// its event in the consent record.
    pub async fn apply_bounce(
        &self,
        bounce: &NewBounce<'_>,
        rule: BounceRule,
        now: DateTime<Utc>,
    ) -> Result<BounceOutcome, StoreError> {
        let subscriber = bounce.subscriber_id;
        let since = ms(now - rule.soft_window);
        in_tx!(self, |tx, db| {
            // The reader first, locked where the backend locks rows: two reports about one reader
            // then count each other's bounces.
            let status: Option<String> =
                sqlx::query_scalar(db::LOCK_SUBSCRIBER_ID).bind(subscriber).fetch_optional(&mut *tx).await?;
            if status.is_none() {
                return Err(StoreError::Corrupt(format!("a report about subscriber {subscriber}, who is not stored")));
            }
            let recorded = sqlx::query(RECORD)
                .bind(bounce.key)
                .bind(bounce.delivery_id)
                .bind(subscriber)
                .bind(bounce.issue.map(i64::from))
                .bind(bounce.kind.as_str())
                .bind(bounce.status)
                .bind(bounce.diagnostic)
                .bind(ms(now))
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if recorded == 0 {
                return Ok(BounceOutcome::Seen);
            }
            let soft = if bounce.kind == BounceKind::Soft {
                let n: i64 = sqlx::query_scalar(SOFT_SINCE).bind(subscriber).bind(since).fetch_one(&mut *tx).await?;
                count(n)
            } else {
                0
            };
            let changed_to = match verdict(bounce.kind, soft, rule) {
                Some(SubscriberStatus::Complained) => {
                    sqlx::query(OFF_EVERY_LIST).bind(subscriber).execute(&mut *tx).await?;
                    let done = sqlx::query(COMPLAINED).bind(ms(now)).bind(subscriber).execute(&mut *tx).await?;
                    (done.rows_affected() > 0).then_some(SubscriberStatus::Complained)
                }
                Some(status) => {
                    let done = sqlx::query(BOUNCED).bind(ms(now)).bind(subscriber).execute(&mut *tx).await?;
                    (done.rows_affected() > 0).then_some(status)
                }
                None => None,
            };
            let event = match changed_to {
                Some(SubscriberStatus::Complained) => Some(ConsentEvent::Complaint),
                Some(_) => Some(ConsentEvent::Bounce),
                None => None,
            };
            if let Some(event) = event {
                consent::record(&mut tx, Some(subscriber), event, bounce.source, now).await?;
            }
            Ok(BounceOutcome::Recorded { changed_to })
        })
    }

    /// An issue's deliveries that bounced or drew a complaint.
    pub(super) async fn report_counts(&self, number: u32) -> Result<ReportCounts, StoreError> {
        let rows: Vec<(String, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(COUNTS).bind(i64::from(number)).fetch_all(pool).await?);
        let mut counts = ReportCounts::default();
        for (what, n) in rows {
            match what.as_str() {
                "complained" => counts.complained = count(n),
                _ => counts.bounced = count(n),
            }
        }
        Ok(counts)
    }

    /// Reports recorded by kind, every kind present (at zero when none).
    pub async fn bounce_kind_counts(&self) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> = with_backend!(self, |pool, db| sqlx::query_as(BY_KIND).fetch_all(pool).await?);
        let mut out: std::collections::BTreeMap<String, u64> =
            BounceKind::ALL.iter().map(|k| (k.as_str().to_owned(), 0)).collect();
        out.extend(rows.into_iter().map(|(kind, n)| (kind, count(n))));
        Ok(out)
    }

    /// The bounces and complaints recorded, the oldest first, of one issue or kind if given.
    pub async fn bounces(&self, issue: Option<u32>, kind: Option<BounceKind>) -> Result<Vec<BounceRecord>, StoreError> {
        let rows: Vec<ListRow> = with_backend!(self, |pool, db| {
            sqlx::query_as(LIST).bind(issue.map(i64::from)).bind(kind.map(BounceKind::as_str)).fetch_all(pool).await?
        });
        rows.into_iter().map(BounceRecord::try_from).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hard_bounces_and_complaints_decide_alone_soft_ones_by_their_number() {
        let rule = BounceRule { soft_limit: 3, soft_window: chrono::Duration::days(30) };
        assert_eq!(verdict(BounceKind::Hard, 0, rule), Some(SubscriberStatus::Bounced));
        assert_eq!(verdict(BounceKind::Complaint, 0, rule), Some(SubscriberStatus::Complained));
        assert_eq!(verdict(BounceKind::Soft, 2, rule), None);
        assert_eq!(verdict(BounceKind::Soft, 3, rule), Some(SubscriberStatus::Bounced));
        let one = BounceRule { soft_limit: 1, ..rule };
        assert_eq!(verdict(BounceKind::Soft, 1, one), Some(SubscriberStatus::Bounced));
    }
}
