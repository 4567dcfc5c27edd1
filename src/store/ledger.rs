//! The delivery ledger: claims under a lease, their renewal, the outcomes of a batch, and what
//! the ledger says of an issue (when its next delivery is due, whether it is done, its failures
//! and deferrals). The rules are here, once; each backend gives the text of the statements that
//! take a list of values (PostgreSQL's arrays, SQLite's JSON) and its claim's row locks.

use std::{
    collections::{HashMap, HashSet},
    time::Duration,
};

use chrono::{DateTime, Utc};
use sqlx::{FromRow, Row};

use super::{
    Claimed, ConsentEvent, Deferred, Failure, LedgerCounts, Outcome, RelayUse, Store, StoreError,
    backend::{count, from_ms, in_tx, lease_ms, ms, parse, retrying, with_backend},
    consent,
};
use crate::domain::{DeliveryState, SubscriberStatus};

/// Every lease `owner` holds on a delivery still to send, found through the deliveries to send
/// of the issues going out rather than by a walk of the whole ledger.
pub(super) const RELEASE: &str = "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL \
     WHERE issue_number IN (SELECT number FROM issues WHERE status = 'sending') \
     AND state IN ('queued', 'deferred') AND lease_owner = $1 AND lease_until IS NOT NULL";
/// An issue whose readers are still being queued (its cursor set) is not done, however empty
/// its queue is for now.
pub(super) const FINISH_ISSUE: &str = "UPDATE issues SET status = 'sent', finished_at = $1 \
     WHERE number = $2 AND status = 'sending' AND queued_through IS NULL \
     AND NOT EXISTS (SELECT 1 FROM deliveries WHERE issue_number = $2 AND state IN ('queued', 'deferred'))";
const FAILURES: &str = "SELECT s.email, d.last_reply, d.attempts FROM deliveries d \
     JOIN subscribers s ON s.id = d.subscriber_id \
     WHERE d.issue_number = $1 AND d.state = 'failed' ORDER BY s.email";
const DEFERRED: &str = "SELECT s.email, d.last_reply, d.attempts, d.next_attempt_at FROM deliveries d \
     JOIN subscribers s ON s.id = d.subscriber_id \
     WHERE d.issue_number = $1 AND d.state = 'deferred' ORDER BY d.next_attempt_at, s.email";
/// What an issue sent through each relay: its deliveries by the relay and state of their last
/// outcome, with when the last of them came. Found by the issue's entries of `deliveries_state`.
pub(super) const RELAYS: &str = "SELECT relay, state, count(*), max(updated_at) FROM deliveries \
     WHERE issue_number = $1 AND relay IS NOT NULL GROUP BY relay, state ORDER BY relay, state";
/// The last reply a relay gave for an issue, at the moment `RELAYS` says its last outcome came.
const RELAY_LAST_REPLY: &str = "SELECT last_reply FROM deliveries \
     WHERE issue_number = $1 AND state = $2 AND relay = $3 AND updated_at = $4 ORDER BY id DESC LIMIT 1";
/// Counted per issue first, which the ledger's index on (issue, state) answers alone, then
/// summed over the few issues.
const LEDGER_COUNTS: &str = "SELECT i.status, c.state, CAST(sum(c.n) AS BIGINT) FROM \
     (SELECT issue_number, state, count(*) AS n FROM deliveries GROUP BY issue_number, state) c \
     JOIN issues i ON i.number = c.issue_number GROUP BY i.status, c.state";

/// A delivery a claim took.
#[derive(Debug, FromRow)]
struct Taken {
    id: i64,
    subscriber_id: i64,
    attempts: i64,
    variant: Option<i64>,
}

/// The subscriber of a delivery a claim took, as stored.
#[derive(Debug, FromRow)]
struct Person {
    id: i64,
    email: String,
    name: String,
    attributes: String,
    status: String,
    topics: Option<String>,
}

/// What a claim hands out, and what it skips.
#[derive(Debug, Default)]
struct Sorted {
    /// In delivery order.
    claimed: Vec<Claimed>,
    /// Deliveries whose subscriber is no longer active, with the reply the ledger keeps for them.
    skipped: Vec<(i64, String)>,
}

/// Sorts the deliveries a claim took: those whose subscriber left (or bounced) since the issue
/// was queued get nothing more from it, and are skipped, saying why.
fn sort_out(mut taken: Vec<Taken>, people: Vec<Person>) -> Result<Sorted, StoreError> {
    let people: HashMap<i64, Person> = people.into_iter().map(|p| (p.id, p)).collect();
    taken.sort_unstable_by_key(|t| t.id);
    let mut sorted = Sorted { claimed: Vec::with_capacity(taken.len()), skipped: Vec::new() };
    for t in taken {
        let p = people
            .get(&t.subscriber_id)
            .ok_or_else(|| StoreError::Corrupt("a delivery without its subscriber".into()))?;
        let status: SubscriberStatus = parse(&p.status)?;
        if status != SubscriberStatus::Active {
            sorted.skipped.push((t.id, format!("subscriber is {status}")));
            continue;
        }
        sorted.claimed.push(Claimed {
            delivery_id: t.id,
            subscriber_id: t.subscriber_id,
            email: parse(&p.email)?,
            name: p.name.clone(),
            attributes: serde_json::from_str(&p.attributes).unwrap_or_default(),
            attempts: u32::try_from(t.attempts).unwrap_or_default(),
            variant: t.variant,
            topics: super::preferences::topic_keys(p.topics.as_deref()),
        });
    }
    Ok(sorted)
}

/// A batch of outcomes as the statements that write it take them: one list per kind, each in
/// delivery order, so that every writer of the ledger locks its rows in the same order and none
/// waits on another in a circle.
#[derive(Debug, Default, PartialEq, Eq)]
struct Plan<'a> {
    /// Delivery, message id, the server's reply, the relay.
    sent: Vec<(i64, &'a str, Option<&'a str>, Option<&'a str>)>,
    /// Delivery, reply, next attempt (ms), attempts it spends (1, or 0 for a throttling reply),
    /// the relay.
    deferred: Vec<(i64, &'a str, i64, i64, Option<&'a str>)>,
    /// Delivery, reply, the relay.
    failed: Vec<(i64, &'a str, Option<&'a str>)>,
    /// Subscribers a permanent refusal bounced, each once, with the reply of the first refusal
    /// the batch holds for them, in the batch's order: the consent record notes them so.
    bounces: Vec<(i64, &'a str)>,
    released: Vec<i64>,
}

impl<'a> Plan<'a> {
    /// `relays[i]` is the relay of `outcomes[i]`; missing ones are none.
    fn new(outcomes: &'a [Outcome], relays: &'a [Option<String>]) -> Self {
        let mut plan = Self::default();
        for (i, o) in outcomes.iter().enumerate() {
            let relay = relays.get(i).and_then(Option::as_deref);
            match o {
                Outcome::Sent { delivery_id, message_id, reply } => {
                    plan.sent.push((*delivery_id, message_id, reply.as_deref(), relay));
                }
                Outcome::Deferred { delivery_id, reply, retry_at, spent } => {
                    plan.deferred.push((*delivery_id, reply, ms(*retry_at), i64::from(*spent), relay));
                }
                Outcome::Failed { delivery_id, reply, bounce } => {
                    plan.failed.push((*delivery_id, reply, relay));
                    if let Some(subscriber) = bounce
                        && !plan.bounces.iter().any(|(id, _)| id == subscriber)
                    {
                        plan.bounces.push((*subscriber, reply));
                    }
                }
                Outcome::Released { delivery_id } => plan.released.push(*delivery_id),
            }
        }
        plan.sent.sort_by_key(|r| r.0);
        plan.deferred.sort_by_key(|r| r.0);
        plan.failed.sort_by_key(|r| r.0);
        plan.released.sort_unstable();
        plan
    }

    /// Only sends, by far the common batch: their one statement is atomic on its own, and needs
    /// no transaction around it.
    fn only_sent(&self) -> bool {
        self.deferred.is_empty() && self.failed.is_empty() && self.released.is_empty()
    }

    fn bounced_ids(&self) -> Vec<i64> {
        self.bounces.iter().map(|(id, _)| *id).collect()
    }
}

/// The consent events of a batch's bounces: for the subscribers it changed from active, whose
/// departure it is. One already bounced, unsubscribed or forgotten left before.
fn bounce_events<'a>(bounces: &[(i64, &'a str)], changed: &HashSet<i64>) -> Vec<(i64, &'a str)> {
    bounces.iter().filter(|(id, _)| changed.contains(id)).copied().collect()
}

impl Store {
    /// Takes up to `limit` due deliveries of the issue under a lease until `now + lease`,
    /// committed before this returns: an expired lease is taken over, a delivery another worker
    /// is claiming at this instant is left to it. Deliveries whose subscriber is no longer active
    /// are skipped instead, in the same transaction.
    pub async fn claim(
        &self,
        number: u32,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, StoreError> {
        let now_ms = ms(now);
        let until = now_ms + lease_ms(lease);
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        in_tx!(self, |tx, db| {
            let taken: Vec<Taken> = sqlx::query_as(db::CLAIM)
                .bind(owner)
                .bind(until)
                .bind(i64::from(number))
                .bind(now_ms)
                .bind(limit)
                .fetch_all(&mut *tx)
                .await?;
            if taken.is_empty() {
                return Ok(Vec::new());
            }
            let ids: Vec<i64> = taken.iter().map(|t| t.subscriber_id).collect();
            let people: Vec<Person> = db::bind_rows(sqlx::query(db::CLAIM_PEOPLE), &ids)?
                .try_map(|r| Person::from_row(&r))
                .fetch_all(&mut *tx)
                .await?;
            let sorted = sort_out(taken, people)?;
            if !sorted.skipped.is_empty() {
                db::bind_rows(sqlx::query(db::SKIP_LEFT).bind(now_ms), &sorted.skipped)?.execute(&mut *tx).await?;
            }
            Ok(sorted.claimed)
        })
    }

    /// Extends the leases `owner` holds on `ids` (the deliveries it has claimed and not yet
    /// recorded): by id, so that no index on the owner has to follow every claim.
    pub async fn renew_leases(
        &self,
        owner: &str,
        ids: &[i64],
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<u64, StoreError> {
        if ids.is_empty() {
            return Ok(0);
        }
        // In id order, as `record` takes them: see `Plan`.
        let mut ids = ids.to_vec();
        ids.sort_unstable();
        let ids = &ids;
        let until = ms(now) + lease_ms(lease);
        with_backend!(self, |pool, db| {
            retrying(db::transient, || async move {
                let q = db::bind_rows(sqlx::query(db::RENEW_LEASES).bind(until), ids)?;
                Ok(q.bind(owner).execute(pool).await?.rows_affected())
            })
            .await
        })
    }

    /// Writes a batch of outcomes at once, one statement per kind of outcome. A sent message is
    /// recorded whoever holds its lease now: it went out. So is a permanent failure, unless the
    /// message went out after all. A deferral or a release is the lease holder's alone: a worker
    /// whose lease another took over leaves the delivery to that one.
    pub async fn record(&self, owner: &str, outcomes: &[Outcome], now: DateTime<Utc>) -> Result<(), StoreError> {
        self.record_via(owner, outcomes, &[], now).await
    }

    /// [`Store::record`], with the relay (`host:port`) each outcome came from: `relays[i]` is
    /// `outcomes[i]`'s, written in the same statements.
    pub async fn record_via(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        relays: &[Option<String>],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let plan = Plan::new(outcomes, relays);
        let plan = &plan;
        let now_ms = ms(now);
        if plan.only_sent() {
            return with_backend!(self, |pool, db| {
                retrying(db::transient, || async move {
                    db::bind_rows(sqlx::query(db::RECORD_SENT).bind(now_ms), &plan.sent)?.execute(pool).await?;
                    Ok(())
                })
                .await
            });
        }
        in_tx!(self, |tx, db| {
            if !plan.sent.is_empty() {
                db::bind_rows(sqlx::query(db::RECORD_SENT).bind(now_ms), &plan.sent)?.execute(&mut *tx).await?;
            }
            if !plan.deferred.is_empty() {
                db::bind_rows(sqlx::query(db::RECORD_DEFERRED).bind(now_ms), &plan.deferred)?
                    .bind(owner)
                    .execute(&mut *tx)
                    .await?;
            }
            if !plan.failed.is_empty() {
                db::bind_rows(sqlx::query(db::RECORD_FAILED).bind(now_ms), &plan.failed)?.execute(&mut *tx).await?;
            }
            if !plan.bounces.is_empty() {
                let changed: HashSet<i64> =
                    db::bind_rows(sqlx::query(db::RECORD_BOUNCES).bind(now_ms), &plan.bounced_ids())?
                        .try_map(|r| r.try_get::<i64, _>(0))
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .collect();
                consent::record_many(&mut tx, &bounce_events(&plan.bounces, &changed), ConsentEvent::Bounce, now)
                    .await?;
            }
            if !plan.released.is_empty() {
                db::bind_rows(sqlx::query(db::RECORD_RELEASED), &plan.released)?.bind(owner).execute(&mut *tx).await?;
            }
            Ok(())
        })
    }

    /// Hands back at once every delivery still to send that `owner` holds; how many.
    pub async fn release(&self, owner: &str) -> Result<u64, StoreError> {
        Ok(with_backend!(self, |pool, db| sqlx::query(RELEASE).bind(owner).execute(pool).await?.rows_affected()))
    }

    /// The earliest moment a delivery of the issue can be claimed: for each delivery still to
    /// send, the later of its next attempt and the end of its lease. None when nothing is left.
    pub async fn next_due(&self, number: u32) -> Result<Option<DateTime<Utc>>, StoreError> {
        let t: Option<i64> = with_backend!(self, |pool, db| {
            sqlx::query_scalar(db::NEXT_DUE).bind(i64::from(number)).fetch_one(pool).await?
        });
        Ok(t.map(from_ms))
    }

    /// Marks the issue sent once no delivery of it is left to send; false while one is, or when
    /// it was not going out.
    pub async fn finish_issue_if_done(&self, number: u32, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let done = with_backend!(self, |pool, db| {
            sqlx::query(FINISH_ISSUE).bind(ms(now)).bind(i64::from(number)).execute(pool).await?.rows_affected()
        });
        Ok(done > 0)
    }

    /// The deliveries of an issue refused for good, by address.
    pub async fn failures(&self, number: u32) -> Result<Vec<Failure>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(FAILURES).bind(i64::from(number)).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(email, reply, attempts)| Failure {
                email,
                reply,
                attempts: u32::try_from(attempts).unwrap_or_default(),
            })
            .collect())
    }

    /// The deliveries of an issue waiting for another attempt, the soonest first.
    pub async fn deferred(&self, number: u32) -> Result<Vec<Deferred>, StoreError> {
        let rows: Vec<(String, Option<String>, i64, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(DEFERRED).bind(i64::from(number)).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(email, reply, attempts, next)| Deferred {
                email,
                reply,
                attempts: u32::try_from(attempts).unwrap_or_default(),
                next_attempt: from_ms(next),
            })
            .collect())
    }

    /// What the issue sent through each relay, by the relay of each delivery's last outcome,
    /// in the order of the relays' names.
    pub async fn relays(&self, number: u32) -> Result<Vec<RelayUse>, StoreError> {
        let rows: Vec<(String, String, i64, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(RELAYS).bind(i64::from(number)).fetch_all(pool).await?);
        let mut out: Vec<RelayUse> = Vec::new();
        // The (state, time) of each relay's last outcome.
        let mut last: Vec<(String, i64)> = Vec::new();
        for (relay, state, n, at) in rows {
            let state: DeliveryState = parse(&state)?;
            if out.last().is_none_or(|r| r.relay != relay) {
                out.push(RelayUse { relay: relay.clone(), ..RelayUse::default() });
                last.push((String::new(), i64::MIN));
            }
            let (Some(r), Some(l)) = (out.last_mut(), last.last_mut()) else { continue };
            match state {
                DeliveryState::Sent => r.sent += count(n),
                DeliveryState::Deferred => r.deferred += count(n),
                DeliveryState::Failed => r.failed += count(n),
                // A delivery skipped or queued again keeps the relay it last went to, but says
                // nothing more about it.
                DeliveryState::Queued | DeliveryState::Skipped => {}
            }
            if at > l.1 {
                *l = (state.to_string(), at);
            }
        }
        for (r, (state, at)) in out.iter_mut().zip(last) {
            let relay = r.relay.clone();
            r.last_reply = with_backend!(self, |pool, db| {
                sqlx::query_scalar::<_, Option<String>>(RELAY_LAST_REPLY)
                    .bind(i64::from(number))
                    .bind(&state)
                    .bind(&relay)
                    .bind(at)
                    .fetch_optional(pool)
                    .await?
                    .flatten()
            });
        }
        Ok(out)
    }

    /// Deliveries by their issue's status and their state, for metrics: the whole ledger, whichever
    /// process recorded each outcome.
    pub async fn ledger_counts(&self) -> Result<LedgerCounts, StoreError> {
        let rows: Vec<(String, String, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(LEDGER_COUNTS).fetch_all(pool).await?);
        let mut out = LedgerCounts::default();
        for (issue, state, n) in rows {
            out.add(parse(&issue)?, parse(&state)?, count(n));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn taken(id: i64, subscriber_id: i64, attempts: i64) -> Taken {
        Taken { id, subscriber_id, attempts, variant: None }
    }

    fn person(id: i64, email: &str, status: &str) -> Person {
        Person {
            id,
            email: email.into(),
            name: format!("N{id}"),
            attributes: r#"{"city":"Oslo"}"#.into(),
            status: status.into(),
            topics: None,
        }
    }

    #[test]
    fn a_claim_hands_out_the_active_and_skips_who_left_saying_why() {
        let sorted = sort_out(
            vec![taken(9, 3, 0), taken(4, 1, 2), taken(7, 2, 0), taken(5, 4, 1)],
            vec![
                person(1, "a@example.org", "active"),
                person(2, "b@example.org", "unsubscribed"),
                person(3, "c@example.org", "active"),
                person(4, "d@example.org", "bounced"),
            ],
        )
        .expect("sorted");
        let claimed: Vec<(i64, i64, &str, u32)> =
            sorted.claimed.iter().map(|c| (c.delivery_id, c.subscriber_id, c.email.as_str(), c.attempts)).collect();
        assert_eq!(claimed, [(4, 1, "a@example.org", 2), (9, 3, "c@example.org", 0)], "active ones, in delivery order");
        assert_eq!(sorted.claimed[0].name, "N1");
        assert_eq!(sorted.claimed[0].attributes.get("city").map(String::as_str), Some("Oslo"));
        assert_eq!(
            sorted.skipped,
            [(5, "subscriber is bounced".to_owned()), (7, "subscriber is unsubscribed".to_owned())]
        );
    }

    #[test]
    fn unconfirmed_is_not_active_either() {
        let sorted = sort_out(vec![taken(1, 1, 0)], vec![person(1, "a@example.org", "unconfirmed")]).expect("sorted");
        assert!(sorted.claimed.is_empty());
        assert_eq!(sorted.skipped, [(1, "subscriber is unconfirmed".to_owned())]);
    }

    #[test]
    fn a_claim_of_a_delivery_without_its_subscriber_or_with_an_unreadable_one_is_refused() {
        let missing = sort_out(vec![taken(1, 8, 0)], vec![person(1, "a@example.org", "active")]);
        assert!(matches!(missing, Err(StoreError::Corrupt(_))), "{missing:?}");
        let status = sort_out(vec![taken(1, 1, 0)], vec![person(1, "a@example.org", "gone")]);
        assert!(matches!(status, Err(StoreError::Corrupt(_))), "{status:?}");
        let email = sort_out(vec![taken(1, 1, 0)], vec![person(1, "not an address", "active")]);
        assert!(matches!(email, Err(StoreError::Corrupt(_))), "{email:?}");
    }

    #[test]
    fn unreadable_attributes_are_none_rather_than_a_lost_claim() {
        let mut p = person(1, "a@example.org", "active");
        p.attributes = "{".into();
        let sorted = sort_out(vec![taken(1, 1, 0)], vec![p]).expect("sorted");
        assert!(sorted.claimed[0].attributes.is_empty());
    }

    fn at(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + s, 0).single().expect("time")
    }

    #[test]
    fn a_batch_is_split_by_kind_each_in_delivery_order() {
        let outcomes = [
            Outcome::Released { delivery_id: 8 },
            Outcome::Sent { delivery_id: 5, message_id: "<5@e>".into(), reply: Some("250 ok".into()) },
            Outcome::Deferred { delivery_id: 7, reply: "451".into(), retry_at: at(60), spent: true },
            Outcome::Failed { delivery_id: 6, reply: "550 b".into(), bounce: None },
            Outcome::Sent { delivery_id: 2, message_id: "<2@e>".into(), reply: None },
            Outcome::Deferred { delivery_id: 3, reply: "421".into(), retry_at: at(30), spent: false },
            Outcome::Released { delivery_id: 1 },
            Outcome::Failed { delivery_id: 4, reply: "550 a".into(), bounce: None },
        ];
        let relays: Vec<Option<String>> =
            (0..outcomes.len()).map(|i| (i % 2 == 1).then(|| format!("r{i}.example:25"))).collect();
        let plan = Plan::new(&outcomes, &relays);
        assert_eq!(plan.sent, [(2, "<2@e>", None, None), (5, "<5@e>", Some("250 ok"), Some("r1.example:25"))]);
        assert_eq!(
            plan.deferred,
            [(3, "421", ms(at(30)), 0, Some("r5.example:25")), (7, "451", ms(at(60)), 1, None)],
            "a throttling reply spends nothing; each outcome keeps its own relay"
        );
        assert_eq!(plan.failed, [(4, "550 a", Some("r7.example:25")), (6, "550 b", Some("r3.example:25"))]);
        assert_eq!(plan.released, [1, 8]);
        assert!(plan.bounces.is_empty());
        assert!(!plan.only_sent());
    }

    #[test]
    fn only_sends_need_no_transaction() {
        let sent = [Outcome::Sent { delivery_id: 1, message_id: "<1@e>".into(), reply: None }];
        assert!(Plan::new(&sent, &[]).only_sent());
        let released = [Outcome::Released { delivery_id: 1 }];
        assert!(!Plan::new(&released, &[]).only_sent());
    }

    #[test]
    fn a_subscriber_refused_twice_in_a_batch_bounces_once_with_the_first_reply_received() {
        let outcomes = [
            Outcome::Failed { delivery_id: 9, reply: "550 first".into(), bounce: Some(3) },
            Outcome::Failed { delivery_id: 2, reply: "550 unsendable".into(), bounce: None },
            Outcome::Failed { delivery_id: 4, reply: "550 other".into(), bounce: Some(1) },
            Outcome::Failed { delivery_id: 5, reply: "550 second".into(), bounce: Some(3) },
        ];
        let plan = Plan::new(&outcomes, &[]);
        assert_eq!(plan.bounces, [(3, "550 first"), (1, "550 other")], "in the batch's order, each once");
        assert_eq!(plan.bounced_ids(), [3, 1]);
        assert_eq!(
            plan.failed,
            [(2, "550 unsendable", None), (4, "550 other", None), (5, "550 second", None), (9, "550 first", None)],
            "every failure is recorded, bounce or not"
        );
    }

    #[test]
    fn only_who_a_bounce_changed_from_active_gets_a_consent_event() {
        let bounces = [(3, "550 a"), (1, "550 b"), (7, "550 c")];
        let changed: HashSet<i64> = [7, 3].into_iter().collect();
        assert_eq!(bounce_events(&bounces, &changed), [(3, "550 a"), (7, "550 c")]);
        assert!(bounce_events(&bounces, &HashSet::new()).is_empty(), "already gone: nothing to note");
    }
}
