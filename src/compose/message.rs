//! The MIME message a subscriber receives: `multipart/alternative` (text, then HTML, both
//! UTF-8) with every header that docs/src/delivery.md lists under "The messages". lettre encodes
//! and folds the headers, so a value can never start a header of its own.

use chrono::{DateTime, Utc};
use lettre::{
    address::Envelope,
    message::{
        Body, Mailbox, Message, MultiPart, SinglePart,
        header::{self, ContentTransferEncoding, ContentType},
    },
};

use super::{
    headers::{ListId, ListUnsubscribe, ListUnsubscribePost},
    personalize::{HtmlPart, Letter, Recipient},
};
use crate::{
    config::Sender,
    domain::{EmailAddress, MessageId, MessageIdError},
};

/// What every message of a publication shares.
#[derive(Debug, Clone)]
pub struct MessageSettings {
    pub from: Sender,
    pub reply_to: Option<EmailAddress>,
    pub unsubscribe_mailto: Option<EmailAddress>,
    /// `List-Id`: the publication's name and a dotted id under its own domain.
    pub list_id: String,
}

#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    #[error("cannot build the message for {email}: {message}")]
    Build { email: String, message: String },
}

/// The Message-ID of an issue's copy for one reader: the same every time it is built, so a
/// copy sent again after a crash is recognisably the same message.
pub fn message_id(issue: u32, address_tag: &str, from: &EmailAddress) -> Result<MessageId, MessageIdError> {
    MessageId::new(&format!("issue{issue}.{address_tag}"), from.domain())
}

/// The issue a Message-ID made by [`message_id`] belongs to; None for any other id.
pub fn issue_of(message_id: &MessageId) -> Option<u32> {
    let left = message_id.as_str().split_once('@').map(|(l, _)| l)?;
    let number = left.strip_prefix("issue")?.split_once('.')?.0;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    number.parse().ok()
}

/// Builds one reader's message. Its envelope goes from `return_path` when one is given (the
/// address bounces of this very message come back to), else from the From address.
pub fn build(
    settings: &MessageSettings,
    recipient: &Recipient,
    rendered: Letter,
    message_id: &MessageId,
    date: DateTime<Utc>,
    return_path: Option<&EmailAddress>,
) -> Result<Message, MessageError> {
    let fail = |message: String| MessageError::Build { email: recipient.email.to_string(), message };
    let from =
        Mailbox::new(settings.from.name.as_deref().map(super::render::one_line), settings.from.address.to_lettre());
    let name = super::render::one_line(&recipient.name);
    let to = Mailbox::new((!name.is_empty()).then_some(name), recipient.email.to_lettre());
    let mut unsubscribe = format!("<{}>", recipient.unsubscribe_url);
    if let Some(mailto) = &settings.unsubscribe_mailto {
        unsubscribe.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
    }
    let subject = super::render::one_line(&rendered.subject);
    let mut builder = Message::builder()
        .from(from)
        .to(to)
        .subject(subject)
        .date(date.into())
        .message_id(Some(message_id.to_string()))
        .header(ListId(super::render::one_line(&settings.list_id)))
        .header(ListUnsubscribe(unsubscribe))
        .header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    if let Some(r) = &settings.reply_to {
        builder = builder.reply_to(Mailbox::new(None, r.to_lettre()));
    }
    if let Some(sender) = return_path {
        let envelope = Envelope::new(Some(sender.to_lettre()), vec![recipient.email.to_lettre()])
            .map_err(|e| fail(e.to_string()))?;
        builder = builder.envelope(envelope);
    }
    let body = |part: HtmlPart| match part {
        HtmlPart::Text(t) => Body::new(t),
        // Made by `qp::encode_piece`: valid quoted-printable with lines of at most 76 characters.
        HtmlPart::QuotedPrintable(b) => Body::dangerous_pre_encoded(b, ContentTransferEncoding::QuotedPrintable),
    };
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body(rendered.text)))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(body(rendered.html)));
    builder.multipart(alternative).map_err(|e| fail(e.to_string()))
}

/// `Name <slug.host>`: RFC 2919 wants an id under a domain the publisher controls.
pub fn list_id(publication_name: &str, list: &str, base_url: &url::Url) -> String {
    let host = base_url.host_str().unwrap_or("localhost");
    format!("{} <{list}.{host}>", super::render::one_line(publication_name).replace(['<', '>'], ""))
}

// Keeps `header` in use for the date conversion above on every lettre version.
#[allow(unused_imports)]
use header::Date as _;

#[cfg(test)]
mod tests {
    use super::*;

    fn build_with(return_path: Option<&EmailAddress>) -> Message {
        let settings = MessageSettings {
            from: Sender {
                name: Some("The Weekly Mirror".into()),
                address: "weekly@example.org".parse().expect("valid"),
            },
            reply_to: None,
            unsubscribe_mailto: None,
            list_id: "The Weekly Mirror <weekly.news.example.org>".into(),
        };
        let recipient = Recipient {
            email: "ann@example.org".parse().expect("valid"),
            name: "Ann".into(),
            attributes: Default::default(),
            unsubscribe_url: "https://news.example.org/unsubscribe/x".into(),
            preferences_url: String::new(),
            edition: String::new(),
            topics: vec![],
        };
        let letter = Letter { subject: "S".into(), text: HtmlPart::Text("t".into()), html: HtmlPart::Text("h".into()) };
        let id = MessageId::new("issue1.ab", "example.org").expect("id");
        build(&settings, &recipient, letter, &id, DateTime::UNIX_EPOCH, return_path).expect("built")
    }

    #[test]
    fn a_message_id_names_its_issue() {
        let from: EmailAddress = "weekly@example.org".parse().expect("valid");
        let id = message_id(42, "00ff", &from).expect("id");
        assert_eq!(issue_of(&id), Some(42));
        for other in ["<x@example.org>", "<issue.1@example.org>", "<issue+1.a@example.org>", "<issue12@example.org>"] {
            assert_eq!(issue_of(&other.parse().expect("an id")), None, "{other}");
        }
    }

    #[test]
    fn the_envelope_goes_from_the_return_path_when_there_is_one() {
        let verp: EmailAddress = "bounces+d1-abc@example.org".parse().expect("valid");
        let m = build_with(Some(&verp));
        assert_eq!(m.envelope().from().map(|a| a.to_string()).as_deref(), Some("bounces+d1-abc@example.org"));
        let to: Vec<String> = m.envelope().to().iter().map(|a| a.to_string()).collect();
        assert_eq!(to, ["ann@example.org"]);
        let headers = String::from_utf8_lossy(&m.formatted()).into_owned();
        assert!(headers.contains("From: \"The Weekly Mirror\" <weekly@example.org>"), "{headers}");
        assert!(!headers.contains("bounces+"), "the return path is the envelope's only: {headers}");

        let plain = build_with(None);
        assert_eq!(plain.envelope().from().map(|a| a.to_string()).as_deref(), Some("weekly@example.org"));
    }
}
