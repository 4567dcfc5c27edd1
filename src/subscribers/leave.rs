//! Leaving: an address unsubscribed (by the reader's link, a mail provider's one-click request,
//! the publisher's command or the API), or forgotten on request. An address that bounced or
//! complained keeps that status when it is unsubscribed: it says more, and it too receives no
//! issue.

use chrono::{DateTime, Utc};

use super::{SubscriberError, Via};
use crate::{
    domain::{EmailAddress, SubscriberStatus},
    store::{ConsentEvent, Store},
};

/// What leaving did to one address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Left {
    pub email: EmailAddress,
    /// The address was a subscriber (a forgotten one no longer is).
    pub known: bool,
    /// Its status or its data changed.
    pub changed: bool,
    /// Its status now; `None` for an address that is no subscriber.
    pub status: Option<SubscriberStatus>,
    pub forgotten: bool,
}

/// Unsubscribes `email`. Pressing twice is harmless: nothing changes the second time.
pub async fn unsubscribe(
    store: &Store,
    email: &EmailAddress,
    via: Via,
    now: DateTime<Utc>,
) -> Result<Left, SubscriberError> {
    let Some(current) = store.subscriber(email).await?.map(|s| s.status) else {
        return Ok(Left { email: email.clone(), known: false, changed: false, status: None, forgotten: false });
    };
    let leaving = matches!(current, SubscriberStatus::Active | SubscriberStatus::Unconfirmed);
    let changed = leaving
        && store
            .set_status(email, SubscriberStatus::Unsubscribed, ConsentEvent::Unsubscribe, via.source(), now)
            .await?;
    let status = if leaving { SubscriberStatus::Unsubscribed } else { current };
    Ok(Left { email: email.clone(), known: true, changed, status: Some(status), forgotten: false })
}

/// Unsubscribes `email` and erases its personal data: name, attributes, lists, and the address
/// itself, which the store keeps only as a digest so that it is still refused if it comes back.
pub async fn forget(
    store: &Store,
    email: &EmailAddress,
    via: Via,
    now: DateTime<Utc>,
) -> Result<Left, SubscriberError> {
    let known = store.subscriber(email).await?.is_some();
    let changed = known && store.forget(email, via.source(), now).await?;
    let status = known.then_some(SubscriberStatus::Unsubscribed);
    Ok(Left { email: email.clone(), known, changed, status, forgotten: true })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        clock::{Clock, SystemClock},
        store::NewSubscriber,
    };

    async fn store_with(statuses: &[(&str, SubscriberStatus)]) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("g.db").display())).await.expect("store");
        for (email, status) in statuses {
            let email: EmailAddress = email.parse().expect("address");
            let row = NewSubscriber {
                email: email.clone(),
                name: None,
                lists: vec![],
                attributes: Default::default(),
                edition: None,
                topics: None,
            };
            store.import(&[row], "test", SystemClock.now()).await.expect("import");
            if *status != SubscriberStatus::Active {
                store.set_status(&email, *status, ConsentEvent::Bounce, "test", SystemClock.now()).await.expect("set");
            }
        }
        (dir, store)
    }

    fn email(s: &str) -> EmailAddress {
        s.parse().expect("address")
    }

    #[tokio::test]
    async fn unsubscribing_changes_a_reader_once_and_keeps_a_bounce() {
        let (_dir, store) = store_with(&[
            ("ann@example.org", SubscriberStatus::Active),
            ("bob@example.org", SubscriberStatus::Bounced),
        ])
        .await;
        let now = SystemClock.now();
        let ann = unsubscribe(&store, &email("ann@example.org"), Via::Web, now).await.expect("left");
        assert_eq!((ann.known, ann.changed, ann.status), (true, true, Some(SubscriberStatus::Unsubscribed)));
        let again = unsubscribe(&store, &email("ANN@example.org"), Via::Api, now).await.expect("left");
        assert_eq!((again.known, again.changed), (true, false));

        let bob = unsubscribe(&store, &email("bob@example.org"), Via::CommandLine, now).await.expect("left");
        assert_eq!((bob.changed, bob.status), (false, Some(SubscriberStatus::Bounced)));
        let stored = store.subscriber(&email("bob@example.org")).await.expect("store").expect("there");
        assert_eq!(stored.status, SubscriberStatus::Bounced);

        let nobody = unsubscribe(&store, &email("nobody@example.org"), Via::Api, now).await.expect("left");
        assert_eq!((nobody.known, nobody.changed, nobody.status), (false, false, None));
    }

    #[tokio::test]
    async fn forgetting_erases_once() {
        let (_dir, store) = store_with(&[("ann@example.org", SubscriberStatus::Active)]).await;
        let now = SystemClock.now();
        let ann = forget(&store, &email("ann@example.org"), Via::CommandLine, now).await.expect("forgotten");
        assert_eq!((ann.known, ann.changed, ann.forgotten), (true, true, true));
        assert_eq!(store.subscriber(&email("ann@example.org")).await.expect("store"), None);
        let again = forget(&store, &email("ann@example.org"), Via::CommandLine, now).await.expect("forgotten");
        assert_eq!((again.known, again.changed, again.status), (false, false, None));
    }
}
