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
    // Drop what has no place in plain text first (scripts, styles, images, tracking), so
    // html2text sees only text and structure.
    let cleaned = ammonia::Builder::default()
        .rm_tags(["img"])
        .add_clean_content_tags(["noscript", "svg", "math", "iframe", "object", "template"])
        .link_rel(None)
        .url_relative(ammonia::UrlRelative::PassThrough)
        .clean(html)
        .to_string();
    let rendered = html2text::config::with_decorator(html2text::render::TrivialDecorator::new())
        .raw_mode(true)
        .allow_width_overflow()
        .no_link_wrapping()
        .string_from_read(cleaned.as_bytes(), 100_000);
    let text = match rendered {
        Ok(text) => text,
        // html2text gives up on some pathological tables; the tags-stripped text will do.
        Err(_) => ammonia::Builder::empty()
            .clean(&cleaned)
            .to_string()
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&nbsp;", " ")
            .replace("&amp;", "&"),
    };
    collapse_whitespace(&decode_entities(&text))
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

/// Escapes text for HTML element content.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
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
            let lines: Vec<String> = paragraph.lines().map(|l| escape_html(l.trim())).collect();
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

#[cfg(test)]
mod deep_probe {
    #[test]
    fn deep_nesting_probe() {
        let html = format!("{}text{}", "<div><span>".repeat(20_000), "</span></div>".repeat(20_000));
        let out = super::html_to_text(&html);
        assert_eq!(out, "text");
        let safe = super::super::sanitize::sanitize_html(&html, None);
        assert!(safe.as_str().contains("text"));
    }
}
