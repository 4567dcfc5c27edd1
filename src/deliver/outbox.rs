//! The embedded default transport: a Maildir folder. Each message is written to `tmp/` and
//! renamed into `new/` under a name made from its Message-ID, so a message written again after
//! a crash replaces its first copy instead of standing beside it. Messages hold their readers'
//! addresses and links: the folders and files gazette makes are its owner's alone, whatever the
//! umask.

use std::path::{Path, PathBuf};

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

    pub async fn deliver(&self, message_id: &MessageId, bytes: &[u8]) -> Result<(), SendError> {
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
        f.write_all(bytes).await.map_err(fail)?;
        f.sync_all().await.map_err(fail)?;
        tokio::fs::rename(&tmp, &new).await.map_err(fail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writes_once_per_message_id() {
        let dir = tempfile::tempdir().expect("tmp");
        let o = Outbox::open(dir.path()).await.expect("open");
        let id = |s: &str| s.parse::<MessageId>().expect("id");
        o.deliver(&id("<issue1.ab@example.org>"), b"one").await.expect("write");
        o.deliver(&id("<issue1.ab@example.org>"), b"one again").await.expect("write");
        o.deliver(&id("<issue1.cd@example.org>"), b"two").await.expect("write");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("new")).expect("dir").collect();
        assert_eq!(names.len(), 2);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("dir").count(), 0);
    }
}
