//! The review of an issue before it goes out: a draft's edits (subject, intro, articles left out,
//! put back or reordered), its approval and its hold, its preview and a test copy of it. The
//! command line and the dashboard both come here, so a rule of review lives once. Edits are
//! parsed into typed values at the edge ([`edit::Changes`]); what they make of an issue is
//! decided by a plain function over it (`edit::revise`); the store applies it in one transaction
//! with its entry in the log of actions.

mod edit;
pub mod mail;

use std::sync::Arc;

use chrono::{DateTime, Utc};

use crate::{
    clock::Clock,
    config::Edition,
    deliver::Transport,
    domain::{Actor, EmailAddress},
    issue::{self, IssueError},
    publication::{Publication, PublicationError},
    store::{IssueRecord, SlotRef, Store, StoreError},
    subscribers,
};

pub use edit::{Changes, Edit};

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("there is no issue {0}; `gazette issues list` shows them")]
    NotFound(u32),
    #[error("issue {number} is {status}: {why}")]
    WrongState { number: u32, status: crate::domain::IssueStatus, why: &'static str },
    #[error("{0}")]
    BadEdit(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Render(#[from] PublicationError),
    #[error(transparent)]
    Send(#[from] IssueError),
}

impl ReviewError {
    /// No such issue (404).
    pub fn is_not_found(&self) -> bool {
        matches!(self, Self::NotFound(_))
    }

    /// The issue is not in a state that allows this (409).
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::WrongState { .. })
    }

    /// The edit itself is wrong: an unknown URL, a subject over two lines (400).
    pub fn is_bad_input(&self) -> bool {
        matches!(self, Self::BadEdit(_))
    }
}

impl From<StoreError> for ReviewError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoIssue(n) => Self::NotFound(n),
            StoreError::IssueState { number, status, why } => Self::WrongState { number, status, why },
            StoreError::EditRefused(why) => Self::BadEdit(why),
            other => Self::Store(other),
        }
    }
}

/// What making a draft came to.
#[derive(Debug)]
pub enum Drafted {
    Made(Box<IssueRecord>),
    /// No issue to make, and why (nothing new, or an issue still to finish first).
    Nothing(String),
}

/// Makes the next issue of `edition` (`None` without `[[edition]]`) as a draft, its articles
/// chosen as of `as_of` and frozen, nothing queued; for `slot` (taken with it, once) to go out at
/// `send_at`, or, without one, once approved. `now` is when this happens.
#[allow(clippy::too_many_arguments)]
pub async fn draft(
    publication: &Publication,
    store: &Store,
    edition: Option<&Edition>,
    as_of: DateTime<Utc>,
    slot: Option<SlotRef>,
    send_at: Option<DateTime<Utc>>,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Drafted, ReviewError> {
    if let Some(open) = store.unfinished_issue().await?.or(store.paused_issue().await?) {
        return Ok(Drafted::Nothing(format!("issue {} is still {}; finish it first", open.number, open.status)));
    }
    let (articles, warnings) = issue::read_articles_cached(publication, store, as_of).await?;
    let history = issue::history(store, edition, &articles, as_of, true).await?;
    let selected = publication.select(edition, articles, warnings, as_of, &history);
    if let Some(reason) = publication.skip_reason(&selected) {
        return Ok(Drafted::Nothing(reason));
    }
    let new = issue::new_issue(publication, &selected, slot)?;
    Ok(Drafted::Made(Box::new(store.create_draft(&new, send_at, actor, now).await?)))
}

/// Applies `edit` to issue `number` (a draft or held), all of it at once, and logs it.
pub async fn edit(
    publication: &Publication,
    store: &Store,
    number: u32,
    edit: &Edit,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssueRecord, ReviewError> {
    let changes = Changes::parse(edit).map_err(ReviewError::BadEdit)?;
    let record = store.edit_issue(number, actor, now, |issue| edit::revise(issue, &changes)).await?;
    // A subject or intro that does not render would fail every reader's copy: say so now.
    publication.prepare(&issue::draft_of(publication, &record))?;
    Ok(record)
}

/// Approves issue `number`: sent at its slot, or queued at once when the slot has passed.
pub async fn approve(
    publication: &Publication,
    store: &Store,
    number: u32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssueRecord, ReviewError> {
    // Approved after its slot, it is queued now: for the readers the list files name now.
    if let Err(e) = subscribers::sync_lists(&publication.config, store, now).await {
        tracing::warn!("list files not synced before approving issue #{number}: {e}");
    }
    let plan = store.issue(number).await?.and_then(|i| issue::variant_plan_of(publication, &i, now));
    Ok(store.approve_issue(number, subscribers::issue_lists(&publication.config), plan.as_ref(), actor, now).await?)
}

/// Holds issue `number`: nothing sends it until it is approved.
pub async fn hold(
    _publication: &Publication,
    store: &Store,
    number: u32,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<IssueRecord, ReviewError> {
    Ok(store.hold_issue(number, actor, now).await?)
}

/// The reader's HTML of issue `number` as it stands (edits applied), for the desk's previews:
/// as a reader without a name would get it.
pub async fn preview_html(publication: &Publication, store: &Store, number: u32) -> Result<String, ReviewError> {
    let record = store.issue(number).await?.ok_or(ReviewError::NotFound(number))?;
    let prepared = publication.prepare(&issue::draft_of(publication, &record))?;
    let sample = publication.recipient(sample_reader(), "", Default::default());
    let rendered = prepared.personalize(&sample).map_err(PublicationError::from)?;
    Ok(rendered.html)
}

/// Sends a test copy of issue `number` (as it stands) to `to`, recorded nowhere but the log.
pub async fn send_test(
    publication: &Arc<Publication>,
    store: &Store,
    transport: &Transport,
    clock: Arc<dyn Clock>,
    number: u32,
    to: &EmailAddress,
    actor: &Actor,
) -> Result<(), ReviewError> {
    let record = store.issue(number).await?.ok_or(ReviewError::NotFound(number))?;
    let now = clock.now();
    issue::send_test_copies(Arc::clone(publication), &record, transport, std::slice::from_ref(to), clock).await?;
    let action = crate::store::NewAction {
        actor,
        action: "sent a test copy",
        issue: Some(number),
        subscriber: None,
        detail: to.as_str(),
    };
    store.record_action(&action, now).await?;
    Ok(())
}

/// The reader a preview is rendered for.
fn sample_reader() -> EmailAddress {
    "reader@example.org".parse().unwrap_or_else(|_| unreachable!("a literal address parses"))
}

/// Where an editor reviews issue `number`.
pub fn review_link(publication: &Publication, number: u32) -> String {
    publication.link(&format!("admin/issues/{number}"))
}
