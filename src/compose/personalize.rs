//! One issue, many readers. The templates are rendered once per issue with a placeholder for each
//! subscriber value (address, name, attributes, unsubscribe link); each reader's copy is then the
//! shared text with their values put in, which costs a string copy, not a template render. This
//! holds only when the templates print those values plainly (`{{ subscriber.name }}`); a template
//! that tests or filters them (`{% if subscriber.name %}`) is rendered in full for every reader,
//! which is slower and equally correct.

use std::collections::BTreeMap;

use tera::ast::{ExprVal, Node};

use super::{
    context::{DigestContext, SubscriberContext},
    render::{self, RenderError, RenderedIssue},
    templates::{DIGEST_HTML, DIGEST_TEXT, SUBJECT, TemplateSet},
    text,
};
use crate::domain::{EmailAddress, SafeHtml};

/// One reader's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub email: EmailAddress,
    /// On one line: line breaks are folded to spaces before a name gets here.
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    pub unsubscribe_url: String,
    /// Their preferences page; empty where there is none (a test copy).
    pub preferences_url: String,
    /// The name of their edition; empty without editions.
    pub edition: String,
    /// The names of the topics they chose; empty for every topic.
    pub topics: Vec<String>,
}

/// An issue rendered as far as it can be without knowing the reader.
#[derive(Debug, Clone)]
pub struct PreparedIssue {
    mode: Mode,
}

/// Where a reader's value goes in a shared render. Its text begins with a random nonce drawn for
/// each render, so no source can hold a placeholder: a feed that could would have every reader's
/// address or unsubscribe link filled into its title, or into a link to its own server.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Marker {
    /// `OPEN` and the nonce; an index and `CLOSE` follow.
    prefix: String,
}

impl Marker {
    fn new() -> Self {
        Self { prefix: format!("{OPEN}{:016x}", rand::random::<u64>()) }
    }

    fn placeholder(&self, i: usize) -> String {
        format!("{}{i}{CLOSE}", self.prefix)
    }

    /// The first placeholder in `s`: where it starts, where it ends, its index.
    fn find(&self, s: &str) -> Option<(usize, usize, usize)> {
        let mut from = 0;
        while let Some(at) = s[from..].find(&self.prefix) {
            let start = from + at;
            let after = &s[start + self.prefix.len()..];
            let digits = after.bytes().take_while(u8::is_ascii_digit).count();
            if digits > 0
                && after[digits..].starts_with(CLOSE)
                && let Ok(index) = after[..digits].parse::<usize>()
            {
                return Some((start, start + self.prefix.len() + digits + CLOSE.len_utf8(), index));
            }
            from = start + self.prefix.len();
        }
        None
    }
}

/// One reader's copy, ready for the MIME message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub text: HtmlPart,
    pub html: HtmlPart,
}

/// A body part: as text, or already quoted-printable encoded from shared pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HtmlPart {
    Text(String),
    QuotedPrintable(Vec<u8>),
}

/// The HTML of a shared render, quoted-printable encoded once, with gaps for reader values.
#[derive(Debug, Clone, Default)]
struct EncodedHtml {
    parts: Vec<EncodedPart>,
    encoded_len: usize,
}

#[derive(Debug, Clone)]
enum EncodedPart {
    Encoded(Vec<u8>),
    Slot(usize),
}

impl EncodedHtml {
    fn new(html: &Slotted) -> Self {
        let mut parts = Vec::with_capacity(html.parts.len());
        let mut encoded_len = 0;
        for p in &html.parts {
            match p {
                Part::Literal(s) => {
                    let mut bytes = Vec::new();
                    super::qp::encode_piece(s, &mut bytes);
                    encoded_len += bytes.len();
                    parts.push(EncodedPart::Encoded(bytes));
                }
                Part::Slot(i) => parts.push(EncodedPart::Slot(*i)),
            }
        }
        Self { parts, encoded_len }
    }

    fn fill<S: AsRef<str>>(&self, escaped: &[S]) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len + 256);
        for p in &self.parts {
            match p {
                EncodedPart::Encoded(b) => out.extend_from_slice(b),
                EncodedPart::Slot(i) => {
                    super::qp::encode_piece(escaped.get(*i).map(AsRef::as_ref).unwrap_or_default(), &mut out)
                }
            }
        }
        out
    }
}

#[derive(Debug, Clone)]
enum Mode {
    Shared {
        slots: Vec<Slot>,
        subject: Slotted,
        html: Slotted,
        text: SlottedText,
        encoded_html: EncodedHtml,
        encoded_text: Vec<EncodedText>,
    },
    PerReader {
        templates: Box<TemplateSet>,
        context: Box<DigestContext>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Email,
    Name,
    UnsubscribeUrl,
    PreferencesUrl,
    Edition,
    Attribute(String),
}

/// The text part, whose lines that hold a placeholder are wrapped again once filled in, so a
/// long name or address never pushes a line past 72 columns.
#[derive(Debug, Clone, Default)]
struct SlottedText {
    parts: Vec<TextPart>,
}

#[derive(Debug, Clone)]
enum TextPart {
    Literal(String),
    Line(Slotted),
}

impl SlottedText {
    fn parse(laid_out: &str, marker: &Marker) -> Self {
        let mut parts = Vec::new();
        let mut literal = String::new();
        for line in laid_out.split_inclusive('\n') {
            if marker.find(line).is_some() {
                if !literal.is_empty() {
                    parts.push(TextPart::Literal(std::mem::take(&mut literal)));
                }
                parts.push(TextPart::Line(Slotted::parse(line.trim_end_matches('\n'), marker)));
            } else {
                literal.push_str(line);
            }
        }
        if !literal.is_empty() {
            parts.push(TextPart::Literal(literal));
        }
        Self { parts }
    }

    fn fill<S: AsRef<str>>(&self, values: &[S]) -> String {
        let mut out = String::new();
        for p in &self.parts {
            match p {
                TextPart::Literal(s) => out.push_str(s),
                TextPart::Line(line) => text::wrap_into(&line.fill(values), &mut out),
            }
        }
        out
    }
}

/// The text part encoded once: whole lines are shared; a line with a reader's value is filled
/// in, wrapped and encoded per reader.
#[derive(Debug, Clone)]
enum EncodedText {
    Encoded(Vec<u8>),
    Line(Slotted),
}

impl EncodedText {
    fn new(text: &SlottedText) -> Vec<Self> {
        text.parts
            .iter()
            .map(|p| match p {
                TextPart::Literal(s) => {
                    let mut bytes = Vec::new();
                    super::qp::encode_piece(s, &mut bytes);
                    Self::Encoded(bytes)
                }
                TextPart::Line(l) => Self::Line(l.clone()),
            })
            .collect()
    }

    fn len(&self) -> usize {
        match self {
            Self::Encoded(b) => b.len(),
            Self::Line(l) => l.literal_len,
        }
    }

    fn fill_into<S: AsRef<str>>(&self, values: &[S], out: &mut Vec<u8>) {
        match self {
            Self::Encoded(b) => out.extend_from_slice(b),
            Self::Line(line) => {
                let mut wrapped = String::new();
                text::wrap_into(&line.fill(values), &mut wrapped);
                super::qp::encode_piece(&wrapped, out);
            }
        }
    }
}

/// Rendered text cut at the placeholders.
#[derive(Debug, Clone, Default)]
struct Slotted {
    parts: Vec<Part>,
    literal_len: usize,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Slot(usize),
}

const OPEN: char = '\u{F8F0}';
const CLOSE: char = '\u{F8F1}';

impl PreparedIssue {
    /// Renders what can be shared. `context.subscriber` and `context.unsubscribe_url` are
    /// ignored: each reader's come from `personalize`.
    pub fn prepare(templates: &TemplateSet, context: DigestContext) -> Result<Self, RenderError> {
        let Some(slots) = plain_slots(templates) else {
            return Ok(Self {
                mode: Mode::PerReader { templates: Box::new(templates.clone()), context: Box::new(context) },
            });
        };
        let marker = Marker::new();
        let placeholder = |i: usize| marker.placeholder(i);
        let mut ctx = context;
        let mut attributes = BTreeMap::new();
        for (i, s) in slots.iter().enumerate() {
            match s {
                Slot::Email => ctx.subscriber.email = placeholder(i),
                Slot::Name => ctx.subscriber.name = placeholder(i),
                Slot::UnsubscribeUrl => ctx.unsubscribe_url = placeholder(i),
                Slot::PreferencesUrl => ctx.preferences_url = placeholder(i),
                Slot::Edition => ctx.subscriber.edition = placeholder(i),
                Slot::Attribute(k) => {
                    attributes.insert(k.clone(), placeholder(i));
                }
            }
        }
        ctx.subscriber.attributes = attributes;
        let whole = render::render_all(templates, ctx)?;
        let html = Slotted::parse(&whole.html, &marker);
        let text = SlottedText::parse(&whole.text, &marker);
        Ok(Self {
            mode: Mode::Shared {
                subject: Slotted::parse(&whole.subject, &marker),
                encoded_html: EncodedHtml::new(&html),
                encoded_text: EncodedText::new(&text),
                html,
                text,
                slots,
            },
        })
    }

    /// True when readers' copies are filled in rather than rendered one by one.
    pub fn is_shared(&self) -> bool {
        matches!(self.mode, Mode::Shared { .. })
    }

    /// This reader's copy.
    pub fn personalize(&self, r: &Recipient) -> Result<RenderedIssue, RenderError> {
        match &self.mode {
            Mode::Shared { slots, subject, html, text, .. } => {
                let v = Values::new(slots, r);
                Ok(RenderedIssue {
                    subject: subject.fill(&v.one_line()),
                    html: html.fill(&v.escaped()),
                    text: text.fill(&v.raw),
                })
            }
            Mode::PerReader { templates, context } => {
                let mut ctx = (**context).clone();
                ctx.subscriber = SubscriberContext {
                    email: r.email.to_string(),
                    name: r.name.clone(),
                    attributes: r.attributes.clone(),
                    edition: r.edition.clone(),
                    topics: r.topics.clone(),
                };
                ctx.unsubscribe_url = r.unsubscribe_url.clone();
                ctx.preferences_url = r.preferences_url.clone();
                render::render_all(templates, ctx)
            }
        }
    }
}

impl PreparedIssue {
    /// This reader's copy for mailing: with a shared render the HTML comes already encoded,
    /// which spares encoding tens of kilobytes per reader.
    pub fn letter(&self, r: &Recipient) -> Result<Letter, RenderError> {
        match &self.mode {
            Mode::Shared { slots, subject, encoded_text, encoded_html, .. } => {
                let v = Values::new(slots, r);
                let mut text = Vec::with_capacity(encoded_text.iter().map(EncodedText::len).sum::<usize>() + 256);
                for part in encoded_text {
                    part.fill_into(&v.raw, &mut text);
                }
                Ok(Letter {
                    subject: subject.fill(&v.one_line()),
                    text: HtmlPart::QuotedPrintable(text),
                    html: HtmlPart::QuotedPrintable(encoded_html.fill(&v.escaped())),
                })
            }
            Mode::PerReader { .. } => {
                let r = self.personalize(r)?;
                Ok(Letter { subject: r.subject, text: HtmlPart::Text(r.text), html: HtmlPart::Text(r.html) })
            }
        }
    }
}

/// One reader's values in slot order, and the forms each part wants them in.
struct Values<'a> {
    raw: Vec<&'a str>,
}

impl<'a> Values<'a> {
    fn new(slots: &[Slot], r: &'a Recipient) -> Self {
        let raw = slots
            .iter()
            .map(|s| match s {
                Slot::Email => r.email.as_str(),
                Slot::Name => r.name.as_str(),
                Slot::UnsubscribeUrl => r.unsubscribe_url.as_str(),
                Slot::PreferencesUrl => r.preferences_url.as_str(),
                Slot::Edition => r.edition.as_str(),
                Slot::Attribute(k) => r.attributes.get(k).map(String::as_str).unwrap_or_default(),
            })
            .collect();
        Self { raw }
    }

    /// For HTML text and quoted attributes.
    fn escaped(&self) -> Vec<String> {
        self.raw.iter().map(|v| SafeHtml::escape(v)).collect()
    }

    /// For a header: on one line.
    fn one_line(&self) -> Vec<String> {
        self.raw.iter().map(|v| render::one_line(v)).collect()
    }
}

impl Slotted {
    fn parse(rendered: &str, marker: &Marker) -> Self {
        let mut parts = Vec::new();
        let mut literal_len = 0;
        let mut rest = rendered;
        while let Some((start, end, index)) = marker.find(rest) {
            literal_len += start;
            parts.push(Part::Literal(rest[..start].to_owned()));
            parts.push(Part::Slot(index));
            rest = &rest[end..];
        }
        literal_len += rest.len();
        parts.push(Part::Literal(rest.to_owned()));
        Self { parts, literal_len }
    }

    fn fill<S: AsRef<str>>(&self, values: &[S]) -> String {
        let extra: usize = self
            .parts
            .iter()
            .map(|p| match p {
                Part::Slot(i) => values.get(*i).map_or(0, |v| v.as_ref().len()),
                Part::Literal(_) => 0,
            })
            .sum();
        let mut out = String::with_capacity(self.literal_len + extra);
        for p in &self.parts {
            match p {
                Part::Literal(s) => out.push_str(s),
                Part::Slot(i) => out.push_str(values.get(*i).map(AsRef::as_ref).unwrap_or_default()),
            }
        }
        out
    }
}

/// The reader values the templates use, if every use is a plain print; `None` if any template
/// tests, filters, loops over or assigns one of them.
fn plain_slots(templates: &TemplateSet) -> Option<Vec<Slot>> {
    let mut slots = vec![Slot::Email, Slot::Name, Slot::UnsubscribeUrl];
    for name in [SUBJECT, DIGEST_HTML, DIGEST_TEXT] {
        let template = templates.get(name)?;
        if template.parent.is_some() || !walk(&template.ast, &mut slots) {
            return None;
        }
    }
    Some(slots)
}

fn is_personal(ident: &str) -> bool {
    ident == "unsubscribe_url"
        || ident == "preferences_url"
        || ident == "subscriber"
        || ident.starts_with("subscriber.")
        || ident.starts_with("subscriber[")
        || ident == "__tera_context"
}

/// Debug output of an AST piece names every identifier it uses; a cheap, complete way to ask
/// "does this mention a reader value anywhere".
fn mentions_personal(piece: &impl std::fmt::Debug) -> bool {
    let s = format!("{piece:?}");
    s.contains("Ident(\"unsubscribe_url\")")
        || s.contains("Ident(\"preferences_url\")")
        || s.contains("Ident(\"subscriber")
        || s.contains("__tera_context")
}

fn walk(nodes: &[Node], slots: &mut Vec<Slot>) -> bool {
    nodes.iter().all(|node| match node {
        Node::VariableBlock(_, expr) => match &expr.val {
            ExprVal::Ident(id) if is_personal(id) => {
                let plain = expr.filters.iter().all(|f| f.name == "safe" || f.name == "escape") && !expr.negated;
                plain && slot_for(id, slots)
            }
            _ => !mentions_personal(expr),
        },
        Node::Forloop(_, f, _) => {
            !is_personal(&f.value)
                && !f.key.as_deref().is_some_and(is_personal)
                && !mentions_personal(&f.container)
                && walk(&f.body, slots)
                && f.empty_body.as_deref().is_none_or(|b| walk(b, slots))
        }
        Node::If(i, _) => {
            i.conditions.iter().all(|(_, cond, body)| !mentions_personal(cond) && walk(body, slots))
                && i.otherwise.as_ref().is_none_or(|(_, b)| walk(b, slots))
        }
        Node::Block(_, b, _) => walk(&b.body, slots),
        Node::FilterSection(_, f, _) => !mentions_personal(&f.filter) && walk(&f.body, slots),
        Node::Text(_) | Node::Raw(..) | Node::Comment(..) | Node::Break(_) | Node::Continue(_) => true,
        // Includes, imports, macros and `super()` bring in text this walk does not see.
        Node::Include(..) | Node::ImportMacro(..) | Node::MacroDefinition(..) | Node::Super | Node::Extends(..) => {
            false
        }
        Node::Set(_, set) => !is_personal(&set.key) && !mentions_personal(&set.value),
    })
}

fn slot_for(ident: &str, slots: &mut Vec<Slot>) -> bool {
    let slot = match ident {
        "subscriber.email" => Slot::Email,
        "subscriber.name" => Slot::Name,
        "unsubscribe_url" => Slot::UnsubscribeUrl,
        "preferences_url" => Slot::PreferencesUrl,
        "subscriber.edition" => Slot::Edition,
        other => match other.strip_prefix("subscriber.attributes.") {
            Some(key) if !key.is_empty() && !key.contains(['.', '[']) => Slot::Attribute(key.to_owned()),
            _ => return false,
        },
    };
    if !slots.contains(&slot) {
        slots.push(slot);
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compose::context::{IssueContext, PublicationContext};

    fn context() -> DigestContext {
        DigestContext {
            publication: PublicationContext {
                name: "The Weekly Mirror".into(),
                from: "m@example.org".into(),
                base_url: "https://news.example.org".into(),
                timezone: "UTC".into(),
                postal_address: None,
                preferences: false,
            },
            issue: IssueContext {
                number: 3,
                date: "2024-03-16T12:00:00+00:00".into(),
                subject: String::new(),
                web_url: "https://news.example.org/archive/3".into(),
                preheader: "p".into(),
                articles: vec![],
                intro_html: String::new(),
                intro_text: String::new(),
                edition: None,
                fixed_subject: None,
            },
            subscriber: SubscriberContext::default(),
            unsubscribe_url: String::new(),
            preferences_url: String::new(),
            archive_url: "https://news.example.org/archive".into(),
            web_page: false,
        }
    }

    fn reader(name: &str) -> Recipient {
        Recipient {
            email: "ann@example.org".parse().expect("valid"),
            name: name.into(),
            attributes: BTreeMap::from([("city".to_owned(), "Yerevan".to_owned())]),
            unsubscribe_url: "https://news.example.org/unsubscribe/u.abc.0.xyz".into(),
            preferences_url: "https://news.example.org/preferences/p.abc.0.xyz".into(),
            edition: "Weekly".into(),
            topics: vec![],
        }
    }

    async fn templates(html: &str, text: &str, subject: &str) -> TemplateSet {
        let dir = tempfile::tempdir().expect("tmp");
        std::fs::create_dir_all(dir.path().join("email")).expect("mkdir");
        std::fs::write(dir.path().join("email/digest.html"), html).expect("write");
        std::fs::write(dir.path().join("email/digest.txt"), text).expect("write");
        TemplateSet::load(Some(dir.path()), subject).await.expect("templates")
    }

    #[tokio::test]
    async fn plain_prints_share_one_render_and_match_a_full_render() {
        let html = "<html><body><p>Hi {{ subscriber.name }} ({{ subscriber.email }}) of {{ subscriber.attributes.city }}</p><a href=\"{{ unsubscribe_url }}\">x</a></body></html>";
        let text = "Hi {{ subscriber.name }}, {{ subscriber.attributes.city }}\n{{ unsubscribe_url }}\n";
        let subject = "{{ publication.name }} for {{ subscriber.name }}";
        let set = templates(html, text, subject).await;
        let shared = PreparedIssue::prepare(&set, context()).expect("prepare");
        assert!(shared.is_shared());
        let r = reader("Ann Lee");
        let fast = shared.personalize(&r).expect("fast");
        let full = PreparedIssue { mode: Mode::PerReader { templates: Box::new(set), context: Box::new(context()) } }
            .personalize(&r)
            .expect("full");
        assert_eq!(fast, full);
        assert_eq!(fast.subject, "The Weekly Mirror for Ann Lee");
        assert!(fast.text.contains("Hi Ann Lee, Yerevan"));
    }

    #[tokio::test]
    async fn reader_values_are_escaped_in_html_only() {
        let set = templates("<p>{{ subscriber.name }}</p>", "{{ subscriber.name }}", "s").await;
        let prepared = PreparedIssue::prepare(&set, context()).expect("prepare");
        let out = prepared.personalize(&reader("<b>Ann</b> & \"co\"")).expect("render");
        assert!(
            out.html.contains("&lt;b&gt;Ann&lt;&#x2F;b&gt; &amp; &quot;co&quot;")
                || out.html.contains("&lt;b&gt;Ann&lt;/b&gt; &amp; &quot;co&quot;"),
            "{}",
            out.html
        );
        assert!(out.text.contains("<b>Ann</b> & \"co\""));
    }

    #[tokio::test]
    async fn a_template_that_tests_a_reader_value_is_rendered_per_reader() {
        let set =
            templates("<p>{% if subscriber.name %}Hi {{ subscriber.name }}{% else %}Hello{% endif %}</p>", "x", "s")
                .await;
        let prepared = PreparedIssue::prepare(&set, context()).expect("prepare");
        assert!(!prepared.is_shared());
        assert!(prepared.personalize(&reader("Ann")).expect("r").html.contains("Hi Ann"));
        assert!(prepared.personalize(&reader("")).expect("r").html.contains("Hello"));
    }

    fn hostile(text: &str) -> crate::compose::context::ArticleContext {
        crate::compose::context::ArticleContext {
            title: format!("Evil title {text}"),
            url: Some("https://evil.example/a".into()),
            date: None,
            author: None,
            summary: format!("summary {text}"),
            content_html: format!("<p>body {text}</p><img src=\"https://evil.example/x?{text}\" alt=\"\">"),
            image: None,
            tags: vec![],
            source: "evil".into(),
        }
    }

    #[tokio::test]
    async fn source_text_that_looks_like_a_placeholder_stays_as_it_is() {
        let html = "<p>{{ subscriber.email }}</p>{% for a in issue.articles %}<h2>{{ a.title }}</h2>{{ a.content_html | safe }}{% endfor %}<a href=\"{{ unsubscribe_url }}\">u</a>";
        let text = "{{ subscriber.name }}\n{% for a in issue.articles %}{{ a.title }} {{ a.summary }}\n{% endfor %}";
        let set = templates(html, text, "{{ issue.articles.0.title }}").await;
        // Every shape a placeholder had or could have: bare indexes, with and without the closing
        // mark, a guessed nonce, and the marks alone.
        let tricks = [
            "\u{F8F0}0\u{F8F1}",
            "\u{F8F0}1\u{F8F1}",
            "\u{F8F0}2",
            "\u{F8F0}0000000000000000\u{F8F1}",
            "\u{F8F0}\u{F8F1}",
        ];
        let mut ctx = context();
        ctx.issue.articles = tricks.iter().map(|t| hostile(t)).collect();
        let prepared = PreparedIssue::prepare(&set, ctx).expect("prepare");
        assert!(prepared.is_shared());
        let r = reader("Ann Lee");
        let out = prepared.personalize(&r).expect("render");
        let letter = prepared.letter(&r).expect("letter");
        let qp = |p: &HtmlPart| match p {
            HtmlPart::QuotedPrintable(b) => {
                String::from_utf8(quoted_printable::decode(b, quoted_printable::ParseMode::Robust).expect("qp"))
                    .expect("utf-8")
            }
            HtmlPart::Text(t) => t.clone(),
        };
        for (part, body) in [
            ("subject", out.subject.clone()),
            ("html", out.html.clone()),
            ("text", out.text.clone()),
            ("letter html", qp(&letter.html)),
            ("letter text", qp(&letter.text)),
            ("letter subject", letter.subject.clone()),
        ] {
            // The reader's values appear only where the template put them: once each.
            assert!(body.matches("ann@example.org").count() <= 1, "{part}: {body}");
            assert!(body.matches("Ann Lee").count() <= 1, "{part}: {body}");
            assert!(body.matches("u.abc.0.xyz").count() <= 1, "{part}: {body}");
            assert!(
                !body.contains("evil.example/x?ann")
                    && !body.contains("Evil title ann")
                    && !body.contains("Evil title Ann"),
                "{part}: {body}"
            );
        }
        for t in tricks {
            assert!(out.html.contains(&format!("Evil title {t}")), "{t:?} lost from {}", out.html);
            assert!(out.text.contains(&format!("Evil title {t}")), "{t:?} lost from {}", out.text);
        }
        // The reader's own parts are still filled in after the tricks.
        assert!(out.html.contains("u.abc.0.xyz") && out.text.starts_with("Ann Lee"));
    }

    #[tokio::test]
    async fn a_long_name_rewraps_its_text_line() {
        let set = templates(
            "<p></p>",
            "You receive this because {{ subscriber.email }} is subscribed to a newsletter of ours.\n",
            "s",
        )
        .await;
        let prepared = PreparedIssue::prepare(&set, context()).expect("prepare");
        let mut r = reader("x");
        r.email = format!("{}@example.org", "a".repeat(40)).parse().expect("valid");
        let out = prepared.personalize(&r).expect("render");
        assert!(out.text.lines().all(|l| l.chars().count() <= 72), "{}", out.text);
    }
}
