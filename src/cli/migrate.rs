//! `gazette migrate-store`: moves a publication's subscribers, consent record, issues and ledger
//! from one store to another (SQLite to PostgreSQL, typically) without losing a row.

use std::path::Path;

use indicatif::{ProgressBar, ProgressStyle};
use secrecy::ExposeSecret;
use serde_json::json;

use super::{Failure, Output, output, setup};
use crate::store::Store;

/// A database URL fit to print: the password, if any, is replaced.
fn shown(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            // Setting a password fails only for URLs that cannot have one, and this one has one.
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

pub async fn run(config_file: &Path, from: Option<&str>, to: &str) -> Result<Output, Failure> {
    let from = match from {
        Some(f) => f.to_owned(),
        None => setup::config(config_file).await?.storage.database_url.expose_secret().to_owned(),
    };
    if from == to {
        return Err(Failure::usage("--from and --to name the same database").field("--to"));
    }
    let source = Store::open(&from).await.map_err(|e| Failure::from(e).field("--from"))?;
    let dest = Store::open(to).await.map_err(|e| Failure::from(e).field("--to"))?;
    let bar = if output::colours() { ProgressBar::new_spinner() } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} {msg}").unwrap_or_else(|_| ProgressStyle::default_spinner()));
    let report = source
        .copy_into(&dest, |table, rows| {
            bar.set_message(format!("{table}: {rows} rows"));
            bar.tick();
        })
        .await
        .map_err(|e| Failure::from(e).field("--to"))?;
    bar.finish_and_clear();
    let rows: Vec<Vec<String>> = report.tables.iter().map(|(t, n)| vec![t.clone(), n.to_string()]).collect();
    let human = format!(
        "Copied {} rows from {} to {}.\n{}\nPoint [storage] database_url (or $DATABASE_URL) at the new database, \
         then start the daemon and workers there; the old store is left as it was.",
        report.total(),
        shown(&from),
        shown(to),
        output::table(&["table", "rows"], &rows)
    );
    let json = json!({
        "from": shown(&from),
        "to": shown(to),
        "tables": report.tables.iter().map(|(t, n)| (t.clone(), json!(n))).collect::<serde_json::Map<_, _>>(),
        "rows": report.total(),
    });
    Ok(Output::new(human, json))
}

#[cfg(test)]
mod tests {
    use super::shown;

    #[test]
    fn passwords_are_never_printed() {
        assert_eq!(
            shown("postgres://gazette:s3cret@db.example:5432/news"),
            "postgres://gazette:***@db.example:5432/news"
        );
        assert_eq!(shown("sqlite://gazette.db"), "sqlite://gazette.db");
    }
}
