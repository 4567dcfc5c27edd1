//! A feed document → articles. feed-rs reads the formats; this file decides what a publisher
//! would expect of each article when feeds are sloppy: which link is the article, what base a
//! relative link is resolved against, which picture represents it, what the title is when the
//! feed has none, and where the summary comes from. No I/O happens here, so every rule is
//! tested on the fixture feeds directly.
//!
//! Resolution of relative links: an item's link is resolved against its `xml:base` (feed-rs
//! applies it), else the feed's own site link (RSS `<channel><link>`, Atom `<link
//! rel="alternate">`, JSON `home_page_url`; itself resolved against the next), else the URL the
//! feed was fetched from, else the feed's absolute `rel="self"` link. Relative URLs inside the
//! content, the summary and the item's pictures are resolved against the `xml:base` in scope
//! there (in Atom: the content's own, within the entry's, within the feed's, each relative to
//! the next, the outermost relative to the same chain), else the same chain, else (a feed with
//! no site link and no URL of its own) the item's link. What still is not absolute http(s) is
//! dropped.

use std::panic::{AssertUnwindSafe, catch_unwind};

use chrono::{DateTime, Utc};
use feed_rs::model::{Entry, Feed, FeedType, Link, Person, Text};
use sha2::{Digest, Sha256};
use url::Url;

use super::decode::normalize_document;
use super::sanitize::{first_image, is_tracking_url, sanitize_html};
use super::text::{
    clean_text, first_words, html_to_text, safe_html_to_text, summary_from_text, text_to_html, truncate_at_word,
};
use super::xml_base::{EntryBases, atom_entry_bases};
use super::{ReadOptions, SourceError, dates};
use crate::domain::{Article, ArticleImage, SafeHtml};

/// Longest author line kept (bioRxiv lists dozens of names in one `dc:creator`).
const AUTHOR_CHARS: usize = 120;

/// Pure parsing, no I/O: the bytes of an RSS 0.9x/1.0/2.0, Atom 1.0 or JSON Feed 1.x document.
///
/// `base` is the URL the feed was fetched from (relative links resolve against it when the
/// feed names no site link); `label_hint` labels the articles when the feed has no title, and
/// names the feed in errors when there is no `base`.
pub fn parse_feed(
    bytes: &[u8],
    base: Option<&Url>,
    label_hint: &str,
    options: &ReadOptions,
) -> Result<Vec<Article>, SourceError> {
    let document = normalize_document(bytes);
    let location = || base.map_or_else(|| label_hint.to_string(), Url::to_string);
    let timezone = options.timezone;
    // feed-rs has a few `unwrap`s on states that hostile input might reach; a feed must never
    // take the process down, so a panic in there is a malformed feed like any other.
    let parsed = catch_unwind(AssertUnwindSafe(|| {
        feed_rs::parser::Builder::new()
            .timestamp_parser(move |text| dates::parse_feed_date(text, timezone))
            // Empty ids stay empty, so we can tell them apart and make stable ones below.
            .id_generator(|_, _, _| String::new())
            .sanitize_content(false)
            .build()
            .parse(document.as_bytes())
    }));
    let feed = match parsed {
        Ok(Ok(feed)) => feed,
        Ok(Err(error)) => {
            return Err(SourceError::NotAFeed { location: location(), cause: describe_parse_error(&error) });
        }
        Err(_) => {
            return Err(SourceError::NotAFeed { location: location(), cause: "the feed parser gave up on it".into() });
        }
    };
    let json_images = if document.starts_with('{') { json_item_images(&document) } else { Vec::new() };
    // Matched to feed-rs's entries by position, so only when both read as many.
    let entry_bases = match feed.feed_type {
        FeedType::Atom => atom_entry_bases(&document).filter(|bases| bases.len() == feed.entries.len()),
        _ => None,
    };
    let context = FeedContext::new(&feed, base, label_hint, options);
    Ok(feed
        .entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let json_image = json_images.get(index).and_then(Option::as_deref);
            let bases = entry_bases.as_ref().and_then(|bases| bases.get(index));
            context.article(entry, json_image, bases)
        })
        .collect())
}

fn describe_parse_error(error: &feed_rs::parser::ParseFeedError) -> String {
    use feed_rs::parser::{ParseErrorKind, ParseFeedError};
    match error {
        ParseFeedError::ParseError(ParseErrorKind::NoFeedRoot) => {
            "found no <rss>, <feed> or <rdf:RDF> root element and no JSON Feed object".into()
        }
        other => super::error::cause_chain(other),
    }
}

/// What every item of one feed shares.
struct FeedContext {
    label: String,
    /// Where relative item links resolve: the site link, else the fetch URL / self link.
    item_base: Option<Url>,
    feed_author: Option<String>,
    timezone: chrono_tz::Tz,
    /// RSS descriptions are HTML whatever feed-rs says (RSS 1.0 calls them text; nobody
    /// writes them so).
    html_summaries: bool,
}

impl FeedContext {
    fn new(feed: &Feed, base: Option<&Url>, label_hint: &str, options: &ReadOptions) -> Self {
        let label = feed
            .title
            .as_ref()
            .map(text_of)
            .filter(|title| !title.is_empty())
            .unwrap_or_else(|| label_hint.to_string());
        let self_link = feed
            .links
            .iter()
            .filter(|link| link.rel.as_deref() == Some("self"))
            .find_map(|link| Url::parse(link.href.trim()).ok())
            .filter(is_web_url);
        let feed_base = base.cloned().or(self_link);
        let site_link = feed
            .links
            .iter()
            .filter(|link| matches!(link.rel.as_deref(), None | Some("alternate")))
            .find_map(|link| resolve(&link.href, feed_base.as_ref()));
        Self {
            label,
            item_base: site_link.or(feed_base),
            feed_author: author_of(&feed.authors),
            timezone: options.timezone,
            html_summaries: matches!(feed.feed_type, FeedType::RSS0 | FeedType::RSS1 | FeedType::RSS2),
        }
    }

    fn article(&self, entry: &Entry, json_image: Option<&str>, bases: Option<&EntryBases>) -> Article {
        let in_scope = |chain: &[String]| resolve_bases(chain, self.item_base.as_ref());
        let entry_base = bases.and_then(|bases| in_scope(&bases.entry)).or_else(|| self.item_base.clone());
        let url = entry_link(entry, entry_base.as_ref()).map(strip_tracking_parameters);
        // The item's link last: in a link blog it points at somebody else's site.
        let entry_base = entry_base.or_else(|| url.clone());
        let content_base = match bases {
            Some(bases) => in_scope(&bases.content),
            // Without the bases around it, feed-rs's raw xml:base of the content.
            None => entry.base.as_deref().and_then(|b| resolve(b, self.item_base.as_ref().or(url.as_ref()))),
        }
        .or_else(|| entry_base.clone());
        let summary_base = bases.and_then(|bases| in_scope(&bases.summary)).or_else(|| entry_base.clone());

        let summary_text = entry.summary.as_ref().map(|summary| self.summary_text(summary)).unwrap_or_default();
        let media_description = entry
            .media
            .iter()
            .filter_map(|media| media.description.as_ref())
            .map(text_of)
            .find(|text| !text.is_empty());

        let content_html = self.content_html(
            entry,
            content_base.as_ref(),
            summary_base.as_ref(),
            entry_base.as_ref(),
            &media_description,
        );
        let summary = if !summary_text.is_empty() {
            summary_from_text(&summary_text)
        } else {
            let from_content = safe_html_to_text(&content_html);
            if from_content.is_empty() {
                media_description.as_deref().map(summary_from_text).unwrap_or_default()
            } else {
                summary_from_text(&from_content)
            }
        };

        let date = entry.published.or(entry.updated);
        let title = entry
            .title
            .as_ref()
            .map(text_of)
            .filter(|title| !title.is_empty())
            .unwrap_or_else(|| self.fallback_title(&summary, date));

        let image = pick_image(entry, entry_base.as_ref(), json_image, &content_html)
            .map(|(url, alt)| ArticleImage { url, alt: alt.unwrap_or_else(|| title.clone()) });

        let id = Some(entry.id.trim())
            .filter(|id| !id.is_empty())
            .map(str::to_string)
            .or_else(|| url.as_ref().map(Url::to_string))
            .unwrap_or_else(|| content_hash(&title, date, &summary, &content_html));

        Article {
            id,
            title,
            url,
            date,
            author: author_of(&entry.authors).or_else(|| self.feed_author.clone()),
            summary,
            content_html,
            image,
            tags: tags_of(entry),
            source: self.label.clone(),
            source_id: self.label.clone(),
            draft: false,
        }
    }

    /// The full content, else the summary, else a media description, sanitised; each resolved
    /// against its own base.
    fn content_html(
        &self,
        entry: &Entry,
        content_base: Option<&Url>,
        summary_base: Option<&Url>,
        entry_base: Option<&Url>,
        media_description: &Option<String>,
    ) -> SafeHtml {
        let content = entry.content.as_ref().and_then(|content| {
            let body = content.body.as_deref()?.trim();
            (!body.is_empty()).then(|| (body, content.content_type.to_string()))
        });
        if let Some((body, content_type)) = content {
            let html = as_html(body, &content_type);
            let safe = sanitize_html(&html, content_base);
            if !safe.is_empty() {
                return safe;
            }
        }
        if let Some(summary) = entry.summary.as_ref().filter(|s| !s.content.trim().is_empty()) {
            let html = if self.html_summaries {
                as_html(summary.content.trim(), "text/html")
            } else {
                as_html(summary.content.trim(), summary.content_type.as_ref())
            };
            return sanitize_html(&html, summary_base);
        }
        match media_description {
            Some(text) => sanitize_html(&text_to_html(text), entry_base),
            None => SafeHtml::default(),
        }
    }

    fn summary_text(&self, summary: &Text) -> String {
        if self.html_summaries { html_to_text(&unescape_markup(&summary.content)) } else { text_of(summary) }
    }

    /// A title for an item that has none: its first words, else its date, else "Untitled".
    fn fallback_title(&self, summary: &str, date: Option<DateTime<Utc>>) -> String {
        if let Some(words) = first_words(summary.trim_end_matches('…')) {
            return words;
        }
        match date {
            Some(date) => date.with_timezone(&self.timezone).format("%-d %B %Y").to_string(),
            None => "Untitled".to_string(),
        }
    }
}

fn is_web_url(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https")
}

/// An href made absolute against `base`; only http(s) survives.
pub(crate) fn resolve(href: &str, base: Option<&Url>) -> Option<Url> {
    let href = href.trim();
    if href.is_empty() {
        return None;
    }
    let url = match Url::parse(href) {
        Ok(url) => url,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    is_web_url(&url).then_some(url)
}

/// `xml:base` values, outermost first, each resolved against the one before, the first against
/// `root`; `None` when there are none or they come to no web URL. A value that is no URL at all
/// is skipped, as feed-rs skips it.
fn resolve_bases(chain: &[String], root: Option<&Url>) -> Option<Url> {
    if chain.is_empty() {
        return None;
    }
    let base = chain.iter().fold(root.cloned(), |base, value| match Url::parse(value.trim()) {
        Ok(url) => Some(url),
        Err(url::ParseError::RelativeUrlWithoutBase) => base.as_ref().and_then(|b| b.join(value.trim()).ok()).or(base),
        Err(_) => base,
    });
    base.filter(is_web_url)
}

/// The article's link: the first alternate link, else an id that is a web URL.
fn entry_link(entry: &Entry, base: Option<&Url>) -> Option<Url> {
    let is_article_link = |link: &&Link| {
        link.target.is_none()
            && matches!(link.rel.as_deref(), None | Some("alternate"))
            && link.media_type.as_deref().is_none_or(|t| t.contains("html"))
    };
    entry.links.iter().filter(is_article_link).find_map(|link| resolve(&link.href, base)).or_else(|| {
        let id = entry.id.trim();
        (id.starts_with("http://") || id.starts_with("https://")).then(|| resolve(id, None)).flatten()
    })
}

/// Drops `utm_*` campaign parameters and Medium's `source=rss…` from a link.
fn strip_tracking_parameters(mut url: Url) -> Url {
    if url.query().is_none() {
        return url;
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(key, value)| {
            let campaign = key.starts_with("utm_");
            let medium_source = key == "source" && value.starts_with("rss");
            !campaign && !medium_source
        })
        .map(|(key, value)| (key.into_owned(), value.into_owned()))
        .collect();
    if kept.len() == url.query_pairs().count() {
        return url;
    }
    if kept.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(kept);
    }
    url
}

/// Plain text of a feed text construct (HTML ones are converted, entities decoded).
/// Text declared plain that carries markup anyway (RSS titles such as `Kochi to raise <span
/// class='webrupee'>₹</span>4,000 crore`) is read as HTML.
fn text_of(text: &Text) -> String {
    let content_type = text.content_type.to_string();
    if content_type.starts_with("text/plain") && !looks_like_markup(&text.content) {
        clean_text(&text.content)
    } else {
        html_to_text(&unescape_markup(&text.content))
    }
}

/// A closing tag (`</span>`) or one of the common inline tags.
fn looks_like_markup(text: &str) -> bool {
    const OPENINGS: &[&str] = &["<br>", "<br/>", "<br />", "<b>", "<i>", "<em>", "<strong>", "<span ", "<p>"];
    let closing_tag = text.match_indices("</").any(|(at, _)| {
        let name: String = text[at + 2..].chars().take_while(char::is_ascii_alphanumeric).collect();
        !name.is_empty() && text[at + 2 + name.len()..].starts_with('>')
    });
    closing_tag || OPENINGS.iter().any(|tag| text.contains(tag))
}

fn as_html(body: &str, content_type: &str) -> String {
    if content_type.starts_with("text/plain") { text_to_html(body) } else { unescape_markup(body).into_owned() }
}

/// HTML escaped once too often (`&lt;p&gt;Hello&lt;/p&gt;` with no real tag in sight) is
/// unescaped once, so readers see the paragraph and not its markup.
fn unescape_markup(html: &str) -> std::borrow::Cow<'_, str> {
    const ESCAPED_TAGS: &[&str] = &[
        "&lt;p&gt;",
        "&lt;p ",
        "&lt;/p&gt;",
        "&lt;br",
        "&lt;a href",
        "&lt;img ",
        "&lt;div",
        "&lt;/a&gt;",
        "&lt;table",
        "&lt;ul&gt;",
        "&lt;li&gt;",
        "&lt;b&gt;",
        "&lt;i&gt;",
        "&lt;em&gt;",
        "&lt;strong&gt;",
        "&lt;span",
        "&lt;blockquote",
    ];
    let has_real_tag = html
        .as_bytes()
        .windows(2)
        .any(|pair| pair[0] == b'<' && (pair[1].is_ascii_alphabetic() || pair[1] == b'/' || pair[1] == b'!'));
    if has_real_tag || !ESCAPED_TAGS.iter().any(|tag| html.contains(tag)) {
        return std::borrow::Cow::Borrowed(html);
    }
    super::text::decode_entities(html)
}

/// The names of the people, or `None`; an RSS `email (Name)` gives the name.
fn author_of(people: &[Person]) -> Option<String> {
    let names: Vec<String> = people
        .iter()
        .filter_map(|person| person.name.as_deref())
        .map(|name| clean_text(name.trim().trim_start_matches('(').trim_end_matches(')')))
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        return None;
    }
    let mut unique: Vec<String> = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    Some(truncate_at_word(&unique.join(", "), AUTHOR_CHARS))
}

fn tags_of(entry: &Entry) -> Vec<String> {
    let mut tags: Vec<String> = Vec::new();
    for category in &entry.categories {
        let raw = category.label.as_deref().unwrap_or(&category.term);
        let tag = clean_text(raw);
        if !tag.is_empty() && !tags.iter().any(|t| t.eq_ignore_ascii_case(&tag)) {
            tags.push(tag);
        }
    }
    tags
}

/// The picture for an article: a JSON Feed image, an image enclosure or media content, a media
/// thumbnail, else the first image of the (sanitised) content.
fn pick_image(
    entry: &Entry,
    base: Option<&Url>,
    json_image: Option<&str>,
    content: &SafeHtml,
) -> Option<(Url, Option<String>)> {
    let usable = |url: Url| {
        let avatar = url.host_str().is_some_and(|host| host.ends_with("gravatar.com"));
        (is_web_url(&url) && !avatar && !is_tracking_url(url.as_str())).then_some(url)
    };
    if let Some(url) = json_image.and_then(|href| resolve(href, base)).and_then(usable) {
        return Some((url, None));
    }
    // Media titles are no alt text (feed-rs keeps one per item, often an author's name): these
    // images take the article's title instead.
    for media in &entry.media {
        for item in &media.content {
            let is_image = match &item.content_type {
                Some(mime) => mime.to_string().starts_with("image/"),
                None => item.url.as_ref().is_some_and(has_image_extension),
            };
            if let Some(url) = item.url.clone().filter(|_| is_image).and_then(usable) {
                return Some((url, None));
            }
        }
    }
    for media in &entry.media {
        for thumbnail in &media.thumbnails {
            if let Some(url) = resolve(&thumbnail.image.uri, base).and_then(usable) {
                return Some((url, None));
            }
        }
    }
    first_image(content)
}

fn has_image_extension(url: &Url) -> bool {
    let path = url.path().to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".gif", ".webp", ".avif"].iter().any(|ext| path.ends_with(ext))
}

/// The `image` (else `banner_image`) of each JSON Feed item, by position; feed-rs drops them.
fn json_item_images(document: &str) -> Vec<Option<String>> {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(document) else {
        return Vec::new();
    };
    let Some(items) = value.get("items").and_then(|items| items.as_array()) else {
        return Vec::new();
    };
    items
        .iter()
        .map(|item| {
            ["image", "banner_image"].iter().find_map(|key| item.get(*key).and_then(|v| v.as_str())).map(str::to_string)
        })
        .collect()
}

/// A stable id for an item with neither id nor link (so it is the same on every fetch).
fn content_hash(title: &str, date: Option<DateTime<Utc>>, summary: &str, content: &SafeHtml) -> String {
    let mut hasher = Sha256::new();
    for part in [title, &date.map(|d| d.to_rfc3339()).unwrap_or_default(), summary, content.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0]);
    }
    let digest = hasher.finalize();
    let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> ReadOptions {
        ReadOptions { timezone: chrono_tz::UTC }
    }

    #[test]
    fn garbage_is_not_a_feed() {
        let error = parse_feed(b"<html><body>hi</body></html>", None, "page.html", &options()).expect_err("not a feed");
        assert!(!error.is_unreachable());
        let message = error.to_string();
        assert!(message.starts_with("page.html is not an RSS, Atom or JSON feed: "), "{message}");
        let error = parse_feed(b"", None, "empty.xml", &options()).expect_err("empty");
        assert!(error.to_string().contains("empty.xml"), "{error}");
        let error =
            parse_feed(b"<rss version=\"2.0\"><channel><item>", None, "cut.xml", &options()).expect_err("truncated");
        assert!(error.to_string().contains("cut.xml"), "{error}");
    }

    #[test]
    fn minimal_rss_item() {
        let xml = br#"<rss version="2.0"><channel><title> My  Blog </title><link>https://blog.example/</link>
            <item><title>
              Hello
            </title><link>/2024/hello?utm_source=rss&amp;id=3</link><pubDate>Tue, 12 Mar 2024 12:00:00 -0400</pubDate>
            <description>&lt;p&gt;Hi &amp;amp; bye&lt;/p&gt;</description><category>News</category><category>news</category></item>
            </channel></rss>"#;
        let articles = parse_feed(xml, None, "x.xml", &options()).expect("parses");
        assert_eq!(articles.len(), 1);
        let article = &articles[0];
        assert_eq!(article.title, "Hello");
        assert_eq!(article.source, "My Blog");
        assert_eq!(article.url.as_ref().map(Url::as_str), Some("https://blog.example/2024/hello?id=3"));
        assert_eq!(article.summary, "Hi & bye");
        assert_eq!(article.tags, vec!["News".to_string()]);
        assert_eq!(article.date.map(|d| d.to_rfc3339()).as_deref(), Some("2024-03-12T16:00:00+00:00"));
        assert_eq!(article.id, "https://blog.example/2024/hello?id=3");
    }

    #[test]
    fn an_entry_base_applies_to_its_content_summary_and_picture() {
        let xml = br#"<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="http://search.yahoo.com/mrss/" xml:base="https://example.org/">
  <title>Nested bases</title>
  <link rel="alternate" href="https://example.org/"/>
  <entry xml:base="https://example.org/blog/2024/03/">
    <title>Spring</title>
    <link rel="alternate" href="spring.html"/>
    <content type="html">&lt;p&gt;&lt;a href="../../other/page.html"&gt;Other&lt;/a&gt;
      &lt;img src="img/cover.jpg" alt="Cover"&gt;&lt;/p&gt;</content>
  </entry>
  <entry xml:base="blog/2024/03/">
    <title>Summer</title>
    <link href="summer.html"/>
    <summary type="html">&lt;a href="../../other/page.html"&gt;Other&lt;/a&gt;</summary>
    <media:thumbnail url="thumbs/summer.jpg"/>
  </entry>
  <entry xml:base="https://example.org/blog/2024/03/">
    <title>Autumn</title>
    <link href="autumn.html"/>
    <content type="xhtml" xml:base="autumn/"><div xmlns="http://www.w3.org/1999/xhtml"><a
      href="../notes.html">Notes</a> <img src="leaf.png" alt="Leaf"/></div></content>
  </entry>
</feed>"#;
        let articles = parse_feed(xml, None, "nested.xml", &options()).expect("parses");
        let summary: Vec<(&str, &str, &str)> = articles
            .iter()
            .map(|article| {
                let url = article.url.as_ref().map_or("", Url::as_str);
                let image = article.image.as_ref().map_or("", |image| image.url.as_str());
                (url, article.content_html.as_str(), image)
            })
            .collect();
        let [spring, summer, autumn] = summary.as_slice() else {
            panic!("three articles: {summary:?}");
        };
        assert_eq!(spring.0, "https://example.org/blog/2024/03/spring.html");
        assert!(spring.1.contains(r#"href="https://example.org/blog/other/page.html""#), "{}", spring.1);
        assert_eq!(spring.2, "https://example.org/blog/2024/03/img/cover.jpg");
        // A relative entry base is relative to the feed's.
        assert_eq!(summer.0, "https://example.org/blog/2024/03/summer.html");
        assert!(summer.1.contains(r#"href="https://example.org/blog/other/page.html""#), "{}", summer.1);
        assert_eq!(summer.2, "https://example.org/blog/2024/03/thumbs/summer.jpg");
        // The content's own base is relative to the entry's.
        assert_eq!(autumn.0, "https://example.org/blog/2024/03/autumn.html");
        assert!(autumn.1.contains(r#"href="https://example.org/blog/2024/03/notes.html""#), "{}", autumn.1);
        assert_eq!(autumn.2, "https://example.org/blog/2024/03/autumn/leaf.png");
    }

    #[test]
    fn items_without_ids_get_stable_ones() {
        let xml = b"<rss version=\"2.0\"><channel><title>t</title><item><description>Just a note</description></item></channel></rss>";
        let first = parse_feed(xml, None, "x.xml", &options()).expect("parses");
        let second = parse_feed(xml, None, "x.xml", &options()).expect("parses");
        assert_eq!(first[0].id, second[0].id);
        assert!(first[0].id.starts_with("sha256:"));
        assert_eq!(first[0].title, "Just a note");
        assert_eq!(first[0].date, None);
    }

    #[test]
    fn tracking_parameters() {
        let url = Url::parse("https://medium.com/@a/post-1?source=rss-abc------2&x=1").expect("valid");
        assert_eq!(strip_tracking_parameters(url).as_str(), "https://medium.com/@a/post-1?x=1");
        let url = Url::parse("https://e.org/p?utm_source=feed").expect("valid");
        assert_eq!(strip_tracking_parameters(url).as_str(), "https://e.org/p");
    }

    #[test]
    fn sloppy_json_feed() {
        let json = br#"{"version":"https://jsonfeed.org/version/1","items":[{"id":7,"url":"https://e.org/7",
            "content_html":"<p>Seven</p>","date_published":"2024-03-12"}]}"#;
        let articles = parse_feed(json, None, "sloppy.json", &options()).expect("parses");
        assert_eq!(articles[0].id, "7");
        assert_eq!(articles[0].source, "sloppy.json");
        assert_eq!(articles[0].title, "Seven");
        let error = parse_feed(b"{\"version\": 3", None, "broken.json", &options()).expect_err("broken");
        assert!(error.to_string().starts_with("broken.json is not an RSS, Atom or JSON feed: "), "{error}");
    }

    #[test]
    fn text_title_and_plain_json_content() {
        let json = br#"{"version":"https://jsonfeed.org/version/1.1","title":"J","items":[
            {"id":"1","content_text":"Line one & <two>\n\nPara","image":"https://e.org/i.png"}]}"#;
        let articles = parse_feed(json, None, "j.json", &options()).expect("parses");
        let article = &articles[0];
        assert_eq!(article.content_html.as_str(), "<p>Line one &amp; &lt;two&gt;</p>\n<p>Para</p>");
        assert_eq!(article.title, "Line one & <two> Para");
        let image = article.image.as_ref().expect("image");
        assert_eq!(image.url.as_str(), "https://e.org/i.png");
        assert_eq!(image.alt, article.title);
    }
}
