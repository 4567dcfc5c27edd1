//! One delivery as the queue hands it to a worker, and what became of it: the words the store
//! and the delivery engine share.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::EmailAddress;

/// A delivery this worker holds a lease on, with what it needs to send it.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub delivery_id: i64,
    pub subscriber_id: i64,
    pub email: EmailAddress,
    pub name: String,
    pub attributes: BTreeMap<String, String>,
    /// Attempts made before this one.
    pub attempts: u32,
    /// The copy of the issue it carries; `None`: the whole issue.
    pub variant: Option<i64>,
    /// The keys of the topics the reader chose; empty for every topic.
    pub topics: Vec<String>,
}

/// What became of one claimed delivery.
#[derive(Debug, Clone)]
pub enum Outcome {
    Sent {
        delivery_id: i64,
        message_id: String,
        reply: Option<String>,
    },
    /// A temporary failure: try again at `retry_at`. A throttling reply (the server asked to be
    /// sent less) spends none of the delivery's attempts: `spent` is false for it.
    Deferred {
        delivery_id: i64,
        reply: String,
        retry_at: DateTime<Utc>,
        spent: bool,
    },
    /// A permanent failure (or attempts used up); `bounce` marks the subscriber bounced.
    Failed {
        delivery_id: i64,
        reply: String,
        bounce: Option<i64>,
    },
    /// Not attempted after all (the server as a whole failed, or the worker is stopping).
    Released {
        delivery_id: i64,
    },
}

impl Outcome {
    pub fn delivery_id(&self) -> i64 {
        match self {
            Self::Sent { delivery_id, .. }
            | Self::Deferred { delivery_id, .. }
            | Self::Failed { delivery_id, .. }
            | Self::Released { delivery_id } => *delivery_id,
        }
    }
}
