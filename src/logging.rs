//! Logging: to stderr, at the level `GAZETTE_LOG` names (`info` for the daemon's commands, `warn`
//! for the others), as text or, with `GAZETTE_LOG_FORMAT=json`, one JSON object a line.
//!
//! Libraries log what gazette must never log: lettre writes each SMTP command at `trace` (the
//! `AUTH PLAIN` line carries the password, `RCPT TO` the reader's address), html5ever and
//! selectors walk rendered mail (addresses, live tokens) at `debug`. So whatever the filter
//! asks, events from outside gazette pass only at `warn` and `error`; gazette's own code never
//! puts an address, a token or a password in an event at any level.

use std::io::IsTerminal;

use tracing::{Level, Metadata};
use tracing_subscriber::{
    EnvFilter, Layer, Registry,
    filter::{FilterExt, filter_fn},
    layer::SubscriberExt,
    util::SubscriberInitExt,
};

/// The variable that sets the level or a filter (`debug`, `gazette=trace`, `warn,gazette::web=info`).
pub const LEVEL_VAR: &str = "GAZETTE_LOG";
/// The variable that asks for JSON lines (`json`) instead of text (`text`, the default).
pub const FORMAT_VAR: &str = "GAZETTE_LOG_FORMAT";

/// How the log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    #[error("{LEVEL_VAR}={value:?} is not a level or filter ({reason}); use e.g. info, debug or gazette=debug")]
    Filter { value: String, reason: String },
    #[error("{FORMAT_VAR}={0:?} is not a log format; use text or json")]
    Format(String),
}

/// What the environment asks for, read before anything is logged.
#[derive(Debug)]
pub struct Settings {
    filter: EnvFilter,
    format: Format,
}

impl Settings {
    /// Reads `GAZETTE_LOG` (else `default_level`) and `GAZETTE_LOG_FORMAT`.
    pub fn from_env(default_level: Level) -> Result<Self, LoggingError> {
        let level = std::env::var(LEVEL_VAR).ok().filter(|v| !v.trim().is_empty());
        let format = std::env::var(FORMAT_VAR).ok().filter(|v| !v.trim().is_empty());
        Self::new(level.as_deref(), format.as_deref(), default_level)
    }

    pub fn new(level: Option<&str>, format: Option<&str>, default_level: Level) -> Result<Self, LoggingError> {
        let filter = match level {
            Some(v) => EnvFilter::builder()
                .parse(v.trim())
                .map_err(|e| LoggingError::Filter { value: v.to_owned(), reason: e.to_string() })?,
            None => EnvFilter::new(default_level.as_str().to_ascii_lowercase()),
        };
        let format = match format.map(|f| f.trim().to_ascii_lowercase()) {
            None => Format::Text,
            Some(f) if f == "text" => Format::Text,
            Some(f) if f == "json" => Format::Json,
            Some(f) => return Err(LoggingError::Format(f)),
        };
        Ok(Self { filter, format })
    }

    /// Installs the logger for the whole process.
    pub fn install(self) {
        let filter = self.filter.and(filter_fn(allowed));
        let layer: Box<dyn Layer<Registry> + Send + Sync> = match self.format {
            Format::Text => tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // Escape codes only for a person at a terminal: a journal, a pipe or a file
                // would keep them as noise (and NO_COLOR asks for none anywhere).
                .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
                .with_filter(filter)
                .boxed(),
            Format::Json => tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_writer(std::io::stderr)
                .with_filter(filter)
                .boxed(),
        };
        // A second install (a test that runs two commands in one process) keeps the first.
        let _ = tracing_subscriber::registry().with(layer).try_init();
    }
}

/// gazette's own events at any level the filter lets through; others' at `warn` and `error` only.
fn allowed(meta: &Metadata<'_>) -> bool {
    is_ours(meta.target()) || *meta.level() <= Level::WARN
}

fn is_ours(target: &str) -> bool {
    target == "gazette" || target.starts_with("gazette::")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_gazettes_own_targets_count_as_ours() {
        assert!(is_ours("gazette") && is_ours("gazette::deliver::smtp"));
        assert!(!is_ours("gazette_extra") && !is_ours("lettre::transport::smtp") && !is_ours("html5ever"));
        assert!(Level::ERROR <= Level::WARN && Level::TRACE > Level::WARN && Level::DEBUG > Level::WARN);
    }

    #[test]
    fn a_bad_filter_or_format_is_named() {
        let e = Settings::new(Some("gazette=loud"), None, Level::WARN).expect_err("bad");
        assert!(e.to_string().contains("GAZETTE_LOG"), "{e}");
        let e = Settings::new(None, Some("xml"), Level::WARN).expect_err("bad");
        assert!(e.to_string().contains("GAZETTE_LOG_FORMAT"), "{e}");
        assert_eq!(Settings::new(Some("debug"), Some("JSON"), Level::WARN).expect("ok").format, Format::Json);
    }
}
