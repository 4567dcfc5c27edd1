//! The bounces of servers that write no DSN, and autoresponders' answers: recognised by who sends
//! them, their subjects and the phrases particular servers write, then read hard or soft from
//! the status code, reply code or words they give, and the address they name. Knows nothing of
//! DSNs or ARF, which `report` reads from their fields.

use mail_parser::{Message, PartType};

use super::{
    Report, addresses_in, bare, first_code, first_status, header_values, kind_of_code, kind_of_status, line_around,
    one_line,
};
use crate::domain::{EmailAddress, ReportKind};

/// Where a free-text bounce stops speaking and quotes the original message.
const QUOTE_MARKERS: &[&str] = &[
    "--- below this line is a copy of the message",
    "------ this is a copy of the message",
    "------ this is a copy of the body of the message",
    "----- original message -----",
    "------ original message",
    "original message headers:",
    "----- the header of the original message is following",
    // Sendmail's transcript holds the reason: what follows it is quoted.
    "----- unsent message follows",
    "----- original message follows",
    "original message follows",
    // DragonFly's dma, Lotus Notes
    "message headers follow",
    "------- returned message",
];

/// Phrases only the bounces of particular servers write.
const BOUNCE_PHRASES: &[&str] = &[
    // qmail, and Yahoo, which answers as qmail did
    "hi. this is the qmail-send program",
    "sorry, we were unable to deliver your message",
    // Exim
    "this message was created automatically by mail delivery software",
    "a message that you sent could not be delivered",
    "a message that you sent has not yet been delivered",
    // Exchange and Outlook
    "delivery has failed to these recipients or groups",
    "your message to",
    "couldn't be delivered",
    "the following recipient(s) cannot be reached",
    // Gmail
    "your message wasn't delivered",
    "delivery to the following recipient failed",
    "delivery to the following recipients failed",
    "message not delivered",
    // Sendmail and others
    "the original message was received at",
    "i'm sorry to have to inform you that your message could not",
    "the following addresses had permanent fatal errors",
    "undelivered mail returned to sender",
    // Lotus Notes and Domino
    "------- failure reasons",
    // DragonFly's dma
    "there was an error delivering your mail to",
    // KDDI, Verizon's MMS gateway, and other hosted services
    "could not be delivered to:",
    "message could not be delivered to",
    "we had trouble delivering your message",
];

/// Subjects bounces are sent with.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliverable",
    "undelivered mail",
    "delivery status notification",
    "failure notice",
    "mail delivery failed",
    "mail delivery failure",
    "returned mail",
    "delivery failure",
    "delivery failed",
    "message not delivered",
    "delivery has failed",
    "error sending your mail",
    "mail system error",
    "warning: message",
    "delayed mail",
    "delivery delayed",
    "unzustellbar",
    "non remis",
    "no entregado",
];

/// Words that make a bounce one for now, checked before any that would make it final: a full
/// mailbox is still someone's.
const FULL: &[&str] = &[
    "mailbox is full",
    "mailbox full",
    "over quota",
    "quota exceeded",
    "exceeded storage",
    "insufficient storage",
    "out of storage",
    "storage allocation",
    "mailfolder is full",
    "mailbox exceeds",
];
/// Whether a server's words say the mailbox is full.
pub(super) fn says_mailbox_full(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    FULL.iter().any(|w| lower.contains(w))
}

/// Words of a server that gave up after trying for days: the address may work later, however
/// final the rest of its words sound (Exim calls every bounce "a permanent error").
const GAVE_UP: &[&str] = &[
    "retry timeout exceeded",
    "been failing for a long time",
    "cannot send message for",
    "in the queue too long",
    "will be retried",
    "warning message only",
];
const PERMANENT: &[&str] =
    &["permanent error", "permanent failure", "permanently", "permanent fatal", "permanent delivery error"];
const FOR_NOW: &[&str] = &[
    "temporary failure",
    "temporary error",
    "temporarily",
    "try again later",
    "has not yet been delivered",
    "not yet been delivered",
    "delivery delayed",
    "has been delayed",
    "will retry",
    "still trying",
    "will keep trying",
];
const NO_SUCH_ADDRESS: &[&str] = &[
    "user unknown",
    "unknown user",
    "no such user",
    "no such mailbox",
    "no mailbox here",
    "mailbox unavailable",
    "mailbox not found",
    "does not exist",
    "doesn't exist",
    "address not found",
    "couldn't be found",
    "could not be found",
    "recipient not found",
    "recipnotfound",
    "recipientnotfound",
    "invalid recipient",
    "invalid mailbox",
    "unknown recipient",
    "recipient address rejected",
    "account has been disabled",
    "account is disabled",
    "account disabled",
    "doesn't have a",
    "unrouteable address",
    "host or domain name not found",
    "domain not found",
    "not listed in",
    "no valid recipients",
];
/// Words of a refusal that name no reason: final, as a `5xx` reply would be.
const REFUSED: &[&str] = &["was rejected by", "were rejected by", "refused to accept"];
/// Words after which a free-text bounce lists the addresses that failed.
const FAILED_ADDRESSES_FOLLOW: &[&str] = &[
    "address(es) failed",
    "following addresses had",
    "following recipient",
    "following address",
    "could not be delivered to",
    "unable to deliver message to",
    "error delivering your mail to",
];

/// Words every failure says, that decide nothing alone.
const FAILED: &[&str] = &[
    "could not be delivered",
    "couldn't be delivered",
    "wasn't delivered",
    "was not delivered",
    "not delivered",
    "delivery failed",
    "failed",
    "unable to deliver",
    "undeliverable",
];

/// A bounce in a server's own words rather than a DSN: hard or soft from its status code, its
/// reply code or its words. False when the message is no bounce.
pub(super) fn free_text_bounce(report: &mut Report, message: &Message<'_>) -> bool {
    let from =
        message.from().and_then(|a| a.first()).and_then(|a| a.address()).unwrap_or_default().to_ascii_lowercase();
    // `MAILER-DAEMON@host`, or a bare `mailer-daemon` without a domain.
    let local = from.split('@').next().unwrap_or_default();
    let daemon = ["mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon"].contains(&local);
    let subject = message.subject().unwrap_or_default().to_ascii_lowercase();
    let bounce_subject = BOUNCE_SUBJECTS.iter().any(|s| subject.contains(s));
    let text = body_text(message);
    let lower = text.to_ascii_lowercase();
    let said = QUOTE_MARKERS.iter().filter_map(|m| lower.find(m)).min().unwrap_or(lower.len());
    let (said_lower, quoted) = lower.split_at(said);
    let said_text = &text[..said];
    let phrase = BOUNCE_PHRASES.iter().any(|p| said_lower.contains(p));
    if !(daemon || bounce_subject || phrase) {
        return false;
    }
    let has = |words: &[&str]| words.iter().find_map(|w| said_lower.find(w).map(|at| (at, w.len())));
    let line_at = |at: usize| one_line(line_around(said_text, at));
    // A full mailbox and a server that gave up say more than the status they quote: "552 mailbox
    // is over quota (#5.1.1)" is a full mailbox whatever its status says.
    let found = if let Some((at, _)) = has(FULL).or_else(|| has(GAVE_UP)) {
        Some((ReportKind::Soft, first_status(said_text).map(|(s, _)| s), line_at(at)))
    } else if let Some((status, at)) = first_status(said_text) {
        Some((kind_of_status(&status), Some(status), line_at(at)))
    } else if let Some((code, at)) = first_code(said_text) {
        Some((kind_of_code(code), None, line_at(at)))
    } else if let Some((at, _)) = has(PERMANENT) {
        Some((ReportKind::Hard, None, line_at(at)))
    } else if let Some((at, _)) = has(FOR_NOW) {
        Some((ReportKind::Soft, None, line_at(at)))
    } else if let Some((at, _)) = has(NO_SUCH_ADDRESS).or_else(|| has(REFUSED)) {
        Some((ReportKind::Hard, None, line_at(at)))
    } else {
        // It failed, and says no more: counted as for now, so that a reader is let go only
        // after several such reports, never on the strength of one that says nothing.
        has(FAILED).map(|(at, _)| (ReportKind::Soft, None, line_at(at)))
    };
    let Some((kind, status, diagnostic)) = found else { return false };
    report.kind = kind;
    report.status = status;
    report.diagnostic = Some(diagnostic).filter(|d| !d.is_empty());
    // The address it names: the first in its own words that is not one of the report's own.
    let own: Vec<String> =
        header_values(message, &["From", "To", "Delivered-To", "X-Original-To", "Envelope-To", "Sender"])
            .iter()
            .flat_map(|v| addresses_in(v))
            .map(|a| a.key())
            .chain(report.returned_to.iter().map(|a| a.to_ascii_lowercase()))
            .collect();
    let foreign = |a: &EmailAddress| {
        let key = a.key();
        !own.contains(&key) && !["mailer-daemon@", "postmaster@", "mail-daemon@"].iter().any(|p| key.starts_with(p))
    };
    // Exim and Gmail list the failed addresses in a header of their own; else the first address
    // after the words that introduce the failed ones ("A message sent by <sender> could not be
    // delivered… The following address(es) failed: <recipient>"), else the first at all.
    let failed_header: Vec<EmailAddress> =
        header_values(message, &["X-Failed-Recipients"]).iter().flat_map(|v| addresses_in(v)).collect();
    let after_anchor = || {
        let at = FAILED_ADDRESSES_FOLLOW.iter().filter_map(|w| said_lower.find(w)).min()?;
        addresses_in(&said_text[at..]).into_iter().find(|a| foreign(a))
    };
    let named = failed_header
        .into_iter()
        .next()
        .or_else(after_anchor)
        .or_else(|| addresses_in(said_text).into_iter().find(|a| foreign(a)))
        // Sendmail's transcript may name only a host: the copy it returns says whom it was for.
        .or_else(|| {
            let copy = &text[said..];
            quoted_header(copy, "to").and_then(|v| addresses_in(&v).into_iter().find(|a| foreign(a)))
        });
    report.recipients.extend(named);
    // What follows the marker is the original message, its headers first.
    if !quoted.is_empty() {
        let copy = &text[said..];
        if report.original_message_id.is_none() {
            report.original_message_id = quoted_header(copy, "message-id").and_then(|v| v.parse().ok());
        }
        if report.original_subject.is_none() {
            report.original_subject = quoted_header(copy, "subject").map(|s| one_line(&s));
        }
        report
            .returned_to
            .extend(quoted_header(copy, "return-path").iter().flat_map(|v| addresses_in(v)).map(|a| a.to_string()));
    }
    true
}

/// An autoresponder's answer (RFC 3834's `Auto-Submitted`, the headers vacation programs add,
/// the subjects they write).
pub(super) fn auto_reply(message: &Message<'_>) -> bool {
    let values = |name: &str| header_values(message, &[name]);
    let auto_submitted = values("Auto-Submitted").iter().any(|v| !bare(v).eq_ignore_ascii_case("no"));
    let flagged = ["X-Autoreply", "X-Autorespond", "X-Autoresponder"].iter().any(|h| !values(h).is_empty());
    let precedence = values("Precedence").iter().any(|v| bare(v).eq_ignore_ascii_case("auto_reply"));
    let subject = message.subject().unwrap_or_default().to_lowercase();
    let vacation = [
        "auto:",
        "automatic reply",
        "auto-reply",
        "autoreply",
        "auto reply",
        "out of office",
        "out of the office",
        "vacation",
        "on holiday",
        "abwesenheitsnotiz",
        "réponse automatique",
        "respuesta automática",
        "risposta automatica",
        "automatisch antwoord",
    ]
    .iter()
    .any(|s| subject.starts_with(s) || subject.contains(&format!(": {s}")) || (s.len() > 6 && subject.contains(s)));
    auto_submitted || flagged || precedence || vacation
}

/// The text of the message's own body (not of a message it attaches), HTML as text.
fn body_text(message: &Message<'_>) -> String {
    let mut out = String::new();
    for i in 0..message.text_body_count() {
        if let Some(text) = message.body_text(i) {
            out.push_str(&text);
            out.push('\n');
        }
    }
    if out.trim().is_empty()
        && let PartType::Text(text) = &message.root_part().body
    {
        out.push_str(text);
    }
    out
}

/// A header's value in a quoted copy of a message's headers inside a text (`Message-ID: <…>`).
fn quoted_header(text: &str, name: &str) -> Option<String> {
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some((n, v)) = t.split_once(':') else { continue };
        if !n.trim().eq_ignore_ascii_case(name) {
            continue;
        }
        let mut value = v.trim().to_owned();
        while let Some(next) = lines.peek().filter(|l| l.starts_with([' ', '\t'])) {
            value.push(' ');
            value.push_str(next.trim());
            lines.next();
        }
        return Some(value);
    }
    None
}
