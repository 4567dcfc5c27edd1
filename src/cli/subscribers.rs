//! `gazette subscribers …` and `gazette lists`: the subscriber store by hand.

use std::path::{Path, PathBuf};

use serde_json::json;

use super::{Failure, Output, output, setup};
use crate::{
    clock::{Clock, SystemClock},
    config::Config,
    csv_import,
    domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus},
    store::{ConsentEvent, NewSubscriber, Store, SubscriberRecord},
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

pub async fn run(config: &Path, command: SubscribersCommand, json_out: bool) -> Result<Output, Failure> {
    let now = SystemClock.now();
    match command {
        SubscribersCommand::Import { file, list, strict } => {
            let cfg = setup::config(config).await?;
            let list = list.as_deref().map(|l| list_name(l, "--list")).transpose()?;
            refuse_file_kept(&cfg, list.as_slice())?;
            let bytes = tokio::fs::read(&file)
                .await
                .map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())).file(&file))?;
            let source = format!("import {}", file.display());
            let rows = csv_import::RowLists::onto(list).keeping(cfg.file_kept_lists());
            let (imported, report) = csv_import::stream(bytes, rows, strict, |parts| async {
                let store = setup::store(&cfg).await?;
                store.import_stream(parts, &source, now).await.map_err(Failure::from)
            })
            .await
            .map_err(|e| Failure::usage(format!("{}: {e}", file.display())).file(&file))?;
            let rejected = report.rejected;
            let mut warnings: Vec<String> =
                rejected.iter().map(|r| format!("{}:{}: {}", file.display(), r.line, r.reason)).collect();
            if strict && !rejected.is_empty() {
                let mut f = Failure::usage(format!(
                    "{} bad rows in {}; nothing imported (--strict):\n{}",
                    rejected.len(),
                    file.display(),
                    warnings.join("\n")
                ))
                .file(&file);
                f.line = rejected.first().map(|r| r.line as usize);
                return Err(f);
            }
            let counts = imported?;
            if report.unlisted > 0 {
                warnings.push(unlisted_warning(&cfg, report.unlisted, &file));
            }
            let human = format!(
                "{} imported, {} updated, {} unchanged, {} left as they are (unsubscribed, bounced or complained), {} rejected\n",
                counts.imported,
                counts.updated,
                counts.unchanged,
                counts.refused,
                rejected.len()
            );
            let mut out = Output::new(
                human,
                json!({
                    "imported": counts.imported,
                    "updated": counts.updated,
                    "unchanged": counts.unchanged + counts.refused,
                    "refused": counts.refused,
                    "rejected": rejected,
                    "unlisted": report.unlisted,
                    "warnings": warnings,
                }),
            );
            out.warnings = warnings;
            Ok(out)
        }
        SubscribersCommand::Add { email: e, name, lists } => {
            let cfg = setup::config(config).await?;
            let row = NewSubscriber {
                email: email(&e)?,
                name: name
                    .map(|n| SubscriberName::parse(&n))
                    .transpose()
                    .map_err(|e| Failure::usage(format!("--name {e}")).field("--name"))?
                    .flatten(),
                lists: lists.iter().map(|l| list_name(l, "--list")).collect::<Result<_, _>>()?,
                attributes: Default::default(),
            };
            refuse_file_kept(&cfg, &row.lists)?;
            let store = setup::store(&cfg).await?;
            let counts = store.import(std::slice::from_ref(&row), "add", now).await.map_err(Failure::from)?;
            if counts.refused > 0 {
                return Err(Failure::usage(format!(
                    "{} unsubscribed, bounced or complained earlier; gazette will not add it back (they can sign up again themselves)",
                    row.email
                )));
            }
            let record = store.subscriber(&row.email).await.map_err(Failure::from)?;
            let out = Output::new(format!("{} is active\n", row.email), json!({ "subscriber": record }));
            Ok(match record.filter(|r| r.lists.is_empty()) {
                Some(_) => out.warn(format!(
                    "{} is on no list, so no issue reaches it; add it with --list {}",
                    row.email,
                    list_hint(&cfg)
                )),
                None => out,
            })
        }
        SubscribersCommand::Remove { email: e, forget } => {
            let address = email(&e)?;
            let store = store(config).await?;
            let known = if forget {
                store.forget(&address, "command line", now).await
            } else {
                store
                    .set_status(
                        &address,
                        SubscriberStatus::Unsubscribed,
                        ConsentEvent::Unsubscribe,
                        "command line",
                        now,
                    )
                    .await
            }
            .map_err(Failure::from)?;
            let what = if forget { "unsubscribed and forgotten" } else { "unsubscribed" };
            let human = if known {
                format!("{address} {what}\n")
            } else {
                format!("{address} was not subscribed (or already {what})\n")
            };
            Ok(Output::new(human, json!({ "email": address, "changed": known, "forgotten": forget })))
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
            let store = store(config).await?;
            let subs = store.subscribers(list.as_ref(), status).await.map_err(Failure::from)?;
            let format = if json_out { ListFormat::Json } else { format };
            Ok(render(&subs, format))
        }
        SubscribersCommand::Export => {
            let store = store(config).await?;
            let subs = store.subscribers(None, None).await.map_err(Failure::from)?;
            Ok(render(&subs, if json_out { ListFormat::Json } else { ListFormat::Csv }))
        }
    }
}

/// Refuses to add anyone to a list that a file keeps, before anything is read or written.
fn refuse_file_kept(config: &Config, lists: &[ListName]) -> Result<(), Failure> {
    config.refuse_file_kept(lists).map_err(|kept| {
        Failure::usage(format!("--list {}: {kept}", kept.list)).field("--list").file(config.file.clone())
    })
}

/// Says that `n` imported rows went on no list, and what to do about it.
fn unlisted_warning(config: &Config, n: u64, file: &Path) -> String {
    let rows = if n == 1 { "1 row" } else { &format!("{n} rows") };
    let kept = config.file_kept_lists();
    if !config.publication.lists.is_empty() && config.open_lists().is_empty() {
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
    config.open_lists().first().map_or_else(|| "NAME".to_owned(), ToString::to_string)
}

fn render(subs: &[SubscriberRecord], format: ListFormat) -> Output {
    let json = json!({ "subscribers": subs });
    let human = match format {
        ListFormat::Json => format!("{json:#}\n"),
        ListFormat::Csv => to_csv(subs),
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

fn to_csv(subs: &[SubscriberRecord]) -> String {
    let mut keys: Vec<&String> = subs.iter().flat_map(|s| s.attributes.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["email", "name", "status", "lists"];
    header.extend(keys.iter().map(|k| k.as_str()));
    let _ = w.write_record(header.iter().map(|h| csv_import::guard_cell(h).into_owned()));
    for s in subs {
        let mut rec = vec![s.email.clone(), s.name.clone(), s.status.to_string(), s.lists.join(";")];
        rec.extend(keys.iter().map(|k| s.attributes.get(*k).cloned().unwrap_or_default()));
        let _ = w.write_record(rec.iter().map(|c| csv_import::guard_cell(c).into_owned()));
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
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
