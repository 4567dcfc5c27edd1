//! What a dashboard session is on the wire: a random token in an HttpOnly, SameSite=Strict
//! cookie (Secure when the publication is served over https), of which the store keeps only a
//! digest; a CSRF token per session that every form echoes; and when a session has expired
//! (idle too long, or too old whatever its use). Pure: no store, no clock.

use axum::http::{HeaderMap, header};
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use rand::RngCore as _;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The session's cookie.
pub const SESSION_COOKIE: &str = "gazette_session";
/// The cookie the sign-in form's CSRF token is checked against, before there is a session.
pub const LOGIN_COOKIE: &str = "gazette_login";
/// Both cookies go back to the dashboard alone.
const COOKIE_PATH: &str = "/admin";

/// A session unused this long has ended.
pub const IDLE: Duration = Duration::hours(12);
/// A session this old has ended, however much it is used.
pub const ABSOLUTE: Duration = Duration::days(7);
/// A session's use is written down at most this often, not on every page.
pub const TOUCH_EVERY: Duration = Duration::minutes(1);

/// A new random token: 256 bits, URL-safe.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the store keeps of a session's token.
pub fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether two tokens are the same, in time that says nothing of where they differ.
pub fn same_token(given: &str, expected: &str) -> bool {
    let empty = expected.is_empty();
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.as_bytes());
    !empty && bool::from(given.ct_eq(&expected))
}

/// Whether a session begun at `created_at` and last used at `seen_at` is still live at `now`.
pub fn live(created_at: DateTime<Utc>, seen_at: DateTime<Utc>, expires_at: DateTime<Utc>, now: DateTime<Utc>) -> bool {
    now < expires_at && now < created_at + ABSOLUTE && now < seen_at + IDLE
}

/// The value of cookie `name` in a request's headers, if it has a well-formed one.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
        .filter(|v| {
            !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// A `Set-Cookie` value for `name`; `max_age` in seconds, 0 to delete it.
pub fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={COOKIE_PATH}; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn tokens_are_long_random_and_compared_whole() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token("", ""), "an empty token matches nothing");
        assert_eq!(digest(&a).len(), 64);
        assert_ne!(digest(&a), a);
    }

    #[test]
    fn a_session_ends_when_idle_or_old() {
        let t0 = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let far = t0 + Duration::days(30);
        assert!(live(t0, t0, far, t0 + Duration::hours(11)));
        assert!(!live(t0, t0, far, t0 + IDLE), "idle too long");
        assert!(live(t0, t0 + Duration::days(6), far, t0 + Duration::days(6) + Duration::hours(1)));
        assert!(!live(t0, t0 + Duration::days(7), far, t0 + ABSOLUTE + Duration::minutes(1)), "too old");
        assert!(!live(t0, t0, t0 + Duration::hours(1), t0 + Duration::hours(1)), "past its expiry");
    }

    #[test]
    fn cookies_are_read_by_name_and_set_with_every_flag() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; gazette_session=abc-_9"));
        h.append(header::COOKIE, HeaderValue::from_static("gazette_login=x y"));
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc-_9"));
        assert_eq!(cookie(&h, LOGIN_COOKIE), None, "a malformed value is no cookie");
        assert_eq!(cookie(&h, "missing"), None);
        let set = set_cookie(SESSION_COOKIE, "v", 60, true);
        for flag in ["Path=/admin", "Max-Age=60", "HttpOnly", "SameSite=Strict", "Secure"] {
            assert!(set.contains(flag), "{set}");
        }
        assert!(!set_cookie(SESSION_COOKIE, "v", 0, false).contains("Secure"));
    }
}
