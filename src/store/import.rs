//! What an import does with each of its rows, decided apart from any database: both backends
//! read the stored rows a chunk names, let this module sort the chunk into new, changed,
//! unchanged and refused, write the result in a few statements, and count it here.

use std::collections::{BTreeMap, HashSet};

use super::{ImportCounts, NewSubscriber, StoreError};
use crate::domain::{ListName, SubscriberStatus};

/// A subscriber as the store holds it, as much as an import needs.
pub(super) struct Stored<'a> {
    pub id: i64,
    pub name: &'a str,
    /// The attributes as stored: a JSON object of strings.
    pub attributes: &'a str,
    pub status: SubscriberStatus,
}

/// The rows in chunks of at most `size`, each with distinct addresses. An address named twice
/// starts a new chunk, which then finds the first row stored, as row by row it would.
pub(super) fn chunks(rows: &[NewSubscriber], size: usize) -> Vec<&[NewSubscriber]> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < rows.len() {
        let mut seen = HashSet::new();
        let mut end = start;
        while end < rows.len() && end - start < size.max(1) && seen.insert(rows[end].email.as_str()) {
            end += 1;
        }
        out.push(&rows[start..end]);
        start = end;
    }
    out
}

/// Puts every row on `list` too: a list file's rows are the list's members.
pub(super) fn put_on(rows: &mut [NewSubscriber], list: &ListName) {
    for r in rows {
        if !r.lists.contains(list) {
            r.lists.push(list.clone());
        }
    }
}

/// What to write for one chunk.
#[derive(Default)]
pub(super) struct Plan<'r> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::SubscriberName;

    fn row(email: &str) -> NewSubscriber {
        NewSubscriber { email: email.parse().expect("address"), name: None, lists: vec![], attributes: BTreeMap::new() }
    }

    #[test]
    fn a_repeated_address_starts_a_new_chunk() {
        let rows = [row("a@e.org"), row("b@e.org"), row("a@e.org"), row("c@e.org"), row("d@e.org")];
        let sizes: Vec<usize> = chunks(&rows, 2).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 2, 1]);
        let sizes: Vec<usize> = chunks(&rows, 10).iter().map(|c| c.len()).collect();
        assert_eq!(sizes, [2, 3]);
        assert!(chunks(&[], 10).is_empty());
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
