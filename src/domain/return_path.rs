//! The envelope sender bounces come back to (`[bounces] return_path`), and the per-message
//! addresses made from it by VERP: `bounces+TOKEN@example.org`, TOKEN naming what was sent.
//! What a token says, and how it is signed, is `tokens`' business; here is only where it sits.

use std::{fmt, str::FromStr};

use super::{EmailAddress, EmailAddressError};

/// Characters a token may hold: lower-case letters, digits and `-`. Mail servers may fold a local
/// part's case, and none of these is special in a local part, so a token survives the trip.
fn token_char(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'
}

/// An address whose local part leaves room for `+` and a token of [`ReturnPath::MAX_TOKEN`]
/// characters within the 64 a local part may have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnPath(EmailAddress);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReturnPathError {
    #[error(transparent)]
    Address(#[from] EmailAddressError),
    #[error(
        "`{0}` leaves no room for the token each message adds to it (`+` and up to {max} characters): use a local part of at most {room} characters, like bounces@",
        max = ReturnPath::MAX_TOKEN,
        room = ReturnPath::MAX_LOCAL
    )]
    TooLong(String),
    #[error("`{0}` is not an ASCII address: mail servers may not fold a token's case in it as they should")]
    NotAscii(String),
}

impl ReturnPath {
    /// The longest token an address made from a return path carries.
    pub const MAX_TOKEN: usize = 40;
    /// The longest local part a return path may have: 64, less `+` and a token.
    pub const MAX_LOCAL: usize = 64 - 1 - Self::MAX_TOKEN;

    pub fn address(&self) -> &EmailAddress {
        &self.0
    }

    fn parts(&self) -> (&str, &str) {
        self.0.as_str().rsplit_once('@').unwrap_or((self.0.as_str(), ""))
    }

    /// `local+token@domain`. None when `token` is longer than [`Self::MAX_TOKEN`] or holds a
    /// character other than a lower-case letter, a digit or `-`.
    pub fn with_token(&self, token: &str) -> Option<EmailAddress> {
        if token.is_empty() || token.len() > Self::MAX_TOKEN || !token.chars().all(token_char) {
            return None;
        }
        let (local, domain) = self.parts();
        format!("{local}+{token}@{domain}").parse().ok()
    }

    /// The token of an address made by [`Self::with_token`], in lower case, as a mail server may
    /// have changed its case; None for any other address (another domain, another local part,
    /// no token).
    pub fn token_of(&self, address: &str) -> Option<String> {
        let address = address.trim().trim_start_matches('<').trim_end_matches('>').to_ascii_lowercase();
        let (local, domain) = self.parts();
        let (their_local, their_domain) = address.rsplit_once('@')?;
        if !their_domain.eq_ignore_ascii_case(domain) {
            return None;
        }
        let token = their_local.strip_prefix(&local.to_ascii_lowercase())?.strip_prefix('+')?;
        (!token.is_empty() && token.len() <= Self::MAX_TOKEN && token.chars().all(token_char)).then(|| token.to_owned())
    }
}

impl FromStr for ReturnPath {
    type Err = ReturnPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let address: EmailAddress = s.parse()?;
        if !address.as_str().is_ascii() {
            return Err(ReturnPathError::NotAscii(address.to_string()));
        }
        let local = address.as_str().rsplit_once('@').map_or("", |(l, _)| l);
        if local.len() > Self::MAX_LOCAL {
            return Err(ReturnPathError::TooLong(address.to_string()));
        }
        Ok(Self(address))
    }
}

impl fmt::Display for ReturnPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path(s: &str) -> ReturnPath {
        s.parse().expect("a return path")
    }

    #[test]
    fn a_token_goes_after_a_plus_and_comes_back_in_lower_case() {
        let p = path("Bounces@Example.org");
        let verp = p.with_token("d42-abc").expect("fits");
        assert_eq!(verp.as_str(), "Bounces+d42-abc@example.org");
        assert_eq!(p.token_of("bounces+d42-abc@example.org").as_deref(), Some("d42-abc"));
        assert_eq!(p.token_of("<BOUNCES+D42-ABC@EXAMPLE.ORG>").as_deref(), Some("d42-abc"), "case folded");
    }

    #[test]
    fn other_addresses_carry_no_token() {
        let p = path("bounces@example.org");
        for other in [
            "bounces@example.org",
            "bounces+@example.org",
            "bounces+d1-x@example.net",
            "other+d1-x@example.org",
            "bouncesx+d1@example.org",
            "bounces+d1_x@example.org",
            "not an address",
        ] {
            assert_eq!(p.token_of(other), None, "{other}");
        }
    }

    #[test]
    fn a_return_path_that_already_has_a_tag_keeps_it() {
        let p = path("mail+bounces@example.org");
        let verp = p.with_token("t3-zz").expect("fits");
        assert_eq!(verp.as_str(), "mail+bounces+t3-zz@example.org");
        assert_eq!(p.token_of(verp.as_str()).as_deref(), Some("t3-zz"));
    }

    #[test]
    fn a_token_must_fit_and_be_plain() {
        let p = path("bounces@example.org");
        assert!(p.with_token(&"a".repeat(ReturnPath::MAX_TOKEN)).is_some());
        assert!(p.with_token(&"a".repeat(ReturnPath::MAX_TOKEN + 1)).is_none());
        assert!(p.with_token("UPPER").is_none());
        assert!(p.with_token("a+b").is_none());
        assert!(p.with_token("").is_none());
    }

    #[test]
    fn a_local_part_too_long_for_a_token_is_refused() {
        let long = format!("{}@example.org", "b".repeat(ReturnPath::MAX_LOCAL + 1));
        assert!(matches!(long.parse::<ReturnPath>(), Err(ReturnPathError::TooLong(_))));
        let fits = format!("{}@example.org", "b".repeat(ReturnPath::MAX_LOCAL));
        let p = path(&fits);
        let verp = p.with_token(&"a".repeat(ReturnPath::MAX_TOKEN)).expect("fits");
        assert_eq!(verp.as_str().split_once('@').map(|(l, _)| l.len()), Some(64));
        assert!(matches!("zoë@example.org".parse::<ReturnPath>(), Err(ReturnPathError::NotAscii(_))));
        assert!(matches!("nobody".parse::<ReturnPath>(), Err(ReturnPathError::Address(_))));
    }
}
