//! The web form's way in, with double opt-in: a sign-up is a request recorded in the store, and
//! a confirmation link mailed unless the address bounced or complained, or its mailbox was sent
//! enough links today; the link's press makes the address active on the lists it may join. The
//! visitor is told the same whatever the address, so nobody learns who subscribes.

use chrono::{DateTime, Utc};

use super::{SubscriberError, Via, lists};
use crate::{
    config::Config,
    domain::{EmailAddress, ListName, SubscriberName, SubscriberStatus},
    store::{Confirmation, Store},
};

/// Confirmation emails to one mailbox in any 24 hours, whoever asks.
pub const MAX_CONFIRMATIONS_PER_DAY: u32 = 3;

/// The list a sign-up asks for, if any: one a reader may join. Refused as well when the
/// publication has no list a reader may join at all.
pub fn signup_list(config: &Config, asked: Option<&str>) -> Result<Option<ListName>, SubscriberError> {
    let joinable = lists::joinable(config);
    let list = match asked.map(str::trim) {
        None | Some("") => None,
        Some(l) => match l.parse::<ListName>() {
            Ok(list) if joinable.contains(&list) => Some(list),
            _ => return Err(SubscriberError::NoSuchList),
        },
    };
    if joinable.is_empty() {
        return Err(SubscriberError::SignupsClosed);
    }
    Ok(list)
}

/// What to do after a sign-up was recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Mail a confirmation link, greeting the reader by `name`.
    Confirm { name: Option<SubscriberName> },
    /// Mail nothing: the address bounced or complained, or its mailbox had enough links today.
    Quiet,
}

/// Records a sign-up of `email` and says whether to mail a confirmation link.
pub async fn request(
    store: &Store,
    email: &EmailAddress,
    name: Option<&SubscriberName>,
    now: DateTime<Utc>,
) -> Result<Requested, SubscriberError> {
    let found = store.request_subscription(email, name, Via::Web.source(), now).await?;
    let refused = matches!(found.before, Some(SubscriberStatus::Bounced | SubscriberStatus::Complained));
    if refused || found.recent_requests >= MAX_CONFIRMATIONS_PER_DAY {
        return Ok(Requested::Quiet);
    }
    // Only a new address is greeted by the name typed: anyone may type any name for an address
    // that is already known.
    Ok(Requested::Confirm { name: if found.before.is_none() { name.cloned() } else { None } })
}

/// Confirms the sign-up a link made at `issued` asked for: the address becomes active on the
/// list it asked for, if a reader may still join it, else on every list a reader may join. A
/// link made before the reader left cannot bring them back.
pub async fn confirm(
    config: &Config,
    store: &Store,
    email: &EmailAddress,
    asked: Option<&ListName>,
    issued: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<Confirmation, SubscriberError> {
    let joinable = lists::joinable(config);
    let lists = match asked {
        Some(l) if joinable.contains(l) => vec![l.clone()],
        _ => joinable,
    };
    Ok(store.confirm_subscription(email, &lists, issued, Via::Web.source(), now).await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        clock::{Clock, SystemClock},
        subscribers::lists::tests::config,
    };

    fn two_lists() -> Config {
        config(
            "[\"weekly\", \"daily\", \"vip\"]",
            "[[list]]\nname = \"vip\"\nfile = \"vip.csv\"\n[[list]]\nname = \"weekly\"\n[[list]]\nname = \"daily\"\n",
        )
    }

    #[test]
    fn a_sign_up_may_ask_only_for_a_list_a_reader_may_join() {
        let c = two_lists();
        assert_eq!(signup_list(&c, None).expect("none"), None);
        assert_eq!(signup_list(&c, Some(" ")).expect("none"), None);
        assert_eq!(signup_list(&c, Some("daily")).expect("daily").map(|l| l.to_string()), Some("daily".into()));
        for asked in ["vip", "nope", "not a list"] {
            assert!(matches!(signup_list(&c, Some(asked)), Err(SubscriberError::NoSuchList)), "{asked}");
        }
        let closed = config("[\"vip\"]", "[[list]]\nname = \"vip\"\nfile = \"vip.csv\"\n");
        assert!(matches!(signup_list(&closed, None), Err(SubscriberError::SignupsClosed)));
    }

    #[tokio::test]
    async fn a_confirmation_joins_what_was_asked_or_every_list_a_reader_may_join() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.expect("store");
        let c = two_lists();
        let now = SystemClock.now();
        let ann: EmailAddress = "ann@example.org".parse().expect("address");
        let bob: EmailAddress = "bob@example.org".parse().expect("address");
        let name = SubscriberName::parse("Ann").expect("name");
        assert_eq!(request(&store, &ann, name.as_ref(), now).await.expect("request"), Requested::Confirm { name });
        request(&store, &bob, None, now).await.expect("request");

        let daily: ListName = "daily".parse().expect("list");
        assert_eq!(confirm(&c, &store, &ann, Some(&daily), now, now).await.expect("confirm"), Confirmation::Confirmed);
        let vip: ListName = "vip".parse().expect("list");
        confirm(&c, &store, &bob, Some(&vip), now, now).await.expect("confirm");
        let lists = |e: &EmailAddress| {
            let store = store.clone();
            let e = e.clone();
            async move { store.subscriber(&e).await.expect("store").expect("there").lists }
        };
        assert_eq!(lists(&ann).await, ["daily"]);
        assert_eq!(lists(&bob).await, ["daily", "weekly"], "a kept list is never joined this way");

        // A known address is not greeted by a name anyone could type; after three links a day, quiet.
        let other = SubscriberName::parse("Someone Else").expect("name");
        assert_eq!(
            request(&store, &ann, other.as_ref(), now).await.expect("request"),
            Requested::Confirm { name: None }
        );
        request(&store, &ann, None, now).await.expect("the third link of the day");
        assert_eq!(request(&store, &ann, None, now).await.expect("request"), Requested::Quiet);
    }
}
