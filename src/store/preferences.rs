//! A reader's preferences as the store keeps them: the edition's key in `subscribers.edition`
//! (NULL = the default edition) and the topics' keys in `subscribers.topics`, sorted, each closed
//! by `;` on both sides (NULL = every topic), so that equal choices are equal strings (readers are
//! grouped by them) and one topic is found with `LIKE '%;key;%'`.
//!
//! A reader's page changes them in one transaction with a `preferences` consent event.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Database, Encode, Executor, IntoArguments, Transaction, Type};

use super::{
    ConsentEvent, NewSubscriber, Store, StoreError,
    backend::{in_tx, ms, with_backend},
    consent,
};
use crate::domain::EmailAddress;

/// A reader's choices as read before a change, by the row's id.
const CURRENT: &str = "SELECT name, edition, topics, paused_until FROM subscribers WHERE id = $1";
/// Active readers by their choices: as many rows as distinct choices, however many readers.
const BY_CHOICE: &str =
    "SELECT edition, topics, count(*) FROM subscribers WHERE status = 'active' GROUP BY edition, topics";
const CHOICES: &str = "SELECT edition, topics FROM subscribers WHERE id = $1";
const SET_CHOICES: &str = "UPDATE subscribers SET edition = $1, topics = $2, updated_at = $3 WHERE id = $4";
const SET: &str =
    "UPDATE subscribers SET name = $1, edition = $2, topics = $3, paused_until = $4, updated_at = $5 WHERE id = $6";

/// What a pause becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PauseChange {
    /// As it is.
    Keep,
    /// No pause: the next issue reaches them.
    Resume,
    /// No issue reaches them before this.
    Until(DateTime<Utc>),
}

/// A change of a reader's preferences, in keys, as `subscribers` decided it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreferencesChange {
    /// The edition's key; `None` for the default edition.
    pub edition: Option<String>,
    /// The topics' keys; empty for every topic.
    pub topics: Vec<String>,
    /// The name, cleaned (`""` for none); `None` keeps it.
    pub name: Option<String>,
    pub pause: PauseChange,
}

/// A reader's row as preferences see it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Chosen {
    name: String,
    edition: Option<String>,
    topics: Option<String>,
    paused_until: Option<i64>,
}

/// What `change` makes of `current`; `None` when it changes nothing, so that a page sent twice
/// records one consent event.
fn apply(current: &Chosen, change: &PreferencesChange) -> Option<Chosen> {
    let next = Chosen {
        name: change.name.clone().unwrap_or_else(|| current.name.clone()),
        edition: change.edition.clone(),
        topics: topics_column(&change.topics),
        paused_until: match change.pause {
            PauseChange::Keep => current.paused_until,
            PauseChange::Resume => None,
            PauseChange::Until(t) => Some(ms(t)),
        },
    };
    (next != *current).then_some(next)
}

/// The edition and topics columns after an imported row's cells (`None`: the cell's column is
/// not in the file, so what is stored stays), or `None` when they change nothing.
fn imported(
    current: (Option<String>, Option<String>),
    row: &NewSubscriber,
) -> Option<(Option<String>, Option<String>)> {
    let next = (
        row.edition.clone().unwrap_or_else(|| current.0.clone()),
        row.topics.as_ref().map_or_else(|| current.1.clone(), |t| topics_column(t)),
    );
    (next != current).then_some(next)
}

/// Writes the edition and topics that an import's rows name, each row's change with a
/// `preferences` consent event, inside the import's transaction; returns the subscribers whose
/// choices changed. Rows without those columns cost nothing.
pub(super) async fn write_imported<DB>(
    tx: &mut Transaction<'static, DB>,
    rows: &[(i64, &NewSubscriber)],
    source: &str,
    now: DateTime<Utc>,
) -> Result<HashSet<i64>, StoreError>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> (Option<String>, Option<String>): sqlx::FromRow<'r, DB::Row>,
{
    let mut changed = HashSet::new();
    for (id, row) in rows.iter().filter(|(_, r)| r.edition.is_some() || r.topics.is_some()) {
        let current: (Option<String>, Option<String>) = sqlx::query_as(CHOICES).bind(*id).fetch_one(&mut **tx).await?;
        let Some((edition, topics)) = imported(current, row) else { continue };
        sqlx::query(SET_CHOICES).bind(edition).bind(topics).bind(ms(now)).bind(*id).execute(&mut **tx).await?;
        consent::record(tx, Some(*id), ConsentEvent::Preferences, source, now).await?;
        changed.insert(*id);
    }
    Ok(changed)
}

/// How many active readers chose what, by key (`None`: the default edition, or every topic).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChoiceCounts {
    pub editions: BTreeMap<Option<String>, u64>,
    pub topics: BTreeMap<Option<String>, u64>,
}

/// Sums rows of (edition, topics column, readers) into counts per edition and per topic; a reader
/// of several topics counts once for each.
fn count_choices(rows: Vec<(Option<String>, Option<String>, i64)>) -> ChoiceCounts {
    let mut counts = ChoiceCounts::default();
    for (edition, topics, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        *counts.editions.entry(edition).or_default() += n;
        let keys = topic_keys(topics.as_deref());
        if keys.is_empty() {
            *counts.topics.entry(None).or_default() += n;
        }
        for k in keys {
            *counts.topics.entry(Some(k)).or_default() += n;
        }
    }
    counts
}

impl Store {
    /// How many active readers chose each edition and each topic (the dashboard's lists page).
    pub async fn choice_counts(&self) -> Result<ChoiceCounts, StoreError> {
        let rows: Vec<(Option<String>, Option<String>, i64)> =
            with_backend!(self, |pool, db| sqlx::query_as(BY_CHOICE).fetch_all(pool).await?);
        Ok(count_choices(rows))
    }

    /// Changes the preferences of `email`, with a `preferences` consent event, in one
    /// transaction. False when the address is unknown or nothing changed.
    pub async fn set_preferences(
        &self,
        email: &EmailAddress,
        change: &PreferencesChange,
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        in_tx!(self, |tx, db| {
            let row: Option<(i64, String)> =
                sqlx::query_as(db::LOCK_SUBSCRIBER).bind(email.key()).fetch_optional(&mut *tx).await?;
            let Some((id, _)) = row else { return Ok(false) };
            let (name, edition, topics, paused_until): (String, Option<String>, Option<String>, Option<i64>) =
                sqlx::query_as(CURRENT).bind(id).fetch_one(&mut *tx).await?;
            let current = Chosen { name, edition, topics, paused_until };
            let Some(next) = apply(&current, change) else { return Ok(false) };
            sqlx::query(SET)
                .bind(next.name)
                .bind(next.edition)
                .bind(next.topics)
                .bind(next.paused_until)
                .bind(ms(now))
                .bind(id)
                .execute(&mut *tx)
                .await?;
            consent::record(&mut tx, Some(id), ConsentEvent::Preferences, source, now).await?;
            Ok(true)
        })
    }
}

/// The `topics` column for these keys: `None` when there are none (every topic).
pub fn topics_column<S: AsRef<str>>(keys: &[S]) -> Option<String> {
    let mut keys: Vec<&str> = keys.iter().map(AsRef::as_ref).filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    keys.dedup();
    Some(format!(";{};", keys.join(";")))
}

/// The keys a `topics` column holds, sorted; empty for every topic.
pub fn topic_keys(column: Option<&str>) -> Vec<String> {
    column.map(|c| c.split(';').filter(|k| !k.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_choices_are_equal_columns() {
        assert_eq!(topics_column(&["science", "arts & culture", "science"]), Some(";arts & culture;science;".into()));
        assert_eq!(topics_column(&["arts & culture", "science"]), topics_column(&["science", "arts & culture"]));
        assert_eq!(topics_column::<&str>(&[]), None);
        assert_eq!(topic_keys(Some(";arts & culture;science;")), ["arts & culture", "science"]);
        assert!(topic_keys(None).is_empty());
    }

    fn change(name: Option<&str>, pause: PauseChange) -> PreferencesChange {
        PreferencesChange {
            edition: Some("weekly".into()),
            topics: vec!["science".into()],
            name: name.map(str::to_owned),
            pause,
        }
    }

    #[test]
    fn a_reader_of_several_topics_counts_for_each() {
        let counts = count_choices(vec![
            (None, None, 5),
            (Some("weekly".into()), Some(";arts;science;".into()), 2),
            (None, Some(";science;".into()), 1),
        ]);
        assert_eq!(counts.editions, BTreeMap::from([(None, 6), (Some("weekly".into()), 2)]));
        assert_eq!(counts.topics, BTreeMap::from([(None, 5), (Some("arts".into()), 2), (Some("science".into()), 3)]));
    }

    #[test]
    fn the_same_choice_again_changes_nothing() {
        let current = Chosen {
            name: "Ann".into(),
            edition: Some("weekly".into()),
            topics: Some(";science;".into()),
            paused_until: Some(5),
        };
        assert_eq!(apply(&current, &change(None, PauseChange::Keep)), None);
        assert_eq!(apply(&current, &change(Some("Ann"), PauseChange::Keep)), None);
        let renamed = apply(&current, &change(Some(""), PauseChange::Keep)).expect("a change");
        assert_eq!((renamed.name.as_str(), renamed.paused_until), ("", Some(5)));
        let resumed = apply(&current, &change(None, PauseChange::Resume)).expect("a change");
        assert_eq!(resumed.paused_until, None);
        let every = PreferencesChange { topics: vec![], ..change(None, PauseChange::Keep) };
        assert_eq!(apply(&current, &every).expect("a change").topics, None);
    }
}
