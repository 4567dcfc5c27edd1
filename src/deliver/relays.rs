//! Several SMTP relays behind one transport. Each message is staged on one relay, chosen by
//! weight (smooth weighted round robin) among those that are up, below their connection cap and
//! not held back by their own `rate`. A relay that fails as a whole (unreachable, login or TLS
//! refused) is set aside, 2 s at first and twice as long at each failure after (at most 60 s),
//! and the message is staged on another in the same call: nothing has been delivered before
//! the final dot, so moving a message costs no reader anything. A set-aside relay is tried again
//! when its time is up and taken back at its first success. Only when every relay is set aside
//! does staging fail as the server's failure, which stops the run.
//!
//!
//! A throttling reply (421, 454, `4.7.x`) from a relay slows that relay alone: its limit of
//! messages in flight is halved (the lanes' [`Aimd`], climbing back with its successes) and it
//! rests, taking no new message, for a second at first and twice as long at each throttling
//! reply after (at most 16 s), so that its traffic goes to the others while it recovers. Its
//! first success ends the doubling.
//!
//! A relay's `rate` spaces the messages this process stages on it, and, when the engine shares
//! its queue's buckets ([`RelayRates`]), each message is also drawn from the relay's bucket that
//! every process shares. A relay whose turn has not come, or whose shared bucket is empty, is
//! passed over for the next by weight rather than waited for: a rate-capped relay sends its
//! traffic to the others, and only when every relay is held back does staging wait.
//!
//! Relays are named by `host:port` alone, in errors, logs and metrics.

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use lettre::address::Envelope;
use tokio::{sync::Notify, time::Instant};

use super::{SendError, SendErrorKind, Smtp, lanes::Aimd, pace::Grant, smtp::OpenMail};
use crate::domain::Rate;

/// The first time a failed relay is set aside for; it doubles with each failure after.
const FIRST_ASIDE: Duration = Duration::from_secs(2);
/// The longest a relay is set aside at once.
const LONGEST_ASIDE: Duration = Duration::from_secs(60);
/// The first rest of a relay that asked to slow down; it doubles with each throttling reply.
const FIRST_REST: Duration = Duration::from_secs(1);
/// The longest a throttling relay rests at once.
const LONGEST_REST: Duration = Duration::from_secs(16);
/// The limit in flight of a relay without a `concurrency` of its own: in practice the engine's
/// senders bound it, and a throttling reply first brings it down to what was in flight.
const UNCAPPED: usize = 1024;

/// One relay as the transport is given it.
#[derive(Debug)]
pub struct RelaySettings {
    pub smtp: Smtp,
    pub weight: u32,
    /// Connections to it at most; `None`: only the engine's concurrency bounds them.
    pub concurrency: Option<usize>,
    /// Messages to it at most; over every process when staging is given [`RelayRates`], else
    /// from this process. `None` = no limit.
    pub rate: Option<Rate>,
}

/// The buckets every process shares, from which each relay's `rate` is drawn.
pub trait RelayRates: Send + Sync {
    /// Takes one send to `relay` (`host:port`) from its `rate` of `per_second`, shared by every
    /// process: granted, or how long until one will be. An error stops the staging, as a server
    /// that is gone does.
    fn take(&self, relay: &str, per_second: f64)
    -> Pin<Box<dyn Future<Output = Result<Grant, SendError>> + Send + '_>>;
}

/// The relays and which of them are set aside.
#[derive(Clone)]
pub struct Relays {
    inner: Arc<Inner>,
}

struct Inner {
    relays: Vec<Relay>,
    state: Mutex<State>,
    /// Woken when a capped relay's connection is given back.
    freed: Notify,
}

struct Relay {
    smtp: Smtp,
    /// Its `rate` in messages a second, for the shared bucket.
    per_second: Option<f64>,
}

struct State {
    rotation: Rotation,
    aside: Vec<Aside>,
    flow: Vec<Flow>,
}

impl std::fmt::Debug for Relays {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Relays({})", self.describe())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no relay is configured")]
pub struct NoRelays;

impl Relays {
    pub fn new(settings: Vec<RelaySettings>) -> Result<Self, NoRelays> {
        if settings.is_empty() {
            return Err(NoRelays);
        }
        let weights = settings.iter().map(|r| r.weight).collect();
        let aside = settings.iter().map(|_| Aside::default()).collect();
        let flow: Vec<Flow> = settings
            .iter()
            .map(|r| Flow::new(r.concurrency.unwrap_or(UNCAPPED)).paced(r.rate.filter(|r| r.count > 0)))
            .collect();
        let relays = settings
            .into_iter()
            .map(|r| Relay { smtp: r.smtp, per_second: r.rate.filter(|r| r.count > 0).map(|r| r.as_per_second()) })
            .collect::<Vec<_>>();
        for (r, f) in relays.iter().zip(&flow) {
            let server = r.smtp.server();
            crate::metrics::relay_up(&server, true);
            crate::metrics::relay_limit(&server, f.aimd.allowed());
            crate::metrics::relay_resting(&server, false);
        }
        Ok(Self {
            inner: Arc::new(Inner {
                relays,
                state: Mutex::new(State { rotation: Rotation::new(weights), aside, flow }),
                freed: Notify::new(),
            }),
        })
    }

    /// `host:port` of each relay.
    pub fn describe(&self) -> String {
        self.inner.relays.iter().map(|r| r.smtp.server()).collect::<Vec<_>>().join(", ")
    }

    /// Checks every relay at once, setting aside those that fail; passes when any works.
    pub async fn check(&self) -> Result<(), SendError> {
        let checks = self.inner.relays.iter().map(|r| r.smtp.check());
        let results = futures_util::future::join_all(checks).await;
        let mut any = false;
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(()) => {
                    self.worked(index);
                    any = true;
                }
                Err(e) => self.failed(index, &e),
            }
        }
        if any { Ok(()) } else { Err(self.all_aside()) }
    }

    /// Stages a message on a relay chosen by weight; see [`Smtp::open`]. With `rates`, a relay's
    /// `rate` is drawn from the bucket every process shares; a relay whose bucket is empty is
    /// passed over until it refills.
    pub async fn open(
        &self,
        envelope: &Envelope,
        bytes: &[u8],
        rates: Option<&dyn RelayRates>,
    ) -> Result<RelayMail, SendError> {
        loop {
            let (index, slot) = self.choose().await?;
            let relay = &self.inner.relays[index];
            if let (Some(rates), Some(per_second)) = (rates, relay.per_second) {
                let (granted, retry_in) = rates.take(&relay.smtp.server(), per_second).await?;
                if granted == 0 {
                    self.drawn_dry(index, retry_in);
                    drop(slot);
                    continue;
                }
            }
            let error = match relay.smtp.open(envelope, bytes).await {
                Ok(open) => {
                    self.worked(index);
                    return Ok(RelayMail { open, relays: self.clone(), index, _slot: slot });
                }
                Err(e) => e,
            };
            match error.kind {
                SendErrorKind::Server => self.failed(index, &error),
                // A pooled connection the relay dropped, or the relay gone: a fresh connection
                // tells them apart, and a relay that is gone is set aside like any other.
                SendErrorKind::Connection => match relay.smtp.check().await {
                    Err(gone) if gone.kind == SendErrorKind::Server => self.failed(index, &gone),
                    _ => {
                        self.handed(index, Err(&error));
                        return Err(error.via(relay.smtp.server()));
                    }
                },
                _ => {
                    self.handed(index, Err(&error));
                    return Err(error.via(relay.smtp.server()));
                }
            }
        }
    }

    /// A relay that is not set aside (or whose time is up), not resting, whose turn under its rate
    /// has come, and below its limit in flight, by weight; waits while every such relay is at its
    /// limit or held back.
    async fn choose(&self) -> Result<(usize, Slot), SendError> {
        loop {
            let freed = self.inner.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            let rested = {
                let Ok(mut state) = self.inner.state.lock() else {
                    return Err(SendError::server("the relays' state was lost to a panic"));
                };
                let now = Instant::now();
                let usable: Vec<bool> = state.aside.iter().map(|a| a.usable(now)).collect();
                if !usable.contains(&true) {
                    drop(state);
                    return Err(self.all_aside());
                }
                let free: Vec<bool> =
                    state.flow.iter().zip(&usable).map(|(f, usable)| *usable && f.free(now)).collect();
                if let Some(index) = state.rotation.pick(&free) {
                    if state.flow[index].picked(now) {
                        crate::metrics::relay_resting(&self.inner.relays[index].smtp.server(), false);
                    }
                    return Ok((index, Slot { index, relays: Arc::clone(&self.inner) }));
                }
                state.flow.iter().zip(&usable).filter(|(_, u)| **u).filter_map(|(f, _)| f.held_until(now)).min()
            };
            match rested {
                Some(until) => {
                    tokio::select! {
                        () = freed => {}
                        () = tokio::time::sleep_until(until) => {}
                    }
                }
                None => freed.await,
            }
        }
    }

    /// The relay's shared bucket had nothing for it: it is passed over until it refills.
    fn drawn_dry(&self, index: usize, retry_in: Duration) {
        let until = Instant::now() + retry_in.max(Duration::from_millis(1));
        if let Ok(mut state) = self.inner.state.lock() {
            let dry = &mut state.flow[index].dry_until;
            *dry = Some(dry.map_or(until, |d| d.max(until)));
        }
    }

    fn worked(&self, index: usize) {
        let back = self.inner.state.lock().is_ok_and(|mut s| s.aside[index].worked());
        if back {
            let server = self.inner.relays[index].smtp.server();
            tracing::warn!(relay = %server, "relay {server} works again and is taken back");
            crate::metrics::relay_up(&server, true);
        }
    }

    fn failed(&self, index: usize, error: &SendError) {
        let now = Instant::now();
        let newly = self.inner.state.lock().ok().and_then(|mut s| s.aside[index].failed(now, &error.reply));
        let server = self.inner.relays[index].smtp.server();
        match newly {
            Some(wait) => {
                tracing::warn!(relay = %server, "relay {server} set aside for {wait:?}: {}", error.reply);
                crate::metrics::relay_up(&server, false);
            }
            None => tracing::debug!(relay = %server, "relay {server} still fails: {}", error.reply),
        }
    }

    fn handed(&self, index: usize, result: Result<(), &SendError>) {
        let server = self.inner.relays[index].smtp.server();
        crate::metrics::relay_message(&server, result_word(result));
        let throttled = matches!(result, Err(e) if e.kind == SendErrorKind::Throttled);
        let Ok(mut state) = self.inner.state.lock() else { return };
        let flow = &mut state.flow[index];
        if throttled {
            if let Some(rest) = flow.throttled(Instant::now()) {
                let allowed = flow.aimd.allowed();
                drop(state);
                crate::metrics::relay_limit(&server, allowed);
                crate::metrics::relay_resting(&server, true);
                tracing::warn!(
                    relay = %server,
                    "relay {server} asked to slow down: it rests {rest:?}, then takes {allowed} at a time"
                );
            }
        } else if result.is_ok() {
            let before = flow.aimd.allowed();
            flow.succeeded();
            let allowed = flow.aimd.allowed();
            drop(state);
            if allowed != before {
                crate::metrics::relay_limit(&server, allowed);
            }
        }
    }

    /// Every relay is set aside: the run's error, naming each relay and why it failed.
    fn all_aside(&self) -> SendError {
        let why: Vec<Option<String>> =
            self.inner.state.lock().map(|s| s.aside.iter().map(|a| a.why.clone()).collect()).unwrap_or_default();
        let parts: Vec<String> = self
            .inner
            .relays
            .iter()
            .enumerate()
            .map(|(i, r)| why.get(i).cloned().flatten().unwrap_or_else(|| format!("{}: failed", r.smtp.server())))
            .collect();
        SendError::server(format!("every relay failed: {}", parts.join("; ")))
    }
}

/// The word a relay's message counts under in the metrics.
fn result_word(result: Result<(), &SendError>) -> &'static str {
    match result {
        Ok(()) => "accepted",
        Err(e) => match e.kind {
            SendErrorKind::Temporary => "deferred",
            SendErrorKind::Throttled => "throttled",
            SendErrorKind::Permanent | SendErrorKind::Unsendable => "refused",
            SendErrorKind::Connection | SendErrorKind::Server => "broken",
        },
    }
}

/// A message in flight on one relay, counted until dropped (and waiters woken then).
struct Slot {
    index: usize,
    relays: Arc<Inner>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        // The count goes down first, so that a waiter woken here finds the room.
        if let Ok(mut state) = self.relays.state.lock() {
            let flow = &mut state.flow[self.index];
            flow.in_flight = flow.in_flight.saturating_sub(1);
        }
        self.relays.freed.notify_waiters();
    }
}

/// How much one relay may be sent now: its messages in flight against its adaptive limit, the
/// rest it takes after asking to slow down, and its rate.
#[derive(Debug)]
struct Flow {
    in_flight: usize,
    aimd: Aimd,
    /// Takes no new message until then.
    rest_until: Option<Instant>,
    /// How long the last rest lasted, doubled at the next throttling reply.
    last_rest: Option<Duration>,
    /// The time between two messages under its `rate`; `None`: no rate.
    interval: Option<Duration>,
    /// Its next turn under its rate, in this process.
    next_turn: Instant,
    /// Its shared bucket was empty: passed over until then.
    dry_until: Option<Instant>,
}

impl Flow {
    fn new(cap: usize) -> Self {
        Self {
            in_flight: 0,
            aimd: Aimd::new(cap),
            rest_until: None,
            last_rest: None,
            interval: None,
            next_turn: Instant::now(),
            dry_until: None,
        }
    }

    /// Spaced by `rate`, when it has one.
    fn paced(mut self, rate: Option<Rate>) -> Self {
        self.interval = rate.map(|r| r.per / r.count);
        self
    }

    /// The end of its rest, while it rests.
    fn resting(&self, now: Instant) -> Option<Instant> {
        self.rest_until.filter(|until| *until > now)
    }

    /// Until when it takes nothing, whatever is in flight: its rest, its turn under its rate, or
    /// its shared bucket refilling; `None` when none of them holds it back now.
    fn held_until(&self, now: Instant) -> Option<Instant> {
        let turn = self.interval.map(|_| self.next_turn);
        [self.rest_until, turn, self.dry_until].into_iter().flatten().filter(|at| *at > now).max()
    }

    fn free(&self, now: Instant) -> bool {
        self.held_until(now).is_none() && self.in_flight < self.aimd.allowed()
    }

    /// Chosen for a message at `now`: one more in flight and its next turn later by its rate.
    /// True when this ends a rest.
    fn picked(&mut self, now: Instant) -> bool {
        self.in_flight += 1;
        if let Some(interval) = self.interval {
            self.next_turn = self.next_turn.max(now) + interval;
        }
        self.rest_until.take_if(|until| *until <= now).is_some()
    }

    /// A throttling reply: fewer in flight (never more than were when it came) and a rest, said
    /// when this reply started it; `None` when another message's reply already had.
    fn throttled(&mut self, now: Instant) -> Option<Duration> {
        if self.resting(now).is_some() {
            return None;
        }
        self.aimd.throttled_at(self.in_flight);
        let rest = self.last_rest.map_or(FIRST_REST, |l| (l * 2).min(LONGEST_REST));
        self.last_rest = Some(rest);
        self.rest_until = Some(now + rest);
        Some(rest)
    }

    fn succeeded(&mut self) {
        self.aimd.succeeded();
        self.last_rest = None;
    }
}

/// A message staged on one relay, waiting for its final dot.
pub struct RelayMail {
    open: OpenMail,
    relays: Relays,
    index: usize,
    _slot: Slot,
}

impl std::fmt::Debug for RelayMail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RelayMail({:?})", self.open)
    }
}

impl RelayMail {
    /// The relay's `host:port`.
    pub fn server(&self) -> String {
        self.relays.inner.relays[self.index].smtp.server()
    }

    /// Sends the final dot; see [`OpenMail::finish`].
    pub async fn finish(self) -> Result<String, SendError> {
        let Self { open, relays, index, _slot } = self;
        // The slot is still held: a throttling reply sees this message among those in flight.
        let result = open.finish().await;
        relays.handed(index, result.as_ref().map(|_| ()));
        result
    }
}

/// Smooth weighted round robin: each pick adds every candidate's weight to its credit and takes
/// the one with the most, which then pays the candidates' total. Over any run of picks each
/// relay's share follows its weight, and picks of one relay are spread out rather than bunched.
#[derive(Debug)]
struct Rotation {
    weights: Vec<i64>,
    credit: Vec<i64>,
}

impl Rotation {
    fn new(weights: Vec<u32>) -> Self {
        let weights: Vec<i64> = weights.into_iter().map(|w| i64::from(w.max(1))).collect();
        Self { credit: vec![0; weights.len()], weights }
    }

    /// The next of the relays marked in `candidates`, or `None` when none is.
    fn pick(&mut self, candidates: &[bool]) -> Option<usize> {
        let mut total = 0;
        let mut best: Option<usize> = None;
        for (i, _) in candidates.iter().enumerate().filter(|(_, c)| **c) {
            self.credit[i] += self.weights[i];
            total += self.weights[i];
            if best.is_none_or(|b| self.credit[i] > self.credit[b]) {
                best = Some(i);
            }
        }
        let chosen = best?;
        self.credit[chosen] -= total;
        Some(chosen)
    }
}

/// Whether a relay is set aside, until when, and why it was.
#[derive(Debug, Default)]
struct Aside {
    /// Set aside until then; `None`: up.
    until: Option<Instant>,
    /// How long the last setting aside lasted, doubled at the next failure.
    last: Option<Duration>,
    /// Its last failure, naming it by `host:port`.
    why: Option<String>,
}

impl Aside {
    fn usable(&self, now: Instant) -> bool {
        self.until.is_none_or(|until| until <= now)
    }

    /// A success: true when it had been set aside.
    fn worked(&mut self) -> bool {
        self.why = None;
        self.last = None;
        self.until.take().is_some()
    }

    /// A failure: sets it aside and says for how long when it was up (or its time was up),
    /// `None` when another sender's failure already set it aside.
    fn failed(&mut self, now: Instant, why: &str) -> Option<Duration> {
        self.why = Some(why.to_owned());
        if !self.usable(now) {
            return None;
        }
        let wait = self.last.map_or(FIRST_ASIDE, |l| (l * 2).min(LONGEST_ASIDE));
        self.last = Some(wait);
        self.until = Some(now + wait);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_follow_the_weights_and_are_spread_out() {
        let mut r = Rotation::new(vec![3, 1]);
        let picks: Vec<usize> = (0..8).filter_map(|_| r.pick(&[true, true])).collect();
        assert_eq!(picks, [0, 0, 1, 0, 0, 0, 1, 0]);
        let mut r = Rotation::new(vec![5, 1, 2]);
        let mut counts = [0; 3];
        for _ in 0..800 {
            counts[r.pick(&[true, true, true]).expect("a pick")] += 1;
        }
        assert_eq!(counts, [500, 100, 200]);
    }

    #[test]
    fn only_candidates_are_picked() {
        let mut r = Rotation::new(vec![3, 1]);
        assert!((0..5).all(|_| r.pick(&[false, true]) == Some(1)));
        assert_eq!(r.pick(&[false, false]), None);
        let mut counts = [0; 2];
        for _ in 0..400 {
            counts[r.pick(&[true, true]).expect("a pick")] += 1;
        }
        assert!(counts[0] >= 290 && counts[0] <= 310, "{counts:?}");
    }

    #[test]
    fn a_failing_relay_is_set_aside_longer_each_time_up_to_a_minute() {
        let start = Instant::now();
        let mut a = Aside::default();
        assert!(a.usable(start));
        assert_eq!(a.failed(start, "x:25: cannot connect"), Some(Duration::from_secs(2)));
        assert_eq!(a.failed(start, "x:25: cannot connect"), None, "a second sender's failure adds nothing");
        assert!(!a.usable(start + Duration::from_secs(1)));
        let mut at = start + Duration::from_secs(2);
        assert!(a.usable(at));
        let mut waits = Vec::new();
        for _ in 0..7 {
            let wait = a.failed(at, "x:25: cannot connect").expect("set aside again");
            waits.push(wait.as_secs());
            at += wait;
        }
        assert_eq!(waits, [4, 8, 16, 32, 60, 60, 60]);
        assert!(a.worked(), "taken back");
        assert!(!a.worked(), "already up");
        assert_eq!(a.failed(at, "x:25: cannot connect"), Some(Duration::from_secs(2)), "starts over");
    }

    #[test]
    fn a_relay_with_a_rate_is_passed_over_until_its_turn_or_its_bucket_refills() {
        let mut f = Flow::new(UNCAPPED).paced(Some(Rate::per_second(10)));
        // Its first turn is when it was made.
        let start = f.next_turn;
        assert!(f.free(start));
        assert!(!f.picked(start), "no rest ended");
        f.in_flight = 0;
        assert_eq!(f.held_until(start), Some(start + Duration::from_millis(100)), "its next turn");
        assert!(!f.free(start + Duration::from_millis(99)));
        let at = start + Duration::from_millis(100);
        assert!(f.free(at));
        f.dry_until = Some(at + Duration::from_millis(30));
        assert!(!f.free(at), "its shared bucket is empty");
        assert_eq!(f.held_until(at), Some(at + Duration::from_millis(30)));
        assert!(f.free(at + Duration::from_millis(30)));
        let unpaced = Flow::new(UNCAPPED);
        assert_eq!(unpaced.held_until(start + Duration::from_secs(5)), None);
    }

    #[test]
    fn a_throttling_relay_takes_fewer_at_a_time_and_rests_longer_each_time_until_it_succeeds() {
        let start = Instant::now();
        let mut f = Flow::new(UNCAPPED);
        f.in_flight = 6;
        assert!(f.free(start));
        assert_eq!(f.throttled(start), Some(Duration::from_secs(1)));
        assert_eq!(f.throttled(start), None, "the replies of one burst rest it once");
        assert_eq!(f.aimd.allowed(), 3, "half of the six in flight, not of the cap");
        f.in_flight = 0;
        assert!(!f.free(start + Duration::from_millis(900)), "resting");
        let mut at = start + Duration::from_secs(1);
        assert!(f.free(at));
        let mut rests = Vec::new();
        for _ in 0..6 {
            f.in_flight = 1;
            let rest = f.throttled(at).expect("rests again");
            rests.push(rest.as_secs());
            at += rest;
        }
        assert_eq!(rests, [2, 4, 8, 16, 16, 16]);
        assert_eq!(f.aimd.allowed(), 1);
        f.in_flight = 0;
        assert!(f.free(at));
        f.in_flight = 1;
        assert!(!f.free(at), "one at a time");
        for _ in 0..2 {
            f.succeeded();
        }
        assert_eq!(f.aimd.allowed(), 2, "climbing back with its successes");
        f.in_flight = 1;
        assert_eq!(f.throttled(at), Some(Duration::from_secs(1)), "a success ends the doubling");
    }
}
