//! Plain text out of feed HTML: summaries, titles and fallback titles. The digest's text part
//! and its previews show these as they are, so they must carry no tags, no entities (not even
//! the double-escaped `&amp;#39;` some feeds send) and no runs of whitespace, and long text is
//! cut at a word, never inside one.

use std::borrow::Cow;

/// About how long a summary may be, in characters (the cut adds "…").
pub const SUMMARY_CHARS: usize = 300;

/// How many words a fallback title takes from the body.
pub const TITLE_WORDS: usize = 8;

/// Plain text of an HTML fragment: block elements become spaces, images and scripts vanish,
/// entities are decoded (twice where a feed escaped them twice), whitespace is collapsed.
pub fn html_to_text(html: &str) -> String {
    if html.trim().is_empty() {
        return String::new();
    }
    if nesting_exceeds(html, MAX_NESTING) {
        return markup_to_text(html);
    }
    // html5ever (through ammonia) turns tag soup into well-formed markup the scanner below
    // can read; what has no place in text (scripts, styles, images) goes on the way.
    let cleaned = ammonia::Builder::default()
        .rm_tags(["img"])
        .add_clean_content_tags(["noscript", "svg", "math", "iframe", "object", "template"])
        .link_rel(None)
        .url_relative(ammonia::UrlRelative::PassThrough)
        .clean(html)
        .to_string();
    markup_to_text(&cleaned)
}

/// Plain text of HTML that has been through the sanitiser (no re-parsing needed).
pub fn safe_html_to_text(html: &crate::domain::SafeHtml) -> String {
    markup_to_text(html.as_str())
}

/// Element nesting beyond which HTML is read as text instead of parsed: html5ever's work
/// grows with the square of the nesting, and no article nests anywhere near this deep.
pub const MAX_NESTING: usize = 200;

/// True when `html` opens more than `limit` elements inside one another. Elements that the
/// parser closes by itself (`p`, `li`, table cells…) and void ones are not counted, so
/// unclosed paragraphs in old feeds do not trip it.
pub fn nesting_exceeds(html: &str, limit: usize) -> bool {
    const NOT_COUNTED: &[&str] = &[
        "p", "li", "dt", "dd", "tr", "td", "th", "option", "br", "img", "hr", "input", "meta", "link", "wbr", "area",
        "base", "col", "embed", "source", "track", "param",
    ];
    let mut depth = 0usize;
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        rest = &rest[open + 1..];
        let closing = rest.starts_with('/');
        let name: String = rest
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        if name.is_empty() || NOT_COUNTED.contains(&name.as_str()) {
            continue;
        }
        if closing {
            depth = depth.saturating_sub(1);
        } else {
            let self_closing = rest.find('>').is_some_and(|end| rest[..end].ends_with('/'));
            if !self_closing {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
        }
    }
    false
}

/// Text of markup by a linear scan: tags go (block-level ones leave a space), the content of
/// scripts, styles and the like goes, entities are decoded, whitespace collapsed. Exact for the
/// well-formed output of html5ever; good enough for the tag soup it falls back on.
fn markup_to_text(html: &str) -> String {
    const BLOCKS: &[&str] = &[
        "p",
        "br",
        "div",
        "li",
        "ul",
        "ol",
        "dl",
        "dt",
        "dd",
        "tr",
        "td",
        "th",
        "table",
        "thead",
        "tbody",
        "tfoot",
        "caption",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "blockquote",
        "pre",
        "hr",
        "figure",
        "figcaption",
        "section",
        "article",
        "header",
        "footer",
        "aside",
        "nav",
        "details",
        "summary",
        "address",
    ];
    const HIDDEN: &[&str] = &["script", "style", "noscript", "template", "svg", "math", "iframe", "object", "head"];
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        if let Some(comment) = rest.strip_prefix("<!--") {
            rest = comment.find("-->").map_or("", |end| &comment[end + 3..]);
            continue;
        }
        let after = &rest[1..];
        if !after.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '!' || c == '?') {
            out.push('<');
            rest = after;
            continue;
        }
        let name: String = after
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let Some(end) = tag_end(after) else {
            break; // an unterminated tag at the very end: drop it
        };
        rest = &after[end + 1..];
        if BLOCKS.contains(&name.as_str()) {
            out.push(' ');
        }
        if !after.starts_with('/') && HIDDEN.contains(&name.as_str()) {
            let closing = format!("</{name}");
            let lower = rest.to_ascii_lowercase();
            rest = lower.find(&closing).map_or("", |at| &rest[at..]);
        }
    }
    out.push_str(rest);
    let once = decode_entities(&out);
    collapse_whitespace(&decode_entities(&once))
}

/// The index of the `>` that ends a tag, minding quoted attribute values.
pub(super) fn tag_end(tag: &str) -> Option<usize> {
    let mut quote = None;
    for (index, c) in tag.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '>') => return Some(index),
            _ => {}
        }
    }
    None
}

/// Plain text that may still carry (double-)escaped entities, made readable.
pub fn clean_text(text: &str) -> String {
    collapse_whitespace(&decode_entities(text))
}

/// Runs of whitespace (including newlines and no-break spaces) become one space; trimmed.
pub fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for word in text.split(|c: char| c.is_whitespace() || c == '\u{a0}' || c == '\u{feff}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Cuts `text` to at most about `max_chars` characters at a word boundary, adding "…".
pub fn truncate_at_word(text: &str, max_chars: usize) -> String {
    if text.chars().count() <= max_chars {
        return text.to_string();
    }
    let cut = text.char_indices().nth(max_chars).map_or(text.len(), |(index, _)| index);
    let head = &text[..cut];
    // Back up to the last space, unless that throws away most of the text (one huge word).
    let head = match head.rfind(' ') {
        Some(space) if space >= cut / 2 => &head[..space],
        _ => head,
    };
    let head = head
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, ',' | ';' | ':' | '-' | '–' | '—' | '(' | '.'));
    format!("{head}…")
}

/// The summary of an article: plain text, at most about [`SUMMARY_CHARS`].
pub fn summary_from_text(text: &str) -> String {
    truncate_at_word(text, SUMMARY_CHARS)
}

/// The first [`TITLE_WORDS`] words of `text`, with "…" when there were more.
pub fn first_words(text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return None;
    }
    let mut title = words.iter().take(TITLE_WORDS).copied().collect::<Vec<_>>().join(" ");
    if words.len() > TITLE_WORDS {
        title = truncate_at_word(&title, 80);
        if !title.ends_with('…') {
            title = title.trim_end_matches([',', ';', ':', '.', '-', '—', '–']).to_string();
            title.push('…');
        }
    } else if title.chars().count() > 80 {
        title = truncate_at_word(&title, 80);
    }
    Some(title)
}

/// Decodes character references and the common named entities, once. Text that came out of an
/// HTML parser should have none left; those that remain were escaped twice by the feed.
pub fn decode_entities(text: &str) -> Cow<'_, str> {
    if !text.contains('&') {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let after = &rest[amp + 1..];
        let reference = after
            .find(';')
            .filter(|&end| end > 0 && end <= 10)
            .and_then(|end| decode_reference(&after[..end]).map(|c| (c, end)));
        match reference {
            Some((decoded, end)) => {
                out.push_str(decoded.as_ref());
                rest = &after[end + 1..];
            }
            None => {
                out.push('&');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

fn decode_reference(name: &str) -> Option<Cow<'static, str>> {
    if let Some(number) = name.strip_prefix('#') {
        let code = match number.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok()?,
            None => number.parse().ok()?,
        };
        let c = char::from_u32(code).filter(|c| *c != '\0')?;
        return Some(Cow::Owned(c.to_string()));
    }
    let text = match name {
        "amp" => "&",
        "lt" => "<",
        "gt" => ">",
        "quot" => "\"",
        "apos" => "'",
        "nbsp" => " ",
        "hellip" => "…",
        "mdash" => "—",
        "ndash" => "–",
        "lsquo" => "‘",
        "rsquo" => "’",
        "ldquo" => "“",
        "rdquo" => "”",
        "laquo" => "«",
        "raquo" => "»",
        "copy" => "©",
        "reg" => "®",
        "trade" => "™",
        "eacute" => "é",
        "egrave" => "è",
        "agrave" => "à",
        "ccedil" => "ç",
        _ => return None,
    };
    Some(Cow::Borrowed(text))
}

/// Plain text as HTML paragraphs (blank lines separate them; single newlines become `<br>`).
pub fn text_to_html(text: &str) -> String {
    let text = decode_entities(text);
    let normalized = text.replace("\r\n", "\n");
    normalized
        .split("\n\n")
        .map(str::trim)
        .filter(|paragraph| !paragraph.is_empty())
        .map(|paragraph| {
            let lines: Vec<String> = paragraph.lines().map(|l| crate::domain::SafeHtml::escape(l.trim())).collect();
            format!("<p>{}</p>", lines.join("<br>"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_becomes_plain_text() {
        let html = "<p>One&nbsp;<b>two</b></p>\n\n<p>three <a href=\"https://x.org\">four</a>\
                    <img src=\"a.png\" alt=\"picture\"></p><script>alert(1)</script>";
        assert_eq!(html_to_text(html), "One two three four");
    }

    #[test]
    fn deep_nesting_is_read_as_text_quickly() {
        let html = format!("{}deep <b>text</b>{}", "<div><span>".repeat(20_000), "</span></div>".repeat(20_000));
        let started = std::time::Instant::now();
        assert!(nesting_exceeds(&html, MAX_NESTING));
        assert_eq!(html_to_text(&html), "deep text");
        assert!(started.elapsed() < std::time::Duration::from_secs(2));
        let paragraphs = "<p>unclosed ".repeat(1000);
        assert!(!nesting_exceeds(&paragraphs, MAX_NESTING));
        assert!(!nesting_exceeds("<div><div/><br><img src=x></div>", 1));
    }

    #[test]
    fn scanner_skips_hidden_content_and_comments() {
        assert_eq!(markup_to_text("a<!-- x --><script>if (a < b) {}</script>b<style>p{}</style> c"), "ab c");
        assert_eq!(markup_to_text("x < y <a title=\"1 > 0\">z</a>"), "x < y z");
        assert_eq!(markup_to_text("one<br>two<b>three</b>"), "one twothree");
    }

    #[test]
    fn double_escaped_entities_are_decoded() {
        // The feed's XML held `&amp;#39;`; after XML decoding the HTML says `&#39;`.
        assert_eq!(html_to_text("it&#39;s &amp;#39;fine&amp;#39;"), "it's 'fine'");
        assert_eq!(clean_text("Ben &amp; Jerry&#8217;s"), "Ben & Jerry’s");
        assert_eq!(clean_text("AT&T & co;"), "AT&T & co;");
    }

    #[test]
    fn truncation_cuts_at_a_word() {
        let text = "word ".repeat(100);
        let cut = truncate_at_word(text.trim(), 42);
        assert!(cut.ends_with("word…"), "{cut}");
        assert!(cut.chars().count() <= 43);
        assert_eq!(truncate_at_word("short", 42), "short");
        let long = "x".repeat(500);
        assert_eq!(truncate_at_word(&long, 10).chars().count(), 11);
    }

    #[test]
    fn fallback_titles() {
        assert_eq!(
            first_words("Went for a long walk along the river this morning, saw herons.").as_deref(),
            Some("Went for a long walk along the river…")
        );
        assert_eq!(first_words("Just this.").as_deref(), Some("Just this."));
        assert_eq!(first_words("   "), None);
    }

    #[test]
    fn plain_text_to_html_escapes() {
        assert_eq!(text_to_html("a < b\n\nc & d\ne"), "<p>a &lt; b</p>\n<p>c &amp; d<br>e</p>");
    }
}
