//! The values the store takes and gives back.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::domain::{
    Article, BounceKind, DeliveryState, EmailAddress, IssueStatus, ListName, SubscriberName, SubscriberStatus,
};

/// A subscriber as an import, a list file or a command gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSubscriber {
    pub email: EmailAddress,
    /// `None`: keep the name already stored.
    pub name: Option<SubscriberName>,
    pub lists: Vec<ListName>,
    pub attributes: BTreeMap<String, String>,
    /// The edition's key (`Some(None)`: the default edition); `None` keeps the one stored.
    pub edition: Option<Option<String>>,
    /// The topics' keys (`Some` empty: every topic); `None` keeps those stored.
    pub topics: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ImportCounts {
    pub imported: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Addresses that unsubscribed, bounced or complained: left as they are.
    pub refused: u64,
    /// Memberships a list file no longer names, removed.
    pub removed: u64,
}

/// What [`Store::import_stream`](super::Store::import_stream) receives: rows as they are read,
/// each with its line in the input, then `End` once the input is whole. An input that stops
/// without `End` imports nothing.
#[derive(Debug)]
pub enum ImportPart {
    Rows(Vec<(u64, NewSubscriber)>),
    End,
}

/// A streamed row whose address an earlier row of the same input named (compared as the store
/// compares addresses: `Ann@` and `ann@` are one): taken out and not written. The store finds
/// these, so that the addresses of an input of millions of rows are never all held in memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeated {
    /// The row's line in the input.
    pub line: u64,
    /// The address as the row gives it.
    pub email: EmailAddress,
}

/// What a streamed import or list file's sync did, and the rows it took out as repeats, in the
/// order of their lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Taken {
    pub counts: ImportCounts,
    pub repeated: Vec<Repeated>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriberRecord {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub lists: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// The key of the edition they chose; `None` = the default edition.
    pub edition: Option<String>,
    /// The keys of the topics they chose, sorted; empty = every topic.
    pub topics: Vec<String>,
    /// No issue reaches them before this.
    pub paused_until: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListCounts {
    pub name: String,
    pub counts: BTreeMap<String, u64>,
}

/// An entry of the consent record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentEvent {
    Subscribe,
    Confirm,
    Unsubscribe,
    Import,
    Add,
    Bounce,
    Complaint,
    Forget,
    /// A change of edition, topics, name or pause.
    Preferences,
}

impl ConsentEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Subscribe => "subscribe",
            Self::Confirm => "confirm",
            Self::Unsubscribe => "unsubscribe",
            Self::Import => "import",
            Self::Add => "add",
            Self::Bounce => "bounce",
            Self::Complaint => "complaint",
            Self::Forget => "forget",
            Self::Preferences => "preferences",
        }
    }
}

/// What one chunk of an issue's readers queued ([`crate::store::Store::queue_more`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Filled {
    /// Readers queued by this chunk.
    pub queued: u64,
    /// The chunk was full: more readers may be left to queue.
    pub more: bool,
}

/// An issue about to be created: its articles are frozen with it.
#[derive(Debug, Clone)]
pub struct NewIssue {
    pub number: u32,
    pub subject: String,
    pub date: DateTime<Utc>,
    pub articles: Vec<Article>,
    /// The identities of the articles, for `since_last_issue`.
    pub identities: Vec<String>,
    pub slot: Option<SlotRef>,
    /// The key of the edition it is an issue of; `None` without editions.
    pub edition: Option<String>,
    /// With editions or topics: how each reader's copy is chosen among `articles`. `None`: every
    /// reader gets every article, queued as before.
    pub variants: Option<VariantPlan>,
}

/// How the readers' copies of an issue are chosen: each reader of the edition gets the candidates
/// of their topics that they have not received, and readers who get the same articles share one
/// variant, rendered once.
#[derive(Debug, Clone)]
pub struct VariantPlan {
    /// The issue is the default edition's: readers who chose none get it too.
    pub default_edition: bool,
    /// The keys of every edition the publication offers: a reader whose stored edition is none
    /// of them (it was renamed or removed) gets the default edition's issues.
    pub editions: Vec<String>,
    /// One per article of the issue, in its order.
    pub candidates: Vec<Candidate>,
    /// Readers whose last copy came before this have nothing older to catch up on.
    pub oldest: DateTime<Utc>,
}

/// An issue of editions or topics as a count or a queue sees it: how its copies are chosen, and
/// the key of its edition.
pub type Copies<'a> = (&'a VariantPlan, Option<&'a str>);

/// An article an issue may carry, as the choice of each reader's copy sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Every key that makes two articles the same article.
    pub keys: Vec<String>,
    /// The keys of the topics it belongs to.
    pub topics: Vec<String>,
    pub published: DateTime<Utc>,
    /// In the edition's own selection; otherwise it is offered only to readers whose last copy
    /// came before it was published (they switched from an edition that had not carried it yet).
    pub own: bool,
}

/// The schedule slot an issue is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRef {
    pub key: String,
    pub at: DateTime<Utc>,
}

/// What became of a schedule slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SlotOutcome {
    /// It made an issue.
    Issue,
    /// Nothing new to send (and `send_when_empty` is off), or it was passed over.
    Skipped,
    /// The daemon was down for longer than `catch_up`.
    Missed,
}

impl SlotOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Issue => "issue",
            Self::Skipped => "skipped",
            Self::Missed => "missed",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotRecord {
    pub key: String,
    pub at: DateTime<Utc>,
    pub outcome: String,
    pub issue_number: Option<u32>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeliveryCounts {
    pub queued: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub skipped: u64,
}

impl DeliveryCounts {
    pub fn add(&mut self, state: DeliveryState, n: u64) {
        match state {
            DeliveryState::Queued => self.queued += n,
            DeliveryState::Sent => self.sent += n,
            DeliveryState::Deferred => self.deferred += n,
            DeliveryState::Failed => self.failed += n,
            DeliveryState::Skipped => self.skipped += n,
        }
    }

    pub fn total(&self) -> u64 {
        self.queued + self.sent + self.deferred + self.failed + self.skipped
    }

    pub fn pending(&self) -> u64 {
        self.queued + self.deferred
    }
}

/// The whole ledger's deliveries by the status of their issue and their own state: every pair
/// is there, at zero when no delivery is in it, so that a figure that falls to nothing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerCounts(BTreeMap<(IssueStatus, DeliveryState), u64>);

impl Default for LedgerCounts {
    fn default() -> Self {
        Self(IssueStatus::ALL.iter().flat_map(|i| DeliveryState::ALL.iter().map(move |d| ((*i, *d), 0))).collect())
    }
}

impl LedgerCounts {
    pub fn add(&mut self, issue: IssueStatus, state: DeliveryState, n: u64) {
        *self.0.entry((issue, state)).or_default() += n;
    }

    pub fn get(&self, issue: IssueStatus, state: DeliveryState) -> u64 {
        self.0.get(&(issue, state)).copied().unwrap_or_default()
    }

    /// Each pair with its count, every pair once.
    pub fn iter(&self) -> impl Iterator<Item = (IssueStatus, DeliveryState, u64)> + '_ {
        self.0.iter().map(|((i, d), n)| (*i, *d, *n))
    }
}

#[derive(Debug, Clone)]
pub struct IssueRecord {
    pub number: u32,
    pub status: IssueStatus,
    pub subject: String,
    pub date: DateTime<Utc>,
    pub articles: Vec<Article>,
    pub slot: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// Why it stands where it is: why it was paused.
    pub note: Option<String>,
    pub counts: DeliveryCounts,
    /// Its deliveries that bounced or drew a complaint after they went out.
    pub reports: ReportCounts,
    /// The editor's intro, Markdown as they wrote it.
    pub intro: Option<String>,
    /// Articles an editor left out of it (no longer the issue's: a later one may carry them).
    pub left_out: Vec<Article>,
    /// The subject is an editor's, used as it stands rather than rendered from the template.
    pub subject_edited: bool,
    /// When the slot a draft is for falls; `None`: it goes out once approved.
    pub send_at: Option<DateTime<Utc>>,
    /// The key of its edition; `None` for an issue made without editions.
    pub edition: Option<String>,
}

/// An issue's deliveries that came back: each delivery once however many reports name it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReportCounts {
    /// Bounced, hard or soft (their state stays `sent`: they went out).
    pub bounced: u64,
    pub complained: u64,
}

/// The delivery a report is about, and its reader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceTarget {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub issue: u32,
    pub email: EmailAddress,
}

/// A report to record against a subscriber, once: `key` says which report it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewBounce<'a> {
    pub key: &'a str,
    pub delivery_id: Option<i64>,
    pub subscriber_id: i64,
    pub issue: Option<u32>,
    pub kind: BounceKind,
    pub status: Option<&'a str>,
    pub diagnostic: Option<&'a str>,
    /// What the consent record says the change came from.
    pub source: &'a str,
}

/// When soft bounces count as a bounce for good.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BounceRule {
    /// Soft bounces of different messages to one reader…
    pub soft_limit: u32,
    /// …within this span before the latest.
    pub soft_window: chrono::Duration,
}

/// What recording a report did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BounceOutcome {
    /// Recorded; the status its reader was moved to, if it moved them.
    Recorded { changed_to: Option<SubscriberStatus> },
    /// The same report was recorded before: nothing changed.
    Seen,
}

/// A recorded bounce or complaint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BounceRecord {
    pub email: String,
    pub issue: Option<u32>,
    pub kind: BounceKind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub at: DateTime<Utc>,
}

/// An issue that went out, or is going out (a delivery of it was sent), as the archive shows
/// it: no delivery counts.
#[derive(Debug, Clone)]
pub struct SentIssue {
    pub number: u32,
    pub subject: String,
    pub date: DateTime<Utc>,
    pub articles: Vec<Article>,
    /// When its last delivery was final; while it is going out, when it was created.
    pub sent_at: DateTime<Utc>,
    /// Every delivery is final (the issue is `sent`): nothing about it changes any more.
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub email: String,
    pub reply: Option<String>,
    pub attempts: u32,
}

/// What an issue sent through one relay, by the relay of each delivery's last outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RelayUse {
    /// `host:port`, never its credentials.
    pub relay: String,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// The relay's reply to the last delivery it answered.
    pub last_reply: Option<String>,
}

/// A delivery waiting for another attempt after a temporary failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub email: String,
    /// The server's last reply (or what went wrong).
    pub reply: Option<String>,
    /// Attempts made so far.
    pub attempts: u32,
    pub next_attempt: DateTime<Utc>,
}

pub use crate::domain::{Claimed, Outcome};

/// A feed's last body and the validators that came with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedCacheEntry {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// What a sign-up from the web form found, so the caller can decide whether to mail a
/// confirmation without ever telling the visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signup {
    /// The address's status before this request; `None` for an address never seen.
    pub before: Option<SubscriberStatus>,
    /// Sign-up requests for this address in the 24 hours before this one (for any client).
    pub recent_requests: u32,
}

/// What a confirmation did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Confirmation {
    /// The address is active now (it was not before).
    Confirmed,
    /// It was already active; the lists named were joined.
    AlreadyActive,
    /// The address left after the link was made: an old link cannot bring it back.
    Stale,
    /// No such address (never signed up, or forgotten).
    Unknown,
}

/// A share of the global send rate, taken from the bucket all workers draw from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// Sends this process may start now.
    pub granted: u32,
    /// When none were granted: how long until one will be.
    pub retry_in: Duration,
}
