//! Bounces and complaints: what comes back after a message went out, read (`report`), matched
//! to the delivery it is about, and applied to its reader through `subscribers`. Where the
//! messages come from is `mailbox`'s (files, mboxes, Maildir folders) and `imap`'s (an IMAP
//! mailbox); `watch` is the daemon's loop over `[bounces] maildir` and `imap_url`.
//!
//! A provider's webhook event (`event`) is matched and applied the same way.
//!
//! A report or an event is matched by the first of these that it offers:
//! 1. the VERP address it came back to (`bounces+TOKEN@…`): a genuine token names its delivery
//!    or a test copy, and a forged one ends the search, so that nobody can make a report about
//!    an address by forging the token and naming the address beside it;
//! 2. the Message-ID of the original message it quotes, which the ledger keeps for each delivery;
//! 3. the address it names, among the recipients of the issues made in the last [`RECENT`].

pub mod event;
pub mod imap;
pub mod mailbox;
pub mod report;
pub mod watch;

use chrono::{DateTime, Utc};

pub use event::{Event, EventKey, Provider};
pub use report::{Report, read};

use crate::{
    compose::message::issue_of,
    config::Bounces,
    domain::{BounceKind, EmailAddress, MessageId, SubscriberStatus},
    issue::TEST_SUBJECT_PREFIX,
    store::{BounceOutcome, BounceTarget, NewBounce, Store, StoreError},
    subscribers,
    tokens::{ReturnToken, Signer},
};

/// How far back a report found only by the address it names may reach: bounces come within
/// minutes, delay warnings within days, and complaints within weeks.
pub const RECENT: chrono::Duration = chrono::Duration::days(30);

#[derive(Debug, thiserror::Error)]
pub enum BounceError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is a folder but no Maildir (it has neither new/ nor cur/); give a Maildir, a file or an mbox", .0.display())]
    NotMaildir(std::path::PathBuf),
    #[error("cannot move {} to cur/ after reading it: {source}", path.display())]
    Move {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// What reading reports needs: the store, the key that signed the return tokens, and
/// `[bounces]`.
#[derive(Debug, Clone, Copy)]
pub struct Ingest<'a> {
    pub store: &'a Store,
    pub signer: &'a Signer,
    pub settings: &'a Bounces,
}

/// What a report turned out to be about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    Delivery(BounceTarget),
    /// A test copy of this issue (`send --to`): recorded nowhere, so it changes nothing.
    TestCopy(u32),
    /// A return token this publication did not make: it changes nothing, and no other clue is
    /// looked at.
    Forged,
    /// A genuine token whose delivery is no longer anyone's (a forgotten reader).
    Gone,
    /// No delivery gazette made.
    Nothing,
}

/// What became of one report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Recorded now; the status its reader was moved to, if it moved them.
    Applied(Option<SubscriberStatus>),
    /// Recorded before: nothing changed.
    Seen,
    /// An autoresponder's answer, or nothing to act on.
    NotABounce,
    TestCopy,
    Forged,
    /// No delivery gazette made (or its reader was forgotten).
    Unmatched,
}

impl Outcome {
    pub fn applied(&self) -> bool {
        matches!(self, Self::Applied(_))
    }

    /// Its name in metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied(_) => "applied",
            Self::Seen => "seen",
            Self::NotABounce => "not_a_bounce",
            Self::TestCopy => "test_copy",
            Self::Forged => "forged",
            Self::Unmatched => "unmatched",
        }
    }

    /// Why it was not applied, for people; `None` when it was.
    pub fn note(&self) -> Option<&'static str> {
        match self {
            Self::Applied(_) => None,
            Self::Seen => Some("read before"),
            Self::NotABounce => Some("not a bounce"),
            Self::TestCopy => Some("a test copy"),
            Self::Forged => Some("forged return address"),
            Self::Unmatched => Some("no delivery of ours"),
        }
    }
}

/// One report read and dealt with.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub report: Report,
    pub matched: Match,
    pub outcome: Outcome,
}

impl Ingested {
    /// The issue it is about, when that is known.
    pub fn issue(&self) -> Option<u32> {
        match &self.matched {
            Match::Delivery(t) => Some(t.issue),
            Match::TestCopy(n) => Some(*n),
            _ => None,
        }
    }

    /// The address of the subscriber it was matched to.
    pub fn email(&self) -> Option<&str> {
        match &self.matched {
            Match::Delivery(t) => Some(t.email.as_str()),
            _ => None,
        }
    }
}

/// What a report or an event offers for finding the delivery it is about, the most telling
/// first.
#[derive(Debug, Clone, Copy)]
pub struct Clues<'a> {
    /// Addresses it came back to, or the envelope sender the provider names: where a VERP
    /// token sits.
    pub returned_to: &'a [&'a str],
    /// The Message-ID of the message that went out.
    pub message_id: Option<&'a MessageId>,
    /// The subject of the message that went out: a test copy says it is one.
    pub subject: Option<&'a str>,
    /// The recipients it names.
    pub recipients: &'a [EmailAddress],
}

/// What one report or event says happened, to be recorded under `key`.
struct Finding<'a> {
    key: &'a str,
    kind: Option<BounceKind>,
    status: Option<&'a str>,
    diagnostic: Option<&'a str>,
}

impl Ingest<'_> {
    /// Reads one message and applies it. `envelope_to` is the address the mail system delivered
    /// it to, when it says (`$ORIGINAL_RECIPIENT` of a pipe).
    pub async fn one(&self, raw: &[u8], envelope_to: Option<&str>, now: DateTime<Utc>) -> Result<Ingested, StoreError> {
        let report = read(raw);
        let returned_to: Vec<&str> =
            envelope_to.into_iter().chain(report.returned_to.iter().map(String::as_str)).collect();
        let clues = Clues {
            returned_to: &returned_to,
            message_id: report.original_message_id.as_ref(),
            subject: report.original_subject.as_deref(),
            recipients: &report.recipients,
        };
        let finding = Finding {
            key: &report.key,
            kind: report.kind.bounce(),
            status: report.status.as_deref(),
            diagnostic: report.diagnostic.as_deref(),
        };
        let (matched, outcome) = self.apply(&clues, &finding, now).await?;
        Ok(Ingested { report, matched, outcome })
    }

    /// Applies one provider's event, as [`Ingest::one`] applies a report.
    pub async fn event(&self, event: &Event, now: DateTime<Utc>) -> Result<(Match, Outcome), StoreError> {
        let returned_to: Vec<&str> = event.envelope_sender.iter().map(String::as_str).collect();
        let clues = Clues {
            returned_to: &returned_to,
            message_id: event.message_id.as_ref(),
            subject: event.subject.as_deref(),
            recipients: std::slice::from_ref(&event.recipient),
        };
        let finding = Finding {
            key: event.key.as_str(),
            kind: Some(event.kind),
            status: event.status.as_deref(),
            diagnostic: event.diagnostic.as_deref(),
        };
        self.apply(&clues, &finding, now).await
    }

    /// Finds what `finding` is about and records it once, unless it is nothing to act on.
    async fn apply(
        &self,
        clues: &Clues<'_>,
        finding: &Finding<'_>,
        now: DateTime<Utc>,
    ) -> Result<(Match, Outcome), StoreError> {
        let matched = self.find(clues, now).await?;
        let outcome = match (&matched, finding.kind) {
            (_, None) => Outcome::NotABounce,
            (Match::Forged, _) => Outcome::Forged,
            (Match::TestCopy(_), _) => Outcome::TestCopy,
            (Match::Gone | Match::Nothing, Some(_)) => Outcome::Unmatched,
            (Match::Delivery(target), Some(kind)) => {
                let source = finding.diagnostic.or(finding.status).unwrap_or(match kind {
                    BounceKind::Complaint => "complaint report",
                    _ => "bounce report",
                });
                let bounce = NewBounce {
                    key: finding.key,
                    delivery_id: Some(target.delivery_id),
                    subscriber_id: target.subscriber_id,
                    issue: Some(target.issue),
                    kind,
                    status: finding.status,
                    diagnostic: finding.diagnostic,
                    source,
                };
                match subscribers::apply_report(self.store, self.settings, &bounce, now).await? {
                    BounceOutcome::Recorded { changed_to } => Outcome::Applied(changed_to),
                    BounceOutcome::Seen => Outcome::Seen,
                }
            }
        };
        crate::metrics::bounce_report(outcome.label());
        Ok((matched, outcome))
    }

    /// The delivery a report or an event is about, by the order the module's documentation
    /// gives.
    pub async fn find(&self, clues: &Clues<'_>, now: DateTime<Utc>) -> Result<Match, StoreError> {
        if let Some(path) = &self.settings.return_path {
            let token = clues.returned_to.iter().find_map(|a| path.token_of(a));
            if let Some(token) = token {
                return Ok(match self.signer.read_return_token(&token) {
                    Ok(ReturnToken::Delivery(id)) => match self.store.bounce_target(id).await? {
                        Some(target) => Match::Delivery(target),
                        None => Match::Gone,
                    },
                    Ok(ReturnToken::Test(issue)) => Match::TestCopy(issue),
                    Err(_) => Match::Forged,
                });
            }
        }
        if let Some(id) = clues.message_id
            && let Some(issue) = issue_of(id)
        {
            // A test copy goes out with its issue's Message-ID; its subject says what it is.
            if clues.subject.is_some_and(|s| s.starts_with(TEST_SUBJECT_PREFIX.trim_end())) {
                return Ok(Match::TestCopy(issue));
            }
            if let Some(target) = self.store.bounce_target_by_message_id(issue, &id.to_string()).await? {
                return Ok(Match::Delivery(target));
            }
        }
        for address in clues.recipients {
            if let Some(target) = self.store.bounce_target_by_address(address, now - RECENT).await? {
                return Ok(Match::Delivery(target));
            }
        }
        Ok(Match::Nothing)
    }
}
