//! The dashboard's figures: an issue's messages over time, its failures and what came back of
//! it grouped by reason, and the subscribers over the last days. Read-only; each statement reads
//! an index over the rows it counts (`deliveries_state_time`, `bounces_issue`,
//! `consent_events_at`), never the whole ledger or consent record, so that a page that asks again
//! every few seconds while an issue sends costs what that issue's own rows cost.
//!
//! Grouping that SQL cannot do alike on both databases (a reply's code and enhanced status, the
//! days of the publication's time zone) is done here, over rows the database already grouped.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};

use super::{
    Store, StoreError,
    backend::{count, from_ms, ms, parse, with_backend},
};
use crate::domain::{BounceKind, DeliveryState};

/// The first and last outcome of each kind: four index probes rather than a walk of the issue.
pub(super) const SPAN: &str = "SELECT \
     (SELECT min(updated_at) FROM deliveries WHERE issue_number = $1 AND state = 'sent'), \
     (SELECT max(updated_at) FROM deliveries WHERE issue_number = $1 AND state = 'sent'), \
     (SELECT min(updated_at) FROM deliveries WHERE issue_number = $1 AND state = 'failed'), \
     (SELECT max(updated_at) FROM deliveries WHERE issue_number = $1 AND state = 'failed')";
/// Outcomes of issue $1 per step of $3 ms from $2, by state.
pub(super) const TIMELINE: &str = "SELECT (updated_at - $2) / $3, state, count(*) FROM deliveries \
     WHERE issue_number = $1 AND state IN ('sent', 'failed') GROUP BY 1, 2";
/// The deliveries of issue $1 that failed or wait for another try, by the reply they got.
pub(super) const REPLIES: &str = "SELECT state, last_reply, count(*) FROM deliveries \
     WHERE issue_number = $1 AND state IN ('failed', 'deferred') GROUP BY state, last_reply";
/// What came back of issue $1, by kind and enhanced status, with one of the server's words.
pub(super) const REPORTS: &str = "SELECT kind, status, count(*), min(diagnostic) FROM bounces \
     WHERE issue_number = $1 GROUP BY kind, status";
/// Consent events from $1 to $2 per quarter of an hour, whose multiples every time zone's
/// midnight is, so that the days of any zone are sums of them.
pub(super) const CONSENT: &str = "SELECT at / 900000, event, count(*) FROM consent_events \
     WHERE at >= $1 AND at < $2 GROUP BY 1, 2";
const QUARTER_MS: i64 = 900_000;
const ACTIVE: &str = "SELECT count(*) FROM subscribers WHERE status = 'active'";

/// At most this many points on a chart of messages over time.
pub const MAX_POINTS: usize = 120;

/// The steps a timeline is counted in, in seconds: the smallest that keeps a send within
/// [`MAX_POINTS`] is taken, so a ten-minute send is seen in 5 s steps and a two-day one hourly.
const STEPS: &[i64] =
    &[1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800, 604_800];

/// An issue's messages over time: how many went out, and how many were refused for good, in
/// each step from `start`, every step present (zero where nothing happened).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    pub step: Duration,
    pub points: Vec<TimePoint>,
}

/// One step of a [`Timeline`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimePoint {
    /// The start of the step.
    pub at: DateTime<Utc>,
    pub sent: u64,
    pub failed: u64,
}

/// Deliveries that failed (or wait for another try) for one reason: the reply's code and
/// enhanced status, with one reply as it was given (any address in it left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureReason {
    /// `Failed` or `Deferred`.
    pub state: DeliveryState,
    pub code: Option<u16>,
    pub status: Option<String>,
    pub count: u64,
    pub sample: String,
}

/// Bounces or complaints of one kind and enhanced status, with one of the diagnostics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportReason {
    pub kind: BounceKind,
    pub status: Option<String>,
    pub count: u64,
    pub sample: Option<String>,
}

/// One day of the subscribers over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriberDay {
    /// The day's first instant.
    pub start: DateTime<Utc>,
    /// Readers who became active (confirmed, imported, added).
    pub joined: u64,
    /// Readers who left (unsubscribed, bounced, complained, forgotten).
    pub left: u64,
    /// Active readers at the day's end, counted back from today's: the consent record tells
    /// what changed, not how many there were.
    pub active: u64,
}

/// The step a timeline from `first` to `last` (unix ms) is counted in, in ms, and its first
/// step's start: a whole number of steps since the epoch, so that steps begin on round times.
pub fn step_for(first: i64, last: i64) -> (i64, i64) {
    let mut chosen = *STEPS.last().unwrap_or(&86_400) * 1000;
    for s in STEPS {
        let step = s * 1000;
        let start = first.div_euclid(step) * step;
        if (last - start) / step < MAX_POINTS as i64 {
            chosen = step;
            break;
        }
    }
    // Beyond the longest step (a send of more than two years), steps grow to fit.
    let start = first.div_euclid(chosen) * chosen;
    while (last - start) / chosen >= MAX_POINTS as i64 {
        chosen *= 2;
    }
    (chosen, first.div_euclid(chosen) * chosen)
}

/// A reply's SMTP code: the first three-digit number that is a 4xx or 5xx reply.
fn reply_code(reply: &str) -> Option<u16> {
    reply
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 3)
        .filter_map(|w| w.parse::<u16>().ok())
        .find(|c| (400..600).contains(c))
}

/// A reply's enhanced status code (RFC 3463: `5.1.1`), the first one it gives.
fn enhanced_status(reply: &str) -> Option<String> {
    reply
        .split(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map(|w| w.trim_matches('.'))
        .find(|w| {
            let parts: Vec<&str> = w.split('.').collect();
            parts.len() == 3
                && matches!(parts[0], "2" | "4" | "5")
                && parts[1..].iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_owned)
}

/// `text` with every word that holds an `@` (an address, quoted or not) replaced, and cut to a
/// line's length: a sample reply shows why, not whom.
fn without_addresses(text: &str) -> String {
    let words: Vec<&str> = text.split_whitespace().map(|w| if w.contains('@') { "<address>" } else { w }).collect();
    let line = words.join(" ");
    match line.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

/// Groups replies (state, reply, count) by state, code and enhanced status, most first.
fn reasons(rows: Vec<(DeliveryState, Option<String>, u64)>) -> Vec<FailureReason> {
    let mut groups: HashMap<(DeliveryState, Option<u16>, Option<String>), FailureReason> = HashMap::new();
    for (state, reply, n) in rows {
        let reply = reply.unwrap_or_default();
        let (code, status) = (reply_code(&reply), enhanced_status(&reply));
        groups.entry((state, code, status.clone())).and_modify(|g| g.count += n).or_insert_with(|| FailureReason {
            state,
            code,
            status,
            count: n,
            sample: without_addresses(&reply),
        });
    }
    let mut out: Vec<FailureReason> = groups.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.state.cmp(&b.state)).then(a.status.cmp(&b.status)));
    out
}

/// Counts of the consent record per quarter hour (bucket, event, count) folded into the days
/// that `bounds` delimit (each day from one bound to the next), with the active readers at each
/// day's end counted back from `active_now`, the count at the last bound.
fn fold_days(bounds: &[DateTime<Utc>], rows: &[(i64, String, i64)], active_now: u64) -> Vec<SubscriberDay> {
    let mut days: Vec<SubscriberDay> =
        bounds.windows(2).map(|w| SubscriberDay { start: w[0], joined: 0, left: 0, active: 0 }).collect();
    let ends: Vec<i64> = bounds.iter().skip(1).map(|b| ms(*b)).collect();
    for (bucket, event, n) in rows {
        let at = bucket * QUARTER_MS;
        let Some(day) = ends.iter().position(|end| at < *end) else { continue };
        let n = count(*n);
        match event.as_str() {
            "confirm" | "import" | "add" => days[day].joined += n,
            "unsubscribe" | "bounce" | "complaint" | "forget" => days[day].left += n,
            _ => {}
        }
    }
    let mut active = active_now;
    for day in days.iter_mut().rev() {
        day.active = active;
        active = (active + day.left).saturating_sub(day.joined);
    }
    days
}

impl Store {
    /// Issue `number`'s messages over time: sent and refused for good, per step, from the first
    /// outcome to the last, in at most [`MAX_POINTS`] steps. Empty before the first outcome.
    pub async fn issue_timeline(&self, number: u32) -> Result<Timeline, StoreError> {
        let number = i64::from(number);
        let span: (Option<i64>, Option<i64>, Option<i64>, Option<i64>) =
            with_backend!(self, |pool, db| sqlx::query_as(SPAN).bind(number).fetch_one(pool).await?);
        let first = [span.0, span.2].into_iter().flatten().min();
        let last = [span.1, span.3].into_iter().flatten().max();
        let (Some(first), Some(last)) = (first, last) else { return Ok(Timeline::default()) };
        let (step, start) = step_for(first, last);
        let rows: Vec<(i64, String, i64)> = with_backend!(self, |pool, db| sqlx::query_as(TIMELINE)
            .bind(number)
            .bind(start)
            .bind(step)
            .fetch_all(pool)
            .await?);
        let len = usize::try_from((last - start) / step + 1).unwrap_or(1);
        let mut points: Vec<TimePoint> =
            (0..len).map(|i| TimePoint { at: from_ms(start + step * i as i64), sent: 0, failed: 0 }).collect();
        for (i, state, n) in rows {
            // Rows written after the span was read land past its end: shown from the next look.
            let Some(point) = usize::try_from(i).ok().and_then(|i| points.get_mut(i)) else { continue };
            match parse::<DeliveryState>(&state)? {
                DeliveryState::Sent => point.sent += count(n),
                DeliveryState::Failed => point.failed += count(n),
                _ => {}
            }
        }
        Ok(Timeline { step: Duration::milliseconds(step), points })
    }

    /// Issue `number`'s deliveries refused for good, and those waiting for another try, grouped
    /// by the reply's code and enhanced status, most first.
    pub async fn issue_failure_reasons(&self, number: u32) -> Result<Vec<FailureReason>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(REPLIES).bind(i64::from(number)).fetch_all(pool).await?);
        let rows = rows
            .into_iter()
            .map(|(state, reply, n)| Ok((parse(&state)?, reply, count(n))))
            .collect::<Result<Vec<_>, StoreError>>()?;
        Ok(reasons(rows))
    }

    /// Issue `number`'s bounces and complaints, by kind and enhanced status, most first.
    pub async fn issue_report_reasons(&self, number: u32) -> Result<Vec<ReportReason>, StoreError> {
        let rows: Vec<(String, Option<String>, i64, Option<String>)> =
            with_backend!(self, |pool, db| sqlx::query_as(REPORTS).bind(i64::from(number)).fetch_all(pool).await?);
        let mut out = rows
            .into_iter()
            .map(|(kind, status, n, sample)| {
                Ok(ReportReason {
                    kind: parse(&kind)?,
                    status,
                    count: count(n),
                    sample: sample.as_deref().map(without_addresses),
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        out.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)).then(a.status.cmp(&b.status)));
        Ok(out)
    }

    /// The subscribers over the days that `bounds` delimit (ascending instants, each day from
    /// one to the next; the caller knows the publication's time zone): who joined and who left
    /// each day, from the consent record, and the active readers at each day's end, counted back
    /// from the number active now, which the last bound should be.
    pub async fn subscriber_days(&self, bounds: &[DateTime<Utc>]) -> Result<Vec<SubscriberDay>, StoreError> {
        let (Some(from), Some(to)) = (bounds.first(), bounds.last()) else { return Ok(Vec::new()) };
        let (rows, active): (Vec<(i64, String, i64)>, i64) = with_backend!(self, |pool, db| {
            let rows = sqlx::query_as(CONSENT).bind(ms(*from)).bind(ms(*to)).fetch_all(pool).await?;
            let active = sqlx::query_scalar(ACTIVE).fetch_one(pool).await?;
            (rows, active)
        });
        Ok(fold_days(bounds, &rows, count(active)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeline_has_at_most_its_points_in_round_steps() {
        let cases = [
            (0, 0, 1_000),
            (1_500, 9_000, 1_000),
            (0, 119_999, 1_000),
            (0, 120_000, 2_000),
            (0, 599_999, 5_000),
            (0, 600_000, 10_000),
        ];
        for (first, last, step) in cases {
            assert_eq!(step_for(first, last).0, step, "{first}..{last}");
        }
        for span in [1_i64, 59_000, 3_600_000, 86_400_000 * 3, 86_400_000 * 900, 86_400_000 * 40_000] {
            let first = 1_710_000_123_456;
            let (step, start) = step_for(first, first + span);
            assert!(start <= first && start % step == 0, "{span}");
            assert!((first + span - start) / step < MAX_POINTS as i64, "{span}: {step}");
        }
    }

    #[test]
    fn a_reply_is_known_by_its_code_and_enhanced_status() {
        let lettre = "permanent error (550): 5.1.1 <ann@example.org>: Recipient address rejected";
        assert_eq!(reply_code(lettre), Some(550));
        assert_eq!(enhanced_status(lettre).as_deref(), Some("5.1.1"));
        assert_eq!(reply_code("451 4.7.1 try again later"), Some(451));
        assert_eq!(enhanced_status("451 4.7.1, try again later").as_deref(), Some("4.7.1"));
        assert_eq!(reply_code("subscriber is bounced"), None);
        assert_eq!(enhanced_status("version 1.2.3.4 and 10.0.0.1"), None);
        assert_eq!(reply_code("mx.example.org:25: cannot connect: refused 2024"), None);
    }

    #[test]
    fn a_sample_reply_names_nobody() {
        let s = without_addresses("550 5.1.1 <ann@example.org>: no such user  (ann@example.org)");
        assert_eq!(s, "550 5.1.1 <address> no such user <address>");
        assert!(without_addresses(&"x".repeat(500)).chars().count() <= 201);
    }

    #[test]
    fn replies_are_grouped_by_state_code_and_status_most_first() {
        let rows = vec![
            (DeliveryState::Failed, Some("550 5.1.1 <a@x.org> unknown".into()), 2),
            (DeliveryState::Failed, Some("550 5.1.1 <b@x.org> unknown".into()), 3),
            (DeliveryState::Failed, Some("552 5.2.2 full".into()), 1),
            (DeliveryState::Deferred, Some("451 4.7.1 slow down".into()), 7),
            (DeliveryState::Failed, None, 1),
        ];
        let r = reasons(rows);
        let seen: Vec<(DeliveryState, Option<u16>, Option<&str>, u64)> =
            r.iter().map(|g| (g.state, g.code, g.status.as_deref(), g.count)).collect();
        assert_eq!(
            seen,
            [
                (DeliveryState::Deferred, Some(451), Some("4.7.1"), 7),
                (DeliveryState::Failed, Some(550), Some("5.1.1"), 5),
                (DeliveryState::Failed, None, None, 1),
                (DeliveryState::Failed, Some(552), Some("5.2.2"), 1),
            ]
        );
        assert!(r[1].sample.contains("<address>") && !r[1].sample.contains('@'));
    }

    #[test]
    fn days_count_joins_and_departures_and_the_active_readers_back_from_today() {
        let day = |d: i64| from_ms(1_710_000_000_000 + d * 86_400_000);
        let bounds = [day(0), day(1), day(2), day(3)];
        let q = |d: i64, quarter: i64| (1_710_000_000_000 + d * 86_400_000) / QUARTER_MS + quarter;
        let rows = vec![
            (q(0, 1), "import".to_owned(), 10),
            (q(0, 2), "subscribe".to_owned(), 4),
            (q(1, 95), "confirm".to_owned(), 3),
            (q(1, 0), "unsubscribe".to_owned(), 1),
            (q(2, 5), "bounce".to_owned(), 2),
            (q(2, 6), "complaint".to_owned(), 1),
        ];
        let days = fold_days(&bounds, &rows, 9);
        let seen: Vec<(u64, u64, u64)> = days.iter().map(|d| (d.joined, d.left, d.active)).collect();
        assert_eq!(seen, [(10, 0, 10), (3, 1, 12), (0, 3, 9)]);
        assert_eq!(days[0].start, day(0));
    }
}
