//! `gazette send`: create the next issue and deliver it, or resume the unfinished one.

use std::{io::IsTerminal, path::Path, sync::Arc};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Failure, Output, delivery, issues, setup};
use crate::{
    clock::{Clock, FixedClock, SystemClock},
    config::{Approval, Edition, Review},
    domain::{Actor, EmailAddress, IssueStatus},
    issue::{self, Plan},
    store::IssueRecord,
    subscribers,
};

pub struct Options<'a> {
    pub as_of: Option<&'a str>,
    pub dry_run: bool,
    pub to: &'a [String],
    pub queue_only: bool,
    pub yes: bool,
    /// `--edition`: whose next issue; the default edition without it.
    pub edition: Option<&'a str>,
}

pub async fn run(config: &Path, o: Options<'_>) -> Result<Output, Failure> {
    // What `first_message_seconds` counts from.
    let started = std::time::Instant::now();
    let publication = Arc::new(setup::publication(config).await?);
    let edition = setup::edition(&publication.config, o.edition)?;
    let now = setup::now(o.as_of, &publication)?;
    // Asking is how a send is confirmed; where nobody can answer, only --yes confirms it, and
    // this is said before the store is touched.
    let ask = !o.yes && !o.dry_run && o.to.is_empty();
    if ask && !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "not sent: send asks before it sends, and stdin is not a terminal to answer on; add --yes to send without asking",
        )
        .field("--yes"));
    }
    let store = setup::store(&publication.config).await?;
    // `--as-of` dates the issue and chooses its articles; the ledger keeps real times.
    let real = SystemClock.now();

    if !o.to.is_empty() {
        return test_copies(&publication, &store, edition, now, o.to).await;
    }
    if o.dry_run {
        return dry_run(&publication, &store, edition, now, real).await;
    }

    // The transport (and the DKIM key) is checked before anything is created, so a bad key or
    // URL leaves no issue behind.
    let transport = setup::transport(&publication.config).await?;
    // An issue under review goes out only as `[review]` lets it: this send queues it (then
    // resumes it below), waits for its slot, or refuses.
    if let Some(reviewed) = store.issue_in_review().await? {
        match review_gate(publication.config.review.as_ref(), &reviewed, real) {
            Gate::Refuse(why) => return Err(Failure::usage(why)),
            Gate::Wait(why) => {
                return Ok(Output::new(format!("Nothing to send: {why}.\n"), json!({ "issue": null, "reason": why })));
            }
            Gate::Queue => {
                if ask && !confirm(format!("Send issue #{} to its readers? [y/N] ", reviewed.number)).await {
                    return Err(Failure::usage("not sent: answer y to send it, or pass --yes"));
                }
                let lists = subscribers::issue_lists(&publication.config);
                let variants = issue::variant_plan_of(&publication, &reviewed, real);
                store.serve_slot(reviewed.number, false, lists, variants.as_ref(), &Actor::CommandLine, real).await?;
            }
        }
    }
    let plan = issue::plan(&publication, &store, edition, now, true).await?;
    if ask {
        let question = match &plan {
            Plan::Nothing(_) => None,
            Plan::Create(draft) => {
                let copies = issue::variant_plan(&publication, draft, now)
                    .map(|p| (p, draft.edition.as_ref().map(|e| e.name.key())));
                let copies = copies.as_ref().map(|(p, e)| (p, e.as_deref()));
                let reach = subscribers::reach(&publication.config, &store, copies, real).await?;
                Some(format!("Send issue #{} to {}? [y/N] ", draft.number, readers_count(reach.readers)))
            }
            Plan::Resume(issue) => Some(format!(
                "Resume issue #{}: {} still to get it? [y/N] ",
                issue.number,
                readers_count(issue.counts.pending())
            )),
            Plan::Paused(_) => None,
        };
        if let Some(question) = question
            && !confirm(question).await
        {
            return Err(Failure::usage("not sent: answer y to send it, or pass --yes"));
        }
    }
    let mut warnings = Vec::new();
    // A file's bad rows are told once, when the file changes, rather than at every send.
    for s in subscribers::sync_lists(&publication.config, &store, real).await?.iter().filter(|s| s.changed) {
        warnings.extend(row_warnings(s));
    }
    // The phases of a large send, timed by the log (benches/listfile.sh reads these lines).
    tracing::debug!("list files synced");
    let issue = match plan {
        Plan::Nothing(reason) => {
            let mut out =
                Output::new(format!("Nothing to send: {reason}.\n"), json!({ "issue": null, "reason": reason }));
            out.warnings = warnings;
            return Ok(out);
        }
        Plan::Resume(issue) => {
            warnings.push(format!("issue #{} is unfinished: resuming it before anything new", issue.number));
            *issue
        }
        Plan::Paused(issue) => return Err(delivery::paused(&issue)),
        Plan::Create(draft) => match issue::create(&publication, &store, &draft, None, real).await {
            Ok(i) => i,
            Err(issue::IssueError::Store(crate::store::StoreError::IssueExists(n))) => store
                .issue(n)
                .await
                .map_err(Failure::from)?
                .ok_or_else(|| Failure::unfinished(format!("issue {n} vanished")))?,
            Err(e) => return Err(e.into()),
        },
    };
    tracing::debug!("issue #{} made and queued for its readers", issue.number);
    let site = &publication.config.publication;
    if o.queue_only {
        // Whoever delivers it would queue the rest as it goes; a worker may not start for a
        // while, so the command leaves every reader queued.
        let lists = subscribers::issue_lists(&publication.config);
        store.queue_all(issue.number, lists, publication.config.delivery.queue_chunk, real).await?;
        let mut out = issues::show_output(
            &store,
            site,
            issue.number,
            &format!("Issue #{} queued; `gazette worker` delivers it.\n", issue.number),
        )
        .await?;
        out.warnings = warnings;
        return Ok(out);
    }

    let result = delivery::deliver(Arc::clone(&publication), &store, &issue, transport).await;
    let summary = match result {
        Ok(s) => s,
        Err(f) => return Err(f),
    };
    // The closing line and the table are made from one reading of the ledger, so they agree.
    let after = store
        .issue(issue.number)
        .await
        .map_err(Failure::from)?
        .ok_or_else(|| Failure::unfinished(format!("issue {} vanished", issue.number)))?;
    let header = delivery::summary_line(&after, &summary, started);
    let paused_now = summary.paused.is_some().then(|| delivery::paused(&after).message);
    let mut out = issues::show(&store, site, after, &header).await?;
    let secs = summary.elapsed.as_secs_f64();
    out.json["elapsed_seconds"] = json!(secs);
    out.json["first_message_seconds"] = json!(delivery::first_message(&summary, started).map(|d| d.as_secs_f64()));
    out.json["this_run"] = json!({
        "sent": summary.sent,
        "deferred": summary.deferred,
        "failed": summary.failed,
        "retries": summary.retries,
    });
    out.warnings = warnings;
    if summary.stopped {
        out.exit_code = 1;
        out.warnings.push("stopped before the issue was done: run `gazette send` again to resume".into());
    }
    if let Some(why) = paused_now {
        out.exit_code = 1;
        out.warnings.push(why);
    }
    Ok(out)
}

/// `--dry-run`: what a send would do now, changing nothing. The list files are synced as a send
/// syncs them, inside a transaction that is rolled back, so the count of readers is the one the
/// send would queue.
async fn dry_run(
    publication: &crate::publication::Publication,
    store: &crate::store::Store,
    edition: Option<&Edition>,
    now: DateTime<Utc>,
    real: DateTime<Utc>,
) -> Result<Output, Failure> {
    let plan = issue::plan(publication, store, edition, now, false).await?;
    // An issue of editions or topics is counted by the copies its readers would get.
    let copies = match &plan {
        Plan::Create(draft) => {
            issue::variant_plan(publication, draft, now).map(|p| (p, draft.edition.as_ref().map(|e| e.name.key())))
        }
        _ => None,
    };
    let reach =
        subscribers::reach(&publication.config, store, copies.as_ref().map(|(p, e)| (p, e.as_deref())), real).await?;
    let warnings: Vec<String> = reach.syncs.iter().flat_map(row_warnings).collect();
    let mut out = match plan {
        Plan::Nothing(reason) => {
            Output::new(format!("Nothing to send: {reason}.\n"), json!({ "issue": null, "reason": reason }))
        }
        Plan::Resume(issue) => {
            issues::show_output(
                store,
                &publication.config.publication,
                issue.number,
                "Dry run: the unfinished issue would be resumed.\n",
            )
            .await?
        }
        Plan::Paused(issue) => {
            let header = format!("Dry run: nothing would be sent: {}.\n", delivery::paused(&issue).message);
            issues::show_output(store, &publication.config.publication, issue.number, &header).await?
        }
        Plan::Create(draft) => {
            let titles: Vec<&str> = draft.selected.articles.iter().map(|a| a.title.as_str()).collect();
            let human = format!(
                "Dry run: issue #{} would carry {} articles to {} through {}:\n  {}\nNothing was changed.\n",
                draft.number,
                titles.len(),
                readers_count(reach.readers),
                describe_transport(&publication.config),
                titles.join("\n  ")
            );
            let json = json!({
                "issue": null,
                "reason": "dry run",
                "would_send": { "number": draft.number, "articles": titles, "recipients": reach.readers },
            });
            Output::new(human, json)
        }
    };
    out.warnings = warnings;
    Ok(out)
}

/// A list file's bad rows, each by its file and line.
fn row_warnings(s: &subscribers::ListSync) -> Vec<String> {
    s.rejected.iter().map(|r| format!("{}:{}: {} (row left out)", s.file.display(), r.line, r.reason)).collect()
}

fn readers_count(n: u64) -> String {
    if n == 1 { "1 reader".to_owned() } else { format!("{n} readers") }
}

fn describe_transport(config: &crate::config::Config) -> String {
    match config.delivery.transport {
        crate::config::Transport::Outbox => format!("the outbox {}", config.delivery.outbox.display()),
        crate::config::Transport::Smtp => "SMTP".into(),
    }
}

/// `--to`: a test copy of the next (or unfinished) issue to each address, recorded nowhere.
async fn test_copies(
    publication: &Arc<crate::publication::Publication>,
    store: &crate::store::Store,
    edition: Option<&Edition>,
    now: DateTime<Utc>,
    to: &[String],
) -> Result<Output, Failure> {
    let addresses: Vec<EmailAddress> = to
        .iter()
        .map(|a| a.parse().map_err(|e| Failure::usage(format!("--to {a}: {e}")).field("--to")))
        .collect::<Result<_, _>>()?;
    // An issue under review is the one its editors want to see.
    let reviewed = store.issue_in_review().await?;
    let plan = match reviewed {
        Some(i) => Plan::Resume(Box::new(i)),
        None => issue::plan(publication, store, edition, now, false).await?,
    };
    let issue = match plan {
        Plan::Resume(i) | Plan::Paused(i) => *i,
        Plan::Create(draft) => {
            let subject = String::new();
            IssueRecord {
                number: draft.number,
                status: crate::domain::IssueStatus::Sending,
                subject,
                date: draft.date,
                articles: draft.selected.articles.clone(),
                slot: None,
                created_at: now,
                finished_at: None,
                note: None,
                counts: Default::default(),
                reports: Default::default(),
                intro: None,
                left_out: Vec::new(),
                subject_edited: false,
                send_at: None,
                edition: draft.edition.as_ref().map(|e| e.name.key()),
            }
        }
        Plan::Nothing(reason) => {
            return Ok(Output::new(
                format!("Nothing to send: {reason}.\n"),
                json!({ "issue": null, "reason": reason }),
            ));
        }
    };
    let transport = setup::transport(&publication.config).await?;
    let clock: Arc<dyn Clock> = Arc::new(FixedClock(now));
    issue::send_test_copies(Arc::clone(publication), &issue, &transport, &addresses, clock).await?;
    let sent: Vec<String> = addresses.iter().map(ToString::to_string).collect();
    Ok(Output::new(
        format!("Test copy of issue #{} sent to {} (recorded nowhere).\n", issue.number, sent.join(", ")),
        json!({ "issue": null, "reason": "test copy", "test_copies": sent, "number": issue.number }),
    ))
}

/// What `send` does with an issue under review.
#[derive(Debug, PartialEq, Eq)]
enum Gate {
    /// Its time has come and it may go: queue it and send it.
    Queue,
    /// It goes out at its slot, not before.
    Wait(String),
    /// It needs a person's word first (exit 2).
    Refuse(String),
}

fn review_gate(review: Option<&Review>, issue: &IssueRecord, now: DateTime<Utc>) -> Gate {
    let n = issue.number;
    let due = issue.send_at.is_none_or(|t| t <= now);
    let slot = || issue.send_at.map(|t| t.to_rfc3339()).unwrap_or_default();
    match issue.status {
        IssueStatus::Held => Gate::Refuse(format!(
            "issue #{n} is held: it is not sent until it is approved; `gazette issues approve {n}` sends it"
        )),
        IssueStatus::Draft if review.is_some_and(|r| r.approval == Approval::Required) => Gate::Refuse(format!(
            "issue #{n} is a draft that [review] requires approved before it goes out; review it with `gazette issues show {n}`, then `gazette issues approve {n}`"
        )),
        IssueStatus::Draft | IssueStatus::Approved if due => Gate::Queue,
        IssueStatus::Draft => {
            Gate::Wait(format!("issue #{n} is a draft for its slot at {}; it goes out then unless held", slot()))
        }
        _ => Gate::Wait(format!("issue #{n} is approved and goes out at its slot, {}", slot())),
    }
}

async fn confirm(question: String) -> bool {
    tokio::task::spawn_blocking(move || {
        eprint!("{question}");
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer).is_ok() && matches!(answer.trim(), "y" | "Y" | "yes")
    })
    .await
    .unwrap_or(false)
}
