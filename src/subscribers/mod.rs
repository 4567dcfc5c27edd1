//! Subscribers: every rule about who may be added, who leaves, which lists a list file keeps and
//! who gets an issue, in one place, so that the command line, the web pages and the admin API
//! answer alike. The store keeps the subscribers; this module decides what may be done to them,
//! and is the only caller of the store's methods that change them.
//!
//! - `lists`: the lists a list file keeps, which nobody joins any other way, and those a reader
//!   may join;
//! - `add`: one subscriber added or updated, from what was typed;
//! - `leave`: unsubscribing and forgetting;
//! - `preferences`: the edition, topics, name and pause a reader chooses;
//! - `import`: a subscriber CSV;
//! - `signup`: the web form's request and its confirmation;
//! - `audience`: the list files synced, and who an issue goes to;
//! - `reports`: what a bounce or complaint that came back does to its reader.

mod add;
mod audience;
mod import;
mod leave;
mod lists;
mod preferences;
mod reports;
mod signup;

use std::path::PathBuf;

pub use add::{Added, Addition, Field, add};
pub use audience::{ListSync, Reach, issue_lists, listed, reach, sync_lists};
pub use import::{Import, Imported};
pub use leave::{Left, forget, unsubscribe};
pub use lists::{all_lists_kept_by_files, joinable, list_file_rows, refuse_file_kept};
pub use preferences::{MAX_PAUSE_WEEKS, TypedPreferences, edition_key, set_preferences, topic_keys};
pub use reports::apply_report;
pub use signup::{MAX_CONFIRMATIONS_PER_DAY, Requested, confirm, request, signup_list};

use crate::{
    config::FileKeptList,
    csv_import::{CsvError, Rejected},
    domain::EmailAddress,
    store::StoreError,
};

/// Where a change comes from; the consent record names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    CommandLine,
    Api,
    /// The reader's own pages.
    Web,
    /// A mail provider's unsubscribe request (RFC 8058).
    OneClick,
    /// The publisher's dashboard.
    Dashboard,
}

impl Via {
    /// The consent record's source for a change made this way.
    pub fn source(self) -> &'static str {
        match self {
            Self::CommandLine => "command line",
            Self::Api => "api",
            Self::Web => "web",
            Self::OneClick => "one-click",
            Self::Dashboard => "dashboard",
        }
    }
}

/// Why a change to the subscribers was not made.
#[derive(Debug, thiserror::Error)]
pub enum SubscriberError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value as typed is not valid; the caller names the field its own way.
    #[error("{field} {reason}")]
    Invalid { field: Field, reason: String },
    #[error(transparent)]
    FileKept(#[from] FileKeptList),
    #[error(
        "{0} unsubscribed, bounced or complained earlier; gazette will not add it back (they can sign up again themselves)"
    )]
    LeftEarlier(EmailAddress),
    #[error("{0} is not a subscriber")]
    NotFound(EmailAddress),
    /// An edition or topic that `gazette.toml` does not offer.
    #[error("there is no {what} named {typed:?} ({offered})")]
    UnknownChoice { what: &'static str, typed: String, offered: String },
    #[error("there is no such list to join")]
    NoSuchList,
    #[error("sign-ups are closed: every list this publication sends to is kept by its file")]
    SignupsClosed,
    #[error("cannot read {}: {source}", file.display())]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {error}", file.display())]
    Csv { file: PathBuf, error: CsvError },
    /// A strict import met bad rows, and so imported nothing.
    #[error("{} bad rows in {}; nothing imported", rejected.len(), file.display())]
    Strict { file: PathBuf, rejected: Vec<Rejected> },
    #[error("cannot read the list file {}: {source}; fix [[list]] file or create the file", file.display())]
    ListFile {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {error}", file.display())]
    ListCsv { file: PathBuf, error: CsvError },
}
