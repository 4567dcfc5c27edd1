//! `gazette preview`: the next issue exactly as one subscriber would receive it, as HTML, as
//! text or as the whole MIME message. Records and sends nothing.

use std::{collections::BTreeMap, path::Path};

use serde_json::json;

use super::{Failure, Output, setup};
use crate::{
    compose::{GMAIL_CLIP_BYTES, message},
    domain::EmailAddress,
    publication::Publication,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Html,
    Text,
    Eml,
}

pub async fn run(
    config: &Path,
    as_of: Option<&str>,
    subscriber: Option<&str>,
    format: Format,
    out: Option<&Path>,
) -> Result<Output, Failure> {
    let publication = setup::publication(config).await?;
    let now = setup::now(as_of, &publication)?;
    let email: Option<EmailAddress> = subscriber
        .map(|s| s.parse().map_err(|e| Failure::usage(format!("--subscriber: {e}")).field("--subscriber")))
        .transpose()?;
    let (email, name, attributes) = reader(&publication, email).await;

    let draft = setup::draft(&publication, now).await?;
    let prepared = publication.prepare(&draft)?;
    let recipient = publication.recipient(email, &name, attributes);
    let rendered = prepared.personalize(&recipient)?;

    let body: Vec<u8> = match format {
        Format::Html => rendered.html.clone().into_bytes(),
        Format::Text => rendered.text.clone().into_bytes(),
        Format::Eml => {
            let id = publication.message_id(draft.number, &recipient.email);
            let letter = prepared.letter(&recipient)?;
            message::build(&publication.message_settings(), &recipient, letter, id, now)
                .map_err(|e| Failure::usage(e.to_string()))?
                .formatted()
        }
    };

    let mut warnings = Vec::new();
    if draft.selected.articles.is_empty() {
        warnings
            .push("the issue carries no article: `send` would skip it (selection.send_when_empty = false)".to_owned());
    }
    if rendered.html.len() > GMAIL_CLIP_BYTES {
        warnings.push(format!(
            "the HTML part is {} KB: Gmail clips messages over 102 KB; lower selection.max_items or trim the template",
            rendered.html.len() / 1024
        ));
    }
    for w in &draft.warnings {
        warnings.push(format!("optional source {} skipped: {}", w.source, w.error));
    }

    let human = match out {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                tokio::fs::create_dir_all(dir)
                    .await
                    .map_err(|e| Failure::usage(format!("cannot create {}: {e}", dir.display())).field("--out"))?;
            }
            tokio::fs::write(path, &body)
                .await
                .map_err(|e| Failure::usage(format!("cannot write {}: {e}", path.display())).field("--out"))?;
            format!(
                "Issue #{} \"{}\": {} articles for {}, written to {} ({} KB)\n",
                draft.number,
                rendered.subject,
                draft.selected.articles.len(),
                recipient.email,
                path.display(),
                body.len().div_ceil(1024)
            )
        }
        None => String::from_utf8_lossy(&body).into_owned(),
    };
    let json = json!({
        "issue": draft.number,
        "subject": rendered.subject,
        "subscriber": recipient.email,
        "articles": draft.selected.articles.len(),
        "format": format,
        "out": out.map(|p| p.display().to_string()),
        "bytes": body.len(),
        "html_bytes": rendered.html.len(),
        "content": if out.is_none() { Some(String::from_utf8_lossy(&body).into_owned()) } else { None },
    });
    let mut output = Output::new(human, json);
    output.warnings = warnings;
    Ok(output)
}

/// The reader to preview for: the given address (with the name the list files give it), else the
/// first subscriber of the first list file, else a stand-in.
async fn reader(
    publication: &Publication,
    wanted: Option<EmailAddress>,
) -> (EmailAddress, String, BTreeMap<String, String>) {
    for list in &publication.config.lists {
        let Some(file) = &list.file else { continue };
        let Ok(text) = tokio::fs::read_to_string(file).await else { continue };
        let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(text.as_bytes());
        let Ok(headers) = reader.headers().cloned() else { continue };
        for record in reader.records().flatten() {
            let mut email = None;
            let mut name = String::new();
            let mut attributes = BTreeMap::new();
            for (h, v) in headers.iter().zip(record.iter()) {
                match h.trim().to_ascii_lowercase().as_str() {
                    "email" => email = v.parse::<EmailAddress>().ok(),
                    "name" => name = v.to_owned(),
                    "lists" => {}
                    other => {
                        attributes.insert(other.to_owned(), v.to_owned());
                    }
                }
            }
            let Some(email) = email else { continue };
            if wanted.as_ref().is_none_or(|w| *w == email) {
                return (email, name, attributes);
            }
        }
    }
    let email = wanted.unwrap_or_else(|| "reader@example.org".parse().expect("a literal address parses"));
    (email, String::new(), BTreeMap::new())
}
