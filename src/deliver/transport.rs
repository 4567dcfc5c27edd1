//! The one way the engine sends: SMTP (one server, or several relays) or the Maildir outbox,
//! signed with DKIM where configured.

use std::sync::Arc;

use lettre::{Address, Message, message::dkim::DkimConfig};

use super::{Outbox, RelayRates, Relays, SendError, Smtp, relays::RelayMail, smtp::OpenMail};
use crate::domain::MessageId;

#[derive(Clone)]
pub struct Transport {
    kind: Kind,
    dkim: Option<Arc<DkimConfig>>,
}

#[derive(Clone)]
enum Kind {
    Smtp(Smtp),
    Relays(Relays),
    Outbox(Outbox),
}

impl Transport {
    pub fn smtp(smtp: Smtp, dkim: Option<DkimConfig>) -> Self {
        Self { kind: Kind::Smtp(smtp), dkim: dkim.map(Arc::new) }
    }

    pub fn relays(relays: Relays, dkim: Option<DkimConfig>) -> Self {
        Self { kind: Kind::Relays(relays), dkim: dkim.map(Arc::new) }
    }

    pub fn outbox(outbox: Outbox, dkim: Option<DkimConfig>) -> Self {
        Self { kind: Kind::Outbox(outbox), dkim: dkim.map(Arc::new) }
    }

    /// Where messages go, for people: the SMTP server's or relays' `host:port`, or the outbox.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Smtp(s) => format!("SMTP server {}", s.server()),
            Kind::Relays(r) => format!("SMTP relays {}", r.describe()),
            Kind::Outbox(o) => format!("outbox {}", o.dir().display()),
        }
    }

    /// Checks the server can be reached and logged in to, sending nothing; with relays, that
    /// any of them can (those that cannot are set aside).
    pub async fn check(&self) -> Result<(), SendError> {
        match &self.kind {
            Kind::Smtp(s) => s.check().await,
            Kind::Relays(r) => r.check().await,
            Kind::Outbox(_) => Ok(()),
        }
    }

    /// Sends one message; the reply is the server's, for the ledger. A relay's `rate` holds
    /// for this process alone.
    pub async fn send(&self, message: Message, message_id: &MessageId) -> Result<Option<String>, SendError> {
        self.stage(message, message_id, None).await?.hand_over().await
    }

    /// Takes a message as far as it can go without delivering it: signed and formatted, and for
    /// SMTP with its envelope accepted and its content sent, all but the final dot.
    /// [`Staged::hand_over`] delivers it; dropping it does not. With `rates`, each relay's `rate`
    /// is drawn from the bucket every process shares.
    pub async fn stage(
        &self,
        mut message: Message,
        message_id: &MessageId,
        rates: Option<&dyn RelayRates>,
    ) -> Result<Staged, SendError> {
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        let bytes = message.formatted();
        Ok(match &self.kind {
            Kind::Smtp(s) => {
                let open = s.open(message.envelope(), &bytes).await.map_err(|e| e.via(s.server()))?;
                Staged(To::Smtp(Box::new(open)), Some(s.server()))
            }
            Kind::Relays(r) => {
                let open = r.open(message.envelope(), &bytes, rates).await?;
                let server = open.server();
                Staged(To::Relay(Box::new(open)), Some(server))
            }
            Kind::Outbox(o) => {
                Staged(To::Outbox(o.clone(), message_id.clone(), message.envelope().from().cloned(), bytes), None)
            }
        })
    }
}

/// A message ready to hand over, nothing of it delivered yet, with the relay (`host:port`) it is
/// staged on; none for the outbox.
#[derive(Debug)]
pub struct Staged(To, Option<String>);

#[derive(Debug)]
enum To {
    Smtp(Box<OpenMail>),
    Relay(Box<RelayMail>),
    Outbox(Outbox, MessageId, Option<Address>, Vec<u8>),
}

impl Staged {
    /// The relay (`host:port`) the message is staged on; none for the outbox.
    pub fn relay(&self) -> Option<&str> {
        self.1.as_deref()
    }

    /// Delivers the message; the reply is the server's, for the ledger.
    pub async fn hand_over(self) -> Result<Option<String>, SendError> {
        let via = |e: SendError| match &self.1 {
            Some(relay) => e.via(relay.clone()),
            None => e,
        };
        match self.0 {
            To::Smtp(open) => open.finish().await.map(Some).map_err(via),
            To::Relay(open) => open.finish().await.map(Some).map_err(via),
            To::Outbox(o, message_id, from, bytes) => {
                o.deliver(&message_id, from.as_ref(), &bytes).await.map(|()| None)
            }
        }
    }
}
