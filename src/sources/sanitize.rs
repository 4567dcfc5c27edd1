//! The only door into [`SafeHtml`]: feed and Markdown bodies are written by strangers and end up
//! in subscribers' mail clients, so everything goes through ammonia's allow-list here, and then
//! through a pass over ammonia's (well-formed) output that drops tracking pixels and gives every
//! image an `alt`. Templates mark the result `safe` and never look at it again.
//!
//! What goes: scripts, styles, frames, objects, forms and their controls, SVG and MathML, event
//! handlers, `style` and `class` attributes, comments, every URL that is not http(s) or mailto
//! (so `javascript:` and `data:`), relative URLs that cannot be resolved, images that are 2 px
//! or less in a dimension or whose URL is a known tracker (Medium's `/_/stat`, FeedBurner's
//! `~r/`, `~ff/` and `~a/`, WordPress stats, analytics and ad servers), and links left empty by
//! those removals. What is added: `rel="noopener noreferrer"` on links, `alt=""` on images
//! that lack one.

use std::collections::HashSet;

use url::Url;

use super::text::{MAX_NESTING, html_to_text, nesting_exceeds, text_to_html};
use crate::domain::SafeHtml;

/// Sanitises an HTML fragment from a feed or a Markdown file. Relative URLs are resolved
/// against `base`; without a base they are dropped.
pub fn sanitize_html(html: &str, base: Option<&Url>) -> SafeHtml {
    if html.trim().is_empty() {
        return SafeHtml::default();
    }
    // Pathologically deep nesting would keep the HTML parser busy for minutes: such a body is
    // shown as its text.
    if nesting_exceeds(html, MAX_NESTING) {
        return SafeHtml::assume_sanitised(text_to_html(&html_to_text(html)));
    }
    let mut builder = ammonia::Builder::default();
    builder
        .rm_tags(["map", "area"])
        .add_clean_content_tags([
            "iframe", "frame", "frameset", "object", "embed", "applet", "noscript", "template", "svg", "math",
            "select", "textarea", "button", "noembed", "noframes",
        ])
        .url_schemes(HashSet::from(["http", "https", "mailto"]))
        .link_rel(Some("noopener noreferrer"))
        .strip_comments(true);
    match base {
        Some(base) => builder.url_relative(ammonia::UrlRelative::RewriteWithBase(base.clone())),
        None => builder.url_relative(ammonia::UrlRelative::Deny),
    };
    let cleaned = builder.clean(html).to_string();
    let finished = remove_empty_links(&finish_images(&cleaned));
    SafeHtml::assume_sanitised(finished.trim().to_string())
}

/// The first image of sanitised HTML: its URL and its alt text (`None` when empty).
pub fn first_image(html: &SafeHtml) -> Option<(Url, Option<String>)> {
    let html = html.as_str();
    let mut rest = html;
    while let Some(start) = find_tag(rest, "img") {
        let after = &rest[start + 4..];
        let (attributes, length) = parse_attributes(after)?;
        rest = &after[length..];
        let src = attribute(&attributes, "src").map(unescape_attribute);
        let Some(url) = src.and_then(|s| Url::parse(&s).ok()) else {
            continue;
        };
        if !matches!(url.scheme(), "http" | "https") {
            continue;
        }
        let alt = attribute(&attributes, "alt")
            .map(unescape_attribute)
            .map(|alt| super::text::collapse_whitespace(&alt))
            .filter(|alt| !alt.is_empty());
        return Some((url, alt));
    }
    None
}

/// True for the URL of an image that only counts readers.
pub fn is_tracking_url(url: &str) -> bool {
    let lower = url.to_ascii_lowercase();
    const PATH_MARKS: &[&str] = &[
        "/_/stat",
        "/~r/",
        "/~ff/",
        "/~a/",
        "/~/i/",
        "/mf.gif",
        "/pixel.gif",
        "/pixel.png",
        "/blank.gif",
        "/spacer.gif",
        "/1x1.gif",
        "/1x1.png",
        "/tracking/",
        "/open.gif",
        "piwik.php",
        "matomo.php",
        "idsite=",
    ];
    const HOSTS: &[&str] = &[
        "pixel.wp.com",
        "stats.wordpress.com",
        "feeds.wordpress.com",
        "pixel.quantserve.com",
        "doubleclick.net",
        "google-analytics.com",
        "googletagmanager.com",
        "feedsportal.com",
        "scorecardresearch.com",
        "analytics.",
        "pixel.",
        "feeds.feedblitz.com",
        "feedads.g.doubleclick.net",
    ];
    let host = Url::parse(url).ok().and_then(|u| u.host_str().map(str::to_ascii_lowercase)).unwrap_or_default();
    PATH_MARKS.iter().any(|mark| lower.contains(mark))
        || HOSTS.iter().any(|h| host.ends_with(h) || (h.ends_with('.') && host.starts_with(h)))
}

/// Drops pixels and tracker images, adds `alt=""` where missing. Works on ammonia's output,
/// where a literal `<img` can only be a tag (text has `<` escaped, comments are gone) and
/// every attribute value is double-quoted.
fn finish_images(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = find_tag(rest, "img") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 4..];
        let Some((attributes, length)) = parse_attributes(after) else {
            // Cannot happen with ammonia's output; dropping the rest is the safe answer.
            return out;
        };
        rest = &after[length..];
        if keep_image(&attributes) {
            out.push_str("<img");
            for (name, value) in &attributes {
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                out.push_str(value);
                out.push('"');
            }
            if attribute(&attributes, "alt").is_none() {
                out.push_str(" alt=\"\"");
            }
            out.push('>');
        }
    }
    out.push_str(rest);
    out
}

fn keep_image(attributes: &[(String, String)]) -> bool {
    let Some(src) = attribute(attributes, "src").map(unescape_attribute) else {
        return false;
    };
    if is_tracking_url(&src) {
        return false;
    }
    let tiny = |name| {
        attribute(attributes, name).is_some_and(|value| {
            let digits: String = value.trim().chars().take_while(char::is_ascii_digit).collect();
            !digits.is_empty() && digits.parse::<u64>().is_ok_and(|n| n <= 2)
        })
    };
    !tiny("width") && !tiny("height")
}

/// `<a …></a>` with nothing inside (what is left of a tracker link once its image is gone).
fn remove_empty_links(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(start) = find_tag(rest, "a") {
        let after = &rest[start + 2..];
        match after.find('>') {
            Some(end) if after[end + 1..].starts_with("</a>") => {
                out.push_str(&rest[..start]);
                rest = &after[end + 1 + "</a>".len()..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The byte offset of the next `<name` start tag (followed by a space or `>`).
fn find_tag(html: &str, name: &str) -> Option<usize> {
    let needle = format!("<{name}");
    let mut offset = 0;
    while let Some(found) = html[offset..].find(&needle) {
        let at = offset + found;
        let next = html[at + needle.len()..].chars().next();
        if matches!(next, Some(' ' | '>' | '/' | '\t' | '\n')) {
            return Some(at);
        }
        offset = at + needle.len();
    }
    None
}

/// The attributes of a start tag whose name has been read, and how many bytes the rest of the
/// tag (through `>`) takes. Values are returned as written (still escaped).
fn parse_attributes(tag: &str) -> Option<(Vec<(String, String)>, usize)> {
    let bytes = tag.as_bytes();
    let mut pos = 0;
    let mut attributes = Vec::new();
    loop {
        while pos < bytes.len() && (bytes[pos].is_ascii_whitespace() || bytes[pos] == b'/') {
            pos += 1;
        }
        if pos >= bytes.len() {
            return None;
        }
        if bytes[pos] == b'>' {
            return Some((attributes, pos + 1));
        }
        let name_start = pos;
        while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && !matches!(bytes[pos], b'=' | b'>' | b'/') {
            pos += 1;
        }
        let name = tag[name_start..pos].to_ascii_lowercase();
        let mut value = String::new();
        if pos < bytes.len() && bytes[pos] == b'=' {
            pos += 1;
            let quote = *bytes.get(pos)?;
            if quote == b'"' || quote == b'\'' {
                let end = tag[pos + 1..].find(quote as char)? + pos + 1;
                value = tag[pos + 1..end].to_string();
                pos = end + 1;
            } else {
                let start = pos;
                while pos < bytes.len() && !bytes[pos].is_ascii_whitespace() && bytes[pos] != b'>' {
                    pos += 1;
                }
                value = tag[start..pos].to_string();
            }
        }
        if !name.is_empty() {
            attributes.push((name, value));
        }
    }
}

fn attribute<'a>(attributes: &'a [(String, String)], name: &str) -> Option<&'a str> {
    attributes.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn unescape_attribute(value: &str) -> String {
    value
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", "\u{a0}")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(html: &str) -> String {
        let base = Url::parse("https://example.org/blog/post/").expect("valid base");
        sanitize_html(html, Some(&base)).as_str().to_string()
    }

    #[test]
    fn scripts_handlers_and_bad_schemes_go() {
        let out = clean(
            "<p onclick=\"evil()\" style=\"color:red\">Hi<script>alert(1)</script>\
             <a href=\"javascript:alert(1)\">x</a><a href=\"data:text/html,hi\">y</a>\
             <iframe src=\"https://evil.example\">frame text</iframe>\
             <form action=\"/steal\"><input name=\"q\"><button>Go</button></form></p>",
        );
        for bad in
            ["script", "onclick", "style", "javascript:", "data:", "iframe", "frame text", "form", "input", "button"]
        {
            assert!(!out.contains(bad), "{bad} survived in {out}");
        }
        assert!(out.contains("Hi"));
    }

    #[test]
    fn relative_urls_resolve_against_the_base() {
        let out = clean("<a href=\"/about\">a</a> <img src=\"pic.png\" alt=\"A pic\">");
        assert!(out.contains("href=\"https://example.org/about\""), "{out}");
        assert!(out.contains("rel=\"noopener noreferrer\""), "{out}");
        assert!(out.contains("src=\"https://example.org/blog/post/pic.png\""), "{out}");
        assert!(out.contains("alt=\"A pic\""));
    }

    #[test]
    fn without_a_base_relative_urls_go() {
        let out = sanitize_html("<a href=\"/about\">about</a><img src=\"/a.png\">", None);
        assert_eq!(out.as_str(), "<a rel=\"noopener noreferrer\">about</a>");
    }

    #[test]
    fn pixels_and_trackers_go_and_images_get_alt() {
        let out = clean(
            "<p>text</p><img src=\"https://medium.com/_/stat?event=post.clientViewed&amp;x=1\" \
             width=\"1\" height=\"1\">\
             <img src=\"https://cdn.example.org/spy.gif\" width=\"1\" height=\"1\">\
             <img src=\"https://cdn.example.org/wide.gif\" width=\"600\" height=\"2px\">\
             <a href=\"http://feeds.feedburner.com/~ff/x?a=1\"><img src=\"http://feeds.feedburner.com/~ff/x?d=1\"></a>\
             <img src=\"http://feeds.feedburner.com/~r/x/~4/abc\" height=\"1\" width=\"1\">\
             <img src=\"https://cdn.example.org/photo.jpg\" width=\"600\">",
        );
        assert!(!out.contains("_/stat"), "{out}");
        assert!(!out.contains("spy.gif"), "{out}");
        assert!(!out.contains("wide.gif"), "{out}");
        assert!(!out.contains("feedburner"), "{out}");
        assert!(out.contains("<img src=\"https://cdn.example.org/photo.jpg\" width=\"600\" alt=\"\">"), "{out}");
    }

    #[test]
    fn deep_nesting_becomes_text() {
        let html =
            format!("{}<script>x</script>deep &amp; <b>text</b>{}", "<div>".repeat(5_000), "</div>".repeat(5_000));
        assert_eq!(sanitize_html(&html, None).as_str(), "<p>deep &amp; text</p>");
    }

    #[test]
    fn first_image_found() {
        let html = sanitize_html(
            "<p>x</p><img src=\"https://e.org/a.jpg?x=1&amp;y=2\" alt=\"An A\"><img src=\"https://e.org/b.jpg\">",
            None,
        );
        let (url, alt) = first_image(&html).expect("an image");
        assert_eq!(url.as_str(), "https://e.org/a.jpg?x=1&y=2");
        assert_eq!(alt.as_deref(), Some("An A"));
    }
}
