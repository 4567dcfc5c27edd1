//! `gazette preview`: the next issue exactly as one subscriber would receive it, as HTML, as
//! text or as the whole MIME message. Records and sends nothing.

use std::{collections::BTreeMap, path::Path};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{Failure, Output, setup};
use crate::{
    compose::{GMAIL_CLIP_BYTES, message},
    config::{Config, Edition, Topic},
    domain::{Article, EmailAddress, SubscriberStatus},
    issue,
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

/// What `gazette preview` was asked for.
pub struct Options<'a> {
    pub as_of: Option<&'a str>,
    pub subscriber: Option<&'a str>,
    /// `--edition`: this edition's next issue, whatever the subscriber chose.
    pub edition: Option<&'a str>,
    pub format: Format,
    pub out: Option<&'a Path>,
}

pub async fn run(config: &Path, o: Options<'_>) -> Result<Output, Failure> {
    let Options { as_of, subscriber, edition, format, out } = o;
    let publication = setup::publication(config).await?;
    let asked = edition.map(|e| setup::edition(&publication.config, Some(e))).transpose()?.flatten();
    let now = setup::now(as_of, &publication)?;
    let email: Option<EmailAddress> = subscriber
        .map(|s| s.parse().map_err(|e| Failure::usage(format!("--subscriber: {e}")).field("--subscriber")))
        .transpose()?;
    let store = setup::store(&publication.config).await?;
    let Reader { email, name, attributes, choices, mut warnings } = reader(&publication, &store, email, now).await?;
    let edition = match asked {
        Some(e) => Some(e),
        None => chosen_edition(&publication.config, choices.edition.as_deref(), &email, &mut warnings),
    };
    let topics = chosen_topics(&publication.config, &choices.topics);

    let mut draft = setup::draft(&publication, &store, edition, now).await?;
    let before = draft.selected.articles.len();
    // A stored reader's copy is chosen by the rule the send uses (their topics, what came since
    // their last copy, less what they received in any edition); a reader only a list file names
    // yet gets the articles of their topics.
    match (choices.id, issue::variant_plan(&publication, &draft, now)) {
        (Some(id), Some(plan)) => {
            let copy = store.copy_of(&plan, id).await.map_err(Failure::from)?;
            let mut all: Vec<Option<Article>> = std::mem::take(&mut draft.selected.articles)
                .into_iter()
                .chain(std::mem::take(&mut draft.beyond).into_iter().map(|(_, a)| a))
                .map(Some)
                .collect();
            draft.selected.articles = copy.into_iter().filter_map(|i| all.get_mut(i).and_then(Option::take)).collect();
        }
        _ => draft.selected.articles = of_topics(std::mem::take(&mut draft.selected.articles), &topics),
    }
    if before > 0 && draft.selected.articles.is_empty() {
        warnings.push(format!(
            "nothing new in {email}'s topics: the next issue would skip them (their delivery recorded as skipped)"
        ));
    }
    let prepared = publication.prepare(&draft)?;
    let shown_edition = draft.edition.as_ref().map(|e| e.name.key());
    let recipient =
        publication.recipient_with(email, &name, attributes, shown_edition.as_deref(), &choices.topics, now);
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

    if draft.selected.articles.is_empty() && topics.is_empty() {
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
        "edition": edition.map(|e| e.name.to_string()),
        "topics": topics.iter().map(|t| t.name.to_string()).collect::<Vec<_>>(),
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
    now: DateTime<Utc>,
) -> Result<Reader, Failure> {
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
            if let Some(until) = record.paused_until.filter(|u| *u > now) {
                let tz = publication.config.publication.timezone;
                warnings.push(format!(
                    "{email} paused their issues until {}: the next issue does not go to them before then",
                    until.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z")
                ));
            }
            let name = row.as_ref().and_then(|r| r.name.as_ref()).map_or(record.name, |n| n.as_str().to_owned());
            let mut attributes = record.attributes;
            attributes.extend(row.map(|r| r.attributes).unwrap_or_default());
            let choices = Choices { id: Some(record.id), edition: record.edition, topics: record.topics };
            Reader { email, name, attributes, choices, warnings }
        }
        (None, Some(row)) => Reader {
            email: row.email,
            name: row.name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
            attributes: row.attributes,
            choices: Choices::default(),
            warnings,
        },
        (None, None) => {
            if let Some(w) = &wanted {
                warnings.push(format!(
                    "{w} is not a subscriber (not in the store nor in a list file): this is a stranger's copy"
                ));
            }
            let email = wanted.unwrap_or_else(|| "reader@example.org".parse().expect("a literal address parses"));
            Reader { email, name: String::new(), attributes: BTreeMap::new(), choices: Choices::default(), warnings }
        }
    })
}

/// The reader a copy is previewed for.
struct Reader {
    email: EmailAddress,
    name: String,
    attributes: BTreeMap<String, String>,
    choices: Choices,
    warnings: Vec<String>,
}

/// A reader's preferences as the store keeps them: keys, none = the defaults.
#[derive(Debug, Default)]
struct Choices {
    /// Their row in the store: what they received is left out of their copy.
    id: Option<i64>,
    edition: Option<String>,
    topics: Vec<String>,
}

/// The edition a reader's stored key names, else the default one. A key no edition has any more
/// (the config changed since) falls back to the default, and the preview says so.
fn chosen_edition<'a>(
    config: &'a Config,
    key: Option<&str>,
    email: &EmailAddress,
    warnings: &mut Vec<String>,
) -> Option<&'a Edition> {
    match key.map(|k| (k, config.edition(k))) {
        Some((_, Some(e))) => Some(e),
        Some((k, None)) => {
            warnings.push(format!(
                "{email} chose the edition `{k}`, which gazette.toml no longer has: shown as the default edition"
            ));
            config.default_edition()
        }
        None => config.default_edition(),
    }
}

/// The topics a reader's stored keys name; keys no topic has any more are passed over, and none
/// left means every topic.
fn chosen_topics<'a>(config: &'a Config, keys: &[String]) -> Vec<&'a Topic> {
    keys.iter().filter_map(|k| config.topic(k)).collect()
}

/// The articles of any of `topics`, in their order; every article when `topics` is empty.
fn of_topics(articles: Vec<Article>, topics: &[&Topic]) -> Vec<Article> {
    if topics.is_empty() {
        return articles;
    }
    articles.into_iter().filter(|a| topics.iter().any(|t| t.covers(a))).collect()
}
