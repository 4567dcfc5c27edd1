//! One subscriber added, or updated, by the publisher: `subscribers add` and the admin API's
//! `POST /api/subscribers`. Typed text is judged here once, field by field, so that both edges
//! clean a name, an address and a list the same way; it then works like an import of one row.

use std::{collections::BTreeMap, fmt};

use chrono::{DateTime, Utc};

use super::{SubscriberError, Via, lists};
use crate::{
    config::Config,
    domain::{EmailAddress, ListName, SubscriberName, printable_line},
    store::{NewSubscriber, Store, SubscriberRecord},
};

/// A field of an addition, which each edge names its own way (`--name`, `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Field {
    Email,
    Name,
    Lists,
    Attribute(String),
    Pause,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Email => f.write_str("email"),
            Self::Name => f.write_str("name"),
            Self::Lists => f.write_str("lists"),
            Self::Pause => f.write_str("pause"),
            Self::Attribute(key) => write!(f, "attribute `{key}`"),
        }
    }
}

/// A subscriber to add, every field checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addition {
    pub email: EmailAddress,
    /// `None`: keep the name already stored.
    pub name: Option<SubscriberName>,
    /// `None`: the lists a reader may join ([`lists::joinable`]).
    pub lists: Option<Vec<ListName>>,
    pub attributes: BTreeMap<String, String>,
    /// The edition's key (`Some(None)`: the default); `None` keeps the one stored.
    pub edition: Option<Option<String>>,
    /// The topics' keys (`Some` empty: every topic); `None` keeps those stored.
    pub topics: Option<Vec<String>>,
}

fn invalid(field: Field, reason: impl fmt::Display) -> SubscriberError {
    SubscriberError::Invalid { field, reason: reason.to_string() }
}

impl Addition {
    /// Judges what was typed: the address, a name on one printable line (empty is none), list
    /// names, attribute values on one printable line. The first bad field is the error.
    pub fn parse<L, S>(
        email: &str,
        name: Option<&str>,
        lists: Option<L>,
        attributes: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, SubscriberError>
    where
        L: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let email = email.parse().map_err(|e| invalid(Field::Email, e))?;
        let name = name.map(SubscriberName::parse).transpose().map_err(|e| invalid(Field::Name, e))?.flatten();
        let lists = lists
            .map(|l| l.into_iter().map(|l| l.as_ref().parse::<ListName>()).collect::<Result<Vec<_>, _>>())
            .transpose()
            .map_err(|e| invalid(Field::Lists, e))?;
        let attributes = attributes
            .into_iter()
            .map(|(k, v)| match printable_line(&v) {
                Ok(v) => Ok((k, v)),
                Err(e) => Err(invalid(Field::Attribute(k), e)),
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { email, name, lists, attributes, edition: None, topics: None })
    }

    /// Also sets the edition and topics named (whatever their case), checked against what
    /// `config` offers; `None` keeps what is stored.
    pub fn choosing<S: AsRef<str>>(
        mut self,
        config: &Config,
        edition: Option<&str>,
        topics: Option<&[S]>,
    ) -> Result<Self, SubscriberError> {
        if let Some(e) = edition {
            self.edition = Some(super::edition_key(config, e)?);
        }
        if let Some(t) = topics {
            self.topics = Some(super::topic_keys(config, t)?);
        }
        Ok(self)
    }
}

/// What an addition stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Added {
    /// The subscriber as stored now.
    pub record: SubscriberRecord,
    /// The address was new.
    pub created: bool,
}

/// Adds the subscriber, active, or updates the one stored (its lists are added to theirs). A
/// list a file keeps is refused before anything is written, and an address that left is not
/// brought back.
pub async fn add(
    config: &Config,
    store: &Store,
    addition: Addition,
    via: Via,
    now: DateTime<Utc>,
) -> Result<Added, SubscriberError> {
    let lists = addition.lists.unwrap_or_else(|| lists::joinable(config));
    lists::refuse_file_kept(config, &lists)?;
    let row = NewSubscriber {
        email: addition.email,
        name: addition.name,
        lists,
        attributes: addition.attributes,
        edition: addition.edition,
        topics: addition.topics,
    };
    // The store records the command line's additions as the consent record's `add` event, which
    // it tells by this source.
    let source = if via == Via::CommandLine { "add" } else { via.source() };
    let counts = store.import(std::slice::from_ref(&row), source, now).await?;
    if counts.refused > 0 {
        return Err(SubscriberError::LeftEarlier(row.email));
    }
    // Forgotten in between by another process: it is no subscriber any more.
    let record = store.subscriber(&row.email).await?.ok_or(SubscriberError::NotFound(row.email))?;
    Ok(Added { record, created: counts.imported > 0 })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::SubscriberStatus, subscribers::lists::tests::config};

    fn parse(email: &str, name: Option<&str>, lists: Option<&[&str]>) -> Result<Addition, SubscriberError> {
        Addition::parse(email, name, lists.map(|l| l.iter().copied()), [])
    }

    fn field(r: Result<Addition, SubscriberError>) -> Field {
        match r {
            Err(SubscriberError::Invalid { field, .. }) => field,
            other => panic!("not an invalid field: {other:?}"),
        }
    }

    #[test]
    fn typed_text_is_judged_field_by_field() {
        let a = parse(" Zoe@Example.ORG ", Some("Zoe\r\n  Quinn"), Some(&["readers"])).expect("valid");
        assert_eq!(a.email.as_str(), "Zoe@example.org");
        assert_eq!(a.name.as_deref(), Some("Zoe Quinn"));
        assert_eq!(a.lists, Some(vec!["readers".parse().expect("list")]));
        assert_eq!(parse("a@example.org", Some("  "), None).expect("valid").name, None);
        assert_eq!(field(parse("not an address", None, None)), Field::Email);
        assert_eq!(field(parse("a@example.org", Some("Dan\u{1b}[2J"), None)), Field::Name);
        assert_eq!(field(parse("a@example.org", Some(&"x".repeat(201)), None)), Field::Name);
        assert_eq!(field(parse("a@example.org", None, Some(&["no spaces"]))), Field::Lists);
        let attributes = [("city".to_owned(), "Os\u{202E}lo".to_owned())];
        let bad = Addition::parse("a@example.org", None, None::<[&str; 0]>, attributes);
        assert_eq!(field(bad), Field::Attribute("city".into()));
        let reason = parse("a@example.org", Some("Dan\u{1b}"), None).expect_err("control").to_string();
        assert_eq!(reason, "name holds the control character U+001B; remove it");
    }

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.expect("store");
        (dir, store)
    }

    fn now() -> DateTime<Utc> {
        crate::clock::Clock::now(&crate::clock::SystemClock)
    }

    #[tokio::test]
    async fn without_lists_a_subscriber_joins_the_joinable_ones_and_a_kept_one_is_refused() {
        let c = config(
            "[\"weekly\", \"readers\"]",
            "[[list]]\nname = \"weekly\"\nfile = \"weekly.csv\"\n[[list]]\nname = \"readers\"\n",
        );
        let (_dir, store) = store().await;
        let added = add(&c, &store, parse("ann@example.org", Some("Ann"), None).expect("valid"), Via::Api, now())
            .await
            .expect("added");
        assert!(added.created);
        assert_eq!(added.record.lists, ["readers"]);
        assert_eq!(added.record.status, SubscriberStatus::Active);

        let kept = parse("bob@example.org", None, Some(&["readers", "weekly"])).expect("valid");
        let refused = add(&c, &store, kept, Via::CommandLine, now()).await.expect_err("weekly is kept by its file");
        assert!(matches!(refused, SubscriberError::FileKept(ref k) if k.list.as_ref() == "weekly"), "{refused:?}");
        assert_eq!(store.subscriber(&"bob@example.org".parse().expect("address")).await.expect("store"), None);

        let again = add(&c, &store, parse("ANN@example.org", None, None).expect("valid"), Via::CommandLine, now())
            .await
            .expect("updated");
        assert!(!again.created);
        assert_eq!(again.record.name, "Ann", "no name given keeps the stored one");
    }

    #[tokio::test]
    async fn an_address_that_left_is_not_brought_back() {
        let c = config("[\"readers\"]", "");
        let (_dir, store) = store().await;
        let ann = || parse("ann@example.org", None, None).expect("valid");
        add(&c, &store, ann(), Via::CommandLine, now()).await.expect("added");
        super::super::unsubscribe(&store, &ann().email, Via::CommandLine, now()).await.expect("left");
        let back = add(&c, &store, ann(), Via::Api, now()).await.expect_err("refused");
        assert!(matches!(back, SubscriberError::LeftEarlier(_)), "{back:?}");
    }
}
