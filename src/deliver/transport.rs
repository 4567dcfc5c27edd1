//! The one way the engine sends: SMTP or the Maildir outbox, signed with DKIM where configured.

use std::sync::Arc;

use lettre::{Message, message::dkim::DkimConfig};

use super::{Outbox, SendError, Smtp};

#[derive(Clone)]
pub struct Transport {
    kind: Kind,
    dkim: Option<Arc<DkimConfig>>,
}

#[derive(Clone)]
enum Kind {
    Smtp(Smtp),
    Outbox(Outbox),
}

impl Transport {
    pub fn smtp(smtp: Smtp, dkim: Option<DkimConfig>) -> Self {
        Self { kind: Kind::Smtp(smtp), dkim: dkim.map(Arc::new) }
    }

    pub fn outbox(outbox: Outbox, dkim: Option<DkimConfig>) -> Self {
        Self { kind: Kind::Outbox(outbox), dkim: dkim.map(Arc::new) }
    }

    /// Where messages go, for people: `smtp host:port` or `outbox DIR`.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Smtp(s) => format!("SMTP server {}", s.server()),
            Kind::Outbox(o) => format!("outbox {}", o.dir().display()),
        }
    }

    /// Checks the server can be reached and logged in to, sending nothing.
    pub async fn check(&self) -> Result<(), SendError> {
        match &self.kind {
            Kind::Smtp(s) => s.check().await,
            Kind::Outbox(_) => Ok(()),
        }
    }

    /// Sends one message; the reply is the server's, for the ledger.
    pub async fn send(&self, mut message: Message, message_id: &str) -> Result<Option<String>, SendError> {
        if let Some(dkim) = &self.dkim {
            message.sign(dkim);
        }
        let bytes = message.formatted();
        match &self.kind {
            Kind::Smtp(s) => s.send(message.envelope(), &bytes).await.map(Some),
            Kind::Outbox(o) => o.deliver(message_id, &bytes).await.map(|()| None),
        }
    }
}
