//! A long list queued a chunk at a time, on both backends: every reader once, whoever fills it
//! and however many fill it at once; an issue is not done while readers are still to queue.

use std::{collections::HashSet, time::Duration};

use super::{now, row, weekly};
use crate::{
    domain::{ListName, Outcome, SubscriberStatus},
    store::{ConsentEvent, Filled, IssueRecord, NewIssue, Store},
};

/// Readers of every test: more than three chunks of [`CHUNK`].
const READERS: usize = 25;
const CHUNK: usize = 10;

async fn readers(s: &Store) {
    let rows: Vec<_> = (0..READERS).map(|i| row(&format!("r{i:02}@example.org"), &["weekly"])).collect();
    s.import(&rows, "import", now()).await.expect("import");
}

async fn new_issue(s: &Store, number: u32, first: usize) -> IssueRecord {
    let new = NewIssue {
        number,
        subject: "s".into(),
        date: now(),
        articles: vec![],
        identities: vec![format!("url:https://e.org/{number}")],
        slot: None,
        edition: None,
        variants: None,
    };
    s.create_issue_queueing(&new, &[weekly()], first, now()).await.expect("issue")
}

/// Claims and records as sent everything queued of issue `number`; the addresses sent to.
async fn send_all(s: &Store, number: u32) -> Vec<String> {
    let claimed = s.claim(number, "w", 1000, now(), Duration::from_secs(60)).await.expect("claim");
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Sent {
            delivery_id: c.delivery_id,
            message_id: format!("<{}@e.org>", c.delivery_id),
            reply: None,
        })
        .collect();
    s.record("w", &outcomes, now()).await.expect("record");
    claimed.iter().map(|c| c.email.as_str().to_owned()).collect()
}

fn lists() -> [ListName; 1] {
    [weekly()]
}

pub(super) async fn a_long_list_is_queued_a_chunk_at_a_time_and_the_issue_is_done_only_then(s: Store) {
    readers(&s).await;
    let issue = new_issue(&s, 1, CHUNK).await;
    assert_eq!(issue.counts.queued, CHUNK as u64, "only the first chunk is queued with the issue");
    assert!(s.filling(1).await.expect("filling"));
    let mut sent = send_all(&s, 1).await;
    assert!(!s.finish_issue_if_done(1, now()).await.expect("finish"), "readers are still to queue");
    assert_eq!(s.queue_more(1, &lists(), CHUNK, now()).await.expect("more"), Filled { queued: 10, more: true });
    assert_eq!(s.queue_more(1, &lists(), CHUNK, now()).await.expect("more"), Filled { queued: 5, more: false });
    assert!(!s.filling(1).await.expect("filling"));
    assert_eq!(s.queue_more(1, &lists(), CHUNK, now()).await.expect("more"), Filled { queued: 0, more: false });
    sent.extend(send_all(&s, 1).await);
    let distinct: HashSet<&String> = sent.iter().collect();
    assert_eq!((sent.len(), distinct.len()), (READERS, READERS), "each reader once: {sent:?}");
    assert!(s.finish_issue_if_done(1, now()).await.expect("finish"));
}

pub(super) async fn two_fillers_at_once_queue_each_reader_once(s: Store) {
    readers(&s).await;
    new_issue(&s, 1, 3).await;
    let fill = |s: Store| async move {
        let mut queued = 0;
        loop {
            let f = s.queue_more(1, &lists(), 4, now()).await.expect("more");
            queued += f.queued;
            if !f.more {
                return queued;
            }
        }
    };
    let (a, b) = tokio::join!(fill(s.clone()), fill(s.clone()));
    assert_eq!(a + b, (READERS - 3) as u64, "each chunk read by one filler ({a} and {b})");
    let issue = s.issue(1).await.expect("issue").expect("issue");
    assert_eq!(issue.counts.queued, READERS as u64);
    assert!(!s.filling(1).await.expect("filling"));
}

pub(super) async fn a_reader_who_leaves_before_their_chunk_is_not_queued(s: Store) {
    readers(&s).await;
    new_issue(&s, 1, CHUNK).await;
    let leaver = "r20@example.org".parse().expect("address");
    s.set_status(&leaver, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", now())
        .await
        .expect("leave");
    assert_eq!(s.queue_all(1, &lists(), CHUNK, now()).await.expect("fill"), (READERS - CHUNK - 1) as u64);
    let issue = s.issue(1).await.expect("issue").expect("issue");
    assert_eq!((issue.counts.queued, issue.counts.skipped), ((READERS - 1) as u64, 0));
    let sent = send_all(&s, 1).await;
    assert!(!sent.iter().any(|a| a == "r20@example.org"));
    assert!(s.finish_issue_if_done(1, now()).await.expect("finish"));
}

pub(super) async fn a_cancelled_issue_is_filled_no_further(s: Store) {
    readers(&s).await;
    new_issue(&s, 1, CHUNK).await;
    assert!(s.cancel_issue(1, now()).await.expect("cancel"));
    assert_eq!(s.queue_more(1, &lists(), CHUNK, now()).await.expect("more"), Filled { queued: 0, more: false });
    assert!(!s.filling(1).await.expect("filling"));
    let issue = s.issue(1).await.expect("issue").expect("issue");
    assert_eq!((issue.counts.queued, issue.counts.skipped), (0, CHUNK as u64));
}
