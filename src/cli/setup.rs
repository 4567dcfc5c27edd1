//! The steps every publication command starts with: the config, the secret, the templates, and
//! the store and transport opened as `crate::setup` opens them, failing the way a command fails.

use std::path::Path;

use chrono::{DateTime, Utc};

use super::Failure;
use crate::{
    clock::{self, Clock, FixedClock, SystemClock},
    config::{Config, Edition, Environment, LinkSecret},
    deliver::Transport,
    issue,
    publication::{Draft, Publication},
    store::Store,
    tokens::Signer,
};

pub async fn config(file: &Path) -> Result<Config, Failure> {
    Ok(Config::load(file, &Environment::from_process()).await?)
}

pub async fn publication(file: &Path) -> Result<Publication, Failure> {
    let config = config(file).await?;
    let secret = secret(&config).await?;
    Ok(Publication::open(config, secret).await?)
}

async fn secret(config: &Config) -> Result<LinkSecret, Failure> {
    let (secret, _) = LinkSecret::load(std::env::var("GAZETTE_SECRET").ok(), config.folder())
        .await
        .map_err(|e| Failure::usage(format!("cannot load the link secret: {e}")).field("GAZETTE_SECRET"))?;
    Ok(secret)
}

/// What checks the publication's tokens, without its templates: for commands that sign or read
/// tokens and render nothing.
pub async fn signer(config: &Config) -> Result<Signer, Failure> {
    Ok(Signer::new(secret(config).await?))
}

/// The publication's store.
pub async fn store(config: &Config) -> Result<Store, Failure> {
    Ok(crate::setup::open_store(config).await?)
}

/// The publication's transport, checked as far as opening it goes (the DKIM key read).
pub async fn transport(config: &Config) -> Result<Transport, Failure> {
    Ok(crate::setup::transport(config).await?)
}

/// "Now", or the `--as-of` time standing in for it.
pub fn now(as_of: Option<&str>, publication: &Publication) -> Result<DateTime<Utc>, Failure> {
    match as_of {
        Some(s) => {
            let t = clock::parse_as_of(s, publication.config.publication.timezone)
                .map_err(|e| Failure::usage(e.to_string()).field("--as-of"))?;
            Ok(FixedClock(t).now())
        }
        None => Ok(SystemClock.now()),
    }
}

/// The edition `--edition` names (case aside), or the default one without it; `None` without
/// `[[edition]]`. A name that is not one of them is bad usage (exit 2) naming those offered.
pub fn edition<'a>(config: &'a Config, typed: Option<&str>) -> Result<Option<&'a Edition>, Failure> {
    let Some(typed) = typed else { return Ok(config.default_edition()) };
    if let Some(e) = config.edition(typed) {
        return Ok(Some(e));
    }
    let why = if config.editions.is_empty() {
        format!("--edition {typed}: gazette.toml has no [[edition]]; leave --edition out")
    } else {
        let offered: Vec<String> = config.editions.iter().map(|e| e.name.to_string()).collect();
        format!("--edition {typed}: no such edition; gazette.toml offers {}", offered.join(", "))
    };
    Err(Failure::usage(why).field("--edition"))
}

/// The next issue of `edition` as `send` would choose it: against the store's history (what
/// earlier issues carried, when undated articles were first seen), without recording anything.
pub async fn draft(
    publication: &Publication,
    store: &Store,
    edition: Option<&Edition>,
    now: DateTime<Utc>,
) -> Result<Draft, Failure> {
    let (articles, warnings) = publication.read_articles().await?;
    let history = issue::history(store, edition, &articles, now, false).await.map_err(Failure::from)?;
    Ok(publication.select(edition, articles, warnings, now, &history))
}
