//! A bounce or complaint as a sending provider reports it through its webhook, in words that
//! belong to no provider: what happened, to which address, what the server said, and whatever
//! the provider kept of the message that went out (its Message-ID, its envelope sender, its
//! subject). The web's webhook handlers make these from each provider's payload once it has been
//! verified; `Ingest::event` (in `mod.rs`) matches and applies one exactly as it does a report
//! that came back as mail. No I/O here.

use std::{fmt, str::FromStr};

use crate::domain::{BounceKind, EmailAddress, MessageId};

/// The providers whose webhooks gazette reads, as they are named in `/webhooks/{provider}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    Postmark,
    Mailgun,
    Sendgrid,
    Ses,
}

impl Provider {
    pub const ALL: [Self; 4] = [Self::Postmark, Self::Mailgun, Self::Sendgrid, Self::Ses];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Postmark => "postmark",
            Self::Mailgun => "mailgun",
            Self::Sendgrid => "sendgrid",
            Self::Ses => "ses",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    #[error("no provider is called `{0}`")]
    UnknownProvider(String),
    #[error("the provider's event id is empty, longer than {MAX_ID} characters, or holds white space")]
    BadId,
}

impl FromStr for Provider {
    type Err = EventError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| EventError::UnknownProvider(s.to_owned()))
    }
}

/// The longest event id taken from a provider: theirs are UUIDs, numbers or base64 ids well
/// under this.
const MAX_ID: usize = 200;

/// What makes an event the same event when a provider sends it again: the provider and its own
/// id for it, as `provider:id`. It shares the bounce record's column with the keys of mailed
/// reports (`<message-id>` or `sha256:…`), which never start with a provider's name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventKey(String);

impl EventKey {
    pub fn new(provider: Provider, id: &str) -> Result<Self, EventError> {
        if id.is_empty() || id.chars().count() > MAX_ID || id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EventError::BadId);
        }
        Ok(Self(format!("{provider}:{id}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One bounce or complaint, about one recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub key: EventKey,
    pub kind: BounceKind,
    /// The address the message went to.
    pub recipient: EmailAddress,
    /// The enhanced status code (`5.1.1`), when the provider gives one.
    pub status: Option<String>,
    /// The server's (or the provider's) words, on one line.
    pub diagnostic: Option<String>,
    /// The Message-ID of the message that went out, when the provider kept it.
    pub message_id: Option<MessageId>,
    /// The envelope sender it went out from (where a VERP token sits), when the provider says.
    pub envelope_sender: Option<String>,
    /// Its subject, when the provider says: a test copy is known by it.
    pub subject: Option<String>,
}

/// A provider's text as one line of at most `MAX_TEXT` characters, or nothing when it is blank:
/// what is recorded and shown comes from outside and must not break a table or a log line.
pub fn one_line(text: Option<&str>) -> Option<String> {
    const MAX_TEXT: usize = 1000;
    let words: Vec<&str> = text?.split_whitespace().collect();
    let line: String = words.join(" ").chars().filter(|c| !c.is_control()).take(MAX_TEXT).collect();
    (!line.is_empty()).then_some(line)
}

/// An enhanced status code (`5.1.1`) as a provider gives it, or nothing when it is not one:
/// a class digit of 2, 4 or 5, then two numbers of at most three digits.
pub fn status_code(text: Option<&str>) -> Option<String> {
    let t = text?.trim();
    let mut parts = t.split('.');
    let class = parts.next()?;
    let rest: Vec<&str> = parts.collect();
    let numeric = |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
    (matches!(class, "2" | "4" | "5") && rest.len() == 2 && rest.iter().all(|p| numeric(p))).then(|| t.to_owned())
}

/// A Message-ID as a provider gives it, with or without its angle brackets; nothing when it is
/// no Message-ID (a provider's own id, say).
pub fn message_id(text: Option<&str>) -> Option<MessageId> {
    text?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn providers_are_named_as_in_the_route() {
        for p in Provider::ALL {
            assert_eq!(p.as_str().parse::<Provider>(), Ok(p));
        }
        assert!("Postmark".parse::<Provider>().is_err());
        assert!("sparkpost".parse::<Provider>().is_err());
    }

    #[test]
    fn a_key_is_the_provider_and_its_id() {
        assert_eq!(EventKey::new(Provider::Mailgun, "Ase-jGkQ").map(|k| k.0), Ok("mailgun:Ase-jGkQ".to_owned()));
        assert_eq!(EventKey::new(Provider::Ses, ""), Err(EventError::BadId));
        assert_eq!(EventKey::new(Provider::Ses, "a b"), Err(EventError::BadId));
        assert_eq!(EventKey::new(Provider::Ses, &"x".repeat(201)), Err(EventError::BadId));
    }

    #[test]
    fn texts_become_one_line_and_codes_are_checked() {
        assert_eq!(one_line(Some("550 5.1.1\r\n  no such\tuser ")), Some("550 5.1.1 no such user".to_owned()));
        assert_eq!(one_line(Some(" \n")), None);
        assert_eq!(status_code(Some("5.1.1")), Some("5.1.1".to_owned()));
        assert_eq!(status_code(Some("4.4.7")), Some("4.4.7".to_owned()));
        assert_eq!(status_code(Some("550")), None);
        assert_eq!(status_code(Some("5.1.1; drop table")), None);
        assert_eq!(
            message_id(Some("issue1.abc@news.example.org")).map(|m| m.to_string()),
            Some("<issue1.abc@news.example.org>".to_owned())
        );
        assert_eq!(message_id(Some("0100018e-ses-id")), None);
    }
}
