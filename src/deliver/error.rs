//! Why a send failed, sorted the way the engine acts on it; why the ledger failed the engine;
//! and why a run stopped.

/// What a failure means for the delivery and for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendErrorKind {
    /// A 4xx reply: this message may succeed later.
    Temporary,
    /// The server asks to be sent less (421, 454, or an enhanced status 4.7.x): the message is
    /// fine and comes back soon, spending none of its attempts, and the sending slows down.
    Throttled,
    /// The exchange broke off (dropped connection, timeout, TLS): the message may succeed later,
    /// unless the server as a whole is gone, which the engine checks.
    Connection,
    /// 5xx to this recipient or message: do not try again.
    Permanent,
    /// This server can never take this message as it is, and gazette knew it before asking:
    /// an address that needs SMTPUTF8 the server does not offer. Final for the delivery, like
    /// `Permanent`, but the server said nothing about the address, so the reader is no bounce.
    Unsendable,
    /// The server as a whole (unreachable, login or TLS refused): counts against no reader.
    Server,
}

impl SendErrorKind {
    /// No later attempt at this message, to this server, can go otherwise.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Permanent | Self::Unsendable)
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{reply}")]
pub struct SendError {
    pub kind: SendErrorKind,
    /// The server's reply (code and text) or what went wrong, never a password.
    pub reply: String,
    /// The relay (`host:port`) that answered, when one did.
    pub relay: Option<String>,
}

impl SendError {
    /// The same failure, said by `relay`.
    pub fn via(mut self, relay: String) -> Self {
        self.relay = Some(relay);
        self
    }

    pub fn temporary(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Temporary, reply: reply.into(), relay: None }
    }
    pub fn throttled(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Throttled, reply: reply.into(), relay: None }
    }
    pub fn connection(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Connection, reply: reply.into(), relay: None }
    }
    pub fn permanent(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Permanent, reply: reply.into(), relay: None }
    }
    pub fn unsendable(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Unsendable, reply: reply.into(), relay: None }
    }
    pub fn server(reply: impl Into<String>) -> Self {
        Self { kind: SendErrorKind::Server, reply: reply.into(), relay: None }
    }
}

/// Why a run stopped before the issue was done.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    #[error(
        "the mail server failed: {0}; nothing was counted against any subscriber, run the same command again to resume"
    )]
    Server(String),
    #[error("the queue failed: {0}")]
    Queue(#[from] QueueError),
    #[error("cannot set up the transport: {0}")]
    Setup(String),
}

/// Why the delivery ledger could not do what the engine asked of it (claim, renew, record, say
/// what is due, grant sends). The engine knows no store: the ledger's own error is kept whole as
/// the cause, and the engine only stops the run on it.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct QueueError(Box<dyn std::error::Error + Send + Sync + 'static>);

impl QueueError {
    pub fn new(cause: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>) -> Self {
        Self(cause.into())
    }
}
