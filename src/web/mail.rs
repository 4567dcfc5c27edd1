//! The emails the web sends: the confirmation after a sign-up and the welcome after a
//! confirmation. Each is a template pair (text and HTML) rendered with the web's templates, its
//! CSS inlined and its text laid out like the digest's, and built as the digest is: headers
//! from typed values and folded names, so no input can start a header of its own.
//!
//! Mail goes out off the request path (`Postman::post`), so that a visitor cannot time the
//! answer to learn whether an address is known, and a slow SMTP server cannot hold a request.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use chrono::{DateTime, Utc};
use lettre::message::{Mailbox, Message, MultiPart, SinglePart, header::ContentType};
use tera::Context;
use tokio::sync::Semaphore;
use tracing::{info, warn};

use super::views::{self, ViewError, Views};
use crate::{
    compose::{
        headers::{AutoSubmitted, ListUnsubscribe, ListUnsubscribePost},
        render, text,
    },
    deliver::Transport,
    domain::{EmailAddress, ListName, MessageId},
    publication::Publication,
};

/// Numbers the messages this process makes.
static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Messages being sent at once; more wait their turn.
const IN_FLIGHT: u32 = 4;
/// The waits after a failed attempt; a temporary failure is tried as many times as there are.
const RETRIES: [Duration; 3] = [Duration::from_secs(2), Duration::from_secs(10), Duration::ZERO];

#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error(transparent)]
    Render(#[from] ViewError),
    #[error("cannot inline the CSS of {name}: {message}")]
    Inline { name: &'static str, message: String },
    #[error("cannot build the message: {0}")]
    Build(String),
}

/// A message ready to send, with the id the outbox files it under.
pub struct Outgoing {
    pub message: Message,
    pub message_id: MessageId,
    /// What it is, for the log (never the address).
    pub kind: &'static str,
}

/// The confirmation email for a sign-up.
pub fn confirmation(
    publication: &Publication,
    views: &Views,
    to: &EmailAddress,
    name: Option<&str>,
    list: Option<&ListName>,
    confirm_url: &str,
    now: DateTime<Utc>,
) -> Result<Outgoing, MailError> {
    let mut ctx = views.context();
    ctx.insert("email", to.as_str());
    ctx.insert("name", &name.map(render::one_line).unwrap_or_default());
    ctx.insert("list", &list.map(ListName::to_string));
    ctx.insert("confirm_url", confirm_url);
    let parts = render_pair(views, &ctx, views::CONFIRM_MAIL_HTML, views::CONFIRM_MAIL_TEXT)?;
    build(publication, to, name, parts, None, "confirm", now)
}

/// The welcome email after a confirmation.
pub fn welcome(
    publication: &Publication,
    views: &Views,
    to: &EmailAddress,
    name: &str,
    now: DateTime<Utc>,
) -> Result<Outgoing, MailError> {
    let unsubscribe_url = publication.unsubscribe_url(to);
    let mut ctx = views.context();
    ctx.insert("email", to.as_str());
    ctx.insert("name", &render::one_line(name));
    ctx.insert("archive_url", &publication.link("archive"));
    ctx.insert("unsubscribe_url", &unsubscribe_url);
    let parts = render_pair(views, &ctx, views::WELCOME_MAIL_HTML, views::WELCOME_MAIL_TEXT)?;
    build(publication, to, Some(name), parts, Some(&unsubscribe_url), "welcome", now)
}

struct Parts {
    subject: String,
    html: String,
    text: String,
}

fn render_pair(views: &Views, ctx: &Context, html: &'static str, txt: &'static str) -> Result<Parts, MailError> {
    let page = views.render_text(html, ctx)?;
    // The subject is the HTML part's title, so a publisher changes (or translates) both at once.
    let subject = title_of(&page).unwrap_or_default();
    let page = render::inline_css(&page).map_err(|message| MailError::Inline { name: html, message })?;
    let text = text::layout(&views.render_text(txt, ctx)?);
    Ok(Parts { subject, html: page, text })
}

fn build(
    publication: &Publication,
    to: &EmailAddress,
    name: Option<&str>,
    parts: Parts,
    unsubscribe_url: Option<&str>,
    kind: &'static str,
    now: DateTime<Utc>,
) -> Result<Outgoing, MailError> {
    let p = &publication.config.publication;
    let from = Mailbox::new(p.from.name.as_deref().map(render::one_line), p.from.address.to_lettre());
    let name = name.map(render::one_line).filter(|n| !n.is_empty());
    let subject = match render::one_line(&parts.subject) {
        s if s.is_empty() => render::one_line(&p.name),
        s => s,
    };
    // Each message gets an id of its own (two sign-ups within a millisecond are two messages),
    // made of a time and a count rather than random characters, which spam filters dislike.
    let left = format!(
        "{kind}.{}.{}.{}",
        now.timestamp_millis(),
        SEQUENCE.fetch_add(1, Ordering::Relaxed),
        publication.signer.address_tag(to)
    );
    let message_id = MessageId::new(&left, p.from.address.domain()).map_err(|e| MailError::Build(e.to_string()))?;
    let mut builder = Message::builder()
        .from(from)
        .to(Mailbox::new(name, to.to_lettre()))
        .subject(subject)
        .date(now.into())
        .message_id(Some(message_id.to_string()))
        .header(AutoSubmitted("auto-generated".into()));
    if let Some(r) = &p.reply_to {
        builder = builder.reply_to(Mailbox::new(None, r.to_lettre()));
    }
    if let Some(url) = unsubscribe_url {
        let mut value = format!("<{url}>");
        if let Some(mailto) = &p.unsubscribe_mailto {
            value.push_str(&format!(", <mailto:{mailto}?subject=unsubscribe>"));
        }
        builder =
            builder.header(ListUnsubscribe(value)).header(ListUnsubscribePost("List-Unsubscribe=One-Click".into()));
    }
    let alternative = MultiPart::alternative()
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(parts.text))
        .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(parts.html));
    let message = builder.multipart(alternative).map_err(|e| MailError::Build(e.to_string()))?;
    Ok(Outgoing { message, message_id, kind })
}

/// The text of the first `<title>`, with the entities tera writes turned back into characters.
fn title_of(html: &str) -> Option<String> {
    let start = html.find("<title>")? + "<title>".len();
    let end = start + html[start..].find("</title>")?;
    let raw = &html[start..end];
    let text = raw
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2F;", "/")
        .replace("&rsquo;", "\u{2019}")
        .replace("&middot;", "\u{b7}")
        .replace("&amp;", "&");
    Some(render::one_line(&text))
}

/// Sends the web's mail in the background, a few at a time, and lets a stopping server wait
/// for what is in flight.
#[derive(Clone)]
pub struct Postman {
    transport: Arc<Transport>,
    permits: Arc<Semaphore>,
}

impl Postman {
    pub fn new(transport: Arc<Transport>) -> Self {
        Self { transport, permits: Arc::new(Semaphore::new(IN_FLIGHT as usize)) }
    }

    /// Sends `mail` soon; a failure is logged, never shown to the visitor.
    pub fn post(&self, mail: Outgoing) {
        let transport = self.transport.clone();
        let permits = self.permits.clone();
        tokio::spawn(async move {
            let Ok(_permit) = permits.acquire_owned().await else { return };
            for (attempt, wait) in RETRIES.iter().enumerate() {
                match transport.send(mail.message.clone(), &mail.message_id).await {
                    Ok(_) => {
                        info!(kind = mail.kind, "web email sent");
                        return;
                    }
                    // The reply names the recipient more often than not: log its code only.
                    Err(e) => {
                        let code = e.reply.split_whitespace().next().unwrap_or_default().to_owned();
                        let again = !e.kind.is_final() && attempt + 1 < RETRIES.len();
                        warn!(kind = mail.kind, failure = ?e.kind, code, again, "web email not sent");
                        if !again {
                            return;
                        }
                        tokio::time::sleep(*wait).await;
                    }
                }
            }
        });
    }

    /// Waits (up to `limit`) for the messages being sent, and stops taking new ones.
    pub async fn finish(&self, limit: Duration) {
        if tokio::time::timeout(limit, self.permits.acquire_many(IN_FLIGHT)).await.is_err() {
            warn!("stopped with web emails still being sent");
        }
        self.permits.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subject_is_the_title_unescaped() {
        assert_eq!(
            title_of("<html><head><title>Confirm\n  Tom &amp; Jerry&#x27;s &lt;news&gt;</title>"),
            Some("Confirm Tom & Jerry's <news>".into())
        );
        assert_eq!(title_of("<p>no title</p>"), None);
    }
}
