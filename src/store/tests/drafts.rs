//! Drafts under review, on both backends: made once per slot, edited, approved, held, served at
//! their slot, each logged.

use chrono::{DateTime, Utc};

use super::{now, row, weekly};
use crate::{
    domain::{Actor, Article, IssueStatus, SafeHtml},
    store::{AtSlot, NewIssue, Revision, SlotRef, Store, StoreError},
};

fn article(n: u32) -> Article {
    Article {
        id: format!("a{n}"),
        title: format!("Article {n}"),
        url: Some(format!("https://e.org/{n}").parse().expect("url")),
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

fn new_draft(number: u32, slot: Option<&str>) -> NewIssue {
    NewIssue {
        number,
        subject: "Mirror".into(),
        date: now(),
        articles: vec![article(1), article(2)],
        identities: vec!["url:https://e.org/1".into(), "url:https://e.org/2".into()],
        slot: slot.map(|key| SlotRef { key: key.into(), at: now() }),
        edition: None,
        variants: None,
    }
}

fn later(hours: i64) -> DateTime<Utc> {
    now() + chrono::Duration::hours(hours)
}

pub(super) async fn a_slots_draft_is_made_once_and_queues_nothing(s: Store) {
    s.import(&[row("a@example.org", &["weekly"])], "import", now()).await.expect("import");
    let (one, two) = (new_draft(1, Some("2024-03-19T09:00:00 UTC")), new_draft(1, Some("2024-03-19T09:00:00 UTC")));
    let (a, b) = tokio::join!(
        s.create_draft(&one, Some(later(24)), &Actor::Scheduler, now()),
        s.create_draft(&two, Some(later(24)), &Actor::Scheduler, now()),
    );
    let made: Vec<_> = [a, b].into_iter().filter_map(Result::ok).collect();
    assert_eq!(made.len(), 1, "one of two daemons makes the slot's draft");
    // Another number for the same slot finds the slot taken.
    let other = s.create_draft(&new_draft(2, Some("2024-03-19T09:00:00 UTC")), None, &Actor::Scheduler, now()).await;
    assert!(matches!(other, Err(StoreError::SlotTaken(_) | StoreError::IssueExists(_))), "{other:?}");
    let d = s.issue(1).await.expect("read").expect("draft");
    assert_eq!(d.status, IssueStatus::Draft);
    assert_eq!(d.counts.total(), 0, "a draft queues nothing");
    assert_eq!(d.send_at, Some(later(24)));
    let (_, carried) = s.history().await.expect("history");
    assert!(carried.contains("url:https://e.org/2"), "a draft's articles are not carried again");
    let log = s.issue_actions(1).await.expect("log");
    assert_eq!(log.iter().map(|a| a.action.as_str()).collect::<Vec<_>>(), ["drafted"]);
    assert_eq!(log[0].actor, "scheduler");
}

pub(super) async fn a_draft_is_edited_held_and_approved_and_each_step_is_logged(s: Store) {
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "import", now())
        .await
        .expect("import");
    s.create_draft(&new_draft(1, None), Some(later(2)), &Actor::CommandLine, now()).await.expect("draft");
    let ed = Actor::User("ed@example.org".parse().expect("a"));
    let leave_out_two = |i: &crate::store::IssueRecord| -> Result<Revision, String> {
        let (keep, out): (Vec<_>, Vec<_>) = i.articles.iter().cloned().partition(|a| a.id != "a2");
        Ok(Revision {
            subject: Some("Spring".into()),
            intro: Some("Hello *all*".into()),
            articles: keep,
            left_out: out,
            identities: vec!["url:https://e.org/1".into()],
            detail: "left out 1".into(),
        })
    };
    let edited = s.edit_issue(1, &ed, now(), leave_out_two).await.expect("edit");
    assert_eq!((edited.subject.as_str(), edited.subject_edited), ("Spring", true));
    assert_eq!(edited.intro.as_deref(), Some("Hello *all*"));
    assert_eq!(edited.articles.len(), 1);
    assert_eq!(edited.left_out[0].id, "a2");
    let (_, carried) = s.history().await.expect("history");
    assert!(!carried.contains("url:https://e.org/2"), "a left-out article may go in a later issue");

    let refused = s.edit_issue(1, &ed, now(), |_| Err("no such article".into())).await;
    assert!(matches!(refused, Err(StoreError::EditRefused(_))), "{refused:?}");

    let lists = [weekly()];
    let approved = s.approve_issue(1, &lists, None, &ed, now()).await.expect("approve");
    assert_eq!(approved.status, IssueStatus::Approved, "approved before its slot, it waits");
    assert_eq!(approved.counts.total(), 0);
    let again = s.edit_issue(1, &ed, now(), leave_out_two).await;
    assert!(matches!(again, Err(StoreError::IssueState { status: IssueStatus::Approved, .. })), "{again:?}");
    assert!(s.reviews_due(now()).await.expect("due").is_empty());

    let held = s.hold_issue(1, &Actor::CommandLine, now()).await.expect("hold");
    assert_eq!(held.status, IssueStatus::Held);
    assert!(s.hold_issue(1, &Actor::CommandLine, now()).await.is_err(), "held once");
    assert_eq!(s.serve_slot(1, false, &lists, None, &Actor::Scheduler, later(3)).await.expect("slot"), AtSlot::Left);

    // Approved after its slot: queued at once for every reader.
    let sent = s.approve_issue(1, &lists, None, &ed, later(3)).await.expect("approve");
    assert_eq!(sent.status, IssueStatus::Sending);
    assert_eq!(sent.counts.queued, 2);
    assert_eq!(s.unfinished_issue().await.expect("read").map(|i| i.number), Some(1));
    let log: Vec<String> = s.issue_actions(1).await.expect("log").into_iter().map(|a| a.action).collect();
    assert_eq!(log, ["approved", "held", "approved", "edited", "drafted"]);
}

pub(super) async fn at_its_slot_a_draft_is_held_or_sent_as_approval_says(s: Store) {
    s.import(&[row("a@example.org", &["weekly"])], "import", now()).await.expect("import");
    let lists = [weekly()];
    s.create_draft(&new_draft(1, None), Some(later(1)), &Actor::Scheduler, now()).await.expect("draft");
    assert!(s.reviews_due(now()).await.expect("due").is_empty());
    assert_eq!(s.reviews_due(later(1)).await.expect("due"), [1]);
    assert_eq!(s.serve_slot(1, true, &lists, None, &Actor::Scheduler, later(1)).await.expect("slot"), AtSlot::Held);
    assert!(s.reviews_due(later(1)).await.expect("due").is_empty(), "a held issue waits for a person");
    assert!(s.cancel_issue(1, later(2)).await.expect("cancel"), "a held issue may be cancelled");
    let (_, carried) = s.history().await.expect("history");
    assert!(!carried.contains("url:https://e.org/1"), "a cancelled draft's articles are free again");

    let mut second = new_draft(2, None);
    second.identities = vec!["url:https://e.org/3".into()];
    s.create_draft(&second, Some(later(1)), &Actor::Scheduler, now()).await.expect("draft");
    assert_eq!(s.serve_slot(2, false, &lists, None, &Actor::Scheduler, later(1)).await.expect("slot"), AtSlot::Queued);
    let i = s.issue(2).await.expect("read").expect("issue");
    assert_eq!((i.status, i.counts.queued), (IssueStatus::Sending, 1));
}
