//! How often something may happen: a count per span, as `5/m`, or a bare number, a count a second.

use std::{fmt, str::FromStr};

use serde::{Deserialize, Deserializer, de};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub count: u32,
    pub per: std::time::Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a rate: write a count a second (20) or a count and a span: 20/s, 300/m or 1000/h")]
pub struct RateError(String);

impl Rate {
    pub fn per_second(count: u32) -> Self {
        Self { count, per: std::time::Duration::from_secs(1) }
    }

    /// The rate as events a second, which may be below one (`30/m` is 0.5).
    pub fn as_per_second(&self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64().max(f64::MIN_POSITIVE)
    }
}

impl FromStr for Rate {
    type Err = RateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || RateError(s.to_owned());
        let (n, unit) = s.trim().split_once('/').unwrap_or((s.trim(), "s"));
        let count: u32 = n.trim().parse().map_err(|_| err())?;
        let secs = match unit.trim() {
            "s" => 1,
            "m" => 60,
            "h" => 3600,
            _ => return Err(err()),
        };
        if count == 0 {
            return Err(err());
        }
        Ok(Self { count, per: std::time::Duration::from_secs(secs) })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.per.as_secs() {
            1 => "s",
            60 => "m",
            _ => "h",
        };
        write!(f, "{}/{unit}", self.count)
    }
}

/// `count` events over `elapsed`, as people read a rate: see [`readable_rate`].
pub fn throughput(count: u64, elapsed: std::time::Duration) -> String {
    let secs = elapsed.as_secs_f64();
    // Counts are far below 2^52: the conversion is exact.
    readable_rate(if secs > 0.0 { count as f64 / secs } else { 0.0 })
}

/// A rate as people read it: a whole number a second (`20/s`, not `19.9648/s`), with one
/// decimal under ten (`4.5/s`).
pub fn readable_rate(per_second: f64) -> String {
    if !per_second.is_finite() || per_second <= 0.0 {
        "0/s".to_owned()
    } else if per_second >= 9.95 {
        format!("{per_second:.0}/s")
    } else {
        format!("{per_second:.1}/s")
    }
}

/// A rate key's value as written: a number (a count a second) or a string (`"20/s"`, `"5/m"`).
/// Both forms are taken by every rate key, so `rate = 20` and `rate = "20/s"` mean the same.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RateValue {
    Number(i64),
    Text(String),
}

impl RateValue {
    /// The rate, where zero is no rate at all.
    pub fn rate(&self) -> Result<Rate, RateError> {
        match self {
            Self::Number(n) => {
                u32::try_from(*n).ok().filter(|n| *n > 0).map(Rate::per_second).ok_or_else(|| RateError(n.to_string()))
            }
            Self::Text(t) => t.parse(),
        }
    }

    /// The rate for a key where `0` (or `"0"`) means no limit: `None` then.
    pub fn limit(&self) -> Result<Option<Rate>, RateError> {
        match self {
            Self::Number(0) => Ok(None),
            Self::Text(t) if t.trim() == "0" => Ok(None),
            other => other.rate().map(Some),
        }
    }
}

impl fmt::Display for RateValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Number(n) => write!(f, "{n}"),
            Self::Text(t) => f.write_str(t),
        }
    }
}

impl<'de> Deserialize<'de> for RateValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;

        impl de::Visitor<'_> for Visit {
            type Value = RateValue;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a count a second (20) or a count and a span (\"20/s\", \"300/m\", \"1000/h\")")
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<RateValue, E> {
                Ok(RateValue::Number(v))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<RateValue, E> {
                Ok(RateValue::Number(i64::try_from(v).unwrap_or(i64::MAX)))
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<RateValue, E> {
                Ok(RateValue::Text(v.to_owned()))
            }
        }

        d.deserialize_any(Visit)
    }
}

impl<'de> Deserialize<'de> for Rate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        RateValue::deserialize(d)?.rate().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rates() {
        let r: Rate = "5/m".parse().expect("valid");
        assert_eq!((r.count, r.per.as_secs()), (5, 60));
        assert_eq!("20".parse::<Rate>(), Ok(Rate::per_second(20)), "a bare count is a count a second");
        assert!("0/m".parse::<Rate>().is_err());
        assert!("5/d".parse::<Rate>().is_err());
        assert!("five".parse::<Rate>().is_err());
        assert!(("30/m".parse::<Rate>().expect("valid").as_per_second() - 0.5).abs() < 1e-9);
    }

    #[test]
    fn throughput_reads_as_whole_numbers_or_one_decimal_under_ten() {
        let secs = std::time::Duration::from_secs_f64;
        assert_eq!(throughput(503, secs(25.194)), "20/s");
        assert_eq!(throughput(9, secs(2.0)), "4.5/s");
        assert_eq!(throughput(99, secs(10.0)), "9.9/s");
        assert_eq!(throughput(0, secs(3.0)), "0/s");
        assert_eq!(throughput(5, secs(0.0)), "0/s");
    }

    #[test]
    fn numbers_and_strings_are_the_same_rate() {
        assert_eq!(RateValue::Number(20).rate(), RateValue::Text("20/s".into()).rate());
        assert_eq!(RateValue::Number(0).limit(), Ok(None));
        assert_eq!(RateValue::Text("0".into()).limit(), Ok(None));
        assert!(RateValue::Number(0).rate().is_err(), "no limit is only for keys that allow one");
        assert!(RateValue::Number(-3).limit().is_err());
        assert_eq!(RateValue::Text("300/m".into()).limit(), Ok(Some("300/m".parse().expect("valid"))));
    }
}
