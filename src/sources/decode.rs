//! Turning the bytes of a feed into UTF-8 text that the feed parser accepts. Feeds in the wild
//! are GB2312, Latin-1 with no declaration, UTF-8 behind a byte-order mark or a stray newline,
//! or open with a made-up `<?phpxml …?>` prolog, and a strict XML parser rejects all of those;
//! readers expect the text anyway. So the character set is settled here, once, and the prolog
//! is rewritten to match, before feed-rs sees the document.
//!
//! The character set, in order: a byte-order mark; else the encoding the XML declaration names;
//! else UTF-8 if the bytes are valid UTF-8 (or mostly so: a few broken sequences in otherwise
//! UTF-8 text become U+FFFD); else Windows-1252 (the superset of Latin-1 that browsers use).
//! JSON is always UTF-8 (RFC 8259).

use super::text::tag_end;
use encoding_rs::{Encoding, UTF_8, WINDOWS_1252};

/// The document as UTF-8, with any declaration removed (so the parser does not re-decode it)
/// and an `<rss>` root given a version feed-rs knows.
pub fn normalize_document(bytes: &[u8]) -> String {
    let text = decode(bytes);
    let text = text.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
    if text.starts_with('{') || text.starts_with('[') {
        return repair_json(text);
    }
    let text = drop_leading_declarations(text);
    let text = rewrite_markup(&text);
    fix_rss_version(&text)
}

/// feed-rs reads JSON Feed strictly by its types; feeds in the wild send numeric ids, leave out
/// the required `title` or an attachment's `mime_type`. Those are filled in; a document that is
/// not JSON at all is left for feed-rs to reject.
fn repair_json(text: &str) -> String {
    use serde_json::Value;
    let Ok(mut feed) = serde_json::from_str::<Value>(text) else {
        return text.to_string();
    };
    let Some(object) = feed.as_object_mut() else {
        return text.to_string();
    };
    for (key, default) in [("version", "https://jsonfeed.org/version/1"), ("title", "")] {
        if !object.get(key).is_some_and(Value::is_string) {
            object.insert(key.to_string(), Value::String(default.to_string()));
        }
    }
    if !object.get("items").is_some_and(Value::is_array) {
        object.insert("items".to_string(), Value::Array(Vec::new()));
    }
    let items = object.get_mut("items").and_then(Value::as_array_mut).into_iter().flatten();
    for item in items.filter_map(Value::as_object_mut) {
        if let Some(id) = item.get("id").filter(|id| id.is_number()).map(ToString::to_string) {
            item.insert("id".to_string(), Value::String(id));
        }
        let attachments = item.get_mut("attachments").and_then(Value::as_array_mut).into_iter().flatten();
        for attachment in attachments.filter_map(Value::as_object_mut) {
            if !attachment.get("mime_type").is_some_and(Value::is_string) {
                attachment.insert("mime_type".to_string(), Value::String("application/octet-stream".into()));
            }
        }
    }
    serde_json::to_string(&feed).unwrap_or_else(|_| text.to_string())
}

/// Bytes to text by the rules in this module's documentation.
fn decode(bytes: &[u8]) -> String {
    if let Some((encoding, bom_length)) = Encoding::for_bom(bytes) {
        let (text, _) = encoding.decode_without_bom_handling(&bytes[bom_length..]);
        return text.into_owned();
    }
    let declared = declared_encoding(bytes);
    match declared {
        // A declaration of UTF-16 without a BOM on ASCII-looking bytes is a lie; fall through.
        // Latin-1 is often declared for what is really UTF-8; Latin-1 text almost never forms
        // valid multi-byte UTF-8, so valid UTF-8 wins over that one declaration.
        Some(encoding) if encoding == WINDOWS_1252 && std::str::from_utf8(bytes).is_ok_and(|t| !t.is_ascii()) => {
            String::from_utf8_lossy(bytes).into_owned()
        }
        Some(encoding) if encoding != UTF_8 && encoding.is_ascii_compatible() => {
            let (text, _) = encoding.decode_without_bom_handling(bytes);
            text.into_owned()
        }
        _ => match std::str::from_utf8(bytes) {
            Ok(text) => text.to_string(),
            Err(_) if looks_like_broken_utf8(bytes) => String::from_utf8_lossy(bytes).into_owned(),
            Err(_) => {
                let (text, _) = WINDOWS_1252.decode_without_bom_handling(bytes);
                text.into_owned()
            }
        },
    }
}

/// True when the bytes hold valid multi-byte UTF-8 sequences (so the invalid ones are damage,
/// not another character set).
fn looks_like_broken_utf8(bytes: &[u8]) -> bool {
    let mut valid_multibyte = 0usize;
    let mut invalid = 0usize;
    let mut rest = bytes;
    while !rest.is_empty() {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                valid_multibyte += text.chars().filter(|c| c.len_utf8() > 1).count();
                break;
            }
            Err(error) => {
                let (good, bad) = rest.split_at(error.valid_up_to());
                valid_multibyte +=
                    std::str::from_utf8(good).map(|t| t.chars().filter(|c| c.len_utf8() > 1).count()).unwrap_or(0);
                invalid += 1;
                let skip = error.error_len().unwrap_or(bad.len()).max(1);
                rest = &bad[skip.min(bad.len())..];
            }
        }
    }
    valid_multibyte > invalid
}

/// The encoding named by the XML declaration (or any leading `<?… encoding="…"?>`).
fn declared_encoding(bytes: &[u8]) -> Option<&'static Encoding> {
    let head = &bytes[..bytes.len().min(1024)];
    let start = head.iter().position(|&b| !b.is_ascii_whitespace())?;
    let head = &head[start..];
    if !head.starts_with(b"<?") {
        return None;
    }
    let end = head.windows(2).position(|w| w == b"?>")?;
    let prolog = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let at = prolog.find("encoding")?;
    let rest = prolog[at + "encoding".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = rest[1..].split(quote).next()?;
    Encoding::for_label(value.trim().as_bytes())
}

/// Removes the XML declaration and any other leading processing instruction that is not a
/// stylesheet (such as `<?phpxml …?>`); the text is UTF-8 now, which needs no declaration.
fn drop_leading_declarations(text: &str) -> String {
    let mut rest = text;
    loop {
        rest = rest.trim_start();
        let Some(after) = rest.strip_prefix("<?") else {
            break;
        };
        let target: String = after.chars().take_while(|c| !c.is_whitespace() && *c != '?').collect();
        if target.eq_ignore_ascii_case("xml-stylesheet") {
            break;
        }
        match after.find("?>") {
            Some(end) => rest = &after[end + 2..],
            None => break,
        }
    }
    rest.to_string()
}

/// Element-level repairs, outside comments and CDATA sections:
///
/// - Text elements that feed-rs requires to have text when present (Atom `title`, `summary`,
///   `content`, `subtitle`, `rights`; Media RSS `media:title` and `media:description`) are
///   removed when empty (YouTube sends `<media:description></media:description>`): absent,
///   they are simply missing; present and empty, feed-rs rejects the whole feed.
/// - feed-rs keeps a `media:thumbnail` only next to a `media:content`, and many feeds (GitHub,
///   the BBC) send thumbnails alone; each `media:thumbnail` is followed by a `media:content` of
///   the same URL typed [`THUMBNAIL_TYPE`], so the picture reaches the article. Only the usual
///   `media:` prefix is recognised.
fn rewrite_markup(text: &str) -> String {
    const NAMES: &[&str] = &["title", "description", "summary", "subtitle", "rights", "content"];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    'scan: while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        rest = &rest[open..];
        for (start, end) in [("<!--", "-->"), ("<![CDATA[", "]]>")] {
            if rest.starts_with(start) {
                let length = rest.find(end).map_or(rest.len(), |i| i + end.len());
                out.push_str(&rest[..length]);
                rest = &rest[length..];
                continue 'scan;
            }
        }
        if let Some(length) = empty_text_element(rest, NAMES) {
            rest = &rest[length..];
            continue;
        }
        if let Some((length, url)) = lone_thumbnail(rest) {
            out.push_str(&rest[..length]);
            out.push_str("<media:content url=");
            out.push_str(url);
            out.push_str(" type=\"");
            out.push_str(THUMBNAIL_TYPE);
            out.push_str("\"/>");
            rest = &rest[length..];
            continue;
        }
        out.push('<');
        rest = &rest[1..];
    }
    out.push_str(rest);
    out
}

/// The media type given to the `media:content` that stands in for a lone thumbnail.
pub const THUMBNAIL_TYPE: &str = "image/x-gazette-thumbnail";

/// If `text` starts with a `<media:thumbnail …>` element, its length and its quoted `url`.
fn lone_thumbnail(text: &str) -> Option<(usize, &str)> {
    let after = text.strip_prefix("<media:thumbnail")?;
    if !after.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let tag_end = tag_end(after)?;
    let attributes = &after[..tag_end];
    let url = quoted_attribute(attributes, "url")?;
    let mut length = "<media:thumbnail".len() + tag_end + 1;
    if !attributes.trim_end().ends_with('/') {
        let closing = "</media:thumbnail>";
        length += text[length..].find(closing)? + closing.len();
    }
    Some((length, url))
}

/// `name="value"` in a start tag's attributes: the value with its quotes, as written.
fn quoted_attribute<'a>(attributes: &'a str, name: &str) -> Option<&'a str> {
    let (start, end, _) = find_attribute(attributes, name)?;
    attributes.get(start - 1..end + 1)
}

/// If `text` starts with an empty element named one of `names` (any prefix; `content` only
/// without one, and without `src`), its length.
fn empty_text_element(text: &str, names: &[&str]) -> Option<usize> {
    let after = &text[1..];
    let name_length = after.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
    let name = &after[..name_length];
    let (prefix, local) = name.split_once(':').unwrap_or(("", name));
    if !names.contains(&local) || (local == "content" && !prefix.is_empty()) {
        return None;
    }
    let tag_end = name_length + tag_end(&after[name_length..])?;
    let attributes = &after[name_length..tag_end];
    if local == "content" && attributes.contains("src") {
        return None;
    }
    if attributes.trim_end().ends_with('/') {
        return Some(1 + tag_end + 1);
    }
    let body_start = 1 + tag_end + 1;
    let mut body = text[body_start..].trim_start();
    if let Some(cdata) = body.strip_prefix("<![CDATA[") {
        body = cdata.trim_start().strip_prefix("]]>")?.trim_start();
    }
    let closing = format!("</{name}");
    let after_close = body.strip_prefix(&closing)?;
    let after_close_trimmed = after_close.trim_start();
    let rest = after_close_trimmed.strip_prefix('>')?;
    Some(text.len() - rest.len())
}

/// feed-rs reads `<rss>` only with version 2.0, 0.91 or 0.92; RSS without a version, or with
/// 0.93/0.94/2.01, is RSS 2.0 for every purpose here.
fn fix_rss_version(text: &str) -> String {
    let Some(root) = root_element_start(text) else {
        return text.to_string();
    };
    let tag = &text[root..];
    let is_rss = tag.strip_prefix("<rss").is_some_and(|rest| rest.starts_with(|c: char| c.is_whitespace() || c == '>'));
    if !is_rss {
        return text.to_string();
    }
    let Some(end) = tag.find('>') else {
        return text.to_string();
    };
    let start_tag = &tag[..end];
    let version = find_attribute(start_tag, "version");
    match version {
        Some((_, _, "2.0" | "0.91" | "0.92")) => text.to_string(),
        Some((value_start, value_end, _)) => {
            let mut fixed = String::with_capacity(text.len());
            fixed.push_str(&text[..root + value_start]);
            fixed.push_str("2.0");
            fixed.push_str(&text[root + value_end..]);
            fixed
        }
        None => {
            let insert_at = root + "<rss".len();
            let mut fixed = String::with_capacity(text.len() + 16);
            fixed.push_str(&text[..insert_at]);
            fixed.push_str(" version=\"2.0\"");
            fixed.push_str(&text[insert_at..]);
            fixed
        }
    }
}

/// Where the root element's start tag begins, past comments, instructions and a doctype.
fn root_element_start(text: &str) -> Option<usize> {
    let mut pos = 0;
    loop {
        let rest = &text[pos..];
        let offset = rest.find('<')?;
        pos += offset;
        let rest = &text[pos..];
        if rest.starts_with("<!--") {
            pos += rest.find("-->")? + 3;
        } else if rest.starts_with("<?") {
            pos += rest.find("?>")? + 2;
        } else if rest.starts_with("<!") {
            pos += rest.find('>')? + 1;
        } else {
            return Some(pos);
        }
    }
}

/// An attribute of a start tag: the byte range of its value and the value.
fn find_attribute<'a>(start_tag: &'a str, name: &str) -> Option<(usize, usize, &'a str)> {
    let mut search = 0;
    while let Some(found) = start_tag[search..].find(name) {
        let at = search + found;
        search = at + name.len();
        let before_ok = start_tag[..at].chars().last().is_some_and(char::is_whitespace);
        let after = start_tag[search..].trim_start();
        if !before_ok || !after.starts_with('=') {
            continue;
        }
        let after_eq = after[1..].trim_start();
        let quote = after_eq.chars().next().filter(|c| *c == '"' || *c == '\'')?;
        let value_start = start_tag.len() - after_eq.len() + 1;
        let value_len = start_tag[value_start..].find(quote)?;
        let value_end = value_start + value_len;
        return Some((value_start, value_end, &start_tag[value_start..value_end]));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gb2312_is_transcoded_and_declaration_dropped() {
        let (bytes, _, _) = encoding_rs::GBK.encode("<?xml version=\"1.0\" encoding=\"gb2312\"?>\n<rss version=\"2.0\"><channel><title>中文</title></channel></rss>");
        let text = normalize_document(&bytes);
        assert!(text.starts_with("<rss version=\"2.0\">"), "{text}");
        assert!(text.contains("中文"));
    }

    #[test]
    fn undeclared_latin1_is_windows_1252() {
        let bytes = b"<rss><channel><title>\xdaltimas Not\xedcias</title></channel></rss>";
        let text = normalize_document(bytes);
        assert!(text.contains("Últimas Notícias"), "{text}");
        assert!(text.starts_with("<rss version=\"2.0\">"), "{text}");
    }

    #[test]
    fn bom_newline_and_bogus_prolog() {
        let text = normalize_document(b"\xef\xbb\xbf<?xml version=\"1.0\"?><feed/>");
        assert_eq!(text, "<feed/>");
        let text = normalize_document(b"\n\n<?xml version=\"1.0\"?>\n<feed/>");
        assert_eq!(text, "<feed/>");
        let text = normalize_document(
            b"<?phpxml version=\"1.0\" encoding=\"UTF-8\"?>\n<?xml-stylesheet href=\"a.xsl\"?><rss version=\"2.0\"/>",
        );
        assert_eq!(text, "<?xml-stylesheet href=\"a.xsl\"?><rss version=\"2.0\"/>");
    }

    #[test]
    fn empty_text_elements_go() {
        let text = normalize_document(
            b"<feed><title></title><media:description>\n</media:description>\
              <summary type=\"html\"><![CDATA[ ]]></summary><media:content url=\"x\"/>\
              <content src=\"y\"/><title>Kept</title><description/><!-- <title></title> --></feed>",
        );
        assert_eq!(
            text,
            "<feed><media:content url=\"x\"/><content src=\"y\"/><title>Kept</title>\
             <!-- <title></title> --></feed>"
        );
    }

    #[test]
    fn lone_thumbnails_get_a_content() {
        let text = normalize_document(b"<item><media:thumbnail width='30' url='https://a.example/t?s=30'/></item>");
        assert_eq!(
            text,
            "<item><media:thumbnail width='30' url='https://a.example/t?s=30'/>\
             <media:content url='https://a.example/t?s=30' type=\"image/x-gazette-thumbnail\"/></item>"
        );
    }

    #[test]
    fn json_feeds_are_repaired() {
        let text = normalize_document(br#"{"items":[{"id":42,"attachments":[{"url":"https://e.org/a"}]}]}"#);
        let value: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(value["items"][0]["id"], "42");
        assert_eq!(value["title"], "");
        assert_eq!(value["items"][0]["attachments"][0]["mime_type"], "application/octet-stream");
        assert_eq!(normalize_document(b"{not json"), "{not json");
    }

    #[test]
    fn rss_versions() {
        assert_eq!(
            normalize_document(b"<!-- x --><rss version='0.94' xmlns:a='b'>"),
            "<!-- x --><rss version='2.0' xmlns:a='b'>"
        );
        assert_eq!(
            normalize_document(b"<rss xmlns:dc=\"x\" version=\"0.91\">"),
            "<rss xmlns:dc=\"x\" version=\"0.91\">"
        );
    }

    #[test]
    fn mostly_utf8_stays_utf8() {
        let mut bytes = "<a>caf\u{e9} na\u{ef}ve \u{2014} ok \u{2019}</a>".as_bytes().to_vec();
        bytes.push(0xff);
        let text = normalize_document(&bytes);
        assert!(text.contains("café"), "{text}");
        assert!(text.ends_with('\u{fffd}'), "{text}");
    }
}
