//! `gazette subscribers …` and `gazette lists`: the subscriber store by hand, under the rules
//! `subscribers` keeps for every way in.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Failure, Output, output, setup};
use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    csv_import,
    domain::{EmailAddress, ListName, SubscriberStatus},
    store::{Store, SubscriberRecord},
    subscribers::{self, Addition, Import, SubscriberError, Via},
    views::{LeftView, SubscriberView},
};

#[derive(Debug, clap::Subcommand)]
pub enum SubscribersCommand {
    /// Import a CSV (email, name, lists, any other column an attribute).
    Import {
        file: PathBuf,
        /// Add every imported address to this list too.
        #[arg(long)]
        list: Option<String>,
        /// Import nothing if any row is bad.
        #[arg(long)]
        strict: bool,
    },
    /// Add (or update) one subscriber, active.
    Add {
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Put them on this list (repeatable); without it, on the lists a reader may join
        /// (those of [publication] lists that no file keeps).
        #[arg(long = "list")]
        lists: Vec<String>,
    },
    /// Unsubscribe one address; `--forget` also erases the personal data.
    Remove {
        email: String,
        #[arg(long)]
        forget: bool,
    },
    /// The subscribers, optionally of one list or status.
    List {
        #[arg(long)]
        list: Option<String>,
        #[arg(long)]
        status: Option<String>,
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// Every subscriber as CSV.
    Export,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    Table,
    Csv,
    Json,
}

async fn store(config: &Path) -> Result<Store, Failure> {
    setup::store(&setup::config(config).await?).await
}

fn list_name(s: &str, flag: &str) -> Result<ListName, Failure> {
    s.parse().map_err(|e| Failure::usage(format!("{flag}: {e}")).field(flag))
}

fn email(s: &str) -> Result<EmailAddress, Failure> {
    s.parse().map_err(|e| Failure::usage(format!("EMAIL: {e}")).field("EMAIL"))
}

/// A refusal of the subscriber rules, as a command says it: a list that its file keeps is
/// refused naming the config that gives it the file.
fn refusal(config: &Config) -> impl Fn(SubscriberError) -> Failure + '_ {
    move |e| match e {
        SubscriberError::FileKept(_) => Failure::from(e).file(config.file.clone()),
        e => e.into(),
    }
}

pub async fn run(config: &Path, command: SubscribersCommand, json_out: bool) -> Result<Output, Failure> {
    let now = SystemClock.now();
    match command {
        SubscribersCommand::Import { file, list, strict } => {
            let cfg = setup::config(config).await?;
            let list = list.as_deref().map(|l| list_name(l, "--list")).transpose()?;
            // The file is read and its header judged before the store is opened.
            let import = Import::read(&cfg, &file, list, strict).await.map_err(refusal(&cfg))?;
            let store = setup::store(&cfg).await?;
            let done = import.into_store(&store, now).await.map_err(refusal(&cfg))?;
            let mut warnings: Vec<String> =
                done.rejected.iter().map(|r| format!("{}:{}: {}", file.display(), r.line, r.reason)).collect();
            if done.unlisted > 0 {
                warnings.push(unlisted_warning(&cfg, done.unlisted, &file));
            }
            let counts = done.counts;
            let human = format!(
                "{} imported, {} updated, {} unchanged, {} left as they are (unsubscribed, bounced or complained), {} rejected\n",
                counts.imported,
                counts.updated,
                counts.unchanged,
                counts.refused,
                done.rejected.len()
            );
            let mut out = Output::new(
                human,
                json!({
                    "imported": counts.imported,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged + counts.refused,
                    "refused": counts.refused,
                    "rejected": done.rejected,
                    "unlisted": done.unlisted,
                    "warnings": warnings,
                }),
            );
            out.warnings = warnings;
            Ok(out)
        }
        SubscribersCommand::Add { email, name, lists } => {
            let cfg = setup::config(config).await?;
            // No --list: the lists a reader may join, as the admin API does.
            let lists = (!lists.is_empty()).then_some(lists);
            let addition = Addition::parse(&email, name.as_deref(), lists, []).map_err(refusal(&cfg))?;
            // A list its file keeps is refused before the store is opened.
            subscribers::refuse_file_kept(&cfg, addition.lists.as_deref().unwrap_or_default())
                .map_err(SubscriberError::from)
                .map_err(refusal(&cfg))?;
            let store = setup::store(&cfg).await?;
            let address = addition.email.clone();
            let added = subscribers::add(&cfg, &store, addition, Via::CommandLine, now).await.map_err(refusal(&cfg))?;
            let out = Output::new(
                format!("{address} is active\n"),
                json!({ "subscriber": SubscriberView::new(&added.record, &cfg), "created": added.created }),
            );
            Ok(if added.record.lists.is_empty() {
                out.warn(format!(
                    "{address} is on no list, so no issue reaches it; add it with --list {}",
                    list_hint(&cfg)
                ))
            } else {
                out
            })
        }
        SubscribersCommand::Remove { email: e, forget } => {
            let address = email(&e)?;
            let store = store(config).await?;
            let left = if forget {
                subscribers::forget(&store, &address, Via::CommandLine, now).await
            } else {
                subscribers::unsubscribe(&store, &address, Via::CommandLine, now).await
            }
            .map_err(Failure::from)?;
            let what = if forget { "unsubscribed and forgotten" } else { "unsubscribed" };
            let human = match (left.known, left.changed, left.status) {
                (true, true, _) => format!("{address} {what}\n"),
                // Unsubscribing keeps a bounce or a complaint, which says more.
                (true, false, Some(status @ (SubscriberStatus::Bounced | SubscriberStatus::Complained))) => {
                    format!("{address} is {status}, and stays so: no issue goes to it\n")
                }
                _ => format!("{address} was not subscribed (or already {what})\n"),
            };
            Ok(Output::new(human, json!(LeftView::from(&left))))
        }
        SubscribersCommand::List { list, status, format } => {
            let list = list.as_deref().map(|l| list_name(l, "--list")).transpose()?;
            let status = status
                .as_deref()
                .map(|s| {
                    s.parse::<SubscriberStatus>()
                        .map_err(|e| Failure::usage(format!("--status: {e}")).field("--status"))
                })
                .transpose()?;
            let cfg = setup::config(config).await?;
            let store = setup::store(&cfg).await?;
            let subs = store.subscribers(list.as_ref(), status).await.map_err(Failure::from)?;
            let format = if json_out { ListFormat::Json } else { format };
            Ok(render(&subs, format, &cfg))
        }
        SubscribersCommand::Export => {
            let cfg = setup::config(config).await?;
            let store = setup::store(&cfg).await?;
            let subs = store.subscribers(None, None).await.map_err(Failure::from)?;
            Ok(render(&subs, if json_out { ListFormat::Json } else { ListFormat::Csv }, &cfg))
        }
    }
}

/// Says that `n` imported rows went on no list, and what to do about it.
fn unlisted_warning(config: &Config, n: u64, file: &Path) -> String {
    let rows = if n == 1 { "1 row" } else { &format!("{n} rows") };
    let kept = config.file_kept_lists();
    if subscribers::all_lists_kept_by_files(config) {
        let files: Vec<String> = kept.iter().map(|k| format!("{} ({})", k.list, k.file.display())).collect();
        format!(
            "{rows} of {} named no list and went on none, so no issue reaches them: every list this publication sends to is kept by its file ({}); add them to that file, or add a [[list]] without a file and import with --list",
            file.display(),
            files.join(", ")
        )
    } else {
        format!(
            "{rows} of {} named no list and went on none, so no issue reaches them; import with --list {} (or give them a `lists` column)",
            file.display(),
            list_hint(config)
        )
    }
}

/// A list to suggest for `--list`: the publication's first open list.
fn list_hint(config: &Config) -> String {
    subscribers::joinable(config).first().map_or_else(|| "NAME".to_owned(), ToString::to_string)
}

fn render(subs: &[SubscriberRecord], format: ListFormat, config: &Config) -> Output {
    let json = json!({ "subscribers": subs.iter().map(|s| SubscriberView::new(s, config)).collect::<Vec<_>>() });
    let human = match format {
        ListFormat::Json => format!("{json:#}\n"),
        ListFormat::Csv => csv_import::export(subs),
        ListFormat::Table => {
            let rows: Vec<Vec<String>> = subs
                .iter()
                .map(|s| vec![s.email.clone(), s.status.to_string(), s.lists.join(";"), s.name.clone()])
                .collect();
            output::table(&["EMAIL", "STATUS", "LISTS", "NAME"], &rows)
        }
    };
    Output::new(human, json)
}

pub async fn lists(config: &Path) -> Result<Output, Failure> {
    let cfg = setup::config(config).await?;
    let store = setup::store(&cfg).await?;
    let counts = store.list_counts().await.map_err(Failure::from)?;
    let rows: Vec<Vec<String>> = counts
        .iter()
        .map(|l| {
            let mut r = vec![l.name.clone()];
            r.extend(SubscriberStatus::ALL.iter().map(|s| l.counts.get(s.as_str()).copied().unwrap_or(0).to_string()));
            r
        })
        .collect();
    let mut header = vec!["LIST"];
    header.extend(SubscriberStatus::ALL.iter().map(|s| s.as_str()));
    let human = if rows.is_empty() { "No list yet.\n".into() } else { output::table(&header, &rows) };
    Ok(Output::new(human, json!({ "lists": counts })))
}
