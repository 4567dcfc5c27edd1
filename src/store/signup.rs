//! Sign-ups from the web form and their confirmations. A request is not consent: it stores a
//! new address as unconfirmed and leaves a known one as it is. The link mailed for it makes the
//! address active, unless the address left after the link was made.

use chrono::{DateTime, Utc};

use super::{
    Confirmation, ConsentEvent, Signup, Store, StoreError,
    backend::{RETRIES, in_tx, ms, parse},
    consent, keys,
    lists::{self, ListIds},
};
use crate::domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus};

/// A new address, unless another request stored it first. No conflict target: two requests
/// with the same spelling may meet on the plain `email` constraint rather than on the key by
/// `lower(email)`, and either means the address is there.
const ADD: &str = "INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at) \
     VALUES ($1, $2, '{}', 'unconfirmed', $3, $3) ON CONFLICT DO NOTHING RETURNING id";
/// Requests older than the window are dropped first, so the table holds a day at most.
const PRUNE: &str = "DELETE FROM signup_requests WHERE at <= $1";
/// Sign-up requests to one mailbox since $2.
pub(super) const RECENT: &str = "SELECT count(*) FROM signup_requests WHERE mailbox = $1 AND at > $2";
const NOTE: &str = "INSERT INTO signup_requests (mailbox, at) VALUES ($1, $2)";
/// Departures of subscriber $1 recorded at $2 or later.
pub(super) const LEFT_SINCE: &str = "SELECT count(*) FROM consent_events WHERE subscriber_id = $1 \
     AND event IN ('unsubscribe', 'bounce', 'complaint', 'forget') AND at >= $2";
const ACTIVATE: &str = "UPDATE subscribers SET status = 'active', updated_at = $1 WHERE id = $2";

/// How far back requests to one mailbox are counted.
const WINDOW_MS: i64 = 24 * 3600 * 1000;

/// What a sign-up request found: the address's status before it (none: new), and the requests
/// to the same mailbox within the window before this one.
fn signup(before: Option<SubscriberStatus>, recent: i64) -> Signup {
    Signup { before, recent_requests: u32::try_from(recent.max(0)).unwrap_or(u32::MAX) }
}

/// What a confirmation link does for an address that is `status` (none: unknown, or forgotten),
/// `left_since` telling whether it left (unsubscribed, bounced, complained, was forgotten) after
/// the link was made: an old link cannot undo a departure, though one asked for since may.
fn confirmation(status: Option<SubscriberStatus>, left_since: bool) -> Confirmation {
    match status {
        None => Confirmation::Unknown,
        Some(SubscriberStatus::Active) => Confirmation::AlreadyActive,
        Some(_) if left_since => Confirmation::Stale,
        Some(_) => Confirmation::Confirmed,
    }
}

impl Store {
    /// A sign-up from the web form. An unknown address is stored as unconfirmed under the name
    /// typed; any other is left as it is, name included, since anyone may type any name for an
    /// address that is known. The request joins the consent record either way. Two requests for
    /// one address take their turn on its row; two for a new address race to insert it, and the
    /// loser carries on with the winner's row.
    pub async fn request_subscription(
        &self,
        email: &EmailAddress,
        name: Option<&SubscriberName>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Signup, StoreError> {
        let mailbox = keys::mailbox_digest(email);
        let window_start = ms(now) - WINDOW_MS;
        in_tx!(self, |tx, db| {
            let mut found = None;
            for _ in 0..RETRIES {
                let row: Option<(i64, String)> =
                    sqlx::query_as(db::LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
                if let Some((id, status)) = row {
                    found = Some((id, Some(parse::<SubscriberStatus>(&status)?)));
                    break;
                }
                let id: Option<i64> = sqlx::query_scalar(ADD)
                    .bind(email.as_str())
                    .bind(name.map_or("", |n| n.as_str()))
                    .bind(ms(now))
                    .fetch_optional(&mut *tx)
                    .await?;
                if let Some(id) = id {
                    found = Some((id, None));
                    break;
                }
            }
            let Some((id, before)) = found else {
                return Err(StoreError::Contended("an address kept changing while it signed up".into()));
            };
            sqlx::query(PRUNE).bind(window_start).execute(&mut *tx).await?;
            let recent: i64 = sqlx::query_scalar(RECENT).bind(&mailbox).bind(window_start).fetch_one(&mut *tx).await?;
            sqlx::query(NOTE).bind(&mailbox).bind(ms(now)).execute(&mut *tx).await?;
            consent::record(&mut tx, Some(id), ConsentEvent::Subscribe, source, now).await?;
            Ok(signup(before, recent))
        })
    }

    /// Acts on a confirmation link made at `issued`: the address becomes active and joins
    /// `lists` (an address already active joins them too), unless it left after the link was
    /// made. The address's row is locked first, so a departure cannot slip in between the check
    /// and the change.
    pub async fn confirm_subscription(
        &self,
        email: &EmailAddress,
        lists: &[ListName],
        issued: DateTime<Utc>,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<Confirmation, StoreError> {
        in_tx!(self, |tx, db| {
            let row: Option<(i64, String)> =
                sqlx::query_as(db::LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some((id, status)) = row else { return Ok(confirmation(None, false)) };
            let left: i64 = sqlx::query_scalar(LEFT_SINCE).bind(id).bind(ms(issued)).fetch_one(&mut *tx).await?;
            let outcome = confirmation(Some(parse(&status)?), left > 0);
            match outcome {
                Confirmation::Unknown | Confirmation::Stale => return Ok(outcome),
                Confirmation::AlreadyActive => {}
                Confirmation::Confirmed => {
                    sqlx::query(ACTIVATE).bind(ms(now)).bind(id).execute(&mut *tx).await?;
                    consent::record(&mut tx, Some(id), ConsentEvent::Confirm, source, now).await?;
                }
            }
            let mut ids = ListIds::new();
            let mut pairs = Vec::with_capacity(lists.len());
            for l in lists {
                pairs.push((lists::id(&mut tx, l, &mut ids).await?, id));
            }
            lists::join(&mut tx, &pairs, now).await?;
            Ok(outcome)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_confirms_unless_the_address_left_after_it_was_made() {
        use SubscriberStatus::*;
        assert_eq!(confirmation(None, false), Confirmation::Unknown);
        assert_eq!(confirmation(Some(Unconfirmed), false), Confirmation::Confirmed);
        assert_eq!(confirmation(Some(Active), false), Confirmation::AlreadyActive);
        assert_eq!(confirmation(Some(Active), true), Confirmation::AlreadyActive, "left, then came back: still in");
        for left in [Unsubscribed, Bounced, Complained] {
            assert_eq!(confirmation(Some(left), true), Confirmation::Stale, "{left}: an old link cannot undo leaving");
            assert_eq!(confirmation(Some(left), false), Confirmation::Confirmed, "{left}: a link asked for since may");
        }
        assert_eq!(confirmation(Some(Unconfirmed), true), Confirmation::Stale);
    }

    #[test]
    fn a_signup_says_what_it_found_and_how_many_came_before() {
        assert_eq!(signup(None, 0), Signup { before: None, recent_requests: 0 });
        let again = signup(Some(SubscriberStatus::Unconfirmed), 3);
        assert_eq!(again, Signup { before: Some(SubscriberStatus::Unconfirmed), recent_requests: 3 });
        assert_eq!(signup(None, i64::MAX).recent_requests, u32::MAX);
    }
}
