//! `gazette run` and `gazette worker`: the long-running process. The scheduler serves each due
//! slot once (an issue, or a record of why none), the workers drain every issue that is sending,
//! and a stop request lets in-flight sends finish. An unfinished issue is always resumed before a
//! new slot is served.
//!
//! What the daemon does is logged at `info`, times in the publication's zone: at start the next
//! runs, then each slot skipped or missed and why, each issue made, each delivery pass that left
//! work for later, each issue sent with its counts and how long it took, and what is left at a
//! stop. No event names a reader: counts only, never an address, a token or a password.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use tracing::{error, info, warn};

use crate::{
    clock::Clock,
    config::{Config, Edition, Schedule},
    deliver::{Progress, Stop, Transport},
    domain::Actor,
    issue::{self, IssueError, Plan},
    publication::Publication,
    review::{self, mail::Occasion},
    schedule::{self, Slot},
    store::{SlotOutcome, SlotRef, Store, StoreError},
    subscribers,
};

/// What serving one slot did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SlotAction {
    Created(u32),
    /// With `[review]`: the slot's issue was made as a draft, for the editors to review.
    Drafted(u32),
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

/// One schedule the scheduler serves: `[schedule]`, or the `cron` of one `[[edition]]`. Each is
/// served on its own, its slots recorded under keys of its own, so that two editions whose slots
/// fall at the same time each make their issue once.
#[derive(Debug, Clone, Copy)]
pub struct Timetable<'a> {
    /// `None` for `[schedule]` (no `[[edition]]`).
    pub edition: Option<&'a Edition>,
    pub schedule: &'a Schedule,
}

impl<'a> Timetable<'a> {
    /// Every schedule of the publication: `[schedule]`, else each edition that has a `cron`, in
    /// the file's order.
    pub fn all(config: &'a Config) -> Vec<Self> {
        if let Some(schedule) = &config.schedule {
            return vec![Self { edition: None, schedule }];
        }
        config
            .editions
            .iter()
            .filter_map(|e| e.schedule.as_ref().map(|schedule| Self { edition: Some(e), schedule }))
            .collect()
    }

    /// What this schedule's slot keys start with: the edition's key and `@` (`weekly@`), nothing
    /// for `[schedule]`, whose keys stay the wall-clock time and zone alone.
    pub fn prefix(&self) -> String {
        self.edition.map(|e| format!("{}@", e.name.key())).unwrap_or_default()
    }

    /// The store's name for `slot` of this schedule.
    pub fn key(&self, slot: &Slot, tz: Tz) -> String {
        format!("{}{}", self.prefix(), slot.key(tz))
    }

    /// `the slot of …`, or `the weekly slot of …`, for the log.
    fn slot_named(&self, at: DateTime<Utc>, tz: Tz) -> String {
        match self.edition {
            Some(e) => format!("the {} slot of {}", e.name, local(at, tz)),
            None => format!("the slot of {}", local(at, tz)),
        }
    }
}

/// Serves the slots due at `now` of every schedule (`[schedule]`, or each edition's): for each,
/// the newest due one makes an issue (or is recorded as skipped with the reason), older unserved
/// ones are recorded as missed or passed over.
pub async fn serve_due_slots(
    publication: &Publication,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<(Slot, SlotAction)>, IssueError> {
    let timetables = Timetable::all(&publication.config);
    let mut out = Vec::new();
    for t in &timetables {
        match serve_timetable(publication, store, *t, now).await {
            Ok(actions) => out.extend(actions),
            // One edition whose sources cannot be read stops no other: said here, tried again.
            Err(IssueError::Source(e)) if timetables.len() > 1 => {
                let edition = t.edition.map(|e| e.name.to_string()).unwrap_or_default();
                error!(edition = %edition, "the {edition} issue could not be composed: {e}");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

/// `serve_due_slots` for one schedule.
async fn serve_timetable(
    publication: &Publication,
    store: &Store,
    timetable: Timetable<'_>,
    now: DateTime<Utc>,
) -> Result<Vec<(Slot, SlotAction)>, IssueError> {
    let sched = timetable.schedule;
    let tz = publication.config.publication.timezone;
    let catch_up = sched.catch_up.chrono();
    let floor = now - chrono::Duration::days(366);
    let from = store.last_slot_at_of(&timetable.prefix()).await?.unwrap_or(now - catch_up).max(floor);
    let due = schedule::slots_between(&sched.cron, tz, from, now, 10_000);
    let Some((newest, older)) = due.split_last() else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    // After a long stop there may be many: each is recorded, and the log says it once a kind.
    let (mut missed, mut passed_over) = (Vec::new(), Vec::new());
    for slot in older {
        let key = timetable.key(slot, tz);
        let (outcome, reason) = if now - slot.at > catch_up {
            (SlotOutcome::Missed, format!("missed: gazette was not running then (catch_up {})", sched.catch_up))
        } else {
            (SlotOutcome::Skipped, format!("passed over for the later slot of {}", local(newest.at, tz)))
        };
        if store.record_slot(&key, slot.at, outcome, Some(&reason), now).await? {
            if outcome == SlotOutcome::Missed {
                missed.push(slot.at);
                out.push((slot.clone(), SlotAction::Missed));
            } else {
                passed_over.push(slot.at);
                out.push((slot.clone(), SlotAction::Skipped(reason)));
            }
        }
    }
    let whose = timetable.edition.map(|e| format!("{} ", e.name)).unwrap_or_default();
    if !missed.is_empty() {
        warn!(
            "no {whose}issue for {}: gazette was not running then, and catch_up ({}) has passed",
            slots_named(&missed, tz),
            sched.catch_up
        );
    }
    if !passed_over.is_empty() {
        warn!(
            "no {whose}issue for {}: passed over for the later slot of {}",
            slots_named(&passed_over, tz),
            local(newest.at, tz)
        );
    }
    let action = serve(publication, store, timetable, newest, now).await?;
    out.push((newest.clone(), action));
    Ok(out)
}

async fn serve(
    publication: &Publication,
    store: &Store,
    timetable: Timetable<'_>,
    slot: &Slot,
    now: DateTime<Utc>,
) -> Result<SlotAction, IssueError> {
    let sched = timetable.schedule;
    let tz = publication.config.publication.timezone;
    let key = timetable.key(slot, tz);
    if store.slot(&key).await?.is_some() {
        return Ok(SlotAction::AlreadyServed);
    }
    if now - slot.at > sched.catch_up.chrono() {
        let reason = format!("missed: more than catch_up ({}) ago", sched.catch_up);
        if store.record_slot(&key, slot.at, SlotOutcome::Missed, Some(&reason), now).await? {
            warn!(slot = %key, "no issue for {}: {reason}", timetable.slot_named(slot.at, tz));
        }
        return Ok(SlotAction::Missed);
    }
    match subscribers::sync_lists(&publication.config, store, now).await {
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
    match issue::plan(publication, store, timetable.edition, slot.at, true).await? {
        Plan::Resume(i) => Ok(SlotAction::Waiting(i.number)),
        Plan::Paused(i) => {
            warn!(
                issue = i.number,
                "issue #{} is paused ({}): no new issue until `gazette issues resume {}` or `issues cancel {}`",
                i.number,
                i.note.as_deref().unwrap_or("paused"),
                i.number,
                i.number
            );
            Ok(SlotAction::Waiting(i.number))
        }
        Plan::Nothing(reason) => {
            if store.record_slot(&key, slot.at, SlotOutcome::Skipped, Some(&reason), now).await? {
                info!(slot = %key, "{} skipped, no issue: {reason}", timetable.slot_named(slot.at, tz));
                Ok(SlotAction::Skipped(reason))
            } else {
                Ok(SlotAction::AlreadyServed)
            }
        }
        Plan::Create(draft) if publication.config.review.is_some() => {
            // Reached only when the draft was not made ahead (the daemon was down, or nothing was
            // new then): made now, it is due at once and the review pass sends or holds it.
            let slot_ref = SlotRef { key: key.clone(), at: slot.at };
            let new = issue::new_issue(publication, &draft, Some(slot_ref))?;
            match store.create_draft(&new, Some(slot.at), &Actor::Scheduler, now).await {
                Ok(i) => {
                    info!(slot = %key, issue = i.number, "issue #{} made as a draft for {}", i.number, timetable.slot_named(slot.at, tz));
                    Ok(SlotAction::Drafted(i.number))
                }
                Err(StoreError::SlotTaken(_) | StoreError::IssueExists(_)) => Ok(SlotAction::AlreadyServed),
                Err(e) => Err(e.into()),
            }
        }
        Plan::Create(draft) => {
            let slot_ref = SlotRef { key: key.clone(), at: slot.at };
            match issue::create(publication, store, &draft, Some(slot_ref), now).await {
                Ok(i) => {
                    for w in &draft.warnings {
                        warn!(issue = i.number, "issue #{} goes without {}: {}", i.number, w.source, w.error);
                    }
                    info!(
                        slot = %key,
                        issue = i.number,
                        "issue #{} made for {}: {}, {}",
                        i.number,
                        timetable.slot_named(slot.at, tz),
                        counted(u64::try_from(i.articles.len()).unwrap_or(u64::MAX), "article", "articles"),
                        counted(i.counts.queued, "reader", "readers")
                    );
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

/// With `[review]`: the next slot's issue of each schedule (each edition's) made as a draft once
/// its slot is `lead` away (once, whichever process gets there first). The slot is taken with the
/// draft, so the slot itself serves nothing more. What was done for each schedule that had a slot
/// within `lead` comes back; nothing when none had.
pub async fn draft_ahead(
    publication: &Publication,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<SlotAction>, IssueError> {
    let Some(rev) = &publication.config.review else { return Ok(Vec::new()) };
    let tz = publication.config.publication.timezone;
    let mut out = Vec::new();
    for timetable in Timetable::all(&publication.config) {
        let Some(slot) = schedule::next_slots(&timetable.schedule.cron, tz, now, 1).into_iter().next() else {
            continue;
        };
        if slot.at <= now || slot.at - rev.lead.chrono() > now {
            continue;
        }
        let key = timetable.key(&slot, tz);
        if store.slot(&key).await?.is_some() {
            continue;
        }
        let slot_ref = SlotRef { key: key.clone(), at: slot.at };
        let made = review::draft(
            publication,
            store,
            timetable.edition,
            slot.at,
            Some(slot_ref),
            Some(slot.at),
            &Actor::Scheduler,
            now,
        )
        .await;
        match made {
            Ok(review::Drafted::Made(i)) => {
                info!(
                    slot = %key,
                    issue = i.number,
                    "issue #{} made as a draft for {}: {}",
                    i.number,
                    timetable.slot_named(slot.at, tz),
                    counted(u64::try_from(i.articles.len()).unwrap_or(u64::MAX), "article", "articles")
                );
                out.push(SlotAction::Drafted(i.number));
            }
            // Nothing to draft yet: looked at again a little later, and at the slot itself.
            Ok(review::Drafted::Nothing(reason)) => out.push(SlotAction::Skipped(reason)),
            Err(review::ReviewError::Store(StoreError::SlotTaken(_) | StoreError::IssueExists(_))) => {}
            Err(review::ReviewError::Send(e)) => return Err(e),
            Err(review::ReviewError::Store(e)) => return Err(e.into()),
            Err(e) => warn!("the draft of {} could not be made: {e}", timetable.slot_named(slot.at, tz)),
        }
    }
    Ok(out)
}

/// With `[review]`: each reviewed issue whose slot came is queued (approved, or not held under
/// `approval = "auto"`) or held (not approved under `"required"`). The issues held come back,
/// for their editors to be told.
pub async fn serve_reviews(
    publication: &Publication,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<Vec<u32>, IssueError> {
    let Some(rev) = &publication.config.review else { return Ok(Vec::new()) };
    let required = rev.approval == crate::config::Approval::Required;
    let lists = subscribers::issue_lists(&publication.config);
    let mut held = Vec::new();
    let due = store.reviews_due(now).await?;
    if !due.is_empty()
        && let Err(e) = subscribers::sync_lists(&publication.config, store, now).await
    {
        warn!("list files not synced: {e}");
    }
    for number in due {
        let plan = store.issue(number).await?.and_then(|i| issue::variant_plan_of(publication, &i, now));
        match store.serve_slot(number, required, lists, plan.as_ref(), &Actor::Scheduler, now).await? {
            crate::store::AtSlot::Queued => info!(issue = number, "issue #{number} queued at its slot"),
            crate::store::AtSlot::Held => {
                warn!(
                    issue = number,
                    "issue #{number} held at its slot: not approved; `gazette issues approve {number}` sends it"
                );
                held.push(number);
            }
            crate::store::AtSlot::Left => {}
        }
    }
    Ok(held)
}

/// Mails the editors about issue `number`; a failure is logged (no address in it), not fatal.
async fn tell_editors(
    publication: &Arc<Publication>,
    store: &Store,
    transport: &Transport,
    clock: &Arc<dyn Clock>,
    number: u32,
    occasion: Occasion,
) {
    let record = match store.issue(number).await {
        Ok(Some(r)) => r,
        Ok(None) => return,
        Err(e) => {
            warn!(issue = number, "cannot read issue #{number} to mail the editors: {e}");
            return;
        }
    };
    match review::mail::mail_editors(publication, &record, transport, Arc::clone(clock), occasion).await {
        Ok(n) => info!(
            issue = number,
            "issue #{number} mailed to {}",
            counted(u64::try_from(n).unwrap_or(0), "editor", "editors")
        ),
        Err(_) => warn!(
            issue = number,
            "issue #{number} could not be mailed to every editor; the SMTP server refused or was unreachable"
        ),
    }
}

struct LogProgress;

impl Progress for LogProgress {
    fn recorded(&self, _: &crate::domain::Outcome) {}
}

/// A moment as the publication's readers read their clocks: `Mon 18 Mar 2024 09:00 EDT` (with
/// seconds where a schedule has them).
pub fn local(at: DateTime<Utc>, tz: Tz) -> String {
    let format = if at.second() == 0 { "%a %-d %b %Y %H:%M %Z" } else { "%a %-d %b %Y %H:%M:%S %Z" };
    at.with_timezone(&tz).format(format).to_string()
}

/// `the slot of Mon 18 Mar 2024 09:00 EDT`, or `3 slots from … to …`.
fn slots_named(at: &[DateTime<Utc>], tz: Tz) -> String {
    match at {
        [one] => format!("the slot of {}", local(*one, tz)),
        [first, .., last] => format!("{} slots from {} to {}", at.len(), local(*first, tz), local(*last, tz)),
        [] => "no slot".to_owned(),
    }
}

/// `1 article`, `2 articles`.
fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Says what this process will do: the schedule and its next runs, or that it only delivers.
fn announce(publication: &Publication, now: DateTime<Utc>, roles: Roles) {
    let tz = publication.config.publication.timezone;
    let timetables = Timetable::all(&publication.config);
    if !roles.scheduler || timetables.is_empty() {
        info!("worker started: delivering every issue that is sending");
        return;
    }
    for t in timetables {
        let sched = t.schedule;
        let next: Vec<String> = schedule::next_slots(&sched.cron, tz, now, 3).iter().map(|s| local(s.at, tz)).collect();
        let next = if next.is_empty() { "none".to_owned() } else { next.join(", ") };
        match t.edition {
            Some(e) => info!(
                "scheduler started for the {} edition: `{}` in {}; next runs {next}",
                e.name,
                sched.expression,
                tz.name()
            ),
            None => info!("scheduler started: `{}` in {}; next runs {next}", sched.expression, tz.name()),
        }
    }
}

/// Logs what a delivery pass did: the issue's counts when it finished the issue, else what this
/// pass sent and what it left waiting, and until when.
async fn report(store: &Store, tz: Tz, number: u32, done: &issue::Delivered) -> Result<(), IssueError> {
    let r = &done.run;
    if let Some(why) = &r.paused {
        warn!(
            issue = number,
            "issue #{number} paused after {} sent in this pass: {why}; `gazette issues resume {number}` goes on",
            r.sent
        );
        return Ok(());
    }
    if done.finished {
        let Some(i) = store.issue(number).await? else { return Ok(()) };
        let took = i.finished_at.and_then(|f| (f - i.created_at).to_std().ok()).unwrap_or(r.elapsed);
        let c = &i.counts;
        info!(
            issue = number,
            "issue #{number} sent: {} sent, {} failed, {} deferred, {} skipped, in {} since it was made",
            c.sent,
            c.failed,
            c.deferred,
            c.skipped,
            crate::domain::took(took)
        );
    } else if r.sent + r.failed + r.deferred + r.retries > 0 {
        let next = match store.next_due(number).await? {
            Some(at) if r.deferred > 0 => format!("; next attempt {}", local(at, tz)),
            _ => String::new(),
        };
        info!(
            issue = number,
            "issue #{number}: {} sent, {} failed, {} deferred in {} ({}){next}",
            r.sent,
            r.failed,
            r.deferred,
            crate::domain::took(r.elapsed),
            crate::domain::throughput(r.sent, r.elapsed)
        );
    }
    Ok(())
}

/// Says what a stop leaves for the next start.
async fn farewell(store: &Store, roles: Roles) {
    let mut left = Vec::new();
    if roles.workers
        && let Ok(numbers) = store.sending_issues().await
    {
        for number in numbers {
            if let Ok(Some(i)) = store.issue(number).await
                && i.counts.pending() > 0
            {
                left.push(format!("issue #{number} has {} deliveries left", i.counts.pending()));
            }
        }
    }
    if left.is_empty() {
        info!("stopped");
    } else {
        info!("stopped; {}, to go out on the next start", left.join(", "));
    }
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
    announce(&publication, clock.now(), roles);
    let tz = publication.config.publication.timezone;
    let mut server_down_until: Option<std::time::Instant> = None;
    let mut next_draft_try: Option<std::time::Instant> = None;
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
                // Deferred deliveries not yet due would only cost a login to the server, unless
                // readers are still to be queued (their filler stopped with its process).
                if store.next_due(number).await?.is_some_and(|due| due > clock.now()) && !store.filling(number).await? {
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
                    Ok(done) => {
                        if let Err(e) = report(&store, tz, number, &done).await {
                            warn!(issue = number, "cannot read the issue back to report on it: {e}");
                        }
                        let r = &done.run;
                        busy |= r.sent + r.failed + r.deferred + r.retries > 0;
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
            let mut drafted = Vec::new();
            match serve_due_slots(&publication, &store, clock.now()).await {
                Ok(actions) => {
                    busy |= actions.iter().any(|(_, a)| matches!(a, SlotAction::Created(_) | SlotAction::Drafted(_)));
                    drafted.extend(actions.iter().filter_map(|(_, a)| match a {
                        SlotAction::Drafted(n) => Some(*n),
                        _ => None,
                    }));
                }
                Err(IssueError::Source(e)) => error!("the scheduled issue could not be composed: {e}"),
                Err(e) => return Err(e),
            }
            if next_draft_try.is_none_or(|t| std::time::Instant::now() >= t) {
                match draft_ahead(&publication, &store, clock.now()).await {
                    Ok(actions) => {
                        next_draft_try = None;
                        for a in actions {
                            match a {
                                SlotAction::Drafted(n) => drafted.push(n),
                                // The sources are not read again every second while there is
                                // nothing to draft.
                                _ => next_draft_try = Some(std::time::Instant::now() + Duration::from_secs(60)),
                            }
                        }
                    }
                    Err(IssueError::Source(e)) => error!("the draft could not be composed: {e}"),
                    Err(e) => return Err(e),
                }
            }
            for n in drafted {
                busy = true;
                tell_editors(&publication, &store, &transport, &clock, n, Occasion::Drafted).await;
            }
            for n in serve_reviews(&publication, &store, clock.now()).await? {
                busy = true;
                tell_editors(&publication, &store, &transport, &clock, n, Occasion::Held).await;
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
    farewell(&store, roles).await;
    Ok(())
}

/// Until the next slot, but never more than a second: workers poll the queue, and a clock that
/// jumps is noticed soon.
fn next_pause(publication: &Publication, now: DateTime<Utc>, roles: Roles) -> Duration {
    let poll = Duration::from_secs(1);
    if !roles.scheduler {
        return poll;
    }
    let tz = publication.config.publication.timezone;
    Timetable::all(&publication.config)
        .iter()
        .filter_map(|t| schedule::next_slots(&t.schedule.cron, tz, now, 1).first().map(|s| s.at))
        .min()
        .and_then(|at| (at - now).to_std().ok())
        .map_or(poll, |d| d.clamp(Duration::from_millis(20), poll))
}

#[cfg(test)]
mod tests;
