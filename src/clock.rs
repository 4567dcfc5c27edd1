//! The one source of "now". Commands take it from `--as-of` or the system; tests set it.

use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;

pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock stopped at one instant.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub DateTime<Utc>);

impl Clock for FixedClock {
    fn now(&self) -> DateTime<Utc> {
        self.0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("`{0}` is not a time: write RFC 3339 (2024-03-16T12:00:00-04:00) or a date (2024-03-16)")]
pub struct AsOfError(String);

/// Parses `--as-of`: RFC 3339, or a date meaning the end of that day in the publication's zone
/// (so that everything published that day counts).
pub fn parse_as_of(s: &str, tz: Tz) -> Result<DateTime<Utc>, AsOfError> {
    let t = s.trim();
    if let Ok(d) = DateTime::parse_from_rfc3339(t) {
        return Ok(d.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(t, "%Y-%m-%d").map_err(|_| AsOfError(s.to_owned()))?;
    let end = date.and_hms_opt(23, 59, 59).expect("23:59:59 is a valid time");
    end.and_local_timezone(tz).latest().map(|d| d.with_timezone(&Utc)).ok_or_else(|| AsOfError(s.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let ny = chrono_tz::America::New_York;
        assert_eq!(
            parse_as_of("2024-03-16T12:00:00-04:00", ny).map(|d| d.to_rfc3339()),
            Ok("2024-03-16T16:00:00+00:00".into())
        );
        assert_eq!(parse_as_of("2024-03-16", ny).map(|d| d.to_rfc3339()), Ok("2024-03-17T03:59:59+00:00".into()));
        assert!(parse_as_of("next monday", ny).is_err());
    }
}
