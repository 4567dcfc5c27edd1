//! The dashboard's figures as its pages show them: an issue's counts, its messages over time and
//! its failures, bounces and complaints by reason, and the subscribers over the last days, each
//! as a chart (`charts`) and as a table of the same numbers, times read in the publication's
//! zone. Made here once for the page and for the endpoint its script asks while the issue sends.

use chrono::{DateTime, Days, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::charts::{self, Bar, ChartError, Hue, Series, TimeChart};
use crate::{
    domain::{BounceKind, DeliveryState, IssueStatus},
    store::{DeliveryCounts, IssueRecord, Store, StoreError},
};

/// Days on the overview's chart of subscribers.
pub const SUBSCRIBER_DAYS: u64 = 30;

#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chart(#[from] ChartError),
}

impl From<FiguresError> for super::WebError {
    fn from(e: FiguresError) -> Self {
        match e {
            FiguresError::Store(e) => Self::Store(e),
            FiguresError::Chart(e) => Self::Template { name: "chart".into(), message: e.to_string() },
        }
    }
}

/// An issue's figures.
#[derive(Debug, Clone, Serialize)]
pub struct IssueFigures {
    pub number: u32,
    pub status: IssueStatus,
    /// Still going out: the page asks again every few seconds.
    pub live: bool,
    pub counts: DeliveryCounts,
    pub total: u64,
    pub bounced: u64,
    pub complained: u64,
    /// Sent or refused for good, of all deliveries, in whole per cent.
    pub done_percent: u64,
    pub timeline: TimelineView,
    pub failures: Vec<FailureRow>,
    pub failures_chart: Option<String>,
    pub reports: Vec<ReportRow>,
    pub reports_chart: Option<String>,
}

/// Messages over time: the chart, and its points as rows.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineView {
    /// The step, in words: `10 s`, `5 min`, `1 h`.
    pub step: String,
    pub rows: Vec<TimeRow>,
    pub chart: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeRow {
    /// The step's start in the publication's zone.
    pub at: String,
    pub sent: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FailureRow {
    pub state: DeliveryState,
    /// The reply's code and enhanced status, as one label: `550 5.1.1`.
    pub reason: String,
    pub count: u64,
    pub sample: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub kind: BounceKind,
    pub status: String,
    pub count: u64,
    pub sample: String,
}

/// The subscribers over the last days.
#[derive(Debug, Clone, Serialize)]
pub struct SubscribersView {
    pub days: Vec<DayRow>,
    pub chart: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct DayRow {
    pub date: String,
    pub joined: u64,
    pub left: u64,
    pub active: u64,
}

/// A step's length in words.
fn step_words(step: chrono::Duration) -> String {
    let s = step.num_seconds();
    match s {
        s if s >= 86_400 && s % 86_400 == 0 => format!("{} d", s / 86_400),
        s if s >= 3600 && s % 3600 == 0 => format!("{} h", s / 3600),
        s if s >= 60 && s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn reason_label(code: Option<u16>, status: Option<&str>) -> String {
    match (code, status) {
        (Some(c), Some(s)) => format!("{c} {s}"),
        (Some(c), None) => c.to_string(),
        (None, Some(s)) => s.to_owned(),
        (None, None) => "no SMTP reply".to_owned(),
    }
}

/// Loads issue `issue`'s figures, times in `zone`.
pub async fn issue(store: &Store, issue: &IssueRecord, zone: Tz) -> Result<IssueFigures, FiguresError> {
    let n = issue.number;
    let timeline = store.issue_timeline(n).await?;
    let failures = store.issue_failure_reasons(n).await?;
    let reports = store.issue_report_reasons(n).await?;

    let times: Vec<DateTime<Utc>> = timeline.points.iter().map(|p| p.at).collect();
    let sent: Vec<u64> = timeline.points.iter().map(|p| p.sent).collect();
    let failed: Vec<u64> = timeline.points.iter().map(|p| p.failed).collect();
    let step = step_words(timeline.step);
    let long = times.first().zip(times.last()).is_some_and(|(a, b)| *b - *a > chrono::Duration::hours(20));
    let row_format = if long { "%-d %b %H:%M" } else { "%H:%M:%S" };
    let chart = if times.is_empty() {
        None
    } else {
        let desc = format!(
            "Messages of issue {n} sent and refused per {step}, from {} to {}: {} sent, {} refused.",
            times.first().map(|t| t.with_timezone(&zone).format("%-d %b %H:%M").to_string()).unwrap_or_default(),
            times.last().map(|t| t.with_timezone(&zone).format("%-d %b %H:%M").to_string()).unwrap_or_default(),
            sent.iter().sum::<u64>(),
            failed.iter().sum::<u64>(),
        );
        Some(charts::time_chart(&TimeChart {
            id: "messages",
            title: "Messages over time",
            desc: &desc,
            zone,
            times: &times,
            series: &[
                Series { name: "sent", values: &sent, hue: Hue::Good, filled: true },
                Series { name: "refused", values: &failed, hue: Hue::Bad, filled: false },
            ],
        })?)
    };
    let rows = timeline
        .points
        .iter()
        .map(|p| TimeRow {
            at: p.at.with_timezone(&zone).format(row_format).to_string(),
            sent: p.sent,
            failed: p.failed,
        })
        .collect();

    let failure_rows: Vec<FailureRow> = failures
        .iter()
        .map(|f| FailureRow {
            state: f.state,
            reason: reason_label(f.code, f.status.as_deref()),
            count: f.count,
            sample: f.sample.clone(),
        })
        .collect();
    let failures_chart = (!failure_rows.is_empty())
        .then(|| {
            let bars: Vec<Bar> = failure_rows
                .iter()
                .map(|f| Bar {
                    label: format!("{} {}", f.state, f.reason),
                    value: f.count,
                    hue: if f.state == DeliveryState::Failed { Hue::Bad } else { Hue::Waiting },
                })
                .collect();
            let desc = describe_bars("Deliveries of this issue refused or waiting, by reply", &bars);
            charts::bar_chart("failures", "Failures by reason", &desc, &bars)
        })
        .transpose()?;

    let report_rows: Vec<ReportRow> = reports
        .iter()
        .map(|r| ReportRow {
            kind: r.kind,
            status: r.status.clone().unwrap_or_else(|| "no status".into()),
            count: r.count,
            sample: r.sample.clone().unwrap_or_default(),
        })
        .collect();
    let reports_chart = (!report_rows.is_empty())
        .then(|| {
            let bars: Vec<Bar> = report_rows
                .iter()
                .map(|r| Bar {
                    label: format!("{} {}", r.kind, r.status),
                    value: r.count,
                    hue: match r.kind {
                        BounceKind::Hard => Hue::Bad,
                        BounceKind::Soft => Hue::Waiting,
                        BounceKind::Complaint => Hue::Complaint,
                    },
                })
                .collect();
            let desc = describe_bars("Bounces and complaints of this issue, by kind and status", &bars);
            charts::bar_chart("reports", "Bounces and complaints by reason", &desc, &bars)
        })
        .transpose()?;

    let counts = issue.counts.clone();
    let total = counts.total();
    let done = counts.sent + counts.failed + counts.skipped;
    Ok(IssueFigures {
        number: n,
        status: issue.status,
        live: matches!(issue.status, IssueStatus::Sending),
        done_percent: (done * 100).checked_div(total).unwrap_or(0),
        total,
        bounced: issue.reports.bounced,
        complained: issue.reports.complained,
        counts,
        timeline: TimelineView { step, rows, chart },
        failures: failure_rows,
        failures_chart,
        reports: report_rows,
        reports_chart,
    })
}

/// A bar chart's description: what it counts, and each bar's figure.
fn describe_bars(what: &str, bars: &[Bar]) -> String {
    let each: Vec<String> = bars.iter().map(|b| format!("{}: {}", b.label, b.value)).collect();
    format!("{what}. {}.", each.join("; "))
}

/// The first instants of the last `days` days in `zone` up to `now`'s, and the end of today.
fn day_bounds(now: DateTime<Utc>, zone: Tz, days: u64) -> Vec<DateTime<Utc>> {
    let today = now.with_timezone(&zone).date_naive();
    let start_of = |d: chrono::NaiveDate| {
        // A day whose midnight a clock change skips starts at its first instant that exists.
        zone.from_local_datetime(&d.and_time(NaiveTime::MIN))
            .earliest()
            .or_else(|| zone.from_local_datetime(&d.and_hms_opt(1, 0, 0)?).earliest())
            .map(|t| t.with_timezone(&Utc))
    };
    (0..=days)
        .rev()
        .filter_map(|back| {
            let day = if back == 0 {
                today.checked_add_days(Days::new(1))
            } else {
                today.checked_sub_days(Days::new(back - 1))
            };
            day.and_then(start_of)
        })
        .collect()
}

/// The subscribers over the last [`SUBSCRIBER_DAYS`] days up to `now`, in `zone`'s days.
pub async fn subscribers(store: &Store, now: DateTime<Utc>, zone: Tz) -> Result<SubscribersView, FiguresError> {
    let bounds = day_bounds(now, zone, SUBSCRIBER_DAYS);
    let days = store.subscriber_days(&bounds).await?;
    let times: Vec<DateTime<Utc>> = days.iter().map(|d| d.start).collect();
    let active: Vec<u64> = days.iter().map(|d| d.active).collect();
    let desc = format!(
        "Active subscribers at the end of each of the last {} days, from {} to {}.",
        days.len(),
        active.first().copied().unwrap_or(0),
        active.last().copied().unwrap_or(0)
    );
    let chart = charts::time_chart(&TimeChart {
        id: "subscribers",
        title: "Subscribers over time",
        desc: &desc,
        zone,
        times: &times,
        series: &[Series { name: "active", values: &active, hue: Hue::Good, filled: true }],
    })?;
    let days = days
        .iter()
        .rev()
        .map(|d| DayRow {
            date: d.start.with_timezone(&zone).format("%a %-d %b").to_string(),
            joined: d.joined,
            left: d.left,
            active: d.active,
        })
        .collect();
    Ok(SubscribersView { days, chart })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_start_at_the_zones_midnight_and_end_with_today() {
        let now = Utc.with_ymd_and_hms(2024, 3, 31, 12, 0, 0).single().expect("time");
        let b = day_bounds(now, Tz::Europe__Paris, 3);
        let local: Vec<String> = b.iter().map(|t| t.with_timezone(&Tz::Europe__Paris).to_rfc3339()).collect();
        assert_eq!(
            local,
            [
                "2024-03-29T00:00:00+01:00",
                "2024-03-30T00:00:00+01:00",
                "2024-03-31T00:00:00+01:00",
                "2024-04-01T00:00:00+02:00"
            ]
        );
    }

    #[test]
    fn steps_and_reasons_read_as_words() {
        assert_eq!(step_words(chrono::Duration::seconds(10)), "10 s");
        assert_eq!(step_words(chrono::Duration::seconds(300)), "5 min");
        assert_eq!(step_words(chrono::Duration::hours(2)), "2 h");
        assert_eq!(step_words(chrono::Duration::days(1)), "1 d");
        assert_eq!(reason_label(Some(550), Some("5.1.1")), "550 5.1.1");
        assert_eq!(reason_label(None, None), "no SMTP reply");
    }
}
