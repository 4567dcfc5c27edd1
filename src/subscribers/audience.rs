//! Who an issue goes to: every active subscriber of `[publication] lists`, once each list file
//! has been synced into its list. `send` and the scheduler sync the files before an issue; a dry
//! run and the question `send` asks count the readers after the same syncs, made inside a
//! transaction that is rolled back, never by a second reckoning.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{SubscriberError, lists::list_file_rows};
use crate::{
    config::Config,
    csv_import::{self, Rejected},
    domain::{EmailAddress, ListName},
    store::{Copies, ImportCounts, NewSubscriber, Store},
};

/// What syncing one list file did.
#[derive(Debug)]
pub struct ListSync {
    pub list: ListName,
    pub file: PathBuf,
    pub counts: ImportCounts,
    pub rejected: Vec<Rejected>,
    /// The file changed since the last sync noted it (always so for a sync rolled back): its bad
    /// rows are news, where otherwise they were reported already.
    pub changed: bool,
}

/// What an issue made now would reach.
#[derive(Debug)]
pub struct Reach {
    /// The list files' syncs it would make first.
    pub syncs: Vec<ListSync>,
    /// Its readers: a delivery each.
    pub readers: u64,
}

/// The lists an issue goes to.
pub fn issue_lists(config: &Config) -> &[ListName] {
    &config.publication.lists
}

/// Makes each list that has a file hold exactly the file's good rows (never bringing back an
/// address that left), and notes each file's digest, so that its bad rows are told once per
/// change.
pub async fn sync_lists(config: &Config, store: &Store, now: DateTime<Utc>) -> Result<Vec<ListSync>, SubscriberError> {
    let mut out = Vec::new();
    for list in &config.lists {
        let Some(file) = &list.file else { continue };
        let reader = open_list_file(file).await?;
        let (synced, report) = csv_import::stream_file(reader, list_file_rows(config, &list.name), false, |parts| {
            store.sync_list_stream(&list.name, parts, now)
        })
        .await
        .map_err(|error| SubscriberError::ListCsv { file: file.clone(), error })?;
        let taken = synced?;
        let mut rejected = report.rejected;
        csv_import::merge_repeated(&mut rejected, &taken.repeated);
        let changed = store.note_list_file(&list.name, &report.digest, now).await?;
        out.push(ListSync { list: list.name.clone(), file: file.clone(), counts: taken.counts, rejected, changed });
    }
    Ok(out)
}

/// What an issue made now would reach, found without changing anything: each list file synced
/// as [`sync_lists`] syncs it and the readers of [`issue_lists`] counted, in one transaction
/// that is then rolled back.
///
/// With `copies` (an issue of editions or topics: its plan and edition's key), the readers are
/// those whose copy would carry something; the others would be skipped.
pub async fn reach(
    config: &Config,
    store: &Store,
    copies: Option<Copies<'_>>,
    now: DateTime<Utc>,
) -> Result<Reach, SubscriberError> {
    let mut files = Vec::new();
    let mut readings = Vec::new();
    for list in &config.lists {
        let Some(file) = &list.file else { continue };
        let reader = open_list_file(file).await?;
        let (parts, reading) = csv_import::start_file(reader, list_file_rows(config, &list.name), false)
            .await
            .map_err(|error| SubscriberError::ListCsv { file: file.clone(), error })?;
        files.push((list.name.clone(), parts));
        readings.push((list.name.clone(), file.clone(), reading));
    }
    let counted = store.recipients_after_sync(files, issue_lists(config), copies, now).await;
    // Each reading ends whether or not the store took its rows: a failed store dropped them.
    let mut reports = Vec::with_capacity(readings.len());
    for (list, file, reading) in readings {
        let report = reading.finish().await.map_err(|error| SubscriberError::ListCsv { file: file.clone(), error })?;
        reports.push((list, file, report));
    }
    let (taken, readers) = counted?;
    let syncs = reports
        .into_iter()
        .zip(taken)
        .map(|((list, file, report), taken)| {
            let mut rejected = report.rejected;
            csv_import::merge_repeated(&mut rejected, &taken.repeated);
            ListSync { list, file, counts: taken.counts, rejected, changed: true }
        })
        .collect();
    Ok(Reach { syncs, readers })
}

/// `wanted`'s row in the list files, read as a sync reads them (without `wanted`, the first
/// row): what the next sync will say of that reader. A file that cannot be read says nothing.
pub async fn listed(config: &Config, wanted: Option<&EmailAddress>) -> Option<NewSubscriber> {
    for list in &config.lists {
        let Some(file) = &list.file else { continue };
        let Ok(text) = tokio::fs::read(file).await else { continue };
        let Ok(parsed) = csv_import::parse(&text, &list_file_rows(config, &list.name)) else { continue };
        if let Some(row) = parsed.rows.into_iter().find(|r| wanted.is_none_or(|w| w.same_as(&r.email))) {
            return Some(row);
        }
    }
    None
}

/// A list file opened to be read as its rows are taken, never whole: a file of ten million rows
/// would be hundreds of megabytes.
async fn open_list_file(file: &Path) -> Result<std::fs::File, SubscriberError> {
    match tokio::fs::File::open(file).await {
        Ok(f) => Ok(f.into_std().await),
        Err(source) => Err(SubscriberError::ListFile { file: file.to_owned(), source }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        clock::{Clock, SystemClock},
        subscribers::{Addition, Via, add, lists::tests::config},
    };

    /// A publication in a folder of its own, whose list `weekly` is kept by `weekly.csv`.
    async fn publication(rows: &str) -> (tempfile::TempDir, Config, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::write(dir.path().join("weekly.csv"), rows).expect("write");
        let file = dir.path().join("weekly.csv");
        let c = config(
            "[\"weekly\", \"readers\"]",
            &format!(
                "[[list]]\nname = \"weekly\"\nfile = {:?}\n[[list]]\nname = \"readers\"\n",
                file.display().to_string()
            ),
        );
        let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.expect("store");
        (dir, c, store)
    }

    #[tokio::test]
    async fn the_reach_is_what_the_sync_then_makes_and_changes_nothing() {
        let (_dir, c, store) = publication("email,name\nada@example.org,Ada\nbad\ngrace@example.org,Grace\n").await;
        let now = SystemClock.now();
        let reader = Addition::parse("ann@example.org", None, None::<[&str; 0]>, []).expect("valid");
        add(&c, &store, reader, Via::CommandLine, now).await.expect("added");

        let before = reach(&c, &store, None, now).await.expect("reach");
        assert_eq!(before.readers, 3, "ann on readers, ada and grace from the file");
        assert_eq!(before.syncs[0].rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
        assert_eq!(store.subscribers(None, None).await.expect("store").len(), 1, "the reckoning changed nothing");

        let synced = sync_lists(&c, &store, now).await.expect("sync");
        assert!(synced[0].changed);
        assert_eq!(synced[0].counts.imported, 2);
        assert_eq!(reach(&c, &store, None, now).await.expect("reach").readers, before.readers);
        assert!(!sync_lists(&c, &store, now).await.expect("sync")[0].changed, "the same file again");
    }

    #[tokio::test]
    async fn a_reader_is_found_in_the_list_files_as_a_sync_reads_them() {
        let (_dir, c, _store) = publication("email,name,city\nada@example.org,Ada,London\n").await;
        let ada: EmailAddress = "ADA@example.org".parse().expect("address");
        let row = listed(&c, Some(&ada)).await.expect("listed");
        assert_eq!(row.attributes.get("city").map(String::as_str), Some("London"));
        assert_eq!(row.lists, ["weekly".parse::<ListName>().expect("list")]);
        assert!(listed(&c, Some(&"nobody@example.org".parse().expect("address"))).await.is_none());
        assert_eq!(listed(&c, None).await.map(|r| r.email), Some("ada@example.org".parse().expect("address")));
    }

    #[tokio::test]
    async fn a_list_file_that_cannot_be_read_stops_the_sync_naming_it() {
        let (dir, c, store) = publication("email\n").await;
        std::fs::remove_file(dir.path().join("weekly.csv")).expect("remove");
        let e = sync_lists(&c, &store, SystemClock.now()).await.expect_err("no file");
        assert!(matches!(e, SubscriberError::ListFile { .. }), "{e:?}");
        assert!(e.to_string().contains("weekly.csv"), "{e}");
    }
}
