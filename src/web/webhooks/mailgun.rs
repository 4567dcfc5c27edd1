//! Mailgun's webhooks: a JSON body with a `signature` (timestamp, token, and the hex HMAC-SHA256
//! of timestamp and token under the account's webhook signing key) and one `event-data`. A
//! signature that does not match, a timestamp further than [`MAX_SKEW`] from now either way, and
//! a token seen before (kept in the store, see `store::webhooks`) are all refused. Events read:
//! `failed` (`severity` permanent is a hard bounce, temporary a soft one) and `complained`.

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::Sha256;

use super::{Batch, MAILGUN_VAR, WebhookError, WebhookSetupError};
use crate::{
    bounces::{
        Event, EventKey, Provider,
        event::{message_id, one_line, status_code},
    },
    domain::BounceKind,
};

/// How far a request's timestamp may be from now, either way: a genuine request is seconds old
/// when it arrives, and a clock may be a little off.
pub(super) const MAX_SKEW: chrono::Duration = chrono::Duration::minutes(5);
/// How long a token is kept: past this, a request with it is refused as stale anyway (its
/// timestamp may have been up to [`MAX_SKEW`] ahead when it was first seen).
pub(super) const TOKENS_KEPT: chrono::Duration = chrono::Duration::minutes(10);

#[derive(Clone)]
pub(super) struct SigningKey(SecretString);

impl SigningKey {
    pub(super) fn parse(value: &str) -> Result<Self, WebhookSetupError> {
        let value = value.trim();
        if value.len() < 16 {
            return Err(WebhookSetupError::Invalid {
                variable: MAILGUN_VAR,
                reason: "is too short to be Mailgun's HTTP webhook signing key",
            });
        }
        Ok(Self(SecretString::from(value.to_owned())))
    }

    /// Reads the body and checks its signature and timestamp; the token is for the caller to
    /// note as used.
    pub(super) fn verify(&self, body: &[u8], now: DateTime<Utc>) -> Result<Signed, WebhookError> {
        let payload: Payload = serde_json::from_slice(body).map_err(WebhookError::json)?;
        let s = &payload.signature;
        let expected =
            hex::decode(s.signature.trim()).map_err(|_| WebhookError::Unverified("the signature is not hex"))?;
        let mut mac = Hmac::<Sha256>::new_from_slice(self.0.expose_secret().as_bytes())
            .map_err(|_| WebhookError::Unverified("no key"))?;
        mac.update(s.timestamp.as_bytes());
        mac.update(s.token.as_bytes());
        // `verify_slice` compares in constant time.
        mac.verify_slice(&expected).map_err(|_| WebhookError::Unverified("wrong signature"))?;
        let at = s
            .timestamp
            .trim()
            .parse::<i64>()
            .ok()
            .and_then(|t| DateTime::from_timestamp(t, 0))
            .ok_or(WebhookError::Unverified("the timestamp is not a time"))?;
        if (now - at).abs() > MAX_SKEW {
            return Err(WebhookError::Unverified("the timestamp is stale"));
        }
        if s.token.is_empty() || s.token.len() > 200 {
            return Err(WebhookError::Unverified("no usable token"));
        }
        Ok(Signed { token: s.token.clone(), batch: batch(payload.event_data) })
    }
}

/// A request whose signature verified: its token, and its events.
#[derive(Debug)]
pub(super) struct Signed {
    pub token: String,
    pub batch: Batch,
}

#[derive(Deserialize)]
struct Payload {
    signature: Signature,
    #[serde(rename = "event-data")]
    event_data: serde_json::Value,
}

#[derive(Deserialize)]
struct Signature {
    timestamp: String,
    token: String,
    signature: String,
}

#[derive(Debug, Deserialize)]
struct EventData {
    event: String,
    id: String,
    severity: Option<String>,
    recipient: Option<String>,
    envelope: Option<Envelope>,
    message: Option<Message>,
    #[serde(rename = "delivery-status")]
    delivery_status: Option<DeliveryStatus>,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Envelope {
    sender: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Message {
    headers: Option<Headers>,
}

#[derive(Debug, Deserialize)]
struct Headers {
    #[serde(rename = "message-id")]
    message_id: Option<String>,
    subject: Option<String>,
}

#[derive(Debug, Deserialize)]
struct DeliveryStatus {
    code: Option<serde_json::Value>,
    message: Option<String>,
    description: Option<String>,
    #[serde(rename = "enhanced-code")]
    enhanced_code: Option<String>,
}

/// The signed event, read once the signature holds: one that is no bounce or complaint, or
/// that cannot be read, is ignored rather than refused, since Mailgun would only send it again.
fn batch(data: serde_json::Value) -> Batch {
    let ignored = Batch { events: Vec::new(), ignored: 1 };
    let Ok(data) = serde_json::from_value::<EventData>(data) else { return ignored };
    let kind = match (data.event.as_str(), data.severity.as_deref()) {
        ("failed", Some("permanent")) => BounceKind::Hard,
        ("failed", Some("temporary")) => BounceKind::Soft,
        ("complained", _) => BounceKind::Complaint,
        _ => return ignored,
    };
    let (Some(recipient), Ok(key)) =
        (data.recipient.as_deref().and_then(|r| r.parse().ok()), EventKey::new(Provider::Mailgun, &data.id))
    else {
        return ignored;
    };
    let headers = data.message.and_then(|m| m.headers);
    let status = data.delivery_status.as_ref();
    let diagnostic = status.and_then(|s| {
        let words = s.message.as_deref().filter(|m| !m.trim().is_empty()).or(s.description.as_deref());
        let code = s.code.as_ref().map(|c| c.to_string().trim_matches('"').to_owned());
        one_line(Some(&format!("{} {}", code.unwrap_or_default(), words.unwrap_or_default())))
    });
    let event = Event {
        key,
        kind,
        recipient,
        status: status_code(status.and_then(|s| s.enhanced_code.as_deref())),
        diagnostic: diagnostic.or_else(|| one_line(data.reason.as_deref())),
        message_id: message_id(headers.as_ref().and_then(|h| h.message_id.as_deref())),
        envelope_sender: data.envelope.and_then(|e| e.sender),
        subject: headers.and_then(|h| h.subject),
    };
    Batch { events: vec![event], ignored: 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "key-0123456789abcdef0123456789abcdef";

    fn signed(timestamp: &str, token: &str, event: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(KEY.as_bytes()).expect("key");
        mac.update(timestamp.as_bytes());
        mac.update(token.as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        format!(
            r#"{{"signature":{{"timestamp":"{timestamp}","token":"{token}","signature":"{signature}"}},"event-data":{event}}}"#
        )
        .into_bytes()
    }

    const FAILED: &str = r#"{"event":"failed","id":"G9Bn5sl1TC6nu79C8C0bwg","timestamp":1521233195.375624,
        "severity":"permanent","reason":"bounce","recipient":"ann@example.net",
        "envelope":{"sender":"bounces+d7-abc@example.org","targets":"ann@example.net"},
        "message":{"headers":{"to":"ann@example.net","message-id":"issue1.x@news.example.org","subject":"The Weekly Mirror"}},
        "delivery-status":{"code":550,"message":"5.1.1 The email account that you tried to reach does not exist","description":""}}"#;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000, 0).expect("time")
    }

    #[test]
    fn a_signed_fresh_request_verifies_and_reads_its_event() {
        let key = SigningKey::parse(KEY).expect("key");
        let s = key.verify(&signed("1700000010", "tok1", FAILED), now()).expect("verified");
        assert_eq!(s.token, "tok1");
        let e = &s.batch.events[0];
        assert_eq!((e.kind, e.key.as_str()), (BounceKind::Hard, "mailgun:G9Bn5sl1TC6nu79C8C0bwg"));
        assert_eq!(e.envelope_sender.as_deref(), Some("bounces+d7-abc@example.org"));
        assert_eq!(e.message_id.as_ref().map(ToString::to_string).as_deref(), Some("<issue1.x@news.example.org>"));
        assert!(e.diagnostic.as_deref().is_some_and(|d| d.starts_with("550 5.1.1")), "{:?}", e.diagnostic);
    }

    #[test]
    fn wrong_signatures_and_stale_timestamps_are_refused() {
        let key = SigningKey::parse(KEY).expect("key");
        let other = SigningKey::parse("key-fedcba9876543210fedcba9876543210").expect("key");
        assert!(other.verify(&signed("1700000010", "tok1", FAILED), now()).is_err());
        let stale = key.verify(&signed("1699999000", "tok1", FAILED), now());
        assert!(matches!(stale, Err(WebhookError::Unverified("the timestamp is stale"))), "{stale:?}");
        let ahead = key.verify(&signed("1700001000", "tok1", FAILED), now());
        assert!(matches!(ahead, Err(WebhookError::Unverified(_))));
        let mut tampered = signed("1700000010", "tok1", FAILED);
        let at = tampered.windows(4).position(|w| w == b"tok1").expect("token");
        tampered[at + 3] = b'2';
        assert!(key.verify(&tampered, now()).is_err(), "the token is signed");
        assert!(SigningKey::parse("short").is_err());
    }

    #[test]
    fn temporary_failures_are_soft_complaints_are_complaints_and_the_rest_ignored() {
        let key = SigningKey::parse(KEY).expect("key");
        let read = |event: &str| key.verify(&signed("1700000000", "t", event), now()).expect("verified").batch;
        let soft = read(r#"{"event":"failed","id":"a","severity":"temporary","recipient":"ann@example.net"}"#);
        assert_eq!(soft.events[0].kind, BounceKind::Soft);
        let complaint = read(r#"{"event":"complained","id":"b","recipient":"ann@example.net"}"#);
        assert_eq!(complaint.events[0].kind, BounceKind::Complaint);
        assert_eq!(read(r#"{"event":"delivered","id":"c","recipient":"ann@example.net"}"#).ignored, 1);
        assert_eq!(read(r#"{"event":"failed","id":"d","severity":"permanent","recipient":"nobody"}"#).ignored, 1);
    }
}
