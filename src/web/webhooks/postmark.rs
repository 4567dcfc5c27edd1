//! Postmark's bounce and spam-complaint webhooks. Postmark signs nothing: the webhook's URL is
//! given a user name and password, which each request carries as HTTP basic auth, compared here
//! with `GAZETTE_POSTMARK_WEBHOOK_AUTH` in constant time. One record a request: `RecordType`
//! `Bounce` (its `Type` says which kind) or `SpamComplaint`.

use axum::http::{HeaderMap, header};
use base64::{Engine, engine::general_purpose::STANDARD};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::{Batch, POSTMARK_VAR, WebhookError, WebhookSetupError};
use crate::{
    bounces::{
        Event, EventKey, Provider,
        event::{message_id, one_line},
    },
    domain::BounceKind,
};

/// `user:password`, as Postmark's requests must carry it.
#[derive(Clone)]
pub(super) struct Credentials(SecretString);

impl Credentials {
    pub(super) fn parse(value: &str) -> Result<Self, WebhookSetupError> {
        let value = value.trim();
        match value.split_once(':') {
            Some((user, password)) if !user.is_empty() && !password.is_empty() => {
                Ok(Self(SecretString::from(value.to_owned())))
            }
            _ => Err(WebhookSetupError::Invalid {
                variable: POSTMARK_VAR,
                reason: "must be user:password, the basic auth given in Postmark's webhook URL",
            }),
        }
    }

    /// Whether the request carries these credentials as `Authorization: Basic …`. Digests are
    /// compared, so that neither the content nor the length of the secret shows in the time.
    pub(super) fn verify(&self, headers: &HeaderMap) -> Result<(), WebhookError> {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|v| STANDARD.decode(v.trim()).ok())
            .ok_or(WebhookError::Unverified("no basic auth"))?;
        let expected = Sha256::digest(self.0.expose_secret().as_bytes());
        if bool::from(Sha256::digest(&given).ct_eq(&expected)) {
            Ok(())
        } else {
            Err(WebhookError::Unverified("wrong basic auth"))
        }
    }
}

/// A record as Postmark posts it; only the fields gazette reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Record {
    record_type: String,
    #[serde(rename = "ID")]
    id: serde_json::Value,
    #[serde(rename = "Type")]
    kind: Option<String>,
    email: Option<String>,
    details: Option<String>,
    description: Option<String>,
    subject: Option<String>,
    /// Postmark's own id of the message; a Message-ID only if it reads as one.
    #[serde(rename = "MessageID")]
    message_id: Option<String>,
}

/// The kind of a bounce `Type`; `None` for what is no bounce of a reader's address (an
/// autoresponder, a subscription change, Postmark's own notices).
fn kind(record_type: &str, bounce_type: Option<&str>) -> Option<BounceKind> {
    match (record_type, bounce_type?) {
        ("SpamComplaint", _) | ("Bounce", "SpamComplaint") => Some(BounceKind::Complaint),
        ("Bounce", "HardBounce" | "BadEmailAddress") => Some(BounceKind::Hard),
        ("Bounce", "SoftBounce" | "Transient" | "DnsError" | "Blocked" | "ChallengeVerification") => {
            Some(BounceKind::Soft)
        }
        _ => None,
    }
}

/// The request's one record, as an event if it is a bounce or complaint gazette acts on.
pub(super) fn events(body: &[u8]) -> Result<Batch, WebhookError> {
    let record: Record = serde_json::from_slice(body).map_err(WebhookError::json)?;
    let id = match &record.id {
        serde_json::Value::Number(n) => n.to_string(),
        serde_json::Value::String(s) => s.clone(),
        _ => String::new(),
    };
    let recipient = record.email.as_deref().and_then(|e| e.parse().ok());
    let key = EventKey::new(Provider::Postmark, &id).ok();
    let kind = kind(&record.record_type, record.kind.as_deref().or(Some(&record.record_type)));
    let (Some(kind), Some(recipient), Some(key)) = (kind, recipient, key) else {
        return Ok(Batch { events: Vec::new(), ignored: 1 });
    };
    let event = Event {
        key,
        kind,
        recipient,
        status: None,
        diagnostic: one_line(
            record.details.as_deref().filter(|d| !d.trim().is_empty()).or(record.description.as_deref()),
        ),
        message_id: message_id(record.message_id.as_deref()),
        envelope_sender: None,
        subject: record.subject,
    };
    Ok(Batch { events: vec![event], ignored: 0 })
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn basic(user_password: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(user_password));
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&value).expect("header"));
        h
    }

    #[test]
    fn only_the_configured_user_and_password_verify() {
        let c = Credentials::parse("hook:s3cret-pass").expect("credentials");
        assert!(c.verify(&basic("hook:s3cret-pass")).is_ok());
        assert!(c.verify(&basic("hook:s3cret-pasS")).is_err());
        assert!(c.verify(&basic("hook:")).is_err());
        assert!(c.verify(&HeaderMap::new()).is_err());
        assert!(Credentials::parse("no-colon").is_err());
        assert!(Credentials::parse(":pass").is_err());
    }

    #[test]
    fn bounces_and_complaints_are_read_and_the_rest_ignored() {
        let hard = br#"{"RecordType":"Bounce","ID":4323372036854775807,"Type":"HardBounce","TypeCode":1,
            "MessageID":"883953f4-6105-42a2-a16a-77a8eac79483","Description":"The server was unable to deliver your message",
            "Details":"smtp;550 5.1.1 The email account that you tried to reach does not exist","Email":"Ann@Example.net",
            "From":"weekly@example.org","BouncedAt":"2019-11-05T16:33:54.9070259Z","Subject":"The Weekly Mirror"}"#;
        let batch = events(hard).expect("read");
        let e = &batch.events[0];
        assert_eq!(e.kind, BounceKind::Hard);
        assert_eq!(e.key.as_str(), "postmark:4323372036854775807");
        assert_eq!(e.recipient.key(), "ann@example.net");
        assert_eq!(e.message_id, None, "Postmark's own id is no Message-ID");
        assert!(e.diagnostic.as_deref().is_some_and(|d| d.contains("5.1.1")));
        let complaint = br#"{"RecordType":"SpamComplaint","ID":42,"Type":"SpamComplaint","Email":"bob@example.net"}"#;
        assert_eq!(events(complaint).expect("read").events[0].kind, BounceKind::Complaint);
        let soft = br#"{"RecordType":"Bounce","ID":"7","Type":"SoftBounce","Email":"bob@example.net"}"#;
        assert_eq!(events(soft).expect("read").events[0].kind, BounceKind::Soft);
        let auto = br#"{"RecordType":"Bounce","ID":8,"Type":"AutoResponder","Email":"bob@example.net"}"#;
        assert_eq!(events(auto).expect("read").ignored, 1);
        let delivery = br#"{"RecordType":"Delivery","ID":9,"Email":"bob@example.net"}"#;
        assert_eq!(events(delivery).expect("read").ignored, 1);
        assert!(events(b"not json").is_err());
    }
}
