//! `gazette articles`: what the next issue would carry, and with `--all` what it leaves out.

use std::path::Path;

use serde_json::{Value, json};

use super::{Failure, Output, output, setup};
use crate::domain::Article;

pub async fn run(config: &Path, as_of: Option<&str>, all: bool, edition: Option<&str>) -> Result<Output, Failure> {
    let publication = setup::publication(config).await?;
    let edition = setup::edition(&publication.config, edition)?;
    let now = setup::now(as_of, &publication)?;
    let store = setup::store(&publication.config).await?;
    let draft = setup::draft(&publication, &store, edition, now).await?;
    let tz = publication.config.publication.timezone;
    let settings = &publication.config.selection;

    let article_json = |a: &Article| {
        json!({
            "title": a.title,
            "url": a.url.as_ref().map(|u| u.as_str()),
            "date": a.date.map(|d| d.with_timezone(&tz).to_rfc3339()),
            "author": a.author,
            "summary": a.summary,
            "tags": a.tags,
            "source": a.source,
        })
    };
    let left_out: Value = if all {
        draft
            .selected
            .left_out
            .iter()
            .map(|l| {
                json!({
                    "title": l.article.title,
                    "url": l.article.url.as_ref().map(|u| u.as_str()),
                    "reason": l.reason.describe(settings),
                    "reason_code": l.reason,
                })
            })
            .collect()
    } else {
        Value::Null
    };
    let json = json!({
        "articles": draft.selected.articles.iter().map(article_json).collect::<Vec<_>>(),
        "left_out": left_out,
    });

    let date =
        |a: &Article| a.date.map(|d| d.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string()).unwrap_or_default();
    let rows: Vec<Vec<String>> =
        draft.selected.articles.iter().map(|a| vec![date(a), a.source.clone(), a.title.clone()]).collect();
    let mut human = if rows.is_empty() {
        "No article would be carried: nothing new within max_age.\n".to_owned()
    } else {
        output::table(&["DATE", "SOURCE", "TITLE"], &rows)
    };
    if all && !draft.selected.left_out.is_empty() {
        human.push('\n');
        human.push_str(&output::bold("Left out\n"));
        let rows: Vec<Vec<String>> = draft
            .selected
            .left_out
            .iter()
            .map(|l| vec![date(&l.article), l.reason.describe(settings), l.article.title.clone()])
            .collect();
        human.push_str(&output::table(&["DATE", "WHY", "TITLE"], &rows));
    }
    let mut out = Output::new(human, json);
    for w in draft.warnings {
        out = out.warn(format!("optional source {} skipped: {}", w.source, w.error));
    }
    Ok(out)
}
