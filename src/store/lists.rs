//! Lists: their ids, who is on them, how many of each status, and the digest of each list file
//! last synced.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};

use super::{
    ListCounts, Store, StoreError,
    backend::{Dialect, count, ms, with_backend},
};
use crate::domain::{ListName, SubscriberStatus};

/// Creates the list unless another transaction did; two statements, not one, since a list
/// another transaction creates meanwhile is waited for by the insert, and only a new
/// statement's snapshot sees it.
const ADD: &str = "INSERT INTO lists (name) VALUES ($1) ON CONFLICT DO NOTHING";
const ID: &str = "SELECT id FROM lists WHERE name = $1";
/// Every list with its members by status (a list without members has one row, of no status).
const COUNTS: &str = "SELECT l.name, s.status, count(s.id) FROM lists l \
     LEFT JOIN memberships m ON m.list_id = l.id LEFT JOIN subscribers s ON s.id = m.subscriber_id \
     GROUP BY l.name, s.status ORDER BY l.name";
const NOTE_FILE: &str = "INSERT INTO list_files (list, digest, changed_at) VALUES ($1, $2, $3) \
     ON CONFLICT (list) DO UPDATE SET digest = excluded.digest, changed_at = excluded.changed_at \
     WHERE list_files.digest <> excluded.digest";

/// List ids met during one transaction: an import of a million rows names the same few lists.
pub(super) type ListIds = HashMap<ListName, i64>;

/// The id of `list`, created if new, inside `tx`.
pub(super) async fn id<DB>(
    tx: &mut Transaction<'static, DB>,
    list: &ListName,
    ids: &mut ListIds,
) -> Result<i64, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    if let Some(id) = ids.get(list) {
        return Ok(*id);
    }
    sqlx::query(ADD).bind(list.as_ref()).execute(&mut **tx).await?;
    let id: i64 = sqlx::query_scalar(ID).bind(list.as_ref()).fetch_one(&mut **tx).await?;
    ids.insert(list.clone(), id);
    Ok(id)
}

/// Puts each (list id, subscriber id) of `pairs` on its list, inside `tx`; returns the
/// subscribers who joined a list they were not on.
pub(super) async fn join<DB>(
    tx: &mut Transaction<'static, DB>,
    pairs: &[(i64, i64)],
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
{
    if pairs.is_empty() {
        return Ok(HashSet::new());
    }
    let joined: Vec<i64> =
        sqlx::query_scalar_with(DB::JOIN_LISTS, DB::memberships(pairs, ms(now))?).fetch_all(&mut **tx).await?;
    Ok(joined.into_iter().collect())
}

/// Each list's rows of `COUNTS` as its counts, every status present.
fn counted(rows: Vec<(String, Option<String>, i64)>) -> Vec<ListCounts> {
    let mut out: Vec<ListCounts> = Vec::new();
    for (name, status, n) in rows {
        if out.last().is_none_or(|l| l.name != name) {
            out.push(ListCounts {
                counts: SubscriberStatus::ALL.iter().map(|s| (s.as_str().to_owned(), 0)).collect(),
                name,
            });
        }
        if let (Some(status), Some(last)) = (status, out.last_mut()) {
            last.counts.insert(status, count(n));
        }
    }
    out
}

impl Store {
    /// Every list with its members by status.
    pub async fn list_counts(&self) -> Result<Vec<ListCounts>, StoreError> {
        let rows: Vec<(String, Option<String>, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(COUNTS).fetch_all(pool).await?);
        Ok(counted(rows))
    }

    /// Notes `digest` as the content of `list`'s file; true when it differs from the one noted
    /// before (or none was).
    pub async fn note_list_file(&self, list: &ListName, digest: &str, now: DateTime<Utc>) -> Result<bool, StoreError> {
        let changed = with_backend!(self, |pool, db| {
            sqlx::query(NOTE_FILE).bind(list.as_ref()).bind(digest).bind(ms(now)).execute(pool).await?.rows_affected()
        });
        Ok(changed > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_list_shows_every_status() {
        let rows = vec![
            ("news".to_owned(), None, 0),
            ("weekly".to_owned(), Some("active".to_owned()), 3),
            ("weekly".to_owned(), Some("bounced".to_owned()), 1),
        ];
        let counts = counted(rows);
        assert_eq!(counts.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(), ["news", "weekly"]);
        assert!(counts[0].counts.values().all(|n| *n == 0), "a list without members counts zeros");
        assert_eq!(counts[0].counts.len(), SubscriberStatus::ALL.len());
        assert_eq!(counts[1].counts.get("active"), Some(&3));
        assert_eq!(counts[1].counts.get("bounced"), Some(&1));
        assert_eq!(counts[1].counts.get("unsubscribed"), Some(&0));
    }
}
