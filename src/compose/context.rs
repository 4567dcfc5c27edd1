//! The values templates see, as docs/src/templates.md names them. Dates are RFC 3339 strings in
//! the publication's zone, which tera's `date` filter formats with a strftime pattern.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::{config::Publication, domain::Article};

#[derive(Debug, Clone, Serialize)]
pub struct PublicationContext {
    pub name: String,
    pub from: String,
    pub base_url: String,
    pub timezone: String,
    pub postal_address: Option<String>,
    /// Readers choose editions or topics: the footer links to their preferences.
    pub preferences: bool,
}

impl PublicationContext {
    pub fn new(p: &Publication) -> Self {
        Self {
            name: p.name.clone(),
            from: p.from.to_string(),
            base_url: p.base_url.as_str().trim_end_matches('/').to_owned(),
            timezone: p.timezone.name().to_owned(),
            postal_address: p.postal_address.clone(),
            preferences: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ArticleContext {
    pub title: String,
    pub url: Option<String>,
    pub date: Option<String>,
    pub author: Option<String>,
    pub summary: String,
    pub content_html: String,
    pub image: Option<ImageContext>,
    pub tags: Vec<String>,
    pub source: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImageContext {
    pub url: String,
    pub alt: String,
}

impl ArticleContext {
    pub fn new(a: &Article, tz: Tz) -> Self {
        Self {
            title: a.title.clone(),
            url: a.url.as_ref().map(|u| u.to_string()),
            date: a.date.map(|d| local(d, tz)),
            author: a.author.clone(),
            summary: a.summary.clone(),
            content_html: a.content_html.as_str().to_owned(),
            image: a.image.as_ref().map(|i| ImageContext { url: i.url.to_string(), alt: i.alt.clone() }),
            tags: a.tags.clone(),
            source: a.source.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IssueContext {
    pub number: u32,
    pub date: String,
    /// Filled in once the subject template has been rendered; empty while it renders.
    pub subject: String,
    pub web_url: String,
    pub preheader: String,
    pub articles: Vec<ArticleContext>,
    /// The editor's intro as sanitised HTML and as plain text; empty without one.
    pub intro_html: String,
    pub intro_text: String,
    /// The edition the issue is of; none yet.
    pub edition: Option<String>,
    /// An editor's subject, used as it stands instead of rendering the subject template.
    #[serde(skip)]
    pub fixed_subject: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct SubscriberContext {
    pub email: String,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// The name of their edition (the default one's when they chose none); empty without editions.
    pub edition: String,
    /// The names of the topics they chose; empty for every topic.
    pub topics: Vec<String>,
}

/// The whole context of `digest.html`, `digest.txt` and `subject`.
#[derive(Debug, Clone, Serialize)]
pub struct DigestContext {
    pub publication: PublicationContext,
    pub issue: IssueContext,
    pub subscriber: SubscriberContext,
    pub unsubscribe_url: String,
    /// Their preferences page.
    pub preferences_url: String,
    pub archive_url: String,
    /// True when the issue is rendered as its archive web page, where there is no reader:
    /// templates leave out the reader's parts (the footer's address, the unsubscribe link).
    pub web_page: bool,
}

impl DigestContext {
    pub fn to_tera(&self) -> tera::Context {
        tera::Context::from_serialize(self).expect("a DigestContext serialises to a JSON object")
    }
}

/// A UTC instant as an RFC 3339 string in the publication's zone.
pub fn local(d: DateTime<Utc>, tz: Tz) -> String {
    d.with_timezone(&tz).to_rfc3339()
}

/// The line mail clients show after the subject: the first titles, about 120 characters.
pub fn preheader(articles: &[Article]) -> String {
    let mut out = String::new();
    for a in articles {
        let sep = if out.is_empty() { "" } else { " · " };
        if out.chars().count() + sep.len() + a.title.chars().count() > 120 {
            if out.is_empty() {
                out = a.title.chars().take(117).collect::<String>() + "…";
            }
            break;
        }
        out.push_str(sep);
        out.push_str(&a.title);
    }
    out
}
