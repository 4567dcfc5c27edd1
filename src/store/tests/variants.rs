//! Issues made with editions and topics, on both backends: each reader of the edition gets the
//! articles of their topics they have not received, in copies shared by readers who get the same,
//! and a reader with nothing new is skipped.

use chrono::Duration;

use super::{now, row, weekly};
use crate::{
    domain::{Article, SafeHtml},
    store::{Candidate, NewIssue, Store, VariantPlan, backend::with_backend},
};

fn article(key: &str) -> Article {
    Article {
        id: key.into(),
        title: key.into(),
        url: Some(format!("https://e.org/{key}").parse().expect("url")),
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

/// Issue `number` of edition `edition` offering `(key, topic)` articles, all the edition's own.
fn issue_of(number: u32, edition: &str, default: bool, offered: &[(&str, &str)]) -> NewIssue {
    NewIssue {
        number,
        subject: "s".into(),
        date: now(),
        articles: offered.iter().map(|(k, _)| article(k)).collect(),
        identities: offered.iter().map(|(k, _)| format!("url:https://e.org/{k}")).collect(),
        slot: None,
        edition: Some(edition.into()),
        variants: Some(VariantPlan {
            default_edition: default,
            editions: vec!["daily".into(), "weekly".into()],
            candidates: offered
                .iter()
                .map(|(k, t)| Candidate {
                    keys: vec![format!("url:https://e.org/{k}")],
                    topics: t.split(',').filter(|t| !t.is_empty()).map(str::to_owned).collect(),
                    published: now(),
                    own: true,
                })
                .collect(),
            oldest: now() - Duration::days(7),
        }),
    }
}

async fn choose(s: &Store, email: &str, edition: Option<&str>, topics: Option<&str>, paused_until: Option<i64>) {
    with_backend!(s, |pool, db| {
        sqlx::query("UPDATE subscribers SET edition = $1, topics = $2, paused_until = $3 WHERE email = $4")
            .bind(edition)
            .bind(topics)
            .bind(paused_until)
            .bind(email)
            .execute(pool)
            .await
            .map(drop)
            .expect("preferences")
    });
}

/// Each delivery of the issue: the reader, its state and the article keys of its copy.
async fn copies(s: &Store, number: u32) -> Vec<(String, String, Vec<String>)> {
    let issue = s.issue(number).await.expect("issue").expect("there");
    let variants = s.issue_variants(number).await.expect("variants");
    let rows: Vec<(String, String, Option<i64>)> = with_backend!(s, |pool, db| {
        sqlx::query_as(
            "SELECT s.email, d.state, d.variant FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id \
             WHERE d.issue_number = $1 ORDER BY s.email",
        )
        .bind(i64::from(number))
        .fetch_all(pool)
        .await
        .expect("deliveries")
    });
    rows.into_iter()
        .map(|(email, state, variant)| {
            let keys = match variant {
                None => Vec::new(),
                Some(v) => {
                    let (_, positions) = variants.iter().find(|(n, _)| *n == v).expect("its variant");
                    positions.iter().map(|&at| issue.articles[at].id.clone()).collect()
                }
            };
            (email, state, keys)
        })
        .collect()
}

fn copy(email: &str, state: &str, keys: &[&str]) -> (String, String, Vec<String>) {
    (email.into(), state.into(), keys.iter().map(|k| (*k).to_owned()).collect())
}

pub(super) async fn each_reader_gets_the_articles_of_their_topics_once_in_copies_shared_by_readers(s: Store) {
    let readers = ["a@e.org", "b@e.org", "c@e.org", "d@e.org", "e@e.org"];
    let rows: Vec<_> = readers.iter().map(|r| row(r, &["weekly"])).collect();
    s.import(&rows, "import", now()).await.expect("import");
    choose(&s, "b@e.org", Some("daily"), Some(";arts;"), None).await;
    choose(&s, "c@e.org", None, Some(";science;"), None).await;
    choose(&s, "d@e.org", Some("daily"), None, None).await;
    let later = (now() + Duration::days(30)).timestamp_millis();
    choose(&s, "e@e.org", None, None, Some(later)).await;
    let lists = [weekly()];

    // The weekly (default) edition: who chose none or weekly, not the paused reader.
    let one = s.create_issue(&issue_of(1, "weekly", true, &[("x", "arts"), ("y", "science")]), &lists, now()).await;
    let one = one.expect("issue 1");
    assert_eq!(one.edition.as_deref(), Some("weekly"));
    assert_eq!(copies(&s, 1).await, [copy("a@e.org", "queued", &["x", "y"]), copy("c@e.org", "queued", &["y"])]);
    assert_eq!(s.issue_variants(1).await.expect("variants").len(), 2);
    let claimed = s.claim(1, "w", 10, now(), std::time::Duration::from_secs(60)).await.expect("claim");
    assert!(claimed.iter().all(|c| c.variant.is_some()), "a claim says which copy: {claimed:?}");

    // The daily edition: its readers alike share one copy.
    s.create_issue(&issue_of(2, "daily", false, &[("x", "arts"), ("z", "arts,science")]), &lists, now())
        .await
        .expect("issue 2");
    assert_eq!(copies(&s, 2).await, [copy("b@e.org", "queued", &["x", "z"]), copy("d@e.org", "queued", &["x", "z"])]);
    assert_eq!(s.issue_variants(2).await.expect("variants").len(), 1);

    // b switches to the weekly edition: nothing of the next weekly issue is new in their topic.
    choose(&s, "b@e.org", None, Some(";arts;"), None).await;
    s.create_issue(&issue_of(3, "weekly", true, &[("x", "arts"), ("y", "science"), ("w", "science")]), &lists, now())
        .await
        .expect("issue 3");
    assert_eq!(
        copies(&s, 3).await,
        [copy("a@e.org", "queued", &["w"]), copy("b@e.org", "skipped", &[]), copy("c@e.org", "queued", &["w"])]
    );
    let three = s.issue(3).await.expect("issue").expect("there");
    assert_eq!(
        three.articles.iter().map(|a| a.id.as_str()).collect::<Vec<_>>(),
        ["w"],
        "the issue keeps what it carries"
    );
    assert_eq!(three.counts.skipped, 1);
}

/// A draft of an edition, approved after its slot, is queued as an issue made at once would be:
/// for its edition's readers, each with the articles of their topics, a reader with nothing new
/// skipped, and the issue keeping what its copies carry.
pub(super) async fn an_approved_draft_is_queued_copy_by_copy_for_its_editions_readers(s: Store) {
    let readers = ["a@e.org", "b@e.org", "c@e.org", "d@e.org", "e@e.org"];
    let rows: Vec<_> = readers.iter().map(|r| row(r, &["weekly"])).collect();
    s.import(&rows, "import", now()).await.expect("import");
    choose(&s, "b@e.org", None, Some(";arts;"), None).await;
    choose(&s, "c@e.org", None, Some(";music;"), None).await;
    choose(&s, "d@e.org", Some("daily"), None, None).await;
    // An edition the publication no longer offers: its readers fall back to the default.
    choose(&s, "e@e.org", Some("monthly"), None, None).await;
    let mut draft = issue_of(1, "weekly", true, &[("x", "arts"), ("y", "science"), ("q", "")]);
    let plan = draft.variants.take().expect("a plan");
    let ed = crate::domain::Actor::CommandLine;
    s.create_draft(&draft, None, &ed, now()).await.expect("draft");
    let made = s.issue(1).await.expect("issue").expect("there");
    assert_eq!(made.counts.total(), 0);
    assert_eq!(made.edition.as_deref(), Some("weekly"), "a draft is of its edition");

    let lists = [weekly()];
    let (_, counted) =
        s.recipients_after_sync(vec![], &lists, Some((&plan, Some("weekly"))), now()).await.expect("count");
    assert_eq!(counted, 3, "a dry run counts the readers whose copy carries something");
    let (_, everyone) = s.recipients_after_sync(vec![], &lists, None, now()).await.expect("count");
    assert_eq!(everyone, 5);
    let sent = s.approve_issue(1, &lists, Some(&plan), &ed, now()).await.expect("approve");
    assert_eq!(sent.status, crate::domain::IssueStatus::Sending);
    assert_eq!(
        copies(&s, 1).await,
        [
            copy("a@e.org", "queued", &["x", "y", "q"]),
            copy("b@e.org", "queued", &["x"]),
            copy("c@e.org", "skipped", &[]),
            copy("e@e.org", "queued", &["x", "y", "q"]),
        ],
        "the daily reader gets none of the weekly edition; one of an edition gone gets the default's"
    );
    assert_eq!(s.issue_variants(1).await.expect("variants").len(), 2);
}
