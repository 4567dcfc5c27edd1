//! Lanes: the sending to each group of recipient domains, held apart so that a slow group does
//! not slow the others. A `[[shaping]]` group is one lane, with its caps; any other domain is a
//! lane of its own, with no cap but the engine's. Every lane has an adaptive limit on the
//! messages in flight to it: halved by each throttling reply, raised by about one for each
//! limit's worth of messages taken since (additive increase, multiplicative decrease), never
//! below one nor above the lane's cap.
//!
//! A lane never blocks: [`Lanes::enter`] gives a permit when the lane has room now, or says it
//! is busy, and the engine sets the delivery aside for later. This module knows no ledger and no
//! transport.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{sync::Notify, time::Instant};

use crate::{config::Shaping, domain::Rate};

/// The name in metrics of the lanes of domains no `[[shaping]]` group names: a domain is no
/// label, since a reader's own domain could tell who subscribes.
const OTHER: &str = "other";

/// An additive-increase, multiplicative-decrease limit. Pure.
#[derive(Debug, Clone, PartialEq)]
pub struct Aimd {
    limit: f64,
    ceiling: f64,
}

impl Aimd {
    /// Starts at `ceiling`, the most it ever allows (at least one).
    pub fn new(ceiling: usize) -> Self {
        let ceiling = ceiling.max(1) as f64;
        Self { limit: ceiling, ceiling }
    }

    /// Messages in flight allowed now.
    pub fn allowed(&self) -> usize {
        // Between 1 and the ceiling, a usize to begin with: the cast cannot truncate.
        self.limit.floor().max(1.0) as usize
    }

    /// A throttling reply: half as many in flight.
    pub fn throttled(&mut self) {
        self.limit = (self.limit / 2.0).max(1.0);
    }

    /// A throttling reply with `in_flight` messages out: half as many as were out, or as the
    /// limit allowed when fewer, so that a limit far above what was ever used still slows down.
    pub fn throttled_at(&mut self, in_flight: usize) {
        self.limit = self.limit.min(in_flight.max(1) as f64);
        self.throttled();
    }

    /// A message taken: one more in flight once a whole limit's worth has been.
    pub fn succeeded(&mut self) {
        self.limit = (self.limit + 1.0 / self.limit).min(self.ceiling);
    }
}

#[derive(Debug)]
struct State {
    in_flight: usize,
    aimd: Aimd,
    /// The earliest the next message may start, under the lane's rate.
    next: Instant,
}

#[derive(Debug)]
pub struct Lane {
    label: String,
    interval: Option<Duration>,
    /// The group's `rate`, messages a second, for the bucket every process shares.
    per_second: Option<f64>,
    state: Mutex<State>,
}

impl Lane {
    fn new(label: String, ceiling: usize, rate: Option<Rate>) -> Self {
        let rate = rate.filter(|r| r.count > 0);
        let interval = rate.map(|r| r.per / r.count);
        let per_second = rate.map(|r| r.as_per_second());
        let aimd = Aimd::new(ceiling);
        crate::metrics::lane_limit(&label, aimd.allowed());
        Self { label, interval, per_second, state: Mutex::new(State { in_flight: 0, aimd, next: Instant::now() }) }
    }
}

/// Why a lane gave no permit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Busy {
    /// As many messages in flight as the lane allows: wait for one to finish.
    Full,
    /// The lane's rate: nothing before this moment.
    Until(Instant),
}

/// Every lane of one run.
#[derive(Debug)]
pub struct Lanes {
    /// Each shaped domain, to its group's lane.
    shaped: HashMap<String, Arc<Lane>>,
    /// Lanes of the other domains, made as they are met.
    others: Mutex<HashMap<String, Arc<Lane>>>,
    /// Messages in flight at most to one lane without a cap of its own: the engine's senders.
    ceiling: usize,
    /// Told whenever a permit is given back.
    freed: Arc<Notify>,
}

impl Lanes {
    pub fn new(groups: &[Shaping], ceiling: usize) -> Self {
        let mut shaped = HashMap::new();
        for g in groups {
            let cap = g.concurrency.unwrap_or(ceiling).min(ceiling);
            let lane = Arc::new(Lane::new(g.name().to_owned(), cap, g.rate));
            for d in &g.domains {
                shaped.insert(d.clone(), Arc::clone(&lane));
            }
        }
        Self { shaped, others: Mutex::new(HashMap::new()), ceiling, freed: Arc::new(Notify::new()) }
    }

    /// The lane of a recipient's domain.
    pub fn lane(&self, domain: &str) -> Arc<Lane> {
        let domain = domain.to_ascii_lowercase();
        if let Some(l) = self.shaped.get(&domain) {
            return Arc::clone(l);
        }
        let Ok(mut others) = self.others.lock() else {
            return Arc::new(Lane::new(OTHER.to_owned(), self.ceiling, None));
        };
        Arc::clone(others.entry(domain).or_insert_with(|| Arc::new(Lane::new(OTHER.to_owned(), self.ceiling, None))))
    }

    /// A permit to send one message to `lane` now, or why not.
    pub fn enter(&self, lane: &Arc<Lane>) -> Result<Permit, Busy> {
        let now = Instant::now();
        let mut s = lane.state.lock().map_err(|_| Busy::Full)?;
        if s.in_flight >= s.aimd.allowed() {
            return Err(Busy::Full);
        }
        if let Some(interval) = lane.interval {
            if s.next > now {
                return Err(Busy::Until(s.next));
            }
            s.next = now + interval;
        }
        s.in_flight += 1;
        Ok(Permit { lane: Arc::clone(lane), freed: Arc::clone(&self.freed), done: false })
    }

    /// Waits until a permit may have been given back, or `until`.
    pub async fn changed(&self, until: Instant) {
        tokio::select! {
            () = self.freed.notified() => {}
            () = tokio::time::sleep_until(until) => {}
        }
    }
}

/// One message in flight to a lane; given back when dropped.
#[derive(Debug)]
pub struct Permit {
    lane: Arc<Lane>,
    freed: Arc<Notify>,
    done: bool,
}

impl Permit {
    /// The group's name and `rate` a second, when it has one: what every process sending to the
    /// group shares.
    pub fn shared_rate(&self) -> Option<(&str, f64)> {
        self.lane.per_second.map(|r| (self.lane.label.as_str(), r))
    }

    /// The server took the message (or refused it for a reason of its own).
    pub fn succeeded(&mut self) {
        self.adjust(Aimd::succeeded);
    }

    /// The server asked to be sent less.
    pub fn throttled(&mut self) {
        crate::metrics::throttled(&self.lane.label);
        self.adjust(Aimd::throttled);
        tracing::info!(group = %self.lane.label, "a mail server asked to slow down: fewer messages in flight to this group");
    }

    fn adjust(&mut self, f: impl FnOnce(&mut Aimd)) {
        if self.done {
            return;
        }
        self.done = true;
        if let Ok(mut s) = self.lane.state.lock() {
            let before = s.aimd.allowed();
            f(&mut s.aimd);
            if s.aimd.allowed() != before {
                crate::metrics::lane_limit(&self.lane.label, s.aimd.allowed());
            }
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Ok(mut s) = self.lane.state.lock() {
            s.in_flight = s.in_flight.saturating_sub(1);
        }
        self.freed.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_halves_on_throttling_and_climbs_back_by_one_a_window() {
        let mut a = Aimd::new(16);
        assert_eq!(a.allowed(), 16);
        a.throttled();
        assert_eq!(a.allowed(), 8);
        a.throttled();
        a.throttled();
        assert_eq!(a.allowed(), 2);
        for _ in 0..10 {
            a.throttled();
        }
        assert_eq!(a.allowed(), 1, "never below one");
        // About `limit` successes raise the limit by one.
        for _ in 0..2 {
            a.succeeded();
        }
        assert_eq!(a.allowed(), 2);
        for _ in 0..200 {
            a.succeeded();
        }
        assert_eq!(a.allowed(), 16, "never above the ceiling");
    }

    fn gmail(concurrency: Option<usize>, rate: Option<Rate>) -> Shaping {
        Shaping { domains: vec!["gmail.com".into(), "googlemail.com".into()], concurrency, rate }
    }

    #[tokio::test]
    async fn a_capped_group_is_busy_at_its_cap_and_other_domains_are_not() {
        let lanes = Lanes::new(&[gmail(Some(2), None)], 8);
        let g = lanes.lane("GMail.com");
        let also_g = lanes.lane("googlemail.com");
        let a = lanes.enter(&g).expect("first");
        let _b = lanes.enter(&also_g).expect("second, one group");
        assert_eq!(lanes.enter(&g).err(), Some(Busy::Full));
        let other = lanes.lane("example.org");
        let held: Vec<Permit> = (0..8).map(|_| lanes.enter(&other).expect("others flow")).collect();
        assert_eq!(held.len(), 8);
        drop(a);
        assert!(lanes.enter(&g).is_ok(), "a permit given back makes room");
    }

    #[tokio::test]
    async fn throttling_narrows_the_lane_it_came_from_only() {
        let lanes = Lanes::new(&[], 4);
        let slow = lanes.lane("slow.example");
        let fast = lanes.lane("fast.example");
        let mut p = lanes.enter(&slow).expect("permit");
        p.throttled();
        drop(p);
        let _one = lanes.enter(&slow).expect("one in flight");
        let _two = lanes.enter(&slow).expect("two in flight");
        assert_eq!(lanes.enter(&slow).err(), Some(Busy::Full), "4 halved is 2");
        let held: Vec<Permit> = (0..4).map(|_| lanes.enter(&fast).expect("fast")).collect();
        assert_eq!(held.len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_spaces_a_groups_messages() {
        let lanes = Lanes::new(&[gmail(None, Some(Rate::per_second(20)))], 8);
        let g = lanes.lane("gmail.com");
        drop(lanes.enter(&g).expect("first"));
        let Err(Busy::Until(at)) = lanes.enter(&g) else { panic!("the second waits") };
        assert_eq!(at - Instant::now(), Duration::from_millis(50));
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(lanes.enter(&g).is_ok());
    }
}
