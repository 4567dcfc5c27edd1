//! The delivery engine: drains one issue's queue. A claimer takes batches of due deliveries
//! under a lease, `concurrency` senders each send one message at a time, and a ledger writer
//! records outcomes in batches. A sender hands the server no message until its last outcome is
//! recorded, so a crash at any moment re-sends at most the messages in flight: one per sender.
//! While the record is written, the sender composes its next message and sends its envelope and
//! content, all but the final dot, so the ledger's latency is hidden behind the server's. Leases
//! are renewed while the engine lives; a dead engine's are taken over when they expire.

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use lettre::Message;
use tokio::sync::{Mutex, mpsc, oneshot, watch};

use super::{
    DeliverError, QueueError, RelayRates, SendError, SendErrorKind, Transport, backoff,
    lanes::{Busy, Lane, Lanes, Permit},
    pace::{self, Allowance, Pace},
};
use crate::{
    clock::{Clock, SystemClock},
    config::Shaping,
    domain::{Claimed, MessageId, Outcome, Rate, RateLimits},
};

/// What the engine needs of the delivery ledger.
pub trait Queue: Clone + Send + Sync + 'static {
    fn claim(
        &self,
        issue: u32,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<Vec<Claimed>, QueueError>> + Send;
    fn renew(
        &self,
        owner: &str,
        ids: &[i64],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    /// Records a batch of outcomes; `relays[i]` is the relay (`host:port`) `outcomes[i]` came
    /// from, none for the outbox or a message no relay answered.
    fn record(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        relays: &[Option<String>],
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), QueueError>> + Send;
    fn next_due(&self, issue: u32) -> impl Future<Output = Result<Option<DateTime<Utc>>, QueueError>> + Send;
    /// Takes up to `want` sends from the rate of `per_second` (which may be below one) that
    /// every process on this queue shares; answers how many were granted, or how long until one
    /// will be.
    fn take_sends(
        &self,
        per_second: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<pace::Grant, QueueError>> + Send;
    /// Takes up to `want` sends from the `rate` a second of the `[[shaping]]` group `group`,
    /// which every process on this queue shares, as [`Queue::take_sends`] does. Without a shared
    /// bucket, each process's own pacing of the group is all there is.
    fn take_group_sends(
        &self,
        group: &str,
        per_second: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<pace::Grant, QueueError>> + Send {
        let _ = (group, per_second, now);
        async move { Ok((want, Duration::ZERO)) }
    }
    /// Takes up to `want` sends from the `rate` a second of the `[[relay]]` `relay` (its
    /// `host:port`), which every process on this queue shares, as [`Queue::take_sends`] does.
    /// Without a shared bucket, each process's own spacing of the relay's messages is all there is.
    fn take_relay_sends(
        &self,
        relay: &str,
        per_second: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<pace::Grant, QueueError>> + Send {
        let _ = (relay, per_second, now);
        async move { Ok((want, Duration::ZERO)) }
    }
    /// Is the issue still to be sent, judged against `limits`? `Some(why)` when it is not (it was
    /// paused, here or by another process); the engine then stops claiming.
    fn halted_because(
        &self,
        issue: u32,
        limits: RateLimits,
    ) -> impl Future<Output = Result<Option<String>, QueueError>> + Send;
    /// Queues the next chunk of the issue's readers, when some are still to be queued (a long
    /// list is queued while its first messages go out): how many were queued, and whether more
    /// may be left (false once none is, or when the issue is no longer sending). Several engines
    /// may fill one issue at once; the queue queues each reader once.
    fn fill(&self, issue: u32) -> impl Future<Output = Result<(u64, bool), QueueError>> + Send {
        let _ = issue;
        async { Ok((0, false)) }
    }
}

/// What the engine needs of composition: each claimed delivery's message and Message-ID. An
/// error is the reason the delivery failed, as the ledger records it.
pub trait Letters: Send + Sync + 'static {
    fn letter(&self, claimed: &Claimed) -> Result<(Message, MessageId), String>;
}

/// Told of every outcome as it is recorded, and of waits for deferred messages.
pub trait Progress: Send + Sync + 'static {
    fn recorded(&self, outcome: &Outcome);
    fn waiting(&self, _until: DateTime<Utc>) {}
    /// `more` readers were queued while the issue went out: the work to do grew.
    fn queued(&self, _more: u64) {}
}

impl Progress for () {
    fn recorded(&self, _: &Outcome) {}
}

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub concurrency: usize,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub lease: Duration,
    /// Messages at most, over every process on the queue; `None` = no limit.
    pub rate: Option<Rate>,
    /// This engine's name in the ledger's leases: unique per process.
    pub owner: String,
    /// Go on waiting for deferred deliveries until they are due (a `send` finishing its issue);
    /// without it the run ends when nothing is due now.
    pub wait_for_deferred: bool,
    /// The shares of hard bounces and complaints that pause the issue.
    pub limits: RateLimits,
    /// `[[shaping]]`: caps per group of recipient domains.
    pub shaping: Vec<Shaping>,
    /// The run stops, as when the server is gone, once every message it tried has been
    /// throttled for this long with none accepted.
    pub throttle_timeout: Duration,
}

/// A way to ask a running engine to stop: it stops claiming, lets in-flight sends finish and
/// hands back what it had claimed.
#[derive(Debug, Clone)]
pub struct Stop(watch::Receiver<bool>);

impl Stop {
    pub fn new() -> (watch::Sender<bool>, Self) {
        let (tx, rx) = watch::channel(false);
        (tx, Self(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Returns once a stop is asked for.
    pub async fn wait(&mut self) {
        while !*self.0.borrow() {
            if self.0.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// What one run did, counted in deliveries: a delivery deferred twice and then sent is one sent,
/// so these agree with the ledger's counts of the issue.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunSummary {
    pub sent: u64,
    /// Deliveries this run deferred and left waiting for a later attempt.
    pub deferred: u64,
    pub failed: u64,
    pub released: u64,
    /// Temporary failures met on the way, each of which deferred a delivery once.
    pub retries: u64,
    /// True when a stop request ended the run before the issue was done.
    pub stopped: bool,
    /// Why the issue was paused, when that ended the run.
    pub paused: Option<String>,
    pub elapsed: Duration,
    /// When the server accepted this run's first message, if it accepted any.
    pub first_sent: Option<Instant>,
}

pub struct Engine<Q: Queue> {
    queue: Q,
    transport: Transport,
    settings: EngineSettings,
    clock: Arc<dyn Clock>,
}

struct Shared<Q: Queue> {
    queue: Q,
    transport: Transport,
    settings: EngineSettings,
    clock: Arc<dyn Clock>,
    letters: Arc<dyn Letters>,
    progress: Arc<dyn Progress>,
    pace: Pace,
    allowance: Allowance,
    /// Each `[[shaping]]` group's share of its rate, fetched in chunks as the publication's is:
    /// a store transaction per message cost a fast group seven times the time of its sends.
    group_allowances: std::sync::Mutex<std::collections::HashMap<String, Arc<Allowance>>>,
    lanes: Lanes,
    /// Claimed deliveries whose lane was busy when a sender drew them, sent when it has room.
    aside: std::sync::Mutex<std::collections::VecDeque<(Claimed, Arc<Lane>)>>,
    halted: AtomicBool,
    failure: Mutex<Option<DeliverError>>,
    last_check: Mutex<Option<(Instant, bool)>>,
    sent: AtomicU64,
    failed: AtomicU64,
    released: AtomicU64,
    retries: AtomicU64,
    /// Deliveries deferred by this run and not sent or failed since.
    waiting: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Deliveries claimed and not yet recorded: the leases to renew.
    held: std::sync::Mutex<std::collections::HashSet<i64>>,
    /// Senders whose final dot is out and whose outcome has not reached the ledger writer.
    dots_out: AtomicUsize,
    /// Why the issue was paused, when it was.
    paused: std::sync::Mutex<Option<String>>,
    /// The first throttling reply since the last message accepted.
    throttled_since: std::sync::Mutex<Option<Instant>>,
    /// Every reader of the issue is queued (this run's filler found none left): an empty
    /// queue then means the run is done, not that more is on its way.
    filled: AtomicBool,
    /// When the first message was accepted.
    first_sent: std::sync::OnceLock<Instant>,
}

impl<Q: Queue> Shared<Q> {
    async fn halt(&self, error: Option<DeliverError>) {
        self.halted.store(true, Ordering::SeqCst);
        if let Some(e) = error {
            let mut f = self.failure.lock().await;
            if f.is_none() {
                *f = Some(e);
            }
        }
    }

    fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    /// Pays for one send from the rate all processes on the queue share.
    async fn take_send(&self) -> Result<(), QueueError> {
        let rate = self.settings.rate.map_or(0.0, |r| r.as_per_second());
        // Real time, not the clock an issue is composed by: `--as-of` must not stop the bucket refilling.
        self.allowance.take(|want| self.queue.take_sends(rate, want, SystemClock.now())).await
    }

    /// Pays for one send to a `[[shaping]]` group with a `rate` from the bucket every process
    /// shares; waits for it. Each process already spaces its own sends to the group; this holds
    /// several processes together to the one rate.
    async fn take_group_send(&self, permit: &Permit) -> Result<(), QueueError> {
        let Some((group, per_second)) = permit.shared_rate() else { return Ok(()) };
        let allowance = match self.group_allowances.lock() {
            Ok(mut all) => {
                Arc::clone(all.entry(group.to_owned()).or_insert_with(|| Arc::new(Allowance::per_second(per_second))))
            }
            // A poisoned map: this message draws its own allowance.
            Err(_) => Arc::new(Allowance::per_second(per_second)),
        };
        // Real time, as for the publication's rate.
        allowance.take(|want| self.queue.take_group_sends(group, per_second, want, SystemClock.now())).await
    }

    /// A message accepted: whatever was throttled before, the sending goes on.
    fn accepted(&self) {
        let _ = self.first_sent.set(Instant::now());
        if let Ok(mut since) = self.throttled_since.lock() {
            *since = None;
        }
    }

    /// A throttling reply: true once every message tried has been throttled, none accepted,
    /// for longer than `throttle_timeout`.
    fn throttled_too_long(&self) -> bool {
        let Ok(mut since) = self.throttled_since.lock() else { return false };
        since.get_or_insert_with(Instant::now).elapsed() > self.settings.throttle_timeout
    }

    /// Is the server as a whole still there? Asked once for a burst of broken exchanges.
    async fn server_alive(&self) -> Result<(), SendError> {
        let mut last = self.last_check.lock().await;
        if let Some((at, ok)) = *last
            && at.elapsed() < Duration::from_secs(2)
        {
            return if ok { Ok(()) } else { Err(SendError::server("the server is unreachable")) };
        }
        // A pooled connection the server already closed can fail a single check; the server is
        // only declared gone when fresh attempts fail too.
        let mut result = self.transport.check().await;
        for _ in 0..2 {
            if result.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            result = self.transport.check().await;
        }
        // A server that asks to slow down is alive; its lane slows down.
        let result = result.or_else(|e| if e.kind == SendErrorKind::Throttled { Ok(()) } else { Err(e) });
        *last = Some((Instant::now(), result.is_ok()));
        result
    }
}

/// The relays' rates are drawn from the queue's buckets, which every process shares.
impl<Q: Queue> RelayRates for Shared<Q> {
    fn take(
        &self,
        relay: &str,
        per_second: f64,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<pace::Grant, SendError>> + Send + '_>> {
        let relay = relay.to_owned();
        Box::pin(async move {
            // Real time, as for the publication's rate.
            match self.queue.take_relay_sends(&relay, per_second, 1, SystemClock.now()).await {
                Ok(grant) => Ok(grant),
                Err(e) => {
                    // The queue's error is the run's; the staging stops as for a server gone.
                    let reply = format!("the shared rate of relay {relay} could not be read: {e}");
                    self.halt(Some(DeliverError::from(e))).await;
                    Err(SendError::server(reply))
                }
            }
        })
    }
}

/// An outcome, the relay it came from, and who waits for it to be written.
type Record = (Outcome, Option<String>, oneshot::Sender<bool>);

impl<Q: Queue> Engine<Q> {
    pub fn new(queue: Q, transport: Transport, settings: EngineSettings, clock: Arc<dyn Clock>) -> Self {
        Self { queue, transport, settings, clock }
    }

    /// Sends every due delivery of `issue` (and, with `wait_for_deferred`, the deferred ones as
    /// they come due) until none is left, `stop` is set, or the server as a whole fails.
    pub async fn run(
        &self,
        issue: u32,
        letters: Arc<dyn Letters>,
        progress: Arc<dyn Progress>,
        mut stop: Stop,
    ) -> Result<RunSummary, DeliverError> {
        let started = Instant::now();
        match self.transport.check().await {
            // A server that asks to slow down is there: the senders slow down.
            Err(e) if e.kind != SendErrorKind::Throttled => return Err(DeliverError::Server(e.reply)),
            _ => {}
        }
        let concurrency = self.settings.concurrency.max(1);
        let shared = Arc::new(Shared {
            queue: self.queue.clone(),
            transport: self.transport.clone(),
            settings: self.settings.clone(),
            clock: Arc::clone(&self.clock),
            letters,
            progress,
            pace: Pace::new(self.settings.rate),
            allowance: Allowance::new(self.settings.rate),
            group_allowances: std::sync::Mutex::new(std::collections::HashMap::new()),
            lanes: Lanes::new(&self.settings.shaping, concurrency),
            aside: std::sync::Mutex::new(std::collections::VecDeque::new()),
            halted: AtomicBool::new(false),
            failure: Mutex::new(None),
            last_check: Mutex::new(None),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            released: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            waiting: std::sync::Mutex::new(std::collections::HashSet::new()),
            held: std::sync::Mutex::new(std::collections::HashSet::new()),
            dots_out: AtomicUsize::new(0),
            paused: std::sync::Mutex::new(None),
            throttled_since: std::sync::Mutex::new(None),
            filled: AtomicBool::new(false),
            first_sent: std::sync::OnceLock::new(),
        });

        // Room for a whole claim: the next claim is made while a batch is still queued for the
        // senders, so they never wait on the claim's round trip.
        let (work_tx, work_rx) = mpsc::channel::<Claimed>(claim_size(concurrency));
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (record_tx, record_rx) = mpsc::channel::<Record>(concurrency * 2);

        let writer = tokio::spawn(write_outcomes(Arc::clone(&shared), record_rx));
        let renewer = tokio::spawn(renew_leases(Arc::clone(&shared)));
        let filler = tokio::spawn(fill(Arc::clone(&shared), issue));
        let mut senders = Vec::with_capacity(concurrency);
        for _ in 0..concurrency {
            senders.push(tokio::spawn(send_loop(Arc::clone(&shared), Arc::clone(&work_rx), record_tx.clone())));
        }
        drop(record_tx);

        let stopped = claim_loop(&shared, issue, concurrency, work_tx, &mut stop).await;
        for s in senders {
            let _ = s.await;
        }
        let _ = writer.await;
        // A filler stops at its next chunk once the run halts; a chunk is one transaction,
        // written whole or not at all.
        let _ = filler.await;
        renewer.abort();

        if let Some(e) = shared.failure.lock().await.take() {
            return Err(e);
        }
        let deferred = shared.waiting.lock().map(|w| w.len() as u64).unwrap_or_default();
        Ok(RunSummary {
            sent: shared.sent.load(Ordering::SeqCst),
            deferred,
            failed: shared.failed.load(Ordering::SeqCst),
            released: shared.released.load(Ordering::SeqCst),
            retries: shared.retries.load(Ordering::SeqCst),
            stopped,
            paused: shared.paused.lock().ok().and_then(|mut p| p.take()),
            elapsed: started.elapsed(),
            first_sent: shared.first_sent.get().copied(),
        })
    }
}

/// How often a running engine asks whether its issue was paused.
const GUARD_EVERY: Duration = Duration::from_secs(1);

/// Asks the queue whether the issue is still to be sent; when it is not, halts the engine (what
/// the senders hold goes back) and keeps the reason. True when halted.
async fn pause_if_halted<Q: Queue>(shared: &Arc<Shared<Q>>, issue: u32) -> bool {
    match shared.queue.halted_because(issue, shared.settings.limits).await {
        Ok(None) => false,
        Ok(Some(why)) => {
            if let Ok(mut p) = shared.paused.lock() {
                *p = Some(why);
            }
            shared.halt(None).await;
            true
        }
        Err(e) => {
            shared.halt(Some(DeliverError::from(e))).await;
            true
        }
    }
}

/// How long the claims wait for the filler when they found nothing while readers are still
/// being queued.
const FILL_WAIT: Duration = Duration::from_millis(20);

/// Queues the issue's readers still to be queued, a chunk at a time, beside the senders, until
/// none is left or the run halts; a failure halts the run.
async fn fill<Q: Queue>(shared: Arc<Shared<Q>>, issue: u32) {
    while !shared.halted() {
        match shared.queue.fill(issue).await {
            Ok((n, more)) => {
                if n > 0 {
                    shared.progress.queued(n);
                }
                if !more {
                    shared.filled.store(true, Ordering::SeqCst);
                    return;
                }
            }
            Err(e) => {
                shared.halt(Some(DeliverError::from(e))).await;
                return;
            }
        }
    }
}

/// Deliveries claimed at once: several per sender, because each claim is a write transaction.
fn claim_size(concurrency: usize) -> usize {
    concurrency * 8
}

/// Feeds the senders until nothing is left to claim. Returns true when stopped by request.
async fn claim_loop<Q: Queue>(
    shared: &Arc<Shared<Q>>,
    issue: u32,
    concurrency: usize,
    work_tx: mpsc::Sender<Claimed>,
    stop: &mut Stop,
) -> bool {
    let s = &shared.settings;
    let mut judged: Option<Instant> = None;
    loop {
        if stop.is_set() {
            shared.halt(None).await;
            return true;
        }
        if shared.halted() {
            return false;
        }
        // What came back is judged once a second, and before waiting: another process's reports
        // may pause the issue at any time.
        if judged.is_none_or(|at| at.elapsed() >= GUARD_EVERY) {
            judged = Some(Instant::now());
            if pause_if_halted(shared, issue).await {
                return false;
            }
        }
        let now = shared.clock.now();
        // Claimed-but-unsent deliveries are handed back on a stop (or at the lease's end).
        let batch = match shared.queue.claim(issue, &s.owner, claim_size(concurrency), now, s.lease).await {
            Ok(b) => b,
            Err(e) => {
                shared.halt(Some(DeliverError::from(e))).await;
                return false;
            }
        };
        if let Ok(mut held) = shared.held.lock() {
            held.extend(batch.iter().map(|c| c.delivery_id));
        }
        if batch.is_empty() {
            if !shared.filled.load(Ordering::SeqCst) {
                // More readers are on their way into the queue: the run is not done. Whether the
                // issue was paused is still judged once a second, above.
                tokio::select! {
                    () = tokio::time::sleep(FILL_WAIT) => {}
                    () = stop.wait() => {}
                }
                continue;
            }
            judged = Some(Instant::now());
            if pause_if_halted(shared, issue).await {
                return false;
            }
            let due = match shared.queue.next_due(issue).await {
                Ok(d) => d,
                Err(e) => {
                    shared.halt(Some(DeliverError::from(e))).await;
                    return false;
                }
            };
            let Some(due) = due else { return false };
            if !s.wait_for_deferred && work_tx.capacity() == work_tx.max_capacity() {
                // Nothing due now and nothing buffered: what is left waits for a later run.
                return false;
            }
            shared.progress.waiting(due);
            let wait = (due - shared.clock.now())
                .to_std()
                .unwrap_or_default()
                .clamp(Duration::from_millis(50), Duration::from_secs(1));
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stop.wait() => {}
            }
            continue;
        }
        let mut batch = batch.into_iter();
        while let Some(c) = batch.next() {
            let id = c.delivery_id;
            let stopped = tokio::select! {
                sent = work_tx.send(c) => if sent.is_err() { return false } else { false },
                () = stop.wait() => true,
            };
            if stopped {
                // What was claimed but never handed to a sender goes back to the queue now,
                // not when its lease runs out.
                shared.halt(None).await;
                let rest: Vec<Outcome> = std::iter::once(id)
                    .chain(batch.map(|c| c.delivery_id))
                    .map(|delivery_id| Outcome::Released { delivery_id })
                    .collect();
                if let Err(e) = shared.queue.record(&s.owner, &rest, &[], shared.clock.now()).await {
                    tracing::warn!("claimed deliveries not released ({e}); they return when their lease expires");
                }
                shared.released.fetch_add(rest.len() as u64, Ordering::SeqCst);
                return true;
            }
        }
    }
}

/// The record of a sender's last message, which must be in the ledger before the sender hands
/// the server another one: that is what bounds duplicates after a crash to one per sender. The
/// next message is composed, and its envelope and content sent, while the record is written;
/// only its final dot waits.
#[derive(Default)]
struct Fence(Option<oneshot::Receiver<bool>>);

impl Fence {
    /// Waits for the record; false when it could not be written (the engine is halting).
    async fn pass(&mut self) -> bool {
        match self.0.take() {
            Some(ack) => ack.await.unwrap_or(false),
            None => true,
        }
    }
}

async fn send_loop<Q: Queue>(
    shared: Arc<Shared<Q>>,
    work: Arc<Mutex<mpsc::Receiver<Claimed>>>,
    records: mpsc::Sender<Record>,
) {
    let mut fence = Fence::default();
    let mut closed = false;
    loop {
        let Some((claimed, permit)) = next_delivery(&shared, &work, &mut closed).await else { break };
        let mut via = None;
        let outcome = match permit {
            None => Outcome::Released { delivery_id: claimed.delivery_id },
            Some(_) if shared.halted() => Outcome::Released { delivery_id: claimed.delivery_id },
            Some(mut permit) => {
                shared.pace.wait().await;
                let paid = match shared.take_send().await {
                    Ok(()) => shared.take_group_send(&permit).await,
                    Err(e) => Err(e),
                };
                match paid {
                    Ok(()) if shared.halted() => Outcome::Released { delivery_id: claimed.delivery_id },
                    Ok(()) => deliver_one(&shared, &claimed, &mut fence, &mut permit, &mut via).await,
                    Err(e) => {
                        shared.halt(Some(DeliverError::from(e))).await;
                        Outcome::Released { delivery_id: claimed.delivery_id }
                    }
                }
            }
        };
        // An outcome that handed nothing over leaves the fence up; it comes down before the next.
        if !fence.pass().await {
            return;
        }
        let (ack_tx, ack_rx) = oneshot::channel();
        if records.send((outcome, via, ack_tx)).await.is_err() {
            return;
        }
        fence.0 = Some(ack_rx);
    }
    fence.pass().await;
}

/// Deliveries set aside for busy lanes at most, over all senders; beyond them a sender waits for
/// its delivery's lane, which bounds what is claimed and not yet sent. Each is a few hundred bytes
/// and a lease renewed; a thousand lets the other domains of a large list get well ahead.
fn aside_limit(concurrency: usize) -> usize {
    (claim_size(concurrency) * 2).max(1024)
}

/// How often a sender looks again at the deliveries set aside when no permit came back sooner:
/// a lane held back by its rate frees no permit, it only comes due.
const LOOK_AGAIN: Duration = Duration::from_millis(10);

/// A delivery a sender drew, with its lane's permit; none after a halt.
type Drawn = (Claimed, Option<Permit>);

/// The next delivery this sender takes, with a permit of its lane: first one set aside whose
/// lane has room now, else a new one from the claimer. A new one whose lane is busy is set aside
/// and the sender draws again, so a busy group holds up no other domain's messages. After a halt
/// every delivery comes without a permit, to be handed back. `None` when nothing is left.
async fn next_delivery<Q: Queue>(
    shared: &Shared<Q>,
    work: &Mutex<mpsc::Receiver<Claimed>>,
    closed: &mut bool,
) -> Option<Drawn> {
    let limit = aside_limit(shared.settings.concurrency.max(1));
    loop {
        let (ready, soonest, aside) = take_ready(shared);
        if let Some(ready) = ready {
            return Some(ready);
        }
        let until = soonest.unwrap_or_else(|| tokio::time::Instant::now() + LOOK_AGAIN);
        if *closed {
            if aside == 0 {
                return None;
            }
            shared.lanes.changed(until).await;
            continue;
        }
        let next = if aside == 0 {
            work.lock().await.recv().await
        } else {
            tokio::select! {
                next = async { work.lock().await.recv().await } => next,
                () = shared.lanes.changed(until) => continue,
            }
        };
        let Some(claimed) = next else {
            *closed = true;
            continue;
        };
        if shared.halted() {
            return Some((claimed, None));
        }
        let lane = shared.lanes.lane(claimed.email.domain());
        match shared.lanes.enter(&lane) {
            Ok(permit) => return Some((claimed, Some(permit))),
            Err(_) if aside < limit => {
                if let Ok(mut a) = shared.aside.lock() {
                    a.push_back((claimed, lane));
                }
            }
            // Enough set aside: this sender waits for its delivery's lane, the others go on.
            Err(busy) => return Some((claimed, wait_for_lane(shared, &lane, busy).await)),
        }
    }
}

/// A permit of `lane`, once it has room; none if the engine halts meanwhile.
async fn wait_for_lane<Q: Queue>(shared: &Shared<Q>, lane: &Arc<Lane>, mut busy: Busy) -> Option<Permit> {
    loop {
        if shared.halted() {
            return None;
        }
        let until = match busy {
            Busy::Until(at) => at,
            Busy::Full => tokio::time::Instant::now() + LOOK_AGAIN,
        };
        shared.lanes.changed(until).await;
        match shared.lanes.enter(lane) {
            Ok(permit) => return Some(permit),
            Err(b) => busy = b,
        }
    }
}

/// A set-aside delivery whose lane has room now (any one, without a permit, after a halt); the
/// soonest moment a rate-held lane comes due; and how many are set aside.
fn take_ready<Q: Queue>(shared: &Shared<Q>) -> (Option<Drawn>, Option<tokio::time::Instant>, usize) {
    let Ok(mut aside) = shared.aside.lock() else { return (None, None, 0) };
    if shared.halted() {
        let next = aside.pop_front().map(|(c, _)| (c, None));
        return (next, None, aside.len());
    }
    let mut soonest: Option<tokio::time::Instant> = None;
    for i in 0..aside.len() {
        match shared.lanes.enter(&aside[i].1) {
            Ok(permit) => {
                let ready = aside.remove(i).map(|(claimed, _)| (claimed, Some(permit)));
                return (ready, None, aside.len());
            }
            Err(Busy::Until(at)) => soonest = Some(soonest.map_or(at, |s| s.min(at))),
            Err(Busy::Full) => {}
        }
    }
    (None, soonest, aside.len())
}

/// Counts a sender in `dots_out` while it waits for the reply to its final dot. It counts out
/// before its outcome is queued, so the writer never waits for an outcome it already has.
struct DotOut<'a>(&'a AtomicUsize);

impl<'a> DotOut<'a> {
    fn new(count: &'a AtomicUsize) -> Self {
        count.fetch_add(1, Ordering::SeqCst);
        Self(count)
    }
}

impl Drop for DotOut<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Sends one message; its outcome, and in `via` the relay that answered, if one did.
async fn deliver_one<Q: Queue>(
    shared: &Shared<Q>,
    c: &Claimed,
    fence: &mut Fence,
    permit: &mut Permit,
    via: &mut Option<String>,
) -> Outcome {
    let s = &shared.settings;
    let (message, message_id) = match shared.letters.letter(c) {
        Ok(m) => m,
        Err(reply) => return Outcome::Failed { delivery_id: c.delivery_id, reply, bounce: None },
    };
    let sent = match shared.transport.stage(message, &message_id, Some(shared)).await {
        Ok(staged) => {
            *via = staged.relay().map(str::to_owned);
            if !fence.pass().await {
                // The ledger is failing: the staged message is dropped undelivered.
                *via = None;
                return Outcome::Released { delivery_id: c.delivery_id };
            }
            let _out = DotOut::new(&shared.dots_out);
            staged.hand_over().await
        }
        Err(e) => Err(e),
    };
    let error = match sent {
        // The ledger keeps the id as text, as the header has it.
        Ok(reply) => {
            permit.succeeded();
            shared.accepted();
            return Outcome::Sent { delivery_id: c.delivery_id, message_id: message_id.to_string(), reply };
        }
        Err(e) => e,
    };
    if error.relay.is_some() {
        via.clone_from(&error.relay);
    }
    if error.kind == SendErrorKind::Throttled {
        permit.throttled();
    } else {
        permit.succeeded();
    }
    match error.kind {
        SendErrorKind::Throttled if shared.throttled_too_long() => {
            // Throttled without end, for this run: it stops as for a server that is gone, and
            // the same command resumes later. The message spends no attempt.
            let bound = humantime_secs(s.throttle_timeout);
            shared
                .halt(Some(DeliverError::Server(format!(
                    "every message was throttled for more than {bound} with none accepted ([delivery] \
                     throttle_timeout); the last reply: {}",
                    error.reply
                ))))
                .await;
            Outcome::Released { delivery_id: c.delivery_id }
        }
        SendErrorKind::Throttled => {
            // The server is busy, not the reader's address: no attempt is spent, and the message
            // comes back soon, by when its lane has slowed down.
            let wait = backoff(s.retry_backoff.min(THROTTLED_WAIT), 1);
            Outcome::Deferred {
                delivery_id: c.delivery_id,
                reply: error.reply,
                retry_at: shared.clock.now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::seconds(5)),
                spent: false,
            }
        }
        SendErrorKind::Permanent => {
            Outcome::Failed { delivery_id: c.delivery_id, reply: error.reply, bounce: Some(c.subscriber_id) }
        }
        SendErrorKind::Unsendable => Outcome::Failed { delivery_id: c.delivery_id, reply: error.reply, bounce: None },
        SendErrorKind::Server => {
            shared.halt(Some(DeliverError::Server(error.reply))).await;
            Outcome::Released { delivery_id: c.delivery_id }
        }
        SendErrorKind::Connection if shared.server_alive().await.is_err() => {
            shared.halt(Some(DeliverError::Server(error.reply))).await;
            Outcome::Released { delivery_id: c.delivery_id }
        }
        SendErrorKind::Temporary | SendErrorKind::Connection => {
            let attempt = c.attempts + 1;
            if attempt >= s.max_attempts {
                Outcome::Failed {
                    delivery_id: c.delivery_id,
                    reply: format!("gave up after {attempt} attempts: {}", error.reply),
                    bounce: None,
                }
            } else {
                let wait =
                    chrono::Duration::from_std(backoff(s.retry_backoff, attempt)).unwrap_or(chrono::Duration::hours(1));
                Outcome::Deferred {
                    delivery_id: c.delivery_id,
                    reply: error.reply,
                    retry_at: shared.clock.now() + wait,
                    spent: true,
                }
            }
        }
    }
}

/// A bound as people write it in the config: `10m`, `90s`.
fn humantime_secs(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 60 && secs.is_multiple_of(60) { format!("{}m", secs / 60) } else { format!("{secs}s") }
}

/// The wait before a throttled message is tried again, at most (`retry_backoff` when shorter).
const THROTTLED_WAIT: Duration = Duration::from_secs(5);

/// How long a batch of outcomes waits for those of messages whose final dot is out. A sender
/// whose outcome just misses a commit waits for the whole next one; waiting a little for it
/// instead makes one commit of what would be two. With PostgreSQL on a loaded machine, where a
/// commit takes about a millisecond, that halved the commits and the server's CPU.
const GATHER: Duration = Duration::from_millis(1);

/// Largest batch of outcomes written at once.
const MAX_BATCH: usize = 512;

/// Records outcomes in batches: whatever has arrived while the last batch was being written,
/// and what arrives soon after from senders whose final dot is out.
async fn write_outcomes<Q: Queue>(shared: Arc<Shared<Q>>, mut rx: mpsc::Receiver<Record>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let until = tokio::time::Instant::now() + GATHER;
        loop {
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
            if batch.len() >= MAX_BATCH || shared.dots_out.load(Ordering::SeqCst) == 0 {
                break;
            }
            match tokio::time::timeout_at(until, rx.recv()).await {
                Ok(Some(r)) => batch.push(r),
                Ok(None) | Err(_) => break,
            }
        }
        let outcomes: Vec<Outcome> = batch.iter().map(|(o, _, _)| o.clone()).collect();
        let relays: Vec<Option<String>> = batch.iter().map(|(_, r, _)| r.clone()).collect();
        let result = shared.queue.record(&shared.settings.owner, &outcomes, &relays, shared.clock.now()).await;
        let ok = result.is_ok();
        if let Ok(mut held) = shared.held.lock() {
            for o in &outcomes {
                held.remove(&o.delivery_id());
            }
        }
        if let Err(e) = result {
            shared.halt(Some(DeliverError::from(e))).await;
        }
        for (outcome, _, ack) in batch {
            if ok {
                let (counter, label) = match outcome {
                    Outcome::Sent { .. } => (&shared.sent, "sent"),
                    Outcome::Deferred { .. } => (&shared.retries, "deferred"),
                    Outcome::Failed { .. } => (&shared.failed, "failed"),
                    Outcome::Released { .. } => (&shared.released, "released"),
                };
                counter.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut waiting) = shared.waiting.lock() {
                    // A released delivery keeps the state it had: deferred stays deferred.
                    match outcome {
                        Outcome::Deferred { delivery_id, .. } => waiting.insert(delivery_id),
                        Outcome::Sent { delivery_id, .. } | Outcome::Failed { delivery_id, .. } => {
                            waiting.remove(&delivery_id)
                        }
                        Outcome::Released { .. } => false,
                    };
                }
                crate::metrics::delivery(label);
                shared.progress.recorded(&outcome);
            }
            let _ = ack.send(ok);
        }
    }
}

async fn renew_leases<Q: Queue>(shared: Arc<Shared<Q>>) {
    let every = (shared.settings.lease / 3).max(Duration::from_millis(200));
    loop {
        tokio::time::sleep(every).await;
        let ids: Vec<i64> = shared.held.lock().map(|h| h.iter().copied().collect()).unwrap_or_default();
        if let Err(e) =
            shared.queue.renew(&shared.settings.owner, &ids, shared.clock.now(), shared.settings.lease).await
        {
            tracing::warn!("cannot renew delivery leases: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, sync::atomic::AtomicUsize};

    use super::*;
    use crate::{clock::SystemClock, deliver::Outbox, domain::Rate};

    /// A ledger of `n` deliveries whose writes take `record_delay`, watching how far the
    /// messages handed to the transport run ahead of the outcomes recorded.
    #[derive(Clone)]
    struct SlowLedger {
        left: Arc<std::sync::Mutex<Vec<i64>>>,
        recorded_sent: Arc<AtomicUsize>,
        record_delay: Duration,
        /// The issue is paused once this many sends are recorded.
        pause_after: Option<usize>,
    }

    /// Even deliveries go to slow.example, odd ones to example.org.
    fn reader(id: i64) -> String {
        if id % 2 == 0 { format!("reader{id}@slow.example") } else { format!("reader{id}@example.org") }
    }

    impl Queue for SlowLedger {
        async fn claim(
            &self,
            _: u32,
            _: &str,
            limit: usize,
            _: DateTime<Utc>,
            _: Duration,
        ) -> Result<Vec<Claimed>, QueueError> {
            let mut left = self.left.lock().map_err(|e| QueueError::new(e.to_string()))?;
            let take = left.len().min(limit);
            Ok(left
                .drain(..take)
                .map(|id| Claimed {
                    delivery_id: id,
                    subscriber_id: id,
                    email: reader(id).parse().expect("address"),
                    name: String::new(),
                    attributes: BTreeMap::new(),
                    attempts: 0,
                    variant: None,
                    topics: Vec::new(),
                })
                .collect())
        }
        async fn renew(&self, _: &str, _: &[i64], _: DateTime<Utc>, _: Duration) -> Result<(), QueueError> {
            Ok(())
        }
        async fn record(
            &self,
            _: &str,
            outcomes: &[Outcome],
            _: &[Option<String>],
            _: DateTime<Utc>,
        ) -> Result<(), QueueError> {
            tokio::time::sleep(self.record_delay).await;
            let sent = outcomes.iter().filter(|o| matches!(o, Outcome::Sent { .. })).count();
            self.recorded_sent.fetch_add(sent, Ordering::SeqCst);
            Ok(())
        }
        async fn next_due(&self, _: u32) -> Result<Option<DateTime<Utc>>, QueueError> {
            Ok(None)
        }
        async fn take_sends(&self, _: f64, want: u32, _: DateTime<Utc>) -> Result<pace::Grant, QueueError> {
            Ok((want, Duration::ZERO))
        }
        async fn halted_because(&self, _: u32, _: RateLimits) -> Result<Option<String>, QueueError> {
            let sent = self.recorded_sent.load(Ordering::SeqCst);
            Ok(self.pause_after.filter(|n| sent >= *n).map(|n| format!("paused after {n}")))
        }
    }

    fn settings(concurrency: usize) -> EngineSettings {
        EngineSettings {
            concurrency,
            max_attempts: 3,
            retry_backoff: Duration::from_secs(1),
            lease: Duration::from_secs(60),
            rate: None,
            owner: "test".into(),
            wait_for_deferred: false,
            limits: RateLimits::default(),
            shaping: Vec::new(),
            throttle_timeout: Duration::from_secs(600),
        }
    }

    struct Plain;

    impl Letters for Plain {
        fn letter(&self, c: &Claimed) -> Result<(Message, MessageId), String> {
            let id = MessageId::new(&format!("issue1.{}", c.delivery_id), "example.org").map_err(|e| e.to_string())?;
            let message = Message::builder()
                .from("Weekly <weekly@example.org>".parse().map_err(|e| format!("{e}"))?)
                .to(c.email.as_str().parse().map_err(|e| format!("{e}"))?)
                .message_id(Some(id.to_string()))
                .subject("Issue 1")
                .body("Hello".to_owned())
                .map_err(|e| e.to_string())?;
            Ok((message, id))
        }
    }

    /// However slow the ledger, a sender hands over no message before its last one is
    /// recorded: delivered-but-unrecorded messages never outnumber the senders, which is what
    /// bounds the duplicates after a crash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivered_messages_never_run_ahead_of_the_ledger_by_more_than_the_senders() {
        let dir = tempfile::tempdir().expect("tmp");
        let outbox = Outbox::open(dir.path()).await.expect("outbox");
        let n = 120;
        let concurrency = 4;
        let ledger = SlowLedger {
            left: Arc::new(std::sync::Mutex::new((1..=n).collect())),
            recorded_sent: Arc::new(AtomicUsize::new(0)),
            record_delay: Duration::from_millis(15),
            pause_after: None,
        };
        let engine =
            Engine::new(ledger.clone(), Transport::outbox(outbox, None), settings(concurrency), Arc::new(SystemClock));

        let delivered = || std::fs::read_dir(dir.path().join("new")).map(|d| d.count()).unwrap_or_default();
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = {
            let (watching, recorded) = (Arc::clone(&watching), Arc::clone(&ledger.recorded_sent));
            let new = dir.path().join("new");
            std::thread::spawn(move || {
                let mut worst = 0usize;
                while watching.load(Ordering::SeqCst) {
                    // Recorded first: a message recorded between the two reads only lowers the gap.
                    let recorded = recorded.load(Ordering::SeqCst);
                    let delivered = std::fs::read_dir(&new).map(|d| d.count()).unwrap_or_default();
                    worst = worst.max(delivered.saturating_sub(recorded));
                    std::thread::sleep(Duration::from_micros(200));
                }
                worst
            })
        };
        let (_tx, stop) = Stop::new();
        let summary = engine.run(1, Arc::new(Plain), Arc::new(()), stop).await.expect("run");
        watching.store(false, Ordering::SeqCst);
        let worst = watcher.join().expect("watcher");

        assert_eq!(summary.sent, n as u64);
        assert_eq!(delivered(), n as usize);
        assert_eq!(ledger.recorded_sent.load(Ordering::SeqCst), n as usize);
        assert!(worst <= concurrency, "{worst} messages delivered and not recorded, with {concurrency} senders");
        assert!(worst > 0, "the watcher never saw a message in flight, so it proved nothing");
    }

    /// A paused issue stops the run within the guard's period: the rest stays queued, and the
    /// summary says why.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_paused_issue_stops_the_run_and_says_why() {
        let dir = tempfile::tempdir().expect("tmp");
        let outbox = Outbox::open(dir.path()).await.expect("outbox");
        let n = 10_000;
        let ledger = SlowLedger {
            left: Arc::new(std::sync::Mutex::new((1..=n).collect())),
            recorded_sent: Arc::new(AtomicUsize::new(0)),
            record_delay: Duration::from_millis(2),
            pause_after: Some(5),
        };
        let engine = Engine::new(ledger.clone(), Transport::outbox(outbox, None), settings(2), Arc::new(SystemClock));
        let (_tx, stop) = Stop::new();
        let summary = engine.run(1, Arc::new(Plain), Arc::new(()), stop).await.expect("run");
        assert_eq!(summary.paused.as_deref(), Some("paused after 5"));
        assert!(!summary.stopped);
        assert!(summary.sent >= 5 && summary.sent < n as u64 / 2, "{} sent of {n}", summary.sent);
        let left = ledger.left.lock().map(|l| l.len()).unwrap_or_default();
        assert!(left > n as usize / 2, "{left} left unclaimed");
    }

    /// When each delivery was recorded sent.
    #[derive(Default)]
    struct SentAt(std::sync::Mutex<Vec<(i64, Instant)>>);

    impl Progress for SentAt {
        fn recorded(&self, outcome: &Outcome) {
            if let (Outcome::Sent { delivery_id, .. }, Ok(mut s)) = (outcome, self.0.lock()) {
                s.push((*delivery_id, Instant::now()));
            }
        }
    }

    /// A shaped group at 100 a second, half of a list claimed far faster than that: every
    /// delivery is sent once, the group's pace holds, and the other domain's readers, whose
    /// senders never wait for the group, are all out well before it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_shaped_group_keeps_its_pace_and_the_others_go_first() {
        let dir = tempfile::tempdir().expect("tmp");
        let outbox = Outbox::open(dir.path()).await.expect("outbox");
        let n = 200;
        let ledger = SlowLedger {
            left: Arc::new(std::sync::Mutex::new((1..=n).collect())),
            recorded_sent: Arc::new(AtomicUsize::new(0)),
            record_delay: Duration::ZERO,
            pause_after: None,
        };
        let mut s = settings(2);
        s.shaping = vec![Shaping {
            domains: vec!["slow.example".into()],
            concurrency: None,
            rate: Some(Rate::per_second(100)),
        }];
        let engine = Engine::new(ledger.clone(), Transport::outbox(outbox, None), s, Arc::new(SystemClock));
        let sent = Arc::new(SentAt::default());
        let (_tx, stop) = Stop::new();
        let summary = engine.run(1, Arc::new(Plain), Arc::clone(&sent) as Arc<dyn Progress>, stop).await.expect("run");
        assert_eq!(summary.sent, n as u64);
        let sent = sent.0.lock().expect("sent").clone();
        let mut ids: Vec<i64> = sent.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "each once");
        let (slow, other): (Vec<_>, Vec<_>) = sent.iter().partition(|(id, _)| id % 2 == 0);
        let first = sent.iter().map(|(_, t)| *t).min().expect("first");
        let slow_done = slow.iter().map(|(_, t)| *t).max().expect("slow") - first;
        let other_done = other.iter().map(|(_, t)| *t).max().expect("other") - first;
        assert!(slow_done >= Duration::from_millis(950), "100 at 100 a second took {slow_done:?}");
        assert!(other_done * 2 < slow_done, "the others were done at {other_done:?}, the group at {slow_done:?}");
    }

    /// A ledger whose `[[shaping]]` groups draw from one bucket that other ledgers share, as
    /// processes on one store do.
    #[derive(Clone)]
    struct SharingGroups {
        ledger: SlowLedger,
        /// Tokens and when they were counted; at most one held.
        bucket: Arc<std::sync::Mutex<(f64, Instant)>>,
    }

    impl Queue for SharingGroups {
        async fn claim(
            &self,
            issue: u32,
            owner: &str,
            limit: usize,
            now: DateTime<Utc>,
            lease: Duration,
        ) -> Result<Vec<Claimed>, QueueError> {
            self.ledger.claim(issue, owner, limit, now, lease).await
        }
        async fn renew(&self, o: &str, ids: &[i64], now: DateTime<Utc>, lease: Duration) -> Result<(), QueueError> {
            self.ledger.renew(o, ids, now, lease).await
        }
        async fn record(
            &self,
            owner: &str,
            outcomes: &[Outcome],
            relays: &[Option<String>],
            now: DateTime<Utc>,
        ) -> Result<(), QueueError> {
            self.ledger.record(owner, outcomes, relays, now).await
        }
        async fn next_due(&self, issue: u32) -> Result<Option<DateTime<Utc>>, QueueError> {
            self.ledger.next_due(issue).await
        }
        async fn take_sends(&self, r: f64, want: u32, now: DateTime<Utc>) -> Result<pace::Grant, QueueError> {
            self.ledger.take_sends(r, want, now).await
        }
        async fn take_group_sends(
            &self,
            _: &str,
            per_second: f64,
            want: u32,
            _: DateTime<Utc>,
        ) -> Result<pace::Grant, QueueError> {
            let mut b = self.bucket.lock().map_err(|e| QueueError::new(e.to_string()))?;
            let now = Instant::now();
            let tokens = (b.0 + (now - b.1).as_secs_f64() * per_second).min(1.0);
            *b = (tokens, now);
            if tokens >= 1.0 && want >= 1 {
                b.0 -= 1.0;
                return Ok((1, Duration::ZERO));
            }
            Ok((0, Duration::from_secs_f64((1.0 - tokens) / per_second)))
        }
        async fn halted_because(&self, issue: u32, limits: RateLimits) -> Result<Option<String>, QueueError> {
            self.ledger.halted_because(issue, limits).await
        }
    }

    /// Two engines, as two processes, each with 40 readers of a group at `rate = 40`: alone each
    /// would take about 1 s, but they draw from the group's one shared bucket, so together they
    /// take about 2 s, and every reader is sent once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_engines_sharing_a_groups_bucket_keep_its_rate_together() {
        let bucket = Arc::new(std::sync::Mutex::new((1.0, Instant::now())));
        let mut s = settings(2);
        s.shaping =
            vec![Shaping { domains: vec!["slow.example".into()], concurrency: None, rate: Some(Rate::per_second(40)) }];
        let mut runs = Vec::new();
        let mut dirs = Vec::new();
        let started = Instant::now();
        for first in [0i64, 1000] {
            let dir = tempfile::tempdir().expect("tmp");
            let outbox = Outbox::open(dir.path()).await.expect("outbox");
            dirs.push(dir);
            // Even ids: every reader at slow.example.
            let ledger = SlowLedger {
                left: Arc::new(std::sync::Mutex::new((0..40).map(|i| first + 2 * i).collect())),
                recorded_sent: Arc::new(AtomicUsize::new(0)),
                record_delay: Duration::ZERO,
                pause_after: None,
            };
            let queue = SharingGroups { ledger, bucket: Arc::clone(&bucket) };
            let engine = Engine::new(queue, Transport::outbox(outbox, None), s.clone(), Arc::new(SystemClock));
            runs.push(tokio::spawn(async move {
                let (_tx, stop) = Stop::new();
                engine.run(1, Arc::new(Plain), Arc::new(()), stop).await.expect("run")
            }));
        }
        for run in runs {
            assert_eq!(run.await.expect("joined").sent, 40);
        }
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(1800), "80 at 40 a second, shared, took {took:?}");
    }
}
