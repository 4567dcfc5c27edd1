//! Shared token buckets: every process on the store draws sends from the same bucket. The
//! arithmetic is here; the database only keeps each bucket's two numbers, locked from the read
//! to the write, so two takers never spend the same tokens.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{
    Grant, Store, StoreError,
    backend::{in_tx, ms},
};

const ENSURE: &str = "INSERT INTO rate_buckets (name, tokens, updated_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING";
const STORE: &str = "UPDATE rate_buckets SET tokens = $1, updated_at = $2 WHERE name = $3";

impl Store {
    /// Takes up to `want` sends from the bucket `name`, which refills at `per_second` and holds
    /// at most `burst` (a new bucket starts full).
    pub async fn take_tokens(
        &self,
        name: &str,
        per_second: f64,
        burst: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<Grant, StoreError> {
        let now_ms = ms(now);
        in_tx!(self, |tx, db| {
            sqlx::query(ENSURE).bind(name).bind(burst).bind(now_ms).execute(&mut *tx).await?;
            let (tokens, updated): (f64, i64) = sqlx::query_as(db::LOCK_BUCKET).bind(name).fetch_one(&mut *tx).await?;
            let (grant, left) = take(tokens, updated, per_second, burst, want, now_ms);
            sqlx::query(STORE).bind(left).bind(now_ms.max(updated)).bind(name).execute(&mut *tx).await?;
            Ok(grant)
        })
    }
}

/// Refills a bucket that held `tokens` at `updated_ms` up to `now_ms`, then takes up to `want`.
/// Returns the grant and the tokens left.
fn take(tokens: f64, updated_ms: i64, per_second: f64, burst: f64, want: u32, now_ms: i64) -> (Grant, f64) {
    // A clock that went backwards refills nothing rather than draining the bucket.
    let elapsed = (now_ms - updated_ms).max(0) as f64 / 1000.0;
    let available = (tokens + elapsed * per_second).min(burst);
    let granted = available.floor().min(f64::from(want)).max(0.0);
    let left = available - granted;
    let retry_in = if granted >= 1.0 || per_second <= 0.0 {
        Duration::ZERO
    } else {
        Duration::from_secs_f64(((1.0 - left) / per_second).max(0.001))
    };
    // `granted` is a whole number between 0 and `want`.
    (Grant { granted: granted as u32, retry_in }, left)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refills_at_the_rate_and_caps_at_the_burst() {
        let (g, left) = take(0.0, 0, 100.0, 10.0, 50, 1000);
        assert_eq!(g.granted, 10, "a second at 100/s refills only up to the burst");
        assert!(left.abs() < 1e-9);
        let (g, left) = take(0.0, 0, 100.0, 10.0, 50, 55);
        assert_eq!(g.granted, 5);
        assert!((left - 0.5).abs() < 1e-9);
    }

    #[test]
    fn an_empty_bucket_says_when_to_come_back() {
        let (g, left) = take(0.25, 1000, 10.0, 5.0, 3, 1000);
        assert_eq!(g.granted, 0);
        assert!((left - 0.25).abs() < 1e-9);
        assert_eq!(g.retry_in, Duration::from_millis(75));
    }

    #[test]
    fn a_clock_that_goes_back_refills_nothing() {
        let (g, _) = take(2.0, 5000, 10.0, 5.0, 9, 1000);
        assert_eq!(g.granted, 2);
    }
}
