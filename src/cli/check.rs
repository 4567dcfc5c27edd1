//! `gazette check`: every problem with a publication, each on its own line, before a send
//! finds it. Exit 2 if there is any.

use std::path::Path;

use serde_json::json;

use super::{Failure, Output, output, setup};
use crate::{
    bounces::{self, imap::Imap},
    clock::{Clock, SystemClock},
    compose::{GMAIL_CLIP_BYTES, TemplateSet},
    config::{Config, LinkSecret},
    csv_import,
    daemon::Timetable,
    domain::ListName,
    issue,
    publication::{self, History, Publication},
    schedule,
    sources::{self, Fetcher, ReadOptions},
    store::Store,
    subscribers,
};

#[derive(Default)]
struct Report {
    ok: Vec<String>,
    problems: Vec<String>,
    warnings: Vec<String>,
}

pub async fn run(config_file: &Path) -> Result<Output, Failure> {
    let mut r = Report::default();
    let config = match setup::config(config_file).await {
        Ok(c) => c,
        Err(f) => {
            r.problems.push(f.message);
            return Ok(finish(r, Vec::new()));
        }
    };
    r.ok.push(format!("config {}", config.file.display()));

    let options = ReadOptions { timezone: config.publication.timezone };
    let fetcher = Fetcher::new().map_err(|e| Failure::unfinished(e.to_string()))?;
    for source in publication::source_list(&config) {
        match sources::read(&source, &fetcher, &options).await {
            Ok(a) => r.ok.push(format!("source {}: {} articles", source.describe(), a.len())),
            Err(e) if source.optional() => r.warnings.push(format!("optional source {}: {e}", source.describe())),
            Err(e) => r.problems.push(e.to_string()),
        }
    }
    if config.sources.is_empty() {
        r.problems.push(format!("{}: no [[source]]: add a feed or a folder of articles", config.file.display()));
    }
    for list in &config.lists {
        if let Some(file) = &list.file {
            check_list_file(&config, &list.name, file, &mut r).await;
        }
    }

    let store = match crate::setup::open_store(&config).await {
        Ok(store) => match store.list_counts().await {
            Ok(_) => {
                r.ok.push("database".into());
                Some(store)
            }
            Err(e) => {
                r.problems.push(format!("storage.database_url: {e}"));
                None
            }
        },
        Err(e) => {
            r.problems.push(format!("storage.database_url: {e}"));
            None
        }
    };
    match crate::setup::transport(&config).await {
        Ok(t) => match t.check().await {
            Ok(()) => r.ok.push(t.describe()),
            Err(e) => r.problems.push(format!("delivery: {}", e.reply)),
        },
        Err(e) => r.problems.push(e.to_string()),
    }
    check_bounces(&config, &mut r).await;

    let mut next_runs = Vec::new();
    let tz = config.publication.timezone;
    let timetables = Timetable::all(&config);
    for t in &timetables {
        let s = t.schedule;
        for slot in schedule::next_slots(&s.cron, tz, SystemClock.now(), 5) {
            let mut run = json!({ "local": slot.at.with_timezone(&tz).to_rfc3339(), "utc": slot.at.to_rfc3339() });
            if let Some(e) = t.edition {
                run["edition"] = json!(e.name.to_string());
            }
            next_runs.push(run);
        }
        match t.edition {
            Some(e) => r.ok.push(format!(
                "edition {}: schedule `{}` in {}, max_age {}",
                e.name,
                s.expression,
                tz.name(),
                e.max_age
            )),
            None => r.ok.push(format!("schedule `{}` in {}", s.expression, tz.name())),
        }
    }
    for e in config.editions.iter().filter(|e| e.schedule.is_none()) {
        r.ok.push(format!(
            "edition {}: no cron, made only by `gazette send --edition {}`, max_age {}",
            e.name, e.name, e.max_age
        ));
    }
    if let Some(rv) = &config.review {
        r.ok.push(format!(
            "review: {} editor(s), drafts {} before each slot, approval {}",
            rv.editors.len(),
            rv.lead,
            rv.approval.as_str()
        ));
        if timetables.is_empty() {
            r.warnings.push("[review] without [schedule]: drafts are made only by `gazette draft`".into());
        }
    }

    match TemplateSet::load(config.templates_dir.as_deref(), &config.publication.subject).await {
        Err(e) => r.problems.push(e.to_string()),
        Ok(_) => {
            r.ok.push("templates".into());
            render_sample(config, store.as_ref(), &mut r).await;
        }
    }
    Ok(finish(r, next_runs))
}

/// The mailboxes `gazette run` reads bounces from: the Maildir there, the IMAP login and mailbox
/// accepted, as the daemon's first poll would find them.
async fn check_bounces(config: &Config, r: &mut Report) {
    let b = &config.bounces;
    if let Some(maildir) = &b.maildir {
        match bounces::mailbox::places(std::slice::from_ref(maildir)).await {
            Ok(_) => r.ok.push(format!("bounces.maildir {} (read every {})", maildir.display(), b.poll)),
            Err(e) => r.problems.push(format!("bounces.maildir: {e}")),
        }
    }
    if let Some(url) = &b.imap_url {
        let checked = match Imap::new(url.clone(), b.imap_ca_file.as_deref()).await {
            Ok(imap) => imap.check().await,
            Err(e) => Err(e),
        };
        match checked {
            Ok(()) => r.ok.push(format!("bounces.imap_url {url}: logged in (read every {})", b.poll)),
            Err(e) => r.problems.push(format!("bounces.imap_url: {e}")),
        }
    }
}

/// Reads a list file as a send's sync reads it: each bad row is a problem, by its line, since
/// the sync leaves it out.
async fn check_list_file(config: &Config, list: &ListName, file: &Path, r: &mut Report) {
    let text = match tokio::fs::read(file).await {
        Ok(t) => t,
        Err(e) => return r.problems.push(format!("list {list}: cannot read {}: {e}", file.display())),
    };
    let lists = subscribers::list_file_rows(config, list);
    let rows = match csv_import::rows(&text, &lists) {
        Ok(rows) => rows,
        Err(e) => return r.problems.push(format!("{}: {e}", file.display())),
    };
    let mut good = 0;
    for row in rows {
        match row {
            Ok(_) => good += 1,
            Err(bad) => r.problems.push(format!(
                "{}:{}: {} (list {list}: a send leaves the row out; fix or remove it)",
                file.display(),
                bad.line,
                bad.reason
            )),
        }
    }
    r.ok.push(format!("list {list}: {} ({good} rows)", file.display()));
}

/// Renders the issue that would go out now, to catch what only a render shows, and says when
/// there would be no issue at all.
async fn render_sample(config: Config, store: Option<&Store>, r: &mut Report) {
    let secret = LinkSecret::from_bytes(vec![0; 32]);
    let publication = match Publication::open(config, secret).await {
        Ok(p) => p,
        Err(e) => return r.problems.push(e.to_string()),
    };
    let now = SystemClock.now();
    let Ok((articles, warnings)) = publication.read_articles().await else {
        return; // the source problem is reported above
    };
    let history = match store {
        Some(store) => issue::history(store, publication.config.default_edition(), &articles, now, false)
            .await
            .unwrap_or_else(|_| History::first()),
        None => History::first(),
    };
    let draft = publication.select(publication.config.default_edition(), articles, warnings, now, &history);
    if let Some(reason) = publication.skip_reason(&draft) {
        r.warnings.push(format!(
            "the next issue would be skipped, not sent: {reason}, and an issue of no article is skipped while [selection] send_when_empty = false; add articles, widen max_age, or set send_when_empty = true"
        ));
    }
    let rendered = publication.prepare(&draft).and_then(|p| {
        let reader =
            publication.recipient("reader@example.org".parse().expect("literal"), "Reader", Default::default());
        Ok(p.personalize(&reader)?)
    });
    match rendered {
        Ok(m) if m.html.len() > GMAIL_CLIP_BYTES => r.warnings.push(format!(
            "the next issue's HTML is {} KB: Gmail clips messages over 102 KB; lower selection.max_items",
            m.html.len() / 1024
        )),
        Ok(_) => r.ok.push(format!("render of the next issue ({} articles)", draft.selected.articles.len())),
        Err(e) => r.problems.push(e.to_string()),
    }
}

fn finish(r: Report, next_runs: Vec<serde_json::Value>) -> Output {
    let mut human = String::new();
    for o in &r.ok {
        human.push_str(&format!("{} {o}\n", output::dim("ok     ")));
    }
    for w in &r.warnings {
        human.push_str(&format!("warning {w}\n"));
    }
    for p in &r.problems {
        human.push_str(&format!("{} {p}\n", output::bold("problem")));
    }
    let mut heading = None;
    for n in &next_runs {
        // Each edition's runs under its own heading; without editions, one `next runs:`.
        let edition = n["edition"].as_str();
        if heading != Some(edition) {
            match edition {
                Some(e) => human.push_str(&format!("next runs of the {e} edition:\n")),
                None => human.push_str("next runs:\n"),
            }
            heading = Some(edition);
        }
        human.push_str(&format!(
            "  {}  ({} UTC)\n",
            n["local"].as_str().unwrap_or_default(),
            n["utc"].as_str().unwrap_or_default()
        ));
    }
    let json = json!({ "ok": r.ok, "problems": r.problems, "warnings": r.warnings, "next_runs": next_runs });
    let mut out = Output::new(human, json);
    out.exit_code = if r.problems.is_empty() { 0 } else { 2 };
    out
}
