//! The states of subscribers, deliveries and issues as enums, each with the one spelling the
//! database, the JSON and the manual (docs/src/subscribers.md, docs/src/delivery.md) use.

use std::{fmt, str::FromStr};

use serde::Serialize;

macro_rules! spelled_enum {
    ($(#[$doc:meta])* $name:ident, $what:literal { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = UnknownState;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownState { what: $what, value: s.to_owned(), expected: &[$($text),+] }),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{value}` is not a {what}; use one of: {}", expected.join(", "))]
pub struct UnknownState {
    what: &'static str,
    value: String,
    expected: &'static [&'static str],
}

spelled_enum!(
    /// Where a subscriber stands. Only `Active` receives issues.
    SubscriberStatus, "subscriber status" {
        Unconfirmed = "unconfirmed",
        Active = "active",
        Unsubscribed = "unsubscribed",
        Bounced = "bounced",
        Complained = "complained",
    }
);

impl SubscriberStatus {
    /// Statuses that an import or a list file must never undo: the reader left or cannot be reached.
    pub fn is_final_no(self) -> bool {
        matches!(self, Self::Unsubscribed | Self::Bounced | Self::Complained)
    }
}

spelled_enum!(
    /// What became of one (issue, subscriber) pair.
    DeliveryState, "delivery state" {
        Queued = "queued",
        Sent = "sent",
        Deferred = "deferred",
        Failed = "failed",
        Skipped = "skipped",
    }
);

impl DeliveryState {
    pub fn is_final(self) -> bool {
        matches!(self, Self::Sent | Self::Failed | Self::Skipped)
    }
}

spelled_enum!(
    /// An issue is `Sending` from its creation until every delivery is final, unless its bounce
    /// or complaint rate passed its limit: then it is `Paused` until a person resumes it.
    IssueStatus, "issue status" {
        Draft = "draft",
        Held = "held",
        Approved = "approved",
        Sending = "sending",
        Paused = "paused",
        Sent = "sent",
        Cancelled = "cancelled",
    }
);

spelled_enum!(
    /// What a report that came back after a message went out says: it bounced for good (`Hard`)
    /// or for now (`Soft`), the reader called it spam (`Complaint`), someone's autoresponder
    /// answered (`AutoReply`), or nothing gazette can act on (`Unknown`).
    ReportKind, "report kind" {
        Hard = "hard",
        Soft = "soft",
        Complaint = "complaint",
        AutoReply = "auto_reply",
        Unknown = "unknown",
    }
);

spelled_enum!(
    /// A report that changes a reader's standing, as it is recorded: the kinds of
    /// [`ReportKind`] that are acted on.
    BounceKind, "bounce kind" {
        Hard = "hard",
        Soft = "soft",
        Complaint = "complaint",
    }
);

impl ReportKind {
    /// The kind as recorded, for the kinds that change a reader's standing; `None` for an
    /// autoresponder's answer or a message that says nothing gazette can act on.
    pub fn bounce(self) -> Option<BounceKind> {
        match self {
            Self::Hard => Some(BounceKind::Hard),
            Self::Soft => Some(BounceKind::Soft),
            Self::Complaint => Some(BounceKind::Complaint),
            Self::AutoReply | Self::Unknown => None,
        }
    }
}

impl From<BounceKind> for ReportKind {
    fn from(k: BounceKind) -> Self {
        match k {
            BounceKind::Hard => Self::Hard,
            BounceKind::Soft => Self::Soft,
            BounceKind::Complaint => Self::Complaint,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_spelling() {
        for s in SubscriberStatus::ALL {
            assert_eq!(s.as_str().parse::<SubscriberStatus>(), Ok(*s));
        }
        for s in DeliveryState::ALL {
            assert_eq!(s.to_string().parse::<DeliveryState>(), Ok(*s));
        }
        for k in ReportKind::ALL {
            assert_eq!(k.as_str().parse::<ReportKind>(), Ok(*k));
            if let Some(b) = k.bounce() {
                assert_eq!(ReportKind::from(b), *k);
                assert_eq!(b.as_str(), k.as_str(), "one spelling for both");
            }
        }
        assert_eq!(BounceKind::ALL.len(), 3);
        let err = "gone".parse::<SubscriberStatus>().expect_err("unknown");
        assert!(err.to_string().contains("unsubscribed"));
    }
}
