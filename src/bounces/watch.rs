//! What the daemon does with `[bounces] maildir` and `imap_url`: every `poll`, read the Maildir
//! (new messages moved to `cur/`, marked seen, as `bounces ingest` does) and the IMAP mailbox
//! (unseen messages, marked `\Seen` once applied), and apply every report through [`Ingest`].
//!
//! Several daemons may watch one mailbox over one store: a report is applied once by its key, so
//! a message two of them read changes nothing the second time, and a Maildir message another
//! process moved away first is simply gone from this pass. A server that refuses the login or
//! the certificate, or is down, costs this pass only: the error is logged (once, until it
//! changes) and the next poll tries again. Logs hold counts, never an address.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use chrono::{DateTime, Utc};
use tracing::{error, info};

use super::{
    BounceError, Ingest,
    imap::{Imap, ImapError, Pass},
    mailbox,
};
use crate::{clock::Clock, config::Bounces, deliver::Stop, store::Store, tokens::Signer};

/// The mailboxes the daemon reads, and how often.
#[derive(Debug, Clone)]
pub struct Watch {
    maildir: Option<PathBuf>,
    imap: Option<Imap>,
    poll: Duration,
}

/// What reading them takes: the store, the key of the return tokens, `[bounces]`, the clock.
#[derive(Clone)]
pub struct Context {
    pub store: Store,
    pub signer: Signer,
    pub settings: Bounces,
    pub clock: Arc<dyn Clock>,
}

impl Watch {
    /// The watch `[bounces]` asks for; `None` when it names no Maildir and no IMAP mailbox.
    pub async fn new(settings: &Bounces) -> Result<Option<Self>, ImapError> {
        let imap = match &settings.imap_url {
            Some(url) => Some(Imap::new(url.clone(), settings.imap_ca_file.as_deref()).await?),
            None => None,
        };
        if imap.is_none() && settings.maildir.is_none() {
            return Ok(None);
        }
        Ok(Some(Self { maildir: settings.maildir.clone(), imap, poll: settings.poll.std() }))
    }

    /// What it reads, for the start-up line: `the Maildir bounces and imaps://host:993/INBOX every 1m`.
    pub fn describe(&self) -> String {
        let mut what = Vec::new();
        if let Some(m) = &self.maildir {
            what.push(format!("the Maildir {}", m.display()));
        }
        if let Some(i) = &self.imap {
            what.push(i.url().to_string());
        }
        format!("{} every {}", what.join(" and "), crate::domain::Duration::from_secs(self.poll.as_secs()))
    }

    /// Reads both every `poll` until `stop`; a pass in progress is abandoned at a stop, which
    /// loses nothing (what was applied is recorded, what was not is read again next time).
    pub async fn run(&self, cx: Context, mut stop: Stop) {
        info!("reading bounces from {}", self.describe());
        let mut last = LastErrors::default();
        loop {
            if stop.is_set() {
                break;
            }
            tokio::select! {
                () = self.pass(&cx, &mut last) => {}
                () = stop.wait() => break,
            }
            tokio::select! {
                () = tokio::time::sleep(self.poll) => {}
                () = stop.wait() => break,
            }
        }
    }

    /// One reading of each mailbox, with what it did logged.
    pub async fn pass(&self, cx: &Context, last: &mut LastErrors) {
        let ingest = Ingest { store: &cx.store, signer: &cx.signer, settings: &cx.settings };
        if let Some(maildir) = &self.maildir {
            let result = read_maildir(maildir, &ingest, cx.clock.now()).await;
            log_pass("the Maildir", result.map_err(|e| e.to_string()), &mut last.maildir);
        }
        if let Some(imap) = &self.imap {
            let result = imap.read(&ingest, cx.clock.now()).await;
            log_pass(&imap.url().to_string(), result.map_err(|e| e.to_string()), &mut last.imap);
        }
    }
}

/// The last error of each mailbox, so that a server down for an hour is said once, not every
/// poll, and its return is said too.
#[derive(Debug, Default)]
pub struct LastErrors {
    maildir: Option<String>,
    imap: Option<String>,
}

fn log_pass(source: &str, result: Result<Pass, String>, last: &mut Option<String>) {
    match result {
        Ok(pass) => {
            if last.take().is_some() {
                info!("bounces: {source} read again");
            }
            if pass.read > 0 {
                info!(
                    read = pass.read,
                    applied = pass.applied,
                    "bounces: {source}: {} read, {} applied",
                    pass.read,
                    pass.applied
                );
            }
        }
        Err(e) => {
            if last.as_deref() != Some(e.as_str()) {
                error!("bounces not read: {e}; trying again every poll");
            }
            *last = Some(e);
        }
    }
}

/// Reads the new messages of `maildir` and moves them to `cur/`, as `bounces ingest` does. Those
/// already in `cur/` were read before (or by a person), and are not read every poll again. A
/// message that vanished in between was taken by another process watching the same folder.
async fn read_maildir(maildir: &Path, ingest: &Ingest<'_>, now: DateTime<Utc>) -> Result<Pass, BounceError> {
    let mut pass = Pass::default();
    let places = mailbox::places(&[maildir.to_owned()]).await?;
    for place in places.iter().filter(|p| matches!(p, mailbox::Place::Maildir { fresh: true, .. })) {
        let messages = match mailbox::messages(place).await {
            Err(e) if gone(&e) => continue,
            other => other?,
        };
        for (_, raw) in messages {
            let done = ingest.one(&raw, None, now).await?;
            pass.read += 1;
            pass.applied += usize::from(done.outcome.applied());
        }
        match mailbox::done(place).await {
            Err(e) if gone(&e) => {}
            other => other?,
        }
    }
    Ok(pass)
}

fn gone(e: &BounceError) -> bool {
    matches!(e, BounceError::Read { source, .. } | BounceError::Move { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
}
