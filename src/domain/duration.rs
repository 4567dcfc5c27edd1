//! Spans written as `30s`, `15m`, `24h`, `7d`.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Duration(std::time::Duration);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a duration: write a whole number and a unit, like 30s, 15m, 24h or 7d")]
pub struct DurationError(String);

impl Duration {
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    pub fn std(self) -> std::time::Duration {
        self.0
    }

    pub fn chrono(self) -> chrono::Duration {
        chrono::Duration::from_std(self.0).unwrap_or(chrono::Duration::MAX)
    }
}

/// How long something took, for people: `0.4 s`, `25 s`, `3 min 12 s`, `2 h 5 min`.
pub fn took(elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs();
    match secs {
        0..10 => format!("{:.1} s", elapsed.as_secs_f64()),
        10..60 => format!("{secs} s"),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

impl FromStr for Duration {
    type Err = DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || DurationError(s.to_owned());
        let t = s.trim();
        let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(err)?;
        let (digits, unit) = t.split_at(split);
        let n: u64 = digits.parse().map_err(|_| err())?;
        let unit_secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            "w" => 7 * 86_400,
            _ => return Err(err()),
        };
        n.checked_mul(unit_secs).map(Self::from_secs).ok_or_else(err)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.as_secs();
        for (unit, size) in [("d", 86_400), ("h", 3600), ("m", 60)] {
            if s > 0 && s.is_multiple_of(size) {
                return write!(f, "{}{unit}", s / size);
            }
        }
        write!(f, "{s}s")
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn took_reads_as_people_say_it() {
        let secs = std::time::Duration::from_secs_f64;
        assert_eq!(took(secs(0.42)), "0.4 s");
        assert_eq!(took(secs(25.2)), "25 s");
        assert_eq!(took(secs(192.0)), "3 min 12 s");
        assert_eq!(took(secs(7500.0)), "2 h 5 min");
    }

    #[test]
    fn parses_each_unit() {
        assert_eq!("30s".parse::<Duration>(), Ok(Duration::from_secs(30)));
        assert_eq!("15m".parse::<Duration>(), Ok(Duration::from_secs(900)));
        assert_eq!("24h".parse::<Duration>(), Ok(Duration::from_secs(86_400)));
        assert_eq!("7d".parse::<Duration>(), Ok(Duration::from_secs(604_800)));
    }

    #[test]
    fn refuses_nonsense() {
        for bad in ["", "7", "d", "7 days", "-1d", "1.5h", "99999999999999999999d"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }

    #[test]
    fn displays_in_the_largest_whole_unit() {
        assert_eq!(Duration::from_secs(604_800).to_string(), "7d");
        assert_eq!(Duration::from_secs(90).to_string(), "90s");
    }
}
