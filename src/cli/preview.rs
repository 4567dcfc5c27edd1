//! `gazette preview`: the next issue exactly as one subscriber would receive it, as HTML, as
//! text or as the whole MIME message. Records and sends nothing.

use std::{collections::BTreeMap, path::Path};

use serde_json::json;

use super::{Failure, Output, setup};
use crate::{
    compose::{GMAIL_CLIP_BYTES, message},
    domain::{EmailAddress, SubscriberStatus},
    publication::Publication,
    store::Store,
    subscribers,
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
    let store = setup::store(&publication.config).await?;
    let (email, name, attributes, mut warnings) = reader(&publication, &store, email).await?;

    let draft = setup::draft(&publication, &store, now).await?;
    let prepared = publication.prepare(&draft)?;
    let recipient = publication.recipient(email, &name, attributes);
    let rendered = prepared.personalize(&recipient)?;

    let body: Vec<u8> = match format {
        Format::Html => rendered.html.clone().into_bytes(),
        Format::Text => rendered.text.clone().into_bytes(),
        Format::Eml => {
            let id =
                publication.message_id(draft.number, &recipient.email).map_err(|e| Failure::usage(e.to_string()))?;
            let letter = prepared.letter(&recipient)?;
            message::build(&publication.message_settings(), &recipient, letter, &id, now, None)
                .map_err(|e| Failure::usage(e.to_string()))?
                .formatted()
        }
    };

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

/// The reader to preview for, as the next send would address them: the stored subscriber (the
/// spelling mail goes to, their name and attributes), with what a list file says of them on top,
/// since a send syncs the list files first. Without `--subscriber`: the first row of the first
/// list file, else a stand-in. The warnings say when the copy shown is not one anybody gets.
async fn reader(
    publication: &Publication,
    store: &Store,
    wanted: Option<EmailAddress>,
) -> Result<(EmailAddress, String, BTreeMap<String, String>, Vec<String>), Failure> {
    let listed = subscribers::listed(&publication.config, wanted.as_ref()).await;
    let lookup = wanted.as_ref().or(listed.as_ref().map(|r| &r.email));
    let stored = match lookup {
        Some(email) => store.subscriber(email).await.map_err(Failure::from)?,
        None => None,
    };
    let mut warnings = Vec::new();
    let stored = match stored {
        Some(record) => match record.email.parse::<EmailAddress>() {
            Ok(email) => Some((email, record)),
            Err(e) => return Err(Failure::usage(format!("the stored address {:?} is not valid: {e}", record.email))),
        },
        None => None,
    };
    Ok(match (stored, listed) {
        (Some((email, record)), row) => {
            if record.status != SubscriberStatus::Active && row.is_none() {
                warnings.push(format!("{email} is {}: the next issue does not go to them", record.status));
            }
            let name = row.as_ref().and_then(|r| r.name.as_ref()).map_or(record.name, |n| n.as_str().to_owned());
            let mut attributes = record.attributes;
            attributes.extend(row.map(|r| r.attributes).unwrap_or_default());
            (email, name, attributes, warnings)
        }
        (None, Some(row)) => {
            (row.email, row.name.map(|n| n.as_str().to_owned()).unwrap_or_default(), row.attributes, warnings)
        }
        (None, None) => {
            if let Some(w) = &wanted {
                warnings.push(format!(
                    "{w} is not a subscriber (not in the store nor in a list file): this is a stranger's copy"
                ));
            }
            let email = wanted.unwrap_or_else(|| "reader@example.org".parse().expect("a literal address parses"));
            (email, String::new(), BTreeMap::new(), warnings)
        }
    })
}
