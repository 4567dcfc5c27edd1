//! Signed tokens for the links in every message: what a link may do (confirm, unsubscribe), for
//! which address, until when, and an HMAC-SHA256 over all of it with the publication's secret.
//! A token cannot be forged or altered without the secret; checking compares in constant time.
//!
//! A token is `purpose.address.expires[.issued.list].mac`, each field base64url or a Unix time.
//! Unsubscribe links carry the first three fields only, exactly as they always have, so links
//! in mail already sent keep working; confirmation links add when they were made and the list
//! asked for, so that a link made before a reader left cannot bring them back.

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
}

impl Purpose {
    fn tag(self) -> &'static str {
        match self {
            Self::Unsubscribe => "u",
            Self::Confirm => "c",
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
