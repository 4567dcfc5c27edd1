//! The tokens of signed webhook requests seen lately, so that a request sent again is refused:
//! each token is noted once, and those older than the oldest request still taken are pruned as
//! new ones arrive.

use chrono::{DateTime, Utc};

use super::{
    Store, StoreError,
    backend::{in_tx, ms},
};

const PRUNE: &str = "DELETE FROM webhook_tokens WHERE seen_at < $1";
const NOTE: &str = "INSERT INTO webhook_tokens (provider, token, seen_at) VALUES ($1, $2, $3) ON CONFLICT (provider, token) DO NOTHING";
const FORGET: &str = "DELETE FROM webhook_tokens WHERE provider = $1 AND token = $2";

impl Store {
    /// Notes `token` of `provider` as seen at `now`, after dropping the tokens seen before
    /// `keep_since`; false when it was seen before (a replay).
    pub async fn note_webhook_token(
        &self,
        provider: &str,
        token: &str,
        now: DateTime<Utc>,
        keep_since: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        in_tx!(self, |tx, db| {
            sqlx::query(PRUNE).bind(ms(keep_since)).execute(&mut *tx).await?;
            let noted =
                sqlx::query(NOTE).bind(provider).bind(token).bind(ms(now)).execute(&mut *tx).await?.rows_affected();
            Ok(noted > 0)
        })
    }

    /// Forgets a token noted for a request that could not be dealt with, so that the provider's
    /// next attempt with it is taken.
    pub async fn forget_webhook_token(&self, provider: &str, token: &str) -> Result<(), StoreError> {
        in_tx!(self, |tx, db| {
            sqlx::query(FORGET).bind(provider).bind(token).execute(&mut *tx).await?;
            Ok(())
        })
    }
}
