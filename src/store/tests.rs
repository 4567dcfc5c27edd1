use std::{collections::BTreeMap, time::Duration};

use chrono::{TimeZone, Utc};

use super::*;
use crate::domain::DeliveryState;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 18, 9, 0, 0).single().expect("date")
}

async fn store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    (Store::open(&url).await.expect("open"), dir)
}

fn row(email: &str, lists: &[&str]) -> NewSubscriber {
    NewSubscriber {
        email: email.parse().expect("address"),
        name: Some(email.split('@').next().unwrap_or_default().to_owned()),
        lists: lists.iter().map(|l| l.parse().expect("list")).collect(),
        attributes: BTreeMap::new(),
    }
}

fn weekly() -> ListName {
    "weekly".parse().expect("list")
}

async fn issue(store: &Store, number: u32, lists: &[ListName]) -> IssueRecord {
    let new = NewIssue {
        number,
        subject: "s".into(),
        date: now(),
        articles: vec![],
        identities: vec![format!("url:https://e.org/{number}")],
        slot: None,
    };
    store.create_issue(&new, lists, now()).await.expect("issue")
}

#[tokio::test]
async fn imports_never_bring_back_who_left() {
    let (s, _d) = store().await;
    let c = s
        .import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "import", now())
        .await
        .expect("import");
    assert_eq!((c.imported, c.updated, c.unchanged), (2, 0, 0));
    let a: EmailAddress = "a@example.org".parse().expect("a");
    s.set_status(&a, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "test", now()).await.expect("status");
    let c = s
        .import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "import", now())
        .await
        .expect("import");
    assert_eq!((c.refused, c.unchanged), (1, 1));
    assert_eq!(s.subscriber(&a).await.expect("get").map(|r| r.status), Some(SubscriberStatus::Unsubscribed));

    s.forget(&"b@example.org".parse().expect("b"), "test", now()).await.expect("forget");
    let c = s.import(&[row("b@example.org", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!(c.refused, 1, "a forgotten address is still recognised");
    assert!(s.subscribers(None, None).await.expect("list").iter().all(|r| r.email != "b@example.org"));
}

#[tokio::test]
async fn list_sync_removes_who_the_file_no_longer_names() {
    let (s, _d) = store().await;
    s.sync_list(&weekly(), &[row("a@example.org", &[]), row("b@example.org", &[])], now()).await.expect("sync");
    let c = s.sync_list(&weekly(), &[row("a@example.org", &[])], now()).await.expect("sync");
    assert_eq!(c.removed, 1);
    let members = s.subscribers(Some(&weekly()), None).await.expect("list");
    assert_eq!(members.len(), 1);
}

#[tokio::test]
async fn one_delivery_per_active_subscriber_across_lists() {
    let (s, _d) = store().await;
    s.import(
        &[row("a@example.org", &["weekly", "news"]), row("b@example.org", &["news"]), row("c@example.org", &["other"])],
        "import",
        now(),
    )
    .await
    .expect("import");
    s.set_status(&"b@example.org".parse().expect("b"), SubscriberStatus::Bounced, ConsentEvent::Bounce, "t", now())
        .await
        .expect("s");
    let lists = [weekly(), "news".parse().expect("l")];
    let i = issue(&s, 1, &lists).await;
    assert_eq!(i.counts.queued, 1);
    assert!(matches!(
        s.create_issue(
            &NewIssue { number: 1, subject: "x".into(), date: now(), articles: vec![], identities: vec![], slot: None },
            &lists,
            now()
        )
        .await,
        Err(StoreError::IssueExists(1))
    ));
    let (next, carried) = s.history().await.expect("history");
    assert_eq!(next, 2);
    assert!(carried.contains("url:https://e.org/1"));
}

#[tokio::test]
async fn concurrent_claims_never_share_a_delivery_and_leases_expire() {
    let (s, _d) = store().await;
    let rows: Vec<_> = (0..200).map(|i| row(&format!("r{i}@example.org"), &["weekly"])).collect();
    s.import(&rows, "import", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    let mut tasks = Vec::new();
    for w in 0..4 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let batch = s.claim(1, &format!("w{w}"), 7, now(), Duration::from_secs(30)).await.expect("claim");
                if batch.is_empty() {
                    break mine;
                }
                mine.extend(batch.into_iter().map(|c| c.delivery_id));
            }
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    all.sort_unstable();
    let before = all.len();
    all.dedup();
    assert_eq!((before, all.len()), (200, 200));
    assert!(
        s.claim(1, "late", 10, now() + chrono::Duration::seconds(10), Duration::from_secs(30))
            .await
            .expect("claim")
            .is_empty()
    );
    let expired =
        s.claim(1, "late", 500, now() + chrono::Duration::seconds(31), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(expired.len(), 200, "a dead worker's leases are taken over once they expire");
}

#[tokio::test]
async fn outcomes_are_recorded_and_bounces_mark_the_subscriber() {
    let (s, _d) = store().await;
    s.import(
        &[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"]), row("c@example.org", &["weekly"])],
        "i",
        now(),
    )
    .await
    .expect("import");
    issue(&s, 1, &[weekly()]).await;
    let c = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let out = vec![
        Outcome::Sent { delivery_id: c[0].delivery_id, message_id: "<x@e.org>".into(), reply: None },
        Outcome::Failed {
            delivery_id: c[1].delivery_id,
            reply: "550 5.1.1 unknown".into(),
            bounce: Some(c[1].subscriber_id),
        },
        Outcome::Deferred {
            delivery_id: c[2].delivery_id,
            reply: "451 later".into(),
            retry_at: now() + chrono::Duration::seconds(60),
        },
    ];
    s.record("w", &out, now()).await.expect("record");
    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!((i.counts.sent, i.counts.failed, i.counts.deferred), (1, 1, 1));
    assert_eq!(s.subscriber(&c[1].email).await.expect("s").map(|r| r.status), Some(SubscriberStatus::Bounced));
    assert_eq!(s.failures(1).await.expect("f")[0].reply.as_deref(), Some("550 5.1.1 unknown"));
    assert!(!s.finish_issue_if_done(1, now()).await.expect("finish"));
    assert!(s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim").is_empty(), "not due yet");
    assert_eq!(s.next_due(1).await.expect("due"), Some(now() + chrono::Duration::seconds(60)));
    let later = now() + chrono::Duration::seconds(61);
    let again = s.claim(1, "w", 10, later, Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 1);
    s.record(
        "w",
        &[Outcome::Sent { delivery_id: again[0].delivery_id, message_id: "<y@e.org>".into(), reply: None }],
        later,
    )
    .await
    .expect("r");
    assert!(s.finish_issue_if_done(1, later).await.expect("finish"));
    assert_eq!(s.issue(1).await.expect("i").map(|i| i.status), Some(crate::domain::IssueStatus::Sent));
}

#[tokio::test]
async fn who_unsubscribes_mid_issue_is_skipped() {
    let (s, _d) = store().await;
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    issue(&s, 1, &[weekly()]).await;
    s.set_status(
        &"b@example.org".parse().expect("b"),
        SubscriberStatus::Unsubscribed,
        ConsentEvent::Unsubscribe,
        "web",
        now(),
    )
    .await
    .expect("s");
    let c = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].email.as_str(), "a@example.org");
    let i = s.issue(1).await.expect("i").expect("i");
    assert_eq!(i.counts.skipped, 1);
    let _ = DeliveryState::Skipped;
}

#[tokio::test]
async fn renewed_leases_keep_other_workers_off() {
    let (s, _d) = store().await;
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    issue(&s, 1, &[weekly()]).await;
    let mine = s.claim(1, "w1", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let ids: Vec<i64> = mine.iter().map(|c| c.delivery_id).collect();
    let later = now() + chrono::Duration::seconds(20);
    assert_eq!(s.renew_leases("w1", &ids, later, Duration::from_secs(30)).await.expect("renew"), 2);
    assert_eq!(
        s.renew_leases("w2", &ids, later, Duration::from_secs(30)).await.expect("renew"),
        0,
        "only the holder renews"
    );
    let past_first_lease = now() + chrono::Duration::seconds(40);
    assert!(s.claim(1, "w2", 10, past_first_lease, Duration::from_secs(30)).await.expect("claim").is_empty());
    let past_renewal = now() + chrono::Duration::seconds(51);
    assert_eq!(s.claim(1, "w2", 10, past_renewal, Duration::from_secs(30)).await.expect("claim").len(), 2);
}

#[tokio::test]
async fn a_web_signup_waits_for_confirmation_and_an_old_link_cannot_undo_leaving() {
    let (s, _d) = store().await;
    let a: EmailAddress = "reader@example.org".parse().expect("a");
    let first = s.request_subscription(&a, Some("Reader"), "web 127.0.0.1", now()).await.expect("signup");
    assert_eq!(first, Signup { before: None, recent_requests: 0 });
    let again = s.request_subscription(&a, None, "web 127.0.0.1", now()).await.expect("signup");
    assert_eq!(again, Signup { before: Some(SubscriberStatus::Unconfirmed), recent_requests: 1 });
    let later = now() + chrono::Duration::days(2);
    let after_a_day = s.request_subscription(&a, None, "web", later).await.expect("signup");
    assert_eq!(after_a_day.recent_requests, 0, "requests older than a day no longer count");
    assert_eq!(s.subscriber(&a).await.expect("get").map(|r| r.status), Some(SubscriberStatus::Unconfirmed));

    let issue_none = issue(&s, 1, &[weekly()]).await;
    assert_eq!(issue_none.counts.total(), 0, "an unconfirmed address gets no issue");

    let issued = now();
    let c = s.confirm_subscription(&a, &[weekly()], issued, "web", later).await.expect("confirm");
    assert_eq!(c, Confirmation::Confirmed);
    let c = s.confirm_subscription(&a, &[weekly()], issued, "web", later).await.expect("confirm");
    assert_eq!(c, Confirmation::AlreadyActive, "confirming twice changes nothing");
    let rec = s.subscriber(&a).await.expect("get").expect("stored");
    assert_eq!(
        (rec.status, rec.lists.clone(), rec.name.as_str()),
        (SubscriberStatus::Active, vec!["weekly".to_owned()], "Reader")
    );

    let left_at = later + chrono::Duration::hours(1);
    s.set_status(&a, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", left_at).await.expect("leave");
    let replay = s.confirm_subscription(&a, &[weekly()], issued, "web", left_at).await.expect("confirm");
    assert_eq!(replay, Confirmation::Stale, "a link made before leaving cannot bring the address back");
    let fresh = s
        .confirm_subscription(&a, &[weekly()], left_at + chrono::Duration::minutes(1), "web", left_at)
        .await
        .expect("confirm");
    assert_eq!(fresh, Confirmation::Confirmed, "a link asked for after leaving may");

    let nobody: EmailAddress = "nobody@example.org".parse().expect("n");
    assert_eq!(s.confirm_subscription(&nobody, &[], issued, "web", later).await.expect("c"), Confirmation::Unknown);
    let counts = s.status_counts().await.expect("counts");
    assert_eq!(counts.get("active"), Some(&1));
    assert_eq!(counts.get("bounced"), Some(&0));
}

#[tokio::test]
async fn the_rate_bucket_is_shared_and_refills_with_time() {
    let (s, _d) = store().await;
    let t0 = now();
    let g = s.take_tokens("smtp", 10.0, 5.0, 100, t0).await.expect("take");
    assert_eq!(g.granted, 5, "a new bucket starts full");
    let g = s.take_tokens("smtp", 10.0, 5.0, 100, t0).await.expect("take");
    assert_eq!((g.granted, g.retry_in), (0, Duration::from_millis(100)));
    let g = s.take_tokens("smtp", 10.0, 5.0, 2, t0 + chrono::Duration::milliseconds(350)).await.expect("take");
    assert_eq!(g.granted, 2);
    let g = s.take_tokens("other", 10.0, 5.0, 1, t0).await.expect("take");
    assert_eq!(g.granted, 1, "buckets are separate");
}
