//! How long to wait before trying a message again: the first wait, doubled each time, with
//! jitter so that deferred messages do not return in one wave, capped at an hour.

use std::time::Duration;

const CAP: Duration = Duration::from_secs(3600);

/// The wait after the `attempt`-th failed attempt (1 = the first).
pub fn backoff(first: Duration, attempt: u32) -> Duration {
    let exp = attempt.saturating_sub(1).min(20);
    let base = first.saturating_mul(1u32 << exp).min(CAP);
    // ±20 % jitter.
    let factor = 0.8 + rand::random::<f64>() * 0.4;
    base.mul_f64(factor).min(CAP)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_with_jitter_and_caps() {
        let first = Duration::from_secs(60);
        for (attempt, base) in [(1, 60.0), (2, 120.0), (3, 240.0)] {
            let d = backoff(first, attempt).as_secs_f64();
            assert!(d >= base * 0.8 && d <= base * 1.2, "{attempt}: {d}");
        }
        assert!(backoff(first, 30) <= CAP);
    }
}
