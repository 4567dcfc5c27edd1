//! An editor's changes to an issue: what was typed or posted ([`Edit`]), parsed once into typed
//! values ([`Changes`]), and what they make of the issue as it stands (`revise`, no I/O).

use std::collections::HashSet;

use url::Url;

use crate::{
    compose::selection,
    domain::Article,
    store::{IssueRecord, Revision},
};

/// The longest subject taken, in characters.
const MAX_SUBJECT: usize = 250;
/// The longest intro taken, in bytes of Markdown.
const MAX_INTRO: usize = 20_000;

/// An edit as it arrives: every field optional, applied together, once.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct Edit {
    /// One line, non-empty; CR/LF refused.
    pub subject: Option<String>,
    /// Markdown; `Some("")` removes the intro.
    pub intro: Option<String>,
    /// Article URLs to leave out.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Article URLs left out earlier, put back.
    #[serde(default)]
    pub include: Vec<String>,
    /// Article URLs in the wanted order (others keep theirs, after).
    pub order: Option<Vec<String>>,
}

/// An edit parsed: a subject of one line, the intro (`Some(None)` removes it), URLs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    pub subject: Option<String>,
    pub intro: Option<Option<String>>,
    pub exclude: Vec<Url>,
    pub include: Vec<Url>,
    pub order: Option<Vec<Url>>,
}

impl Changes {
    pub fn parse(edit: &Edit) -> Result<Self, String> {
        let subject = match &edit.subject {
            Some(s) if s.contains(['\r', '\n']) => return Err("the subject must be one line".into()),
            Some(s) if s.trim().is_empty() => {
                return Err("the subject is empty; write one, or leave it as it is".into());
            }
            Some(s) if s.chars().count() > MAX_SUBJECT => {
                return Err(format!("the subject is longer than {MAX_SUBJECT} characters"));
            }
            Some(s) if s.chars().any(char::is_control) => {
                return Err("the subject holds a control character".into());
            }
            Some(s) => Some(s.trim().to_owned()),
            None => None,
        };
        let intro = match &edit.intro {
            Some(i) if i.len() > MAX_INTRO => return Err(format!("the intro is longer than {MAX_INTRO} bytes")),
            Some(i) if i.trim().is_empty() => Some(None),
            Some(i) => Some(Some(i.trim_end().to_owned())),
            None => None,
        };
        let urls = |list: &[String]| list.iter().map(|u| url(u)).collect::<Result<Vec<_>, _>>();
        Ok(Self {
            subject,
            intro,
            exclude: urls(&edit.exclude)?,
            include: urls(&edit.include)?,
            order: edit.order.as_deref().map(urls).transpose()?,
        })
    }

    pub fn is_empty(&self) -> bool {
        self.subject.is_none()
            && self.intro.is_none()
            && self.exclude.is_empty()
            && self.include.is_empty()
            && self.order.is_none()
    }
}

fn url(s: &str) -> Result<Url, String> {
    Url::parse(s.trim()).map_err(|e| format!("`{s}` is not an article's URL ({e})"))
}

/// How two links to one article compare: no fragment, no trailing slash.
fn same(a: &Url, b: &Url) -> bool {
    let key = |u: &Url| {
        let mut u = u.clone();
        u.set_fragment(None);
        u.as_str().trim_end_matches('/').to_owned()
    };
    key(a) == key(b)
}

fn position(articles: &[Article], url: &Url) -> Option<usize> {
    articles.iter().position(|a| a.url.as_ref().is_some_and(|u| same(u, url)))
}

/// What `changes` make of `issue`: its content whole, or why they cannot apply.
pub(super) fn revise(issue: &IssueRecord, changes: &Changes) -> Result<Revision, String> {
    let n = issue.number;
    let mut articles = issue.articles.clone();
    let mut left_out = issue.left_out.clone();
    let mut done = Vec::new();
    for url in &changes.exclude {
        match position(&articles, url) {
            Some(i) => left_out.push(articles.remove(i)),
            None if position(&left_out, url).is_some() => {}
            None => return Err(format!("issue {n} carries no article at {url}; `gazette issues show {n}` lists them")),
        }
    }
    if !changes.exclude.is_empty() {
        done.push(format!("left out {}", changes.exclude.len()));
    }
    for url in &changes.include {
        match position(&left_out, url) {
            Some(i) => articles.push(left_out.remove(i)),
            None if position(&articles, url).is_some() => {}
            None => return Err(format!("issue {n} left out no article at {url}")),
        }
    }
    if !changes.include.is_empty() {
        done.push(format!("put back {}", changes.include.len()));
    }
    if let Some(order) = &changes.order {
        let mut first = Vec::with_capacity(order.len());
        for url in order {
            match position(&articles, url) {
                Some(i) => first.push(articles.remove(i)),
                None if position(&left_out, url).is_some() => {
                    return Err(format!("the article at {url} is left out of issue {n}; put it back to order it"));
                }
                None => {
                    return Err(format!("issue {n} carries no article at {url}; `gazette issues show {n}` lists them"));
                }
            }
        }
        first.append(&mut articles);
        articles = first;
        done.push("reordered".into());
    }
    if articles.is_empty() {
        return Err(format!("that would leave issue {n} without an article; keep at least one"));
    }
    let subject = match &changes.subject {
        Some(s) => {
            done.push(format!("subject: {s}"));
            Some(s.clone())
        }
        None => issue.subject_edited.then(|| issue.subject.clone()),
    };
    let intro = match &changes.intro {
        Some(intro) => {
            done.push(if intro.is_some() { "intro".into() } else { "intro removed".into() });
            intro.clone()
        }
        None => issue.intro.clone(),
    };
    let identities: Vec<String> =
        articles.iter().flat_map(selection::keys).collect::<HashSet<_>>().into_iter().collect();
    Ok(Revision { subject, intro, articles, left_out, identities, detail: done.join("; ") })
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::{IssueStatus, SafeHtml};

    fn article(n: u32) -> Article {
        Article {
            id: format!("a{n}"),
            title: format!("Article {n}"),
            url: Some(Url::parse(&format!("https://example.org/{n}/")).expect("url")),
            date: None,
            author: None,
            summary: String::new(),
            content_html: SafeHtml::default(),
            image: None,
            tags: Vec::new(),
            source: "s".into(),
            source_id: "s".into(),
            draft: false,
        }
    }

    fn issue() -> IssueRecord {
        IssueRecord {
            number: 4,
            status: IssueStatus::Draft,
            subject: "Mirror".into(),
            date: Utc::now(),
            articles: (1..=4).map(article).collect(),
            slot: None,
            created_at: Utc::now(),
            finished_at: None,
            note: None,
            counts: Default::default(),
            reports: Default::default(),
            intro: None,
            left_out: Vec::new(),
            subject_edited: false,
            send_at: None,
            edition: None,
        }
    }

    fn titles(a: &[Article]) -> Vec<&str> {
        a.iter().map(|a| a.title.as_str()).collect()
    }

    fn changes(edit: Edit) -> Changes {
        Changes::parse(&edit).expect("parses")
    }

    #[test]
    fn left_out_reordered_and_put_back_articles_land_where_the_editor_put_them() {
        let edit = Edit {
            exclude: vec!["https://example.org/2".into()],
            order: Some(vec!["https://example.org/4/".into(), "https://example.org/3/#top".into()]),
            ..Edit::default()
        };
        let r = revise(&issue(), &changes(edit)).expect("applies");
        assert_eq!(titles(&r.articles), ["Article 4", "Article 3", "Article 1"]);
        assert_eq!(titles(&r.left_out), ["Article 2"]);
        assert!(!r.identities.iter().any(|i| i.contains("/2")));

        let mut again = issue();
        again.articles = r.articles;
        again.left_out = r.left_out;
        let put_back = Edit { include: vec!["https://example.org/2/".into()], ..Edit::default() };
        let r = revise(&again, &changes(put_back)).expect("applies");
        assert_eq!(titles(&r.articles), ["Article 4", "Article 3", "Article 1", "Article 2"]);
        assert!(r.left_out.is_empty());
    }

    #[test]
    fn an_unknown_url_a_bad_subject_or_no_article_left_is_refused() {
        let unknown = Edit { exclude: vec!["https://example.org/9/".into()], ..Edit::default() };
        assert!(revise(&issue(), &changes(unknown)).expect_err("refused").contains("no article at"));
        for subject in ["two\nlines", "  ", "bell\u{7}"] {
            let edit = Edit { subject: Some(subject.into()), ..Edit::default() };
            assert!(Changes::parse(&edit).is_err(), "{subject:?}");
        }
        let all = Edit { exclude: (1..=4).map(|n| format!("https://example.org/{n}/")).collect(), ..Edit::default() };
        assert!(revise(&issue(), &changes(all)).is_err());
    }

    #[test]
    fn an_empty_intro_removes_it_and_an_edited_subject_stays_edited() {
        let mut edited = issue();
        edited.intro = Some("Hello".into());
        edited.subject = "Mine".into();
        edited.subject_edited = true;
        let r = revise(&edited, &changes(Edit { intro: Some(String::new()), ..Edit::default() })).expect("applies");
        assert_eq!(r.intro, None);
        assert_eq!(r.subject.as_deref(), Some("Mine"));
    }
}
