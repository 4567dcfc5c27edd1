//! What an issue and a subscriber look like outside gazette: the documents the command line's
//! `--json` prints and the admin API answers with, made here once from the store's records, so
//! the same issue or subscriber has the same fields everywhere. A store record can change shape
//! without a user's script noticing; a field here is a promise. (The web's HTML templates are
//! `web/views.rs`.)

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;

use crate::{
    config::Publication,
    domain::{Article, BounceKind, IssueStatus, ReportKind, SubscriberStatus},
    store::{
        ActionRecord, BounceRecord, Deferred, DeliveryCounts, Failure, IssueRecord, RelayUse, ReportCounts,
        SubscriberRecord,
    },
    subscribers::{Added, Left},
};

/// An issue in a list: what it is and how far its delivery got. Times are RFC 3339, in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueSummary {
    pub number: u32,
    pub status: IssueStatus,
    pub subject: String,
    /// The date the issue carries (the end of its day, or the `--as-of` it was made with).
    pub date: String,
    pub created_at: String,
    /// `None` while it is going out.
    pub finished_at: Option<String>,
    /// Why it stands where it is: why it was paused; `None` otherwise.
    pub note: Option<String>,
    pub counts: Counts,
}

/// Deliveries of an issue by state, and those sent that came back: `bounced` (hard or soft)
/// and `complained`, each delivery once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub queued: u64,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    pub skipped: u64,
    pub bounced: u64,
    pub complained: u64,
}

/// One issue in full: its articles, and the readers it failed or is still trying to reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IssueView {
    #[serde(flatten)]
    pub summary: IssueSummary,
    /// Its page in the archive.
    pub web_url: String,
    pub articles: Vec<ArticleView>,
    pub failures: Vec<FailureView>,
    pub deferred: Vec<DeferredView>,
    /// The editor's intro, Markdown as written; `None` without one.
    pub intro: Option<String>,
    /// Articles an editor left out of it.
    pub left_out: Vec<ArticleView>,
    /// When the slot a draft is for falls (RFC 3339, UTC); `None`: sent once approved.
    pub send_at: Option<String>,
    /// What was done to it, by whom and when, newest first.
    pub history: Vec<ActionView>,
    /// What it sent through each relay, when asked for (`issues show`); none through the outbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub relays: Option<Vec<RelayView>>,
    /// The edition it is an issue of (its name in lower case); `None` without editions.
    pub edition: Option<String>,
}

/// What an issue sent through one relay, by the relay of each delivery's last outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RelayView {
    /// `host:port`.
    pub relay: String,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// The relay's reply to the last delivery it answered.
    pub last_reply: Option<String>,
}

impl From<&RelayUse> for RelayView {
    fn from(r: &RelayUse) -> Self {
        Self {
            relay: r.relay.clone(),
            sent: r.sent,
            deferred: r.deferred,
            failed: r.failed,
            last_reply: r.last_reply.clone(),
        }
    }
}

/// One entry of the log of actions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub detail: String,
}

impl From<&ActionRecord> for ActionView {
    fn from(a: &ActionRecord) -> Self {
        Self { at: a.at.to_rfc3339(), actor: a.actor.clone(), action: a.action.clone(), detail: a.detail.clone() }
    }
}

/// An article as an issue froze it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArticleView {
    pub title: String,
    pub url: Option<String>,
    pub date: Option<String>,
    pub author: Option<String>,
    pub source: String,
}

/// A reader the issue failed to reach for good, with the server's last reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FailureView {
    pub email: String,
    pub reply: Option<String>,
    pub attempts: u32,
}

/// A reader waiting for another attempt; the next one in the publication's time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeferredView {
    pub email: String,
    pub reply: Option<String>,
    pub attempts: u32,
    pub next_attempt: String,
}

/// A subscriber: the same fields wherever one is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SubscriberView {
    pub email: String,
    pub name: String,
    pub status: SubscriberStatus,
    pub lists: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    /// The name of their edition, the default one's when they chose none; `None` without
    /// `[[edition]]`.
    pub edition: Option<String>,
    /// The names of their topics; empty for every topic.
    pub topics: Vec<String>,
}

/// What adding a subscriber stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddedView {
    pub subscriber: SubscriberView,
    /// The address was new.
    pub created: bool,
}

/// What unsubscribing (or forgetting) did to an address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LeftView {
    pub email: String,
    /// Its status now; `None` for an address that is no subscriber.
    pub status: Option<SubscriberStatus>,
    pub changed: bool,
    pub forgotten: bool,
}

impl From<&IssueRecord> for IssueSummary {
    fn from(i: &IssueRecord) -> Self {
        Self {
            number: i.number,
            status: i.status,
            subject: i.subject.clone(),
            date: i.date.to_rfc3339(),
            created_at: i.created_at.to_rfc3339(),
            finished_at: i.finished_at.map(|t| t.to_rfc3339()),
            note: i.note.clone(),
            counts: Counts::new(&i.counts, &i.reports),
        }
    }
}

impl Counts {
    pub fn new(c: &DeliveryCounts, r: &ReportCounts) -> Self {
        Self {
            queued: c.queued,
            sent: c.sent,
            deferred: c.deferred,
            failed: c.failed,
            skipped: c.skipped,
            bounced: r.bounced,
            complained: r.complained,
        }
    }
}

/// A bounce or complaint as recorded (`bounces list`). `at` is RFC 3339, in UTC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BounceView {
    pub email: String,
    pub issue: Option<u32>,
    pub kind: BounceKind,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    pub at: String,
}

impl From<&BounceRecord> for BounceView {
    fn from(b: &BounceRecord) -> Self {
        Self {
            email: b.email.clone(),
            issue: b.issue,
            kind: b.kind,
            status: b.status.clone(),
            diagnostic: b.diagnostic.clone(),
            at: b.at.to_rfc3339(),
        }
    }
}

/// One message `bounces ingest` read, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct IngestedView {
    /// The file it came from (with `#N` for the Nth message of an mbox), or `-` for stdin.
    pub source: String,
    pub kind: ReportKind,
    /// The address of the subscriber it was matched to.
    pub email: Option<String>,
    pub issue: Option<u32>,
    pub status: Option<String>,
    pub diagnostic: Option<String>,
    /// It was recorded and acted on now; false when it names no delivery gazette made, was read
    /// before, concerns a test copy, or is an `auto_reply` or `unknown`.
    pub applied: bool,
    /// Why it was not applied, for people; `None` when it was.
    pub note: Option<String>,
}

impl IssueView {
    /// `issue` of `publication` with its failed and deferred deliveries, the next attempts in the
    /// publication's time zone.
    pub fn new(issue: &IssueRecord, failures: &[Failure], deferred: &[Deferred], publication: &Publication) -> Self {
        let tz = publication.timezone;
        Self {
            summary: IssueSummary::from(issue),
            web_url: publication.link(&format!("archive/{}", issue.number)),
            articles: issue.articles.iter().map(ArticleView::from).collect(),
            failures: failures.iter().map(FailureView::from).collect(),
            deferred: deferred.iter().map(|d| DeferredView::new(d, tz)).collect(),
            intro: issue.intro.clone(),
            left_out: issue.left_out.iter().map(ArticleView::from).collect(),
            send_at: issue.send_at.map(|t| t.to_rfc3339()),
            history: Vec::new(),
            relays: None,
            edition: issue.edition.clone(),
        }
    }

    /// The same, with what it sent through each relay.
    pub fn with_relays(mut self, relays: &[RelayUse]) -> Self {
        self.relays = Some(relays.iter().map(RelayView::from).collect());
        self
    }

    /// The same, with the issue's log of actions.
    pub fn with_history(mut self, actions: &[ActionRecord]) -> Self {
        self.history = actions.iter().map(ActionView::from).collect();
        self
    }
}

impl From<&Article> for ArticleView {
    fn from(a: &Article) -> Self {
        Self {
            title: a.title.clone(),
            url: a.url.as_ref().map(|u| u.as_str().to_owned()),
            date: a.date.map(|d| d.to_rfc3339()),
            author: a.author.clone(),
            source: a.source.clone(),
        }
    }
}

impl From<&Failure> for FailureView {
    fn from(f: &Failure) -> Self {
        Self { email: f.email.clone(), reply: f.reply.clone(), attempts: f.attempts }
    }
}

impl DeferredView {
    fn new(d: &Deferred, tz: Tz) -> Self {
        Self {
            email: d.email.clone(),
            reply: d.reply.clone(),
            attempts: d.attempts,
            next_attempt: d.next_attempt.with_timezone(&tz).to_rfc3339(),
        }
    }
}

impl SubscriberView {
    /// The subscriber as shown, their choices named as `config` spells them (a key that names no
    /// edition or topic any more is shown as it is stored).
    pub fn new(s: &SubscriberRecord, config: &crate::config::Config) -> Self {
        let edition = match &s.edition {
            Some(key) => Some(config.edition(key).map_or_else(|| key.clone(), |e| e.name.to_string())),
            None => config.default_edition().map(|e| e.name.to_string()),
        };
        let topics =
            s.topics.iter().map(|k| config.topic(k).map_or_else(|| k.clone(), |t| t.name.to_string())).collect();
        Self {
            email: s.email.clone(),
            name: s.name.clone(),
            status: s.status,
            lists: s.lists.clone(),
            attributes: s.attributes.clone(),
            edition,
            topics,
        }
    }
}

impl AddedView {
    pub fn new(a: &Added, config: &crate::config::Config) -> Self {
        Self { subscriber: SubscriberView::new(&a.record, config), created: a.created }
    }
}

impl From<&Left> for LeftView {
    fn from(l: &Left) -> Self {
        Self { email: l.email.to_string(), status: l.status, changed: l.changed, forgotten: l.forgotten }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::{Value, json};

    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object().expect("an object").keys().map(String::as_str).collect()
    }

    fn issue() -> IssueRecord {
        let at = Utc.with_ymd_and_hms(2024, 3, 17, 3, 59, 59).single().expect("a time");
        IssueRecord {
            number: 3,
            status: IssueStatus::Sending,
            subject: "The Weekly Mirror: 16 March 2024".into(),
            date: at,
            articles: Vec::new(),
            slot: None,
            created_at: at,
            finished_at: None,
            note: None,
            counts: DeliveryCounts { queued: 1, sent: 2, deferred: 1, failed: 1, skipped: 0 },
            reports: ReportCounts { bounced: 1, complained: 0 },
            intro: None,
            left_out: Vec::new(),
            subject_edited: false,
            send_at: None,
            edition: None,
        }
    }

    #[test]
    fn an_issue_has_every_field_it_ever_had_wherever_it_is_shown() {
        let at = Utc.with_ymd_and_hms(2024, 3, 18, 14, 0, 0).single().expect("a time");
        let failures =
            [Failure { email: "gone@example.org".into(), reply: Some("550 no such user".into()), attempts: 1 }];
        let deferred = [Deferred { email: "slow@example.org".into(), reply: None, attempts: 2, next_attempt: at }];
        let config = crate::config::Config::parse(
            "[publication]\nname = \"Mirror\"\nfrom = \"Mirror <m@example.org>\"\n\
             base_url = \"https://news.example.org/\"\ntimezone = \"Europe/Oslo\"\n[[source]]\nfolder = \"a\"\n",
            std::path::Path::new("gazette.toml"),
            &Default::default(),
        )
        .expect("config");
        let view = IssueView::new(&issue(), &failures, &deferred, &config.publication);
        let doc = serde_json::to_value(&view).expect("json");
        assert_eq!(
            keys(&doc),
            [
                "articles",
                "counts",
                "created_at",
                "date",
                "deferred",
                "edition",
                "failures",
                "finished_at",
                "history",
                "intro",
                "left_out",
                "note",
                "number",
                "send_at",
                "status",
                "subject",
                "web_url"
            ]
        );
        assert_eq!(doc["status"], "sending");
        assert_eq!(doc["web_url"], "https://news.example.org/archive/3");
        assert_eq!(doc["date"], "2024-03-17T03:59:59+00:00");
        assert_eq!(doc["finished_at"], Value::Null);
        assert_eq!(
            doc["counts"],
            json!({ "queued": 1, "sent": 2, "deferred": 1, "failed": 1, "skipped": 0, "bounced": 1, "complained": 0 })
        );
        assert_eq!(
            doc["failures"][0],
            json!({ "email": "gone@example.org", "reply": "550 no such user", "attempts": 1 })
        );
        assert_eq!(doc["deferred"][0]["next_attempt"], "2024-03-18T15:00:00+01:00");
        let summary = serde_json::to_value(IssueSummary::from(&issue())).expect("json");
        assert_eq!(
            keys(&summary),
            ["counts", "created_at", "date", "finished_at", "note", "number", "status", "subject"]
        );
    }

    #[test]
    fn a_subscriber_shows_its_fields_and_its_choices_and_never_its_row_id() {
        let record = SubscriberRecord {
            id: 41,
            email: "ann@example.org".into(),
            name: "Ann".into(),
            status: SubscriberStatus::Active,
            lists: vec!["weekly".into()],
            attributes: BTreeMap::from([("city".into(), "Oslo".into())]),
            edition: None,
            topics: Vec::new(),
            paused_until: None,
        };
        let config = |extra: &str| {
            let text = format!("[publication]\nname = \"M\"\nfrom = \"m@example.org\"\n{extra}");
            crate::config::Config::parse(
                &text,
                std::path::Path::new("/pub/gazette.toml"),
                &crate::config::Environment::default(),
            )
            .expect("config")
        };
        let doc = serde_json::to_value(SubscriberView::new(&record, &config(""))).expect("json");
        assert_eq!(
            doc,
            json!({ "email": "ann@example.org", "name": "Ann", "status": "active", "lists": ["weekly"],
                    "attributes": { "city": "Oslo" }, "edition": null, "topics": [] })
        );
        let choices = config(
            "[[topic]]\nname = \"Arts & Culture\"\ntags = [\"arts\"]\n\
             [[edition]]\nname = \"Daily\"\ndefault = true\n[[edition]]\nname = \"Weekly\"\n",
        );
        let view = SubscriberView::new(&record, &choices);
        assert_eq!((view.edition.as_deref(), view.topics.len()), (Some("Daily"), 0), "the default edition's name");
        let chose =
            SubscriberRecord { edition: Some("weekly".into()), topics: vec!["arts & culture".into()], ..record };
        let view = SubscriberView::new(&chose, &choices);
        assert_eq!((view.edition.as_deref(), view.topics), (Some("Weekly"), vec!["Arts & Culture".to_owned()]));
    }
}
