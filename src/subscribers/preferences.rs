//! A reader's preferences: the edition and topics they choose, their name and a pause, as typed on
//! their page, in a CSV or through the API, checked against what `gazette.toml` offers. Names
//! match case-insensitively and are stored as keys; a name nobody offers is refused with the names
//! that are.

use chrono::{DateTime, Duration, Utc};

use super::{Field, SubscriberError, Via};
use crate::{
    config::Config,
    domain::{EmailAddress, SubscriberName},
    store::{
        Store,
        preferences::{PauseChange, PreferencesChange},
    },
};

/// The longest pause a reader may choose, in weeks.
pub const MAX_PAUSE_WEEKS: u32 = 52;

/// What a reader typed, before it is checked.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TypedPreferences {
    /// An edition's name; empty or `None` for the default edition.
    pub edition: Option<String>,
    /// Topics' names; none for every topic.
    pub topics: Vec<String>,
    /// `None` keeps the name; empty clears it.
    pub name: Option<String>,
    /// Weeks to pause for: `None` keeps the pause as it is, `Some(0)` ends it.
    pub pause_weeks: Option<u32>,
}

/// The key of the edition `typed` names; `None` (the default edition) when nothing is typed.
pub fn edition_key(config: &Config, typed: &str) -> Result<Option<String>, SubscriberError> {
    let typed = typed.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    match config.edition(typed) {
        Some(e) => Ok(Some(e.name.key())),
        None => Err(SubscriberError::UnknownChoice {
            what: "edition",
            typed: typed.to_owned(),
            offered: offered(config.editions.iter().map(|e| e.name.as_str())),
        }),
    }
}

/// The keys of the topics `typed` names, sorted and once each; empty for every topic.
pub fn topic_keys<S: AsRef<str>>(config: &Config, typed: &[S]) -> Result<Vec<String>, SubscriberError> {
    let mut keys = Vec::new();
    for t in typed.iter().map(|t| t.as_ref().trim()).filter(|t| !t.is_empty()) {
        match config.topic(t) {
            Some(topic) => keys.push(topic.name.key()),
            None => {
                return Err(SubscriberError::UnknownChoice {
                    what: "topic",
                    typed: t.to_owned(),
                    offered: offered(config.topics.iter().map(|t| t.name.as_str())),
                });
            }
        }
    }
    keys.sort_unstable();
    keys.dedup();
    Ok(keys)
}

fn offered<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() { "none are offered".to_owned() } else { format!("offered: {}", names.join(", ")) }
}

/// The change `typed` asks for, checked.
pub fn change(
    config: &Config,
    typed: &TypedPreferences,
    now: DateTime<Utc>,
) -> Result<PreferencesChange, SubscriberError> {
    let name = match &typed.name {
        None => None,
        Some(raw) => Some(
            SubscriberName::parse(raw)
                .map_err(|e| SubscriberError::Invalid { field: Field::Name, reason: e.to_string() })?
                .map(|n| n.as_str().to_owned())
                .unwrap_or_default(),
        ),
    };
    let pause = match typed.pause_weeks {
        None => PauseChange::Keep,
        Some(0) => PauseChange::Resume,
        Some(weeks) if weeks <= MAX_PAUSE_WEEKS => PauseChange::Until(now + Duration::weeks(i64::from(weeks))),
        Some(_) => {
            return Err(SubscriberError::Invalid {
                field: Field::Pause,
                reason: format!("is at most {MAX_PAUSE_WEEKS} weeks"),
            });
        }
    };
    Ok(PreferencesChange {
        edition: edition_key(config, typed.edition.as_deref().unwrap_or_default())?,
        topics: topic_keys(config, &typed.topics)?,
        name,
        pause,
    })
}

/// Changes the preferences of `email` as typed, recorded as a `preferences` consent event. False
/// when the address is no subscriber or nothing changed.
pub async fn set_preferences(
    store: &Store,
    config: &Config,
    email: &EmailAddress,
    typed: &TypedPreferences,
    via: Via,
    now: DateTime<Utc>,
) -> Result<bool, SubscriberError> {
    let change = change(config, typed, now)?;
    Ok(store.set_preferences(email, &change, via.source(), now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let toml = r#"[publication]
name = "M"
from = "m@example.org"

[[topic]]
name = "Science"
tags = ["science"]

[[topic]]
name = "Arts & Culture"
tags = ["arts"]

[[edition]]
name = "Daily"
cron = "0 0 7 * * *"
default = true

[[edition]]
name = "Weekly"
cron = "0 0 9 * * Mon"
"#;
        Config::parse(toml, std::path::Path::new("/pub/gazette.toml"), &crate::config::Environment::default())
            .expect("config")
    }

    #[test]
    fn names_match_whatever_their_case_and_unknown_ones_name_the_offered() {
        let c = config();
        assert_eq!(edition_key(&c, " weekly ").expect("known"), Some("weekly".into()));
        assert_eq!(edition_key(&c, "").expect("default"), None);
        let e = edition_key(&c, "hourly").expect_err("unknown").to_string();
        assert!(e.contains("hourly") && e.contains("Daily, Weekly"), "{e}");
        assert_eq!(
            topic_keys(&c, &["SCIENCE", "arts & culture", "science"]).expect("known"),
            ["arts & culture", "science"]
        );
        let e = topic_keys(&c, &["sport"]).expect_err("unknown").to_string();
        assert!(e.contains("sport") && e.contains("Science, Arts & Culture"), "{e}");
    }

    #[test]
    fn a_pause_is_weeks_from_now_and_a_name_is_cleaned() {
        let c = config();
        let now = DateTime::from_timestamp(1_700_000_000, 0).expect("time");
        let typed = TypedPreferences {
            edition: None,
            topics: vec![],
            name: Some("  Ann\r\nLee ".into()),
            pause_weeks: Some(2),
        };
        let change = change(&c, &typed, now).expect("valid");
        assert_eq!(change.pause, PauseChange::Until(now + Duration::weeks(2)));
        assert_eq!(change.name.as_deref(), Some("Ann Lee"));
        let too_long = TypedPreferences { pause_weeks: Some(MAX_PAUSE_WEEKS + 1), ..typed.clone() };
        assert!(super::change(&c, &too_long, now).is_err());
        let resume = TypedPreferences { pause_weeks: Some(0), name: Some(String::new()), ..typed };
        let resume = super::change(&c, &resume, now).expect("valid");
        assert_eq!((resume.pause, resume.name.as_deref()), (PauseChange::Resume, Some("")));
    }
}
