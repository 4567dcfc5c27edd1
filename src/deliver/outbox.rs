//! The embedded default transport: a Maildir folder. Each message is written to `tmp/` and
//! renamed into `new/` under a name made from its Message-ID, so a message written again after
//! a crash replaces its first copy instead of standing beside it.

use std::path::{Path, PathBuf};

use super::SendError;

#[derive(Debug, Clone)]
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    /// Creates `dir/{tmp,new,cur}` when missing.
    pub async fn open(dir: &Path) -> Result<Self, SendError> {
        for sub in ["tmp", "new", "cur"] {
            tokio::fs::create_dir_all(dir.join(sub))
                .await
                .map_err(|e| SendError::server(format!("cannot create the outbox {}: {e}", dir.join(sub).display())))?;
        }
        Ok(Self { dir: dir.to_owned() })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub async fn deliver(&self, message_id: &str, bytes: &[u8]) -> Result<(), SendError> {
        let name: String = message_id
            .trim_matches(['<', '>'])
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '@') { c } else { '_' })
            .collect();
        let tmp = self.dir.join("tmp").join(format!("{name}.{}", std::process::id()));
        let new = self.dir.join("new").join(format!("{name}.eml"));
        let fail =
            |e: std::io::Error| SendError::server(format!("cannot write to the outbox {}: {e}", self.dir.display()));
        tokio::fs::write(&tmp, bytes).await.map_err(fail)?;
        let f = tokio::fs::File::open(&tmp).await.map_err(fail)?;
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
        o.deliver("<issue1.ab@example.org>", b"one").await.expect("write");
        o.deliver("<issue1.ab@example.org>", b"one again").await.expect("write");
        o.deliver("<issue1.cd@example.org>", b"two").await.expect("write");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("new")).expect("dir").collect();
        assert_eq!(names.len(), 2);
        assert_eq!(std::fs::read_dir(dir.path().join("tmp")).expect("dir").count(), 0);
    }
}
