//! What a message that came back says, read from its bytes alone (no I/O, no store): a delivery
//! status notification (RFC 3464), a complaint (ARF, RFC 5965), the free-text bounce of a server
//! that writes no DSN (qmail, Exim, Exchange, Gmail, Yahoo…), an autoresponder's answer, or
//! nothing gazette can act on. Beside the kind, everything the message offers for finding what it
//! is about: the addresses it came back to (where a VERP token sits), the Message-ID of the
//! message it quotes, and the recipient it names.

use mail_parser::{Message, MessageParser, MimeHeaders};
use sha2::{Digest, Sha256};

use crate::domain::{EmailAddress, MessageId, ReportKind};

mod heuristics;
use heuristics::{auto_reply, free_text_bounce};

/// A report, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub kind: ReportKind,
    /// What makes this message the same message when it is read again: its own Message-ID, or
    /// where it has none, a digest of its bytes.
    pub key: String,
    /// The addresses it was delivered to, the most telling first (`Delivered-To`,
    /// `X-Original-To`, `Envelope-To`, `To`), then the envelope sender of the original message as
    /// the report quotes it (ARF's `Original-Mail-From`, a quoted `Return-Path`): where a VERP
    /// token is found.
    pub returned_to: Vec<String>,
    /// The Message-ID of the original message, as the report quotes it.
    pub original_message_id: Option<MessageId>,
    /// The subject of the original message, as the report quotes it.
    pub original_subject: Option<String>,
    /// The recipients it names, the most telling first (`Original-Recipient`, `Final-Recipient`,
    /// ARF's `Original-Rcpt-To`, an address in a free-text bounce).
    pub recipients: Vec<EmailAddress>,
    /// The enhanced status code (`5.1.1`), when the report gives one.
    pub status: Option<String>,
    /// The server's words (`Diagnostic-Code`, the line of a free-text bounce that says why), on
    /// one line.
    pub diagnostic: Option<String>,
}

/// Reads a message. Never fails: what cannot be read as mail is `Unknown`, keyed by its bytes.
pub fn read(raw: &[u8]) -> Report {
    let digest = || format!("sha256:{}", hex(&Sha256::digest(raw)));
    let Some(message) = MessageParser::default().parse(raw) else {
        return Report::unknown(digest());
    };
    let key = message
        .message_id()
        .filter(|id| !id.is_empty() && id.len() <= MAX_KEY && !id.chars().any(|c| c.is_whitespace() || c.is_control()))
        .map_or_else(digest, |id| format!("<{id}>"));
    let mut report = Report::unknown(key);
    report.returned_to = delivered_to(&message);
    let parts = Parts::of(&message);
    if let Some(original) = &parts.original {
        report.original_message_id = original.message_id.clone();
        report.original_subject = original.subject.clone();
        report.returned_to.extend(original.return_path.iter().cloned());
    }
    if report.original_message_id.is_none() {
        report.original_message_id = replied_to(&message);
    }
    if let Some(feedback) = &parts.feedback {
        complaint(&mut report, feedback, parts.original.as_ref());
    } else if let Some(status) = &parts.delivery_status {
        delivery_status(&mut report, status);
    } else if let Some(original) = parts.original.as_ref().filter(|_| microsoft_complaint(&message)) {
        // Microsoft's feedback loop (JMRP) sends the complained-of message alone, with no ARF part.
        report.kind = ReportKind::Complaint;
        report.recipients.extend(original.hotmail_recipient.iter().chain(&original.to).cloned());
        report.diagnostic = Some("abuse report (Microsoft JMRP)".to_owned());
    } else if !free_text_bounce(&mut report, &message) && auto_reply(&message) {
        report.kind = ReportKind::AutoReply;
        // The reader who is away answers for themselves.
        report
            .recipients
            .extend(message.from().and_then(|a| a.first()).and_then(|a| a.address()).and_then(|a| a.parse().ok()));
    }
    report.returned_to.dedup();
    report.recipients.dedup();
    report
}

/// A Message-ID longer than this is no key: a digest of the message is.
const MAX_KEY: usize = 250;

impl Report {
    fn unknown(key: String) -> Self {
        Self {
            kind: ReportKind::Unknown,
            key,
            returned_to: Vec::new(),
            original_message_id: None,
            original_subject: None,
            recipients: Vec::new(),
            status: None,
            diagnostic: None,
        }
    }
}

/// The parts of a report that carry its meaning.
#[derive(Default)]
struct Parts {
    /// `message/delivery-status` (or its global form): the DSN's fields.
    delivery_status: Option<String>,
    /// `message/feedback-report`: the ARF's fields.
    feedback: Option<String>,
    /// The original message or its headers, as quoted.
    original: Option<Original>,
}

/// What a report quotes of the original message.
#[derive(Debug, Default)]
struct Original {
    message_id: Option<MessageId>,
    subject: Option<String>,
    to: Vec<EmailAddress>,
    /// Where Microsoft's feedback loop names the reader who complained.
    hotmail_recipient: Option<EmailAddress>,
    return_path: Vec<String>,
}

impl Parts {
    fn of(message: &Message<'_>) -> Self {
        let mut parts = Self::default();
        for part in &message.parts {
            let Some(ct) = part.content_type() else { continue };
            let (ctype, subtype) = (ct.ctype().to_ascii_lowercase(), ct.subtype().unwrap_or("").to_ascii_lowercase());
            match (ctype.as_str(), subtype.as_str()) {
                ("message", "delivery-status" | "global-delivery-status") if parts.delivery_status.is_none() => {
                    parts.delivery_status = Some(String::from_utf8_lossy(part.contents()).into_owned());
                }
                ("message", "feedback-report") if parts.feedback.is_none() => {
                    parts.feedback = Some(String::from_utf8_lossy(part.contents()).into_owned());
                }
                ("message", "rfc822" | "global") if parts.original.is_none() => {
                    parts.original = part.message().map(Original::of).or_else(|| Original::parse(part.contents()));
                }
                ("text", "rfc822-headers") | ("message", "global-headers") if parts.original.is_none() => {
                    parts.original = Original::parse(part.contents());
                }
                _ => {}
            }
        }
        // A report forwarded whole, as a mail filter does: its own parts are the ones that speak.
        if parts.delivery_status.is_none() && parts.feedback.is_none() {
            let nested = message.parts.iter().filter_map(|p| p.message()).map(Self::of);
            if let Some(inner) = nested.into_iter().find(|p| p.delivery_status.is_some() || p.feedback.is_some()) {
                return inner;
            }
        }
        parts
    }
}

impl Original {
    fn parse(bytes: &[u8]) -> Option<Self> {
        MessageParser::default().parse(bytes).as_ref().map(Self::of)
    }

    fn of(message: &Message<'_>) -> Self {
        Self {
            message_id: message.message_id().and_then(|id| id.parse().ok()),
            subject: message.subject().map(one_line),
            to: header_values(message, &["To"]).iter().flat_map(|v| addresses_in(v)).collect(),
            hotmail_recipient: header_values(message, &["X-HmXmrOriginalRecipient"])
                .iter()
                .flat_map(|v| addresses_in(v))
                .next(),
            return_path: header_values(message, &["Return-Path"])
                .iter()
                .flat_map(|v| addresses_in(v))
                .map(|a| a.to_string())
                .collect(),
        }
    }
}

/// The values of the headers named, in the order they come, unfolded.
fn header_values(message: &Message<'_>, names: &[&str]) -> Vec<String> {
    message
        .headers_raw()
        .filter(|(name, _)| names.iter().any(|n| n.eq_ignore_ascii_case(name)))
        .map(|(_, value)| unfold(value))
        .collect()
}

/// The addresses the report was delivered to, as the mail system that delivered it wrote them
/// down, the envelope's first.
fn delivered_to(message: &Message<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for name in ["Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To"] {
        for value in header_values(message, &[name]) {
            out.extend(addresses_in(&value).into_iter().map(|a| a.to_string()));
        }
    }
    out
}

/// The Message-ID a report answers (`In-Reply-To`, else the last of `References`): where
/// autoresponders and some servers name the original message.
fn replied_to(message: &Message<'_>) -> Option<MessageId> {
    let ids = |name: &str| -> Vec<MessageId> {
        header_values(message, &[name])
            .iter()
            .flat_map(|v| v.split(|c: char| c.is_whitespace() || c == ','))
            .filter(|w| w.starts_with('<') && w.ends_with('>'))
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    ids("In-Reply-To").into_iter().next().or_else(|| ids("References").pop())
}

/// Microsoft's feedback loop (JMRP): the complained-of message attached, sent from Hotmail's
/// staff with a subject of its own.
fn microsoft_complaint(message: &Message<'_>) -> bool {
    let subject = message.subject().unwrap_or_default().trim().to_ascii_lowercase();
    subject.starts_with("complaint about message from")
}

/// An ARF report: `Feedback-Type: abuse` (or `fraud`, someone reporting the message as a
/// phishing attempt) is a complaint; another type (`not-spam`, `virus`, `other`) asks nothing of
/// gazette.
fn complaint(report: &mut Report, fields: &str, original: Option<&Original>) {
    let groups = field_groups(fields);
    let all: Vec<&(String, String)> = groups.iter().flatten().collect();
    let field = |name: &str| all.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    let kind = field("Feedback-Type").map(|t| bare(t).to_ascii_lowercase()).unwrap_or_default();
    report.kind = if matches!(kind.as_str(), "abuse" | "fraud") { ReportKind::Complaint } else { ReportKind::Unknown };
    for (name, value) in &all {
        if name.eq_ignore_ascii_case("Original-Mail-From") {
            report.returned_to.extend(addresses_in(value).into_iter().map(|a| a.to_string()));
        }
        if name.eq_ignore_ascii_case("Original-Rcpt-To") {
            report.recipients.extend(addresses_in(value));
        }
    }
    if let Some(original) = original {
        report.recipients.extend(original.to.iter().cloned());
    }
    let from = field("User-Agent").or(field("Reporting-MTA")).map(one_line);
    report.diagnostic = Some(match from {
        Some(agent) if !kind.is_empty() => format!("{kind} report ({agent})"),
        _ if !kind.is_empty() => format!("{kind} report"),
        _ => "feedback report".to_owned(),
    });
}

/// A DSN: the recipient it reports a failure or delay for (a report of a delivery that worked
/// is `Unknown`: there is nothing to do), with its status and the server's words.
fn delivery_status(report: &mut Report, fields: &str) {
    let groups = field_groups(fields);
    // The first group is about the message; each of the others about one recipient. A report
    // without the first group's blank line still names its recipient somewhere.
    let recipients: Vec<&Vec<(String, String)>> =
        if groups.len() > 1 { groups[1..].iter().collect() } else { groups.iter().collect() };
    let action_of = |g: &Vec<(String, String)>| -> String {
        g.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Action"))
            .map(|(_, v)| bare(v).to_ascii_lowercase())
            .unwrap_or_default()
    };
    let chosen = recipients
        .iter()
        .find(|g| action_of(g) == "failed")
        .or_else(|| recipients.iter().find(|g| action_of(g) == "delayed"));
    let Some(group) = chosen else {
        report.kind = ReportKind::Unknown;
        return;
    };
    let field = |name: &str| group.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
    for name in ["Original-Recipient", "Final-Recipient", "X-Actual-Recipient"] {
        if let Some(v) = field(name) {
            // `rfc822; ann@example.org`: the type, then the address.
            let address = v.split_once(';').map_or(v, |(_, a)| a);
            report.recipients.extend(addresses_in(address));
        }
    }
    let diagnostic = field("Diagnostic-Code").map(|d| one_line(d.split_once(';').map_or(d, |(_, text)| text)));
    let mut status = field("Status").and_then(enhanced_status);
    // A generic status (`5.0.0`) says less than the server's own words may.
    if let (Some(s), Some(d)) = (&status, &diagnostic)
        && s.ends_with(".0.0")
        && let Some(specific) = enhanced_status(d).filter(|x| x.starts_with(&s[..1]))
    {
        status = Some(specific);
    }
    let status = status.or_else(|| diagnostic.as_deref().and_then(enhanced_status));
    report.kind = match (action_of(group).as_str(), status.as_deref()) {
        ("delayed", _) => ReportKind::Soft,
        // A full mailbox in the server's words, whatever status the reporting server chose
        // ("5.1.0 Unknown address error 550 5.2.2 Mailbox Full").
        _ if diagnostic.as_deref().is_some_and(heuristics::says_mailbox_full) => ReportKind::Soft,
        (_, Some(s)) => kind_of_status(s),
        // Failed, and no status to say how: the server's reply code, else for good, as failed says.
        (_, None) => match diagnostic.as_deref().and_then(smtp_code) {
            Some(code) => kind_of_code(code),
            None => ReportKind::Hard,
        },
    };
    report.status = status;
    report.diagnostic = diagnostic.filter(|d| !d.is_empty());
}

/// `5.2.2` (mailbox full) and every `4.x.x` are for now; every other `5.x.x` is for good.
fn kind_of_status(status: &str) -> ReportKind {
    if status == "5.2.2" || status.starts_with('4') { ReportKind::Soft } else { ReportKind::Hard }
}

/// 552 (storage exceeded) and 4xx are for now; other 5xx replies are for good.
fn kind_of_code(code: u16) -> ReportKind {
    if code == 552 || (400..500).contains(&code) { ReportKind::Soft } else { ReportKind::Hard }
}

/// A DSN's or an ARF's fields in their groups (separated by blank lines), each field unfolded.
fn field_groups(text: &str) -> Vec<Vec<(String, String)>> {
    let mut groups = Vec::new();
    let mut group: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() {
            if !group.is_empty() {
                groups.push(std::mem::take(&mut group));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = group.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            group.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

/// The first enhanced status code of class 4 or 5 in a text (`5.1.1`, `4.2.2`), and where.
/// Version numbers (`4.94.2`) and addresses (`5.9.12.4`) are not status codes.
fn first_status(text: &str) -> Option<(String, usize)> {
    let b = text.as_bytes();
    let digits = |from: usize, max: usize| -> usize {
        b[from..].iter().take(max + 1).take_while(|c| c.is_ascii_digit()).count()
    };
    for at in 0..b.len() {
        if !matches!(b[at], b'4' | b'5') {
            continue;
        }
        if at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'.') {
            continue;
        }
        let mut i = at + 1;
        if b.get(i) != Some(&b'.') {
            continue;
        }
        i += 1;
        let subject = digits(i, 3);
        if subject == 0 || subject > 3 {
            continue;
        }
        let subject_value: u32 = text[i..i + subject].parse().unwrap_or(99);
        i += subject;
        if subject_value > 7 || b.get(i) != Some(&b'.') {
            continue;
        }
        i += 1;
        let detail = digits(i, 3);
        if detail == 0 || detail > 3 {
            continue;
        }
        i += detail;
        let next_is_number = b.get(i).is_some_and(|c| c.is_ascii_alphanumeric())
            || (b.get(i) == Some(&b'.') && b.get(i + 1).is_some_and(u8::is_ascii_digit));
        if next_is_number {
            continue;
        }
        return Some((text[at..i].to_owned(), at));
    }
    None
}

/// The first enhanced status code in a text, as [`first_status`] finds it.
fn enhanced_status(text: &str) -> Option<String> {
    first_status(text).map(|(s, _)| s)
}

/// The first SMTP reply code of a failure in a text (`550 `, `550-`, `554:`), and where: three
/// digits standing alone, 421–459 or 500–559.
fn first_code(text: &str) -> Option<(u16, usize)> {
    let b = text.as_bytes();
    for at in 0..b.len().saturating_sub(2) {
        if !matches!(b[at], b'4' | b'5') || !b[at + 1].is_ascii_digit() || !b[at + 2].is_ascii_digit() {
            continue;
        }
        let before_ok =
            at == 0 || matches!(b[at - 1], b' ' | b'\t' | b'\n' | b'\r' | b'(' | b':' | b'"' | b'\'' | b'#');
        let after_ok = b.get(at + 3).is_none_or(|c| matches!(c, b' ' | b'-' | b':' | b')' | b',' | b'\r' | b'\n'));
        if !before_ok || !after_ok {
            continue;
        }
        let code: u16 = text[at..at + 3].parse().unwrap_or(0);
        if (421..=459).contains(&code) || (500..=559).contains(&code) {
            return Some((code, at));
        }
    }
    None
}

/// The same SMTP reply code, alone.
fn smtp_code(text: &str) -> Option<u16> {
    first_code(text).map(|(c, _)| c)
}

/// The line of `text` that holds the byte at `at`.
fn line_around(text: &str, at: usize) -> &str {
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
    &text[start..end]
}

/// Every address in a text, in order: what `local@domain.tld` parses as one, from inside angle
/// brackets, quotes or prose.
pub(super) fn addresses_in(text: &str) -> Vec<EmailAddress> {
    let is_local = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c);
    let is_domain = |c: char| c.is_alphanumeric() || c == '.' || c == '-';
    let mut out: Vec<EmailAddress> = Vec::new();
    for (at, _) in text.match_indices('@') {
        let start = text[..at].char_indices().rev().take_while(|(_, c)| is_local(*c)).last().map_or(at, |(i, _)| i);
        let end = text[at + 1..]
            .char_indices()
            .take_while(|(_, c)| is_domain(*c))
            .last()
            .map_or(at + 1, |(i, c)| at + 1 + i + c.len_utf8());
        let local = text[start..at].trim_start_matches(['.', '\'']);
        let domain = text[at + 1..end].trim_end_matches(['.', '-']);
        if local.is_empty() || domain.is_empty() {
            continue;
        }
        if let Ok(a) = format!("{local}@{domain}").parse::<EmailAddress>()
            && !out.contains(&a)
        {
            out.push(a);
        }
    }
    out
}

/// A field's value without its comment or parameters (`failed (permanent)`, `auto-replied; x`).
fn bare(value: &str) -> &str {
    value.split(['(', ';']).next().unwrap_or_default().trim()
}

/// A header's raw value unfolded onto one line.
fn unfold(value: &str) -> String {
    value.split(['\r', '\n']).map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// What a server wrote, on one line of printable text, not too long to show.
fn one_line(text: &str) -> String {
    const MAX: usize = 500;
    let words: Vec<&str> = text.split_whitespace().collect();
    let line: String = words.join(" ").chars().filter(|c| !c.is_control()).collect();
    match line.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", &line[..cut]),
        None => line,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod corpus;
