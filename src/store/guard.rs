//! The guard on what comes back: an issue whose hard bounces or complaints pass their share of
//! the messages it sent is paused, with a note saying why, before it costs the sending domain
//! its reputation; a person resumes it, and from then on only what was sent after the resume
//! counts.
//!
//! Hard bounces are the reports recorded as hard and the deliveries the server refused for good
//! during the exchange (`failed`); the share is taken of the messages that went out or were
//! refused. Each delivery counts once however many reports name it. No rate is judged before
//! [`MIN_SENT`] messages: the first few bounces of a send say little.

use chrono::{DateTime, Utc};

use super::{
    Store, StoreError,
    backend::{count, ms, parse, with_backend},
};
use crate::domain::{IssueStatus, RateLimits};

/// Messages an issue sends (since its last resume) before its rates are judged.
pub const MIN_SENT: u64 = 200;

const STANDING: &str = "SELECT status, note, guard_since FROM issues WHERE number = $1";
/// Deliveries sent since $2 that a hard bounce or a complaint came back for, each once.
pub(super) const CAME_BACK: &str = "SELECT b.kind, count(DISTINCT b.delivery_id) FROM bounces b \
     JOIN deliveries d ON d.id = b.delivery_id \
     WHERE b.issue_number = $1 AND b.kind IN ('hard', 'complaint') AND d.sent_at >= $2 GROUP BY b.kind";
/// Deliveries refused for good since $2 (by the time they were last tried).
pub(super) const REFUSED: &str =
    "SELECT count(*) FROM deliveries WHERE issue_number = $1 AND state = 'failed' AND updated_at >= $2";
/// Deliveries sent: all of them (the ledger's index on (issue, state) answers it alone), or those
/// sent since $2.
pub(super) const SENT_ALL: &str = "SELECT count(*) FROM deliveries WHERE issue_number = $1 AND state = 'sent'";
pub(super) const SENT_SINCE: &str =
    "SELECT count(*) FROM deliveries WHERE issue_number = $1 AND state = 'sent' AND sent_at >= $2";
const PAUSE: &str = "UPDATE issues SET status = 'paused', note = $1 WHERE number = $2 AND status = 'sending'";
const RESUME: &str =
    "UPDATE issues SET status = 'sending', note = NULL, guard_since = $1 WHERE number = $2 AND status = 'paused'";

/// Where an issue stands for the senders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// Still to be sent.
    Sending,
    /// Paused, with the note that says why.
    Paused(String),
    /// Anything else (sent, cancelled, gone): nothing more to send.
    Other(Option<IssueStatus>),
}

/// What came back of an issue's messages within the guard's window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CameBack {
    /// Messages that went out or were refused for good.
    pub attempted: u64,
    /// Of those: refused for good, or bounced hard afterwards.
    pub hard: u64,
    pub complaints: u64,
}

/// Why the issue must be paused, if it must: the first limit passed, in words for the publisher.
pub fn verdict(c: CameBack, limits: RateLimits) -> Option<String> {
    if c.attempted < MIN_SENT {
        return None;
    }
    let checks = [
        (limits.hard_bounces, c.hard, "bounced hard", "max_bounce_rate"),
        (limits.complaints, c.complaints, "drew a spam complaint", "max_complaint_rate"),
    ];
    checks.into_iter().find_map(|(max, n, what, key)| {
        let max = max.filter(|m| m.exceeded_by(n, c.attempted))?;
        let share = n as f64 * 100.0 / c.attempted as f64;
        Some(format!("{n} of the {} messages it sent {what} ({share:.1}%), past {key} {max}", c.attempted))
    })
}

/// Could counts this small pass a limit however many messages went out? Only past
/// [`MIN_SENT`] is a rate judged, so counts within the limits' allowance of that many cannot.
fn could_pass(hard: u64, complaints: u64, limits: RateLimits) -> bool {
    limits.hard_bounces.is_some_and(|m| hard > m.allowance(MIN_SENT))
        || limits.complaints.is_some_and(|m| complaints > m.allowance(MIN_SENT))
}

#[derive(sqlx::FromRow)]
struct StandingRow {
    status: String,
    note: Option<String>,
    guard_since: Option<i64>,
}

impl Store {
    /// Where issue `number` stands, and when its guard's window starts.
    async fn standing(&self, number: i64) -> Result<(Standing, Option<i64>), StoreError> {
        let row: Option<StandingRow> =
            with_backend!(self, |pool, db| sqlx::query_as(STANDING).bind(number).fetch_optional(pool).await?);
        let Some(row) = row else { return Ok((Standing::Other(None), None)) };
        let standing = match parse::<IssueStatus>(&row.status)? {
            IssueStatus::Sending => Standing::Sending,
            IssueStatus::Paused => Standing::Paused(row.note.unwrap_or_default()),
            other => Standing::Other(Some(other)),
        };
        Ok((standing, row.guard_since))
    }

    /// Where issue `number` stands, after judging its rates against `limits` while it is
    /// sending: an issue past a limit is paused here, by whichever process judges first.
    pub async fn guard_issue(&self, number: u32, limits: RateLimits) -> Result<Standing, StoreError> {
        let number = i64::from(number);
        let (standing, guard_since) = self.standing(number).await?;
        if standing != Standing::Sending || limits.is_off() {
            return Ok(standing);
        }
        let since = guard_since.unwrap_or(0);
        let paused = with_backend!(self, |pool, db| {
            let kinds: Vec<(String, i64)> = sqlx::query_as(CAME_BACK).bind(number).bind(since).fetch_all(pool).await?;
            let refused: i64 = sqlx::query_scalar(REFUSED).bind(number).bind(since).fetch_one(pool).await?;
            let bounced = kinds.iter().find(|(k, _)| k == "hard").map_or(0, |(_, n)| count(*n));
            let complaints = kinds.iter().find(|(k, _)| k == "complaint").map_or(0, |(_, n)| count(*n));
            let hard = bounced + count(refused);
            // Counting what went out reads every sent delivery of the issue: only when it could matter.
            if could_pass(hard, complaints, limits) {
                let sent: i64 = match guard_since {
                    None => sqlx::query_scalar(SENT_ALL).bind(number).fetch_one(pool).await?,
                    Some(since) => sqlx::query_scalar(SENT_SINCE).bind(number).bind(since).fetch_one(pool).await?,
                };
                let attempted = count(sent) + count(refused);
                match verdict(CameBack { attempted, hard, complaints }, limits) {
                    Some(note) => {
                        sqlx::query(PAUSE).bind(&note).bind(number).execute(pool).await?;
                        true
                    }
                    None => false,
                }
            } else {
                false
            }
        });
        if paused {
            // Another process may have paused, finished or cancelled it meanwhile: as it stands now.
            return Ok(self.standing(number).await?.0);
        }
        Ok(Standing::Sending)
    }

    /// Sets a paused issue sending again; its rates count from `now`. False when it was not paused.
    pub async fn resume_paused(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = with_backend!(self, |pool, db| sqlx::query(RESUME)
            .bind(ms(now))
            .bind(i64::from(number))
            .execute(pool)
            .await?
            .rows_affected());
        Ok(done > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Share;

    fn limits(bounce: &str, complaint: &str) -> RateLimits {
        RateLimits {
            hard_bounces: Some(bounce.parse::<Share>().expect("share")),
            complaints: Some(complaint.parse::<Share>().expect("share")),
        }
    }

    #[test]
    fn nothing_is_judged_before_enough_went_out() {
        let c = CameBack { attempted: MIN_SENT - 1, hard: 150, complaints: 100 };
        assert_eq!(verdict(c, limits("5%", "0.1%")), None);
    }

    #[test]
    fn a_rate_past_its_limit_pauses_with_the_figures() {
        let l = limits("5%", "0.1%");
        assert_eq!(verdict(CameBack { attempted: 200, hard: 10, complaints: 0 }, l), None);
        let note = verdict(CameBack { attempted: 200, hard: 11, complaints: 0 }, l).expect("paused");
        assert_eq!(note, "11 of the 200 messages it sent bounced hard (5.5%), past max_bounce_rate 5%");
        let note = verdict(CameBack { attempted: 400, hard: 0, complaints: 1 }, l).expect("paused");
        assert!(note.contains("drew a spam complaint (0.2%), past max_complaint_rate 0.1%"), "{note}");
        assert_eq!(verdict(CameBack { attempted: 400, hard: 99, complaints: 9 }, RateLimits::default()), None);
    }

    #[test]
    fn small_counts_skip_counting_what_went_out() {
        let l = limits("5%", "1%");
        assert!(!could_pass(10, 2, l));
        assert!(could_pass(11, 0, l));
        assert!(could_pass(0, 3, l));
        assert!(!could_pass(500, 500, RateLimits::default()));
    }
}
