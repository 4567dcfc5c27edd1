//! Issues under review: a draft made ahead of its slot (articles frozen, nothing queued, the slot
//! taken in the same transaction, so a slot's draft is made once however many daemons run), its
//! edits, and its moves between `draft`, `held`, `approved` and `sending`, each recorded in the
//! log of actions in the same transaction as the change. What an edit or a move may do is decided
//! by the plain functions at the end, from the issue as it stands inside the transaction.

use chrono::{DateTime, Utc};

use super::{
    IssueRecord, NewIssue, Store, StoreError, VariantPlan, actions,
    backend::{Values, in_tx, issue_number, ms, to_json, with_backend},
    issues::{Row, assign_readers, queue_assigned, take_slot},
};
use crate::domain::{Actor, Article, IssueStatus, ListName};

const INSERT_DRAFT: &str = "INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at, send_at, edition) \
     VALUES ($1, 'draft', $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING";
const SET_STATUS: &str = "UPDATE issues SET status = $1 WHERE number = $2";
/// At its approval, an issue of editions or topics keeps the articles some reader's copy carries.
const SET_ARTICLES: &str = "UPDATE issues SET articles = $1 WHERE number = $2";
const REVISE: &str = "UPDATE issues SET subject = $1, edited_subject = $2, intro = $3, articles = $4, left_out = $5 \
     WHERE number = $6";
/// An edit changes which articles the issue carries: they are written again whole.
const UNCARRY: &str = "DELETE FROM issue_articles WHERE issue_number = $1";
const IN_REVIEW: &str = "SELECT min(number) FROM issues WHERE status IN ('draft', 'held', 'approved')";
/// Issues whose slot has come and that the scheduler has yet to send or hold.
const DUE: &str = "SELECT number FROM issues WHERE status IN ('draft', 'approved') AND send_at IS NOT NULL \
     AND send_at <= $1 ORDER BY number";

/// What an edit makes of an issue: its content whole, as it is to stand.
#[derive(Debug, Clone, PartialEq)]
pub struct Revision {
    /// `Some`: the editor's subject, used as it stands; `None`: the subject template's.
    pub subject: Option<String>,
    /// The intro in Markdown; `None` for none.
    pub intro: Option<String>,
    pub articles: Vec<Article>,
    pub left_out: Vec<Article>,
    /// The identities of `articles`, for `since_last_issue`.
    pub identities: Vec<String>,
    /// What the log says was changed.
    pub detail: String,
}

/// What the scheduler did with an issue whose slot came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtSlot {
    /// Queued for its readers: it is sending.
    Queued,
    /// Not approved where approval is required: held, and the editors are to be told.
    Held,
    /// Nothing to do (held by an editor, or already moved on by someone else).
    Left,
}

impl Store {
    /// Creates issue `issue.number` as a draft: its articles frozen and carried (a later issue
    /// will not carry them again), its slot taken, nothing queued, and the making logged.
    pub async fn create_draft(
        &self,
        issue: &NewIssue,
        send_at: Option<DateTime<Utc>>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        let articles = to_json(&issue.articles)?;
        let number = i64::from(issue.number);
        let actor = actor.label();
        in_tx!(self, |tx, db| {
            let inserted = sqlx::query(INSERT_DRAFT)
                .bind(number)
                .bind(&issue.subject)
                .bind(ms(issue.date))
                .bind(&articles)
                .bind(issue.slot.as_ref().map(|s| &s.key))
                .bind(ms(now))
                .bind(send_at.map(ms))
                .bind(issue.edition.as_deref())
                .execute(&mut *tx)
                .await?;
            if inserted.rows_affected() == 0 {
                return Err(StoreError::IssueExists(issue.number));
            }
            take_slot(&mut tx, issue.slot.as_ref(), number, now).await?;
            sqlx::query(db::CARRY_ARTICLES).bind(number).bind(Values(&issue.identities)).execute(&mut *tx).await?;
            sqlx::query(actions::RECORD)
                .bind(ms(now))
                .bind(actor.as_str())
                .bind("drafted")
                .bind(Some(number))
                .bind(None::<&str>)
                .bind(send_at.map(|t| format!("for {}", t.to_rfc3339())).unwrap_or_default())
                .execute(&mut *tx)
                .await?;
            Ok(())
        })?;
        self.issue(issue.number).await?.ok_or(StoreError::NoIssue(issue.number))
    }

    /// Edits issue `number` while it is a draft or held: `revise` makes the issue's new content
    /// from the issue as it stands (read inside the transaction, so two editors' changes both
    /// count), or refuses with a message for the editor.
    pub async fn edit_issue<F>(
        &self,
        number: u32,
        actor: &Actor,
        now: DateTime<Utc>,
        revise: F,
    ) -> Result<IssueRecord, StoreError>
    where
        F: Fn(&IssueRecord) -> Result<Revision, String>,
    {
        let n = i64::from(number);
        let actor = actor.label();
        in_tx!(self, |tx, db| {
            let row: Option<Row> = sqlx::query_as(db::LOCK_ISSUE).bind(n).fetch_optional(&mut *tx).await?;
            let current = row.ok_or(StoreError::NoIssue(number))?.record(Default::default(), Default::default())?;
            editable(current.status).map_err(|why| StoreError::IssueState { number, status: current.status, why })?;
            let r = revise(&current).map_err(StoreError::EditRefused)?;
            sqlx::query(REVISE)
                .bind(r.subject.as_deref().unwrap_or(&current.subject))
                .bind(r.subject.as_deref())
                .bind(r.intro.as_deref())
                .bind(to_json(&r.articles)?)
                .bind(to_json(&r.left_out)?)
                .bind(n)
                .execute(&mut *tx)
                .await?;
            sqlx::query(UNCARRY).bind(n).execute(&mut *tx).await?;
            sqlx::query(db::CARRY_ARTICLES).bind(n).bind(Values(&r.identities)).execute(&mut *tx).await?;
            sqlx::query(actions::RECORD)
                .bind(ms(now))
                .bind(actor.as_str())
                .bind("edited")
                .bind(Some(n))
                .bind(None::<&str>)
                .bind(r.detail.as_str())
                .execute(&mut *tx)
                .await?;
            Ok(())
        })?;
        self.issue(number).await?.ok_or(StoreError::NoIssue(number))
    }

    /// Approves a draft or held issue: it waits for its slot (`approved`), or, when the slot has
    /// passed or it has none, is queued at once for the readers of `lists` (`sending`).
    pub async fn approve_issue(
        &self,
        number: u32,
        lists: &[ListName],
        plan: Option<&VariantPlan>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<IssueRecord, StoreError> {
        self.move_issue(number, (lists, plan), actor, now, "approved", |i| approval(i.status, i.send_at, now)).await?;
        self.issue(number).await?.ok_or(StoreError::NoIssue(number))
    }

    /// Holds a draft or approved issue: nothing sends it until it is approved again.
    pub async fn hold_issue(&self, number: u32, actor: &Actor, now: DateTime<Utc>) -> Result<IssueRecord, StoreError> {
        self.move_issue(number, (&[], None), actor, now, "held", |i| holding(i.status)).await?;
        self.issue(number).await?.ok_or(StoreError::NoIssue(number))
    }

    /// What the slot of issue `number` does to it: approved (or, without `required`, not held)
    /// it is queued for the readers of `lists`; a draft that needed approval is held.
    pub async fn serve_slot(
        &self,
        number: u32,
        required: bool,
        lists: &[ListName],
        plan: Option<&VariantPlan>,
        actor: &Actor,
        now: DateTime<Utc>,
    ) -> Result<AtSlot, StoreError> {
        let moved = self.move_issue(number, (lists, plan), actor, now, "", |i| Ok(at_slot(i.status, required))).await?;
        Ok(match moved {
            Some(IssueStatus::Sending) => AtSlot::Queued,
            Some(IssueStatus::Held) => AtSlot::Held,
            _ => AtSlot::Left,
        })
    }

    /// Moves issue `number` to the status `decide` names (`None`: leaves it), queuing its
    /// deliveries when that is `sending`, and logs the move as `action` (or as the new status).
    async fn move_issue<F>(
        &self,
        number: u32,
        (lists, plan): (&[ListName], Option<&VariantPlan>),
        actor: &Actor,
        now: DateTime<Utc>,
        action: &str,
        decide: F,
    ) -> Result<Option<IssueStatus>, StoreError>
    where
        F: Fn(&IssueRecord) -> Result<Option<IssueStatus>, &'static str>,
    {
        let n = i64::from(number);
        let actor = actor.label();
        let names: Vec<&str> = lists.iter().map(AsRef::as_ref).collect();
        in_tx!(self, |tx, db| {
            let row: Option<Row> = sqlx::query_as(db::LOCK_ISSUE).bind(n).fetch_optional(&mut *tx).await?;
            let current = row.ok_or(StoreError::NoIssue(number))?.record(Default::default(), Default::default())?;
            let Some(to) =
                decide(&current).map_err(|why| StoreError::IssueState { number, status: current.status, why })?
            else {
                return Ok(None);
            };
            sqlx::query(SET_STATUS).bind(to.as_str()).bind(n).execute(&mut *tx).await?;
            match (to, plan) {
                (IssueStatus::Sending, Some(plan)) => {
                    // Each reader's copy is chosen now, against what they received by now; the
                    // issue keeps the articles some copy carries, as one made at once does.
                    let assigned = assign_readers!(tx, db, plan, &names, current.edition.as_deref(), now);
                    let kept: Vec<&Article> = assigned.kept.iter().filter_map(|&i| current.articles.get(i)).collect();
                    if kept.len() != assigned.kept.len() {
                        return Err(StoreError::Corrupt(format!(
                            "issue {number}'s plan names articles the issue does not hold"
                        )));
                    }
                    let identities: Vec<&str> = assigned
                        .kept
                        .iter()
                        .flat_map(|&i| plan.candidates[i].keys.iter().map(String::as_str))
                        .collect::<std::collections::HashSet<_>>()
                        .into_iter()
                        .collect();
                    sqlx::query(SET_ARTICLES).bind(to_json(&kept)?).bind(n).execute(&mut *tx).await?;
                    sqlx::query(UNCARRY).bind(n).execute(&mut *tx).await?;
                    sqlx::query(db::CARRY_ARTICLES).bind(n).bind(Values(&identities)).execute(&mut *tx).await?;
                    queue_assigned!(tx, db, n, plan, &assigned, now);
                }
                (IssueStatus::Sending, None) => {
                    sqlx::query(db::QUEUE_ISSUE).bind(n).bind(ms(now)).bind(Values(&names)).execute(&mut *tx).await?;
                }
                _ => {}
            }
            let logged = if action.is_empty() { to.as_str() } else { action };
            let detail = if to == IssueStatus::Sending { "queued for its readers" } else { "" };
            sqlx::query(actions::RECORD)
                .bind(ms(now))
                .bind(actor.as_str())
                .bind(logged)
                .bind(Some(n))
                .bind(None::<&str>)
                .bind(detail)
                .execute(&mut *tx)
                .await?;
            Ok(Some(to))
        })
    }

    /// The oldest issue under review (a draft, held or approved), if any.
    pub async fn issue_in_review(&self) -> Result<Option<IssueRecord>, StoreError> {
        let n: Option<i64> = with_backend!(self, |pool, db| sqlx::query_scalar(IN_REVIEW).fetch_one(pool).await?);
        match n {
            Some(n) => self.issue(issue_number(n)?).await,
            None => Ok(None),
        }
    }

    /// The drafts and approved issues whose slot is at or before `now`, oldest first.
    pub async fn reviews_due(&self, now: DateTime<Utc>) -> Result<Vec<u32>, StoreError> {
        let rows: Vec<i64> =
            with_backend!(self, |pool, db| sqlx::query_scalar(DUE).bind(ms(now)).fetch_all(pool).await?);
        rows.into_iter().map(issue_number).collect()
    }
}

/// Only a draft or a held issue takes edits: an approved one is held again first.
fn editable(status: IssueStatus) -> Result<(), &'static str> {
    match status {
        IssueStatus::Draft | IssueStatus::Held => Ok(()),
        IssueStatus::Approved => Err("hold it first to edit it (an approved issue is not edited behind its approval)"),
        _ => Err("only a draft or a held issue can be edited"),
    }
}

/// Approving a draft or held issue: queued at once when its slot has passed (or it has none).
fn approval(
    status: IssueStatus,
    send_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<IssueStatus>, &'static str> {
    match status {
        IssueStatus::Draft | IssueStatus::Held => {
            Ok(Some(if send_at.is_none_or(|t| t <= now) { IssueStatus::Sending } else { IssueStatus::Approved }))
        }
        IssueStatus::Approved => Err("it is already approved"),
        _ => Err("only a draft or a held issue can be approved"),
    }
}

fn holding(status: IssueStatus) -> Result<Option<IssueStatus>, &'static str> {
    match status {
        IssueStatus::Draft | IssueStatus::Approved => Ok(Some(IssueStatus::Held)),
        IssueStatus::Held => Err("it is already held"),
        _ => Err("only a draft or an approved issue can be held"),
    }
}

/// At its slot: approved goes; a draft goes unless approval is required, when it is held.
fn at_slot(status: IssueStatus, required: bool) -> Option<IssueStatus> {
    match status {
        IssueStatus::Approved => Some(IssueStatus::Sending),
        IssueStatus::Draft if required => Some(IssueStatus::Held),
        IssueStatus::Draft => Some(IssueStatus::Sending),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    #[test]
    fn approving_queues_at_once_only_when_the_slot_has_passed() {
        let now = Utc.with_ymd_and_hms(2024, 3, 18, 9, 0, 0).single().expect("time");
        let later = now + chrono::Duration::hours(1);
        assert_eq!(approval(IssueStatus::Draft, Some(later), now), Ok(Some(IssueStatus::Approved)));
        assert_eq!(approval(IssueStatus::Held, Some(now), now), Ok(Some(IssueStatus::Sending)));
        assert_eq!(approval(IssueStatus::Draft, None, now), Ok(Some(IssueStatus::Sending)));
        assert!(approval(IssueStatus::Approved, Some(later), now).is_err());
        assert!(approval(IssueStatus::Sent, None, now).is_err());
    }

    #[test]
    fn a_slot_sends_the_approved_and_holds_what_needed_approval() {
        assert_eq!(at_slot(IssueStatus::Approved, true), Some(IssueStatus::Sending));
        assert_eq!(at_slot(IssueStatus::Draft, true), Some(IssueStatus::Held));
        assert_eq!(at_slot(IssueStatus::Draft, false), Some(IssueStatus::Sending));
        assert_eq!(at_slot(IssueStatus::Held, false), None);
        assert_eq!(at_slot(IssueStatus::Sending, true), None);
    }

    #[test]
    fn only_drafts_and_held_issues_take_edits_and_holds_move_what_is_not_held() {
        assert!(editable(IssueStatus::Draft).is_ok());
        assert!(editable(IssueStatus::Held).is_ok());
        assert!(editable(IssueStatus::Approved).is_err());
        assert_eq!(holding(IssueStatus::Approved), Ok(Some(IssueStatus::Held)));
        assert!(holding(IssueStatus::Held).is_err());
    }
}
