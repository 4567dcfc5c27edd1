//! A message's Message-ID: made once by whoever builds the message, then carried as this type
//! to the header, the outbox's file name and the delivery ledger.

use std::{fmt, str::FromStr};

/// RFC 5322's `<left@right>`. Neither half is empty or holds white space, a control character,
/// `<`, `>` or `@`, so the id is one word in a header and one name in a folder. Shown with its
/// angle brackets (as the header, the ledger and mail servers' logs hold it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MessageId {
    /// `left@right`, without the brackets.
    id: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MessageIdError {
    #[error("`{0}` is not a Message-ID of the form <left@right>")]
    Syntax(String),
    #[error("the Message-ID part `{0}` is empty or holds white space, a control character, `<`, `>` or `@`")]
    Part(String),
}

impl MessageId {
    /// The id `<left@right>`.
    pub fn new(left: &str, right: &str) -> Result<Self, MessageIdError> {
        for part in [left, right] {
            let bad = |c: char| c.is_whitespace() || c.is_control() || matches!(c, '<' | '>' | '@');
            if part.is_empty() || part.chars().any(bad) {
                return Err(MessageIdError::Part(part.escape_debug().to_string()));
            }
        }
        Ok(Self { id: format!("{left}@{right}") })
    }

    /// `left@right`, without the brackets.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl FromStr for MessageId {
    type Err = MessageIdError;

    /// Reads `<left@right>`, or the same without its brackets.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let inner = t.strip_prefix('<').and_then(|t| t.strip_suffix('>')).unwrap_or(t);
        let (left, right) =
            inner.split_once('@').ok_or_else(|| MessageIdError::Syntax(t.escape_debug().to_string()))?;
        Self::new(left, right)
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_its_brackets_and_reads_with_or_without_them() {
        let id = MessageId::new("issue3.ab12", "example.org").expect("valid");
        assert_eq!(id.to_string(), "<issue3.ab12@example.org>");
        assert_eq!(id.as_str(), "issue3.ab12@example.org");
        assert_eq!("<issue3.ab12@example.org>".parse::<MessageId>(), Ok(id.clone()));
        assert_eq!(" issue3.ab12@example.org ".parse::<MessageId>(), Ok(id));
    }

    #[test]
    fn a_part_that_could_break_a_header_or_a_file_name_is_refused() {
        for (left, right) in [("", "example.org"), ("a", ""), ("a b", "example.org"), ("a", "x\r\nBcc: y")] {
            assert!(matches!(MessageId::new(left, right), Err(MessageIdError::Part(_))), "{left:?} {right:?}");
        }
        assert!(matches!("<a@b@c>".parse::<MessageId>(), Err(MessageIdError::Part(_))));
        assert!(matches!("no-at-sign".parse::<MessageId>(), Err(MessageIdError::Syntax(_))));
        assert!(matches!("<a>b@c>".parse::<MessageId>(), Err(MessageIdError::Part(_))));
    }

    #[test]
    fn an_international_domain_is_kept_as_written() {
        let id = MessageId::new("issue1.x", "příklad.cz").expect("valid");
        assert_eq!(id.to_string(), "<issue1.x@příklad.cz>");
    }
}
