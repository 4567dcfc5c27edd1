//! The names of what a reader may choose: an edition (`[[edition]] name`) or a topic
//! (`[[topic]] name`). They are matched case-insensitively wherever they are typed (a CSV cell,
//! the preferences form, `--edition`), so each carries its key, the name in lower case, which is
//! also what the store keeps.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

/// At most this many characters: a name is a label on a form and in a menu.
const MAX_CHARS: usize = 60;

/// A name as the publisher wrote it ("Arts & Culture"), with its key ("arts & culture").
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ChoiceName(String);

/// An edition's name.
pub type EditionName = ChoiceName;
/// A topic's name.
pub type TopicName = ChoiceName;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "`{0}` is not a name for an edition or a topic: use 1 to 60 printable characters, without `;` (it separates names in a CSV cell)"
)]
pub struct ChoiceNameError(String);

impl ChoiceName {
    /// How the name is compared and stored: lower case.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    /// Whether `typed` names this, case aside.
    pub fn matches(&self, typed: &str) -> bool {
        self.0.to_lowercase() == typed.trim().to_lowercase()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ChoiceName {
    type Err = ChoiceNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let count = t.chars().count();
        let ok = (1..=MAX_CHARS).contains(&count) && !t.contains(';') && !t.chars().any(char::is_control);
        if ok { Ok(Self(t.to_owned())) } else { Err(ChoiceNameError(s.to_owned())) }
    }
}

impl AsRef<str> for ChoiceName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChoiceName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ChoiceName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_spelling_and_matches_any_case() {
        let n: ChoiceName = " Arts & Culture ".parse().expect("name");
        assert_eq!(n.as_str(), "Arts & Culture");
        assert_eq!(n.key(), "arts & culture");
        assert!(n.matches("ARTS & culture"));
        assert!(!n.matches("arts"));
    }

    #[test]
    fn refuses_empty_long_separated_and_control_names() {
        for bad in ["", "   ", "a;b", "line\nbreak", &"x".repeat(61)] {
            assert!(bad.parse::<ChoiceName>().is_err(), "{bad:?}");
        }
        assert!("Économie".parse::<ChoiceName>().is_ok());
    }
}
