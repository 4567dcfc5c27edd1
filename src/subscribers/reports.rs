//! What a bounce or a complaint that came back after an issue went out does to its reader: a
//! hard bounce ends an active subscription (`bounced`), so do `[bounces] soft_limit` soft
//! bounces of different messages within `soft_window`, and a complaint makes the reader
//! `complained` and takes them off every list, whatever they were. The same report read twice
//! does it once. Who the report is about (and that it is about a real delivery, not a test copy
//! or a forged token) is the caller's to have found.

use chrono::{DateTime, Utc};

use crate::{
    config::Bounces,
    store::{BounceOutcome, BounceRule, NewBounce, Store, StoreError},
};

/// Records `bounce` and applies it under `[bounces]`' rule, in one transaction.
pub async fn apply_report(
    store: &Store,
    settings: &Bounces,
    bounce: &NewBounce<'_>,
    now: DateTime<Utc>,
) -> Result<BounceOutcome, StoreError> {
    let rule = BounceRule { soft_limit: settings.soft_limit, soft_window: settings.soft_window.chrono() };
    store.apply_bounce(bounce, rule, now).await
}
