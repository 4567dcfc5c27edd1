//! Signed tokens for the links in every message: what a link may do (confirm, unsubscribe), for
//! which address, until when, and an HMAC-SHA256 over all of it with the publication's secret.
//! A token cannot be forged or altered without the secret; checking compares in constant time.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::{config::LinkSecret, domain::EmailAddress};

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
        let payload = format!(
            "{}.{}.{}",
            claims.purpose.tag(),
            B64.encode(claims.email.as_str()),
            claims.expires.map_or(0, |e| e.timestamp())
        );
        let tag = B64.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{tag}")
    }

    /// The claims of a token made for `purpose`, if it is genuine and unexpired at `now`.
    pub fn verify(&self, token: &str, purpose: Purpose, now: DateTime<Utc>) -> Result<Claims, TokenError> {
        let (payload, tag) = token.rsplit_once('.').ok_or(TokenError::Invalid)?;
        let tag = B64.decode(tag).map_err(|_| TokenError::Invalid)?;
        self.mac(payload).verify_slice(&tag).map_err(|_| TokenError::Invalid)?;
        let mut parts = payload.split('.');
        let (Some(p), Some(email), Some(exp), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(TokenError::Invalid);
        };
        if p != purpose.tag() {
            return Err(TokenError::Invalid);
        }
        let email =
            String::from_utf8(B64.decode(email).map_err(|_| TokenError::Invalid)?).map_err(|_| TokenError::Invalid)?;
        let email: EmailAddress = email.parse().map_err(|_| TokenError::Invalid)?;
        let exp: i64 = exp.parse().map_err(|_| TokenError::Invalid)?;
        let expires = if exp == 0 { None } else { Some(DateTime::from_timestamp(exp, 0).ok_or(TokenError::Invalid)?) };
        if expires.is_some_and(|e| e <= now) {
            return Err(TokenError::Expired);
        }
        Ok(Claims { purpose, email, expires })
    }

    /// A short, stable, non-reversible tag for an address (for Message-IDs): the same address
    /// gives the same tag under the same secret, and nobody without the secret can tell whose.
    pub fn address_tag(&self, email: &EmailAddress) -> String {
        let bytes = self.mac(&format!("id.{email}")).finalize().into_bytes();
        bytes[..8].iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn signer(key: &[u8]) -> Signer {
        Signer::new(LinkSecret::from_bytes(key.to_vec()))
    }

    fn claims(purpose: Purpose, expires: Option<DateTime<Utc>>) -> Claims {
        Claims { purpose, email: "ann@example.org".parse().expect("valid"), expires }
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
}
