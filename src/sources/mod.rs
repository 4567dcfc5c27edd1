//! Sources → articles: the edge where the outside world's feeds and the publisher's Markdown
//! files become [`Article`]s the rest of gazette can trust (sanitised HTML, plain-text
//! summaries, absolute links, dates in UTC, titles never empty). Nothing beyond this module
//! parses a feed, decodes a character set or sees unsanitised HTML, and this module knows
//! nothing of issues, selection, templates or the store.
//!
//! [`read`] reads one configured source. The pieces are public for callers that need them
//! separately: [`Fetcher`] (HTTP with conditional GET, for a caching caller), [`parse_feed`]
//! (pure, no I/O) and [`sanitize::sanitize_html`].

mod dates;
mod decode;
mod error;
mod feed;
mod fetch;
mod folder;
mod redirects;
pub mod sanitize;
mod text;
mod xml_base;

#[cfg(test)]
mod fixture_tests;

use std::path::PathBuf;

pub use dates::{parse_feed_date, parse_front_matter_date};
pub use error::SourceError;
pub use feed::parse_feed;
pub use fetch::{CachedFeed, FetchOutcome, Fetcher};
pub use folder::parse_markdown_article;
pub use text::SUMMARY_CHARS;

/// Markdown written by a publisher (an editor's intro) as the digest shows it: HTML made and
/// sanitised as a Markdown article's body is, and its plain text, a paragraph a block.
pub fn markdown(markdown: &str) -> (crate::domain::SafeHtml, String) {
    let html = sanitize::sanitize_html(&folder::markdown_to_html(markdown), None);
    let text = markdown
        .split("\n\n")
        .map(|block| text::safe_html_to_text(&sanitize::sanitize_html(&folder::markdown_to_html(block), None)))
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    (html, text)
}

use crate::domain::Article;

/// Where a feed lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    Url(url::Url),
    File(PathBuf),
}

/// A feed source: RSS 0.9x/1.0/2.0, Atom 1.0 or JSON Feed 1.x, by URL or file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedSource {
    pub location: Location,
    /// When true, a failure to read it is a warning and the issue goes on without it.
    pub optional: bool,
    /// What readers see as its articles' source, in place of the feed's title.
    pub name: Option<String>,
}

/// A folder of `*.md` files with front matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderSource {
    pub path: PathBuf,
    /// What readers see as its articles' source.
    pub name: String,
}

/// One `[[source]]` of the publication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Feed(FeedSource),
    Folder(FolderSource),
}

impl Source {
    /// True when a failure to read it should not stop the issue. Folders are never optional.
    pub fn optional(&self) -> bool {
        match self {
            Source::Feed(feed) => feed.optional,
            Source::Folder(_) => false,
        }
    }

    /// Gives `articles`, read from this source, the name readers see, where one is set. Their
    /// `source_id` stays the source's own label, so a name can change without making them new.
    pub fn name_articles(&self, articles: &mut [Article]) {
        let name = match self {
            Source::Feed(feed) => feed.name.as_deref(),
            Source::Folder(folder) => Some(folder.name.as_str()),
        };
        if let Some(name) = name {
            for a in articles {
                a.source = name.to_owned();
            }
        }
    }

    /// The URL or path, for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Feed(FeedSource { location: Location::Url(url), .. }) => url.to_string(),
            Source::Feed(FeedSource { location: Location::File(path), .. }) => path.display().to_string(),
            Source::Folder(folder) => folder.path.display().to_string(),
        }
    }
}

/// How to read sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadOptions {
    /// The publication's time zone: wall times without a zone (folder dates such as
    /// `2024-03-12`, feed dates such as `2018-01-06T08:00`) are read in it.
    pub timezone: chrono_tz::Tz,
}

impl Default for ReadOptions {
    fn default() -> Self {
        Self { timezone: chrono_tz::UTC }
    }
}

/// Reads one source: fetches (URL) or reads (file) a feed and parses it, or reads a folder of
/// Markdown files. Articles come in the source's order.
pub async fn read(source: &Source, fetcher: &Fetcher, options: &ReadOptions) -> Result<Vec<Article>, SourceError> {
    let mut articles = read_unnamed(source, fetcher, options).await?;
    source.name_articles(&mut articles);
    Ok(articles)
}

async fn read_unnamed(source: &Source, fetcher: &Fetcher, options: &ReadOptions) -> Result<Vec<Article>, SourceError> {
    match source {
        Source::Feed(FeedSource { location: Location::Url(url), .. }) => {
            let body = match fetcher.fetch(url, None).await? {
                FetchOutcome::Fresh(cached) => cached.body,
                // Without validators a server has no business answering 304.
                FetchOutcome::NotModified => {
                    return Err(SourceError::HttpStatus {
                        url: url.to_string(),
                        status: 304,
                        reason: " Not Modified".into(),
                    });
                }
            };
            let label = url.host_str().unwrap_or("feed").to_string();
            parse_feed(&body, Some(url), &label, options)
        }
        Source::Feed(FeedSource { location: Location::File(path), .. }) => {
            let bytes =
                tokio::fs::read(path).await.map_err(|source| SourceError::ReadFile { path: path.clone(), source })?;
            let label = path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
                .unwrap_or_else(|| path.display().to_string());
            parse_feed(&bytes, None, &label, options).map_err(|error| error.at_location(path.display().to_string()))
        }
        Source::Folder(folder) => folder::read_folder(folder, options).await,
    }
}

/// Installs ring as rustls' process-wide crypto provider; idempotent. main() and tests call it
/// once; [`Fetcher`] calls it too, since reqwest cannot build a client without one.
pub fn install_crypto_provider() {
    // An error only means a provider is installed already, which is what we want.
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_intro_is_markdown_sanitised_like_a_body_with_its_paragraphs_in_text() {
        let (html, text) = markdown(
            "Hello *all* <script>alert(1)</script>\n\n[More](javascript:alert(2)) and <b onclick=\"x()\">bold</b>",
        );
        assert!(html.as_str().contains("<em>all</em>"), "{}", html.as_str());
        for bad in ["<script", "javascript:", "onclick"] {
            assert!(!html.as_str().contains(bad), "{bad} in {}", html.as_str());
        }
        assert_eq!(text, "Hello all\n\nMore and bold");
    }

    #[test]
    fn describe_and_optional() {
        let feed = Source::Feed(FeedSource {
            location: Location::Url(url::Url::parse("https://e.org/feed").expect("valid")),
            optional: true,
            name: None,
        });
        assert_eq!(feed.describe(), "https://e.org/feed");
        assert!(feed.optional());
        let folder = Source::Folder(FolderSource { path: PathBuf::from("articles"), name: "Pub".into() });
        assert_eq!(folder.describe(), "articles");
        assert!(!folder.optional());
    }

    #[test]
    fn crypto_provider_is_idempotent() {
        install_crypto_provider();
        install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
    }

    #[tokio::test]
    async fn missing_feed_file_is_unreachable() {
        let fetcher = Fetcher::new().expect("client");
        let source = Source::Feed(FeedSource {
            location: Location::File(PathBuf::from("/nonexistent/feed.xml")),
            optional: false,
            name: None,
        });
        let error = read(&source, &fetcher, &ReadOptions::default()).await.expect_err("missing");
        assert!(error.is_unreachable());
        assert!(error.to_string().starts_with("/nonexistent/feed.xml: cannot read it"));
    }

    #[tokio::test]
    async fn malformed_feed_file_names_its_path() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("broken.xml");
        std::fs::write(&path, "<rss version=\"2.0\"><channel><item>").expect("write");
        let fetcher = Fetcher::new().expect("client");
        let source = Source::Feed(FeedSource { location: Location::File(path.clone()), optional: false, name: None });
        let error = read(&source, &fetcher, &ReadOptions::default()).await.expect_err("malformed");
        assert!(!error.is_unreachable());
        assert!(
            error.to_string().starts_with(&format!("{} is not an RSS, Atom or JSON feed", path.display())),
            "{error}"
        );
    }
}
