//! Subscribers as the publisher sees them: read one by one, listed or paged, counted by status;
//! their status changed, and forgotten.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    ConsentEvent, Store, StoreError, SubscriberRecord,
    backend::{count, from_ms, in_tx, ms, parse, with_backend},
    consent, keys, preferences,
};
use crate::domain::{EmailAddress, ListName, SubscriberStatus};

/// A subscriber with the names of their lists, `;`-separated (a list name holds no `;`).
pub(super) const ONE: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, s.edition, s.topics, s.paused_until, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) AS lists \
     FROM subscribers s WHERE lower(s.email) = $1";
/// Every subscriber not forgotten, of status $1 and on list $2 where given, in the order they came.
const ALL: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, s.edition, s.topics, s.paused_until, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) AS lists \
     FROM subscribers s WHERE s.email NOT LIKE 'forgotten:%' \
     AND (CAST($1 AS TEXT) IS NULL OR s.status = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                             WHERE m.subscriber_id = s.id AND l.name = $2)) \
     ORDER BY s.id";
/// The admin API's pages of subscribers, in address order from after $1. Both backends sort the
/// address bytewise (PostgreSQL's column is COLLATE "C"), so pages end and resume at the same
/// addresses, and the address's unique index serves the order.
pub(super) const PAGE: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, s.edition, s.topics, s.paused_until, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) AS lists \
     FROM subscribers s WHERE s.email > $1 AND s.email NOT LIKE 'forgotten:%' \
     AND (CAST($2 AS TEXT) IS NULL OR s.status = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                             WHERE m.subscriber_id = s.id AND l.name = $3)) \
     ORDER BY s.email LIMIT $4";
/// The dashboard's pages of a search: as [`PAGE`], of those whose address or name holds $5 (a
/// lower-case `LIKE` pattern; `''` for everyone).
const MATCHING: &str = "SELECT s.id, s.email, s.name, s.status, s.attributes, s.edition, s.topics, s.paused_until, \
     (SELECT string_agg(l.name, ';') FROM memberships m JOIN lists l ON l.id = m.list_id WHERE m.subscriber_id = s.id) AS lists \
     FROM subscribers s WHERE s.email > $1 AND s.email NOT LIKE 'forgotten:%' \
     AND (CAST($2 AS TEXT) IS NULL OR s.status = $2) \
     AND (CAST($3 AS TEXT) IS NULL OR EXISTS (SELECT 1 FROM memberships m JOIN lists l ON l.id = m.list_id \
                                             WHERE m.subscriber_id = s.id AND l.name = $3)) \
     AND (CAST($5 AS TEXT) = '' OR lower(s.email) LIKE $5 ESCAPE '\\' OR lower(s.name) LIKE $5 ESCAPE '\\') \
     ORDER BY s.email LIMIT $4";
const SET_STATUS: &str = "UPDATE subscribers SET status = $1, updated_at = $2 WHERE id = $3";
/// A row that holds `forgotten`'s form already: the address was forgotten before.
const FORGOTTEN_BEFORE: &str = "SELECT id FROM subscribers WHERE lower(email) = $1";
const FORGET: &str =
    "UPDATE subscribers SET email = $1, name = $2, attributes = $3, status = $4, updated_at = $5 WHERE id = $6";
const LEAVE_LISTS: &str = "DELETE FROM memberships WHERE subscriber_id = $1";
const BY_STATUS: &str = "SELECT status, count(*) FROM subscribers GROUP BY status";

#[derive(sqlx::FromRow)]
struct Row {
    id: i64,
    email: String,
    name: String,
    status: String,
    attributes: String,
    edition: Option<String>,
    topics: Option<String>,
    paused_until: Option<i64>,
    lists: Option<String>,
}

impl TryFrom<Row> for SubscriberRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        let mut lists: Vec<String> = r.lists.map(|l| l.split(';').map(str::to_owned).collect()).unwrap_or_default();
        lists.sort();
        Ok(Self {
            id: r.id,
            email: r.email,
            name: r.name,
            status: parse(&r.status)?,
            attributes: serde_json::from_str(&r.attributes).unwrap_or_default(),
            lists,
            edition: r.edition,
            topics: preferences::topic_keys(r.topics.as_deref()),
            paused_until: r.paused_until.map(from_ms),
        })
    }
}

/// A `LIKE` pattern that finds `text` anywhere, its own `%`, `_` and `\\` taken literally;
/// empty for no text.
fn like_pattern(text: &str) -> String {
    let text = text.trim().to_lowercase();
    if text.is_empty() {
        return String::new();
    }
    let mut out = String::from("%");
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Whether asking for `wanted` changes a subscriber who is `current`: a second click on an
/// unsubscribe link records nothing.
fn changes(current: SubscriberStatus, wanted: SubscriberStatus) -> bool {
    current != wanted
}

/// What forgetting writes over a subscriber's row.
#[derive(Debug, PartialEq, Eq)]
struct Forgotten {
    email: String,
    name: &'static str,
    attributes: &'static str,
    status: SubscriberStatus,
}

/// Forgetting row `id` of `email` keeps nothing to read the address or the person back from, and
/// a status no import undoes. The address becomes its digest, by which an import still
/// recognises it; when a row forgotten before holds that digest already (the address signed up
/// again since), that row goes on being the one recognised, and this one takes a form of its
/// own, which no address can have.
fn forgotten(email: &EmailAddress, id: i64, forgotten_before: bool) -> Forgotten {
    let digest = keys::forgotten(email);
    Forgotten {
        email: if forgotten_before { format!("{digest}:{id}") } else { digest },
        name: "",
        attributes: "{}",
        status: SubscriberStatus::Unsubscribed,
    }
}

impl Store {
    pub async fn subscriber(&self, email: &EmailAddress) -> Result<Option<SubscriberRecord>, StoreError> {
        let row: Option<Row> =
            with_backend!(self, |pool, db| sqlx::query_as(ONE).bind(email.key()).fetch_optional(pool).await?);
        row.map(SubscriberRecord::try_from).transpose()
    }

    /// Every subscriber not forgotten, of `status` and on `list` where given, in the order they
    /// came.
    pub async fn subscribers(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let rows: Vec<Row> = with_backend!(self, |pool, db| {
            sqlx::query_as(ALL)
                .bind(status.map(SubscriberStatus::as_str))
                .bind(list.map(AsRef::<str>::as_ref))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(SubscriberRecord::try_from).collect()
    }

    /// One page of subscribers in address order: at most `limit`, each after `after`.
    pub async fn subscribers_page(
        &self,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
        after: Option<&EmailAddress>,
        limit: u32,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let rows: Vec<Row> = with_backend!(self, |pool, db| {
            sqlx::query_as(PAGE)
                .bind(after.map_or("", EmailAddress::as_str))
                .bind(status.map(SubscriberStatus::as_str))
                .bind(list.map(AsRef::<str>::as_ref))
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(SubscriberRecord::try_from).collect()
    }

    /// One page of the subscribers whose address or name holds `text` (whatever the case of its
    /// letters), in address order: at most `limit`, each after `after`.
    pub async fn search_subscribers(
        &self,
        text: &str,
        list: Option<&ListName>,
        status: Option<SubscriberStatus>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SubscriberRecord>, StoreError> {
        let pattern = like_pattern(text);
        let rows: Vec<Row> = with_backend!(self, |pool, db| {
            sqlx::query_as(MATCHING)
                .bind(after.unwrap_or(""))
                .bind(status.map(SubscriberStatus::as_str))
                .bind(list.map(AsRef::<str>::as_ref))
                .bind(i64::from(limit))
                .bind(pattern.as_str())
                .fetch_all(pool)
                .await?
        });
        rows.into_iter().map(SubscriberRecord::try_from).collect()
    }

    /// Subscribers by status, for metrics; every status is there, at zero when nobody is.
    pub async fn status_counts(&self) -> Result<BTreeMap<String, u64>, StoreError> {
        let rows: Vec<(String, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(BY_STATUS).fetch_all(pool).await?);
        let mut out: BTreeMap<String, u64> = SubscriberStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect();
        out.extend(rows.into_iter().map(|(status, n)| (status, count(n))));
        Ok(out)
    }

    /// Gives the address `status`, recording `event` in the consent record; false when the
    /// address is unknown or already had that status. The address's row is locked first, so
    /// that two changes of it take their turn.
    pub async fn set_status(
        &self,
        email: &EmailAddress,
        status: SubscriberStatus,
        event: ConsentEvent,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        in_tx!(self, |tx, db| {
            let row: Option<(i64, String)> =
                sqlx::query_as(db::LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some((id, current)) = row else { return Ok(false) };
            if !changes(parse(&current)?, status) {
                return Ok(false);
            }
            sqlx::query(SET_STATUS).bind(status.as_str()).bind(ms(now)).bind(id).execute(&mut *tx).await?;
            consent::record(&mut tx, Some(id), event, source, now).await?;
            Ok(true)
        })
    }

    /// Unsubscribes the address and forgets it: its name, attributes and lists go, the address
    /// stays only as a digest an import recognises. False when the address is unknown.
    pub async fn forget(&self, email: &EmailAddress, source: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        in_tx!(self, |tx, db| {
            let row: Option<(i64, String)> =
                sqlx::query_as(db::LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some((id, _)) = row else { return Ok(false) };
            let before: Option<i64> =
                sqlx::query_scalar(FORGOTTEN_BEFORE).bind(keys::forgotten(email)).fetch_optional(&mut *tx).await?;
            let row = forgotten(email, id, before.is_some());
            sqlx::query(FORGET)
                .bind(&row.email)
                .bind(row.name)
                .bind(row.attributes)
                .bind(row.status.as_str())
                .bind(ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(LEAVE_LISTS).bind(id).execute(&mut *tx).await?;
            consent::record(&mut tx, Some(id), ConsentEvent::Forget, source, now).await?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_different_status_is_a_change() {
        assert!(!changes(SubscriberStatus::Unsubscribed, SubscriberStatus::Unsubscribed));
        assert!(changes(SubscriberStatus::Active, SubscriberStatus::Unsubscribed));
        assert!(changes(SubscriberStatus::Unconfirmed, SubscriberStatus::Unsubscribed));
    }

    #[test]
    fn a_forgotten_row_keeps_nothing_of_the_person() {
        let email: EmailAddress = "Ann.Smith@example.org".parse().expect("address");
        let row = forgotten(&email, 7, false);
        assert_eq!(row.email, keys::forgotten(&email), "what an import recognises");
        assert!(!row.email.to_lowercase().contains("ann") && !row.email.contains('@'));
        assert!(row.email.starts_with("forgotten:"), "left out of every listing");
        assert_eq!((row.name, row.attributes), ("", "{}"));
        assert!(row.status.is_final_no(), "no import brings it back");
    }

    #[test]
    fn an_address_forgotten_twice_keeps_the_first_digest_where_it_is() {
        let email: EmailAddress = "ann@example.org".parse().expect("address");
        let again = forgotten(&email, 42, true);
        assert_ne!(again.email, keys::forgotten(&email));
        assert_ne!(again.email, forgotten(&email, 43, true).email, "each row its own");
        assert!(again.email.starts_with("forgotten:") && !again.email.contains('@'));
        assert!(!keys::forgotten_forms(&email).contains(&again.email), "an import finds the first row, not this one");
    }
}
