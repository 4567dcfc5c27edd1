//! Getting messages to readers: the transports (SMTP with lettre, or a Maildir outbox), the
//! retry policy, the rate limit, DKIM signing, and the engine that drains an issue's queue with
//! a bounded number of concurrent sends. The engine declares the queue and the letters it needs
//! as traits; it knows no SQL and no template.

mod backoff;
mod dkim;
mod engine;
mod error;
mod lanes;
mod outbox;
mod pace;
mod relays;
mod smtp;
mod transport;

pub use backoff::backoff;
pub use dkim::{DkimError, load_dkim};
pub use engine::{Engine, EngineSettings, Letters, Progress, Queue, RunSummary, Stop};
pub use error::{DeliverError, QueueError, SendError, SendErrorKind};
pub use outbox::Outbox;
pub use pace::CHUNKS_PER_SECOND;
pub use relays::{NoRelays, RelayRates, RelaySettings, Relays};
pub use smtp::{Smtp, SmtpSettings};
pub use transport::Transport;
