//! `[publication] timezone`: a geographic IANA zone (`America/New_York`), `UTC`, or a fixed
//! offset asked for on purpose as `Etc/…`. The tz database also holds abbreviations and POSIX
//! rule names (`EST`, `CET`, `EST5EDT`); they parse, but `EST` is a fixed UTC-5 that never moves
//! to summer time, so a Massachusetts paper set to it goes out an hour late from March to
//! November. Those are refused with the zone that was most likely meant.

use std::str::FromStr;

use chrono_tz::Tz;

/// Names the tz database keeps for compatibility that are no place: abbreviations, fixed offsets
/// and POSIX-style rules. (Old names of places, like `Japan` or `US/Eastern`, follow their
/// place's clocks and are kept.)
const NOT_A_PLACE: &[&str] = &[
    "CET",
    "CST6CDT",
    "EET",
    "EST",
    "EST5EDT",
    "GMT",
    "GMT+0",
    "GMT-0",
    "GMT0",
    "Greenwich",
    "HST",
    "MET",
    "MST",
    "MST7MDT",
    "PST8PDT",
    "UCT",
    "Universal",
    "WET",
    "Zulu",
    "Factory",
];

/// The zone a name most likely meant: abbreviations people write, and the tz database's
/// non-geographic names.
const MEANT: &[(&[&str], &str)] = &[
    (&["EST", "EDT", "ET", "EST5EDT"], "America/New_York"),
    (&["CST", "CDT", "CT", "CST6CDT"], "America/Chicago"),
    (&["MST", "MDT", "MT", "MST7MDT"], "America/Denver (or America/Phoenix, where summer time is not kept)"),
    (&["PST", "PDT", "PT", "PST8PDT"], "America/Los_Angeles"),
    (&["AKST", "AKDT"], "America/Anchorage"),
    (&["HST", "HDT"], "Pacific/Honolulu"),
    (&["AST", "ADT"], "America/Halifax"),
    (&["NST", "NDT"], "America/St_Johns"),
    (&["GMT", "BST", "GMT0", "GMT+0", "GMT-0", "Greenwich"], "Europe/London (or UTC)"),
    (&["WET", "WEST"], "Europe/Lisbon"),
    (&["CET", "CEST", "MET", "MEST"], "Europe/Paris, Europe/Berlin or the zone of your city"),
    (&["EET", "EEST"], "Europe/Athens, Europe/Helsinki or the zone of your city"),
    (&["MSK"], "Europe/Moscow"),
    (&["IST"], "Asia/Kolkata (India) or Europe/Dublin (Ireland)"),
    (&["PKT"], "Asia/Karachi"),
    (&["JST"], "Asia/Tokyo"),
    (&["KST"], "Asia/Seoul"),
    (&["HKT"], "Asia/Hong_Kong"),
    (&["SGT"], "Asia/Singapore"),
    (&["AEST", "AEDT"], "Australia/Sydney (or Australia/Brisbane, where summer time is not kept)"),
    (&["ACST", "ACDT"], "Australia/Adelaide"),
    (&["AWST"], "Australia/Perth"),
    (&["NZST", "NZDT"], "Pacific/Auckland"),
    (&["SAST"], "Africa/Johannesburg"),
    (&["UCT", "Universal", "Zulu", "Z"], "UTC"),
];

/// The zone `name` stands for, or why it is refused and what to write instead.
pub(super) fn parse(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if let Ok(tz) = Tz::from_str(name)
        && !NOT_A_PLACE.contains(&name)
    {
        return Ok(tz);
    }
    let hint = suggestion(name);
    if Tz::from_str(name).is_ok() {
        return Err(format!(
            "`{name}` is an abbreviation or a rule, not a place, so it need not keep a place's summer time (EST is UTC-5 all year); write {hint}"
        ));
    }
    Err(format!("`{name}` is not an IANA time zone; write {hint}"))
}

fn suggestion(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if let Some((_, zone)) = MEANT.iter().find(|(names, _)| names.iter().any(|n| n.to_ascii_uppercase() == upper)) {
        return format!("\"{zone}\" instead");
    }
    if let Some(tz) = chrono_tz::TZ_VARIANTS.iter().find(|tz| tz.name().eq_ignore_ascii_case(name)) {
        return format!("\"{}\" (the names are case-sensitive)", tz.name());
    }
    if let Some(hours) = whole_hour_offset(&upper) {
        // The tz database's Etc zones have POSIX's sign: Etc/GMT-5 is five hours ahead of UTC.
        let etc = match hours {
            0 => "Etc/UTC".to_owned(),
            h if h > 0 => format!("Etc/GMT-{h}"),
            h => format!("Etc/GMT+{}", -h),
        };
        return format!(
            "the zone of a city at that offset, as \"Area/City\" (its summer time comes with it), or \"{etc}\" for an offset that never changes"
        );
    }
    "the zone of your city, like \"America/New_York\" or \"Europe/Paris\", or \"UTC\"".to_owned()
}

/// `UTC+5`, `GMT-03`, `+05:00`: the offset in whole hours, east positive.
fn whole_hour_offset(upper: &str) -> Option<i32> {
    let rest = upper.strip_prefix("UTC").or_else(|| upper.strip_prefix("GMT")).unwrap_or(upper);
    let (sign, digits) = match rest.chars().next()? {
        '+' => (1, &rest[1..]),
        '-' => (-1, &rest[1..]),
        _ => return None,
    };
    let (hours, minutes) = digits.split_once(':').unwrap_or((digits, "00"));
    if !minutes.chars().all(|c| c == '0') {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    (0..=14).contains(&hours).then_some(sign * hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_utc_and_etc_zones_are_taken() {
        for ok in ["America/New_York", "Europe/Paris", "UTC", "Etc/UTC", "Etc/GMT+5", "US/Eastern", "Japan"] {
            assert!(parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn abbreviations_and_offsets_are_refused_with_the_zone_meant() {
        for (bad, meant) in [
            ("EST", "America/New_York"),
            ("EST5EDT", "America/New_York"),
            ("MST", "America/Denver"),
            ("HST", "Pacific/Honolulu"),
            ("CET", "Europe/Paris"),
            ("PDT", "America/Los_Angeles"),
            ("Zulu", "\"UTC\""),
            ("UTC+5", "Etc/GMT-5"),
            ("GMT-3", "Etc/GMT+3"),
            ("america/new_york", "\"America/New_York\""),
            ("Mars/Olympus", "Europe/Paris"),
        ] {
            let why = parse(bad).expect_err(bad);
            assert!(why.contains(meant), "{bad}: {why}");
        }
        assert!(parse("EST").expect_err("EST").contains("summer time"));
    }
}
