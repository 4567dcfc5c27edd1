//! Reading the dates that feeds and front matter actually contain. Feeds are supposed to use
//! RFC 822 (RSS) or RFC 3339 (Atom, JSON Feed), but real ones use local names, two-digit years,
//! slashes and no zone at all; an article whose date cannot be read would silently fall out of
//! (or into) every issue, so the parser here is lenient and its rules are written down.
//!
//! Feed dates ([`parse_feed_date`]), tried in this order:
//! 1. RFC 3339 / ISO 8601 with a zone: `2024-03-12T09:00:00+01:00`, `…Z`, fractions, `+0100`,
//!    `+01`, a space instead of `T`, a trailing ` UTC`/` GMT`.
//! 2. ISO 8601 without a zone (`2018-01-06T08:00`, `2024-03-12 09:00:00`), dates with slashes
//!    (`2020/1/10 14:33:00`, `2020/01/10`) and bare dates (`2019-08-27`, midnight): read as wall
//!    time in the publication's time zone.
//! 3. RFC 822 / 2822 and its relatives: an optional weekday in any language (dropped, since it
//!    is redundant and often wrong), day and month in either order, month names or
//!    abbreviations in English, Portuguese, Spanish, French, German, Italian or Dutch, two-digit
//!    years (00–49 → 20xx, 50–99 → 19xx, as RFC 2822 says), `H:MM[:SS]` with optional AM/PM, a
//!    numeric offset, `GMT`/`UT`/`UTC`/`Z` or a North American zone (EST, PDT…); without a zone,
//!    the publication's time zone.
//! 4. Anything else: no date (the caller treats the item as undated).
//!
//! Wall times that fall into a daylight-saving gap move forward by the gap; ambiguous ones
//! (the repeated hour) take the earlier instant.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// Parses a date found in a feed, by the rules in this module's documentation.
pub fn parse_feed_date(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim().trim_matches('\u{feff}').trim();
    if text.is_empty() {
        return None;
    }
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date.with_timezone(&Utc));
    }
    if let Some(date) = parse_numeric(text, tz) {
        return Some(date);
    }
    if let Ok(date) = DateTime::parse_from_rfc2822(text) {
        return Some(date.with_timezone(&Utc));
    }
    parse_worded(text, tz)
}

/// Parses a front-matter date: RFC 3339, or `YYYY-MM-DD[ HH:MM[:SS]]` (also with `T`) in the
/// publication's time zone. Stricter than feeds: the author can fix the file.
pub fn parse_front_matter_date(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(date) = DateTime::parse_from_rfc3339(text) {
        return Some(date.with_timezone(&Utc));
    }
    let mut cursor = Cursor::new(text);
    let date = cursor.iso_date(&['-'])?;
    let time = if cursor.at_end() {
        NaiveTime::MIN
    } else {
        if !cursor.eat_any(&['T', ' ']) {
            return None;
        }
        cursor.time()?
    };
    let zone = cursor.zone()?;
    if !cursor.at_end() {
        return None;
    }
    resolve(date.and_time(time), zone, tz)
}

/// Wall time in `tz`, as an instant. DST gaps move forward; the repeated hour takes the earlier.
pub fn local_to_utc(naive: NaiveDateTime, tz: Tz) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&naive) {
        chrono::LocalResult::Single(date) => Some(date.with_timezone(&Utc)),
        chrono::LocalResult::Ambiguous(earlier, _) => Some(earlier.with_timezone(&Utc)),
        chrono::LocalResult::None => {
            let later = naive.checked_add_signed(chrono::Duration::hours(1))?;
            tz.from_local_datetime(&later).earliest().map(|date| date.with_timezone(&Utc))
        }
    }
}

/// A zone read from the text: an explicit offset, or none (use the publication's zone).
#[derive(Debug, Clone, Copy, PartialEq)]
enum Zone {
    Offset(FixedOffset),
    Local,
}

fn resolve(naive: NaiveDateTime, zone: Zone, tz: Tz) -> Option<DateTime<Utc>> {
    match zone {
        Zone::Offset(offset) => offset.from_local_datetime(&naive).single().map(|date| date.with_timezone(&Utc)),
        Zone::Local => local_to_utc(naive, tz),
    }
}

/// Rules 1 and 2: year first, numbers only (ISO 8601 and slashes).
fn parse_numeric(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let mut cursor = Cursor::new(text);
    let date = cursor.iso_date(&['-', '/', '.'])?;
    let time = if cursor.at_end() {
        NaiveTime::MIN
    } else {
        if !cursor.eat_any(&['T', 't', ' ']) {
            return None;
        }
        cursor.skip_spaces();
        cursor.time()?
    };
    let zone = cursor.zone()?;
    cursor.skip_spaces();
    if !cursor.at_end() {
        return None;
    }
    resolve(date.and_time(time), zone, tz)
}

/// Rule 3: RFC 822 and its many relatives, with words for months.
fn parse_worded(text: &str, tz: Tz) -> Option<DateTime<Utc>> {
    let mut tokens: Vec<&str> =
        text.split(|c: char| c.is_whitespace() || c == ',').filter(|token| !token.is_empty()).collect();
    // A leading word followed by a comma is a weekday, whatever its language.
    let weekday_first = text.split_once(',').is_some_and(|(head, _)| {
        let head = head.trim();
        !head.is_empty() && head.chars().all(char::is_alphabetic)
    });
    if weekday_first && !tokens.is_empty() {
        tokens.remove(0);
    }

    let mut month = None;
    let mut day = None;
    let mut year = None;
    let mut time = None;
    let mut zone = Zone::Local;
    let mut pm = None;
    for token in tokens {
        let lower = token.to_lowercase();
        let lower = lower.trim_end_matches('.');
        if lower.starts_with('(') {
            continue; // an RFC 822 comment, such as "(PST)"
        }
        if let Some(hms) = parse_hms(lower) {
            time = Some(hms);
            continue;
        }
        if time.is_some() {
            if let Some(offset) = parse_offset(token).or_else(|| zone_name(lower)) {
                zone = Zone::Offset(offset);
                continue;
            }
            if lower == "am" || lower == "pm" {
                pm = Some(lower == "pm");
                continue;
            }
        }
        if let Some(number) = digits(lower) {
            if lower.len() == 4 {
                year = Some(number as i32);
            } else if lower.len() <= 2 && day.is_none() {
                day = Some(number);
            } else if lower.len() <= 2 && year.is_none() {
                year = Some(two_digit_year(number));
            } else {
                return None;
            }
            continue;
        }
        if let Some(number) = ordinal(lower) {
            day = Some(number);
            continue;
        }
        if let Some(found) = month_number(lower) {
            month = Some(found);
            continue;
        }
        // Other words (a weekday without a comma, "de", "at") carry nothing we need.
    }

    let date = NaiveDate::from_ymd_opt(year?, month?, day?)?;
    let mut time = time.unwrap_or(NaiveTime::MIN);
    if let Some(pm) = pm {
        use chrono::Timelike;
        let hour = time.hour() % 12 + if pm { 12 } else { 0 };
        time = time.with_hour(hour)?;
    }
    resolve(date.and_time(time), zone, tz)
}

fn digits(text: &str) -> Option<u32> {
    if text.is_empty() || text.len() > 4 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// "1st", "22nd", "3rd", "24th" → the day.
fn ordinal(text: &str) -> Option<u32> {
    ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|suffix| text.strip_suffix(suffix))
        .and_then(|number| if number.len() <= 2 { digits(number) } else { None })
}

fn two_digit_year(year: u32) -> i32 {
    let year = year as i32;
    if year < 50 { 2000 + year } else { 1900 + year }
}

/// `H:MM` or `H:MM:SS` (a leap second 60 is read as 59).
fn parse_hms(text: &str) -> Option<NaiveTime> {
    let mut parts = text.split(':');
    let hour: u32 = parts.next().and_then(|p| small_number(p, 2))?;
    let minute: u32 = parts.next().and_then(|p| small_number(p, 2))?;
    let second: u32 = match parts.next() {
        Some(part) => {
            let whole = part.split('.').next().unwrap_or(part);
            small_number(whole, 2)?
        }
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    // Some feeds write 24:00 for midnight of the same day.
    let hour = if hour == 24 { 0 } else { hour };
    NaiveTime::from_hms_opt(hour, minute, second.min(59))
}

fn small_number(text: &str, max_len: usize) -> Option<u32> {
    if text.is_empty() || text.len() > max_len || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `+0100`, `-05:00`, `+01`.
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let sign = match text.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let rest = text[1..].replace(':', "");
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes): (i32, i32) = match rest.len() {
        2 => (rest.parse().ok()?, 0),
        4 => (rest[..2].parse().ok()?, rest[2..].parse().ok()?),
        _ => return None,
    };
    if hours > 23 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Zone names RFC 822 allows, and the usual extras.
fn zone_name(lower: &str) -> Option<FixedOffset> {
    let hours = match lower {
        "gmt" | "ut" | "utc" | "z" | "wet" => 0,
        "bst" | "cet" | "wat" => 1,
        "cest" | "eet" => 2,
        "eest" | "msk" => 3,
        "edt" => -4,
        "est" | "cdt" => -5,
        "cst" | "mdt" => -6,
        "mst" | "pdt" => -7,
        "pst" => -8,
        "jst" | "kst" => 9,
        _ => return None,
    };
    FixedOffset::east_opt(hours * 3600)
}

/// Month names and abbreviations in the languages feeds most often use.
fn month_number(lower: &str) -> Option<u32> {
    // Four-letter prefixes first, where three letters are ambiguous (French juin/juillet).
    const LONG: &[(&str, u32)] = &[("juin", 6), ("juil", 7)];
    const SHORT: &[(&str, u32)] = &[
        ("jan", 1),
        ("ene", 1),
        ("gen", 1),
        ("feb", 2),
        ("fev", 2),
        ("fév", 2),
        ("mar", 3),
        ("mär", 3),
        ("mrz", 3),
        ("mrt", 3),
        ("apr", 4),
        ("abr", 4),
        ("avr", 4),
        ("may", 5),
        ("mai", 5),
        ("mag", 5),
        ("mei", 5),
        ("jun", 6),
        ("giu", 6),
        ("jul", 7),
        ("lug", 7),
        ("aug", 8),
        ("ago", 8),
        ("aoû", 8),
        ("aou", 8),
        ("sep", 9),
        ("set", 9),
        ("oct", 10),
        ("out", 10),
        ("okt", 10),
        ("ott", 10),
        ("nov", 11),
        ("dec", 12),
        ("dez", 12),
        ("dic", 12),
        ("déc", 12),
    ];
    if !lower.chars().all(char::is_alphabetic) || lower.chars().count() < 3 {
        return None;
    }
    if let Some((_, month)) = LONG.iter().find(|(prefix, _)| lower.starts_with(prefix)) {
        return Some(*month);
    }
    let prefix: String = lower.chars().take(3).collect();
    SHORT.iter().find(|(name, _)| *name == prefix).map(|(_, month)| *month)
}

/// A tiny scanner for the numeric formats.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn new(text: &'a str) -> Self {
        Self { text, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn eat_any(&mut self, options: &[char]) -> bool {
        match self.peek() {
            Some(c) if options.contains(&c) => {
                self.pos += c.len_utf8();
                true
            }
            _ => false,
        }
    }

    fn skip_spaces(&mut self) {
        while self.eat_any(&[' ']) {}
    }

    /// Up to `max` ASCII digits, at least `min`.
    fn number(&mut self, min: usize, max: usize) -> Option<u32> {
        let len = self.rest().bytes().take(max).take_while(u8::is_ascii_digit).count();
        if len < min {
            return None;
        }
        let value = self.rest()[..len].parse().ok()?;
        self.pos += len;
        Some(value)
    }

    /// `YYYY-M-D` with one of the separators (the same one twice).
    fn iso_date(&mut self, separators: &[char]) -> Option<NaiveDate> {
        let year = self.number(4, 4)?;
        let separator = self.peek().filter(|c| separators.contains(c))?;
        self.pos += 1;
        let month = self.number(1, 2)?;
        if !self.eat_any(&[separator]) {
            return None;
        }
        let day = self.number(1, 2)?;
        NaiveDate::from_ymd_opt(year as i32, month, day)
    }

    /// `H:MM[:SS[.fraction]]`.
    fn time(&mut self) -> Option<NaiveTime> {
        let hour = self.number(1, 2)?;
        if !self.eat_any(&[':']) {
            return None;
        }
        let minute = self.number(2, 2)?;
        let mut second = 0;
        let mut nanos = 0;
        if self.eat_any(&[':']) {
            second = self.number(2, 2)?;
            if self.eat_any(&['.', ',']) {
                let start = self.pos;
                let len = self.rest().bytes().take_while(u8::is_ascii_digit).count();
                if len == 0 {
                    return None;
                }
                let fraction: String = self.text[start..start + len].chars().take(9).collect();
                let scale = 10u32.pow(9 - fraction.len() as u32);
                nanos = fraction.parse::<u32>().ok()? * scale;
                self.pos += len;
            }
        }
        let hour = if hour == 24 && minute == 0 && second == 0 { 0 } else { hour };
        NaiveTime::from_hms_nano_opt(hour, minute, second.min(59), nanos)
    }

    /// An optional zone: `Z`, `±HH:MM`, `±HHMM`, `±HH`, ` UTC`, ` GMT`.
    fn zone(&mut self) -> Option<Zone> {
        let before = self.pos;
        self.skip_spaces();
        let rest = self.rest();
        if rest.is_empty() {
            self.pos = before;
            return Some(Zone::Local);
        }
        let word = rest.to_lowercase();
        if let Some(offset) = zone_name(&word) {
            self.pos = self.text.len();
            return Some(Zone::Offset(offset));
        }
        if rest.starts_with(['+', '-']) {
            let offset = parse_offset(rest)?;
            self.pos = self.text.len();
            return Some(Zone::Offset(offset));
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEW_YORK: Tz = chrono_tz::America::New_York;
    const UTC: Tz = chrono_tz::UTC;

    fn at(text: &str) -> String {
        parse_feed_date(text, NEW_YORK).map(|d| d.to_rfc3339()).unwrap_or_else(|| "none".into())
    }

    #[test]
    fn standard_formats() {
        assert_eq!(at("2024-03-12T09:00:00+01:00"), "2024-03-12T08:00:00+00:00");
        assert_eq!(at("2018-09-19T13:29:51.979Z"), "2018-09-19T13:29:51.979+00:00");
        assert_eq!(at("Fri, 15 Mar 2024 10:30:00 -0400"), "2024-03-15T14:30:00+00:00");
        assert_eq!(at("Wed, 19 Jul 2006 12:49:39 GMT"), "2006-07-19T12:49:39+00:00");
        assert_eq!(at("Sat, 5 Jul 2014 08:30:39 +0000 "), "2014-07-05T08:30:39+00:00");
    }

    #[test]
    fn zone_less_times_use_the_publication_zone() {
        // 08:00 in New York in January is 13:00 UTC.
        assert_eq!(at("2018-01-06T08:00"), "2018-01-06T13:00:00+00:00");
        assert_eq!(at("2020/1/10 14:33:00"), "2020-01-10T19:33:00+00:00");
        assert_eq!(at("2019-08-27"), "2019-08-27T04:00:00+00:00");
        assert_eq!(at("2024-03-12 09:00"), "2024-03-12T13:00:00+00:00");
        assert_eq!(
            parse_feed_date("2020/1/10 14:33:00", UTC).map(|d| d.to_rfc3339()),
            Some("2020-01-10T14:33:00+00:00".into())
        );
    }

    #[test]
    fn foreign_names_and_short_years() {
        assert_eq!(at("Seg, 24 Set 2018 19:18:49 -0300"), "2018-09-24T22:18:49+00:00");
        assert_eq!(at("Thu, 07 Dec 17 10:00:29 -0800"), "2017-12-07T18:00:29+00:00");
        assert_eq!(at("Sun, 10 Dec 99 13:01:36 -0800"), "1999-12-10T21:01:36+00:00");
        assert_eq!(at("Mar, 24 Sep 2018 10:00 GMT"), "2018-09-24T10:00:00+00:00");
        assert_eq!(at("24 juillet 2018 10:00 +0200"), "2018-07-24T08:00:00+00:00");
        assert_eq!(at("Thurs, 13 July 2011 07:38:00 GMT"), "2011-07-13T07:38:00+00:00");
        assert_eq!(at("March 5th, 2024 3:15 PM EST"), "2024-03-05T20:15:00+00:00");
        assert_eq!(at("Tue, 12 Mar 2024 12:00:00 EDT"), "2024-03-12T16:00:00+00:00");
    }

    #[test]
    fn garbage_is_no_date() {
        for text in ["", "  ", "next tuesday", "32 Jan 2024", "2024-13-01", "soon 12:00"] {
            assert_eq!(at(text), "none", "{text:?}");
        }
    }

    #[test]
    fn dst_gap_moves_forward() {
        // 02:30 on 10 March 2024 does not exist in New York.
        let naive = NaiveDate::from_ymd_opt(2024, 3, 10).and_then(|d| d.and_hms_opt(2, 30, 0)).expect("valid date");
        let instant = local_to_utc(naive, NEW_YORK).expect("resolved");
        assert_eq!(instant.to_rfc3339(), "2024-03-10T07:30:00+00:00");
    }

    #[test]
    fn front_matter_dates() {
        let parse = |text| parse_front_matter_date(text, NEW_YORK).map(|d| d.to_rfc3339());
        assert_eq!(parse("2024-03-12"), Some("2024-03-12T04:00:00+00:00".into()));
        assert_eq!(parse("2024-03-12 09:00"), Some("2024-03-12T13:00:00+00:00".into()));
        assert_eq!(parse("2024-03-12T09:00:00+01:00"), Some("2024-03-12T08:00:00+00:00".into()));
        assert_eq!(parse("next tuesday"), None);
        assert_eq!(parse("12 Mar 2024"), None);
    }
}
