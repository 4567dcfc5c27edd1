//! `gazette init DIR`: a working publication to start from, the same as the sample in the
//! repository. Never overwrites a file that is already there.

use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

use super::{Failure, Output};
use crate::clock::{Clock, SystemClock};

const FILES: &[(&str, &str)] = &[
    ("gazette.toml", include_str!("../../gazette.toml")),
    ("templates/email/digest.html", include_str!("../../templates/email/digest.html")),
    ("templates/email/digest.txt", include_str!("../../templates/email/digest.txt")),
    ("templates/email/confirm.html", include_str!("../../templates/email/confirm.html")),
    ("templates/email/confirm.txt", include_str!("../../templates/email/confirm.txt")),
    ("templates/email/welcome.html", include_str!("../../templates/email/welcome.html")),
    ("templates/email/welcome.txt", include_str!("../../templates/email/welcome.txt")),
    ("articles/2024-03-11-welcome.md", include_str!("../../articles/2024-03-11-welcome.md")),
    ("articles/2024-03-13-field-notes.md", include_str!("../../articles/2024-03-13-field-notes.md")),
    ("articles/2024-03-14-reading-list.md", include_str!("../../articles/2024-03-14-reading-list.md")),
    ("articles/2024-03-15-draft-ideas.md", include_str!("../../articles/2024-03-15-draft-ideas.md")),
    ("subscribers/weekly.csv", include_str!("../../subscribers/weekly.csv")),
];

/// The day the repository's sample publication is sent as of (`--as-of 2024-03-16`): its
/// articles are dated the days before it.
const SAMPLE_DAY: NaiveDate = NaiveDate::from_ymd_opt(2024, 3, 16).expect("a valid date");

/// The sample's files as a new publication gets them: the articles moved from the days before
/// [`SAMPLE_DAY`] to the days before `today`, file names and front matter alike, so that
/// `preview` right after `init` finds them inside the default `max_age` of 7 days.
fn files_for(today: NaiveDate) -> Vec<(String, String)> {
    let days = (today - SAMPLE_DAY).num_days();
    FILES
        .iter()
        .map(|(name, text)| match name.strip_prefix("articles/") {
            Some(file) => (format!("articles/{}", moved_name(file, days)), moved_dates(text, days)),
            None if *name == "gazette.toml" => ((*name).to_owned(), text.replacen(SAMPLE_COMMENT, NEW_COMMENT, 1)),
            None => ((*name).to_owned(), (*text).to_owned()),
        })
        .collect()
}

const SAMPLE_COMMENT: &str = "# The sample publication: `gazette preview --as-of 2024-03-16` renders its issue.";
const NEW_COMMENT: &str = "# A new publication: `gazette preview` renders its next issue.";

/// `2024-03-11-welcome.md` → the same name `days` later.
fn moved_name(file: &str, days: i64) -> String {
    let moved = file
        .get(..10)
        .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)));
    match moved {
        Some(d) => format!("{}{}", d.format("%Y-%m-%d"), &file[10..]),
        None => file.to_owned(),
    }
}

/// Each `date = "…"` line of the front matter, `days` later, in the offset it was written in.
fn moved_dates(text: &str, days: i64) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let moved = line
            .strip_prefix("date = \"")
            .and_then(|rest| rest.trim_end().strip_suffix('"'))
            .and_then(|value| DateTime::parse_from_rfc3339(value).ok())
            .and_then(|d| d.checked_add_signed(chrono::Duration::days(days)));
        match moved {
            Some(d) => out.push_str(&format!("date = \"{}\"{}", d.to_rfc3339(), &line[line.trim_end().len()..])),
            None => out.push_str(line),
        }
    }
    out
}

pub async fn run(dir: &Path) -> Result<Output, Failure> {
    let today: DateTime<Utc> = SystemClock.now();
    let files = files_for(today.date_naive());
    let existing: Vec<&str> = {
        let mut v = Vec::new();
        for (name, _) in &files {
            if tokio::fs::try_exists(dir.join(name)).await.unwrap_or(false) {
                v.push(name.as_str());
            }
        }
        v
    };
    if !existing.is_empty() {
        return Err(Failure::usage(format!(
            "{} already holds {}; choose an empty folder (gazette init DIR)",
            dir.display(),
            existing.join(", ")
        ))
        .file(dir));
    }
    for (name, text) in &files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| Failure::usage(format!("cannot create {}: {e}", parent.display())).file(parent))?;
        }
        tokio::fs::write(&path, text)
            .await
            .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())).file(&path))?;
    }
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    let human = format!(
        "Wrote a publication into {}:\n  {}\nNext: edit gazette.toml, then `gazette --config {} preview --out digest.html`\n",
        dir.display(),
        names.join("\n  "),
        dir.join("gazette.toml").display()
    );
    Ok(Output::new(human, json!({ "dir": dir.display().to_string(), "files": names })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_articles_move_to_the_days_before_today() {
        let today = NaiveDate::from_ymd_opt(2031, 7, 4).expect("date");
        let files = files_for(today);
        let welcome = files.iter().find(|(n, _)| n.ends_with("-welcome.md")).expect("the welcome article");
        assert_eq!(welcome.0, "articles/2031-06-29-welcome.md");
        assert!(welcome.1.contains("date = \"2031-06-29T08:00:00-04:00\"\n"), "{}", welcome.1);
        let dated = files.iter().filter(|(n, _)| n.starts_with("articles/")).count();
        let moved = files.iter().filter(|(_, t)| t.contains("date = \"2031-")).count();
        assert_eq!((dated, moved), (4, 4), "every article is moved");
        let config = &files.iter().find(|(n, _)| n == "gazette.toml").expect("config").1;
        assert!(config.starts_with(NEW_COMMENT), "{config}");
    }
}
