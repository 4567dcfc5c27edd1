//! The store's behaviour, the same tests on each backend: every test below runs as
//! `sqlite::NAME` on a temporary file and as `postgres::NAME` on a database of its own, created
//! for it on the PostgreSQL server and dropped afterwards. Then the tests that only PostgreSQL
//! needs: two stores on one database, opening a new database together, the indexes the hot
//! statements use at a million deliveries, and TLS against a server of its own (`tls.rs`).

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use sqlx::{Connection, PgConnection};

use super::{backend::with_backend, *};
use crate::domain::{Actor, BounceKind, DeliveryState, EmailAddress, ListName, SubscriberName, SubscriberStatus};

/// Where the tests find a PostgreSQL server they may create databases on.
const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 18, 9, 0, 0).single().expect("date")
}

/// A database of its own on the test server, dropped (with any connection still open to it)
/// when this is.
struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

impl TestDatabase {
    fn server() -> String {
        std::env::var("GAZETTE_TEST_POSTGRES").ok().filter(|v| !v.trim().is_empty()).unwrap_or(DEFAULT_SERVER.into())
    }

    async fn admin(server: &str) -> PgConnection {
        PgConnection::connect(server).await.unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {server} ({e}): run `bash scripts/test.sh`, which installs and starts it, \
                 or point $GAZETTE_TEST_POSTGRES at a server where this user may create databases"
            )
        })
    }

    /// A name and URL only: the database is made by whoever opens it first.
    fn named() -> Self {
        let server = Self::server();
        let name = format!("gazette_t_{:016x}", rand::random::<u64>());
        let mut url = url::Url::parse(&server).expect("$GAZETTE_TEST_POSTGRES is a URL");
        url.set_path(&format!("/{name}"));
        Self { server, name, url: url.to_string() }
    }

    async fn create() -> Self {
        let db = Self::named();
        let mut admin = Self::admin(&db.server).await;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {}", db.name)))
            .execute(&mut admin)
            .await
            .expect("create the test database");
        admin.close().await.expect("close");
        db
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        // Dropped inside the test's runtime, which cannot be blocked on: a thread of its own
        // with a runtime of its own does the work.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async {
                let mut admin = PgConnection::connect(&server).await?;
                sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .execute(&mut admin)
                    .await?;
                admin.close().await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) && !std::thread::panicking() {
            panic!("could not drop the test database {}: {dropped:?}", self.name);
        }
    }
}

/// A store of one backend on a fresh database, and what keeps that database alive.
struct TestStore {
    store: Store,
    _db: Backing,
}

enum Backing {
    File(#[allow(dead_code)] tempfile::TempDir),
    Server(#[allow(dead_code)] TestDatabase),
}

async fn sqlite() -> TestStore {
    let dir = tempfile::tempdir().expect("tmp");
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    TestStore { store: Store::open(&url).await.expect("open"), _db: Backing::File(dir) }
}

async fn postgres() -> TestStore {
    let db = TestDatabase::create().await;
    let store = Store::open_with(&db.url, StoreOptions { pool_size: 4 }).await.expect("open");
    TestStore { store, _db: Backing::Server(db) }
}

/// Runs each named `async fn(Store)` as a test on each backend.
macro_rules! on_each_backend {
    ($($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = super::sqlite().await;
                    super::$name(t.store.clone()).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let t = super::postgres().await;
                    super::$name(t.store.clone()).await;
                }
            )+
        }
    };
}

on_each_backend!(
    each_editions_last_slot_is_its_own,
    imports_never_bring_back_who_left,
    an_import_records_one_consent_event_per_reader_it_adds_or_brings_back,
    list_sync_removes_who_the_file_no_longer_names,
    a_streamed_address_named_again_is_taken_out_by_its_line,
    a_strict_streamed_import_with_a_repeat_writes_nothing,
    one_delivery_per_active_subscriber_across_lists,
    concurrent_claims_never_share_a_delivery_and_leases_expire,
    outcomes_are_recorded_and_bounces_mark_the_subscriber,
    each_outcome_keeps_its_relay_and_an_issue_says_what_each_relay_did,
    who_unsubscribes_mid_issue_is_skipped,
    renewed_leases_keep_other_workers_off,
    a_web_signup_waits_for_confirmation_and_an_old_link_cannot_undo_leaving,
    the_rate_bucket_is_shared_and_refills_with_time,
    an_import_means_what_its_rows_one_by_one_would,
    a_large_import_means_the_same_across_its_chunks,
    a_streamed_import_is_kept_only_once_its_end_arrives,
    slots_feeds_and_first_sightings_are_kept_once,
    cancelled_reopened_and_sent_issues_read_back_alike,
    the_next_due_time_and_a_release_follow_the_leases,
    writers_at_once_take_their_turn,
    an_issue_is_on_the_archive_from_its_first_delivery_sent,
    renewals_and_records_of_the_same_deliveries_at_once_both_go_through,
    an_address_is_one_subscriber_whatever_the_case_of_its_letters,
    the_signup_limit_counts_one_mailbox_however_it_is_spelled,
    the_ledger_is_counted_by_issue_status_and_delivery_state,
    a_trial_sync_counts_what_the_syncs_would_leave_and_keeps_nothing,
    a_list_file_is_noted_changed_only_when_its_digest_differs,
    a_subscriber_refused_twice_in_one_batch_bounces_once_noting_the_first_refusal,
    readers_refused_in_one_batch_each_have_their_own_refusal_noted,
    a_release_hands_back_only_deliveries_still_to_send,
    a_worker_whose_lease_was_taken_over_records_only_what_is_final,
    an_import_numbers_new_addresses_in_the_order_of_its_rows,
    two_spellings_of_a_new_address_in_one_import_are_one_subscriber,
    an_address_forgotten_and_signed_up_again_can_be_forgotten_again,
    a_signup_names_only_a_new_address_and_a_confirmation_joins_each_list_once,
    forgetting_and_leaving_at_once_take_their_turn,
    a_bounce_is_found_by_delivery_message_id_or_address_and_applied_once,
    soft_bounces_of_different_messages_add_up_within_the_window,
    a_complaint_takes_the_reader_off_every_list_and_a_bounce_leaves_who_left,
    the_guard_pauses_an_issue_past_its_limit_and_counts_afresh_after_a_resume,
    a_webhook_token_is_taken_once_until_it_is_pruned_or_forgotten,
    actions_are_logged_newest_first_naming_a_reader_only_by_id,
    a_slots_draft_is_made_once_and_queues_nothing,
    a_draft_is_edited_held_and_approved_and_each_step_is_logged,
    at_its_slot_a_draft_is_held_or_sent_as_approval_says,
    users_and_their_sessions_end_together,
    an_issue_is_counted_over_time_and_by_reason_and_readers_by_day,
    a_search_finds_an_address_or_a_name_a_page_at_a_time,
    preferences_change_in_one_transaction_with_their_consent_event,
    an_import_sets_and_updates_preferences_and_counts_the_change,
    each_reader_gets_the_articles_of_their_topics_once_in_copies_shared_by_readers,
    an_approved_draft_is_queued_copy_by_copy_for_its_editions_readers,
    a_long_list_is_queued_a_chunk_at_a_time_and_the_issue_is_done_only_then,
    two_fillers_at_once_queue_each_reader_once,
    a_reader_who_leaves_before_their_chunk_is_not_queued,
    a_cancelled_issue_is_filled_no_further,
);

mod drafts;
mod filling;
mod variants;
use drafts::*;
use filling::*;
use variants::{
    an_approved_draft_is_queued_copy_by_copy_for_its_editions_readers,
    each_reader_gets_the_articles_of_their_topics_once_in_copies_shared_by_readers,
};

fn row(email: &str, lists: &[&str]) -> NewSubscriber {
    NewSubscriber {
        email: email.parse().expect("address"),
        name: SubscriberName::parse(email.split('@').next().unwrap_or_default()).expect("name"),
        lists: lists.iter().map(|l| l.parse().expect("list")).collect(),
        attributes: BTreeMap::new(),
        edition: None,
        topics: None,
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
        edition: None,
        variants: None,
    };
    store.create_issue(&new, lists, now()).await.expect("issue")
}

async fn an_address_is_one_subscriber_whatever_the_case_of_its_letters(s: Store) {
    let c = s.import(&[row("Ani@Example.org", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!(c.imported, 1);
    // Another spelling in a later import, and twice in one import: the same subscriber.
    let c = s
        .import(&[row("ani@example.org", &["news"]), row("ANI@EXAMPLE.ORG", &["weekly"])], "import", now())
        .await
        .expect("import");
    assert_eq!(c.imported, 0, "{c:?}");
    let all = s.subscribers(None, None).await.expect("list");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].email, "Ani@example.org", "the spelling first given is the one mail goes to");
    assert_eq!(all[0].lists, ["news", "weekly"]);
    // Every way in finds it: a lookup, a sign-up, a status change, a list file, forgetting.
    let shout: EmailAddress = "ANI@example.org".parse().expect("a");
    assert_eq!(s.subscriber(&shout).await.expect("get").map(|r| r.email), Some("Ani@example.org".into()));
    let signup = s.request_subscription(&shout, None, "web", now()).await.expect("signup");
    assert_eq!(signup.before, Some(SubscriberStatus::Active));
    assert!(
        s.set_status(&shout, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "test", now())
            .await
            .expect("status")
    );
    let c = s.import(&[row("aNi@example.org", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!(c.refused, 1, "an address that left is not brought back under another spelling");
    let c = s.sync_list(&weekly(), &[row("ani@EXAMPLE.org", &[])], now()).await.expect("sync");
    assert_eq!((c.imported, c.refused), (0, 1), "{c:?}");
    assert!(s.forget(&"ani@example.org".parse().expect("a"), "test", now()).await.expect("forget"));
    let c = s.import(&[row("ANI@example.org", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!(c.refused, 1, "a forgotten address stays gone in any case");
    assert!(s.subscribers(None, None).await.expect("list").is_empty());
}

async fn the_signup_limit_counts_one_mailbox_however_it_is_spelled(s: Store) {
    let spellings = [
        "ani@example.org",
        "Ani@example.org",
        "ANI@EXAMPLE.ORG",
        "ani+news@example.org",
        "Ani+x@example.org",
        "ani+y@Example.org",
        "aNi+@example.org",
    ];
    let mut seen = Vec::new();
    for (i, e) in spellings.iter().enumerate() {
        let got = s
            .request_subscription(&e.parse().expect("a"), None, "web", now() + chrono::Duration::minutes(i as i64))
            .await
            .expect("signup");
        seen.push(got.recent_requests);
    }
    assert_eq!(seen, [0, 1, 2, 3, 4, 5, 6], "every spelling counts against one mailbox");
    let other = s.request_subscription(&"bob@example.org".parse().expect("b"), None, "web", now()).await.expect("b");
    assert_eq!(other.recent_requests, 0);
    let tomorrow = now() + chrono::Duration::hours(25);
    let later = s.request_subscription(&"ANI@example.org".parse().expect("a"), None, "web", tomorrow).await.expect("a");
    assert_eq!(later.recent_requests, 0, "the count is of the last day");
}

async fn an_import_records_one_consent_event_per_reader_it_adds_or_brings_back(s: Store) {
    let ann: EmailAddress = "ann@example.org".parse().expect("ann");
    s.request_subscription(&ann, None, "web", now()).await.expect("signup");
    let rows = [row("bo@example.org", &["weekly"]), row("ann@example.org", &["weekly"]), row("cy@example.org", &[])];
    s.import(&rows, "people.csv", now()).await.expect("import");
    s.import(&[row("di@example.org", &[])], "add", now()).await.expect("add");
    let events = |email: &'static str| {
        let s = s.clone();
        async move {
            let id = s.subscriber(&email.parse().expect("address")).await.expect("get").expect("stored").id;
            texts(&s, "SELECT event || ' from ' || source FROM consent_events WHERE subscriber_id = $1 ORDER BY id", id)
                .await
        }
    };
    assert_eq!(
        events("ann@example.org").await,
        ["subscribe from web", "import from people.csv"],
        "brought back by the import"
    );
    assert_eq!(events("bo@example.org").await, ["import from people.csv"]);
    assert_eq!(events("cy@example.org").await, ["import from people.csv"]);
    assert_eq!(events("di@example.org").await, ["add from add"]);
    s.import(&rows, "people.csv", now()).await.expect("again");
    assert_eq!(
        events("bo@example.org").await,
        ["import from people.csv"],
        "a row that changes nothing records nothing"
    );
}

async fn imports_never_bring_back_who_left(s: Store) {
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

async fn list_sync_removes_who_the_file_no_longer_names(s: Store) {
    s.sync_list(&weekly(), &[row("a@example.org", &[]), row("b@example.org", &[])], now()).await.expect("sync");
    // A file read only in part removes nobody and adds nobody.
    let (to, from) = tokio::sync::mpsc::channel(1);
    to.try_send(ImportPart::Rows(vec![(2, row("c@example.org", &[]))])).expect("room");
    drop(to);
    let cut = s.sync_list_stream(&weekly(), from, now()).await;
    assert!(matches!(cut, Err(StoreError::InputEnded)), "{cut:?}");
    assert_eq!(s.subscribers(Some(&weekly()), None).await.expect("list").len(), 2);

    let c = s.sync_list(&weekly(), &[row("a@example.org", &[])], now()).await.expect("sync");
    assert_eq!(c.removed, 1);
    let members = s.subscribers(Some(&weekly()), None).await.expect("list");
    assert_eq!(members.len(), 1);
    // The same list again: the addresses of the last sync are not remembered.
    let c = s.sync_list(&weekly(), &[row("c@example.org", &[])], now()).await.expect("sync");
    assert_eq!((c.imported, c.removed), (1, 1));
    let members = s.subscribers(Some(&weekly()), None).await.expect("list");
    assert_eq!(members.iter().map(|m| m.email.as_str()).collect::<Vec<_>>(), ["c@example.org"]);
}

/// `rows` numbered as the lines of a file under its header: 2, 3, …
fn numbered(rows: &[NewSubscriber]) -> Vec<(u64, NewSubscriber)> {
    (2..).zip(rows.iter().cloned()).collect()
}

/// The parts of a list file, ready to be read: `rows` in twos, then `End`.
fn parts(rows: &[NewSubscriber]) -> tokio::sync::mpsc::Receiver<ImportPart> {
    let parts: Vec<ImportPart> =
        numbered(rows).chunks(2).map(|c| ImportPart::Rows(c.to_vec())).chain([ImportPart::End]).collect();
    let (to, from) = tokio::sync::mpsc::channel(parts.len());
    for part in parts {
        to.try_send(part).expect("room for every part");
    }
    from
}

async fn a_trial_sync_counts_what_the_syncs_would_leave_and_keeps_nothing(s: Store) {
    let news: ListName = "news".parse().expect("list");
    s.sync_list(&weekly(), &[row("a@example.org", &[]), row("b@example.org", &[])], now()).await.expect("sync");
    s.import(&[row("z@example.org", &["news"])], "import", now()).await.expect("import");
    s.set_status(
        &"b@example.org".parse().expect("b"),
        SubscriberStatus::Unsubscribed,
        ConsentEvent::Unsubscribe,
        "t",
        now(),
    )
    .await
    .expect("status");
    let before = s.subscribers(None, None).await.expect("list");

    // weekly's file drops a and names b (who left) and c; news's file drops z and names a and d.
    let files = vec![
        (weekly(), parts(&[row("B@example.org", &[]), row("c@example.org", &[])])),
        (news.clone(), parts(&[row("a@example.org", &[]), row("d@example.org", &[])])),
    ];
    let (counts, recipients) =
        s.recipients_after_sync(files, &[weekly(), news.clone()], None, now()).await.expect("trial");
    assert_eq!(recipients, 3, "a (news), c (weekly) and d (news): not b, who left, nor z, dropped");
    assert_eq!((counts[0].counts.imported, counts[0].counts.removed), (1, 1));
    assert_eq!((counts[1].counts.imported, counts[1].counts.removed), (1, 1));
    assert_eq!(s.subscribers(None, None).await.expect("list"), before, "nothing kept");

    let (_, weekly_only) = s.recipients_after_sync(vec![], &[weekly()], None, now()).await.expect("count");
    assert_eq!(weekly_only, 1, "a, as the store holds it now");
}

async fn a_list_file_is_noted_changed_only_when_its_digest_differs(s: Store) {
    assert!(s.note_list_file(&weekly(), "d1", now()).await.expect("note"), "never seen: changed");
    assert!(!s.note_list_file(&weekly(), "d1", now()).await.expect("note"));
    assert!(s.note_list_file(&"news".parse().expect("list"), "d1", now()).await.expect("note"), "another list");
    assert!(s.note_list_file(&weekly(), "d2", now()).await.expect("note"));
    assert!(!s.note_list_file(&weekly(), "d2", now()).await.expect("note"));
    assert!(s.note_list_file(&weekly(), "d1", now()).await.expect("note"), "back to an older content: changed");
}

/// Ids follow the file, so the listing and the delivery order are those of the rows given.
async fn an_import_numbers_new_addresses_in_the_order_of_its_rows(s: Store) {
    let rows = [row("zed@example.org", &["weekly"]), row("amy@example.org", &[]), row("max@example.org", &[])];
    s.import(&rows, "import", now()).await.expect("import");
    let all = s.subscribers(None, None).await.expect("list");
    assert_eq!(
        all.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(),
        ["zed@example.org", "amy@example.org", "max@example.org"]
    );
}

/// Two spellings of one address in one file: the first row creates or changes the subscriber,
/// the second finds what the first left, as row by row they would.
async fn two_spellings_of_a_new_address_in_one_import_are_one_subscriber(s: Store) {
    let mut again = row("ANN@example.org", &["news"]);
    again.name = None;
    again.attributes.insert("plan".into(), "pro".into());
    let c = s.import(&[row("Ann@example.org", &["weekly"]), again], "import", now()).await.expect("import");
    assert_eq!((c.imported, c.updated, c.unchanged), (1, 1, 0), "{c:?}");
    let all = s.subscribers(None, None).await.expect("list");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0].email.as_str(), all[0].name.as_str()), ("Ann@example.org", "Ann"));
    assert_eq!(all[0].lists, ["news", "weekly"]);
    assert_eq!(all[0].attributes.get("plan").map(String::as_str), Some("pro"));

    let mut city = row("ann@example.org", &[]);
    city.name = SubscriberName::parse("Ann Smith").expect("name");
    city.attributes.insert("city".into(), "Oslo".into());
    let mut tier = row("aNN@example.org", &[]);
    tier.name = None;
    tier.attributes.insert("plan".into(), "max".into());
    let c = s.import(&[city, tier], "import", now()).await.expect("import");
    assert_eq!((c.imported, c.updated), (0, 2), "{c:?}");
    let ann = s.subscriber(&"ann@example.org".parse().expect("a")).await.expect("get").expect("stored");
    assert_eq!(ann.name, "Ann Smith");
    assert_eq!(
        ann.attributes,
        BTreeMap::from([("city".to_owned(), "Oslo".to_owned()), ("plan".to_owned(), "max".to_owned())]),
        "the second row changes what the first wrote"
    );
}

/// Forgetting keeps a digest that imports recognise; the person may still sign up again
/// themselves, and ask again to be forgotten.
async fn an_address_forgotten_and_signed_up_again_can_be_forgotten_again(s: Store) {
    let a: EmailAddress = "Back@example.org".parse().expect("a");
    s.import(&[row("Back@example.org", &["weekly"])], "import", now()).await.expect("import");
    assert!(s.forget(&a, "test", now()).await.expect("forget"));
    let signup = s.request_subscription(&a, None, "web", now()).await.expect("signup");
    assert_eq!(signup.before, None, "a forgotten address is unknown to the sign-up");
    let c = s.confirm_subscription(&a, &[weekly()], now(), "web", now()).await.expect("confirm");
    assert_eq!(c, Confirmation::Confirmed);
    assert!(s.forget(&"back@EXAMPLE.org".parse().expect("a"), "test", now()).await.expect("forget again"));
    assert!(s.subscribers(None, None).await.expect("list").is_empty());
    assert_eq!(s.subscriber(&a).await.expect("get"), None);
    let c = s.import(&[row("back@example.org", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!((c.imported, c.refused), (0, 1), "still recognised as forgotten");
    assert!(!s.forget(&a, "test", now()).await.expect("forget"), "nothing left to forget");
}

/// The name typed with a sign-up is stored for a new address only: anyone may type any name
/// for one that is known. A confirmation joins its lists once, whatever it finds.
async fn a_signup_names_only_a_new_address_and_a_confirmation_joins_each_list_once(s: Store) {
    let a: EmailAddress = "reader@example.org".parse().expect("a");
    let named = |n: &str| SubscriberName::parse(n).expect("name");
    s.request_subscription(&a, named("Reader").as_ref(), "web", now()).await.expect("signup");
    s.request_subscription(&"READER@example.org".parse().expect("a"), named("Mallory").as_ref(), "web", now())
        .await
        .expect("signup");
    let c = s.confirm_subscription(&a, &[weekly(), weekly()], now(), "web", now()).await.expect("confirm");
    assert_eq!(c, Confirmation::Confirmed);
    let rec = s.subscriber(&a).await.expect("get").expect("stored");
    assert_eq!((rec.name.as_str(), rec.lists.clone()), ("Reader", vec!["weekly".to_owned()]));
    let news: ListName = "news".parse().expect("list");
    let c = s.confirm_subscription(&a, &[news, weekly()], now(), "web", now()).await.expect("confirm");
    assert_eq!(c, Confirmation::AlreadyActive);
    assert_eq!(s.subscriber(&a).await.expect("get").expect("stored").lists, ["news", "weekly"]);
    let counts = s.list_counts().await.expect("counts");
    assert!(counts.iter().all(|l| l.counts.get("active") == Some(&1)), "{counts:?}");
}

/// Clicks on an unsubscribe link and a request to be forgotten, all at once: each is done
/// once, on the address's row in turn.
async fn forgetting_and_leaving_at_once_take_their_turn(s: Store) {
    s.import(&[row("r@example.org", &["weekly"])], "import", now()).await.expect("import");
    let tasks: Vec<_> = (0..6)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move {
                let a: EmailAddress = "R@example.org".parse().expect("a");
                if i % 2 == 0 {
                    (true, s.forget(&a, "test", now()).await.expect("forget"))
                } else {
                    let left =
                        s.set_status(&a, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", now());
                    (false, left.await.expect("leave"))
                }
            })
        })
        .collect();
    let (mut forgotten, mut left) = (0, 0);
    for t in tasks {
        match t.await.expect("task") {
            (true, done) => forgotten += usize::from(done),
            (false, done) => left += usize::from(done),
        }
    }
    assert_eq!(forgotten, 1, "one forget, however many asked");
    assert!(left <= 1, "at most one unsubscription, before the address was forgotten: {left}");
    assert_eq!(s.subscriber(&"r@example.org".parse().expect("a")).await.expect("get"), None);
    assert_eq!(s.status_counts().await.expect("counts").get("unsubscribed"), Some(&1));
    assert!(s.list_counts().await.expect("counts").iter().all(|l| l.counts.values().all(|n| *n == 0)));
}

async fn one_delivery_per_active_subscriber_across_lists(s: Store) {
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
            &NewIssue {
                number: 1,
                subject: "x".into(),
                date: now(),
                articles: vec![],
                identities: vec![],
                slot: None,
                edition: None,
                variants: None,
            },
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

async fn concurrent_claims_never_share_a_delivery_and_leases_expire(s: Store) {
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

async fn outcomes_are_recorded_and_bounces_mark_the_subscriber(s: Store) {
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
            spent: true,
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

/// Outcomes recorded with their relays, in the same batched statements: the issue's relays, by
/// name, count each delivery under the relay of its last outcome, with the last reply each gave.
async fn each_outcome_keeps_its_relay_and_an_issue_says_what_each_relay_did(s: Store) {
    let rows: Vec<_> =
        ["a", "b", "c", "d", "e"].iter().map(|n| row(&format!("{n}@example.org"), &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    assert!(s.relays(1).await.expect("relays").is_empty(), "nothing recorded yet");
    let c = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let (one, two) = (Some("one.example:587".to_owned()), Some("two.example:25".to_owned()));
    let sent = |i: usize| Outcome::Sent {
        delivery_id: c[i].delivery_id,
        message_id: format!("<{i}@e>"),
        reply: Some(format!("250 ok {i}")),
    };
    let out = vec![
        sent(0),
        sent(1),
        Outcome::Deferred {
            delivery_id: c[2].delivery_id,
            reply: "421 4.7.0 slow down".into(),
            retry_at: now() + chrono::Duration::seconds(60),
            spent: false,
        },
        Outcome::Failed { delivery_id: c[3].delivery_id, reply: "550 5.1.1 unknown".into(), bounce: None },
        Outcome::Released { delivery_id: c[4].delivery_id },
    ];
    s.record_via("w", &out, &[one.clone(), two.clone(), one.clone(), two.clone(), one.clone()], now())
        .await
        .expect("record");
    // Only sends, the batch written without a transaction, keep their relay too.
    let later = now() + chrono::Duration::seconds(1);
    let again = s.claim(1, "w", 10, later, Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.len(), 1, "the released one");
    let last =
        Outcome::Sent { delivery_id: again[0].delivery_id, message_id: "<4@e>".into(), reply: Some("250 last".into()) };
    s.record_via("w", &[last], std::slice::from_ref(&two), later).await.expect("record");
    let relays = s.relays(1).await.expect("relays");
    assert_eq!(
        relays,
        [
            RelayUse {
                relay: "one.example:587".into(),
                sent: 1,
                deferred: 1,
                failed: 0,
                last_reply: Some("421 4.7.0 slow down".into())
            },
            RelayUse {
                relay: "two.example:25".into(),
                sent: 2,
                deferred: 0,
                failed: 1,
                last_reply: Some("250 last".into())
            },
        ]
    );
    assert!(s.relays(2).await.expect("relays").is_empty());
}

async fn who_unsubscribes_mid_issue_is_skipped(s: Store) {
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

async fn renewed_leases_keep_other_workers_off(s: Store) {
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

/// A worker renews its leases while its ledger writer records outcomes for the same deliveries,
/// each statement taking the rows in whatever order it was given: neither may fail on the
/// other's locks (a deadlock the server breaks by failing one of them).
async fn renewals_and_records_of_the_same_deliveries_at_once_both_go_through(s: Store) {
    let n = 3000;
    let rows: Vec<NewSubscriber> = (0..n).map(|i| row(&format!("r{i}@example.org"), &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    // More readers than an issue queues as it is made: the rest are queued before the rounds.
    s.queue_all(1, &[weekly()], 10_000, now()).await.expect("queue the rest");
    let rounds = 6;
    for round in 0..rounds {
        let at = now() + chrono::Duration::seconds(round);
        let claimed = s.claim(1, "w", n, at, Duration::from_secs(30)).await.expect("claim");
        assert_eq!(claimed.len(), n, "round {round}: every delivery is due again");
        let mut ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
        // Opposite orders, so that unordered locking would meet in the middle.
        ids.sort_unstable();
        let outcomes: Vec<Outcome> = ids
            .iter()
            .rev()
            .map(|&delivery_id| Outcome::Deferred { delivery_id, reply: "451 later".into(), retry_at: at, spent: true })
            .collect();
        let (renewed, recorded) =
            tokio::join!(s.renew_leases("w", &ids, at, Duration::from_secs(30)), s.record("w", &outcomes, at));
        renewed.unwrap_or_else(|e| panic!("round {round}: renew: {e}"));
        recorded.unwrap_or_else(|e| panic!("round {round}: record: {e}"));
    }
    let i = s.issue(1).await.expect("issue").expect("issue");
    assert_eq!(i.counts.deferred, n as u64, "{:?}", i.counts);
}

async fn a_web_signup_waits_for_confirmation_and_an_old_link_cannot_undo_leaving(s: Store) {
    let a: EmailAddress = "reader@example.org".parse().expect("a");
    let first = s
        .request_subscription(&a, SubscriberName::parse("Reader").expect("name").as_ref(), "web 127.0.0.1", now())
        .await
        .expect("signup");
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

async fn the_rate_bucket_is_shared_and_refills_with_time(s: Store) {
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

async fn an_import_means_what_its_rows_one_by_one_would(s: Store) {
    let mut ann = row("ann@example.org", &["weekly"]);
    ann.attributes.insert("city".into(), "Oslo".into());
    let mut again = row("ann@example.org", &["news"]);
    again.name = None;
    again.attributes.insert("plan".into(), "pro".into());
    // The same address twice in one file: the second row updates what the first created.
    let c = s.import(&[ann.clone(), row("bob@example.org", &[]), again], "import", now()).await.expect("import");
    assert_eq!((c.imported, c.updated, c.unchanged, c.refused), (2, 1, 0, 0));
    let a = s.subscriber(&"ann@example.org".parse().expect("a")).await.expect("get").expect("stored");
    assert_eq!(a.name, "ann", "a row without a name keeps the stored one");
    assert_eq!(a.lists, ["news", "weekly"]);
    assert_eq!(
        a.attributes,
        BTreeMap::from([("city".to_owned(), "Oslo".to_owned()), ("plan".to_owned(), "pro".to_owned())])
    );
    let c = s.import(&[ann.clone()], "import", now()).await.expect("import");
    assert_eq!((c.updated, c.unchanged), (0, 1), "nothing new: unchanged");

    // A web sign-up not yet confirmed is made active by an import: the publisher vouches.
    let web: EmailAddress = "web@example.org".parse().expect("w");
    s.request_subscription(&web, SubscriberName::parse("Web").expect("name").as_ref(), "web", now())
        .await
        .expect("signup");
    let c = s.add_one("web@example.org").await;
    assert_eq!((c.imported, c.updated), (0, 1));
    assert_eq!(s.subscriber(&web).await.expect("get").map(|r| r.status), Some(SubscriberStatus::Active));
    let c = s.add_one("new@example.org").await;
    assert_eq!(c.imported, 1);

    let counts = s.list_counts().await.expect("counts");
    let names: Vec<&str> = counts.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names, ["news", "weekly"]);
    assert_eq!(counts[1].counts.get("active"), Some(&3));
    let everyone = s.subscribers(None, Some(SubscriberStatus::Active)).await.expect("list");
    assert_eq!(everyone.len(), 4);
    let weekly_only = s.subscribers(Some(&weekly()), None).await.expect("list");
    assert_eq!(
        weekly_only.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(),
        ["ann@example.org", "web@example.org", "new@example.org"]
    );

    let page = s.subscribers_page(None, None, None, 2).await.expect("page");
    let first: Vec<&str> = page.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(first, ["ann@example.org", "bob@example.org"]);
    let after: EmailAddress = "bob@example.org".parse().expect("b");
    let page = s.subscribers_page(None, None, Some(&after), 10).await.expect("page");
    assert_eq!(page.iter().map(|r| r.email.as_str()).collect::<Vec<_>>(), ["new@example.org", "web@example.org"]);
}

/// More rows than a statement of either backend writes at once: repeats and a refusal fall
/// in later chunks than the rows they meet.
async fn a_large_import_means_the_same_across_its_chunks(s: Store) {
    let gone: EmailAddress = "gone@example.org".parse().expect("g");
    s.import(&[row("gone@example.org", &["weekly"])], "import", now()).await.expect("import");
    s.set_status(&gone, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "t", now()).await.expect("status");
    let mut rows: Vec<NewSubscriber> =
        (0..12_000).map(|i| row(&format!("reader{i}@example.org"), &["weekly"])).collect();
    let mut again = row("reader5@example.org", &["news"]);
    again.attributes.insert("plan".into(), "pro".into());
    rows.insert(7_000, again);
    rows.insert(3_000, row("gone@example.org", &["weekly"]));
    rows.push(row("reader11999@example.org", &["news"]));
    let c = s.import(&rows, "import", now()).await.expect("import");
    assert_eq!((c.imported, c.updated, c.unchanged, c.refused), (12_000, 2, 0, 1));

    let r5 = s.subscriber(&"reader5@example.org".parse().expect("a")).await.expect("get").expect("stored");
    assert_eq!(r5.lists, ["news", "weekly"]);
    assert_eq!(r5.attributes.get("plan").map(String::as_str), Some("pro"));
    assert_eq!(s.subscriber(&gone).await.expect("get").map(|r| r.status), Some(SubscriberStatus::Unsubscribed));
    let counts = s.list_counts().await.expect("counts");
    let by_list: Vec<(&str, Option<&u64>)> = counts.iter().map(|l| (l.name.as_str(), l.counts.get("active"))).collect();
    assert_eq!(by_list, [("news", Some(&2)), ("weekly", Some(&12_000))]);

    let c = s.import(&rows, "import", now()).await.expect("import");
    assert_eq!((c.imported, c.updated, c.unchanged, c.refused), (0, 0, 12_002, 1), "nothing new the second time");
    let lists = [weekly(), "news".parse().expect("l")];
    let i = issue(&s, 1, &lists).await;
    assert_eq!(i.counts.queued, FIRST_CHUNK as u64, "the first readers are queued with the issue");
    assert_eq!(s.queue_all(1, &lists, 5_000, now()).await.expect("fill"), 12_000 - FIRST_CHUNK as u64);
    assert_eq!(s.issue(1).await.expect("issue").expect("issue").counts.queued, 12_000);
}

/// Streams of `n` numbered rows in parts of `size`, ready to be read, then `End`.
fn numbered_parts(rows: Vec<(u64, NewSubscriber)>, size: usize) -> tokio::sync::mpsc::Receiver<ImportPart> {
    let parts: Vec<ImportPart> =
        rows.chunks(size).map(|c| ImportPart::Rows(c.to_vec())).chain([ImportPart::End]).collect();
    let (to, from) = tokio::sync::mpsc::channel(parts.len());
    for part in parts {
        to.try_send(part).expect("room for every part");
    }
    from
}

/// 5,000 rows in parts of 2,000, of which line 3 names `Ann@` again (as `ann@`) far beyond its
/// part, line 2,503 names r0 of line 4 again in another part, and line 4,004 names line 4,003's
/// address within its part.
fn rows_with_repeats() -> Vec<(u64, NewSubscriber)> {
    let mut rows = vec![(2, row("Ann@example.org", &[]))];
    rows.extend((0..4_999u64).map(|i| (i + 3, row(&format!("r{i}@example.org"), &[]))));
    rows[4_500].1 = row("ann@example.org", &[]);
    rows[2_501].1 = row("r1@example.org", &[]);
    rows[4_002].1 = row("R4000@example.org", &[]);
    rows
}

async fn a_streamed_address_named_again_is_taken_out_by_its_line(s: Store) {
    let rows = rows_with_repeats();
    let taken = s.sync_list_stream(&weekly(), numbered_parts(rows.clone(), 2_000), now()).await.expect("sync");
    let repeats: Vec<(u64, &str)> = taken.repeated.iter().map(|r| (r.line, r.email.as_str())).collect();
    assert_eq!(repeats, [(2_503, "r1@example.org"), (4_004, "R4000@example.org"), (4_502, "ann@example.org")]);
    assert_eq!(taken.counts.imported, 4_997);
    assert_eq!(s.subscribers(Some(&weekly()), None).await.expect("list").len(), 4_997);
    let ann = s.subscriber(&"ann@example.org".parse().expect("ann")).await.expect("get").expect("stored");
    assert_eq!(ann.email, "Ann@example.org", "the first row is the one kept");

    // The same rows as an import, and as a trial sync, find the same repeats.
    let taken = s.import_stream(numbered_parts(rows.clone(), 2_000), "import", false, now()).await.expect("import");
    assert_eq!(taken.repeated.len(), 3);
    assert_eq!(taken.counts.unchanged, 4_997);
    let (trial, _) = s
        .recipients_after_sync(vec![(weekly(), numbered_parts(rows, 2_000))], &[weekly()], None, now())
        .await
        .expect("trial");
    assert_eq!(trial[0].repeated.iter().map(|r| r.line).collect::<Vec<_>>(), [2_503, 4_004, 4_502]);
}

async fn a_strict_streamed_import_with_a_repeat_writes_nothing(s: Store) {
    let refused = s.import_stream(numbered_parts(rows_with_repeats(), 2_000), "import", true, now()).await;
    match refused {
        Err(StoreError::Repeated(repeats)) => {
            assert_eq!(repeats.iter().map(|r| r.line).collect::<Vec<_>>(), [2_503, 4_004, 4_502]);
        }
        other => panic!("a repeat refused: {other:?}"),
    }
    assert!(s.subscribers(None, None).await.expect("list").is_empty(), "nothing written");
    let clean: Vec<(u64, NewSubscriber)> = (2..).zip([row("a@example.org", &[]), row("b@example.org", &[])]).collect();
    let taken = s.import_stream(numbered_parts(clean, 1), "import", true, now()).await.expect("import");
    assert_eq!((taken.counts.imported, taken.repeated.len()), (2, 0));
}

async fn a_streamed_import_is_kept_only_once_its_end_arrives(s: Store) {
    let parts = || {
        vec![
            ImportPart::Rows(vec![(2, row("a@example.org", &["weekly"])), (3, row("b@example.org", &[]))]),
            ImportPart::Rows(vec![(4, row("c@example.org", &["news"]))]),
        ]
    };
    let stream = |parts: Vec<ImportPart>| {
        let (to, from) = tokio::sync::mpsc::channel(1);
        let feeding = tokio::spawn(async move {
            for p in parts {
                to.send(p).await.expect("the store listens");
            }
        });
        (from, feeding)
    };

    let (from, feeding) = stream(parts());
    let cut = s.import_stream(from, "import", false, now()).await;
    assert!(matches!(cut, Err(StoreError::InputEnded)), "{cut:?}");
    feeding.await.expect("fed");
    assert!(s.subscribers(None, None).await.expect("list").is_empty(), "nothing of an input cut short is kept");

    let mut whole = parts();
    whole.push(ImportPart::End);
    let (from, feeding) = stream(whole);
    let c = s.import_stream(from, "import", false, now()).await.expect("import").counts;
    feeding.await.expect("fed");
    assert_eq!((c.imported, c.updated, c.unchanged), (3, 0, 0));
    let a = s.subscriber(&"a@example.org".parse().expect("a")).await.expect("get").expect("stored");
    assert_eq!(a.lists, ["weekly"]);
}

trait SyncRows {
    async fn sync_list(
        &self,
        list: &ListName,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError>;
}

impl SyncRows for Store {
    /// `sync_list_stream` with the rows in a few parts.
    async fn sync_list(
        &self,
        list: &ListName,
        rows: &[NewSubscriber],
        now: DateTime<Utc>,
    ) -> Result<ImportCounts, StoreError> {
        self.sync_list_stream(list, parts(rows), now).await.map(|t| t.counts)
    }
}

trait AddOne {
    async fn add_one(&self, email: &str) -> ImportCounts;
}

impl AddOne for Store {
    async fn add_one(&self, email: &str) -> ImportCounts {
        self.import(&[row(email, &["weekly"])], "add", now()).await.expect("add")
    }
}

async fn each_editions_last_slot_is_its_own(s: Store) {
    let at = now();
    let later = at + chrono::Duration::days(1);
    assert_eq!(s.last_slot_at_of("weekly@").await.expect("last"), None);
    s.record_slot("weekly@2024-03-18T09:00:00 UTC", at, SlotOutcome::Skipped, None, at).await.expect("slot");
    s.record_slot("daily@2024-03-19T09:00:00 UTC", later, SlotOutcome::Skipped, None, later).await.expect("slot");
    // A name that merely starts like another's is not it.
    s.record_slot("weekly2@2024-03-20T09:00:00 UTC", later, SlotOutcome::Skipped, None, later).await.expect("slot");
    assert_eq!(s.last_slot_at_of("weekly@").await.expect("last"), Some(at));
    assert_eq!(s.last_slot_at_of("daily@").await.expect("last"), Some(later));
    assert_eq!(s.last_slot_at_of("").await.expect("last"), Some(later));
}

async fn slots_feeds_and_first_sightings_are_kept_once(s: Store) {
    let at = now();
    assert!(
        s.record_slot("2024-03-18T09:00:00 UTC", at, SlotOutcome::Skipped, Some("nothing new"), at)
            .await
            .expect("slot")
    );
    assert!(!s.record_slot("2024-03-18T09:00:00 UTC", at, SlotOutcome::Missed, None, at).await.expect("slot"));
    let later = at + chrono::Duration::days(7);
    assert!(s.record_slot("2024-03-25T09:00:00 UTC", later, SlotOutcome::Missed, None, later).await.expect("slot"));
    let slot = s.slot("2024-03-18T09:00:00 UTC").await.expect("slot").expect("kept");
    assert_eq!((slot.outcome.as_str(), slot.reason.as_deref(), slot.at), ("skipped", Some("nothing new"), at));
    assert_eq!(s.slots().await.expect("slots").len(), 2);
    assert_eq!(s.last_slot_at().await.expect("last"), Some(later));

    assert_eq!(s.cached_feed("https://e.org/feed").await.expect("feed"), None);
    let entry = FeedCacheEntry { body: vec![0, 159, 255], etag: Some("\"v1\"".into()), last_modified: None };
    s.cache_feed("https://e.org/feed", &entry, at).await.expect("cache");
    let newer = FeedCacheEntry { body: b"<rss/>".to_vec(), etag: None, last_modified: Some("Mon".into()) };
    s.cache_feed("https://e.org/feed", &newer, later).await.expect("cache");
    assert_eq!(s.cached_feed("https://e.org/feed").await.expect("feed"), Some(newer));

    let ids = vec!["url:a".to_owned(), "url:b".to_owned()];
    assert!(s.first_seen(&ids, at, false).await.expect("seen").is_empty(), "a preview records nothing");
    let seen = s.first_seen(&ids[..1], at, true).await.expect("seen");
    assert_eq!(seen.get("url:a"), Some(&at));
    let seen = s.first_seen(&ids, later, true).await.expect("seen");
    assert_eq!((seen.get("url:a"), seen.get("url:b")), (Some(&at), Some(&later)), "the first sighting stands");
}

async fn cancelled_reopened_and_sent_issues_read_back_alike(s: Store) {
    let rows: Vec<_> =
        ["c@example.org", "a@example.org", "b@example.org"].iter().map(|e| row(e, &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    assert_eq!(s.unfinished_issue().await.expect("u").map(|i| i.number), Some(1));
    assert!(s.cancel_issue(1, now()).await.expect("cancel"));
    assert!(!s.cancel_issue(1, now()).await.expect("cancel"), "only once");
    let cancelled = s.issue(1).await.expect("i").expect("i");
    assert_eq!((cancelled.status, cancelled.counts.skipped), (crate::domain::IssueStatus::Cancelled, 3));
    let (next, carried) = s.history().await.expect("history");
    assert_eq!(next, 2);
    assert!(carried.is_empty(), "a cancelled issue carried nothing");
    assert!(s.unfinished_issue().await.expect("u").is_none());

    let two = issue(&s, 2, &[weekly()]).await;
    assert_eq!(s.sending_issues().await.expect("sending"), [2]);
    let c = s.claim(2, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let outcomes: Vec<Outcome> = c
        .iter()
        .map(|c| Outcome::Failed { delivery_id: c.delivery_id, reply: format!("550 {}", c.email), bounce: None })
        .collect();
    s.record("w", &outcomes, now()).await.expect("record");
    let failures = s.failures(2).await.expect("failures");
    let emails: Vec<&str> = failures.iter().map(|f| f.email.as_str()).collect();
    assert_eq!(emails, ["a@example.org", "b@example.org", "c@example.org"]);
    assert_eq!(failures[0].attempts, 1);
    assert!(s.finish_issue_if_done(2, now()).await.expect("finish"));
    let sent = s.sent_issues().await.expect("sent");
    assert_eq!(sent.iter().map(|i| i.number).collect::<Vec<_>>(), [2]);
    assert_eq!(s.sent_issue(2).await.expect("sent").map(|i| (i.subject, i.sent_at)), Some((two.subject, now())));
    assert!(s.sent_issue(1).await.expect("sent").is_none());
    let by_status = s.issue_status_counts().await.expect("counts");
    assert_eq!(
        (by_status.get("sent"), by_status.get("cancelled"), by_status.get("sending")),
        (Some(&1), Some(&1), Some(&0))
    );
    assert!(s.reopen_issue(2, now()).await.expect("reopen"));
    assert_eq!(
        s.issues().await.expect("issues").iter().map(|i| i.status.as_str()).collect::<Vec<_>>(),
        ["cancelled", "sending"]
    );
    s.ping().await.expect("ping");
}

async fn the_ledger_is_counted_by_issue_status_and_delivery_state(s: Store) {
    use crate::domain::IssueStatus;
    assert_eq!(s.ledger_counts().await.expect("counts"), LedgerCounts::default());
    let rows: Vec<_> =
        ["a@example.org", "b@example.org", "c@example.org"].iter().map(|e| row(e, &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    let c = s.claim(1, "w", 2, now(), Duration::from_secs(30)).await.expect("claim");
    let outcomes = [
        Outcome::Sent { delivery_id: c[0].delivery_id, message_id: "<m@e.org>".into(), reply: None },
        Outcome::Failed { delivery_id: c[1].delivery_id, reply: "550 no".into(), bounce: None },
    ];
    s.record("w", &outcomes, now()).await.expect("record");
    let counts = s.ledger_counts().await.expect("counts");
    let nonzero = |counts: &LedgerCounts| {
        counts.iter().filter(|(_, _, n)| *n > 0).map(|(i, d, n)| (i.as_str(), d.as_str(), n)).collect::<Vec<_>>()
    };
    assert_eq!(nonzero(&counts), [("sending", "queued", 1), ("sending", "sent", 1), ("sending", "failed", 1)]);
    assert_eq!(counts.iter().count(), IssueStatus::ALL.len() * DeliveryState::ALL.len(), "every pair, zeros too");

    // A cancelled issue's counts move with it, and its queued deliveries become skipped.
    assert!(s.cancel_issue(1, now()).await.expect("cancel"));
    issue(&s, 2, &[weekly()]).await;
    let counts = s.ledger_counts().await.expect("counts");
    assert_eq!(
        nonzero(&counts),
        [("sending", "queued", 3), ("cancelled", "sent", 1), ("cancelled", "failed", 1), ("cancelled", "skipped", 1)]
    );
    assert_eq!(counts.get(IssueStatus::Sending, DeliveryState::Sent), 0);
}

async fn an_issue_is_on_the_archive_from_its_first_delivery_sent(s: Store) {
    let rows: Vec<_> = ["a@example.org", "b@example.org"].iter().map(|e| row(e, &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    assert!(s.sent_issue(1).await.expect("read").is_none(), "queued, nothing out yet");
    assert!(s.sent_issues().await.expect("read").is_empty());
    let c = s.claim(1, "w", 1, now(), Duration::from_secs(30)).await.expect("claim");
    let sent = Outcome::Sent { delivery_id: c[0].delivery_id, message_id: "<m@e.org>".into(), reply: None };
    s.record("w", &[sent], now()).await.expect("record");
    let going = s.sent_issue(1).await.expect("read").expect("going out: a reader holds it");
    assert!(!going.finished);
    assert_eq!(s.sent_issues().await.expect("read").len(), 1);
    assert!(s.cancel_issue(1, now()).await.expect("cancel"));
    assert!(s.sent_issue(1).await.expect("read").is_none(), "a cancelled issue leaves the archive");
    assert!(s.sent_issues().await.expect("read").is_empty());
}

/// The texts of column 0 of `sql` run with `id` bound, on whichever backend `s` is.
async fn texts(s: &Store, sql: &'static str, id: i64) -> Vec<String> {
    with_backend!(s, |pool, db| sqlx::query_scalar(sql).bind(id).fetch_all(pool).await.expect("read"))
}

/// Runs `sql` with `id` bound: for a state the store's own writes never leave.
async fn write(s: &Store, sql: &'static str, id: i64) {
    with_backend!(s, |pool, db| {
        sqlx::query(sql).bind(id).execute(pool).await.expect("write");
    });
}

async fn a_subscriber_refused_twice_in_one_batch_bounces_once_noting_the_first_refusal(s: Store) {
    s.import(&[row("a@example.org", &["weekly"])], "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    issue(&s, 2, &[weekly()]).await;
    let one = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let two = s.claim(2, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let subscriber = one[0].subscriber_id;
    assert!(one[0].delivery_id < two[0].delivery_id);
    // The later delivery's refusal arrived first.
    let outcomes = [
        Outcome::Failed { delivery_id: two[0].delivery_id, reply: "550 first".into(), bounce: Some(subscriber) },
        Outcome::Failed { delivery_id: one[0].delivery_id, reply: "550 second".into(), bounce: Some(subscriber) },
    ];
    s.record("w", &outcomes, now()).await.expect("record");
    assert_eq!(s.subscriber(&one[0].email).await.expect("get").map(|r| r.status), Some(SubscriberStatus::Bounced));
    let noted = texts(
        &s,
        "SELECT source FROM consent_events WHERE subscriber_id = $1 AND event = 'bounce' ORDER BY id",
        subscriber,
    )
    .await;
    assert_eq!(noted, ["550 first"], "one departure, for the refusal received first");
    assert_eq!(s.failures(1).await.expect("failures")[0].reply.as_deref(), Some("550 second"));
    assert_eq!(s.failures(2).await.expect("failures")[0].reply.as_deref(), Some("550 first"));
}

async fn readers_refused_in_one_batch_each_have_their_own_refusal_noted(s: Store) {
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    issue(&s, 1, &[weekly()]).await;
    let claimed = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    let outcomes: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Failed {
            delivery_id: c.delivery_id,
            reply: format!("550 no such user {}", c.email),
            bounce: Some(c.subscriber_id),
        })
        .collect();
    s.record("w", &outcomes, now()).await.expect("record");
    for c in &claimed {
        let noted = texts(
            &s,
            "SELECT source FROM consent_events WHERE subscriber_id = $1 AND event = 'bounce'",
            c.subscriber_id,
        )
        .await;
        assert_eq!(noted, [format!("550 no such user {}", c.email)]);
    }
}

async fn a_release_hands_back_only_deliveries_still_to_send(s: Store) {
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    issue(&s, 1, &[weekly()]).await;
    let held = s.claim(1, "w", 10, now(), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(held.len(), 2);
    let sent = Outcome::Sent { delivery_id: held[0].delivery_id, message_id: "<m@e.org>".into(), reply: None };
    s.record("w", &[sent], now()).await.expect("record");
    // A lease on a delivery already sent, as a store written by hand may hold: not one to hand back.
    write(
        &s,
        "UPDATE deliveries SET lease_owner = 'w', lease_until = 1710752430000 WHERE id = $1",
        held[0].delivery_id,
    )
    .await;
    assert_eq!(s.release("w").await.expect("release"), 1, "the delivery still to send, alone");
    let again = s.claim(1, "v", 10, now(), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.iter().map(|c| c.delivery_id).collect::<Vec<_>>(), [held[1].delivery_id]);
    assert_eq!(s.issue(1).await.expect("issue").map(|i| i.counts.sent), Some(1));
}

/// A worker whose lease ran out while it sent, and another took the delivery over: a deferral or
/// a release is the new holder's to make; a sent message and a permanent refusal are facts,
/// recorded whoever holds the lease, and a sent message is never undone.
async fn a_worker_whose_lease_was_taken_over_records_only_what_is_final(s: Store) {
    let rows: Vec<_> =
        ["a@example.org", "b@example.org", "c@example.org"].iter().map(|e| row(e, &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    let lease = Duration::from_secs(30);
    assert_eq!(s.claim(1, "old", 10, now(), lease).await.expect("claim").len(), 3);
    let later = now() + chrono::Duration::seconds(31);
    let taken = s.claim(1, "new", 10, later, lease).await.expect("claim");
    let ids: Vec<i64> = taken.iter().map(|c| c.delivery_id).collect();
    assert_eq!(ids.len(), 3, "expired leases are taken over");
    let counts = |s: Store| async move { s.issue(1).await.expect("issue").expect("issue").counts };

    let retry_at = later + chrono::Duration::seconds(600);
    let stale = [
        Outcome::Deferred { delivery_id: ids[0], reply: "451 later".into(), retry_at, spent: true },
        Outcome::Released { delivery_id: ids[1] },
    ];
    s.record("old", &stale, later).await.expect("record");
    let c = counts(s.clone()).await;
    assert_eq!((c.queued, c.deferred), (3, 0), "{c:?}");
    assert!(s.claim(1, "third", 10, later, lease).await.expect("claim").is_empty(), "still the new holder's");

    let facts = [
        Outcome::Failed { delivery_id: ids[0], reply: "550 no".into(), bounce: None },
        Outcome::Sent { delivery_id: ids[1], message_id: "<1@e.org>".into(), reply: None },
    ];
    s.record("old", &facts, later).await.expect("record");
    let c = counts(s.clone()).await;
    assert_eq!((c.queued, c.failed, c.sent), (1, 1, 1), "{c:?}");

    let new = [
        Outcome::Sent { delivery_id: ids[0], message_id: "<0@e.org>".into(), reply: None },
        Outcome::Failed { delivery_id: ids[1], reply: "550 late".into(), bounce: None },
        Outcome::Deferred { delivery_id: ids[2], reply: "451 later".into(), retry_at, spent: true },
    ];
    s.record("new", &new, later).await.expect("record");
    let c = counts(s.clone()).await;
    assert_eq!((c.sent, c.failed, c.deferred), (2, 0, 1), "a send stands over any refusal: {c:?}");
    assert_eq!(s.next_due(1).await.expect("due"), Some(retry_at));
}

async fn the_next_due_time_and_a_release_follow_the_leases(s: Store) {
    s.import(&[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    issue(&s, 1, &[weekly()]).await;
    assert_eq!(s.next_due(1).await.expect("due"), Some(now()));
    let held = s.claim(1, "w", 1, now(), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(s.next_due(1).await.expect("due"), Some(now()), "the other delivery is still due");
    let retry_at = now() + chrono::Duration::seconds(90);
    let rest = s.claim(1, "w", 1, now(), Duration::from_secs(30)).await.expect("claim");
    s.record(
        "w",
        &[Outcome::Deferred { delivery_id: rest[0].delivery_id, reply: "451".into(), retry_at, spent: true }],
        now(),
    )
    .await
    .expect("record");
    assert_eq!(
        s.next_due(1).await.expect("due"),
        Some(now() + chrono::Duration::seconds(30)),
        "a held delivery is due again when its lease ends, before the deferred one"
    );
    assert_eq!(s.release("someone else").await.expect("release"), 0);
    assert_eq!(s.release("w").await.expect("release"), 1);
    assert_eq!(s.next_due(1).await.expect("due"), Some(now()), "released: due at once");
    let again = s.claim(1, "v", 10, now(), Duration::from_secs(30)).await.expect("claim");
    assert_eq!(again.iter().map(|c| c.delivery_id).collect::<Vec<_>>(), [held[0].delivery_id]);
    s.record(
        "v",
        &[Outcome::Sent {
            delivery_id: held[0].delivery_id,
            message_id: "<m@e.org>".into(),
            reply: Some("250 ok".into()),
        }],
        now(),
    )
    .await
    .expect("record");
    assert_eq!(s.next_due(1).await.expect("due"), Some(retry_at));
    s.record("v", &[Outcome::Released { delivery_id: rest[0].delivery_id }], now()).await.expect("record");
    assert_eq!(s.next_due(1).await.expect("due"), Some(retry_at));
}

/// What `BEGIN IMMEDIATE` gives SQLite, row locks and `ON CONFLICT` must give PostgreSQL: the
/// same outcome as if the writers had come one after another.
async fn writers_at_once_take_their_turn(s: Store) {
    let rows: Vec<_> = (0..300).map(|i| row(&format!("r{i}@example.org"), &[])).collect();
    let syncs: Vec<_> = (0..3)
        .map(|_| {
            let (s, rows) = (s.clone(), rows.clone());
            tokio::spawn(async move { s.sync_list(&weekly(), &rows, now()).await.expect("sync") })
        })
        .collect();
    let mut imported = Vec::new();
    for t in syncs {
        let c = t.await.expect("task");
        assert_eq!(c.imported + c.unchanged, 300, "{c:?}");
        imported.push(c.imported);
    }
    imported.sort_unstable();
    assert_eq!(imported, [0, 0, 300], "one sync added the addresses, the others found them");

    let new: EmailAddress = "new@example.org".parse().expect("n");
    let signups: Vec<_> = (0..6)
        .map(|_| {
            let (s, new) = (s.clone(), new.clone());
            tokio::spawn(async move { s.request_subscription(&new, None, "web", now()).await.expect("signup") })
        })
        .collect();
    let mut seen = Vec::new();
    for t in signups {
        let got = t.await.expect("task");
        seen.push((got.recent_requests, got.before));
    }
    seen.sort_unstable_by_key(|(n, _)| *n);
    let expected: Vec<_> =
        (0..6).map(|n| (n, if n == 0 { None } else { Some(SubscriberStatus::Unconfirmed) })).collect();
    assert_eq!(seen, expected, "one request stored the address; each later one saw those before it");

    let leaving: Vec<_> = (0..4)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let a: EmailAddress = "r7@example.org".parse().expect("a");
                s.set_status(&a, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", now())
                    .await
                    .expect("leave")
            })
        })
        .collect();
    let mut changed = 0;
    for t in leaving {
        changed += usize::from(t.await.expect("task"));
    }
    assert_eq!(changed, 1, "one unsubscription, however many clicks");
}

#[cfg(unix)]
mod tls;

async fn open_pg(url: &str) -> Store {
    Store::open_with(url, StoreOptions { pool_size: 4 }).await.expect("open")
}

fn pool(store: &Store) -> &sqlx::PgPool {
    match store {
        Store::Postgres(pg) => &pg.pool,
        Store::Sqlite(_) => panic!("a PostgreSQL store was expected"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_two_stores_never_share_a_delivery_and_take_over_a_dead_ones_leases() {
    let db = TestDatabase::create().await;
    // Two pools on one database: two processes, as far as PostgreSQL can tell.
    let (a, b) = (open_pg(&db.url).await, open_pg(&db.url).await);
    let rows: Vec<_> = (0..1000).map(|i| row(&format!("r{i}@example.org"), &["weekly"])).collect();
    a.import(&rows, "import", now()).await.expect("import");
    issue(&a, 1, &[weekly()]).await;
    let mut tasks = Vec::new();
    for (name, store) in [("a", &a), ("b", &b)] {
        for w in 0..3 {
            let s = store.clone();
            let owner = format!("{name}{w}");
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = s.claim(1, &owner, 16, now(), Duration::from_secs(30)).await.expect("claim");
                    if batch.is_empty() {
                        break (owner, mine);
                    }
                    mine.extend(batch.into_iter().map(|c| c.delivery_id));
                }
            }));
        }
    }
    let (mut all, mut by_store) = (Vec::new(), [0usize; 2]);
    for t in tasks {
        let (owner, mine) = t.await.expect("task");
        by_store[usize::from(owner.starts_with('b'))] += mine.len();
        all.extend(mine);
    }
    all.sort_unstable();
    let claimed = all.len();
    all.dedup();
    assert_eq!((claimed, all.len()), (1000, 1000), "every delivery claimed, none twice");
    assert!(by_store.iter().all(|n| *n > 0), "both stores took part: {by_store:?}");

    // A worker killed while it holds leases: what it held comes back once they end, to another.
    issue(&a, 2, &[weekly()]).await;
    let dead = open_pg(&db.url).await;
    let mut held: Vec<i64> = dead
        .claim(2, "dead", 5000, now(), Duration::from_secs(30))
        .await
        .expect("claim")
        .iter()
        .map(|c| c.delivery_id)
        .collect();
    assert_eq!(held.len(), 1000);
    pool(&dead).close().await;
    drop(dead);
    let during = now() + chrono::Duration::seconds(10);
    assert!(b.claim(2, "b", 5000, during, Duration::from_secs(30)).await.expect("claim").is_empty());
    assert_eq!(b.next_due(2).await.expect("due"), Some(now() + chrono::Duration::seconds(30)));
    let after = now() + chrono::Duration::seconds(31);
    let taken = b.claim(2, "b", 5000, after, Duration::from_secs(30)).await.expect("claim");
    let mut taken_ids: Vec<i64> = taken.iter().map(|c| c.delivery_id).collect();
    taken_ids.sort_unstable();
    held.sort_unstable();
    assert_eq!(taken_ids, held, "the dead worker's deliveries, every one, and only those");
    assert_eq!(a.renew_leases("dead", &held, after, Duration::from_secs(30)).await.expect("renew"), 0);
    let sent: Vec<Outcome> = taken
        .iter()
        .map(|c| Outcome::Sent {
            delivery_id: c.delivery_id,
            message_id: format!("<{}@e.org>", c.delivery_id),
            reply: None,
        })
        .collect();
    b.record("b", &sent, after).await.expect("record");
    assert!(a.finish_issue_if_done(2, after).await.expect("finish"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_processes_opening_a_new_database_together_create_and_migrate_it_once() {
    let db = TestDatabase::named();
    let opening: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { Store::open_with(&url, StoreOptions { pool_size: 2 }).await })
        })
        .collect();
    let mut stores = Vec::new();
    for o in opening {
        stores.push(o.await.expect("task").expect("every process opens the new database"));
    }
    let applied: i64 = sqlx::query_scalar("SELECT count(*) FROM _sqlx_migrations WHERE success")
        .fetch_one(pool(&stores[0]))
        .await
        .expect("migrations");
    assert_eq!(usize::try_from(applied).ok(), Some(super::postgres::MIGRATIONS.iter().count()));
    for s in &stores {
        s.ping().await.expect("ping");
    }
    // Opening again migrates nothing and changes nothing.
    open_pg(&db.url).await;
}

/// A publication at scale: 200,000 subscribers on two lists, 1,000,000 deliveries over five
/// issues (four sent, one going out with deferred and leased deliveries), a consent record.
const SEED: &str = "
INSERT INTO lists (name) VALUES ('weekly'), ('news');
INSERT INTO subscribers (email, name, attributes, status, created_at, updated_at)
SELECT 'reader' || g || '@example.org', 'Reader ' || g, '{\"city\":\"City ' || g || '\"}',
       CASE WHEN g % 20 = 0 THEN 'unsubscribed' WHEN g % 50 = 1 THEN 'bounced' ELSE 'active' END,
       1700000000000, 1700000000000
FROM generate_series(1, 200000) g;
INSERT INTO memberships (list_id, subscriber_id, created_at) SELECT 1, g, 0 FROM generate_series(1, 200000) g;
INSERT INTO memberships (list_id, subscriber_id, created_at) SELECT 2, g, 0 FROM generate_series(1, 200000, 3) g;
INSERT INTO consent_events (subscriber_id, event, source, at)
SELECT g, 'import', 'import', 1700000000000 FROM generate_series(1, 200000) g;
INSERT INTO consent_events (subscriber_id, event, source, at)
SELECT g, 'unsubscribe', 'web', 1700000100000 FROM generate_series(20, 200000, 20) g;
INSERT INTO issues (number, status, subject, issue_date, articles, created_at)
SELECT n, CASE WHEN n < 5 THEN 'sent' ELSE 'sending' END, 's', 0, '[]', 0 FROM generate_series(1, 5) n;
INSERT INTO deliveries (issue_number, subscriber_id, state, attempts, next_attempt_at, lease_owner, lease_until, updated_at)
SELECT n, g,
       CASE WHEN n < 5 THEN (CASE WHEN g % 97 = 0 THEN 'failed' ELSE 'sent' END)
            WHEN g <= 120000 THEN 'sent' WHEN g % 10 = 0 THEN 'deferred' ELSE 'queued' END,
       1,
       CASE WHEN n = 5 AND g % 10 = 0 THEN 1710000600000 ELSE 1710000000000 END,
       CASE WHEN n = 5 AND g > 120000 AND g <= 120500 THEN 'w1' END,
       CASE WHEN n = 5 AND g > 120000 AND g <= 120500 THEN 1710000030000 END,
       0
FROM generate_series(1, 5) n, generate_series(1, 200000) g;
";

/// The tables each node of an EXPLAIN (FORMAT JSON) plan reads whole.
fn seq_scans(plan: &serde_json::Value, out: &mut Vec<String>) {
    if plan.get("Node Type").and_then(|t| t.as_str()) == Some("Seq Scan") {
        out.push(plan.get("Relation Name").and_then(|r| r.as_str()).unwrap_or_default().to_owned());
    }
    for child in plan.get("Plans").and_then(|p| p.as_array()).into_iter().flatten() {
        seq_scans(child, out);
    }
}

/// Generic plans are gazette's default; a `plan_cache_mode` the publisher puts in the URL wins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_plan_cache_mode_in_the_url_is_kept() {
    let db = TestDatabase::create().await;
    let url = format!("{}?options=-c%20plan_cache_mode%3Dauto", db.url);
    let store = Store::open_with(&url, StoreOptions { pool_size: 1 }).await.expect("open");
    let mut conn = pool(&store).acquire().await.expect("connection");
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&mut *conn).await.expect("mode");
    assert_eq!(mode, "auto");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_hot_statements_use_indexes_at_a_million_deliveries() {
    let t = postgres().await;
    let mut conn = pool(&t.store).acquire().await.expect("connection");
    // The store's sessions plan each statement once: the generic plans below are the ones it runs.
    let mode: String = sqlx::query_scalar("SHOW plan_cache_mode").fetch_one(&mut *conn).await.expect("mode");
    assert_eq!(mode, "force_generic_plan");
    // Foreign keys are checked row by row; these rows are consistent by construction.
    sqlx::raw_sql("SET session_replication_role = replica").execute(&mut *conn).await.expect("seed");
    sqlx::raw_sql(SEED).execute(&mut *conn).await.expect("seed");
    sqlx::raw_sql("SET session_replication_role = origin").execute(&mut *conn).await.expect("seed");
    sqlx::raw_sql("VACUUM ANALYZE").execute(&mut *conn).await.expect("analyze");

    let array =
        |ids: &[i64]| format!("ARRAY[{}]::bigint[]", ids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
    let texts = |n: usize, s: &str| format!("ARRAY[{}]::text[]", vec![format!("'{s}'"); n].join(","));
    let queued: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE issue_number = 5 AND state = 'queued' LIMIT 64")
            .fetch_all(&mut *conn)
            .await
            .expect("ids");
    let (deliveries, n) = (array(&queued), queued.len());
    let people = array(&(1..=64).map(|i| i * 3001).collect::<Vec<_>>());
    let hot: Vec<(&str, &str, String)> = vec![
        ("claim", super::postgres::CLAIM, "'w9', 1710000060000, 5, 1710000030000, 64".into()),
        ("claim_people", super::postgres::CLAIM_PEOPLE, people.clone()),
        ("skip_left", super::postgres::SKIP_LEFT, format!("1, {deliveries}, {}", texts(n, "subscriber is bounced"))),
        ("renew_leases", super::postgres::RENEW_LEASES, format!("1710000060000, {deliveries}, 'w1'")),
        (
            "record_sent",
            super::postgres::RECORD_SENT,
            format!("1, {deliveries}, {}, {}, {}", texts(n, "<m@e.org>"), texts(n, "250 ok"), texts(n, "r.example:25")),
        ),
        (
            "record_deferred",
            super::postgres::RECORD_DEFERRED,
            format!(
                "1, {deliveries}, {}, {}, {}, {}, 'w1'",
                texts(n, "451"),
                array(&vec![1710000600000; n]),
                array(&vec![1; n]),
                texts(n, "r.example:25")
            ),
        ),
        (
            "record_failed",
            super::postgres::RECORD_FAILED,
            format!("1, {deliveries}, {}, {}", texts(n, "550"), texts(n, "r.example:25")),
        ),
        ("relays", super::ledger::RELAYS, "5".into()),
        ("record_bounces", super::postgres::RECORD_BOUNCES, format!("1, {people}")),
        ("record_released", super::postgres::RECORD_RELEASED, format!("{deliveries}, 'w1'")),
        ("release", super::ledger::RELEASE, "'w1'".into()),
        ("next_due", super::postgres::NEXT_DUE, "5".into()),
        ("finish_issue", super::ledger::FINISH_ISSUE, "1, 5".into()),
        ("queue_issue", super::postgres::QUEUE_ISSUE, "6, 1, ARRAY['weekly', 'news']".into()),
        ("counts_sending", super::issues::COUNTS, "5".into()),
        ("counts_sent", super::issues::COUNTS, "3".into()),
        ("cancel_deliveries", super::issues::CANCEL_DELIVERIES, "1, 5".into()),
        ("subscriber_by_email", super::subscribers::ONE, "'reader77@example.org'".into()),
        ("lock_subscriber", super::postgres::LOCK_SUBSCRIBER, "'reader77@example.org'".into()),
        (
            "lock_subscribers",
            super::postgres::LOCK_SUBSCRIBERS,
            "ARRAY['reader1@example.org', 'forgotten:00ff']".into(),
        ),
        ("recent_signups", super::signup::RECENT, "'00ff', 1700000000000".into()),
        ("left_since", super::signup::LEFT_SINCE, "77, 1700000000000".into()),
        ("page", super::subscribers::PAGE, "'reader5@example.org', NULL, NULL, 50".into()),
        ("page_of_a_list", super::subscribers::PAGE, "'reader5@example.org', 'active', 'news', 50".into()),
        ("bounce_target", super::bounces::BY_DELIVERY, "77".into()),
        ("bounce_target_by_message_id", super::bounces::BY_MESSAGE_ID, "3, '<m@e.org>'".into()),
        ("bounce_target_by_address", super::bounces::RECENT_TO, "'reader77@example.org', 1700000000000".into()),
        ("bounce_lock", super::postgres::LOCK_SUBSCRIBER_ID, "77".into()),
        ("bounce_soft_since", super::bounces::SOFT_SINCE, "77, 1700000000000".into()),
        ("bounce_bounced", super::bounces::BOUNCED, "1, 77".into()),
        ("bounce_complained", super::bounces::COMPLAINED, "1, 77".into()),
        ("bounce_off_every_list", super::bounces::OFF_EVERY_LIST, "77".into()),
        ("figures_span", super::figures::SPAN, "3".into()),
        ("figures_timeline", super::figures::TIMELINE, "5, 0, 60000".into()),
        ("figures_replies", super::figures::REPLIES, "3".into()),
        ("figures_reports", super::figures::REPORTS, "3".into()),
        ("figures_consent", super::figures::CONSENT, "1700000050000, 1700000200000".into()),
    ];
    // The check itself: a statement that has to read the whole ledger is caught.
    let plan: serde_json::Value =
        sqlx::query_scalar("EXPLAIN (FORMAT JSON) SELECT count(*) FROM deliveries WHERE attempts = 3")
            .fetch_one(&mut *conn)
            .await
            .expect("explain");
    let mut scans = Vec::new();
    seq_scans(&plan[0]["Plan"], &mut scans);
    assert_eq!(scans, ["deliveries"], "{plan:#}");

    let mut whole_reads = Vec::new();
    for (name, sql, args) in &hot {
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("PREPARE {name} AS {sql}"))).execute(&mut *conn).await.expect(name);
        // The plan for these values, and the generic plan PostgreSQL settles on for a statement
        // prepared once and run many times.
        for mode in ["auto", "force_generic_plan"] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("SET plan_cache_mode = {mode}")))
                .execute(&mut *conn)
                .await
                .expect("mode");
            let plan: serde_json::Value =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("EXPLAIN (FORMAT JSON) EXECUTE {name}({args})")))
                    .fetch_one(&mut *conn)
                    .await
                    .expect(name);
            let mut scans = Vec::new();
            seq_scans(&plan[0]["Plan"], &mut scans);
            if scans.iter().any(|t| ["deliveries", "subscribers", "consent_events"].contains(&t.as_str())) {
                whole_reads.push(format!("{name} ({mode}) reads {scans:?}:\n{plan:#}"));
            }
        }
    }
    assert!(whole_reads.is_empty(), "{}", whole_reads.join("\n\n"));
}

/// A store made before addresses were compared case-insensitively, holding one person under
/// three spellings: its own lists, consent events and deliveries under each.
const SPELLINGS_BEFORE_KEYS: &str = "
INSERT INTO lists (id, name) VALUES (1, 'weekly'), (2, 'daily');
INSERT INTO subscribers (id, email, name, attributes, status, created_at, updated_at) VALUES
  (1, 'Ani@example.org', 'Ani', '{}', 'active', 100, 100),
  (2, 'ani@example.org', '', '{}', 'unsubscribed', 110, 200),
  (3, 'ANI@example.org', 'X', '{}', 'active', 120, 150),
  (4, 'bob@example.org', 'Bob', '{}', 'active', 130, 130);
INSERT INTO memberships (list_id, subscriber_id, created_at) VALUES (1, 1, 100), (2, 3, 120), (1, 4, 130), (1, 2, 110);
INSERT INTO consent_events (id, subscriber_id, event, source, at) VALUES
  (1, 1, 'import', 'a.csv', 100), (2, 2, 'import', 'b.csv', 110), (3, 2, 'unsubscribe', 'web', 200),
  (4, 3, 'add', 'add', 120), (5, 4, 'import', 'a.csv', 130);
INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at, finished_at) VALUES
  (1, 'sent', 's', 1, '[]', NULL, 1, 2), (2, 'sent', 's', 3, '[]', NULL, 3, 4);
INSERT INTO deliveries (id, issue_number, subscriber_id, state, attempts, next_attempt_at, updated_at, sent_at) VALUES
  (1, 1, 1, 'sent', 1, 1, 1, 1), (2, 1, 2, 'sent', 1, 1, 1, 1), (3, 2, 3, 'sent', 1, 3, 3, 3), (4, 2, 4, 'sent', 1, 3, 3, 3);
";

/// What the migration must make of [`SPELLINGS_BEFORE_KEYS`]; `count` runs a `SELECT count(*)`.
async fn spellings_are_merged<F, Fut>(store: &Store, count: F)
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = i64>,
{
    let all = store.subscribers(None, None).await.expect("list");
    let emails: Vec<&str> = all.iter().map(|r| r.email.as_str()).collect();
    assert_eq!(emails, ["Ani@example.org", "bob@example.org"], "{all:?}");
    let ani = &all[0];
    assert_eq!(ani.status, SubscriberStatus::Unsubscribed, "the spelling changed last says what the person wants");
    assert_eq!(ani.name, "Ani");
    assert_eq!(ani.lists, ["daily", "weekly"]);
    assert_eq!(count("SELECT count(*) FROM consent_events").await, 5, "no consent event is lost");
    assert_eq!(count("SELECT count(*) FROM consent_events WHERE subscriber_id = 1").await, 4);
    assert_eq!(count("SELECT count(*) FROM deliveries").await, 4, "the ledger keeps every delivery");
    assert_eq!(count("SELECT count(*) FROM deliveries WHERE subscriber_id = 1").await, 2);
    assert_eq!(count("SELECT count(*) FROM subscribers WHERE email LIKE 'forgotten:merged-%'").await, 1);
    let c = store.import(&[row("ANI@EXAMPLE.ORG", &["weekly"])], "import", now()).await.expect("import");
    assert_eq!(c.refused, 1, "{c:?}");
}

/// SQLite's side of the index test: the ledger's statements as this store runs them find their
/// rows through an index or by id, never by reading the whole ledger or every subscriber.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_ledger_statements_read_no_whole_table() {
    let t = sqlite().await;
    let Store::Sqlite(store) = &t.store else { panic!("a SQLite store was expected") };
    let hot = [
        ("claim", super::sqlite::CLAIM),
        ("claim_people", super::sqlite::CLAIM_PEOPLE),
        ("skip_left", super::sqlite::SKIP_LEFT),
        ("renew_leases", super::sqlite::RENEW_LEASES),
        ("record_sent", super::sqlite::RECORD_SENT),
        ("record_deferred", super::sqlite::RECORD_DEFERRED),
        ("record_failed", super::sqlite::RECORD_FAILED),
        ("record_bounces", super::sqlite::RECORD_BOUNCES),
        ("record_released", super::sqlite::RECORD_RELEASED),
        ("release", super::ledger::RELEASE),
        ("next_due", super::sqlite::NEXT_DUE),
        ("finish_issue", super::ledger::FINISH_ISSUE),
        ("audience_after", super::sqlite::AUDIENCE_AFTER),
        ("figures_span", super::figures::SPAN),
        ("figures_timeline", super::figures::TIMELINE),
        ("figures_replies", super::figures::REPLIES),
    ];
    let mut whole_reads = Vec::new();
    for (name, sql) in hot {
        // Parameters left unbound are NULL, which changes no plan.
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
            .fetch_all(&store.pool)
            .await
            .expect(name);
        let details: Vec<String> = rows.iter().map(|r| sqlx::Row::get::<String, _>(r, 3)).collect();
        if details.iter().any(|d| d.starts_with("SCAN deliveries") || d.starts_with("SCAN subscribers")) {
            whole_reads.push(format!("{name}: {details:?}"));
        }
    }
    assert!(whole_reads.is_empty(), "{}", whole_reads.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_spellings_of_one_address_in_an_older_store_are_merged_into_the_first() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("old.db");
    let pool = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path).create_if_missing(true))
        .await
        .expect("pool");
    let mut before = sqlx::migrate::Migrator::new(std::path::Path::new("migrations/sqlite")).await.expect("migrations");
    let kept: Vec<_> = super::sqlite::MIGRATIONS.iter().filter(|m| m.version < 6).cloned().collect();
    before.migrations = std::borrow::Cow::Owned(kept);
    before.run(&pool).await.expect("the older schema");
    sqlx::raw_sql(SPELLINGS_BEFORE_KEYS).execute(&pool).await.expect("seed");
    pool.close().await;
    let store = Store::open(&format!("sqlite://{}", path.display())).await.expect("open migrates");
    let raw = SqlitePool::connect_with(SqliteConnectOptions::new().filename(&path)).await.expect("pool");
    spellings_are_merged(&store, |q| {
        let raw = raw.clone();
        async move { sqlx::query_scalar::<_, i64>(q).fetch_one(&raw).await.expect("count") }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_spellings_of_one_address_in_an_older_store_are_merged_into_the_first() {
    use sqlx::postgres::PgPool;
    let db = TestDatabase::create().await;
    let pool = PgPool::connect(&db.url).await.expect("pool");
    let mut before =
        sqlx::migrate::Migrator::new(std::path::Path::new("migrations/postgres")).await.expect("migrations");
    let kept: Vec<_> = super::postgres::MIGRATIONS.iter().filter(|m| m.version < 3).cloned().collect();
    before.migrations = std::borrow::Cow::Owned(kept);
    before.run(&pool).await.expect("the older schema");
    sqlx::raw_sql(SPELLINGS_BEFORE_KEYS).execute(&pool).await.expect("seed");
    let store = Store::open(&db.url).await.expect("open migrates");
    spellings_are_merged(&store, |q| {
        let pool = pool.clone();
        async move { sqlx::query_scalar::<_, i64>(q).fetch_one(&pool).await.expect("count") }
    })
    .await;
    pool.close().await;
}

/// Issue `number` to `lists`, every delivery of it sent as `<issueN.LOCAL@example.org>`.
async fn sent_issue(s: &Store, number: u32, lists: &[ListName], at: DateTime<Utc>) -> Vec<Claimed> {
    issue(s, number, lists).await;
    let claimed = s.claim(number, "w", 100, at, Duration::from_secs(30)).await.expect("claim");
    let sent: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Sent {
            delivery_id: c.delivery_id,
            message_id: format!(
                "<issue{number}.{}@example.org>",
                c.email.as_str().split('@').next().unwrap_or_default()
            ),
            reply: Some("250 ok".into()),
        })
        .collect();
    s.record("w", &sent, at).await.expect("record");
    claimed
}

fn rule() -> BounceRule {
    BounceRule { soft_limit: 3, soft_window: chrono::Duration::days(30) }
}

fn report<'a>(key: &'a str, target: &BounceTarget, kind: BounceKind) -> NewBounce<'a> {
    NewBounce {
        key,
        delivery_id: Some(target.delivery_id),
        subscriber_id: target.subscriber_id,
        issue: Some(target.issue),
        kind,
        status: Some("5.1.1"),
        diagnostic: Some("550 5.1.1 no such user"),
        source: "550 5.1.1 no such user",
    }
}

async fn status_of(s: &Store, email: &str) -> Option<SubscriberStatus> {
    s.subscriber(&email.parse().expect("address")).await.expect("get").map(|r| r.status)
}

async fn a_bounce_is_found_by_delivery_message_id_or_address_and_applied_once(s: Store) {
    s.import(
        &[row("a@example.org", &["weekly"]), row("b@example.org", &["weekly"]), row("c@example.org", &["weekly"])],
        "i",
        now(),
    )
    .await
    .expect("import");
    let sent = sent_issue(&s, 1, &[weekly()], now()).await;
    let a = s.bounce_target(sent[0].delivery_id).await.expect("find").expect("delivery");
    assert_eq!((a.email.as_str(), a.issue, a.subscriber_id), ("a@example.org", 1, sent[0].subscriber_id));
    assert_eq!(s.bounce_target(sent[2].delivery_id + 100).await.expect("find"), None);

    let b = s.bounce_target_by_message_id(1, "<issue1.b@example.org>").await.expect("find").expect("by id");
    assert_eq!(b.email.as_str(), "b@example.org");
    assert_eq!(s.bounce_target_by_message_id(2, "<issue1.b@example.org>").await.expect("find"), None);
    assert_eq!(s.bounce_target_by_message_id(1, "<issue1.z@example.org>").await.expect("find"), None);

    let c_address: EmailAddress = "C@Example.org".parse().expect("c");
    let c = s.bounce_target_by_address(&c_address, now() - chrono::Duration::days(30)).await.expect("find");
    assert_eq!(c.map(|t| t.delivery_id), Some(sent[2].delivery_id), "in any case of its letters");
    let later = now() + chrono::Duration::seconds(1);
    assert_eq!(s.bounce_target_by_address(&c_address, later).await.expect("find"), None, "no issue that recent");

    let applied = s.apply_bounce(&report("<r1@mx.example.net>", &a, BounceKind::Hard), rule(), now()).await;
    assert_eq!(applied.expect("apply"), BounceOutcome::Recorded { changed_to: Some(SubscriberStatus::Bounced) });
    assert_eq!(status_of(&s, "a@example.org").await, Some(SubscriberStatus::Bounced));
    let again = s.apply_bounce(&report("<r1@mx.example.net>", &a, BounceKind::Hard), rule(), later).await;
    assert_eq!(again.expect("apply"), BounceOutcome::Seen, "the same report, once");
    let events =
        texts(&s, "SELECT source FROM consent_events WHERE subscriber_id = $1 AND event = 'bounce'", a.subscriber_id)
            .await;
    assert_eq!(events, ["550 5.1.1 no such user"], "one departure, in the server's words");

    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!((i.counts.sent, i.reports.bounced, i.reports.complained), (3, 1, 0), "the delivery stays sent");
    let listed = s.bounces(None, None).await.expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].email.as_str(), listed[0].issue, listed[0].kind, listed[0].status.as_deref(), listed[0].at),
        ("a@example.org", Some(1), BounceKind::Hard, Some("5.1.1"), now())
    );
    assert_eq!(s.bounces(Some(2), None).await.expect("list"), []);
    assert_eq!(s.bounces(None, Some(BounceKind::Complaint)).await.expect("list"), []);
    assert_eq!(s.bounces(Some(1), Some(BounceKind::Hard)).await.expect("list").len(), 1);

    // A forgotten reader is no one a report can be about.
    s.forget(&"b@example.org".parse().expect("b"), "test", now()).await.expect("forget");
    assert_eq!(s.bounce_target(sent[1].delivery_id).await.expect("find"), None);
    assert_eq!(s.bounce_target_by_message_id(1, "<issue1.b@example.org>").await.expect("find"), None);
}

async fn soft_bounces_of_different_messages_add_up_within_the_window(s: Store) {
    s.import(&[row("a@example.org", &["weekly"])], "i", now()).await.expect("import");
    let day = |n: i64| now() + chrono::Duration::days(n);
    let one =
        s.bounce_target(sent_issue(&s, 1, &[weekly()], day(0)).await[0].delivery_id).await.expect("f").expect("1");
    let two =
        s.bounce_target(sent_issue(&s, 2, &[weekly()], day(30)).await[0].delivery_id).await.expect("f").expect("2");
    let three =
        s.bounce_target(sent_issue(&s, 3, &[weekly()], day(31)).await[0].delivery_id).await.expect("f").expect("3");
    let soft = |key, t| report(key, t, BounceKind::Soft);
    let kept = BounceOutcome::Recorded { changed_to: None };
    assert_eq!(s.apply_bounce(&soft("<1@x>", &one), rule(), day(0)).await.expect("apply"), kept);
    assert_eq!(s.apply_bounce(&soft("<1b@x>", &one), rule(), day(0)).await.expect("apply"), kept, "the same message");
    assert_eq!(s.apply_bounce(&soft("<2@x>", &two), rule(), day(31)).await.expect("apply"), kept);
    assert_eq!(
        s.apply_bounce(&soft("<3@x>", &three), rule(), day(32)).await.expect("apply"),
        kept,
        "the first issue's fell out of the window"
    );
    assert_eq!(status_of(&s, "a@example.org").await, Some(SubscriberStatus::Active));
    let third = s.apply_bounce(&soft("<1c@x>", &one), rule(), day(33)).await.expect("apply");
    assert_eq!(
        third,
        BounceOutcome::Recorded { changed_to: Some(SubscriberStatus::Bounced) },
        "three messages in 30 days"
    );
    assert_eq!(status_of(&s, "a@example.org").await, Some(SubscriberStatus::Bounced));
    let one_is_enough = BounceRule { soft_limit: 1, ..rule() };
    let again = s.apply_bounce(&soft("<4@x>", &two), one_is_enough, day(34)).await.expect("apply");
    assert_eq!(again, kept, "already bounced: nothing more to change");
    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!(i.reports.bounced, 1, "one delivery, however many reports");
}

async fn a_complaint_takes_the_reader_off_every_list_and_a_bounce_leaves_who_left(s: Store) {
    let news: ListName = "news".parse().expect("list");
    s.import(&[row("a@example.org", &["weekly", "news"]), row("b@example.org", &["weekly"])], "i", now())
        .await
        .expect("import");
    let sent = sent_issue(&s, 1, &[weekly()], now()).await;
    let a = s.bounce_target(sent[0].delivery_id).await.expect("f").expect("a");
    let b = s.bounce_target(sent[1].delivery_id).await.expect("f").expect("b");
    s.set_status(&a.email, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", now()).await.expect("s");
    s.set_status(&b.email, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, "web", now()).await.expect("s");

    let complaint = NewBounce {
        status: None,
        diagnostic: Some("abuse report"),
        source: "abuse report",
        ..report("<c@fbl>", &a, BounceKind::Complaint)
    };
    let done = s.apply_bounce(&complaint, rule(), now()).await.expect("apply");
    assert_eq!(done, BounceOutcome::Recorded { changed_to: Some(SubscriberStatus::Complained) });
    let record = s.subscriber(&a.email).await.expect("get").expect("a");
    assert_eq!(record.status, SubscriberStatus::Complained, "a complaint says more than leaving");
    assert!(record.lists.is_empty(), "off every list: {:?}", record.lists);
    assert!(s.subscribers(Some(&news), None).await.expect("list").is_empty());
    let events = texts(
        &s,
        "SELECT source FROM consent_events WHERE subscriber_id = $1 AND event = 'complaint'",
        a.subscriber_id,
    )
    .await;
    assert_eq!(events, ["abuse report"]);

    let bounced = s.apply_bounce(&report("<h@mx>", &b, BounceKind::Hard), rule(), now()).await.expect("apply");
    assert_eq!(bounced, BounceOutcome::Recorded { changed_to: None }, "recorded, and who left stays left");
    assert_eq!(status_of(&s, "b@example.org").await, Some(SubscriberStatus::Unsubscribed));
    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!((i.reports.bounced, i.reports.complained), (1, 1));
    let issues = s.issues().await.expect("issues");
    assert_eq!(issues[0].reports, i.reports, "the list counts them too");
}

async fn the_guard_pauses_an_issue_past_its_limit_and_counts_afresh_after_a_resume(s: Store) {
    use crate::domain::{IssueStatus, RateLimits};
    let rows: Vec<NewSubscriber> = (0..300).map(|i| row(&format!("r{i:03}@example.org"), &["weekly"])).collect();
    s.import(&rows, "i", now()).await.expect("import");
    issue(&s, 1, &[weekly()]).await;
    // 210 of 300 sent; the rest still queued.
    let claimed = s.claim(1, "w", 210, now(), Duration::from_secs(30)).await.expect("claim");
    let sent: Vec<Outcome> = claimed
        .iter()
        .map(|c| Outcome::Sent {
            delivery_id: c.delivery_id,
            message_id: format!("<issue1.{}@example.org>", c.delivery_id),
            reply: Some("250 ok".into()),
        })
        .collect();
    s.record("w", &sent, now()).await.expect("record");
    let limits = RateLimits { hard_bounces: Some("5%".parse().expect("share")), complaints: None };
    let ids: Vec<i64> = claimed.iter().map(|c| c.delivery_id).collect();
    let s = &s;
    let target = |i: usize| {
        let id = ids[i];
        async move { s.bounce_target(id).await.expect("find").expect("delivery") }
    };
    for i in 0..10 {
        let t = target(i).await;
        let key = format!("<hard{i}@mx>");
        s.apply_bounce(&report(&key, &t, BounceKind::Hard), rule(), now()).await.expect("apply");
        // The same delivery reported twice counts once.
        let again = format!("<hard{i}b@mx>");
        s.apply_bounce(&report(&again, &t, BounceKind::Hard), rule(), now()).await.expect("apply");
    }
    assert_eq!(s.guard_issue(1, limits).await.expect("guard"), Standing::Sending, "10 of 210 is within 5%");
    let t = target(10).await;
    s.apply_bounce(&report("<hard10@mx>", &t, BounceKind::Hard), rule(), now()).await.expect("apply");
    assert_eq!(s.guard_issue(1, RateLimits::default()).await.expect("guard"), Standing::Sending, "no limit, no pause");
    let Standing::Paused(note) = s.guard_issue(1, limits).await.expect("guard") else { panic!("not paused") };
    assert_eq!(note, "11 of the 210 messages it sent bounced hard (5.2%), past max_bounce_rate 5%");
    assert_eq!(s.guard_issue(1, limits).await.expect("guard"), Standing::Paused(note.clone()));
    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!((i.status, i.note.as_deref()), (IssueStatus::Paused, Some(note.as_str())));
    assert_eq!(i.counts.queued, 90, "what was not sent stays queued");
    assert_eq!(s.paused_issue().await.expect("paused").map(|i| i.number), Some(1));
    assert!(s.unfinished_issue().await.expect("unfinished").is_none(), "a paused issue is no one's to send");
    assert!(s.sending_issues().await.expect("sending").is_empty());
    assert!(s.sent_issue(1).await.expect("archive").is_some(), "readers hold it: it stays on the archive");
    assert_eq!(s.bounce_kind_counts().await.expect("kinds").get("hard"), Some(&21));

    // Resumed: only what is sent from now on counts, so the old bounces pause nothing.
    let later = now() + chrono::Duration::minutes(5);
    assert!(s.resume_paused(1, later).await.expect("resume"));
    assert!(!s.resume_paused(1, later).await.expect("resume"), "only a paused issue resumes");
    assert_eq!(s.guard_issue(1, limits).await.expect("guard"), Standing::Sending);
    let i = s.issue(1).await.expect("issue").expect("exists");
    assert_eq!((i.status, i.note), (IssueStatus::Sending, None));

    // A paused issue can be cancelled: what was queued is skipped.
    let t = target(11).await;
    s.apply_bounce(&report("<late@mx>", &t, BounceKind::Hard), rule(), later).await.expect("apply");
    assert!(s.cancel_issue(1, later).await.expect("cancel"));
    assert_eq!(s.guard_issue(1, limits).await.expect("guard"), Standing::Other(Some(IssueStatus::Cancelled)));
}

async fn a_webhook_token_is_taken_once_until_it_is_pruned_or_forgotten(s: Store) {
    let t0 = Utc.with_ymd_and_hms(2024, 3, 18, 12, 0, 0).single().expect("time");
    let minutes = |m: i64| t0 + chrono::Duration::minutes(m);
    assert!(s.note_webhook_token("mailgun", "tok-a", t0, minutes(-5)).await.expect("note"));
    assert!(!s.note_webhook_token("mailgun", "tok-a", minutes(1), minutes(-4)).await.expect("note"), "a replay");
    assert!(
        s.note_webhook_token("sendgrid", "tok-a", minutes(1), minutes(-4)).await.expect("note"),
        "another provider's"
    );
    s.forget_webhook_token("sendgrid", "tok-a").await.expect("forget");
    assert!(s.note_webhook_token("sendgrid", "tok-a", minutes(2), minutes(-3)).await.expect("note"), "forgotten");
    // Ten minutes on, the first is older than what is kept, and pruned.
    assert!(s.note_webhook_token("mailgun", "tok-b", minutes(10), minutes(5)).await.expect("note"));
    assert!(s.note_webhook_token("mailgun", "tok-a", minutes(10), minutes(5)).await.expect("note"), "pruned");
}

async fn actions_are_logged_newest_first_naming_a_reader_only_by_id(s: Store) {
    issue(&s, 1, &[weekly()]).await;
    s.import(&[row("Ani@Example.org", &["weekly"])], "import", now()).await.expect("import");
    let ed = Actor::User("ed@example.org".parse().expect("a"));
    let ani: EmailAddress = "ani@example.org".parse().expect("a");
    let first = NewAction { actor: &ed, action: "approved", issue: Some(1), subscriber: None, detail: "" };
    s.record_action(&first, now()).await.expect("record");
    let second = NewAction {
        actor: &Actor::CommandLine,
        action: "removed a subscriber",
        issue: None,
        subscriber: Some(&ani),
        detail: "",
    };
    s.record_action(&second, now() + chrono::Duration::seconds(1)).await.expect("record");
    let log = s.recent_actions(10).await.expect("log");
    assert_eq!(log.len(), 2);
    assert_eq!((log[0].actor.as_str(), log[0].action.as_str()), ("command line", "removed a subscriber"));
    assert_eq!(log[0].subscriber.as_deref(), Some("Ani@example.org"));
    assert_eq!((log[1].actor.as_str(), log[1].issue), ("ed@example.org", Some(1)));
    assert_eq!(s.issue_actions(1).await.expect("of issue").len(), 1);
    assert_eq!(s.recent_actions(1).await.expect("log").len(), 1);
    // Forgotten, the reader's address is no longer readable from the log.
    assert!(s.forget(&ani, "test", now()).await.expect("forget"));
    let log = s.recent_actions(10).await.expect("log");
    assert!(log[0].subscriber.as_deref().is_some_and(|e| !e.contains("ani")), "{log:?}");
}

async fn an_issue_is_counted_over_time_and_by_reason_and_readers_by_day(s: Store) {
    let people: Vec<NewSubscriber> = (0..6).map(|i| row(&format!("r{i}@example.org"), &["weekly"])).collect();
    s.import(&people, "i", now()).await.expect("import");
    assert_eq!(s.issue_timeline(1).await.expect("timeline"), Timeline::default(), "no issue, no outcome");
    issue(&s, 1, &[weekly()]).await;
    let claimed = s.claim(1, "w", 100, now(), Duration::from_secs(600)).await.expect("claim");
    let sec = |n: i64| now() + chrono::Duration::seconds(n);
    let sent = |c: &Claimed| Outcome::Sent {
        delivery_id: c.delivery_id,
        message_id: format!("<{}@e.org>", c.delivery_id),
        reply: Some("250 ok".into()),
    };
    let failed =
        |c: &Claimed, reply: &str| Outcome::Failed { delivery_id: c.delivery_id, reply: reply.into(), bounce: None };
    s.record("w", &[sent(&claimed[0]), sent(&claimed[1])], sec(1)).await.expect("record");
    s.record("w", &[sent(&claimed[2])], sec(4)).await.expect("record");
    let refusals = [
        failed(&claimed[3], "permanent error (550): 5.1.1 <r3@example.org>: no such user"),
        failed(&claimed[4], "permanent error (550): 5.1.1 <r4@example.org>: no such user"),
    ];
    s.record("w", &refusals, sec(4)).await.expect("record");
    let later = Outcome::Deferred {
        delivery_id: claimed[5].delivery_id,
        reply: "transient error (451): 4.7.1 slow down".into(),
        retry_at: sec(60),
        spent: true,
    };
    s.record("w", &[later], sec(4)).await.expect("record");

    let t = s.issue_timeline(1).await.expect("timeline");
    assert_eq!(t.step, chrono::Duration::seconds(1));
    let seen: Vec<(DateTime<Utc>, u64, u64)> = t.points.iter().map(|p| (p.at, p.sent, p.failed)).collect();
    assert_eq!(seen, [(sec(1), 2, 0), (sec(2), 0, 0), (sec(3), 0, 0), (sec(4), 1, 2)], "every step, empty ones too");

    let reasons = s.issue_failure_reasons(1).await.expect("reasons");
    let seen: Vec<(DeliveryState, Option<u16>, Option<&str>, u64)> =
        reasons.iter().map(|r| (r.state, r.code, r.status.as_deref(), r.count)).collect();
    assert_eq!(
        seen,
        [(DeliveryState::Failed, Some(550), Some("5.1.1"), 2), (DeliveryState::Deferred, Some(451), Some("4.7.1"), 1)]
    );
    assert!(!reasons[0].sample.contains('@'), "{}", reasons[0].sample);

    let target = s.bounce_target(claimed[0].delivery_id).await.expect("find").expect("delivery");
    s.apply_bounce(&report("<r1@mx>", &target, BounceKind::Hard), rule(), sec(5)).await.expect("apply");
    let target = s.bounce_target(claimed[1].delivery_id).await.expect("find").expect("delivery");
    s.apply_bounce(&report("<r2@mx>", &target, BounceKind::Complaint), rule(), sec(5)).await.expect("apply");
    let reports = s.issue_report_reasons(1).await.expect("reports");
    let seen: Vec<(BounceKind, Option<&str>, u64, Option<&str>)> =
        reports.iter().map(|r| (r.kind, r.status.as_deref(), r.count, r.sample.as_deref())).collect();
    assert_eq!(
        seen,
        [
            (BounceKind::Hard, Some("5.1.1"), 1, Some("550 5.1.1 no such user")),
            (BounceKind::Complaint, Some("5.1.1"), 1, Some("550 5.1.1 no such user"))
        ]
    );
    assert_eq!(s.issue_report_reasons(2).await.expect("reports"), []);

    // Six imported on the first day; one bounced and one complained on the second.
    let day = |n: i64| now() - chrono::Duration::hours(9) + chrono::Duration::days(n);
    let days = s.subscriber_days(&[day(-1), day(0), day(1), day(2)]).await.expect("days");
    let seen: Vec<(DateTime<Utc>, u64, u64, u64)> =
        days.iter().map(|d| (d.start, d.joined, d.left, d.active)).collect();
    assert_eq!(seen, [(day(-1), 0, 0, 0), (day(0), 6, 2, 4), (day(1), 0, 0, 4)]);
}

async fn users_and_their_sessions_end_together(s: Store) {
    use crate::domain::Role;
    let ann: EmailAddress = "Ann@Example.org".parse().expect("address");
    let ann_lower: EmailAddress = "ann@example.org".parse().expect("address");
    let ed: EmailAddress = "ed@example.org".parse().expect("address");
    let put = |email, role, hash| NewUser { email, role, password_hash: hash };
    assert!(s.put_user(&put(&ann, Role::Owner, "h1"), now()).await.expect("add"));
    assert!(s.put_user(&put(&ed, Role::Editor, "h2"), now()).await.expect("add"));
    let found = s.user(&ann_lower).await.expect("user").expect("found whatever the case");
    assert_eq!(
        (found.email.as_str(), found.role, found.password_hash.as_str()),
        ("Ann@example.org", Role::Owner, "h1")
    );
    assert_eq!(found.created_at, now());
    let all: Vec<String> = s.users().await.expect("users").into_iter().map(|u| u.email).collect();
    assert_eq!(all, ["Ann@example.org", "ed@example.org"]);

    let later = now() + chrono::Duration::hours(1);
    let session = |digest, email| NewSession { token_digest: digest, email, csrf: "c", expires_at: later };
    s.start_session(&session("d-ann", &ann), now()).await.expect("session");
    s.start_session(&session("d-ed", &ed), now()).await.expect("session");
    let got = s.session("d-ann").await.expect("read").expect("live");
    assert_eq!((got.email.as_str(), got.role, got.csrf.as_str()), ("Ann@example.org", Role::Owner, "c"));
    assert_eq!((got.created_at, got.seen_at, got.expires_at), (now(), now(), later));
    s.touch_session("d-ann", now() + chrono::Duration::minutes(5)).await.expect("touch");
    assert_eq!(s.session("d-ann").await.expect("read").expect("live").seen_at, now() + chrono::Duration::minutes(5));
    assert_eq!(s.session("nope").await.expect("read"), None);

    // A new password ends the sessions of the old one; the role changes with it.
    assert!(!s.put_user(&put(&ann_lower, Role::Editor, "h3"), now()).await.expect("replace"));
    assert_eq!(s.session("d-ann").await.expect("read"), None);
    assert_eq!(s.user(&ann).await.expect("user").expect("found").role, Role::Editor);

    // Removing a user ends their sessions at once; signing out ends one.
    assert!(s.remove_user(&ed).await.expect("remove"));
    assert!(!s.remove_user(&ed).await.expect("remove again"));
    assert_eq!(s.session("d-ed").await.expect("read"), None);
    s.start_session(&session("d-ann2", &ann), now()).await.expect("session");
    s.end_session("d-ann2").await.expect("end");
    assert_eq!(s.session("d-ann2").await.expect("read"), None);

    // Ended sessions are forgotten when the next one starts.
    s.start_session(&session("d-old", &ann), now()).await.expect("session");
    s.start_session(&session("d-new", &ann), later).await.expect("session");
    assert_eq!(s.session("d-old").await.expect("read"), None);
    assert!(s.session("d-new").await.expect("read").is_some());
}

async fn a_search_finds_an_address_or_a_name_a_page_at_a_time(s: Store) {
    let mut rose = row("rose@example.org", &["weekly"]);
    rose.name = SubscriberName::parse("Rose Tyler").expect("name");
    let rows =
        [rose, row("martha@example.org", &["weekly"]), row("amy_pond@example.org", &[]), row("ROSIE@example.net", &[])];
    s.import(&rows, "import", now()).await.expect("import");
    let emails = |found: Vec<SubscriberRecord>| found.into_iter().map(|r| r.email).collect::<Vec<_>>();
    let found = s.search_subscribers("ros", None, None, None, 10).await.expect("search");
    assert_eq!(emails(found), ["ROSIE@example.net", "rose@example.org"]);
    let found = s.search_subscribers("TYLER", None, None, None, 10).await.expect("search");
    assert_eq!(emails(found), ["rose@example.org"], "by name, whatever the case");
    let found = s.search_subscribers("_", None, None, None, 10).await.expect("search");
    assert_eq!(emails(found), ["amy_pond@example.org"], "an underscore is itself");
    let found = s.search_subscribers("", Some(&weekly()), None, None, 10).await.expect("search");
    assert_eq!(emails(found), ["martha@example.org", "rose@example.org"]);
    let first = s.search_subscribers(" ", None, Some(SubscriberStatus::Active), None, 2).await.expect("page");
    assert_eq!(emails(first.clone()), ["ROSIE@example.net", "amy_pond@example.org"]);
    let next = s.search_subscribers("", None, None, Some(&first[1].email), 2).await.expect("page");
    assert_eq!(emails(next), ["martha@example.org", "rose@example.org"]);
}

async fn preferences_change_in_one_transaction_with_their_consent_event(s: Store) {
    use preferences::{PauseChange, PreferencesChange};
    let ann: EmailAddress = "Ann@example.org".parse().expect("ann");
    s.import(&[row("Ann@example.org", &[])], "people.csv", now()).await.expect("import");
    let before = s.subscriber(&ann).await.expect("get").expect("stored");
    assert_eq!((before.edition.as_deref(), before.topics.len(), before.paused_until), (None, 0, None));

    let until = now() + chrono::Duration::weeks(2);
    let change = PreferencesChange {
        edition: Some("weekly".into()),
        topics: vec!["science".into(), "arts & culture".into()],
        name: Some("Ann Smith".into()),
        pause: PauseChange::Until(until),
    };
    assert!(s.set_preferences(&"ann@EXAMPLE.org".parse().expect("ann"), &change, "web", now()).await.expect("set"));
    assert!(!s.set_preferences(&ann, &change, "web", now()).await.expect("again"), "the same choice twice");
    let after = s.subscriber(&ann).await.expect("get").expect("stored");
    assert_eq!(after.edition.as_deref(), Some("weekly"));
    assert_eq!(after.topics, ["arts & culture", "science"]);
    assert_eq!((after.name.as_str(), after.paused_until), ("Ann Smith", Some(until)));
    assert_eq!(after.status, SubscriberStatus::Active, "a pause is no departure");

    let back = PreferencesChange { edition: None, topics: vec![], name: None, pause: PauseChange::Resume };
    assert!(s.set_preferences(&ann, &back, "api", now()).await.expect("back"));
    let back = s.subscriber(&ann).await.expect("get").expect("stored");
    assert_eq!((back.edition, back.topics.len(), back.paused_until, back.name.as_str()), (None, 0, None, "Ann Smith"));
    assert_eq!(
        texts(
            &s,
            "SELECT event || ' from ' || source FROM consent_events WHERE subscriber_id = $1 ORDER BY id",
            back.id
        )
        .await,
        ["import from people.csv", "preferences from web", "preferences from api"]
    );
    let nobody = s.set_preferences(&"nobody@example.org".parse().expect("x"), &change, "web", now()).await;
    assert!(!nobody.expect("unknown"));
}

async fn an_import_sets_and_updates_preferences_and_counts_the_change(s: Store) {
    let chose = |email: &str, edition: Option<Option<&str>>, topics: Option<&[&str]>| NewSubscriber {
        edition: edition.map(|e| e.map(str::to_owned)),
        topics: topics.map(|t| t.iter().map(|k| (*k).to_owned()).collect()),
        ..row(email, &["weekly"])
    };
    let first =
        [chose("ann@example.org", Some(Some("weekly")), Some(&["science"])), row("bo@example.org", &["weekly"])];
    let counts = s.import(&first, "people.csv", now()).await.expect("import");
    assert_eq!((counts.imported, counts.updated), (2, 0));
    let ann = s.subscriber(&"ann@example.org".parse().expect("ann")).await.expect("get").expect("stored");
    assert_eq!((ann.edition.as_deref(), ann.topics.as_slice()), (Some("weekly"), &["science".to_owned()][..]));

    // The same file again changes nothing; a file that names other choices updates them, and a
    // file without the columns keeps them.
    let counts = s.import(&first, "people.csv", now()).await.expect("again");
    assert_eq!((counts.updated, counts.unchanged), (0, 2));
    let second = [chose("ann@example.org", Some(None), Some(&[])), chose("bo@example.org", None, Some(&["arts"]))];
    let counts = s.import(&second, "prefs.csv", now()).await.expect("second");
    assert_eq!((counts.updated, counts.unchanged), (2, 0));
    let ann = s.subscriber(&"ann@example.org".parse().expect("ann")).await.expect("get").expect("stored");
    assert_eq!((ann.edition, ann.topics.len()), (None, 0), "back to the default and every topic");
    let bo = s.subscriber(&"bo@example.org".parse().expect("bo")).await.expect("get").expect("stored");
    assert_eq!((bo.edition, bo.topics), (None, vec!["arts".to_owned()]));
    s.import(&[row("bo@example.org", &["weekly"])], "plain.csv", now()).await.expect("plain");
    let bo = s.subscriber(&"bo@example.org".parse().expect("bo")).await.expect("get").expect("stored");
    assert_eq!(bo.topics, ["arts"], "a file without the column keeps them");
    let counts = s.choice_counts().await.expect("counts");
    assert_eq!(counts.editions, BTreeMap::from([(None, 2)]));
    assert_eq!(counts.topics, BTreeMap::from([(None, 1), (Some("arts".to_owned()), 1)]));
    assert_eq!(
        texts(
            &s,
            "SELECT event || ' from ' || source FROM consent_events WHERE subscriber_id = $1 ORDER BY id",
            ann.id
        )
        .await,
        ["import from people.csv", "preferences from people.csv", "preferences from prefs.csv"]
    );
}
