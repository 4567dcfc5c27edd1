//! The copies of an issue made with editions or topics: who of the edition's readers gets which
//! articles (those of their topics they have not received), readers who get the same articles
//! sharing one variant, rendered once; and what each variant carried, so that what a reader
//! received is a query. The decisions are [`assign`], a plain function; `issues.rs` runs it
//! inside the transaction that makes the issue.

use std::collections::{HashMap, HashSet};

use super::{
    Candidate, Store, StoreError, VariantPlan,
    backend::{Values, ms, with_backend},
    preferences,
};

pub(super) const INSERT_VARIANT: &str =
    "INSERT INTO issue_variants (issue_number, variant, articles) VALUES ($1, $2, $3)";
const VARIANTS: &str = "SELECT variant, articles FROM issue_variants WHERE issue_number = $1 ORDER BY variant";
/// A reader's stored topics, when their last copies were made, and what those carried.
type ReaderHistory = (Option<Option<String>>, Vec<(i64, i64)>, Vec<(i64, String)>);
/// A reader's topics as stored (`;key;key;`, NULL for every topic).
const TOPICS_OF: &str = "SELECT topics FROM subscribers WHERE id = $1";

/// What [`assign`] decided: the variants (positions among the issue's articles as it is stored,
/// in order), the articles the issue keeps (positions among the candidates), and each reader's
/// variant, `None` for a reader with nothing new.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Assignment {
    pub kept: Vec<usize>,
    pub variants: Vec<Vec<usize>>,
    pub readers: Vec<(i64, Option<usize>)>,
}

/// A reader of the edition, as the choice of their copy sees them.
pub(super) struct Reader<'a> {
    pub id: i64,
    pub topics: Option<&'a str>,
    /// When their last copy was made (ms), if within the plan's window.
    pub last: Option<i64>,
}

/// Each reader's copy: the candidates of their topics (every one when they chose none) that are
/// the edition's own or came after their last copy, less what they received; readers with the
/// same copy share a variant. The issue keeps the candidates some copy carries, in their order.
pub(super) fn assign(
    plan: &VariantPlan,
    readers: &[Reader<'_>],
    received: &HashMap<i64, HashSet<String>>,
) -> Assignment {
    let published: Vec<i64> = plan.candidates.iter().map(|c| c.published.timestamp_millis()).collect();
    let mut copies: HashMap<Vec<usize>, usize> = HashMap::new();
    let mut by_reader = Vec::with_capacity(readers.len());
    // Readers who chose the same topics and received none of the candidates share the work.
    let mut fresh: HashMap<(Option<&str>, Option<i64>), Vec<usize>> = HashMap::new();
    let mut chosen: Vec<Vec<usize>> = Vec::new();
    for reader in readers {
        let got = received.get(&reader.id);
        let copy = match got {
            None => fresh
                .entry((reader.topics, reader.last))
                .or_insert_with(|| copy_for(&plan.candidates, &published, reader, None))
                .clone(),
            Some(got) => copy_for(&plan.candidates, &published, reader, Some(got)),
        };
        if copy.is_empty() {
            by_reader.push((reader.id, None));
            continue;
        }
        let next = chosen.len();
        let variant = *copies.entry(copy.clone()).or_insert(next);
        if variant == next {
            chosen.push(copy);
        }
        by_reader.push((reader.id, Some(variant)));
    }
    let mut used = vec![false; plan.candidates.len()];
    for copy in &chosen {
        for &i in copy {
            used[i] = true;
        }
    }
    let kept: Vec<usize> = (0..used.len()).filter(|&i| used[i]).collect();
    let position: HashMap<usize, usize> = kept.iter().enumerate().map(|(at, &i)| (i, at)).collect();
    let variants = chosen.into_iter().map(|copy| copy.iter().map(|i| position[i]).collect()).collect();
    Assignment { kept, variants, readers: by_reader }
}

fn copy_for(
    candidates: &[Candidate],
    published: &[i64],
    reader: &Reader<'_>,
    received: Option<&HashSet<String>>,
) -> Vec<usize> {
    let topics = preferences::topic_keys(reader.topics);
    candidates
        .iter()
        .enumerate()
        .filter(|(i, c)| c.own || reader.last.is_some_and(|last| published[*i] > last))
        .filter(|(_, c)| topics.is_empty() || c.topics.iter().any(|t| topics.contains(t)))
        .filter(|(_, c)| received.is_none_or(|got| !c.keys.iter().any(|k| got.contains(k))))
        .map(|(i, _)| i)
        .collect()
}

impl Store {
    /// The variants of an issue: each one's positions among the issue's articles, in order.
    /// Empty for an issue made without them.
    pub async fn issue_variants(&self, number: u32) -> Result<Vec<(i64, Vec<usize>)>, StoreError> {
        let rows: Vec<(i64, String)> =
            with_backend!(self, |pool, db| sqlx::query_as(VARIANTS).bind(i64::from(number)).fetch_all(pool).await?);
        rows.into_iter()
            .map(|(v, a)| Ok((v, serde_json::from_str(&a).map_err(|e| StoreError::Corrupt(e.to_string()))?)))
            .collect()
    }

    /// The candidates of `plan` (their positions) that subscriber `id`'s copy would carry, chosen
    /// as the issue's creation chooses every reader's ([`assign`]): their topics, what came since
    /// their last copy, less what they received in any edition. Empty when nothing is new to
    /// them. What `preview --subscriber` shows.
    pub async fn copy_of(&self, plan: &VariantPlan, id: i64) -> Result<Vec<usize>, StoreError> {
        let keys: Vec<&str> = plan.candidates.iter().flat_map(|c| c.keys.iter().map(String::as_str)).collect();
        let ids = [id];
        let (topics, last, pairs): ReaderHistory = with_backend!(self, |pool, db| (
            sqlx::query_scalar(TOPICS_OF).bind(id).fetch_optional(pool).await?,
            sqlx::query_as(db::LAST_COPY).bind(ms(plan.oldest)).bind(Values(&ids)).fetch_all(pool).await?,
            sqlx::query_as(db::RECEIVED).bind(Values(&keys)).bind(Values(&ids)).fetch_all(pool).await?
        ));
        let topics = topics.flatten();
        let reader = Reader { id, topics: topics.as_deref(), last: last.first().map(|(_, at)| *at) };
        let mut received: HashMap<i64, HashSet<String>> = HashMap::new();
        for (who, identity) in pairs {
            received.entry(who).or_default().insert(identity);
        }
        let a = assign(plan, &[reader], &received);
        Ok(match a.readers.first() {
            Some((_, Some(v))) => a.variants[*v].iter().map(|&at| a.kept[at]).collect(),
            _ => Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn candidate(key: &str, topics: &[&str], day: u32, own: bool) -> Candidate {
        Candidate {
            keys: vec![key.into()],
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            published: Utc.with_ymd_and_hms(2026, 3, day, 12, 0, 0).unwrap(),
            own,
        }
    }

    fn plan() -> VariantPlan {
        VariantPlan {
            default_edition: true,
            editions: Vec::new(),
            candidates: vec![
                candidate("a", &["arts"], 9, true),
                candidate("b", &["science"], 9, true),
                candidate("c", &["arts", "science"], 3, false),
            ],
            oldest: Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap(),
        }
    }

    #[test]
    fn readers_of_the_same_topics_share_a_copy_and_one_with_nothing_new_gets_none() {
        let got: HashMap<i64, HashSet<String>> = HashMap::from([(4, HashSet::from(["b".to_owned()]))]);
        let readers = [
            Reader { id: 1, topics: Some(";arts;"), last: None },
            Reader { id: 2, topics: None, last: None },
            Reader { id: 3, topics: Some(";arts;"), last: None },
            Reader { id: 4, topics: Some(";science;"), last: None },
        ];
        let a = assign(&plan(), &readers, &got);
        assert_eq!(a.kept, [0, 1]);
        assert_eq!(a.variants, [vec![0], vec![0, 1]]);
        assert_eq!(a.readers, [(1, Some(0)), (2, Some(1)), (3, Some(0)), (4, None)]);
    }

    #[test]
    fn a_reader_whose_last_copy_is_older_catches_up_on_what_came_since() {
        let last = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap().timestamp_millis();
        let later = Utc.with_ymd_and_hms(2026, 3, 4, 9, 0, 0).unwrap().timestamp_millis();
        let readers = [
            Reader { id: 1, topics: None, last: Some(last) },
            Reader { id: 2, topics: None, last: Some(later) },
            Reader { id: 3, topics: None, last: Some(last) },
        ];
        let got = HashMap::from([(3, HashSet::from(["c".to_owned()]))]);
        let a = assign(&plan(), &readers, &got);
        assert_eq!(a.kept, [0, 1, 2]);
        assert_eq!(a.variants, [vec![0, 1, 2], vec![0, 1]]);
        assert_eq!(a.readers, [(1, Some(0)), (2, Some(1)), (3, Some(1))]);
    }
}
