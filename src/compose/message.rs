//! The MIME message a subscriber receives: `multipart/alternative` (text, then HTML, both
//! UTF-8) with every header that docs/src/delivery.md lists under "The messages". lettre encodes
//! and folds the headers, so a value can never start a header of its own.

use chrono::{DateTime, Utc};
use lettre::message::{
    Body, Mailbox, Message, MultiPart, SinglePart,
    header::{self, ContentTransferEncoding, ContentType},
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

/// Builds one reader's message.
pub fn build(
    settings: &MessageSettings,
    recipient: &Recipient,
    rendered: Letter,
    message_id: &MessageId,
    date: DateTime<Utc>,
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
