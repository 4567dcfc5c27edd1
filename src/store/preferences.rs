//! A reader's preferences as the store keeps them: the edition's key in `subscribers.edition`
//! (NULL = the default edition) and the topics' keys in `subscribers.topics`, sorted, each closed
//! by `;` on both sides (NULL = every topic), so that equal choices are equal strings (readers are
//! grouped by them) and one topic is found with `LIKE '%;key;%'`.

/// The `topics` column for these keys: `None` when there are none (every topic).
pub fn topics_column<S: AsRef<str>>(keys: &[S]) -> Option<String> {
    let mut keys: Vec<&str> = keys.iter().map(AsRef::as_ref).filter(|k| !k.is_empty()).collect();
    if keys.is_empty() {
        return None;
    }
    keys.sort_unstable();
    keys.dedup();
    Some(format!(";{};", keys.join(";")))
}

/// The keys a `topics` column holds, sorted; empty for every topic.
pub fn topic_keys(column: Option<&str>) -> Vec<String> {
    column.map(|c| c.split(';').filter(|k| !k.is_empty()).map(str::to_owned).collect()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_choices_are_equal_columns() {
        assert_eq!(topics_column(&["science", "arts & culture", "science"]), Some(";arts & culture;science;".into()));
        assert_eq!(topics_column(&["arts & culture", "science"]), topics_column(&["science", "arts & culture"]));
        assert_eq!(topics_column::<&str>(&[]), None);
        assert_eq!(topic_keys(Some(";arts & culture;science;")), ["arts & culture", "science"]);
        assert!(topic_keys(None).is_empty());
    }
}
