//! Running a delivery from the command line, for `send` and `issues resume`: the engine with a
//! progress bar on a terminal, Ctrl-C and SIGTERM as a graceful stop (`signals`), and the line
//! that closes the run.

use std::{io::IsTerminal, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{Failure, signals};
use crate::{
    clock::{Clock, SystemClock},
    deliver::{Progress, RunSummary, Stop},
    domain::Outcome,
    issue,
    store::IssueRecord,
};

/// Runs the engine on the issue with a progress bar and Ctrl-C/SIGTERM handling.
pub async fn deliver(
    publication: Arc<crate::publication::Publication>,
    store: &crate::store::Store,
    issue: &IssueRecord,
    transport: crate::deliver::Transport,
) -> Result<RunSummary, Failure> {
    let (stop_tx, stop) = Stop::new();
    let signals = tokio::spawn(async move {
        signals::wait_for_signal().await;
        let _ = stop_tx.send(true);
    });
    let progress = Arc::new(Bar::new(issue.counts.pending()));
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let result = issue::deliver(publication, store, issue, transport, clock, progress.clone(), stop, true).await;
    signals.abort();
    progress.finish();
    Ok(result?.run)
}

/// The line that closes a delivery run: the issue's counts as the ledger holds them after it
/// (`issue`, read once with the table printed below it), then how long this run took and how
/// fast it sent, and how long after the command started (`started`) its first message was
/// accepted. A run that did part of the issue says how much was its own.
pub fn summary_line(issue: &IssueRecord, s: &RunSummary, started: std::time::Instant) -> String {
    let c = &issue.counts;
    let own = if s.sent == c.sent { String::new() } else { format!(" ({} in this run)", s.sent) };
    let queued = if c.queued > 0 { format!(", {} still queued", c.queued) } else { String::new() };
    let first = match first_message(s, started) {
        Some(d) => format!("The first message left {} after the command started.\n", crate::domain::took(d)),
        None => String::new(),
    };
    format!(
        "Issue #{} \"{}\": {} sent{own}, {} deferred, {} failed{queued} in {} ({})\n{first}",
        issue.number,
        issue.subject,
        c.sent,
        c.deferred,
        c.failed,
        crate::domain::took(s.elapsed),
        crate::domain::throughput(s.sent, s.elapsed),
    )
}

/// How long after `started` (the command's start) the run's first message was accepted.
pub fn first_message(s: &RunSummary, started: std::time::Instant) -> Option<Duration> {
    s.first_sent.map(|at| at.saturating_duration_since(started))
}

/// A progress bar on a terminal; silent otherwise.
struct Bar {
    bar: Option<indicatif::ProgressBar>,
}

impl Bar {
    fn new(total: u64) -> Self {
        let bar = std::io::stdout().is_terminal().then(|| {
            let b = indicatif::ProgressBar::new(total);
            b.set_style(
                indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {rate} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                        let _ = w.write_str(&crate::domain::readable_rate(state.per_sec()));
                    }),
            );
            b.enable_steady_tick(Duration::from_millis(200));
            b
        });
        Self { bar }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Progress for Bar {
    fn recorded(&self, outcome: &Outcome) {
        if let Some(b) = &self.bar
            && !matches!(outcome, Outcome::Released { .. } | Outcome::Deferred { .. })
        {
            b.inc(1);
        }
    }

    /// Readers queued while the issue goes out: the bar's total grows with them.
    fn queued(&self, more: u64) {
        if let Some(b) = &self.bar {
            b.inc_length(more);
        }
    }

    fn waiting(&self, until: DateTime<Utc>) {
        if let Some(b) = &self.bar {
            b.set_message(format!("waiting for deferred messages until {}", until.format("%H:%M:%S")));
        }
    }
}

/// Why nothing new goes out while `issue` is paused, and what to do.
pub fn paused(issue: &crate::store::IssueRecord) -> Failure {
    let n = issue.number;
    Failure::unfinished(format!(
        "issue #{n} is paused: {}; see what came back with `gazette bounces list --issue {n}`, then `gazette issues resume {n}` to go on or `gazette issues cancel {n}`",
        issue.note.as_deref().unwrap_or("paused by its bounce or complaint rate")
    ))
}
