//! Rows in: imports (given whole, or streamed as a file is read) and list files, whose rows
//! become the list's members exactly. What an import does with each row is decided here apart
//! from any database: the stored rows a chunk names are read, the chunk is sorted into new,
//! changed, unchanged and refused ([`Plan`]), and the result is written in a few statements a
//! chunk, whose text is each backend's own ([`Dialect`]).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use sqlx::{Encode, Executor, IntoArguments, Transaction, Type};
use tokio::sync::mpsc::Receiver;

use super::{
    ConsentEvent, Copies, ImportCounts, ImportPart, NewSubscriber, Repeated, Store, StoreError, Taken,
    backend::{Dialect, RETRIES, Values, contended, count, in_tx, ms, parse, to_json, with_backend},
    consent,
    issues::assign_readers,
    keys,
    lists::{self, ListIds},
    preferences,
};
use crate::domain::{ListName, SubscriberStatus};

/// A subscriber as the store holds it, as much as an import needs.
struct Stored<'a> {
    id: i64,
    name: &'a str,
    /// The attributes as stored: a JSON object of strings.
    attributes: &'a str,
    status: SubscriberStatus,
}

/// The rows in chunks of at most `size`, each with distinct addresses, compared as the store
/// compares them (by key: `Ann@` and `ann@` are one). An address named twice starts a new
/// chunk, which then finds the first row stored, as row by row it would.
fn chunks(rows: &[NewSubscriber], size: usize) -> Vec<&[NewSubscriber]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut seen = HashSet::new();
        let mut end = start;
        while end < rows.len() && end - start < size.max(1) && seen.insert(rows[end].email.key()) {
            end += 1;
        }
        out.push(&rows[start..end]);
        start = end;
    }
    out
}

/// Puts every row on `list` too: a list file's rows are the list's members.
fn put_on(rows: &mut [NewSubscriber], list: &ListName) {
    for r in rows {
        if !r.lists.contains(list) {
            r.lists.push(list.clone());
        }
    }
}

/// What to write for one chunk.
#[derive(Default)]
struct Plan<'r> {
    /// (id, name, attributes as JSON) of stored subscribers the chunk changes; each becomes
    /// active.
    pub updates: Vec<(i64, String, String)>,
    /// Those of `updates` that were not active: the consent record says the import made them so.
    pub reactivated: Vec<i64>,
    /// Stored subscribers the chunk names, refused ones aside: (id, changed, row).
    pub existing: Vec<(i64, bool, &'r NewSubscriber)>,
    /// Rows whose address is not stored.
    pub fresh: Vec<&'r NewSubscriber>,
    /// Rows of addresses that left or were forgotten: never brought back.
    pub refused: u64,
}

impl<'r> Plan<'r> {
    /// Sorts `rows` by what `stored` finds for each (the row's address, or its forgotten form).
    pub fn new<'s>(
        rows: impl IntoIterator<Item = &'r NewSubscriber>,
        stored: impl Fn(&NewSubscriber) -> Option<Stored<'s>>,
    ) -> Result<Self, StoreError> {
        let mut plan = Plan::default();
        for row in rows {
            let Some(s) = stored(row) else {
                plan.fresh.push(row);
                continue;
            };
            if s.status.is_final_no() {
                plan.refused += 1;
                continue;
            }
            // Attributes the row names replace the stored ones; others are kept.
            let old: BTreeMap<String, String> = serde_json::from_str(s.attributes).unwrap_or_default();
            let mut merged = old.clone();
            merged.extend(row.attributes.clone());
            let name = row.name.as_ref().map_or_else(|| s.name.to_owned(), |n| n.as_str().to_owned());
            let changed = name != s.name || merged != old || s.status != SubscriberStatus::Active;
            if changed {
                let attributes = serde_json::to_string(&merged).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                plan.updates.push((s.id, name, attributes));
                if s.status != SubscriberStatus::Active {
                    plan.reactivated.push(s.id);
                }
            }
            plan.existing.push((s.id, changed, row));
        }
        Ok(plan)
    }

    /// Adds the chunk to `counts`, once its new rows (`added`) and the subscribers who joined a
    /// list they were not on (`joined`) are known.
    pub fn count(&self, added: usize, joined: &HashSet<i64>, counts: &mut ImportCounts) {
        counts.imported += added as u64;
        counts.refused += self.refused;
        for (id, changed, _) in &self.existing {
            if *changed || joined.contains(id) {
                counts.updated += 1;
            } else {
                counts.unchanged += 1;
            }
        }
    }
}

/// The consent event that records a new address: a command's `add`, or an import.
fn added_as(source: &str) -> ConsentEvent {
    if source == "add" { ConsentEvent::Add } else { ConsentEvent::Import }
}

/// A stored subscriber a chunk names, as `LOCK_SUBSCRIBERS` reads it.
#[derive(sqlx::FromRow)]
struct Found {
    id: i64,
    key: String,
    name: String,
    attributes: String,
    status: String,
}

/// Rows read as they arrive: an import's, or a list file's (`list`), whose rows become the
/// list's members exactly.
struct Stream {
    list: Option<ListName>,
    parts: Receiver<ImportPart>,
    source: String,
    /// A repeated address fails the whole stream, nothing written, rather than being taken out.
    strict: bool,
}

impl Stream {
    fn list_file(list: ListName, parts: Receiver<ImportPart>) -> Self {
        let source = format!("list file {list}");
        Self { list: Some(list), parts, source, strict: false }
    }
}

impl Store {
    /// Adds or updates `rows` in one transaction, with the meaning of writing them one by one.
    /// The rows are at hand, so a transaction PostgreSQL fails on a deadlock runs again.
    pub async fn import(
        &self,
        rows: &[NewSubscriber],
        source: &str,
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        in_tx!(self, |tx, db| {
            db::lock_imports(&mut tx).await?;
            let mut counts = ImportCounts::default();
            upsert(&mut tx, rows, source, now, &mut counts, &mut ListIds::new()).await?;
            Ok(counts)
        })
    }

    /// Imports rows as they arrive, in one transaction, committed at `End`. A row whose address
    /// an earlier row named is taken out and returned by its line. With `strict`, such a row
    /// fails the import instead ([`StoreError::Repeated`], every repeat of the input named) and
    /// nothing is written. Unlike `import`, it cannot run again by itself after a deadlock, since
    /// the rows are gone: it says to run the command again, which is safe, because nothing was
    /// written. Other imports (on SQLite, every writer) wait meanwhile: the rows' producer
    /// should be quick.
    pub async fn import_stream(
        &self,
        parts: Receiver<ImportPart>,
        source: &str,
        strict: bool,
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        let stream = Stream { list: None, parts, source: source.to_owned(), strict };
        let (taken, _) = self.take(vec![stream], now, None).await?;
        Ok(taken.into_iter().next().unwrap_or_default())
    }

    /// Makes the list's members exactly the rows that arrive (adding, updating, and removing
    /// memberships the file no longer names), in one transaction committed at `End`. Never
    /// brings back an address that left. A row repeating an earlier row's address is taken out
    /// and returned by its line. Like `import_stream`, it cannot run again by itself.
    pub async fn sync_list_stream(
        &self,
        list: &ListName,
        parts: Receiver<ImportPart>,
        now: DateTime<Utc>,
    ) -> Result<Taken, StoreError> {
        let (taken, _) = self.take(vec![Stream::list_file(list.clone(), parts)], now, None).await?;
        Ok(taken.into_iter().next().unwrap_or_default())
    }

    /// How many subscribers an issue to `lists` would be queued for once each list file had been
    /// synced: the syncs of `files` made as `sync_list_stream` makes them, then the count, in one
    /// transaction that is rolled back, so nothing changes.
    ///
    /// With `copies` (an issue of editions or topics: its plan and its edition's key), the count
    /// is of the readers whose copy would carry something, chosen as the issue's creation
    /// chooses them; those with nothing new would get a `skipped` delivery and no message.
    pub async fn recipients_after_sync(
        &self,
        files: Vec<(ListName, Receiver<ImportPart>)>,
        lists: &[ListName],
        copies: Option<Copies<'_>>,
        now: DateTime<Utc>,
    ) -> Result<(Vec<Taken>, u64), StoreError> {
        let streams = files.into_iter().map(|(list, parts)| Stream::list_file(list, parts)).collect();
        self.take(streams, now, Some((lists, copies))).await
    }

    /// Reads `streams` one after another in one transaction, then commits it; or, for a `trial`,
    /// counts the subscribers an issue to those lists would be queued for and rolls it back.
    /// Returns what each stream did, in their order, and that count.
    ///
    /// Each stream's addresses are kept in a temporary table (`listed`) as they are written,
    /// where each part's rows are first looked up: an address met before is a repeat, found by
    /// the database rather than by a set in memory that would grow with the input.
    async fn take(
        &self,
        streams: Vec<Stream>,
        now: DateTime<Utc>,
        trial: Option<(&[ListName], Option<Copies<'_>>)>,
    ) -> Result<(Vec<Taken>, u64), StoreError> {
        with_backend!(self, |pool, db| {
            let mut tx = db::begin(pool).await?;
            let taken: Result<_, StoreError> = async {
                db::lock_imports(&mut tx).await?;
                let mut all = Vec::with_capacity(streams.len());
                for Stream { list, mut parts, source, strict } in streams {
                    for sql in db::OPEN_LISTED {
                        sqlx::query(*sql).execute(&mut *tx).await?;
                    }
                    let mut counts = ImportCounts::default();
                    let mut repeated = Vec::new();
                    let mut ids = ListIds::new();
                    let ended = loop {
                        let part = match parts.recv().await {
                            Some(ImportPart::Rows(rows)) => rows,
                            Some(ImportPart::End) => break true,
                            None => break false,
                        };
                        let mut rows = first_named(&mut tx, part, &mut repeated).await?;
                        // A strict stream that met a repeat fails: its other rows are only looked
                        // at, so that every repeat is named.
                        if strict && !repeated.is_empty() {
                            continue;
                        }
                        if let Some(list) = &list {
                            put_on(&mut rows, list);
                        }
                        upsert(&mut tx, &rows, &source, now, &mut counts, &mut ids).await?;
                    };
                    repeated.sort_by_key(|r| r.line);
                    if strict && !repeated.is_empty() {
                        return Err(StoreError::Repeated(repeated));
                    }
                    if !ended {
                        return Err(StoreError::InputEnded);
                    }
                    if let Some(list) = &list {
                        let id = lists::id(&mut tx, list, &mut ids).await?;
                        for sql in db::LISTED_READY {
                            sqlx::query(*sql).execute(&mut *tx).await?;
                        }
                        counts.removed = sqlx::query(db::SYNC_REMOVE).bind(id).execute(&mut *tx).await?.rows_affected();
                    }
                    for sql in db::CLOSE_LISTED {
                        sqlx::query(*sql).execute(&mut *tx).await?;
                    }
                    all.push(Taken { counts, repeated });
                }
                let recipients: i64 = match trial {
                    Some((lists, None)) => {
                        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
                        sqlx::query_scalar(db::COUNT_RECIPIENTS).bind(Values(&names)).fetch_one(&mut *tx).await?
                    }
                    Some((lists, Some((plan, edition)))) => {
                        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
                        let assigned = assign_readers!(tx, db, plan, &names, edition, now);
                        i64::try_from(assigned.readers.iter().filter(|(_, copy)| copy.is_some()).count())
                            .unwrap_or(i64::MAX)
                    }
                    None => 0,
                };
                Ok((all, count(recipients)))
            }
            .await;
            let taken = taken.map_err(|e| contended(e, db::transient))?;
            if trial.is_some() {
                tx.rollback().await?;
            } else {
                tx.commit().await.map_err(|e| contended(e.into(), db::transient))?;
            }
            Ok(taken)
        })
    }
}

/// The rows of `part` whose address no earlier row of the stream named, in their order; the
/// others go to `repeated`. Those kept are noted in `listed` for the parts that follow: the
/// statement adds the addresses that were not there and returns them, so one lookup finds the
/// repeats and records the rest.
async fn first_named<DB>(
    tx: &mut Transaction<'static, DB>,
    part: Vec<(u64, NewSubscriber)>,
    repeated: &mut Vec<Repeated>,
) -> Result<Vec<NewSubscriber>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a, 'q> Values<'a, String>: Encode<'q, DB> + Type<DB>,
    for<'r> (String,): sqlx::FromRow<'r, DB::Row>,
{
    // Repeats within the part: the table cannot say which of two new rows came first.
    let mut keys = HashSet::with_capacity(part.len());
    let mut rows = Vec::with_capacity(part.len());
    for (line, row) in part {
        let key = row.email.key();
        if keys.insert(key.clone()) {
            rows.push((key, line, row));
        } else {
            repeated.push(Repeated { line, email: row.email });
        }
    }
    let wanted: Vec<String> = rows.iter().map(|(key, _, _)| key.clone()).collect();
    let added: Vec<(String,)> = sqlx::query_as(DB::LIST_ADDRESSES).bind(Values(&wanted)).fetch_all(&mut **tx).await?;
    let added: HashSet<String> = added.into_iter().map(|(k,)| k).collect();
    let mut first = Vec::with_capacity(rows.len());
    for (key, line, row) in rows {
        if added.contains(&key) {
            first.push(row);
        } else {
            repeated.push(Repeated { line, email: row.email });
        }
    }
    Ok(first)
}

/// Adds or updates subscribers from an import, a list file or a command, with the meaning of
/// writing the rows one by one: new addresses are active (the publisher vouches for their
/// consent); one that left stays as it is. Rows go in chunks in which no address repeats, a few
/// statements a chunk.
async fn upsert<DB>(
    tx: &mut Transaction<'static, DB>,
    rows: &[NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<(), StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a, 'q> Values<'a, String>: Encode<'q, DB> + Type<DB>,
    for<'a, 'q> Values<'a, i64>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r> Found: sqlx::FromRow<'r, DB::Row>,
    for<'r> (i64,): sqlx::FromRow<'r, DB::Row>,
    for<'r> (i64, String): sqlx::FromRow<'r, DB::Row>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'r> (Option<String>, Option<String>): sqlx::FromRow<'r, DB::Row>,
{
    for chunk in chunks(rows, DB::IMPORT_CHUNK) {
        let mut left: Vec<&NewSubscriber> = chunk.iter().collect();
        // An address another writer (a web sign-up) inserted since the chunk was read is written
        // again as the existing row it now is. SQLite's writer's lock lets nobody in between.
        for _ in 0..RETRIES {
            if left.is_empty() {
                break;
            }
            left = upsert_chunk(tx, &left, source, now, counts, ids).await?;
        }
        if !left.is_empty() {
            return Err(StoreError::Contended("subscribers kept being added while this import ran".into()));
        }
    }
    Ok(())
}

/// Writes rows with distinct addresses; returns those that another transaction inserted first.
async fn upsert_chunk<'r, DB>(
    tx: &mut Transaction<'static, DB>,
    rows: &[&'r NewSubscriber],
    source: &str,
    now: DateTime<Utc>,
    counts: &mut ImportCounts,
    ids: &mut ListIds,
) -> Result<Vec<&'r NewSubscriber>, StoreError>
where
    DB: Dialect,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    DB::Arguments: IntoArguments<DB>,
    for<'a, 'q> Values<'a, String>: Encode<'q, DB> + Type<DB>,
    for<'a, 'q> Values<'a, i64>: Encode<'q, DB> + Type<DB>,
    for<'q> i64: Encode<'q, DB> + Type<DB>,
    for<'q> &'q str: Encode<'q, DB> + Type<DB>,
    for<'r2> Found: sqlx::FromRow<'r2, DB::Row>,
    for<'r2> (i64,): sqlx::FromRow<'r2, DB::Row>,
    for<'r2> (i64, String): sqlx::FromRow<'r2, DB::Row>,
    for<'q> Option<i64>: Encode<'q, DB> + Type<DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'r2> (Option<String>, Option<String>): sqlx::FromRow<'r2, DB::Row>,
{
    let now_ms = ms(now);
    let wanted: Vec<String> = rows
        .iter()
        .flat_map(|r| {
            let [forgotten, as_given] = keys::forgotten_forms(&r.email);
            [r.email.key(), forgotten, as_given]
        })
        .collect();
    let found: Vec<Found> = sqlx::query_as(DB::LOCK_SUBSCRIBERS).bind(Values(&wanted)).fetch_all(&mut **tx).await?;
    let found: HashMap<String, (i64, String, String, SubscriberStatus)> = found
        .into_iter()
        .map(|f| Ok((f.key, (f.id, f.name, f.attributes, parse(&f.status)?))))
        .collect::<Result<_, StoreError>>()?;
    let plan = Plan::new(rows.iter().copied(), |row| {
        let (id, name, attributes, status) = found
            .get(&row.email.key())
            .or_else(|| keys::forgotten_forms(&row.email).iter().find_map(|f| found.get(f)))?;
        Some(Stored { id: *id, name, attributes, status: *status })
    })?;

    if !plan.updates.is_empty() {
        sqlx::query_with(DB::UPDATE_SUBSCRIBERS, DB::updates(&plan.updates, now_ms)?).execute(&mut **tx).await?;
        let events: Vec<(i64, &str)> = plan.reactivated.iter().map(|id| (*id, source)).collect();
        consent::record_many(tx, &events, ConsentEvent::Import, now).await?;
    }

    let mut conflicted = Vec::new();
    let mut added: Vec<(i64, &NewSubscriber)> = Vec::new();
    if !plan.fresh.is_empty() {
        let additions = plan
            .fresh
            .iter()
            .map(|r| Ok((r.email.as_str(), r.name.as_ref().map_or("", |n| n.as_str()), to_json(&r.attributes)?)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        let inserted: Vec<(i64, String)> =
            sqlx::query_as_with(DB::INSERT_SUBSCRIBERS, DB::additions(&additions, now_ms)?)
                .fetch_all(&mut **tx)
                .await?;
        let inserted: HashMap<String, i64> = inserted.into_iter().map(|(id, email)| (email, id)).collect();
        for &row in &plan.fresh {
            match inserted.get(row.email.as_str()) {
                Some(id) => added.push((*id, row)),
                None => conflicted.push(row),
            }
        }
        added.sort_by_key(|(id, _)| *id);
        let events: Vec<(i64, &str)> = added.iter().map(|(id, _)| (*id, source)).collect();
        consent::record_many(tx, &events, added_as(source), now).await?;
    }

    let mut pairs = Vec::new();
    for (id, row) in plan.existing.iter().map(|(id, _, row)| (*id, *row)).chain(added.iter().copied()) {
        for l in &row.lists {
            pairs.push((lists::id(tx, l, ids).await?, id));
        }
    }
    let mut joined = lists::join(tx, &pairs, now).await?;
    let chosen: Vec<(i64, &NewSubscriber)> =
        plan.existing.iter().map(|(id, _, row)| (*id, *row)).chain(added.iter().copied()).collect();
    // A reader whose edition or topics the file changed counts as updated, as one who joined.
    joined.extend(preferences::write_imported(tx, &chosen, source, now).await?);
    plan.count(added.len(), &joined, counts);
    Ok(conflicted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubscriberName;

    fn row(email: &str) -> NewSubscriber {
        NewSubscriber {
            email: email.parse().expect("address"),
            name: None,
            lists: vec![],
            attributes: BTreeMap::new(),
            edition: None,
            topics: None,
        }
    }

    #[test]
    fn a_repeated_address_starts_a_new_chunk() {
        let rows = [row("a@e.org"), row("b@e.org"), row("a@e.org"), row("c@e.org"), row("d@e.org")];
        let sizes: Vec<usize> = chunks(&rows, 2).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let sizes: Vec<usize> = chunks(&rows, 10).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 3]);
        assert!(chunks(&[], 10).is_empty());
        let spellings = [row("Ann@e.org"), row("bob@e.org"), row("ANN@e.org")];
        let sizes: Vec<usize> = chunks(&spellings, 10).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 1], "another spelling of an address is that address");
    }

    #[test]
    fn a_command_adds_and_anything_else_imports() {
        assert_eq!(added_as("add"), ConsentEvent::Add);
        assert_eq!(added_as("import"), ConsentEvent::Import);
        assert_eq!(added_as("list file weekly"), ConsentEvent::Import);
    }

    #[test]
    fn stored_rows_are_updated_only_when_something_changes() {
        let mut renamed = row("r@e.org");
        renamed.name = SubscriberName::parse("New").expect("name");
        let mut more = row("m@e.org");
        more.attributes.insert("plan".into(), "pro".into());
        let rows = [row("same@e.org"), renamed, more, row("left@e.org"), row("back@e.org"), row("new@e.org")];
        let plan = Plan::new(&rows, |r| {
            let (id, status) = match r.email.as_str() {
                "same@e.org" => (1, SubscriberStatus::Active),
                "r@e.org" => (2, SubscriberStatus::Active),
                "m@e.org" => (3, SubscriberStatus::Active),
                "left@e.org" => (4, SubscriberStatus::Unsubscribed),
                "back@e.org" => (5, SubscriberStatus::Unconfirmed),
                _ => return None,
            };
            Some(Stored { id, name: "Old", attributes: r#"{"city":"Oslo"}"#, status })
        })
        .expect("plan");
        assert_eq!(plan.fresh.len(), 1);
        assert_eq!(plan.refused, 1);
        let updated: Vec<(i64, &str, &str)> =
            plan.updates.iter().map(|(id, n, a)| (*id, n.as_str(), a.as_str())).collect();
        assert_eq!(
            updated,
            [
                (2, "New", r#"{"city":"Oslo"}"#),
                (3, "Old", r#"{"city":"Oslo","plan":"pro"}"#),
                (5, "Old", r#"{"city":"Oslo"}"#)
            ]
        );
        assert_eq!(plan.reactivated, [5]);
        let mut counts = ImportCounts::default();
        plan.count(1, &HashSet::from([1]), &mut counts);
        assert_eq!((counts.imported, counts.updated, counts.unchanged, counts.refused), (1, 4, 0, 1));
        let mut counts = ImportCounts::default();
        plan.count(1, &HashSet::new(), &mut counts);
        assert_eq!(counts.unchanged, 1, "a row that changes nothing and joins nothing");
    }
}
