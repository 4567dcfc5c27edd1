//! The embedded default transport: a Maildir folder. Each message is written to `tmp/` and
//! renamed into `new/` under a name made from its Message-ID, so a message written again after
//! a crash replaces its first copy instead of standing beside it. Each file begins with the
//! `Return-Path` a mail server adds at final delivery, so the envelope sender (a VERP return
//! address under `[bounces] return_path`) can be seen without a server. Messages hold their
//! readers' addresses and links: the folders and files gazette makes are its owner's alone,
//! whatever the umask.

use std::path::{Path, PathBuf};

use lettre::Address;
use tokio::io::AsyncWriteExt;

use super::SendError;
use crate::domain::MessageId;

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Creates `dir/{tmp,new,cur}` when missing (0700); folders that exist keep their mode.
    pub async fn open(dir: &Path) -> Result<Self, SendError> {
        let mut folders = tokio::fs::DirBuilder::new();
        folders.recursive(true);
        #[cfg(unix)]
        folders.mode(0o700);
        for sub in ["tmp", "new", "cur"] {
            folders
                .create(dir.join(sub))
                .await
                .map_err(|e| SendError::server(format!("cannot create the outbox {}: {e}", dir.join(sub).display())))?;
        }
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Files `bytes` under `message_id`, headed by the envelope sender (`<>` for none, as for a
    /// bounce).
    pub async fn deliver(
        &self,
        message_id: &MessageId,
        envelope_from: Option<&Address>,
        bytes: &[u8],
    ) -> Result<(), SendError> {
        // A Message-ID may hold characters a file name should not (`/`, `%`): each becomes `_`.
        let name: String = message_id
            .as_str()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') { c } else { '_' })
            .collect();
        let tmp = self.dir.join("tmp").join(format!("{name}.{}", std::process::id()));
        let new = self.dir.join("new").join(format!("{name}.eml"));
        let fail =
            |e: std::io::Error| SendError::server(format!("cannot write to the outbox {}: {e}", self.dir.display()));
        let mut file = tokio::fs::OpenOptions::new();
        file.write(true).create_new(true);
        #[cfg(unix)]
        file.mode(0o600);
        let mut f = match file.open(&tmp).await {
            // Left by a crashed run with this process id: made anew, so that its mode is ours.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                tokio::fs::remove_file(&tmp).await.map_err(fail)?;
                file.open(&tmp).await.map_err(fail)?
            }
            opened => opened.map_err(fail)?,
        };
        f.write_all(return_path(envelope_from).as_bytes()).await.map_err(fail)?;
        f.write_all(bytes).await.map_err(fail)?;
        f.sync_all().await.map_err(fail)?;
        tokio::fs::rename(&tmp, &new).await.map_err(fail)
    }
}

/// The header line an MTA writes at final delivery. An `Address` holds no white space or angle
/// brackets, so it cannot end the line early.
fn return_path(envelope_from: Option<&Address>) -> String {
    format!("Return-Path: <{}>\r\n", envelope_from.map_or("", |a| a.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_once_per_message_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Outbox::open(dir.path()).await.expect("open");
        let id = |s: &str| s.parse::<MessageId>().expect("id");
        o.deliver(&id("<issue1.ab@example.org>"), None, b"one").await.expect("write");
        o.deliver(&id("<issue1.ab@example.org>"), None, b"one again").await.expect("write");
        o.deliver(&id("<issue1.cd@example.org>"), None, b"two").await.expect("write");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("new")).expect("dir").collect();
        assert_eq!(names.len(), 2);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("dir").count(), 0);
    }

    #[tokio::test]
    async fn each_message_begins_with_its_envelope_sender_as_return_path() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Outbox::open(dir.path()).await.expect("open");
        let verp: Address = "bounces+d7-abcdefghijklmnop@example.org".parse().expect("address");
        let body = b"From: weekly@example.org\r\nTo: ann@example.net\r\n\r\nHello\r\n";
        o.deliver(&"<issue1.ab@example.org>".parse().expect("id"), Some(&verp), body).await.expect("write");
        o.deliver(&"<issue1.cd@example.org>".parse().expect("id"), None, body).await.expect("write");
        let read = |name: &str| std::fs::read(dir.path().join("new").join(name)).expect("a message");
        let first = read("issue1.ab@example.org.eml");
        assert_eq!(
            String::from_utf8_lossy(&first),
            format!("Return-Path: <bounces+d7-abcdefghijklmnop@example.org>\r\n{}", String::from_utf8_lossy(body))
        );
        let parsed = mail_parser::MessageParser::default().parse(&first).expect("a message");
        assert_eq!(parsed.return_path().as_text(), Some("bounces+d7-abcdefghijklmnop@example.org"));
        assert!(
            read("issue1.cd@example.org.eml").starts_with(b"Return-Path: <>\r\nFrom:"),
            "no sender, as a bounce has"
        );
    }
}
