//! When issues are due. A schedule's fire times are *slots*: wall-clock times in the
//! publication's zone, each named by its wall-clock time, so a slot is the same slot whatever
//! process computes it and however the clock moves. Daylight saving never makes a slot vanish or
//! repeat: a wall time that does not exist (spring forward) fires at the first instant after the
//! gap, and one that happens twice (fall back) fires at the first of the two. Pure: no clock, no
//! store.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// One fire time of the schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    /// The wall-clock time it was set for, in the publication's zone.
    pub local: NaiveDateTime,
    /// The instant it fires.
    pub at: DateTime<Utc>,
}

impl Slot {
    /// The slot's name in the store: its wall-clock time and zone.
    pub fn key(&self, tz: Tz) -> String {
        format!("{} {}", self.local.format("%Y-%m-%dT%H:%M:%S"), tz.name())
    }
}

/// The instant a wall-clock time stands for, under the rules above.
pub fn instant(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // In a gap: read the wall time with the offset in force before the gap, which moves
            // it forward by the gap's length (02:30 in a 02:00–03:00 gap fires at 03:30).
            let before = tz.from_local_datetime(&(local - Duration::hours(3))).earliest();
            let offset = before.map_or(0, |b| b.offset().fix().local_minus_utc());
            Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset))))
        }
    }
}

/// The schedule's wall times, read as if the zone had no daylight saving: the cron crate then
/// never skips or repeats one.
fn wall_times(schedule: &cron::Schedule, after_local: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> + '_ {
    schedule.after_owned(Utc.from_utc_datetime(&after_local)).map(|t| t.naive_utc())
}

/// The slots that fire in `(from, to]`, oldest first (at most `limit`).
pub fn slots_between(
    schedule: &cron::Schedule,
    tz: Tz,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Vec<Slot> {
    // Start a few hours early in wall time: a slot moved forward out of a gap can fire after
    // `from` although its wall time is before it.
    let start = from.with_timezone(&tz).naive_local() - Duration::hours(3);
    let mut out = Vec::new();
    for local in wall_times(schedule, start) {
        let at = instant(local, tz);
        if at > to && local > to.with_timezone(&tz).naive_local() + Duration::hours(3) {
            break;
        }
        if at > from && at <= to {
            out.push(Slot { local, at });
            if out.len() >= limit {
                break;
            }
        }
    }
    out.sort_by_key(|s| s.at);
    out
}

/// The next `n` slots after `now`.
pub fn next_slots(schedule: &cron::Schedule, tz: Tz, now: DateTime<Utc>, n: usize) -> Vec<Slot> {
    let start = now.with_timezone(&tz).naive_local() - Duration::hours(3);
    let mut out: Vec<Slot> = wall_times(schedule, start)
        .map(|local| Slot { at: instant(local, tz), local })
        .filter(|s| s.at > now)
        .take(n)
        .collect();
    out.sort_by_key(|s| s.at);
    out
}

#[cfg(test)]
mod tests;
