//! `gazette issues list|show|resume|cancel`: the issues and their delivery counts.

use std::{path::Path, sync::Arc};

use serde_json::json;

use super::{Failure, Output, delivery, output, setup};
use crate::{
    clock::{Clock, SystemClock},
    config::Publication,
    domain::IssueStatus,
    store::{IssueRecord, Store},
    views::{IssueSummary, IssueView},
};

#[derive(Debug, clap::Subcommand)]
pub enum IssuesCommand {
    /// Every issue with its delivery counts.
    List,
    /// One issue: its articles, counts, failed recipients with the server's reply, and deferred
    /// ones with their next attempt.
    Show { number: u32 },
    /// Deliver what is left of an issue; a paused one goes on, its rates counted afresh.
    Resume { number: u32 },
    /// Stop an issue: what has not gone out yet never will.
    Cancel { number: u32 },
    /// Edit a draft or held issue: its subject, its intro, the articles it carries and their order.
    Edit {
        number: u32,
        /// The subject, one line, used as it stands.
        #[arg(long)]
        subject: Option<String>,
        /// The intro, Markdown, from FILE (`-` reads stdin); an empty file removes it.
        #[arg(long, value_name = "FILE")]
        intro: Option<std::path::PathBuf>,
        /// Leave out the article at this URL (repeatable).
        #[arg(long, value_name = "URL")]
        exclude: Vec<String>,
        /// These articles first, in this order; the others keep theirs, after.
        #[arg(long, value_name = "URL,URL,…")]
        order: Option<String>,
    },
    /// Approve a draft or held issue: it goes out at its slot, or at once if that has passed.
    Approve { number: u32 },
    /// Hold a draft or approved issue: nothing sends it until it is approved.
    Hold { number: u32 },
}

pub async fn run(config: &Path, command: IssuesCommand) -> Result<Output, Failure> {
    let cfg = setup::config(config).await?;
    let store = setup::store(&cfg).await?;
    let site = &cfg.publication;
    match command {
        IssuesCommand::List => list(&store).await,
        // Review's own commands are run by `cli::review`, which prints through `show` here.
        IssuesCommand::Edit { .. } | IssuesCommand::Approve { .. } | IssuesCommand::Hold { .. } => {
            Err(Failure::usage("review commands are run by cli::review"))
        }
        IssuesCommand::Show { number } => show_output(&store, site, number, "").await,
        IssuesCommand::Cancel { number } => {
            let done = store.cancel_issue(number, SystemClock.now()).await.map_err(Failure::from)?;
            if !done {
                let i = existing(&store, number).await?;
                return Err(Failure::usage(format!("issue #{number} is {}: nothing to cancel", i.status)));
            }
            show_output(&store, site, number, &format!("Issue #{number} cancelled.\n")).await
        }
        IssuesCommand::Resume { number } => {
            let started = std::time::Instant::now();
            let i = existing(&store, number).await?;
            if i.status == IssueStatus::Cancelled {
                return Err(Failure::usage(format!("issue #{number} was cancelled; it cannot be resumed")));
            }
            let mut header = String::new();
            if i.status == IssueStatus::Paused {
                // Resumed by a person who has seen why: the rates count again from now.
                store.resume_paused(number, SystemClock.now()).await.map_err(Failure::from)?;
                header = format!("Issue #{number} resumed after its pause ({}).\n", i.note.as_deref().unwrap_or(""));
                store.finish_issue_if_done(number, SystemClock.now()).await.map_err(Failure::from)?;
            }
            // An issue whose readers are still being queued has more to send than its ledger shows.
            if i.counts.pending() == 0 && !store.filling(number).await.map_err(Failure::from)? {
                header.push_str(&format!("Issue #{number} has nothing left to send.\n"));
                return show_output(&store, site, number, &header).await;
            }
            let publication = Arc::new(setup::publication(config).await?);
            store.reopen_issue(number, SystemClock.now()).await.map_err(Failure::from)?;
            let transport = setup::transport(&publication.config).await?;
            let summary = delivery::deliver(Arc::clone(&publication), &store, &i, transport).await?;
            let after = existing(&store, number).await?;
            header.push_str(&delivery::summary_line(&after, &summary, started));
            let paused_again = summary.paused.is_some().then(|| delivery::paused(&after).message);
            let mut out = show(&store, &publication.config.publication, after, &header).await?;
            if summary.stopped {
                out.exit_code = 1;
            }
            if let Some(why) = paused_again {
                out.exit_code = 1;
                out.warnings.push(why);
            }
            Ok(out)
        }
    }
}

async fn existing(store: &Store, number: u32) -> Result<IssueRecord, Failure> {
    store
        .issue(number)
        .await
        .map_err(Failure::from)?
        .ok_or_else(|| Failure::usage(format!("there is no issue #{number}; `gazette issues list` shows them")))
}

async fn list(store: &Store) -> Result<Output, Failure> {
    let issues = store.issues().await.map_err(Failure::from)?;
    let rows: Vec<Vec<String>> = issues
        .iter()
        .map(|i| {
            vec![
                format!("#{}", i.number),
                i.status.to_string(),
                i.created_at.format("%Y-%m-%d %H:%M").to_string(),
                i.counts.queued.to_string(),
                i.counts.sent.to_string(),
                i.counts.deferred.to_string(),
                i.counts.failed.to_string(),
                i.counts.skipped.to_string(),
                i.subject.clone(),
            ]
        })
        .collect();
    let human = if rows.is_empty() {
        "No issue yet: `gazette send` creates the first.\n".into()
    } else {
        output::table(
            &["ISSUE", "STATUS", "CREATED", "QUEUED", "SENT", "DEFERRED", "FAILED", "SKIPPED", "SUBJECT"],
            &rows,
        )
    };
    let json = json!({ "issues": issues.iter().map(IssueSummary::from).collect::<Vec<_>>() });
    Ok(Output::new(human, json))
}

/// The `issues show` document, which `send` prints too; times in the publication's zone.
pub async fn show_output(store: &Store, site: &Publication, number: u32, header: &str) -> Result<Output, Failure> {
    let i = existing(store, number).await?;
    show(store, site, i, header).await
}

/// The `issues show` document of `i` as read, so that a header made from the same record agrees
/// with its counts.
pub async fn show(store: &Store, site: &Publication, i: IssueRecord, header: &str) -> Result<Output, Failure> {
    let tz = site.timezone;
    let number = i.number;
    let failures = store.failures(number).await.map_err(Failure::from)?;
    let deferred = store.deferred(number).await.map_err(Failure::from)?;
    let history = store.issue_actions(number).await.map_err(Failure::from)?;
    let relays = store.relays(number).await.map_err(Failure::from)?;
    let mut human = String::from(header);
    human.push_str(&format!("{} #{} {} — {}\n", output::bold("Issue"), i.number, i.status, i.subject));
    if let Some(note) = &i.note {
        human.push_str(&format!("  {note}\n"));
    }
    human.push_str(&format!(
        "queued {}  sent {}  deferred {}  failed {}  skipped {}  bounced {}  complained {}\n",
        i.counts.queued,
        i.counts.sent,
        i.counts.deferred,
        i.counts.failed,
        i.counts.skipped,
        i.reports.bounced,
        i.reports.complained
    ));
    if let Some(at) = i.send_at {
        human.push_str(&format!("  goes out at {}\n", at.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")));
    }
    if let Some(intro) = &i.intro {
        human.push_str(&format!("  intro: {}\n", intro.lines().next().unwrap_or_default()));
    }
    for a in &i.articles {
        human.push_str(&format!("  · {}  {}\n", a.title, a.url.as_ref().map_or("", |u| u.as_str())));
    }
    for a in &i.left_out {
        human.push_str(&format!("  ✗ {} (left out)  {}\n", a.title, a.url.as_ref().map_or("", |u| u.as_str())));
    }
    for h in history.iter().take(5) {
        human.push_str(&format!(
            "  {} {} by {}\n",
            h.at.with_timezone(&tz).format("%Y-%m-%d %H:%M"),
            h.action,
            h.actor
        ));
    }
    if !failures.is_empty() {
        human.push_str(&output::bold("Failed\n"));
        let rows: Vec<Vec<String>> = failures
            .iter()
            .map(|f| vec![f.email.clone(), f.attempts.to_string(), f.reply.clone().unwrap_or_default()])
            .collect();
        human.push_str(&output::table(&["EMAIL", "ATTEMPTS", "REPLY"], &rows));
    }
    if !deferred.is_empty() {
        human.push_str(&output::bold("Deferred\n"));
        let rows: Vec<Vec<String>> = deferred
            .iter()
            .map(|d| {
                vec![
                    d.email.clone(),
                    d.attempts.to_string(),
                    d.next_attempt.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string(),
                    d.reply.clone().unwrap_or_default(),
                ]
            })
            .collect();
        human.push_str(&output::table(&["EMAIL", "ATTEMPTS", "NEXT ATTEMPT", "REPLY"], &rows));
    }
    if !relays.is_empty() {
        human.push_str(&output::bold("Relays\n"));
        let rows: Vec<Vec<String>> = relays
            .iter()
            .map(|r| {
                vec![
                    r.relay.clone(),
                    r.sent.to_string(),
                    r.deferred.to_string(),
                    r.failed.to_string(),
                    r.last_reply.clone().unwrap_or_default(),
                ]
            })
            .collect();
        human.push_str(&output::table(&["RELAY", "SENT", "DEFERRED", "FAILED", "LAST REPLY"], &rows));
    }
    let json = json!(IssueView::new(&i, &failures, &deferred, site).with_history(&history).with_relays(&relays));
    Ok(Output::new(human, json))
}
