//! `gazette bounces ingest|list`: bounce and complaint messages read and applied, and what was
//! recorded.

use std::path::{Path, PathBuf};

use serde_json::json;
use tokio::io::AsyncReadExt;

use super::{Failure, Output, output, setup};
use crate::{
    bounces::{Ingest, Ingested, Outcome, mailbox},
    clock::{Clock, SystemClock},
    domain::{BounceKind, UnknownState},
    views::{BounceView, IngestedView},
};

#[derive(Debug, clap::Subcommand)]
pub enum BouncesCommand {
    /// Read bounce and complaint messages and apply them: files (one message, or an mbox),
    /// Maildir folders (new messages are moved to cur/ once read), or one message on stdin (no
    /// PATH, or `-`), as an MTA pipes it.
    Ingest {
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,
    },
    /// The bounces and complaints recorded, the oldest first.
    List {
        /// Only those of this issue.
        #[arg(long)]
        issue: Option<u32>,
        /// Only those of this kind: hard, soft or complaint.
        #[arg(long, value_parser = kind)]
        kind: Option<BounceKind>,
    },
}

fn kind(s: &str) -> Result<BounceKind, UnknownState> {
    s.parse()
}

pub async fn run(config: &Path, command: BouncesCommand) -> Result<Output, Failure> {
    match command {
        BouncesCommand::Ingest { paths } => ingest(config, &paths).await,
        BouncesCommand::List { issue, kind } => list(config, issue, kind).await,
    }
}

async fn ingest(config: &Path, paths: &[PathBuf]) -> Result<Output, Failure> {
    let cfg = setup::config(config).await?;
    let signer = setup::signer(&cfg).await?;
    let stdin = paths.is_empty() || paths.iter().any(|p| p.as_os_str() == "-");
    let files: Vec<PathBuf> = paths.iter().filter(|p| p.as_os_str() != "-").cloned().collect();
    // Every path is found before anything is read: a wrong one changes nothing.
    let places = mailbox::places(&files).await?;
    let store = setup::store(&cfg).await?;
    let ingest = Ingest { store: &store, signer: &signer, settings: &cfg.bounces };
    let now = SystemClock.now();
    let mut read: Vec<(String, Ingested)> = Vec::new();
    if stdin {
        let mut bytes = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut bytes)
            .await
            .map_err(|e| Failure::usage(format!("cannot read the message on stdin: {e}")))?;
        // What an MTA's pipe says it delivered to: the VERP address, when the headers lost it.
        let envelope = std::env::var("ORIGINAL_RECIPIENT").ok().filter(|v| !v.trim().is_empty());
        for (source, raw) in mailbox::split("-", bytes) {
            read.push((source, ingest.one(&raw, envelope.as_deref(), now).await.map_err(Failure::from)?));
        }
    }
    for place in &places {
        for (source, raw) in mailbox::messages(place).await? {
            read.push((source, ingest.one(&raw, None, now).await.map_err(Failure::from)?));
        }
        mailbox::done(place).await?;
    }
    Ok(ingested(&read))
}

/// The table and the document of what was read.
fn ingested(read: &[(String, Ingested)]) -> Output {
    let views: Vec<IngestedView> = read.iter().map(|(source, i)| view(source, i)).collect();
    let applied = views.iter().filter(|v| v.applied).count();
    let rows: Vec<Vec<String>> = views
        .iter()
        .zip(read)
        .map(|(v, (_, i))| {
            vec![
                v.source.clone(),
                v.kind.to_string(),
                v.email.clone().unwrap_or_else(|| "-".into()),
                v.issue.map_or_else(|| "-".into(), |n| format!("#{n}")),
                v.status.clone().unwrap_or_else(|| "-".into()),
                result(&i.outcome),
            ]
        })
        .collect();
    let mut human = if rows.is_empty() {
        "No message to read.\n".to_owned()
    } else {
        output::table(&["SOURCE", "KIND", "EMAIL", "ISSUE", "STATUS", "RESULT"], &rows)
    };
    if !rows.is_empty() {
        human.push_str(&format!("{} read, {applied} applied.\n", plural(rows.len(), "message")));
    }
    Output::new(human, json!({ "messages": views }))
}

fn view(source: &str, i: &Ingested) -> IngestedView {
    IngestedView {
        source: source.to_owned(),
        kind: i.report.kind,
        email: i.email().map(str::to_owned),
        issue: i.issue(),
        status: i.report.status.clone(),
        diagnostic: i.report.diagnostic.clone(),
        applied: i.outcome.applied(),
        note: i.outcome.note().map(str::to_owned),
    }
}

/// What became of a report, in a word or two.
fn result(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Applied(Some(status)) => format!("applied: now {status}"),
        Outcome::Applied(None) => "applied".into(),
        other => format!("not applied: {}", other.note().unwrap_or_default()),
    }
}

fn plural(n: usize, word: &str) -> String {
    if n == 1 { format!("1 {word}") } else { format!("{n} {word}s") }
}

async fn list(config: &Path, issue: Option<u32>, kind: Option<BounceKind>) -> Result<Output, Failure> {
    let cfg = setup::config(config).await?;
    let store = setup::store(&cfg).await?;
    let bounces = store.bounces(issue, kind).await.map_err(Failure::from)?;
    let tz = cfg.publication.timezone;
    let rows: Vec<Vec<String>> = bounces
        .iter()
        .map(|b| {
            vec![
                b.at.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string(),
                b.email.clone(),
                b.issue.map_or_else(|| "-".into(), |n| format!("#{n}")),
                b.kind.to_string(),
                b.status.clone().unwrap_or_else(|| "-".into()),
                b.diagnostic.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let human = if rows.is_empty() {
        "No bounce or complaint recorded.\n".to_owned()
    } else {
        output::table(&["AT", "EMAIL", "ISSUE", "KIND", "STATUS", "DIAGNOSTIC"], &rows)
    };
    Ok(Output::new(human, json!({ "bounces": bounces.iter().map(BounceView::from).collect::<Vec<_>>() })))
}
