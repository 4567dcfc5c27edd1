use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use chrono_tz::{America::New_York, Europe::Paris};

use super::*;

fn cron(expr: &str) -> cron::Schedule {
    cron::Schedule::from_str(expr).expect("cron")
}

fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, min, 0).single().expect("date")
}

fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
    NaiveDate::from_ymd_opt(y, m, d).and_then(|d| d.and_hms_opt(h, min, 0)).expect("date")
}

#[test]
fn weekly_at_nine_paris_in_winter_and_summer() {
    let s = slots_between(&cron("0 0 9 * * Mon"), Paris, utc(2024, 3, 1, 0, 0), utc(2024, 4, 16, 0, 0), 100);
    let hours: Vec<_> = s.iter().map(|x| (x.local.date().to_string(), x.at.format("%H:%M").to_string())).collect();
    // 08:00 UTC in winter (CET), 07:00 UTC after 31 March (CEST); always 09:00 in Paris.
    assert_eq!(
        hours,
        [
            ("2024-03-04".into(), "08:00".into()),
            ("2024-03-11".into(), "08:00".into()),
            ("2024-03-18".into(), "08:00".into()),
            ("2024-03-25".into(), "08:00".into()),
            ("2024-04-01".into(), "07:00".into()),
            ("2024-04-08".into(), "07:00".into()),
            ("2024-04-15".into(), "07:00".into()),
        ]
    );
}

#[test]
fn a_slot_in_the_spring_forward_gap_fires_once_that_day() {
    // 31 March 2024, Paris: 02:00 → 03:00. A 02:30 slot fires at 03:30 local = 01:30 UTC.
    let s = slots_between(&cron("0 30 2 * * Sun"), Paris, utc(2024, 3, 30, 0, 0), utc(2024, 4, 1, 0, 0), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].local, local(2024, 3, 31, 2, 30));
    assert_eq!(s[0].at, utc(2024, 3, 31, 1, 30));
    // New York, 10 March 2024: 02:00 → 03:00.
    let s = slots_between(&cron("0 30 2 * * Sun"), New_York, utc(2024, 3, 9, 0, 0), utc(2024, 3, 11, 0, 0), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].at, utc(2024, 3, 10, 7, 30));
}

#[test]
fn a_slot_in_the_repeated_fall_back_hour_fires_once() {
    // 27 October 2024, Paris: 03:00 → 02:00; 02:30 happens twice. It fires at the first.
    let s = slots_between(&cron("0 30 2 * * Sun"), Paris, utc(2024, 10, 26, 0, 0), utc(2024, 10, 28, 0, 0), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].at, utc(2024, 10, 27, 0, 30));
    // New York, 3 November 2024: 01:30 happens twice.
    let s = slots_between(&cron("0 30 1 * * Sun"), New_York, utc(2024, 11, 2, 0, 0), utc(2024, 11, 4, 0, 0), 10);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].at, utc(2024, 11, 3, 5, 30));
}

#[test]
fn every_slot_of_a_year_has_its_own_key_and_fires_once() {
    let s = slots_between(&cron("0 30 2 * * *"), Paris, utc(2024, 1, 1, 0, 0), utc(2025, 1, 1, 0, 0), 1000);
    assert_eq!(s.len(), 366);
    let keys: std::collections::HashSet<_> = s.iter().map(|x| x.key(Paris)).collect();
    assert_eq!(keys.len(), 366);
    assert!(s.windows(2).all(|w| w[0].at < w[1].at));
}

#[test]
fn next_slots_are_in_order_after_now() {
    let n = next_slots(&cron("0 0 9 * * Mon"), Paris, utc(2024, 3, 26, 0, 0), 5);
    assert_eq!(n.len(), 5);
    assert_eq!(n[0].at, utc(2024, 4, 1, 7, 0));
    assert!(n.windows(2).all(|w| w[0].at < w[1].at));
}
