//! SendGrid's signed Event Webhook: an ECDSA P-256 signature with SHA-256 (base64 of its DER
//! form, in `X-Twilio-Email-Event-Webhook-Signature`) over the timestamp header
//! (`X-Twilio-Email-Event-Webhook-Timestamp`) followed by the raw body, verified with the
//! verification key SendGrid shows (base64 of a DER SubjectPublicKeyInfo,
//! `GAZETTE_SENDGRID_PUBLIC_KEY`). The body is an array of events: `bounce` (`type` bounce is
//! hard, blocked soft), `dropped` (of an address that bounced or is invalid: hard; that
//! complained: a complaint), `deferred` (soft) and `spamreport` (a complaint).

use axum::http::HeaderMap;
use base64::{Engine, engine::general_purpose::STANDARD};
use p256::{
    ecdsa::{Signature, VerifyingKey, signature::Verifier},
    pkcs8::DecodePublicKey,
};
use serde::Deserialize;

use super::{Batch, SENDGRID_VAR, WebhookError, WebhookSetupError};
use crate::{
    bounces::{
        Event, EventKey, Provider,
        event::{message_id, one_line, status_code},
    },
    domain::BounceKind,
};

pub(super) const SIGNATURE_HEADER: &str = "x-twilio-email-event-webhook-signature";
pub(super) const TIMESTAMP_HEADER: &str = "x-twilio-email-event-webhook-timestamp";

#[derive(Clone)]
pub(super) struct PublicKey(VerifyingKey);

impl PublicKey {
    pub(super) fn parse(value: &str) -> Result<Self, WebhookSetupError> {
        let invalid = WebhookSetupError::Invalid {
            variable: SENDGRID_VAR,
            reason: "must be SendGrid's verification key: base64 of an ECDSA P-256 public key (DER)",
        };
        let der = STANDARD.decode(value.trim()).map_err(|_| invalid)?;
        VerifyingKey::from_public_key_der(&der).map(Self).map_err(|_| WebhookSetupError::Invalid {
            variable: SENDGRID_VAR,
            reason: "must be SendGrid's verification key: base64 of an ECDSA P-256 public key (DER)",
        })
    }

    /// Whether the headers' signature is this key's over the timestamp and the body.
    pub(super) fn verify(&self, headers: &HeaderMap, body: &[u8]) -> Result<(), WebhookError> {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
        let signature = header(SIGNATURE_HEADER).ok_or(WebhookError::Unverified("no signature header"))?;
        let timestamp = header(TIMESTAMP_HEADER).ok_or(WebhookError::Unverified("no timestamp header"))?;
        let der = STANDARD.decode(signature).map_err(|_| WebhookError::Unverified("the signature is not base64"))?;
        let signature =
            Signature::from_der(&der).map_err(|_| WebhookError::Unverified("the signature is no ECDSA signature"))?;
        let mut signed = Vec::with_capacity(timestamp.len() + body.len());
        signed.extend_from_slice(timestamp.as_bytes());
        signed.extend_from_slice(body);
        self.0.verify(&signed, &signature).map_err(|_| WebhookError::Unverified("wrong signature"))
    }
}

#[derive(Debug, Deserialize)]
struct SgEvent {
    event: Option<String>,
    email: Option<String>,
    sg_event_id: Option<String>,
    #[serde(rename = "smtp-id")]
    smtp_id: Option<String>,
    reason: Option<String>,
    response: Option<String>,
    status: Option<String>,
    #[serde(rename = "type")]
    bounce_type: Option<String>,
}

/// The kind of one event; `None` for what gazette does not act on (deliveries, opens, clicks,
/// drops for other reasons, such as an unsubscribed address).
fn kind(e: &SgEvent) -> Option<BounceKind> {
    match e.event.as_deref()? {
        "bounce" if e.bounce_type.as_deref() == Some("blocked") => Some(BounceKind::Soft),
        "bounce" => Some(BounceKind::Hard),
        "deferred" => Some(BounceKind::Soft),
        "spamreport" => Some(BounceKind::Complaint),
        "dropped" => match e.reason.as_deref()? {
            "Bounced Address" | "Invalid" | "Invalid SMTPAPI header" => Some(BounceKind::Hard),
            "Spam Reporting Address" => Some(BounceKind::Complaint),
            _ => None,
        },
        _ => None,
    }
}

/// The body's events, once its signature holds.
pub(super) fn events(body: &[u8]) -> Result<Batch, WebhookError> {
    let all: Vec<serde_json::Value> = serde_json::from_slice(body).map_err(WebhookError::json)?;
    let mut batch = Batch::default();
    for value in all {
        let Ok(e) = serde_json::from_value::<SgEvent>(value) else {
            batch.ignored += 1;
            continue;
        };
        let key = e.sg_event_id.as_deref().and_then(|id| EventKey::new(Provider::Sendgrid, id).ok());
        let recipient = e.email.as_deref().and_then(|a| a.parse().ok());
        let (Some(kind), Some(key), Some(recipient)) = (kind(&e), key, recipient) else {
            batch.ignored += 1;
            continue;
        };
        batch.events.push(Event {
            key,
            kind,
            recipient,
            status: status_code(e.status.as_deref()),
            diagnostic: one_line(e.reason.as_deref().or(e.response.as_deref())),
            message_id: message_id(e.smtp_id.as_deref()),
            envelope_sender: None,
            subject: None,
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use p256::{
        ecdsa::{SigningKey, signature::Signer},
        pkcs8::EncodePublicKey,
    };

    use super::*;

    fn keys(seed: u8) -> (SigningKey, PublicKey) {
        let signing = SigningKey::from_slice(&[seed; 32]).expect("a scalar");
        let der = signing.verifying_key().to_public_key_der().expect("der");
        (signing, PublicKey::parse(&STANDARD.encode(der.as_bytes())).expect("public key"))
    }

    fn headers(signing: &SigningKey, timestamp: &str, body: &[u8]) -> HeaderMap {
        let mut signed = timestamp.as_bytes().to_vec();
        signed.extend_from_slice(body);
        let signature: Signature = signing.sign(&signed);
        let mut h = HeaderMap::new();
        h.insert(SIGNATURE_HEADER, HeaderValue::from_str(&STANDARD.encode(signature.to_der())).expect("value"));
        h.insert(TIMESTAMP_HEADER, HeaderValue::from_str(timestamp).expect("value"));
        h
    }

    const BODY: &[u8] = br#"[{"email":"ann@example.net","timestamp":1513299569,"smtp-id":"<issue1.x@news.example.org>",
        "event":"bounce","sg_event_id":"ZGVsaXZlcmVkLTAtNDc","reason":"550 5.1.1 unknown recipient","status":"5.1.1","type":"bounce"},
        {"email":"bob@example.net","event":"bounce","sg_event_id":"b2","type":"blocked","status":"4.0.0"},
        {"email":"cy@example.net","event":"spamreport","sg_event_id":"c3"},
        {"email":"di@example.net","event":"deferred","sg_event_id":"d4","response":"400 try again later"},
        {"email":"ed@example.net","event":"dropped","sg_event_id":"e5","reason":"Unsubscribed Address"},
        {"email":"fi@example.net","event":"open","sg_event_id":"f6"}]"#;

    #[test]
    fn the_signature_covers_the_timestamp_and_the_body() {
        let (signing, key) = keys(7);
        assert!(key.verify(&headers(&signing, "1700000000", BODY), BODY).is_ok());
        let h = headers(&signing, "1700000000", BODY);
        let mut other = h.clone();
        other.insert(TIMESTAMP_HEADER, HeaderValue::from_static("1700000001"));
        assert!(key.verify(&other, BODY).is_err(), "another timestamp");
        assert!(key.verify(&h, &BODY[..BODY.len() - 1]).is_err(), "another body");
        let (stranger, _) = keys(9);
        assert!(key.verify(&headers(&stranger, "1700000000", BODY), BODY).is_err(), "another key");
        assert!(key.verify(&HeaderMap::new(), BODY).is_err());
        assert!(PublicKey::parse("bm90IGEga2V5").is_err());
    }

    #[test]
    fn each_event_is_read_by_its_kind() {
        let batch = events(BODY).expect("read");
        let kinds: Vec<BounceKind> = batch.events.iter().map(|e| e.kind).collect();
        assert_eq!(kinds, [BounceKind::Hard, BounceKind::Soft, BounceKind::Complaint, BounceKind::Soft]);
        assert_eq!(batch.ignored, 2);
        let first = &batch.events[0];
        assert_eq!(first.key.as_str(), "sendgrid:ZGVsaXZlcmVkLTAtNDc");
        assert_eq!(first.status.as_deref(), Some("5.1.1"));
        assert_eq!(first.message_id.as_ref().map(ToString::to_string).as_deref(), Some("<issue1.x@news.example.org>"));
        assert!(events(b"{}").is_err(), "not an array");
    }
}
