//! `gazette init DIR`: a working publication to start from, the same as the sample in the
//! repository. Never overwrites a file that is already there.

use std::path::Path;

use serde_json::json;

use super::{Failure, Output};

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

pub async fn run(dir: &Path) -> Result<Output, Failure> {
    let existing: Vec<&str> = {
        let mut v = Vec::new();
        for (name, _) in FILES {
            if tokio::fs::try_exists(dir.join(name)).await.unwrap_or(false) {
                v.push(*name);
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
    for (name, text) in FILES {
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
    let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
    let human = format!(
        "Wrote a publication into {}:\n  {}\nNext: edit gazette.toml, then `gazette --config {} preview --out digest.html`\n",
        dir.display(),
        names.join("\n  "),
        dir.join("gazette.toml").display()
    );
    Ok(Output::new(human, json!({ "dir": dir.display().to_string(), "files": names })))
}
