//! A share of a whole, as people write it: `5%`, `0.1%`. Kept in millionths so that two shares
//! compare exactly and a count can be checked against one without floating-point doubt.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Share {
    millionths: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a share: write a percentage above 0 and at most 100, like \"5%\" or \"0.1%\"")]
pub struct ShareError(String);

const WHOLE: u64 = 1_000_000;

/// The shares of an issue's messages that may come back before it is paused: hard bounces and
/// complaints, each off when `None`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimits {
    pub hard_bounces: Option<Share>,
    pub complaints: Option<Share>,
}

impl RateLimits {
    pub fn is_off(&self) -> bool {
        self.hard_bounces.is_none() && self.complaints.is_none()
    }
}

impl Share {
    /// Is `part` of `whole` more than this share? (`whole` = 0: no.)
    pub fn exceeded_by(self, part: u64, whole: u64) -> bool {
        whole > 0 && u128::from(part) * u128::from(WHOLE) > u128::from(self.millionths) * u128::from(whole)
    }

    /// The largest count out of `whole` that does not exceed the share.
    pub fn allowance(self, whole: u64) -> u64 {
        let allowed = u128::from(whole) * u128::from(self.millionths) / u128::from(WHOLE);
        u64::try_from(allowed).unwrap_or(u64::MAX)
    }
}

impl FromStr for Share {
    type Err = ShareError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || ShareError(s.to_owned());
        let number = s.trim().strip_suffix('%').ok_or_else(err)?.trim();
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        // A percentage with up to four decimals is a whole number of millionths.
        if whole.is_empty() && fraction.is_empty()
            || fraction.len() > 4
            || !whole.bytes().chain(fraction.bytes()).all(|b| b.is_ascii_digit())
        {
            return Err(err());
        }
        let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| err())? };
        let fraction: u64 = format!("{fraction:0<4}").parse().map_err(|_| err())?;
        let millionths = whole.checked_mul(10_000).and_then(|w| w.checked_add(fraction)).ok_or_else(err)?;
        if millionths == 0 || millionths > WHOLE {
            return Err(err());
        }
        Ok(Self { millionths: u32::try_from(millionths).map_err(|_| err())? })
    }
}

impl fmt::Display for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (whole, fraction) = (self.millionths / 10_000, self.millionths % 10_000);
        if fraction == 0 {
            write!(f, "{whole}%")
        } else {
            let digits = format!("{fraction:04}");
            write!(f, "{whole}.{}%", digits.trim_end_matches('0'))
        }
    }
}

impl<'de> Deserialize<'de> for Share {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(s: &str) -> Share {
        s.parse().expect("a share")
    }

    #[test]
    fn reads_and_writes_percentages() {
        for (text, shown) in [("5%", "5%"), ("0.1%", "0.1%"), (" 2.50 % ", "2.5%"), ("100%", "100%"), (".5%", "0.5%")] {
            assert_eq!(share(text).to_string(), shown, "{text}");
        }
        for bad in ["5", "0%", "-1%", "101%", "1.23456%", "%", "five%", "1e2%", ".%"] {
            assert!(bad.parse::<Share>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_share_is_exceeded_only_past_it() {
        let five = share("5%");
        assert!(!five.exceeded_by(10, 200));
        assert!(five.exceeded_by(11, 200));
        assert!(!five.exceeded_by(0, 0));
        assert_eq!(five.allowance(200), 10);
        let tenth = share("0.1%");
        assert!(!tenth.exceeded_by(1, 1000));
        assert!(tenth.exceeded_by(1, 999));
        assert_eq!(tenth.allowance(200), 0);
    }
}
