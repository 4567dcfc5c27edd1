//! Which articles the next issue carries, and why each other one is left out. Pure: the caller
//! passes the articles, the clock's "now" and what earlier issues carried.

use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;
use url::Url;

use crate::{config::Selection as Settings, domain::Article};

/// Why an article is not in the issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    Draft,
    TooOld,
    NotYetPublished,
    ExcludedTag,
    NotIncludedTag,
    AlreadyCarried,
    Duplicate,
    OverMaxItems,
}

impl Reason {
    pub fn describe(self, settings: &Settings) -> String {
        match self {
            Self::Draft => "draft".into(),
            Self::TooOld => format!("older than max_age ({})", settings.max_age),
            Self::NotYetPublished => "dated after the issue date".into(),
            Self::ExcludedTag => "has a tag in exclude_tags".into(),
            Self::NotIncludedTag => "has no tag in include_tags".into(),
            Self::AlreadyCarried => "already carried by an earlier issue".into(),
            Self::Duplicate => "the same article from another source".into(),
            Self::OverMaxItems => format!("over max_items ({})", settings.max_items),
        }
    }
}

#[derive(Debug, Clone)]
pub struct LeftOut {
    pub article: Article,
    pub reason: Reason,
}

/// The outcome: the articles carried, newest first, each with the date it counts as
/// published, and the ones left out.
#[derive(Debug, Clone, Default)]
pub struct Selected {
    pub articles: Vec<Article>,
    pub left_out: Vec<LeftOut>,
}

/// The identity an article is recorded under (when it was first seen, and, with [`keys`], which
/// issue carried it): the link where there is one (without fragment and trailing slash), else
/// the source's id.
pub fn identity(article: &Article) -> String {
    match &article.url {
        Some(u) => {
            let mut u = u.clone();
            u.set_fragment(None);
            let s = u.as_str().trim_end_matches('/').to_owned();
            format!("url:{s}")
        }
        None => format!("id:{}:{}", article.source_id, article.id),
    }
}

/// Every key that makes two articles the same article: its [`identity`], and its id where the id
/// names the article beyond its own source. Two articles sharing any key are one article.
///
/// Only an id that is a URI (`https://…/?p=42`, `tag:…`, `urn:uuid:…`, as Atom requires and RSS
/// guids mostly are) is compared across sources: JSON Feed ids need only be unique within their
/// feed, and two feeds both numbering their items `1`, `2`, `3` carry different articles.
pub fn keys(article: &Article) -> Vec<String> {
    let mut keys = vec![identity(article)];
    if let Some(id) = global_id(article) {
        keys.push(id);
    }
    keys
}

fn global_id(article: &Article) -> Option<String> {
    Url::parse(&article.id).is_ok().then(|| format!("id:{}", article.id))
}

/// Ids that one source gives to articles with different links (a feed that puts its own URL in
/// every guid): such an id identifies nothing, and comparing it would make one article of many.
fn ambiguous_ids<'a>(articles: impl Iterator<Item = &'a Article>) -> HashSet<String> {
    let mut first_identity: HashMap<(&str, &str), String> = HashMap::new();
    let mut ambiguous = HashSet::new();
    for article in articles {
        let identity = identity(article);
        match first_identity.entry((article.source_id.as_str(), article.id.as_str())) {
            Entry::Occupied(first) if *first.get() != identity => {
                ambiguous.insert(article.id.clone());
            }
            Entry::Occupied(_) => {}
            Entry::Vacant(slot) => {
                slot.insert(identity);
            }
        }
    }
    ambiguous
}

/// Chooses the issue's articles. `carried` holds the [`keys`] of articles earlier issues carried
/// (used when `since_last_issue`); `first_seen` gives the date of an undated article.
///
/// Articles that share a link or an id (see [`keys`]) are one article, wherever they come from:
/// the newest copy is kept (by its date, or when it was first seen), and between copies of the
/// same date the one from the source listed first, so the same sources give the same choice.
/// The others are left out as [`Reason::Duplicate`].
pub fn select(
    articles: Vec<Article>,
    settings: &Settings,
    now: DateTime<Utc>,
    carried: &HashSet<String>,
    first_seen: impl Fn(&Article) -> DateTime<Utc>,
) -> Selected {
    let oldest = now - settings.max_age.chrono();
    let wanted = |tags: &[String], list: &[String]| tags.iter().any(|t| list.iter().any(|w| w.eq_ignore_ascii_case(t)));
    let ambiguous = ambiguous_ids(articles.iter());
    let mut dated: Vec<(DateTime<Utc>, Article)> = articles
        .into_iter()
        .map(|a| {
            let d = a.date.unwrap_or_else(|| first_seen(&a));
            (d, a)
        })
        .collect();
    // Newest first; ties keep the sources' order, so the result is stable.
    dated.sort_by_key(|d| std::cmp::Reverse(d.0));

    let mut out = Selected::default();
    let mut seen = HashSet::new();
    for (date, mut article) in dated {
        let mut keys = keys(&article);
        if ambiguous.contains(&article.id) {
            // The identity alone, which `keys` lists first.
            keys.truncate(1);
        }
        let reason = if article.draft {
            Some(Reason::Draft)
        } else if seen_before(&mut seen, &keys) {
            Some(Reason::Duplicate)
        } else if date > now {
            Some(Reason::NotYetPublished)
        } else if date < oldest {
            Some(Reason::TooOld)
        } else if wanted(&article.tags, &settings.exclude_tags) {
            Some(Reason::ExcludedTag)
        } else if !settings.include_tags.is_empty() && !wanted(&article.tags, &settings.include_tags) {
            Some(Reason::NotIncludedTag)
        } else if settings.since_last_issue && keys.iter().any(|key| carried.contains(key)) {
            Some(Reason::AlreadyCarried)
        } else if out.articles.len() >= settings.max_items {
            Some(Reason::OverMaxItems)
        } else {
            None
        };
        article.date = Some(date);
        match reason {
            Some(reason) => out.left_out.push(LeftOut { article, reason }),
            None => out.articles.push(article),
        }
    }
    out
}

/// Remembers every key, a duplicate's too (a third copy that shares only its link with the
/// second is still a copy of the first); true when one of them was seen before.
fn seen_before(seen: &mut HashSet<String>, keys: &[String]) -> bool {
    keys.iter().fold(false, |before, key| !seen.insert(key.clone()) | before)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::{Duration, SafeHtml};

    fn article(title: &str, url: &str, day: u32, tags: &[&str]) -> Article {
        Article {
            id: title.into(),
            title: title.into(),
            url: Some(url.parse().expect("test url")),
            date: Some(Utc.with_ymd_and_hms(2024, 3, day, 12, 0, 0).single().expect("date")),
            author: None,
            summary: String::new(),
            content_html: SafeHtml::default(),
            image: None,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            source: "s".into(),
            source_id: "s".into(),
            draft: false,
        }
    }

    fn settings() -> Settings {
        Settings {
            max_age: Duration::from_secs(7 * 86_400),
            max_items: 10,
            since_last_issue: true,
            include_tags: vec![],
            exclude_tags: vec![],
            send_when_empty: false,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 3, 16, 16, 0, 0).single().expect("date")
    }

    fn run(articles: Vec<Article>, s: &Settings, carried: &HashSet<String>) -> Selected {
        select(articles, s, now(), carried, |_| now())
    }

    #[test]
    fn keeps_recent_newest_first_and_says_why_others_are_out() {
        let mut draft = article("draft", "https://e.org/d", 15, &[]);
        draft.draft = true;
        let s = run(
            vec![
                article("old", "https://e.org/old", 1, &[]),
                article("b", "https://e.org/b", 12, &[]),
                article("a", "https://e.org/a", 14, &[]),
                article("future", "https://e.org/f", 20, &[]),
                draft,
            ],
            &settings(),
            &HashSet::new(),
        );
        let titles: Vec<_> = s.articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["a", "b"]);
        let reasons: Vec<_> = s.left_out.iter().map(|l| (l.article.title.as_str(), l.reason)).collect();
        assert!(reasons.contains(&("old", Reason::TooOld)));
        assert!(reasons.contains(&("future", Reason::NotYetPublished)));
        assert!(reasons.contains(&("draft", Reason::Draft)));
    }

    #[test]
    fn the_same_link_from_two_sources_appears_once() {
        let mut twin = article("a again", "https://e.org/a/#top", 13, &[]);
        twin.source = "other".into();
        twin.source_id = "other".into();
        let s = run(vec![article("a", "https://e.org/a", 14, &[]), twin], &settings(), &HashSet::new());
        assert_eq!(s.articles.len(), 1);
        assert_eq!(s.left_out[0].reason, Reason::Duplicate);
    }

    #[test]
    fn the_same_id_from_two_sources_appears_once() {
        let mut original = article("a", "https://blog.example/a", 13, &[]);
        original.id = "tag:blog.example,2024:a".into();
        let mut copy = article("a, republished", "https://planet.example/blog/a", 14, &[]);
        copy.id = original.id.clone();
        copy.source = "planet".into();
        copy.source_id = "planet".into();
        let s = run(vec![original.clone(), copy.clone()], &settings(), &HashSet::new());
        let kept: Vec<_> = s.articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(kept, ["a, republished"], "the newest copy wins");
        assert_eq!(s.left_out[0].reason, Reason::Duplicate);

        // Of copies dated alike, the one from the source listed first.
        copy.date = original.date;
        let s = run(vec![copy.clone(), original.clone()], &settings(), &HashSet::new());
        assert_eq!(s.articles[0].title, "a, republished");
        let s = run(vec![original, copy], &settings(), &HashSet::new());
        assert_eq!(s.articles[0].title, "a");
    }

    #[test]
    fn copies_sharing_a_link_or_an_id_with_a_copy_are_one_article() {
        let mut first = article("first", "https://e.org/1", 14, &[]);
        first.id = "urn:uuid:1".into();
        let mut second = article("second", "https://mirror.example/1", 13, &[]);
        second.id = "urn:uuid:1".into();
        second.source = "mirror".into();
        second.source_id = "mirror".into();
        let mut third = article("third", "https://mirror.example/1", 12, &[]);
        third.id = "urn:uuid:3".into();
        third.source = "another".into();
        third.source_id = "another".into();
        let s = run(vec![third, second, first], &settings(), &HashSet::new());
        assert_eq!(s.articles.len(), 1);
        assert_eq!(s.articles[0].title, "first");
        assert!(s.left_out.iter().all(|l| l.reason == Reason::Duplicate));
    }

    #[test]
    fn ids_compared_across_sources_are_uris_only() {
        // JSON Feed ids are unique within their feed only.
        let mut one = article("one", "https://a.example/1", 14, &[]);
        one.id = "1".into();
        let mut other = article("other", "https://b.example/1", 14, &[]);
        other.id = "1".into();
        other.source = "b".into();
        other.source_id = "b".into();
        assert_eq!(run(vec![one, other], &settings(), &HashSet::new()).articles.len(), 2);
    }

    #[test]
    fn an_id_one_source_gives_to_several_links_identifies_nothing() {
        let items: Vec<Article> = (10..13)
            .map(|day| {
                let mut a = article(&format!("d{day}"), &format!("https://e.org/{day}"), day, &[]);
                a.id = "https://e.org/".into();
                a
            })
            .collect();
        let s = run(items.clone(), &settings(), &HashSet::new());
        assert_eq!(s.articles.len(), 3);
        let carried = HashSet::from_iter(keys(&items[0]));
        let s = run(items, &settings(), &carried);
        assert_eq!(s.articles.len(), 2, "only the carried one is left out");
    }

    #[test]
    fn since_last_issue_knows_a_carried_article_by_its_id() {
        let mut carried_copy = article("a", "https://blog.example/a", 10, &[]);
        carried_copy.id = "https://blog.example/?p=42".into();
        let carried = HashSet::from_iter(keys(&carried_copy));
        let mut copy = article("a elsewhere", "https://planet.example/a", 14, &[]);
        copy.id = carried_copy.id.clone();
        copy.source = "planet".into();
        copy.source_id = "planet".into();
        let s = run(vec![copy], &settings(), &carried);
        assert_eq!(s.left_out[0].reason, Reason::AlreadyCarried);
    }

    #[test]
    fn max_items_keeps_the_newest() {
        let mut st = settings();
        st.max_items = 2;
        let s = run(
            (10..15).map(|d| article(&format!("d{d}"), &format!("https://e.org/{d}"), d, &[])).collect(),
            &st,
            &HashSet::new(),
        );
        let titles: Vec<_> = s.articles.iter().map(|a| a.title.as_str()).collect();
        assert_eq!(titles, ["d14", "d13"]);
        assert_eq!(s.left_out.iter().filter(|l| l.reason == Reason::OverMaxItems).count(), 3);
    }

    #[test]
    fn tag_filters_ignore_case() {
        let mut st = settings();
        st.exclude_tags = vec!["Sport".into()];
        st.include_tags = vec!["news".into(), "sport".into()];
        let s = run(
            vec![
                article("n", "https://e.org/n", 14, &["News"]),
                article("s", "https://e.org/s", 14, &["sport"]),
                article("x", "https://e.org/x", 14, &[]),
            ],
            &st,
            &HashSet::new(),
        );
        assert_eq!(s.articles.len(), 1);
        assert_eq!(s.articles[0].title, "n");
    }

    #[test]
    fn since_last_issue_leaves_out_what_was_carried() {
        let a = article("a", "https://e.org/a", 14, &[]);
        let carried = HashSet::from([identity(&a)]);
        let s = run(vec![a.clone()], &settings(), &carried);
        assert_eq!(s.left_out[0].reason, Reason::AlreadyCarried);
        let mut st = settings();
        st.since_last_issue = false;
        assert_eq!(run(vec![a], &st, &carried).articles.len(), 1);
    }

    #[test]
    fn undated_articles_count_from_first_seen() {
        let mut a = article("undated", "https://e.org/u", 1, &[]);
        a.date = None;
        let s = run(vec![a], &settings(), &HashSet::new());
        assert_eq!(s.articles[0].date, Some(now()));
    }
}
