//! An issue's life: the next issue planned (or the unfinished one resumed), created with its
//! articles frozen and a delivery queued for each of its readers (`subscribers` says who they
//! are), and delivered by the engine. This is where store, compose and deliver meet.

use std::{collections::HashSet, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use lettre::Message;

use crate::{
    clock::Clock,
    compose::{self, MessageSettings, PreparedIssue, message},
    deliver::{
        DeliverError, Engine, EngineSettings, Letters, Progress, Queue, QueueError, RunSummary, Stop, Transport,
    },
    domain::{Claimed, MessageId, Outcome, RateLimits},
    publication::{Draft, History, Publication, PublicationError, Reviewed},
    sources::SourceError,
    store::{IssueRecord, NewIssue, SlotRef, Standing, Store, StoreError},
    subscribers,
    tokens::ReturnToken,
};

#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Publication(#[from] PublicationError),
    #[error(transparent)]
    Deliver(#[from] DeliverError),
    #[error("{0}")]
    Compose(String),
    #[error("the test copy to {to} did not go out: {reply}")]
    TestCopy {
        to: crate::domain::EmailAddress,
        reply: String,
        /// The server refused this address for good (5xx, or it cannot take the address at all),
        /// rather than failing for a while.
        refused: bool,
    },
}

/// What the next `send` will do.
pub enum Plan {
    /// An issue is still going out: finish it first.
    Resume(Box<IssueRecord>),
    /// An issue was paused for what came back of it: nothing goes out until a person resumes
    /// it (`issues resume`) or cancels it.
    Paused(Box<IssueRecord>),
    /// A new issue with these articles.
    Create(Box<Draft>),
    /// Nothing to send, and why.
    Nothing(String),
}

/// The history the next issue is chosen against. `record` notes when undated articles were
/// first seen (a real send does; a preview does not).
pub async fn history(
    store: &Store,
    edition: Option<&crate::config::Edition>,
    articles: &[crate::domain::Article],
    now: DateTime<Utc>,
    record: bool,
) -> Result<History, StoreError> {
    let (next_number, mut carried) = store.history().await?;
    // An edition's `since_last_issue` counts its own issues: what another edition carried is
    // left to each reader's copy, which leaves out what that reader received.
    if let Some(e) = edition {
        carried = store.carried_by_edition(&e.name.key(), e.default).await?;
    }
    let undated: Vec<String> = articles.iter().filter(|a| a.date.is_none()).map(compose::selection::identity).collect();
    let first_seen = store.first_seen(&undated, now, record).await?;
    Ok(History { next_number, carried, first_seen })
}

/// Decides between resuming, creating and doing nothing (or waiting for a paused issue).
pub async fn plan(
    publication: &Publication,
    store: &Store,
    edition: Option<&crate::config::Edition>,
    now: DateTime<Utc>,
    record: bool,
) -> Result<Plan, IssueError> {
    // Each edition's issues go out on their own: one edition's issue still sending, or paused,
    // holds up only that edition's next.
    let (unfinished, paused) = match edition {
        Some(e) => (
            store.unfinished_issue_of(&e.name.key(), e.default, false).await?,
            store.unfinished_issue_of(&e.name.key(), e.default, true).await?,
        ),
        None => (store.unfinished_issue().await?, store.paused_issue().await?),
    };
    if let Some(unfinished) = unfinished {
        return Ok(Plan::Resume(Box::new(unfinished)));
    }
    if let Some(paused) = paused {
        return Ok(Plan::Paused(Box::new(paused)));
    }
    let (articles, warnings) =
        if record { read_articles_cached(publication, store, now).await? } else { publication.read_articles().await? };
    let history = history(store, edition, &articles, now, record).await?;
    let draft = publication.select(edition, articles, warnings, now, &history);
    match publication.skip_reason(&draft) {
        Some(reason) => Ok(Plan::Nothing(reason)),
        None => Ok(Plan::Create(Box::new(draft))),
    }
}

/// Reads the sources like `Publication::read_articles`, but fetches feeds over HTTP with a
/// conditional GET against the body kept from the last fetch, and keeps the new one.
pub async fn read_articles_cached(
    publication: &Publication,
    store: &Store,
    now: DateTime<Utc>,
) -> Result<(Vec<crate::domain::Article>, Vec<crate::publication::SourceWarning>), IssueError> {
    use crate::sources::{self, CachedFeed, FetchOutcome, Location, ReadOptions, Source};
    let options = ReadOptions { timezone: publication.config.publication.timezone };
    let mut articles = Vec::new();
    let mut warnings = Vec::new();
    for source in publication.sources() {
        let read = match &source {
            Source::Feed(feed) => match &feed.location {
                Location::Url(url) => {
                    let previous = store.cached_feed(url.as_str()).await?.map(|e| CachedFeed {
                        body: e.body,
                        etag: e.etag,
                        last_modified: e.last_modified,
                    });
                    match publication.fetcher().fetch(url, previous.as_ref()).await {
                        Ok(FetchOutcome::Fresh(fresh)) => {
                            let entry = crate::store::FeedCacheEntry {
                                body: fresh.body.clone(),
                                etag: fresh.etag.clone(),
                                last_modified: fresh.last_modified.clone(),
                            };
                            let parsed =
                                sources::parse_feed(&fresh.body, Some(url), url.host_str().unwrap_or("feed"), &options);
                            if parsed.is_ok() {
                                store.cache_feed(url.as_str(), &entry, now).await?;
                            }
                            parsed
                        }
                        Ok(FetchOutcome::NotModified) => match &previous {
                            Some(p) => {
                                sources::parse_feed(&p.body, Some(url), url.host_str().unwrap_or("feed"), &options)
                            }
                            None => sources::read(&source, publication.fetcher(), &options).await,
                        },
                        Err(e) => Err(e),
                    }
                }
                Location::File(_) => sources::read(&source, publication.fetcher(), &options).await,
            },
            Source::Folder(_) => sources::read(&source, publication.fetcher(), &options).await,
        };
        match read {
            Ok(mut a) => {
                source.name_articles(&mut a);
                articles.append(&mut a);
            }
            Err(error) if source.optional() => {
                warnings.push(crate::publication::SourceWarning { source: source.describe(), error })
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok((articles, warnings))
}

/// Creates the issue: articles frozen, one delivery queued per active subscriber.
pub async fn create(
    publication: &Publication,
    store: &Store,
    draft: &Draft,
    slot: Option<SlotRef>,
    now: DateTime<Utc>,
) -> Result<IssueRecord, IssueError> {
    let mut new = new_issue(publication, draft, slot)?;
    new.variants = variant_plan(publication, draft, now);
    if let Some(plan) = &new.variants {
        new.articles.extend(draft.beyond.iter().map(|(_, a)| a.clone()));
        debug_assert_eq!(plan.candidates.len(), new.articles.len());
    }
    // The first readers are queued with the issue, the rest while it goes out (`deliver`).
    let first = publication.config.delivery.queue_chunk.min(crate::store::FIRST_CHUNK);
    Ok(store.create_issue_queueing(&new, subscribers::issue_lists(&publication.config), first, now).await?)
}

/// With editions or topics, how each reader's copy of `draft` is chosen: its own selection, then
/// what lies beyond it for readers who switched editions. `None` without either: every reader
/// gets the whole issue, queued as before.
pub fn variant_plan(publication: &Publication, draft: &Draft, now: DateTime<Utc>) -> Option<crate::store::VariantPlan> {
    let config = &publication.config;
    if config.editions.is_empty() && config.topics.is_empty() {
        return None;
    }
    let candidate = |a: &crate::domain::Article, published: DateTime<Utc>, own: bool| crate::store::Candidate {
        keys: compose::selection::keys(a),
        topics: config.topics.iter().filter(|t| t.covers(a)).map(|t| t.name.key()).collect(),
        published,
        own,
    };
    let longest = config.editions.iter().map(|e| e.max_age).max().unwrap_or(config.selection.max_age);
    let mut candidates: Vec<_> =
        draft.selected.articles.iter().map(|a| candidate(a, a.date.unwrap_or(now), true)).collect();
    candidates.extend(draft.beyond.iter().map(|(at, a)| candidate(a, *at, false)));
    Some(crate::store::VariantPlan {
        default_edition: draft.edition.as_ref().is_none_or(|e| e.default),
        editions: config.editions.iter().map(|e| e.name.key()).collect(),
        candidates,
        oldest: now - longest.chrono(),
    })
}

/// How each reader's copy of issue `issue`, a draft made earlier, is chosen when it is queued:
/// against its frozen articles, what readers received by `now` and their choices by then.
pub fn variant_plan_of(
    publication: &Publication,
    issue: &IssueRecord,
    now: DateTime<Utc>,
) -> Option<crate::store::VariantPlan> {
    variant_plan(publication, &draft_of(publication, issue), now)
}

/// What the store is given to make `draft` an issue: its subject rendered once, its articles
/// frozen with their identities.
pub fn new_issue(publication: &Publication, draft: &Draft, slot: Option<SlotRef>) -> Result<NewIssue, IssueError> {
    let prepared = publication.prepare(draft)?;
    let sample =
        publication.recipient("reader@example.org".parse().expect("a literal address parses"), "", Default::default());
    let subject = prepared.personalize(&sample).map_err(PublicationError::from)?.subject;
    let new = NewIssue {
        number: draft.number,
        subject,
        date: draft.date,
        articles: draft.selected.articles.clone(),
        identities: draft
            .selected
            .articles
            .iter()
            .flat_map(compose::selection::keys)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect(),
        slot,
        edition: draft.edition.as_ref().map(|e| e.name.key()),
        variants: None,
    };
    Ok(new)
}

/// Each claimed delivery's message, from the issue rendered once.
pub struct IssueLetters {
    publication: Arc<Publication>,
    prepared: PreparedIssue,
    /// The key of the issue's edition.
    edition: Option<String>,
    /// Each variant's copy, rendered once: readers who get the same articles share it.
    variants: std::collections::HashMap<i64, PreparedIssue>,
    settings: MessageSettings,
    number: u32,
    clock: Arc<dyn Clock>,
}

/// An issue already made, as it is rendered: its frozen articles in their order, and what an
/// editor made of it (intro, subject).
pub fn draft_of(publication: &Publication, issue: &IssueRecord) -> Draft {
    let mut draft = publication.frozen(issue.number, issue.date, issue.articles.clone());
    draft.edition = issue.edition.as_deref().and_then(|key| publication.config.edition(key)).cloned();
    draft.review =
        Reviewed { intro: issue.intro.clone(), subject: issue.subject_edited.then(|| issue.subject.clone()) };
    draft
}

impl IssueLetters {
    pub fn new(publication: Arc<Publication>, issue: &IssueRecord, clock: Arc<dyn Clock>) -> Result<Self, IssueError> {
        let draft = draft_of(&publication, issue);
        let prepared = publication.prepare(&draft)?;
        let settings = publication.message_settings();
        Ok(Self {
            publication,
            prepared,
            edition: issue.edition.clone(),
            variants: Default::default(),
            settings,
            number: issue.number,
            clock,
        })
    }

    /// As [`IssueLetters::new`], with each of `variants` (positions among the issue's articles,
    /// as the store gives them) rendered once for the deliveries that name it.
    pub fn with_variants(
        publication: Arc<Publication>,
        issue: &IssueRecord,
        variants: &[(i64, Vec<usize>)],
        clock: Arc<dyn Clock>,
    ) -> Result<Self, IssueError> {
        let mut letters = Self::new(Arc::clone(&publication), issue, clock)?;
        for (variant, positions) in variants {
            let mut copy = issue.clone();
            copy.articles = positions.iter().filter_map(|&at| issue.articles.get(at).cloned()).collect();
            let prepared = publication.prepare(&draft_of(&publication, &copy))?;
            letters.variants.insert(*variant, prepared);
        }
        tracing::debug!(issue = issue.number, renders = variants.len() + 1, "issue rendered");
        Ok(letters)
    }

    /// How many copies of the issue were rendered: the whole issue and one per variant.
    pub fn renders(&self) -> usize {
        1 + self.variants.len()
    }

    /// A test copy: a reader's message whose subject says it is a test, and whose envelope
    /// sender says so too, so that its bounces change nothing.
    pub fn test_copy_for(&self, email: crate::domain::EmailAddress) -> Result<(Message, MessageId), String> {
        self.message(email, "", Default::default(), &[], TEST_SUBJECT_PREFIX, ReturnToken::Test(self.number), None)
    }

    /// A review copy for an editor: the issue as readers will see it, as a test copy is sent
    /// (its envelope sender marks it as one), its subject starting [`REVIEW_SUBJECT_PREFIX`] and
    /// both parts opening with `note` and a link to where it is reviewed.
    pub fn review_copy_for(
        &self,
        email: crate::domain::EmailAddress,
        note: &str,
        link: &str,
    ) -> Result<(Message, MessageId), String> {
        let recipient = self.publication.recipient(email, "", Default::default());
        let mut rendered = self.prepared.personalize(&recipient).map_err(|e| e.to_string())?;
        let subject = format!("{REVIEW_SUBJECT_PREFIX}{}", rendered.subject);
        let text = format!("{note}\n{link}\n\n{}", rendered.text);
        rendered.html = with_banner(&rendered.html, note, link);
        let letter = compose::Letter {
            subject,
            text: compose::HtmlPart::Text(text),
            html: compose::HtmlPart::Text(rendered.html),
        };
        let id = self.publication.message_id(self.number, &recipient.email).map_err(|e| e.to_string())?;
        let return_path = self.publication.return_path(ReturnToken::Test(self.number)).map_err(|e| e.to_string())?;
        let message = message::build(&self.settings, &recipient, letter, &id, self.clock.now(), return_path.as_ref())
            .map_err(|e| e.to_string())?;
        Ok((message, id))
    }

    #[allow(clippy::too_many_arguments)]
    fn message(
        &self,
        email: crate::domain::EmailAddress,
        name: &str,
        attributes: std::collections::BTreeMap<String, String>,
        topics: &[String],
        subject_prefix: &str,
        token: ReturnToken,
        variant: Option<i64>,
    ) -> Result<(Message, MessageId), String> {
        let recipient =
            self.publication.recipient_with(email, name, attributes, self.edition.as_deref(), topics, self.clock.now());
        let prepared = match variant {
            Some(v) => self.variants.get(&v).ok_or_else(|| format!("issue {} has no variant {v}", self.number))?,
            None => &self.prepared,
        };
        let mut rendered = prepared.letter(&recipient).map_err(|e| e.to_string())?;
        rendered.subject.insert_str(0, subject_prefix);
        let id = self.publication.message_id(self.number, &recipient.email).map_err(|e| e.to_string())?;
        let return_path = self.publication.return_path(token).map_err(|e| e.to_string())?;
        let message = message::build(&self.settings, &recipient, rendered, &id, self.clock.now(), return_path.as_ref())
            .map_err(|e| e.to_string())?;
        Ok((message, id))
    }
}

impl Letters for IssueLetters {
    fn letter(&self, c: &Claimed) -> Result<(Message, MessageId), String> {
        self.message(
            c.email.clone(),
            &c.name,
            c.attributes.clone(),
            &c.topics,
            "",
            ReturnToken::Delivery(c.delivery_id),
            c.variant,
        )
    }
}

/// What the subject of a test copy starts with, so that nobody takes it for the issue itself.
pub const TEST_SUBJECT_PREFIX: &str = "[Test] ";

/// What the subject of an editor's review copy starts with.
pub const REVIEW_SUBJECT_PREFIX: &str = "[Review] ";

/// Text made safe inside HTML text and quoted attributes (a URL keeps its slashes, which
/// tera's escape would write as entities).
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `html` with a banner saying `note` and linking to `link` at the top of its body, both escaped.
fn with_banner(html: &str, note: &str, link: &str) -> String {
    let banner = [
        "<div style=\"border:2px solid #b45309;background:#fffbeb;color:#1f2937;padding:12px 16px;margin:0 0 16px;\
         font-family:sans-serif;font-size:15px;line-height:1.4\"><strong>",
        &escape(note),
        "</strong><br><a href=\"",
        &escape(link),
        "\" style=\"color:#1d4ed8\">",
        &escape(link),
        "</a></div>",
    ]
    .concat();
    let at = html.find("<body").and_then(|start| html[start..].find('>').map(|end| start + end + 1)).unwrap_or(0);
    [&html[..at], &banner, &html[at..]].concat()
}

/// Sends a test copy of `issue` to each of `to`, as a reader without a name would get it, its
/// subject starting [`TEST_SUBJECT_PREFIX`].
/// Recorded nowhere: no delivery, no consent event, nothing in the ledger. Stops at the first
/// address that does not go out.
pub async fn send_test_copies(
    publication: Arc<Publication>,
    issue: &IssueRecord,
    transport: &Transport,
    to: &[crate::domain::EmailAddress],
    clock: Arc<dyn Clock>,
) -> Result<(), IssueError> {
    transport.check().await.map_err(|e| DeliverError::Server(e.reply))?;
    let letters = IssueLetters::new(publication, issue, clock)?;
    for address in to {
        let (message, id) = letters.test_copy_for(address.clone()).map_err(IssueError::Compose)?;
        transport.send(message, &id).await.map_err(|e| IssueError::TestCopy {
            to: address.clone(),
            refused: e.kind.is_final(),
            reply: e.reply,
        })?;
    }
    Ok(())
}

/// What one delivery run did to an issue.
#[derive(Debug, Clone)]
pub struct Delivered {
    pub run: RunSummary,
    /// This run found every delivery final and marked the issue sent (only one process does).
    pub finished: bool,
}

/// Delivers what is due of `issue` with the publication's `[delivery]` settings.
#[allow(clippy::too_many_arguments)]
pub async fn deliver(
    publication: Arc<Publication>,
    store: &Store,
    issue: &IssueRecord,
    transport: Transport,
    clock: Arc<dyn Clock>,
    progress: Arc<dyn Progress>,
    stop: Stop,
    wait_for_deferred: bool,
) -> Result<Delivered, IssueError> {
    let d = &publication.config.delivery;
    let settings = EngineSettings {
        concurrency: d.concurrency,
        max_attempts: d.max_attempts,
        retry_backoff: d.retry_backoff.std(),
        lease: d.lease.std(),
        rate: d.rate,
        owner: crate::setup::owner(),
        wait_for_deferred,
        limits: publication.config.bounces.limits,
        shaping: publication.config.shaping.clone(),
        throttle_timeout: d.throttle_timeout.std(),
    };
    let variants = store.issue_variants(issue.number).await?;
    let letters =
        Arc::new(IssueLetters::with_variants(Arc::clone(&publication), issue, &variants, Arc::clone(&clock))?);
    // The readers still to queue are queued beside the senders, from the lists the issue goes
    // to: a run that takes up an issue whose filler stopped (a crash, a stop) goes on with it.
    let queue = IssueQueue {
        store: store.clone(),
        lists: subscribers::issue_lists(&publication.config).into(),
        chunk: d.queue_chunk,
        clock: Arc::clone(&clock),
    };
    let engine = Engine::new(queue, transport, settings, Arc::clone(&clock));
    tracing::debug!(issue = issue.number, concurrency = d.concurrency, "delivering");
    let run = engine.run(issue.number, letters, progress, stop).await?;
    let finished = store.finish_issue_if_done(issue.number, clock.now()).await?;
    Ok(Delivered { run, finished })
}

/// The store as the engine's queue for one publication's issues, with the lists they go to, so
/// that the readers still to queue can be.
#[derive(Clone)]
struct IssueQueue {
    store: Store,
    lists: Arc<[crate::domain::ListName]>,
    /// Readers queued per transaction.
    chunk: usize,
    clock: Arc<dyn Clock>,
}

impl Queue for IssueQueue {
    async fn claim(
        &self,
        issue: u32,
        owner: &str,
        limit: usize,
        now: DateTime<Utc>,
        lease: Duration,
    ) -> Result<Vec<Claimed>, QueueError> {
        Ok(self.store.claim(issue, owner, limit, now, lease).await?)
    }

    async fn renew(&self, owner: &str, ids: &[i64], now: DateTime<Utc>, lease: Duration) -> Result<(), QueueError> {
        self.store.renew_leases(owner, ids, now, lease).await?;
        Ok(())
    }

    async fn record(
        &self,
        owner: &str,
        outcomes: &[Outcome],
        relays: &[Option<String>],
        now: DateTime<Utc>,
    ) -> Result<(), QueueError> {
        Ok(self.store.record_via(owner, outcomes, relays, now).await?)
    }

    async fn next_due(&self, issue: u32) -> Result<Option<DateTime<Utc>>, QueueError> {
        Ok(self.store.next_due(issue).await?)
    }

    async fn take_sends(&self, per_second: f64, want: u32, now: DateTime<Utc>) -> Result<(u32, Duration), QueueError> {
        // The bucket holds a fiftieth of a second's sends: processes that start together cannot
        // burst past the rate by more than that.
        let burst = (per_second / f64::from(crate::deliver::CHUNKS_PER_SECOND)).max(1.0);
        let grant = self.store.take_tokens(SEND_BUCKET, per_second, burst, want, now).await?;
        Ok((grant.granted, grant.retry_in))
    }

    async fn take_group_sends(
        &self,
        group: &str,
        per_second: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, Duration), QueueError> {
        // A fiftieth of a second's sends, as the publication's bucket holds: at most that above
        // the group's rate in any second, and a fast group asks once per chunk, not per message.
        let burst = (per_second / f64::from(crate::deliver::CHUNKS_PER_SECOND)).max(1.0);
        let grant = self.store.take_tokens(&format!("shaping:{group}"), per_second, burst, want, now).await?;
        Ok((grant.granted, grant.retry_in))
    }

    async fn take_relay_sends(
        &self,
        relay: &str,
        per_second: f64,
        want: u32,
        now: DateTime<Utc>,
    ) -> Result<(u32, Duration), QueueError> {
        // A bucket of one, as a group's: the relay's messages are spaced evenly across processes.
        let grant = self.store.take_tokens(&format!("relay:{relay}"), per_second, 1.0, want, now).await?;
        Ok((grant.granted, grant.retry_in))
    }

    async fn halted_because(&self, issue: u32, limits: RateLimits) -> Result<Option<String>, QueueError> {
        // A finished or cancelled issue has nothing left to claim: the run ends by itself.
        Ok(match self.store.guard_issue(issue, limits).await? {
            Standing::Paused(why) => Some(why),
            Standing::Sending | Standing::Other(_) => None,
        })
    }

    async fn fill(&self, issue: u32) -> Result<(u64, bool), QueueError> {
        let filled = self.store.queue_more(issue, &self.lists, self.chunk, self.clock.now()).await?;
        Ok((filled.queued, filled.more))
    }
}

/// The engine sees the store's failures as its queue's, with the store's error as the cause.
impl From<StoreError> for QueueError {
    fn from(e: StoreError) -> Self {
        Self::new(e)
    }
}

/// The bucket every process sending for this publication draws from.
const SEND_BUCKET: &str = "smtp";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_failure_stops_the_engine_in_the_stores_words() {
        let e = DeliverError::from(QueueError::from(StoreError::Contended("three writers".into())));
        assert_eq!(
            e.to_string(),
            "the queue failed: the database stayed busy with other writers (three writers); run the command again"
        );
        let cause = std::error::Error::source(&e).and_then(|c| c.downcast_ref::<QueueError>());
        assert!(cause.is_some(), "the queue's error is kept as the cause");
    }
}
