//! How often anyone may try to sign in: a token bucket per client address and another per
//! address typed in the form (known or not, so that the answer says nothing of which addresses
//! are users). A client or an address out of attempts is answered 429 with `Retry-After`
//! before any password is checked. The tables forget everything past a hard cap: under a
//! flood, forgetting is safer than running out of memory.

use std::{
    collections::HashMap,
    hash::Hash,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

const MAX_KEYS: usize = 100_000;

/// Attempts per client: a burst of 20, then one every 15 seconds.
const CLIENT: (f64, Duration) = (20.0, Duration::from_secs(15));
/// Attempts per address: a burst of 5, then one every 3 minutes.
const ADDRESS: (f64, Duration) = (5.0, Duration::from_secs(180));

#[derive(Debug)]
struct Buckets<K> {
    capacity: f64,
    every: Duration,
    table: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq> Buckets<K> {
    fn new((capacity, every): (f64, Duration)) -> Self {
        Self { capacity, every, table: Mutex::new(HashMap::new()) }
    }

    /// Takes an attempt for `key`, or says how long until one comes back.
    fn take(&self, key: K, now: Instant) -> Result<(), Duration> {
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable numbers.
        let mut table = self.table.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if table.len() >= MAX_KEYS {
            table.clear();
        }
        let per_second = 1.0 / self.every.as_secs_f64();
        let (tokens, at) = table.entry(key).or_insert((self.capacity, now));
        *tokens = (*tokens + now.saturating_duration_since(*at).as_secs_f64() * per_second).min(self.capacity);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - *tokens) / per_second))
        }
    }
}

/// The sign-in attempts of every client and address.
#[derive(Debug)]
pub struct LoginLimits {
    clients: Buckets<IpAddr>,
    addresses: Buckets<String>,
}

impl Default for LoginLimits {
    fn default() -> Self {
        Self { clients: Buckets::new(CLIENT), addresses: Buckets::new(ADDRESS) }
    }
}

impl LoginLimits {
    /// Takes an attempt for `client` signing in as `address_key` (the typed address in lower
    /// case), or says how long until they may try again.
    pub fn allow(&self, client: IpAddr, address_key: &str, now: Instant) -> Result<(), Duration> {
        self.clients.take(client, now)?;
        self.addresses.take(address_key.to_owned(), now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_tried_too_often_waits_whoever_tries_it() {
        let limits = LoginLimits::default();
        let t = Instant::now();
        let (a, b): (IpAddr, IpAddr) = ("192.0.2.1".parse().expect("ip"), "192.0.2.2".parse().expect("ip"));
        assert!((0..5).all(|_| limits.allow(a, "ann@example.org", t).is_ok()));
        let wait = limits.allow(b, "ann@example.org", t).expect_err("the address is out of attempts");
        assert!(wait > Duration::from_secs(170), "{wait:?}");
        assert!(limits.allow(b, "ed@example.org", t).is_ok(), "another address has its own");
        assert!(limits.allow(a, "ann@example.org", t + Duration::from_secs(181)).is_ok());
    }

    #[test]
    fn a_client_trying_many_addresses_waits() {
        let limits = LoginLimits::default();
        let t = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        assert!((0..20).all(|i| limits.allow(a, &format!("u{i}@example.org"), t).is_ok()));
        assert!(limits.allow(a, "new@example.org", t).is_err());
        assert!(limits.allow("192.0.2.9".parse().expect("ip"), "new@example.org", t).is_ok());
    }
}
