//! A subscriber CSV imported: every good row added or updated as `subscribers add` would (none
//! brought back that left), each bad row reported by its line, nothing at all with `strict` if
//! any row is bad. In two steps, so that a file that is not a subscriber CSV, or an import onto
//! a list that a file keeps, is refused before the store is opened.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use tokio::sync::mpsc::Receiver;

use super::{SubscriberError, lists};
use crate::{
    config::Config,
    csv_import::{self, Reading, Rejected},
    domain::ListName,
    store::{ImportCounts, ImportPart, Store, StoreError},
};

/// A file being read, its header found good, waiting for a store to take its rows.
pub struct Import {
    file: PathBuf,
    strict: bool,
    parts: Receiver<ImportPart>,
    reading: Reading,
}

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub counts: ImportCounts,
    pub rejected: Vec<Rejected>,
    /// Good rows that went on no list: no issue reaches them.
    pub unlisted: u64,
}

impl Import {
    /// Starts reading `file`, every row of which also goes on `list`: a list that a file keeps is
    /// refused, and so is a file that cannot be read or has no `email` column.
    pub async fn read(
        config: &Config,
        file: &Path,
        list: Option<ListName>,
        strict: bool,
    ) -> Result<Self, SubscriberError> {
        lists::refuse_file_kept(config, list.as_slice())?;
        let text =
            tokio::fs::read(file).await.map_err(|source| SubscriberError::Read { file: file.to_owned(), source })?;
        let (parts, reading) = csv_import::start(text, lists::import_rows(config, list), strict)
            .map_err(|error| SubscriberError::Csv { file: file.to_owned(), error })?;
        Ok(Self { file: file.to_owned(), strict, parts, reading })
    }

    /// Starts reading an uploaded CSV, named `name` in errors and the consent record, as
    /// [`read`](Self::read) reads a file.
    pub fn upload(
        config: &Config,
        name: &str,
        bytes: Vec<u8>,
        list: Option<ListName>,
        strict: bool,
    ) -> Result<Self, SubscriberError> {
        lists::refuse_file_kept(config, list.as_slice())?;
        let file = PathBuf::from(name);
        let (parts, reading) = csv_import::start(bytes, lists::import_rows(config, list), strict)
            .map_err(|error| SubscriberError::Csv { file: file.clone(), error })?;
        Ok(Self { file, strict, parts, reading })
    }

    /// Hands the rows to `store` as they are read, in one transaction.
    pub async fn into_store(self, store: &Store, now: DateTime<Utc>) -> Result<Imported, SubscriberError> {
        let source = format!("import {}", self.file.display());
        let imported = store.import_stream(self.parts, &source, self.strict, now).await;
        let report =
            self.reading.finish().await.map_err(|error| SubscriberError::Csv { file: self.file.clone(), error })?;
        let mut rejected = report.rejected;
        let imported = match imported {
            Ok(taken) => {
                csv_import::merge_repeated(&mut rejected, &taken.repeated);
                Ok(taken.counts)
            }
            Err(StoreError::Repeated(repeats)) => {
                csv_import::merge_repeated(&mut rejected, &repeats);
                Err(StoreError::Repeated(repeats))
            }
            Err(e) => Err(e),
        };
        // A strict import with a bad row wrote nothing (its reader withheld the end, or the
        // store refused a repeated address): the bad rows are the news, not the store's
        // complaint.
        if self.strict && !rejected.is_empty() {
            return Err(SubscriberError::Strict { file: self.file, rejected });
        }
        Ok(Imported { counts: imported?, rejected, unlisted: report.unlisted })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        clock::{Clock, SystemClock},
        subscribers::lists::tests::config,
    };

    async fn store(dir: &Path) -> Store {
        Store::open(&format!("sqlite://{}", dir.join("g.db").display())).await.expect("store")
    }

    fn kept() -> Config {
        config(
            "[\"weekly\", \"readers\"]",
            "[[list]]\nname = \"weekly\"\nfile = \"weekly.csv\"\n[[list]]\nname = \"readers\"\n",
        )
    }

    #[tokio::test]
    async fn refuses_a_kept_list_and_a_file_without_addresses_before_the_store() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "email\nann@example.org\n").expect("write");
        let weekly = Import::read(&kept(), &file, Some("weekly".parse().expect("list")), false).await;
        assert!(matches!(weekly, Err(SubscriberError::FileKept(_))));
        std::fs::write(&file, "address\nann@example.org\n").expect("write");
        let no_email = Import::read(&kept(), &file, None, false).await;
        assert!(matches!(no_email, Err(SubscriberError::Csv { .. })));
        let missing = Import::read(&kept(), &dir.path().join("none.csv"), None, false).await;
        assert!(matches!(missing, Err(SubscriberError::Read { .. })));
        assert!(!dir.path().join("g.db").exists(), "no store was made");
    }

    #[tokio::test]
    async fn imports_the_good_rows_and_counts_those_on_no_list() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "email,lists\nann@example.org,readers\nbad,readers\nbob@example.org,\n").expect("write");
        let store = store(dir.path()).await;
        let import = Import::read(&kept(), &file, None, false).await.expect("read");
        let done = import.into_store(&store, SystemClock.now()).await.expect("imported");
        assert_eq!(done.counts.imported, 2);
        assert_eq!(done.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
        assert_eq!(done.unlisted, 1);

        let strict = Import::read(&kept(), &file, None, true).await.expect("read");
        let refused = strict.into_store(&store, SystemClock.now()).await.expect_err("a bad row");
        assert!(matches!(refused, SubscriberError::Strict { ref rejected, .. } if rejected.len() == 1), "{refused:?}");
    }

    #[tokio::test]
    async fn a_repeated_address_is_reported_by_its_line_and_refuses_a_strict_import() {
        let dir = tempfile::tempdir().expect("tmp");
        let file = dir.path().join("people.csv");
        std::fs::write(&file, "email\nAnn@example.org\nbad\nann@example.org\nbob@example.org\n").expect("write");
        let store = store(dir.path()).await;
        let strict = Import::read(&kept(), &file, None, true).await.expect("read");
        let refused = strict.into_store(&store, SystemClock.now()).await.expect_err("a repeat");
        let SubscriberError::Strict { rejected, .. } = refused else { panic!("strict: {refused:?}") };
        assert_eq!(rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(rejected[1].reason, "ann@example.org appears earlier in the file");
        assert!(store.subscribers(None, None).await.expect("list").is_empty(), "nothing written");

        std::fs::write(&file, "email\nAnn@example.org\nann@example.org\nbob@example.org\n").expect("write");
        let strict = Import::read(&kept(), &file, None, true).await.expect("read");
        let refused = strict.into_store(&store, SystemClock.now()).await.expect_err("a repeat alone");
        assert!(
            matches!(refused, SubscriberError::Strict { ref rejected, .. } if rejected[0].line == 3),
            "{refused:?}"
        );
        assert!(store.subscribers(None, None).await.expect("list").is_empty(), "nothing written");

        let import = Import::read(&kept(), &file, None, false).await.expect("read");
        let done = import.into_store(&store, SystemClock.now()).await.expect("imported");
        assert_eq!(done.counts.imported, 2);
        assert_eq!(done.rejected.iter().map(|r| r.line).collect::<Vec<_>>(), [3]);
    }
}
