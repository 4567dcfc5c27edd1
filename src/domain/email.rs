//! An email address a subscriber can be reached at, checked once when it enters gazette.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

/// A single mailbox (`local@domain`), with the domain lowercased so that two spellings of one
/// address compare equal. Never holds a display name, white space or a line break, so it can go
/// into a header or an SMTP envelope as it is.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct EmailAddress(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmailAddressError {
    #[error("the address is empty")]
    Empty,
    #[error("`{0}` is too long: an address has at most 254 characters, 64 before the @")]
    TooLong(String),
    #[error("`{0}` holds white space or a control character (a line break?)")]
    Control(String),
    #[error("`{0}` is not an address of the form name@example.org")]
    Syntax(String),
}

impl EmailAddress {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as gazette compares it: the whole of it in lower case, so `Ani@Example.org`
    /// and `ani@example.org` are one subscriber. ASCII letters only, exactly as SQL's `lower()`
    /// folds them in both stores, so that a key made here finds the row an index made there.
    pub fn key(&self) -> String {
        self.0.to_ascii_lowercase()
    }

    /// The mailbox the address reaches: its key with a `+tag` dropped from the local part, as
    /// most providers deliver `ani+news@` to `ani@`. Limits that protect a mailbox count by it.
    pub fn mailbox(&self) -> String {
        let key = self.key();
        match key.rsplit_once('@') {
            Some((local, domain)) => {
                let base = local.split_once('+').map_or(local, |(base, _)| base);
                if base.is_empty() { key.clone() } else { format!("{base}@{domain}") }
            }
            None => key,
        }
    }

    /// True when both are one subscriber.
    pub fn same_as(&self, other: &Self) -> bool {
        self.0.eq_ignore_ascii_case(&other.0)
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }

    /// The address as lettre's type, for headers and the envelope, with an international
    /// domain in its ASCII form (`jan@xn--pklad-zsa96e.cz`): that is the same mailbox, and it
    /// needs no SMTPUTF8, which lettre would otherwise ask of the server for the domain alone.
    /// Cannot fail for a parsed address.
    pub fn to_lettre(&self) -> lettre::Address {
        let (local, domain) = self.0.rsplit_once('@').unwrap_or((self.0.as_str(), ""));
        if !domain.is_ascii()
            && let Ok(url::Host::Domain(ascii)) = url::Host::parse(domain)
            && let Ok(address) = lettre::Address::new(local, &ascii)
        {
            return address;
        }
        self.0.parse().expect("an EmailAddress is always a valid lettre address")
    }
}

impl FromStr for EmailAddress {
    type Err = EmailAddressError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err(EmailAddressError::Empty);
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(EmailAddressError::Control(t.escape_debug().to_string()));
        }
        let (local, domain) = t.rsplit_once('@').ok_or_else(|| EmailAddressError::Syntax(t.into()))?;
        if t.len() > 254 || local.len() > 64 {
            return Err(EmailAddressError::TooLong(t.into()));
        }
        let domain_ok = domain.contains('.')
            && !domain.starts_with('[')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        let candidate = format!("{local}@{}", domain.to_lowercase());
        if !domain_ok || local.is_empty() || candidate.parse::<lettre::Address>().is_err() {
            return Err(EmailAddressError::Syntax(t.into()));
        }
        Ok(Self(candidate))
    }
}

impl AsRef<str> for EmailAddress {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for EmailAddress {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowercases_the_domain_only() {
        let a: EmailAddress = "Ann.Lee@Example.ORG".parse().expect("valid");
        assert_eq!(a.as_str(), "Ann.Lee@example.org");
        assert_eq!(a.domain(), "example.org");
    }

    #[test]
    fn refuses_line_breaks_and_spaces() {
        for bad in ["a@b.org\r\nBcc: x@y.org", "a b@c.org", "a@b.org\nx", "a\t@b.org"] {
            assert!(matches!(bad.parse::<EmailAddress>(), Err(EmailAddressError::Control(_))), "{bad:?}");
        }
    }

    #[test]
    fn refuses_bad_syntax() {
        for bad in ["", "plain", "@b.org", "a@", "a@localhost", "a@[127.0.0.1]", "a@-b.org", "a@b..org", "A <a@b.org>"]
        {
            assert!(bad.parse::<EmailAddress>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn refuses_overlong() {
        let long_local = format!("{}@b.org", "a".repeat(65));
        assert!(matches!(long_local.parse::<EmailAddress>(), Err(EmailAddressError::TooLong(_))));
    }

    #[test]
    fn keys_fold_case_and_mailboxes_fold_tags() {
        let a: EmailAddress = "Ani+News@Example.org".parse().expect("valid");
        let b: EmailAddress = "ani@example.org".parse().expect("valid");
        assert_eq!(a.as_str(), "Ani+News@example.org", "the spelling given is kept");
        assert_eq!(a.key(), "ani+news@example.org");
        assert_eq!(a.mailbox(), b.key());
        assert!(!a.same_as(&b));
        assert!(b.same_as(&"ANI@example.ORG".parse().expect("valid")));
        let odd: EmailAddress = "+tag@example.org".parse().expect("valid");
        assert_eq!(odd.mailbox(), "+tag@example.org");
    }

    #[test]
    fn accepts_international_domains() {
        let a: EmailAddress = "jan@příklad.cz".parse().expect("valid");
        assert_eq!(a.as_str(), "jan@příklad.cz", "kept as given");
        assert_eq!(a.to_lettre().to_string(), "jan@xn--pklad-zsa96e.cz", "mailed in its ASCII form");
        let b: EmailAddress = "zoë@bücher.de".parse().expect("valid");
        assert_eq!(b.to_lettre().to_string(), "zoë@xn--bcher-kva.de", "only the domain has an ASCII form");
        let c: EmailAddress = "ann@example.org".parse().expect("valid");
        assert_eq!(c.to_lettre().to_string(), "ann@example.org");
    }
}
