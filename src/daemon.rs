//! `gazette run` and `gazette worker`: the long-running process. The scheduler serves each due
//! slot once (an issue, or a record of why none), the workers drain every issue that is sending,
//! and a stop request lets in-flight sends finish. An unfinished issue is always resumed before a
//! new slot is served.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use tracing::{error, info, warn};

use crate::{
    clock::Clock,
    deliver::{Progress, Stop, Transport},
    issue::{self, IssueError, Plan},
    publication::Publication,
    schedule::{self, Slot},
    store::{SlotOutcome, SlotRef, Store, StoreError},
};

/// What serving one slot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotAction {
    Created(u32),
    Skipped(String),
    Missed,
    /// Another process (or an earlier run) already served it.
    AlreadyServed,
    /// An issue is still going out; the slot waits for it.
    Waiting(u32),
}

/// Which parts of the daemon run in this process.
#[derive(Debug, Clone, Copy)]
pub struct Roles {
    pub scheduler: bool,
    pub workers: bool,
}

/// Serves the slots due at `now`: the newest due one makes an issue (or is recorded as skipped
/// with the reason), older unserved ones are recorded as missed or passed over.
pub async fn serve_due_slots(
    publication: &Publication,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(Slot, SlotAction)>, IssueError> {
    let Some(sched) = &publication.config.schedule else { return Ok(Vec::new()) };
    let tz = publication.config.publication.timezone;
    let catch_up = sched.catch_up.chrono();
    let floor = now - chrono::Duration::days(366);
    let from = store.last_slot_at().await?.unwrap_or(now - catch_up).max(floor);
    let due = schedule::slots_between(&sched.cron, tz, from, now, 10_000);
    let Some((newest, older)) = due.split_last() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for slot in older {
        let key = slot.key(tz);
        let (outcome, reason) = if now - slot.at > catch_up {
            (
                SlotOutcome::Missed,
                format!("missed: gazette was not running at {} (catch_up {})", slot.at, sched.catch_up),
            )
        } else {
            (SlotOutcome::Skipped, format!("passed over for the later slot {}", newest.key(tz)))
        };
        if store.record_slot(&key, slot.at, outcome, Some(&reason), now).await? {
            warn!(slot = %key, "{reason}");
            out.push((
                slot.clone(),
                if outcome == SlotOutcome::Missed { SlotAction::Missed } else { SlotAction::Skipped(reason) },
            ));
        }
    }
    let action = serve(publication, store, newest, now).await?;
    out.push((newest.clone(), action));
    Ok(out)
}

async fn serve(
    publication: &Publication,
    store: &Store,
    slot: &Slot,
    now: DateTime<Utc>,
) -> Result<SlotAction, IssueError> {
    let sched = publication.config.schedule.as_ref().expect("serve is only called with a schedule");
    let tz = publication.config.publication.timezone;
    let key = slot.key(tz);
    if store.slot(&key).await?.is_some() {
        return Ok(SlotAction::AlreadyServed);
    }
    if now - slot.at > sched.catch_up.chrono() {
        let reason = format!("missed: more than catch_up ({}) ago", sched.catch_up);
        if store.record_slot(&key, slot.at, SlotOutcome::Missed, Some(&reason), now).await? {
            warn!(slot = %key, "{reason}");
        }
        return Ok(SlotAction::Missed);
    }
    match issue::sync_lists(&publication.config, store, now).await {
        Err(e) => warn!("list files not synced: {e}"),
        // A bad row's reason may quote an address, which logs never hold: the count is logged
        // once per change of the file, and `check` names the rows.
        Ok(syncs) => {
            for s in syncs.iter().filter(|s| s.changed && !s.rejected.is_empty()) {
                warn!(
                    list = %s.list,
                    file = %s.file.display(),
                    rows = s.rejected.len(),
                    "bad rows of the list file left out; `gazette check` names them"
                );
            }
        }
    }
    // The issue is dated by the slot, not by when this process got to it.
    match issue::plan(publication, store, slot.at, true).await? {
        Plan::Resume(i) => Ok(SlotAction::Waiting(i.number)),
        Plan::Nothing(reason) => {
            if store.record_slot(&key, slot.at, SlotOutcome::Skipped, Some(&reason), now).await? {
                info!(slot = %key, "no issue: {reason}");
                Ok(SlotAction::Skipped(reason))
            } else {
                Ok(SlotAction::AlreadyServed)
            }
        }
        Plan::Create(draft) => {
            let slot_ref = SlotRef { key: key.clone(), at: slot.at };
            match issue::create(publication, store, &draft, Some(slot_ref), now).await {
                Ok(i) => {
                    info!(slot = %key, issue = i.number, recipients = i.counts.queued, "issue created");
                    Ok(SlotAction::Created(i.number))
                }
                Err(IssueError::Store(StoreError::SlotTaken(_) | StoreError::IssueExists(_))) => {
                    Ok(SlotAction::AlreadyServed)
                }
                Err(e) => Err(e),
            }
        }
    }
}

struct LogProgress;

impl Progress for LogProgress {
    fn recorded(&self, _: &crate::domain::Outcome) {}
}

/// Runs until `stop` is set.
pub async fn run(
    publication: Arc<Publication>,
    store: Store,
    transport: Transport,
    clock: Arc<dyn Clock>,
    mut stop: Stop,
    roles: Roles,
) -> Result<(), IssueError> {
    let mut server_down_until: Option<std::time::Instant> = None;
    loop {
        if stop.is_set() {
            break;
        }
        let mut busy = false;
        if roles.workers && server_down_until.is_none_or(|t| std::time::Instant::now() >= t) {
            server_down_until = None;
            for number in store.sending_issues().await? {
                if stop.is_set() {
                    break;
                }
                // Deferred deliveries not yet due would only cost a login to the server.
                if store.next_due(number).await?.is_some_and(|due| due > clock.now()) {
                    continue;
                }
                let Some(record) = store.issue(number).await? else { continue };
                let result = issue::deliver(
                    Arc::clone(&publication),
                    &store,
                    &record,
                    transport.clone(),
                    Arc::clone(&clock),
                    Arc::new(LogProgress),
                    stop.clone(),
                    false,
                )
                .await;
                match result {
                    Ok(s) => {
                        if s.sent + s.failed + s.deferred > 0 {
                            info!(issue = number, sent = s.sent, deferred = s.deferred, failed = s.failed, "delivered");
                            busy = true;
                        }
                    }
                    Err(IssueError::Deliver(e)) => {
                        error!(issue = number, "{e}");
                        server_down_until = Some(std::time::Instant::now() + Duration::from_secs(30));
                    }
                    Err(e) => return Err(e),
                }
            }
        }
        if roles.scheduler && !stop.is_set() {
            match serve_due_slots(&publication, &store, clock.now()).await {
                Ok(actions) => busy |= actions.iter().any(|(_, a)| matches!(a, SlotAction::Created(_))),
                Err(IssueError::Source(e)) => error!("the scheduled issue could not be composed: {e}"),
                Err(e) => return Err(e),
            }
        }
        if busy {
            continue;
        }
        let pause = next_pause(&publication, clock.now(), roles);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = stop.wait() => {}
        }
    }
    info!("stopped");
    Ok(())
}

/// Until the next slot, but never more than a second: workers poll the queue, and a clock that
/// jumps is noticed soon.
fn next_pause(publication: &Publication, now: DateTime<Utc>, roles: Roles) -> Duration {
    let poll = Duration::from_secs(1);
    if !roles.scheduler {
        return poll;
    }
    let Some(sched) = &publication.config.schedule else { return poll };
    schedule::next_slots(&sched.cron, publication.config.publication.timezone, now, 1)
        .first()
        .and_then(|s| (s.at - now).to_std().ok())
        .map_or(poll, |d| d.clamp(Duration::from_millis(20), poll))
}

#[cfg(test)]
mod tests;
