//! A publication made ready to work: its config, templates, link secret and sources, and the
//! one path from "now" to the next issue (read the sources, select, render once per issue).
//! Commands, the scheduler and the web routes go through here; it is where sources, compose and
//! tokens meet.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use crate::{
    compose::{
        self, MessageSettings, PreparedIssue, Recipient, Selected, TemplateSet,
        context::{self, ArticleContext, DigestContext, IssueContext, PublicationContext, SubscriberContext},
        message,
    },
    config::{Config, Edition, FeedLocation, LinkSecret, SourceSetting},
    domain::{Article, EmailAddress, MessageId, MessageIdError},
    sources::{self, Fetcher, ReadOptions, Source, SourceError},
    tokens::{Claims, ReturnToken, Signer},
};

/// What earlier issues leave behind for the next one. Without a store: issue 1, nothing carried.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub next_number: u32,
    pub carried: HashSet<String>,
    /// When undated articles were first seen, by identity.
    pub first_seen: HashMap<String, DateTime<Utc>>,
}

impl History {
    pub fn first() -> Self {
        Self { next_number: 1, carried: HashSet::new(), first_seen: HashMap::new() }
    }
}

/// A problem reading one source that did not stop the issue (an optional source).
#[derive(Debug)]
pub struct SourceWarning {
    pub source: String,
    pub error: SourceError,
}

pub struct Publication {
    pub config: Config,
    pub templates: TemplateSet,
    pub signer: Signer,
    fetcher: Fetcher,
}

/// The articles read and the selection made for one issue.
pub struct Draft {
    pub number: u32,
    pub date: DateTime<Utc>,
    pub selected: Selected,
    pub warnings: Vec<SourceWarning>,
    /// What an editor made of it: intro and subject.
    pub review: Reviewed,
    /// The edition it is an issue of; `None` without `[[edition]]`.
    pub edition: Option<Edition>,
    /// With editions: articles within the longest edition's `max_age` that this selection did
    /// not take, newest first, each with when it counts as published. A reader whose last copy
    /// came before one of them (they switched editions) gets it in this issue.
    pub beyond: Vec<(DateTime<Utc>, Article)>,
}

/// What an editor adds to an issue: an intro (Markdown) and a subject of their own.
#[derive(Debug, Clone, Default)]
pub struct Reviewed {
    pub intro: Option<String>,
    /// Used as it stands instead of the subject template.
    pub subject: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PublicationError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Template(#[from] compose::TemplateError),
    #[error(transparent)]
    Render(#[from] compose::RenderError),
}

impl Publication {
    pub async fn open(config: Config, secret: LinkSecret) -> Result<Self, PublicationError> {
        let templates = TemplateSet::load(config.templates_dir.as_deref(), &config.publication.subject).await?;
        Ok(Self { config, templates, signer: Signer::new(secret), fetcher: Fetcher::new()? })
    }

    pub fn sources(&self) -> Vec<Source> {
        source_list(&self.config)
    }

    pub fn fetcher(&self) -> &Fetcher {
        &self.fetcher
    }

    /// Reads every source, in order. A source that fails stops here unless it is optional.
    pub async fn read_articles(&self) -> Result<(Vec<Article>, Vec<SourceWarning>), SourceError> {
        let options = ReadOptions { timezone: self.config.publication.timezone };
        let mut articles = Vec::new();
        let mut warnings = Vec::new();
        for source in self.sources() {
            match sources::read(&source, &self.fetcher, &options).await {
                Ok(mut a) => articles.append(&mut a),
                Err(error) if source.optional() => warnings.push(SourceWarning { source: source.describe(), error }),
                Err(e) => return Err(e),
            }
        }
        Ok((articles, warnings))
    }

    /// Reads the sources and chooses what issue `history.next_number` carries as of `now`.
    /// An undated article counts as published when `history.first_seen` says it was first seen,
    /// else now.
    pub async fn draft(
        &self,
        edition: Option<&Edition>,
        now: DateTime<Utc>,
        history: &History,
    ) -> Result<Draft, SourceError> {
        let (articles, warnings) = self.read_articles().await?;
        Ok(self.select(edition, articles, warnings, now, history))
    }

    /// Chooses among articles already read, for `edition`'s issue (its `max_age` in place of
    /// `[selection]`'s).
    pub fn select(
        &self,
        edition: Option<&Edition>,
        articles: Vec<Article>,
        warnings: Vec<SourceWarning>,
        now: DateTime<Utc>,
        history: &History,
    ) -> Draft {
        let mut settings = std::borrow::Cow::Borrowed(&self.config.selection);
        if let Some(e) = edition {
            settings.to_mut().max_age = e.max_age;
        }
        let published = |a: &Article| history.first_seen.get(&compose::selection::identity(a)).copied().unwrap_or(now);
        let longest = self.config.editions.iter().map(|e| e.max_age).max().filter(|_| edition.is_some());
        let all = longest.map(|_| articles.clone());
        let selected = compose::select(articles, &settings, now, &history.carried, published);
        let beyond = match (longest, all) {
            (Some(longest), Some(all)) => {
                let mut wide = settings.clone().into_owned();
                wide.max_age = longest;
                let mine: HashSet<String> = selected.articles.iter().flat_map(compose::selection::keys).collect();
                compose::select(all, &wide, now, &HashSet::new(), published)
                    .articles
                    .into_iter()
                    .filter(|a| !compose::selection::keys(a).iter().any(|k| mine.contains(k)))
                    .map(|a| (a.date.unwrap_or_else(|| published(&a)), a))
                    .collect()
            }
            _ => Vec::new(),
        };
        Draft {
            number: history.next_number,
            date: now,
            selected,
            warnings,
            review: Reviewed::default(),
            edition: edition.cloned(),
            beyond,
        }
    }

    /// Why no issue is made of `draft`, when none is: it carries no article and
    /// `[selection] send_when_empty` is off.
    pub fn skip_reason(&self, draft: &Draft) -> Option<String> {
        if !draft.selected.articles.is_empty() || self.config.selection.send_when_empty {
            return None;
        }
        let carried = draft.selected.left_out.iter().any(|l| l.reason == compose::selection::Reason::AlreadyCarried);
        Some(if carried {
            "nothing new since the last issue".to_owned()
        } else {
            let date = draft.date.with_timezone(&self.config.publication.timezone);
            format!(
                "no article within max_age ({}) of {}",
                self.config.selection.max_age,
                date.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
            )
        })
    }

    /// The draft of an issue already created: its frozen articles, its date.
    pub fn frozen(&self, number: u32, date: DateTime<Utc>, articles: Vec<Article>) -> Draft {
        Draft {
            number,
            date,
            selected: Selected { articles, left_out: Vec::new() },
            warnings: Vec::new(),
            review: Reviewed::default(),
            edition: None,
            beyond: Vec::new(),
        }
    }

    /// Renders the issue once; each reader's copy is then `PreparedIssue::personalize`.
    pub fn prepare(&self, draft: &Draft) -> Result<PreparedIssue, PublicationError> {
        Ok(PreparedIssue::prepare(&self.templates, self.context(draft))?)
    }

    pub fn context(&self, draft: &Draft) -> DigestContext {
        let p = &self.config.publication;
        let tz = p.timezone;
        let (intro_html, intro_text) = match draft.review.intro.as_deref().filter(|i| !i.trim().is_empty()) {
            Some(intro) => {
                let (html, text) = sources::markdown(intro);
                (html.as_str().to_owned(), text)
            }
            None => (String::new(), String::new()),
        };
        let mut publication = PublicationContext::new(p);
        publication.preferences = !self.config.editions.is_empty() || !self.config.topics.is_empty();
        DigestContext {
            publication,
            issue: IssueContext {
                number: draft.number,
                date: context::local(draft.date, tz),
                subject: String::new(),
                web_url: self.link(&format!("archive/{}", draft.number)),
                preheader: context::preheader(&draft.selected.articles),
                articles: draft.selected.articles.iter().map(|a| ArticleContext::new(a, tz)).collect(),
                intro_html,
                intro_text,
                edition: draft.edition.as_ref().map(|e| e.name.to_string()),
                fixed_subject: draft.review.subject.clone(),
            },
            subscriber: SubscriberContext::default(),
            unsubscribe_url: String::new(),
            preferences_url: String::new(),
            archive_url: self.link("archive"),
            web_page: false,
        }
    }

    /// An issue that went out, as its archive web page: the digest's HTML as it was mailed,
    /// with the subject it was sent with and no reader in it (`web_page` is set, the reader's
    /// values are empty and the unsubscribe link leads to the publication's page).
    pub fn archive_page(
        &self,
        number: u32,
        date: DateTime<Utc>,
        subject: &str,
        articles: Vec<Article>,
    ) -> Result<String, PublicationError> {
        let mut ctx = self.context(&self.frozen(number, date, articles));
        ctx.issue.subject = subject.to_owned();
        ctx.unsubscribe_url = self.link("");
        Ok(compose::render::web_page(&self.templates, ctx)?)
    }

    /// An absolute link under `base_url`.
    pub fn link(&self, path: &str) -> String {
        self.config.publication.link(path)
    }

    pub fn unsubscribe_url(&self, email: &EmailAddress) -> String {
        let token = self.signer.sign(&Claims::unsubscribe(email.clone()));
        self.link(&format!("unsubscribe/{token}"))
    }

    /// The link to `email`'s preferences page, made at `now` (it expires; see
    /// [`Claims::preferences`]).
    pub fn preferences_url(&self, email: &EmailAddress, now: DateTime<Utc>) -> String {
        let token = self.signer.sign(&Claims::preferences(email.clone(), now));
        self.link(&format!("preferences/{token}"))
    }

    pub fn recipient(&self, email: EmailAddress, name: &str, attributes: BTreeMap<String, String>) -> Recipient {
        Recipient {
            unsubscribe_url: self.unsubscribe_url(&email),
            preferences_url: String::new(),
            edition: self.config.default_edition().map(|e| e.name.to_string()).unwrap_or_default(),
            topics: Vec::new(),
            name: compose::render::one_line(name),
            email,
            attributes,
        }
    }

    /// `recipient`, with their preferences: the edition's key (`None`: the default), the topics'
    /// keys as the store keeps them, and the link to their page made at `now`.
    pub fn recipient_with(
        &self,
        email: EmailAddress,
        name: &str,
        attributes: BTreeMap<String, String>,
        edition: Option<&str>,
        topics: &[String],
        now: DateTime<Utc>,
    ) -> Recipient {
        let preferences_url = self.preferences_url(&email, now);
        let mut r = self.recipient(email, name, attributes);
        r.preferences_url = preferences_url;
        if let Some(e) = edition.and_then(|key| self.config.edition(key)) {
            r.edition = e.name.to_string();
        }
        r.topics = topics.iter().filter_map(|key| self.config.topic(key)).map(|t| t.name.to_string()).collect();
        r
    }

    pub fn message_settings(&self) -> MessageSettings {
        let p = &self.config.publication;
        let list = p.lists.first().map(|l| l.to_string()).unwrap_or_else(|| "newsletter".into());
        MessageSettings {
            from: p.from.clone(),
            reply_to: p.reply_to.clone(),
            unsubscribe_mailto: p.unsubscribe_mailto.clone(),
            list_id: message::list_id(&p.name, &list, &p.base_url),
        }
    }

    /// The envelope sender of the message `token` names: `[bounces] return_path` with the signed
    /// token added (VERP), or `None` without a return path (the From address is the sender).
    pub fn return_path(&self, token: ReturnToken) -> Result<Option<EmailAddress>, ReturnPathTooLong> {
        let Some(path) = &self.config.bounces.return_path else { return Ok(None) };
        path.with_token(&self.signer.return_token(token)).map(Some).ok_or(ReturnPathTooLong)
    }

    /// The Message-ID of issue `issue`'s copy for `email`: the same each time it is made.
    pub fn message_id(&self, issue: u32, email: &EmailAddress) -> Result<MessageId, MessageIdError> {
        message::message_id(issue, &self.signer.address_tag(email), &self.config.publication.from.address)
    }
}

/// A return token that did not fit its return path: cannot happen, since a return path leaves
/// room for the longest token, but said rather than sent from a wrong address.
#[derive(Debug, thiserror::Error)]
#[error("the envelope sender's token does not fit [bounces] return_path")]
pub struct ReturnPathTooLong;

/// The config's `[[source]]` entries as the sources module takes them.
pub fn source_list(config: &Config) -> Vec<Source> {
    config
        .sources
        .iter()
        .map(|s| match s {
            SourceSetting::Feed { location, optional, name } => Source::Feed(sources::FeedSource {
                location: match location {
                    FeedLocation::Url(u) => sources::Location::Url(u.clone()),
                    FeedLocation::File(p) => sources::Location::File(p.clone()),
                },
                optional: *optional,
                name: name.clone(),
            }),
            // A folder holds the publication's own writing: its articles come from the
            // publication, not from a folder named `articles`.
            SourceSetting::Folder { path, name } => Source::Folder(sources::FolderSource {
                path: path.clone(),
                name: name.clone().unwrap_or_else(|| config.publication.name.clone()),
            }),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use chrono::TimeZone;

    use super::*;
    use crate::compose::Reason;
    use crate::config::Selection;
    use crate::domain::Duration;

    const DUPLICATES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/duplicates");

    /// Reads the feed files in this order, as `read_articles` reads the configured sources.
    async fn read_feeds(names: &[&str]) -> Vec<Article> {
        let fetcher = Fetcher::new().expect("client");
        let mut articles = Vec::new();
        for name in names {
            let location = sources::Location::File(PathBuf::from(format!("{DUPLICATES}/{name}")));
            let source = Source::Feed(sources::FeedSource { location, optional: false, name: None });
            articles.extend(sources::read(&source, &fetcher, &ReadOptions::default()).await.expect("feed"));
        }
        articles
    }

    fn choose(articles: Vec<Article>) -> Selected {
        let settings = Selection {
            max_age: Duration::from_secs(7 * 86_400),
            max_items: 10,
            since_last_issue: true,
            include_tags: Vec::new(),
            exclude_tags: Vec::new(),
            send_when_empty: false,
        };
        let now = Utc.with_ymd_and_hms(2024, 3, 15, 12, 0, 0).single().expect("date");
        compose::select(articles, &settings, now, &HashSet::new(), |_| now)
    }

    fn links(articles: &[Article]) -> Vec<&str> {
        articles.iter().map(|a| a.url.as_ref().map_or("", url::Url::as_str)).collect()
    }

    #[tokio::test]
    async fn an_rss_guid_and_an_atom_id_alike_are_one_article_whatever_their_links() {
        let selected = choose(read_feeds(&["blog.rss.xml", "planet.atom.xml"]).await);
        assert_eq!(
            links(&selected.articles),
            [
                "https://blog.example.org/2024/03/spring-planting/",
                "https://planet.example.net/posts/compost.example.com/compost-again",
                "https://blog.example.org/2024/03/winter-pruning/",
            ]
        );
        let [left_out] = selected.left_out.as_slice() else {
            panic!("one copy left out: {:?}", selected.left_out);
        };
        assert_eq!(left_out.reason, Reason::Duplicate);
        assert_eq!(left_out.article.source, "Planet Gardening");

        // Both copies carry the same date: the source listed first keeps its copy.
        let selected = choose(read_feeds(&["planet.atom.xml", "blog.rss.xml"]).await);
        assert_eq!(selected.articles.len(), 3);
        assert_eq!(selected.articles[0].source, "Planet Gardening");
        assert_eq!(selected.left_out[0].article.source, "The Example Garden");
    }
}
