//! Sign-up attempts per client: a token bucket per client address that holds `count` attempts
//! and refills at `count` per `per` (`[web] subscribe_rate`). IPv6 clients are counted by their
//! /64, since one host commonly holds a whole /64. The table is kept small by forgetting full
//! buckets (a client idle for a whole span) and, past a hard cap, everything: under a flood of
//! addresses, forgetting is safer than running out of memory.

use std::{
    collections::HashMap,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Mutex,
    time::{Duration, Instant},
};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, request::Parts},
};

use super::AppState;
use crate::domain::Rate;

/// More clients than this at once and the table starts over.
const MAX_CLIENTS: usize = 100_000;

#[derive(Debug)]
pub struct Limiter {
    capacity: f64,
    per_second: f64,
    clients: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    last_sweep: Option<Instant>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Limiter {
    pub fn new(rate: Rate) -> Self {
        let capacity = f64::from(rate.count.max(1));
        let per_second = capacity / rate.per.as_secs_f64().max(0.001);
        Self { capacity, per_second, clients: Mutex::new(Table::default()) }
    }

    /// Takes one attempt for `client` at `now`; when it has none left, how long until it has
    /// one again.
    pub fn allow(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = bucket_key(client);
        // A poisoned lock only means another request panicked mid-update; the counts are
        // still usable numbers.
        let mut table = self.clients.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        self.sweep(&mut table, now);
        let bucket = table.buckets.entry(key).or_insert(Bucket { tokens: self.capacity, at: now });
        let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            // In whole milliseconds, rounded up but past floating-point noise, so that 20 s
            // stays 20 s rather than a hair over.
            let ms = ((1.0 - bucket.tokens) / self.per_second * 1000.0 - 1e-6).ceil().max(1.0);
            Err(Duration::from_millis(ms as u64))
        }
    }

    /// Forgets the buckets that have refilled, at most once a span.
    fn sweep(&self, table: &mut Table, now: Instant) {
        let span = Duration::from_secs_f64(self.capacity / self.per_second);
        if table.buckets.len() >= MAX_CLIENTS {
            table.buckets.clear();
        }
        if table.last_sweep.is_some_and(|t| now.saturating_duration_since(t) < span) {
            return;
        }
        table.last_sweep = Some(now);
        let (capacity, per_second) = (self.capacity, self.per_second);
        table
            .buckets
            .retain(|_, b| b.tokens + now.saturating_duration_since(b.at).as_secs_f64() * per_second < capacity);
    }
}

/// The client's address: the peer of the connection, or, where `[web] trust_forwarded` says a
/// reverse proxy stands in front, the address that proxy appended to `X-Forwarded-For` (the
/// last one: any before it came from the client and prove nothing).
pub struct ClientIp(pub IpAddr);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let forwarded = state.publication.config.web.trust_forwarded.then(|| forwarded_for(&parts.headers)).flatten();
        // Without either (a test calling the router directly), every client shares one bucket.
        Ok(Self(forwarded.or(peer).unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))))
    }
}

fn forwarded_for(headers: &HeaderMap) -> Option<IpAddr> {
    let last = headers.get_all("x-forwarded-for").iter().next_back()?.to_str().ok()?;
    last.rsplit(',').next()?.trim().parse().ok()
}

/// IPv4 addresses as they are; IPv6 by their /64 (an IPv4-mapped address as its IPv4 self).
fn bucket_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn per_minute(n: u32) -> Limiter {
        Limiter::new(Rate { count: n, per: Duration::from_secs(60) })
    }

    #[test]
    fn allows_the_rate_then_refuses_then_refills() {
        let l = per_minute(3);
        let a: IpAddr = "192.0.2.1".parse().expect("ip");
        let b: IpAddr = "192.0.2.2".parse().expect("ip");
        let t = Instant::now();
        assert!((0..3).all(|_| l.allow(a, t).is_ok()));
        assert_eq!(l.allow(a, t), Err(Duration::from_secs(20)), "one attempt comes back every 20 s");
        assert!(l.allow(b, t).is_ok(), "another client has its own bucket");
        assert_eq!(l.allow(a, t + Duration::from_secs(10)), Err(Duration::from_secs(10)));
        assert!(l.allow(a, t + Duration::from_secs(21)).is_ok(), "one attempt back after a third of a minute");
    }

    #[test]
    fn counts_an_ipv6_client_by_its_64() {
        let l = per_minute(1);
        let t = Instant::now();
        assert!(l.allow("2001:db8:1:2::1".parse().expect("ip"), t).is_ok());
        assert!(l.allow("2001:db8:1:2:ffff::9".parse().expect("ip"), t).is_err());
        assert!(l.allow("2001:db8:1:3::1".parse().expect("ip"), t).is_ok());
    }

    #[test]
    fn takes_the_address_the_proxy_appended() {
        let mut h = HeaderMap::new();
        assert_eq!(forwarded_for(&h), None);
        h.append("x-forwarded-for", "203.0.113.9, 198.51.100.7".parse().expect("value"));
        assert_eq!(forwarded_for(&h), Some("198.51.100.7".parse().expect("ip")));
        h.append("x-forwarded-for", "2001:db8::1".parse().expect("value"));
        assert_eq!(forwarded_for(&h), Some("2001:db8::1".parse().expect("ip")));
    }

    #[test]
    fn forgets_idle_clients() {
        let l = per_minute(2);
        let t = Instant::now();
        for i in 0..50u8 {
            assert!(l.allow(IpAddr::from([10, 0, 0, i]), t).is_ok());
        }
        assert!(l.allow("10.1.0.1".parse().expect("ip"), t + Duration::from_secs(120)).is_ok());
        let table = l.clients.lock().expect("lock");
        assert_eq!(table.buckets.len(), 1);
    }
}
