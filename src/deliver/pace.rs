//! The `rate` limit: sends are spaced so that no more than `rate` start in any second.

use std::time::Duration;

use tokio::{sync::Mutex, time::Instant};

#[derive(Debug)]
pub struct Pace {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pace {
    /// `per_second == 0` means no limit.
    pub fn new(per_second: u32) -> Self {
        let interval = (per_second > 0).then(|| Duration::from_secs(1) / per_second);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_sends_evenly() {
        let pace = Pace::new(10);
        let start = Instant::now();
        for _ in 0..21 {
            pace.wait().await;
        }
        let took = start.elapsed();
        assert!(took >= Duration::from_secs(2) && took < Duration::from_millis(2100), "{took:?}");
    }
}
