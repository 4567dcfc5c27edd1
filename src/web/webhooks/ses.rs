//! Amazon SES's bounce and complaint notifications, as SNS delivers them (verified in `sns`):
//! the `Message` of a notification is SES's JSON, with `notificationType` (a topic set on the
//! identity) or `eventType` (a configuration set's event destination). A `Permanent` bounce is
//! hard, a `Transient` or `Undetermined` one soft; a complaint is a complaint unless its feedback
//! type is `not-spam`. One event per recipient, keyed by SES's `feedbackId` and the recipient's
//! place in the list.

use serde::Deserialize;

use super::{Batch, WebhookError};
use crate::{
    bounces::{
        Event, EventKey, Provider,
        event::{message_id, one_line, status_code},
    },
    domain::BounceKind,
};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    notification_type: Option<String>,
    event_type: Option<String>,
    bounce: Option<Bounce>,
    complaint: Option<Complaint>,
    mail: Option<Mail>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Bounce {
    bounce_type: String,
    #[serde(default)]
    bounced_recipients: Vec<Recipient>,
    feedback_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Complaint {
    #[serde(default)]
    complained_recipients: Vec<Recipient>,
    feedback_id: String,
    complaint_feedback_type: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Recipient {
    email_address: String,
    status: Option<String>,
    diagnostic_code: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Mail {
    /// SES's own id of the message; the header's is in `commonHeaders`.
    message_id: Option<String>,
    /// The envelope sender it went out from.
    source: Option<String>,
    common_headers: Option<CommonHeaders>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CommonHeaders {
    message_id: Option<String>,
    subject: Option<String>,
}

/// The events of one SES notification; a delivery, a send or anything else is ignored.
pub(super) fn events(message: &str) -> Result<Batch, WebhookError> {
    let n: Notification = serde_json::from_str(message).map_err(WebhookError::json)?;
    let what = n.notification_type.as_deref().or(n.event_type.as_deref()).unwrap_or_default();
    let (kind, feedback_id, recipients) = match (what, n.bounce, n.complaint) {
        ("Bounce", Some(b), _) => {
            let kind = match b.bounce_type.as_str() {
                "Permanent" => BounceKind::Hard,
                _ => BounceKind::Soft,
            };
            (kind, b.feedback_id, b.bounced_recipients)
        }
        ("Complaint", _, Some(c)) if c.complaint_feedback_type.as_deref() != Some("not-spam") => {
            (BounceKind::Complaint, c.feedback_id, c.complained_recipients)
        }
        _ => return Ok(Batch { events: Vec::new(), ignored: 1 }),
    };
    let mail = n.mail.as_ref();
    let headers = mail.and_then(|m| m.common_headers.as_ref());
    let original = message_id(headers.and_then(|h| h.message_id.as_deref()))
        .or_else(|| message_id(mail.and_then(|m| m.message_id.as_deref())));
    let mut batch = Batch::default();
    for (i, r) in recipients.iter().enumerate() {
        let key = EventKey::new(Provider::Ses, &format!("{feedback_id}:{i}")).ok();
        let (Some(key), Ok(recipient)) = (key, r.email_address.parse()) else {
            batch.ignored += 1;
            continue;
        };
        batch.events.push(Event {
            key,
            kind,
            recipient,
            status: status_code(r.status.as_deref()),
            diagnostic: one_line(r.diagnostic_code.as_deref()),
            message_id: original.clone(),
            envelope_sender: mail.and_then(|m| m.source.clone()),
            subject: headers.and_then(|h| h.subject.clone()),
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BOUNCE: &str = r#"{"notificationType":"Bounce","bounce":{"bounceType":"Permanent","bounceSubType":"General",
        "bouncedRecipients":[{"emailAddress":"ann@example.net","action":"failed","status":"5.1.1",
        "diagnosticCode":"smtp; 550 5.1.1 user unknown"},{"emailAddress":"bob@example.net","status":"5.1.1"}],
        "timestamp":"2024-03-18T13:00:00.000Z","feedbackId":"0100018e-fb-000000"},
        "mail":{"timestamp":"2024-03-18T12:59:00.000Z","source":"bounces+d7-abc@example.org","messageId":"0100018e-ses",
        "destination":["ann@example.net"],"commonHeaders":{"messageId":"<issue1.x@news.example.org>","subject":"The Weekly Mirror"}}}"#;

    #[test]
    fn a_bounce_is_one_event_per_recipient() {
        let batch = events(BOUNCE).expect("read");
        assert_eq!(batch.events.len(), 2);
        let e = &batch.events[0];
        assert_eq!((e.kind, e.key.as_str()), (BounceKind::Hard, "ses:0100018e-fb-000000:0"));
        assert_eq!(batch.events[1].key.as_str(), "ses:0100018e-fb-000000:1");
        assert_eq!(e.status.as_deref(), Some("5.1.1"));
        assert_eq!(e.envelope_sender.as_deref(), Some("bounces+d7-abc@example.org"));
        assert_eq!(e.message_id.as_ref().map(ToString::to_string).as_deref(), Some("<issue1.x@news.example.org>"));
    }

    #[test]
    fn transient_bounces_are_soft_and_complaints_complaints() {
        let transient = BOUNCE.replace("Permanent", "Transient");
        assert_eq!(events(&transient).expect("read").events[0].kind, BounceKind::Soft);
        let event_type = BOUNCE.replace("notificationType", "eventType").replace("Permanent", "Undetermined");
        assert_eq!(events(&event_type).expect("read").events[0].kind, BounceKind::Soft);
        let complaint = r#"{"notificationType":"Complaint","complaint":{"complainedRecipients":[{"emailAddress":"ann@example.net"}],
            "feedbackId":"c1","complaintFeedbackType":"abuse"},"mail":{"source":"weekly@example.org"}}"#;
        assert_eq!(events(complaint).expect("read").events[0].kind, BounceKind::Complaint);
        let not_spam = complaint.replace("abuse", "not-spam");
        assert_eq!(events(&not_spam).expect("read").ignored, 1);
        let delivery = r#"{"notificationType":"Delivery","mail":{}}"#;
        assert_eq!(events(delivery).expect("read").ignored, 1);
        assert!(events("not json").is_err());
    }
}
