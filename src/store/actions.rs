//! The log of actions: who did what on the publisher's side, and when. Written once per action,
//! never changed; read newest first, for the dashboard's log and an issue's history.

use chrono::{DateTime, Utc};

use super::{
    Store, StoreError,
    backend::{from_ms, in_tx, issue_number, ms, with_backend},
};
use crate::domain::{Actor, EmailAddress};

/// The subscriber is named by id, found by the address's key, so that the log holds no address
/// of a reader and forgetting one leaves nothing here to read back.
pub(super) const RECORD: &str = "INSERT INTO actions (at, actor, action, issue_number, subscriber_id, detail) \
     VALUES ($1, $2, $3, $4, (SELECT id FROM subscribers WHERE lower(email) = $5), $6)";
const RECENT: &str = "SELECT a.at, a.actor, a.action, a.issue_number, s.email, a.detail FROM actions a \
     LEFT JOIN subscribers s ON s.id = a.subscriber_id ORDER BY a.id DESC LIMIT $1";
const OF_ISSUE: &str = "SELECT a.at, a.actor, a.action, a.issue_number, s.email, a.detail FROM actions a \
     LEFT JOIN subscribers s ON s.id = a.subscriber_id WHERE a.issue_number = $1 ORDER BY a.id DESC";

/// An action to record.
#[derive(Debug, Clone)]
pub struct NewAction<'a> {
    pub actor: &'a Actor,
    /// What was done, in a few words: `approved`, `held`, `added a subscriber`…
    pub action: &'a str,
    pub issue: Option<u32>,
    pub subscriber: Option<&'a EmailAddress>,
    /// More, where it helps: the new subject, how many rows an import took.
    pub detail: &'a str,
}

/// A recorded action, as the log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionRecord {
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub issue: Option<u32>,
    /// The subscriber's address as stored now (a forgotten one reads as its digest).
    pub subscriber: Option<String>,
    pub detail: String,
}

#[derive(sqlx::FromRow)]
struct Row {
    at: i64,
    actor: String,
    action: String,
    issue_number: Option<i64>,
    email: Option<String>,
    detail: String,
}

impl TryFrom<Row> for ActionRecord {
    type Error = StoreError;

    fn try_from(r: Row) -> Result<Self, StoreError> {
        Ok(Self {
            at: from_ms(r.at),
            actor: r.actor,
            action: r.action,
            issue: r.issue_number.map(issue_number).transpose()?,
            subscriber: r.email,
            detail: r.detail,
        })
    }
}

impl Store {
    /// Records `action` as done at `now`.
    pub async fn record_action(&self, action: &NewAction<'_>, now: DateTime<Utc>) -> Result<(), StoreError> {
        let actor = action.actor.label();
        let key = action.subscriber.map(EmailAddress::key);
        in_tx!(self, |tx, db| {
            sqlx::query(RECORD)
                .bind(ms(now))
                .bind(actor.as_str())
                .bind(action.action)
                .bind(action.issue.map(i64::from))
                .bind(key.as_deref())
                .bind(action.detail)
                .execute(&mut *tx)
                .await?;
            Ok(())
        })
    }

    /// The last `limit` actions, newest first.
    pub async fn recent_actions(&self, limit: u32) -> Result<Vec<ActionRecord>, StoreError> {
        let rows: Vec<Row> =
            with_backend!(self, |pool, db| sqlx::query_as(RECENT).bind(i64::from(limit)).fetch_all(pool).await?);
        rows.into_iter().map(ActionRecord::try_from).collect()
    }

    /// Every action on issue `number`, newest first.
    pub async fn issue_actions(&self, number: u32) -> Result<Vec<ActionRecord>, StoreError> {
        let rows: Vec<Row> =
            with_backend!(self, |pool, db| sqlx::query_as(OF_ISSUE).bind(i64::from(number)).fetch_all(pool).await?);
        rows.into_iter().map(ActionRecord::try_from).collect()
    }
}
