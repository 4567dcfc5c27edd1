//! `/admin/lists`: each list with its subscribers by status, and whether a file keeps it; with
//! `[[edition]]` or `[[topic]]`, how many active readers chose each edition and each topic.

use axum::{extract::State, response::Response, routing::get};
use serde::Serialize;

use super::{SignedIn, page};
use crate::{
    domain::SubscriberStatus,
    web::{AppState, WebError, views},
};

pub fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/lists", get(list))
}

/// One edition or topic and how many active readers chose it.
#[derive(Serialize)]
struct ChoiceLine {
    name: String,
    readers: u64,
}

/// How readers of no choice (`None`) are shown: counted with the default edition, or on a line
/// of their own.
enum NoChoice<'a> {
    Default(&'a str),
    Line(&'a str),
}

/// The lines of `offered` (key, name) with their counts, in the file's order; then the readers of
/// keys no longer offered on a line of their own, so that every reader is somewhere.
fn choice_lines(
    offered: &[(String, String)],
    counts: &std::collections::BTreeMap<Option<String>, u64>,
    no_choice: NoChoice<'_>,
) -> Vec<ChoiceLine> {
    let of = |key: Option<String>| counts.get(&key).copied().unwrap_or(0);
    let mut lines: Vec<ChoiceLine> = offered
        .iter()
        .map(|(key, name)| {
            let folded = matches!(no_choice, NoChoice::Default(d) if d == key);
            ChoiceLine { name: name.clone(), readers: of(Some(key.clone())) + if folded { of(None) } else { 0 } }
        })
        .collect();
    if let NoChoice::Line(label) = no_choice {
        lines.push(ChoiceLine { name: label.to_owned(), readers: of(None) });
    }
    let gone: u64 = counts
        .iter()
        .filter(|(k, _)| k.as_ref().is_some_and(|k| !offered.iter().any(|(o, _)| o == k)))
        .map(|(_, n)| n)
        .sum();
    if gone > 0 {
        lines.push(ChoiceLine { name: "(no longer offered)".to_owned(), readers: gone });
    }
    lines
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn every_reader_is_on_one_line_of_editions() {
        let offered = [("daily".to_owned(), "Daily".to_owned()), ("weekly".to_owned(), "Weekly".to_owned())];
        let counts = BTreeMap::from([(None, 3), (Some("weekly".to_owned()), 2), (Some("hourly".to_owned()), 1)]);
        let lines = choice_lines(&offered, &counts, NoChoice::Default("daily"));
        let shown: Vec<(&str, u64)> = lines.iter().map(|l| (l.name.as_str(), l.readers)).collect();
        assert_eq!(shown, [("Daily", 3), ("Weekly", 2), ("(no longer offered)", 1)]);
        let lines = choice_lines(&offered[..1], &counts, NoChoice::Line("every topic"));
        let shown: Vec<(&str, u64)> = lines.iter().map(|l| (l.name.as_str(), l.readers)).collect();
        assert_eq!(shown, [("Daily", 0), ("every topic", 3), ("(no longer offered)", 3)]);
    }
}

#[derive(Serialize)]
struct ListLine {
    name: String,
    /// The counts in the order of `statuses`.
    counts: Vec<u64>,
    total: u64,
    /// The file that keeps it, if one does.
    file: Option<String>,
    /// Whether the publication sends to it.
    sent_to: bool,
}

async fn list(State(state): State<AppState>, who: SignedIn) -> Result<Response, WebError> {
    let config = &state.publication.config;
    let kept = config.file_kept_lists();
    let lines: Vec<ListLine> = state
        .store
        .list_counts()
        .await?
        .into_iter()
        .map(|l| {
            let counts: Vec<u64> =
                SubscriberStatus::ALL.iter().map(|s| l.counts.get(s.as_str()).copied().unwrap_or(0)).collect();
            ListLine {
                total: counts.iter().sum(),
                counts,
                file: kept.iter().find(|k| k.list.as_ref() == l.name).map(|k| k.file.display().to_string()),
                sent_to: config.publication.lists.iter().any(|n| n.as_ref() == l.name),
                name: l.name,
            }
        })
        .collect();
    let mut ctx = tera::Context::new();
    ctx.insert("section", "lists");
    ctx.insert("statuses", &SubscriberStatus::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>());
    ctx.insert("lists", &lines);
    if !config.editions.is_empty() || !config.topics.is_empty() {
        let counts = state.store.choice_counts().await?;
        let editions: Vec<(String, String)> =
            config.editions.iter().map(|e| (e.name.key(), e.name.to_string())).collect();
        let default = config.default_edition().map(|e| e.name.key()).unwrap_or_default();
        let topics: Vec<(String, String)> = config.topics.iter().map(|t| (t.name.key(), t.name.to_string())).collect();
        ctx.insert("editions", &choice_lines(&editions, &counts.editions, NoChoice::Default(&default)));
        ctx.insert("topics", &choice_lines(&topics, &counts.topics, NoChoice::Line("every topic (none chosen)")));
    }
    page::render(&state, &who, views::ADMIN_LISTS, ctx)
}
