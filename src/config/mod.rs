//! `gazette.toml` and the environment → typed settings. Every key the manual lists
//! (docs/src/configuration.md) is here, unknown keys are refused by name, relative paths are
//! resolved against the config file's folder, and secrets are wrapped so they never print.
//! Nothing here opens a network connection.

mod choices;
mod error;
mod imap_url;
mod raw;
mod relay;
mod secret;
mod shaping;
mod timezone;
pub mod trust;

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use chrono_tz::Tz;
use secrecy::SecretString;
use url::Url;

pub use choices::{Edition, Topic};
pub use error::ConfigError;
pub use imap_url::{ImapSecurity, ImapUrl, ImapUrlError};
pub use relay::Relay;
pub use secret::{LinkSecret, SecretSource};
pub use shaping::Shaping;
pub use trust::TrustError;

use crate::domain::{Duration, EmailAddress, ListName, Rate, RateLimits, ReturnPath};

/// Where a config is looked for when neither `--config` nor `$GAZETTE_CONFIG` says.
pub const DEFAULT_FILE: &str = "gazette.toml";

/// The whole publication, parsed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from; messages name it.
    pub file: PathBuf,
    pub publication: Publication,
    pub sources: Vec<SourceSetting>,
    pub selection: Selection,
    pub schedule: Option<Schedule>,
    pub lists: Vec<ListSetting>,
    /// The folder of template overrides; `None` = the built-in defaults only.
    pub templates_dir: Option<PathBuf>,
    pub delivery: Delivery,
    /// `[[shaping]]`: caps per group of recipient domains, in the file's order.
    pub shaping: Vec<Shaping>,
    pub dkim: Option<Dkim>,
    pub storage: Storage,
    pub web: Web,
    pub bounces: Bounces,
    /// `[review]`: `None` sends each issue as it is made, as before.
    pub review: Option<Review>,
    /// `[[edition]]`: the cadences a reader may choose, in the file's order; empty = the one
    /// edition `[schedule]` and `[selection]` describe. When not empty, exactly one is `default`.
    pub editions: Vec<Edition>,
    /// `[[topic]]`: the sets of tags a reader may choose, in the file's order.
    pub topics: Vec<Topic>,
}

impl Config {
    /// The edition `typed` names, case aside.
    pub fn edition(&self, typed: &str) -> Option<&Edition> {
        self.editions.iter().find(|e| e.name.matches(typed))
    }

    /// The edition of readers who chose none; `None` without `[[edition]]`.
    pub fn default_edition(&self) -> Option<&Edition> {
        self.editions.iter().find(|e| e.default)
    }

    /// The topic `typed` names, case aside.
    pub fn topic(&self, typed: &str) -> Option<&Topic> {
        self.topics.iter().find(|t| t.name.matches(typed))
    }
}

/// `[review]`: who sees each issue before it goes out, how long before, and whether it needs
/// their word to go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// They get each draft by mail, and are told when one is held.
    pub editors: Vec<EmailAddress>,
    /// How long before its slot a draft is made.
    pub lead: Duration,
    pub approval: Approval,
}

impl Review {
    pub const DEFAULT_LEAD: Duration = Duration::from_secs(24 * 3600);
}

/// What happens at its slot to a draft nobody approved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Approval {
    /// It is held: only an editor's approval sends it.
    Required,
    /// It goes out unless an editor held it.
    Auto,
}

impl Approval {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Auto => "auto",
        }
    }
}

impl std::str::FromStr for Approval {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "required" => Ok(Self::Required),
            "auto" => Ok(Self::Auto),
            other => Err(format!("`{other}` is not an approval; write \"required\" or \"auto\"")),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Publication {
    pub name: String,
    pub from: Sender,
    pub reply_to: Option<EmailAddress>,
    pub unsubscribe_mailto: Option<EmailAddress>,
    pub base_url: Url,
    pub timezone: Tz,
    pub subject: String,
    pub lists: Vec<ListName>,
    pub postal_address: Option<String>,
}

impl Publication {
    /// The address of `path` on the publication's site (`archive/3`), under `base_url`.
    pub fn link(&self, path: &str) -> String {
        format!("{}/{}", self.base_url.as_str().trim_end_matches('/'), path)
    }
}

/// A display name and an address, as in `From:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sender {
    pub name: Option<String>,
    pub address: EmailAddress,
}

impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.name {
            Some(n) => write!(f, "{n} <{}>", self.address),
            None => write!(f, "{}", self.address),
        }
    }
}

/// A `[[source]]`. `name`, when given, is what readers see as its articles' source, in place of
/// a feed's title or, for a folder, the publication's name.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceSetting {
    Feed { location: FeedLocation, optional: bool, name: Option<String> },
    Folder { path: PathBuf, name: Option<String> },
}

#[derive(Debug, Clone, PartialEq)]
pub enum FeedLocation {
    Url(Url),
    File(PathBuf),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub max_age: Duration,
    pub max_items: usize,
    pub since_last_issue: bool,
    pub include_tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub send_when_empty: bool,
}

#[derive(Debug, Clone)]
pub struct Schedule {
    pub cron: cron::Schedule,
    /// The expression as written, for messages.
    pub expression: String,
    pub catch_up: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListSetting {
    pub name: ListName,
    pub file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Smtp,
    Outbox,
}

#[derive(Debug, Clone)]
pub struct Delivery {
    pub transport: Transport,
    pub smtp_url: Option<SecretString>,
    /// `[[relay]]`: several SMTP servers in place of `smtp_url`; empty when it is used.
    pub relays: Vec<Relay>,
    pub outbox: PathBuf,
    pub concurrency: usize,
    /// Messages at most, over every process on the store; `None` = no limit.
    pub rate: Option<Rate>,
    pub max_attempts: u32,
    pub retry_backoff: Duration,
    pub lease: Duration,
    /// How long one SMTP exchange may take before it counts as a temporary failure.
    pub timeout: Duration,
    /// How long a run goes on while every message it tries is throttled and none is accepted.
    pub throttle_timeout: Duration,
    /// Readers queued per transaction while an issue goes out (the first chunk, queued with the
    /// issue itself, is at most 2,000 of them).
    pub queue_chunk: usize,
    pub ca_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct Dkim {
    pub domain: String,
    pub selector: String,
    pub private_key_file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Storage {
    pub database_url: SecretString,
    /// Connections to a PostgreSQL server at most, for this process.
    pub pool_size: u32,
}

#[derive(Debug, Clone)]
pub struct Web {
    pub listen: SocketAddr,
    pub subscribe_rate: Rate,
    /// Mail a welcome email when a reader confirms.
    pub welcome: bool,
    /// The client is the last address of `X-Forwarded-For` (behind a reverse proxy that sets it).
    pub trust_forwarded: bool,
}

/// `[bounces]`: where bounces come back to, where the daemon reads them, and when soft ones
/// count as a bounce for good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounces {
    /// The envelope sender, made per message into `local+TOKEN@domain` (VERP); `None`: the From
    /// address is the envelope sender, as without bounce handling.
    pub return_path: Option<ReturnPath>,
    /// Soft bounces of one address within `soft_window` that make it `bounced`.
    pub soft_limit: u32,
    pub soft_window: Duration,
    /// When an issue is paused for what comes back.
    pub limits: RateLimits,
    /// A Maildir the daemon reads every `poll` (what a mail system delivers there).
    pub maildir: Option<PathBuf>,
    /// An IMAP mailbox the daemon reads every `poll`; `$GAZETTE_IMAP_URL` wins over the file.
    pub imap_url: Option<ImapUrl>,
    /// A CA certificate (PEM) trusted for the IMAP server besides the public roots.
    pub imap_ca_file: Option<PathBuf>,
    /// How often the daemon reads `maildir` and `imap_url`.
    pub poll: Duration,
}

impl Default for Bounces {
    fn default() -> Self {
        Self {
            return_path: None,
            soft_limit: 3,
            soft_window: Duration::from_secs(30 * 86_400),
            limits: RateLimits::default(),
            maildir: None,
            imap_url: None,
            imap_ca_file: None,
            poll: Duration::from_secs(60),
        }
    }
}

/// What the process environment contributes; read once in `main` so tests can pass their own.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    pub smtp_url: Option<String>,
    pub database_url: Option<String>,
    pub imap_url: Option<String>,
    /// Where a `[[relay]] url_env` is looked up.
    pub variables: Variables,
}

impl Environment {
    pub fn from_process() -> Self {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
        Self {
            smtp_url: var("GAZETTE_SMTP_URL"),
            database_url: var("DATABASE_URL"),
            imap_url: var("GAZETTE_IMAP_URL"),
            variables: Variables::process(),
        }
    }
}

/// The variables a config may name (`url_env`): the process's, read when named, or a fixed set
/// for tests. Values are secrets: `Debug` shows names only.
#[derive(Clone, Default)]
pub struct Variables {
    process: bool,
    set: std::collections::BTreeMap<String, SecretString>,
}

impl Variables {
    pub fn process() -> Self {
        Self { process: true, set: Default::default() }
    }

    /// This set with `name` holding `value`, which wins over the process's.
    pub fn with(mut self, name: &str, value: &str) -> Self {
        self.set.insert(name.to_owned(), SecretString::from(value));
        self
    }

    /// The value of `name`, when it is set and not blank.
    pub fn get(&self, name: &str) -> Option<SecretString> {
        use secrecy::ExposeSecret;
        if let Some(v) = self.set.get(name) {
            return Some(v.clone()).filter(|v| !v.expose_secret().trim().is_empty());
        }
        if !self.process {
            return None;
        }
        std::env::var(name).ok().filter(|v| !v.trim().is_empty()).map(SecretString::from)
    }
}

impl std::fmt::Debug for Variables {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Variables").field("process", &self.process).field("set", &self.set.keys()).finish()
    }
}

impl Config {
    /// Reads and parses the file; `env`'s SMTP, database and IMAP URLs win over the file's.
    pub async fn load(file: &Path, env: &Environment) -> Result<Self, ConfigError> {
        let text = tokio::fs::read_to_string(file)
            .await
            .map_err(|source| ConfigError::Read { file: file.to_owned(), source })?;
        Self::parse(&text, file, env)
    }

    /// Parses config text as if read from `file` (whose folder anchors relative paths).
    pub fn parse(text: &str, file: &Path, env: &Environment) -> Result<Self, ConfigError> {
        raw::parse(text, file, env)
    }

    /// The folder relative paths in the file are resolved against.
    pub fn folder(&self) -> &Path {
        self.file.parent().unwrap_or_else(|| Path::new("."))
    }

    /// The lists whose members a file decides (`[[list]] file`). `subscribers` holds what follows
    /// from that: nobody joins such a list any other way.
    pub fn file_kept_lists(&self) -> Vec<FileKeptList> {
        self.lists.iter().filter_map(|l| Some(FileKeptList { list: l.name.clone(), file: l.file.clone()? })).collect()
    }
}

/// A list that its file keeps, and so one that nobody can be added to but through that file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the list `{list}` is kept by its file {}, which is synced before each issue and would drop them again; add them to that file, or use a list without a file",
    file.display()
)]
pub struct FileKeptList {
    pub list: ListName,
    pub file: PathBuf,
}

#[cfg(test)]
mod tests;
