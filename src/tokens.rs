//! Signed tokens for the links in every message: what a link may do (confirm, unsubscribe), for
//! which address, until when, and an HMAC-SHA256 over all of it with the publication's secret.
//! A token cannot be forged or altered without the secret; checking compares in constant time.
//!
//! A token is `purpose.address.expires[.issued.list].mac`, each field base64url or a Unix time.
//! Unsubscribe links carry the first three fields only, exactly as they always have, so links
//! in mail already sent keep working; confirmation links add when they were made and the list
//! asked for, so that a link made before a reader left cannot bring them back.
//!
//! The envelope sender of each message carries a token of its own ([`ReturnToken`]), made to
//! survive mail servers that fold an address's case: `d42-` and sixteen characters of lower-case
//! base32 (80 bits of the HMAC), so `bounces+d42-…@example.org` names delivery 42 and nothing
//! else, and a bounce made up by someone without the secret names nothing.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{
    config::LinkSecret,
    domain::{EmailAddress, ListName},
};

type HmacSha256 = Hmac<Sha256>;

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Unsubscribe,
    Confirm,
    /// A reader's preferences page.
    Preferences,
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Unsubscribe => "u",
            Self::Confirm => "c",
            Self::Preferences => "p",
        }
    }
}

/// What a valid token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub purpose: Purpose,
    pub email: EmailAddress,
    pub expires: Option<DateTime<Utc>>,
    /// When the link was made (confirmation links); to the second.
    pub issued: Option<DateTime<Utc>>,
    /// The list the reader asked for (confirmation links); `None`: the publication's default.
    pub list: Option<ListName>,
}

impl Claims {
    /// An unsubscribe link: it never expires.
    pub fn unsubscribe(email: EmailAddress) -> Self {
        Self { purpose: Purpose::Unsubscribe, email, expires: None, issued: None, list: None }
    }

    /// A confirmation link made at `issued`, good for `valid`.
    pub fn confirm(
        email: EmailAddress,
        list: Option<ListName>,
        issued: DateTime<Utc>,
        valid: chrono::Duration,
    ) -> Self {
        // Whole seconds, as the token keeps them, so that what is signed is what is checked.
        let issued = DateTime::from_timestamp(issued.timestamp(), 0).unwrap_or(issued);
        Self { purpose: Purpose::Confirm, email, expires: Some(issued + valid), issued: Some(issued), list }
    }
}

impl Claims {
    /// How long a preferences link works: long enough for an issue kept in an inbox, short
    /// enough that a forwarded copy does not open a reader's page for ever.
    pub const PREFERENCES_VALID_DAYS: i64 = 90;

    /// A preferences link made at `issued`; it expires after [`Self::PREFERENCES_VALID_DAYS`].
    pub fn preferences(email: EmailAddress, issued: DateTime<Utc>) -> Self {
        let issued = DateTime::from_timestamp(issued.timestamp(), 0).unwrap_or(issued);
        Self {
            purpose: Purpose::Preferences,
            email,
            expires: Some(issued + chrono::Duration::days(Self::PREFERENCES_VALID_DAYS)),
            issued: Some(issued),
            list: None,
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the link is damaged or was not made by this publication")]
    Invalid,
    #[error("the link has expired")]
    Expired,
}

/// Signs and checks tokens with one secret.
#[derive(Clone)]
pub struct Signer {
    secret: LinkSecret,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(…)")
    }
}

impl Signer {
    pub fn new(secret: LinkSecret) -> Self {
        Self { secret }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(self.secret.expose()).expect("HMAC takes a key of any length");
        mac.update(payload.as_bytes());
        mac
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let mut payload = format!(
            "{}.{}.{}",
            claims.purpose.tag(),
            B64.encode(claims.email.as_str()),
            claims.expires.map_or(0, |e| e.timestamp())
        );
        if claims.issued.is_some() || claims.list.is_some() {
            payload.push_str(&format!(
                ".{}.{}",
                claims.issued.map_or(0, |i| i.timestamp()),
                B64.encode(claims.list.as_ref().map_or("", |l| l.as_ref()))
            ));
        }
        let tag = B64.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The claims of a token made for `purpose`, if it is genuine and unexpired at `now`.
    pub fn verify(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let (payload, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        self.mac(payload).verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let parts: Vec<&str> = payload.split('.').collect();
        let (p, email, exp, extra) = match parts.as_slice() {
            [p, email, exp] => (*p, *email, *exp, None),
            [p, email, exp, issued, list] => (*p, *email, *exp, Some((*issued, *list))),
            _ => return Err(TokenError::Invalid),
        };
        if p != purpose.tag() {
            return Err(TokenError::Invalid);
        }
        let email: EmailAddress = decode(email)?.parse().map_err(|_| TokenError::Invalid)?;
        let expires = time(exp)?;
        let (issued, list) = match extra {
            None => (None, None),
            Some((issued, list)) => {
                let list = decode(list)?;
                let list = if list.is_empty() { None } else { Some(list.parse().map_err(|_| TokenError::Invalid)?) };
                (time(issued)?, list)
            }
        };
        if expires.is_some_and(|e| e <= now) {
            return Err(TokenError::Expired);
        }
        Ok(Claims { purpose, email, expires, issued, list })
    }

    /// A short, stable, non-reversible tag for an address (for Message-IDs): the same address
    /// gives the same tag under the same secret, and nobody without the secret can tell whose.
    pub fn address_tag(&self, email: &EmailAddress) -> String {
        let bytes = self.mac(&format!("id.{email}")).finalize().into_bytes();
        bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// What the token of an envelope sender names, so that a bounce finds what it is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnToken {
    /// One delivery of the ledger, by its id.
    Delivery(i64),
    /// A test copy of an issue (`send --to`): recorded nowhere, so a bounce of it changes nothing.
    Test(u32),
}

/// Bytes of the HMAC a return token keeps: 80 bits, sixteen base32 characters.
const RETURN_MAC: usize = 10;

impl Signer {
    /// The token for an envelope sender: `d42-…` for delivery 42, `t3-…` for a test copy of
    /// issue 3; lower-case letters, digits and `-` only, at most 37 characters.
    pub fn return_token(&self, token: ReturnToken) -> String {
        let payload = match token {
            ReturnToken::Delivery(id) => format!("d{id}"),
            ReturnToken::Test(issue) => format!("t{issue}"),
        };
        let mac = self.mac(&format!("verp.{payload}")).finalize().into_bytes();
        format!("{payload}-{}", base32(&mac[..RETURN_MAC]))
    }

    /// What a token made by [`Self::return_token`] names, in any case of its letters; `Invalid`
    /// for anything this publication did not make.
    pub fn read_return_token(&self, token: &str) -> Result<ReturnToken, TokenError> {
        let token = token.trim().to_ascii_lowercase();
        let (payload, mac) = token.rsplit_once('-').ok_or(TokenError::Invalid)?;
        // Exactly the characters `return_token` writes: a longer text would decode to the same
        // bytes with bits left over, and one token must have one spelling.
        if mac.len() != RETURN_MAC * 8 / 5 {
            return Err(TokenError::Invalid);
        }
        let mac = unbase32(mac).ok_or(TokenError::Invalid)?;
        self.mac(&format!("verp.{payload}")).verify_truncated_left(&mac).map_err(|_| TokenError::Invalid)?;
        let number = |digits: &str| -> Result<u64, TokenError> {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(TokenError::Invalid);
            }
            digits.parse().map_err(|_| TokenError::Invalid)
        };
        match payload.split_at_checked(1) {
            Some(("d", id)) => Ok(ReturnToken::Delivery(i64::try_from(number(id)?).map_err(|_| TokenError::Invalid)?)),
            Some(("t", issue)) => {
                Ok(ReturnToken::Test(u32::try_from(number(issue)?).map_err(|_| TokenError::Invalid)?))
            }
            _ => Err(TokenError::Invalid),
        }
    }
}

/// RFC 4648's base32 alphabet in lower case: no character a mail server could fold.
const BASE32: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for b in bytes {
        buffer = (buffer << 8) | u32::from(*b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The bytes of [`base32`]'s text; None for a character outside its alphabet.
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 5 / 8);
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = BASE32.iter().position(|x| *x == c)?;
        buffer = (buffer << 5) | u32::try_from(v).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

fn decode(field: &str) -> Result<String, TokenError> {
    String::from_utf8(B64.decode(field).map_err(|_| TokenError::Invalid)?).map_err(|_| TokenError::Invalid)
}

/// A Unix time, where 0 stands for none.
fn time(field: &str) -> Result<Option<DateTime<Utc>>, TokenError> {
    let t: i64 = field.parse().map_err(|_| TokenError::Invalid)?;
    if t == 0 { Ok(None) } else { DateTime::from_timestamp(t, 0).map(Some).ok_or(TokenError::Invalid) }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn signer(key: &[u8]) -> Signer {
        Signer::new(LinkSecret::from_bytes(key.to_vec()))
    }

    fn claims(purpose: Purpose, expires: Option<DateTime<Utc>>) -> Claims {
        Claims { purpose, email: "ann@example.org".parse().expect("valid"), expires, issued: None, list: None }
    }

    #[test]
    fn a_return_token_names_its_delivery_or_test_copy_in_any_case() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let t = s.return_token(ReturnToken::Delivery(42));
        assert!(t.starts_with("d42-") && t.len() == 4 + 16, "{t}");
        assert!(t.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'), "{t}");
        assert_eq!(s.read_return_token(&t), Ok(ReturnToken::Delivery(42)));
        assert_eq!(s.read_return_token(&t.to_ascii_uppercase()), Ok(ReturnToken::Delivery(42)));
        let test = s.return_token(ReturnToken::Test(3));
        assert_eq!(s.read_return_token(&test), Ok(ReturnToken::Test(3)));
        let longest = s.return_token(ReturnToken::Delivery(i64::MAX));
        assert!(longest.len() <= crate::domain::ReturnPath::MAX_TOKEN, "{longest}");
        assert_eq!(s.read_return_token(&longest), Ok(ReturnToken::Delivery(i64::MAX)));
    }

    #[test]
    fn a_forged_or_altered_return_token_names_nothing() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let t = s.return_token(ReturnToken::Delivery(42));
        let mac = t.split_once('-').map(|(_, m)| m).unwrap_or_default();
        for forged in [
            signer(b"another key another key another!").return_token(ReturnToken::Delivery(42)),
            format!("d43-{mac}"),
            format!("t42-{mac}"),
            format!("d42-{}", &mac[..15]),
            format!("d42-{mac}a"),
            format!("d+42-{mac}"),
            format!("d-42-{mac}"),
            "d42".to_owned(),
            "".to_owned(),
            "d42-0000000000000000".to_owned(),
        ] {
            assert_eq!(s.read_return_token(&forged), Err(TokenError::Invalid), "{forged}");
        }
    }

    #[test]
    fn base32_round_trips() {
        for bytes in [&b""[..], b"f", b"fo", b"foo", b"foob", b"fooba", b"foobar", &[0xff; 10]] {
            assert_eq!(unbase32(&base32(bytes)).as_deref(), Some(bytes), "{bytes:?}");
        }
        assert_eq!(base32(b"foobar"), "mzxw6ytboi", "RFC 4648's example, in lower case");
        assert_eq!(unbase32("ab1"), None);
    }

    #[test]
    fn round_trips() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let c = claims(Purpose::Unsubscribe, None);
        let t = s.sign(&c);
        assert_eq!(s.verify(&t, Purpose::Unsubscribe, Utc::now()), Ok(c));
        assert!(t.chars().all(|ch| ch.is_ascii_alphanumeric() || "-_.".contains(ch)), "URL-safe: {t}");
    }

    #[test]
    fn refuses_forgery_tampering_and_other_purposes() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let t = s.sign(&claims(Purpose::Unsubscribe, None));
        assert_eq!(
            signer(b"another key another key another!").verify(&t, Purpose::Unsubscribe, Utc::now()),
            Err(TokenError::Invalid)
        );
        let other = B64.encode("eve@example.org");
        let parts: Vec<&str> = t.split('.').collect();
        let tampered = format!("{}.{other}.{}.{}", parts[0], parts[2], parts[3]);
        assert_eq!(s.verify(&tampered, Purpose::Unsubscribe, Utc::now()), Err(TokenError::Invalid));
        assert_eq!(s.verify(&t, Purpose::Confirm, Utc::now()), Err(TokenError::Invalid));
        assert_eq!(s.verify("garbage", Purpose::Unsubscribe, Utc::now()), Err(TokenError::Invalid));
    }

    #[test]
    fn expires() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let now = Utc::now();
        let t = s.sign(&claims(Purpose::Confirm, Some(now + Duration::days(7))));
        assert!(s.verify(&t, Purpose::Confirm, now + Duration::days(6)).is_ok());
        assert_eq!(s.verify(&t, Purpose::Confirm, now + Duration::days(8)), Err(TokenError::Expired));

        let p = s.sign(&Claims::preferences("a@example.org".parse().expect("email"), now));
        assert!(s.verify(&p, Purpose::Preferences, now + Duration::days(89)).is_ok());
        assert_eq!(s.verify(&p, Purpose::Preferences, now + Duration::days(91)), Err(TokenError::Expired));
        assert_eq!(s.verify(&p, Purpose::Unsubscribe, now), Err(TokenError::Invalid));
    }

    #[test]
    fn an_unsubscribe_link_keeps_the_form_of_links_already_sent() {
        // Made by the signer before confirmation links carried more: it must keep working.
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let email: EmailAddress = "ann@example.org".parse().expect("valid");
        let payload = format!("u.{}.0", B64.encode("ann@example.org"));
        let old = format!("{payload}.{}", B64.encode(s.mac(&payload).finalize().into_bytes()));
        assert_eq!(s.sign(&Claims::unsubscribe(email.clone())), old);
        assert_eq!(s.verify(&old, Purpose::Unsubscribe, Utc::now()), Ok(Claims::unsubscribe(email)));
    }

    #[test]
    fn a_confirmation_link_carries_its_list_and_when_it_was_made() {
        let s = signer(b"0123456789abcdef0123456789abcdef");
        let issued = Utc::now();
        let email: EmailAddress = "ann@example.org".parse().expect("valid");
        let list: ListName = "weekly".parse().expect("list");
        let c = Claims::confirm(email.clone(), Some(list.clone()), issued, Duration::days(7));
        let t = s.sign(&c);
        let got = s.verify(&t, Purpose::Confirm, issued).expect("valid");
        assert_eq!(got.list, Some(list));
        assert_eq!(got.issued.map(|i| i.timestamp()), Some(issued.timestamp()));
        assert_eq!(got.expires.map(|e| e.timestamp()), Some((issued + Duration::days(7)).timestamp()));
        assert_eq!(s.verify(&t, Purpose::Confirm, issued + Duration::days(7)), Err(TokenError::Expired));

        let no_list = s.sign(&Claims::confirm(email, None, issued, Duration::days(7)));
        assert_eq!(s.verify(&no_list, Purpose::Confirm, issued).expect("valid").list, None);

        // Another list, or a later issue time, cannot be swapped in.
        let parts: Vec<&str> = t.split('.').collect();
        let other_list =
            format!("{}.{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[3], B64.encode("vip"), parts[5]);
        assert_eq!(s.verify(&other_list, Purpose::Confirm, issued), Err(TokenError::Invalid));
        let later =
            format!("{}.{}.{}.{}.{}.{}", parts[0], parts[1], parts[2], issued.timestamp() + 9, parts[4], parts[5]);
        assert_eq!(s.verify(&later, Purpose::Confirm, issued), Err(TokenError::Invalid));
        // Dropping the extra fields does not make a shorter valid token either.
        let short = format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], parts[5]);
        assert_eq!(s.verify(&short, Purpose::Confirm, issued), Err(TokenError::Invalid));
    }
}
