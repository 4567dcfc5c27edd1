//! One item of a source, after parsing and sanitising.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use url::Url;

use super::SafeHtml;

/// An article as every source yields it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Article {
    /// A stable identity within its source: the feed's id or the link, or the file name.
    pub id: String,
    /// Never empty: sources fall back to a date or the first words of the body.
    pub title: String,
    /// Absolute http(s) link, where the source gives one.
    pub url: Option<Url>,
    /// When it was published (else updated). `None` when the source gives no date: the
    /// selection then counts it as published when gazette first saw it.
    pub date: Option<DateTime<Utc>>,
    pub author: Option<String>,
    /// Plain text, at most about 300 characters.
    pub summary: String,
    pub content_html: SafeHtml,
    pub image: Option<ArticleImage>,
    pub tags: Vec<String>,
    /// Where it came from, as readers see it: the feed's title or the `[[source]] name`; for a
    /// folder, that name or the publication's.
    pub source: String,
    /// Where it came from, as its identity knows it (see `compose::selection::identity`): the
    /// feed's title, else its host or file name, or the folder's name. Unlike `source`, no
    /// setting changes it, so renaming a source never makes its articles new.
    #[serde(default)]
    pub source_id: String,
    /// Drafts are read so `articles --all` can show them, and never selected.
    pub draft: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArticleImage {
    pub url: Url,
    /// Never empty: falls back to the article's title.
    pub alt: String,
}
