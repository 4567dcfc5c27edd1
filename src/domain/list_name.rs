//! The name of a subscriber list: what `[[list]] name`, `--list` and a CSV `lists` cell hold.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ListName(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a list name: use 1 to 64 letters, digits, `-` or `_`, starting with a letter or digit")]
pub struct ListNameError(String);

impl FromStr for ListName {
    type Err = ListNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let ok = (1..=64).contains(&t.len())
            && t.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok { Ok(Self(t.to_owned())) } else { Err(ListNameError(s.to_owned())) }
    }
}

impl AsRef<str> for ListName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ListName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ListName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_plain_names() {
        assert_eq!("weekly".parse::<ListName>().map(|l| l.to_string()), Ok("weekly".into()));
        assert!("team_2-b".parse::<ListName>().is_ok());
    }

    #[test]
    fn refuses_odd_names() {
        for bad in ["", "-x", "a b", "x;y", "é", &"a".repeat(65)] {
            assert!(bad.parse::<ListName>().is_err(), "{bad}");
        }
    }
}
