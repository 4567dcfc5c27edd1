//! The `rate` limit: sends are spaced evenly at the rate (one every 50 ms at 20/s, one every 2 s
//! at 30/m), and every send is paid for from the allowance all processes on the queue share.

use std::time::Duration;

use tokio::{sync::Mutex, time::Instant};

use crate::domain::Rate;

#[derive(Debug)]
pub struct Pace {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    /// `None` means no limit.
    pub fn new(rate: Option<Rate>) -> Self {
        let interval = rate.filter(|r| r.count > 0).map(|r| r.per / r.count);
        Self { interval, next: Mutex::new(Instant::now()) }
    }

    /// Waits for this send's turn.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else { return };
        let at = {
            let mut next = self.next.lock().await;
            let now = Instant::now();
            let at = (*next).max(now);
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at).await;
    }
}

/// This process's share of the global rate: sends granted by the shared bucket and not yet
/// started. Grants are fetched in small chunks (a fiftieth of a second's worth): what processes
/// hold unspent is what they can send above the rate in one second, so it is kept small.
#[derive(Debug)]
pub struct Allowance {
    /// Sends a second, which may be below one; 0 means no limit.
    per_second: f64,
    left: Mutex<u32>,
}

/// The chunks a second's sends are fetched in; also the bucket's size in seconds (1/50).
pub const CHUNKS_PER_SECOND: u32 = 50;

/// What the shared bucket answered: sends granted, or how long to wait for the next one.
pub type Grant = (u32, Duration);

impl Allowance {
    /// `None` means no limit: nothing is asked of the bucket.
    pub fn new(rate: Option<Rate>) -> Self {
        Self { per_second: rate.map_or(0.0, |r| r.as_per_second()), left: Mutex::new(0) }
    }

    /// An allowance of `per_second` sends a second (0: no limit).
    pub fn per_second(per_second: f64) -> Self {
        Self { per_second, left: Mutex::new(0) }
    }

    /// The most one request may ask for.
    pub fn chunk(&self) -> u32 {
        // A whole number between 1 and u32::MAX / 50, so the cast cannot truncate.
        (self.per_second / f64::from(CHUNKS_PER_SECOND)).floor().clamp(1.0, f64::from(u32::MAX / CHUNKS_PER_SECOND))
            as u32
    }

    /// Takes one send from the allowance, asking the bucket through `fetch` when none is left.
    pub async fn take<F, Fut, E>(&self, mut fetch: F) -> Result<(), E>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<Grant, E>>,
    {
        if self.per_second <= 0.0 {
            return Ok(());
        }
        // Held across the fetch on purpose: one request to the bucket at a time per process.
        let mut left = self.left.lock().await;
        while *left == 0 {
            let (granted, retry_in) = fetch(self.chunk()).await?;
            if granted == 0 {
                tokio::time::sleep(retry_in.max(Duration::from_millis(1))).await;
            }
            *left += granted;
        }
        *left -= 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    };

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_allowance_asks_for_chunks_and_waits_when_refused() {
        let allowance = Allowance::new(Some(Rate::per_second(500)));
        let asks = Arc::new(AtomicU32::new(0));
        let start = Instant::now();
        for _ in 0..25 {
            let asks = Arc::clone(&asks);
            allowance
                .take(move |want| {
                    let n = asks.fetch_add(1, Ordering::SeqCst);
                    async move {
                        assert_eq!(want, 10);
                        // Every other request is refused for 50 ms.
                        Ok::<_, String>(if n.is_multiple_of(2) {
                            (0, Duration::from_millis(50))
                        } else {
                            (want, Duration::ZERO)
                        })
                    }
                })
                .await
                .expect("take");
        }
        assert_eq!(asks.load(Ordering::SeqCst), 6, "25 sends in chunks of 10 take three grants");
        assert_eq!(start.elapsed(), Duration::from_millis(150));
    }

    #[tokio::test]
    async fn no_limit_asks_nothing() {
        let allowance = Allowance::new(None);
        allowance.take(|_| async { Err::<Grant, _>("asked".to_owned()) }).await.expect("no request");
    }

    #[tokio::test(start_paused = true)]
    async fn spaces_sends_evenly() {
        let pace = Pace::new(Some(Rate::per_second(10)));
        let start = Instant::now();
        for _ in 0..21 {
            pace.wait().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_rate_per_minute_spaces_sends_by_seconds() {
        let pace = Pace::new(Some("30/m".parse().expect("rate")));
        let start = Instant::now();
        for _ in 0..4 {
            pace.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_secs(6), "30/m is one send every 2 s");
    }
}
