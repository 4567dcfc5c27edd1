//! `[[edition]]` and `[[topic]]`: the cadences and the sets of tags a reader may choose. Names are
//! checked here (each once, case aside; one default edition); what a choice does to an issue is
//! the and compose's.

use crate::domain::{Article, Duration, EditionName, TopicName};

use super::Schedule;

/// One cadence of the publication.
#[derive(Debug, Clone)]
pub struct Edition {
    pub name: EditionName,
    /// When its issues are made; `None` = only by hand (`send --edition`).
    pub schedule: Option<Schedule>,
    /// How old an article may be to be carried by this edition's issue.
    pub max_age: Duration,
    /// The edition of readers who chose none.
    pub default: bool,
}

/// A named set of tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    pub name: TopicName,
    /// Lower-cased, at least one.
    pub tags: Vec<String>,
}

impl Topic {
    /// Whether the article carries one of the topic's tags, case aside.
    pub fn covers(&self, article: &Article) -> bool {
        article.tags.iter().any(|t| self.tags.iter().any(|w| w.eq_ignore_ascii_case(t)))
    }
}

/// Why editions or topics were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChoiceError {
    #[error("`{0}` is named twice (names are compared case-insensitively)")]
    Repeated(String),
    #[error("mark one edition `default = true`: it is the edition of readers who chose none")]
    NoDefault,
    #[error("only one edition can be the default; `{0}` is marked too")]
    TwoDefaults(String),
    #[error("name at least one tag, like tags = [\"arts\", \"culture\"]")]
    NoTags,
}

/// Each name once, by its key.
pub(super) fn unique<'a>(names: impl IntoIterator<Item = &'a crate::domain::ChoiceName>) -> Result<(), ChoiceError> {
    let mut seen = std::collections::HashSet::new();
    for n in names {
        if !seen.insert(n.key()) {
            return Err(ChoiceError::Repeated(n.to_string()));
        }
    }
    Ok(())
}

/// The index of the default edition among `marked` (each edition's `default`): the one marked,
/// or the only edition when there is one.
pub(super) fn default_of(names: &[EditionName], marked: &[bool]) -> Result<Option<usize>, ChoiceError> {
    let mut chosen = None;
    for (i, m) in marked.iter().enumerate() {
        if *m {
            if chosen.is_some() {
                return Err(ChoiceError::TwoDefaults(names[i].to_string()));
            }
            chosen = Some(i);
        }
    }
    match (chosen, names.len()) {
        (Some(i), _) => Ok(Some(i)),
        (None, 0) => Ok(None),
        (None, 1) => Ok(Some(0)),
        (None, _) => Err(ChoiceError::NoDefault),
    }
}

/// A topic's tags, lower-cased and trimmed, at least one.
pub(super) fn tags(raw: &[String]) -> Result<Vec<String>, ChoiceError> {
    let tags: Vec<String> = raw.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()).collect();
    if tags.is_empty() { Err(ChoiceError::NoTags) } else { Ok(tags) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: &[&str]) -> Vec<EditionName> {
        n.iter().map(|s| s.parse().expect("name")).collect()
    }

    #[test]
    fn one_default_edition() {
        assert_eq!(default_of(&names(&[]), &[]), Ok(None));
        assert_eq!(default_of(&names(&["weekly"]), &[false]), Ok(Some(0)));
        assert_eq!(default_of(&names(&["daily", "weekly"]), &[false, true]), Ok(Some(1)));
        assert_eq!(default_of(&names(&["daily", "weekly"]), &[false, false]), Err(ChoiceError::NoDefault));
        assert_eq!(
            default_of(&names(&["daily", "weekly"]), &[true, true]),
            Err(ChoiceError::TwoDefaults("weekly".into()))
        );
    }

    #[test]
    fn names_are_unique_case_aside() {
        assert_eq!(unique(&names(&["Daily", "weekly"])), Ok(()));
        assert_eq!(unique(&names(&["Daily", "DAILY"])), Err(ChoiceError::Repeated("DAILY".into())));
    }

    #[test]
    fn tags_are_lower_cased_and_required() {
        assert_eq!(tags(&[" Arts ".into(), "".into()]), Ok(vec!["arts".to_owned()]));
        assert_eq!(tags(&[]), Err(ChoiceError::NoTags));
    }
}
