//! `gazette check`: every problem with a publication, each on its own line, before a send
//! finds it. Exit 2 if there is any.

use std::path::Path;

use serde_json::json;

use super::{Failure, Output, output, setup};
use crate::{
    clock::{Clock, SystemClock},
    compose::{GMAIL_CLIP_BYTES, TemplateSet},
    config::LinkSecret,
    issue,
    publication::{self, History, Publication},
    schedule,
    sources::{self, Fetcher, ReadOptions},
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
        if let Some(file) = &list.file
            && let Err(e) = tokio::fs::metadata(file).await
        {
            r.problems.push(format!("list {}: cannot read {}: {e}", list.name, file.display()));
        }
    }

    match issue::open_store(&config).await {
        Ok(store) => match store.list_counts().await {
            Ok(_) => r.ok.push("database".into()),
            Err(e) => r.problems.push(format!("storage.database_url: {e}")),
        },
        Err(e) => r.problems.push(format!("storage.database_url: {e}")),
    }
    match issue::transport(&config).await {
        Ok(t) => match t.check().await {
            Ok(()) => r.ok.push(t.describe()),
            Err(e) => r.problems.push(format!("delivery: {}", e.reply)),
        },
        Err(e) => r.problems.push(e.to_string()),
    }

    let mut next_runs = Vec::new();
    if let Some(s) = &config.schedule {
        let tz = config.publication.timezone;
        for slot in schedule::next_slots(&s.cron, tz, SystemClock.now(), 5) {
            next_runs.push(json!({ "local": slot.at.with_timezone(&tz).to_rfc3339(), "utc": slot.at.to_rfc3339() }));
        }
        r.ok.push(format!("schedule `{}` in {}", s.expression, tz.name()));
    }

    match TemplateSet::load(config.templates_dir.as_deref(), &config.publication.subject).await {
        Err(e) => r.problems.push(e.to_string()),
        Ok(_) => {
            r.ok.push("templates".into());
            render_sample(config, &mut r).await;
        }
    }
    Ok(finish(r, next_runs))
}

/// Renders the issue that would go out now, to catch what only a render shows.
async fn render_sample(config: crate::config::Config, r: &mut Report) {
    let secret = LinkSecret::from_bytes(vec![0; 32]);
    let publication = match Publication::open(config, secret).await {
        Ok(p) => p,
        Err(e) => return r.problems.push(e.to_string()),
    };
    let Ok(draft) = publication.draft(SystemClock.now(), &History::first()).await else {
        return; // the source problem is reported above
    };
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
    if !next_runs.is_empty() {
        human.push_str("next runs:\n");
        for n in &next_runs {
            human.push_str(&format!(
                "  {}  ({} UTC)\n",
                n["local"].as_str().unwrap_or_default(),
                n["utc"].as_str().unwrap_or_default()
            ));
        }
    }
    let json = json!({ "ok": r.ok, "problems": r.problems, "warnings": r.warnings, "next_runs": next_runs });
    let mut out = Output::new(human, json);
    out.exit_code = if r.problems.is_empty() { 0 } else { 2 };
    out
}
