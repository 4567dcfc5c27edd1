//! Where reports are read from: a file holding one message or an mbox (its first line starts
//! `From `), or a Maildir folder, whose new messages are moved to `cur/` once read, marked seen,
//! as a mail reader does (those already in `cur/` are read again each time, which applies
//! nothing twice).

use std::path::{Path, PathBuf};

use mail_parser::mailbox::mbox::MessageIterator;

use super::BounceError;

/// A place messages are read from, found before any is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Place {
    /// A file: one message, or an mbox.
    File(PathBuf),
    /// A message of a Maildir; `fresh` when it is in `new/`.
    Maildir { path: PathBuf, fresh: bool },
}

impl Place {
    pub fn path(&self) -> &Path {
        match self {
            Self::File(p) | Self::Maildir { path: p, .. } => p,
        }
    }
}

/// The places `paths` hold, in order (a Maildir's messages by name, `new/` first), each checked
/// to exist before anything is read: a wrong path changes nothing.
pub async fn places(paths: &[PathBuf]) -> Result<Vec<Place>, BounceError> {
    let mut out = Vec::new();
    for path in paths {
        let meta =
            tokio::fs::metadata(path).await.map_err(|source| BounceError::Read { path: path.clone(), source })?;
        if !meta.is_dir() {
            out.push(Place::File(path.clone()));
            continue;
        }
        let (new, cur) = (path.join("new"), path.join("cur"));
        if !new.is_dir() && !cur.is_dir() {
            return Err(BounceError::NotMaildir(path.clone()));
        }
        for (folder, fresh) in [(new, true), (cur, false)] {
            for file in files_in(&folder).await? {
                out.push(Place::Maildir { path: file, fresh });
            }
        }
    }
    Ok(out)
}

/// The messages of a Maildir folder by name; none when it is missing. Names that start with a
/// dot are not messages.
async fn files_in(folder: &Path) -> Result<Vec<PathBuf>, BounceError> {
    let read = |source| BounceError::Read { path: folder.to_owned(), source };
    let mut entries = match tokio::fs::read_dir(folder).await {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(read(e)),
    };
    let mut files = Vec::new();
    while let Some(entry) = entries.next_entry().await.map_err(read)? {
        let hidden = entry.file_name().to_string_lossy().starts_with('.');
        if !hidden && entry.file_type().await.map_err(read)?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// The messages of a place, each with what names it: the path, and `#N` after it for the Nth
/// message of an mbox.
pub async fn messages(place: &Place) -> Result<Vec<(String, Vec<u8>)>, BounceError> {
    let path = place.path();
    let bytes = tokio::fs::read(path).await.map_err(|source| BounceError::Read { path: path.to_owned(), source })?;
    Ok(split(&path.display().to_string(), bytes))
}

/// One message, or an mbox's messages when the text starts with `From ` (as Postfix's pipe
/// writes a message with its `F` flag, too).
pub fn split(name: &str, bytes: Vec<u8>) -> Vec<(String, Vec<u8>)> {
    if !bytes.starts_with(b"From ") {
        return vec![(name.to_owned(), bytes)];
    }
    let messages: Vec<Vec<u8>> =
        MessageIterator::new(std::io::Cursor::new(bytes)).filter_map(Result::ok).map(|m| m.unwrap_contents()).collect();
    if messages.len() == 1 {
        return messages.into_iter().map(|m| (name.to_owned(), m)).collect();
    }
    messages.into_iter().enumerate().map(|(i, m)| (format!("{name}#{}", i + 1), m)).collect()
}

/// Marks a place read: a Maildir's new message moves to `cur/`, seen; anything else stays.
pub async fn done(place: &Place) -> Result<(), BounceError> {
    let Place::Maildir { path, fresh: true } = place else { return Ok(()) };
    let (Some(name), Some(maildir)) = (path.file_name(), path.parent().and_then(Path::parent)) else { return Ok(()) };
    let name = name.to_string_lossy();
    // `:2,` begins a message's flags; `S` is seen.
    let seen = if name.contains(":2,") { name.into_owned() } else { format!("{name}:2,S") };
    // Some writers make only `tmp/` and `new/`; `cur/` is ours to make then.
    let cur = maildir.join("cur");
    tokio::fs::create_dir_all(&cur).await.map_err(|source| BounceError::Move { path: path.clone(), source })?;
    tokio::fs::rename(path, cur.join(seen)).await.map_err(|source| BounceError::Move { path: path.clone(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_mbox_is_split_and_one_message_stays_whole() {
        let one = split("a.eml", b"From: x@example.org\n\nhi\n".to_vec());
        assert_eq!(one, [("a.eml".to_owned(), b"From: x@example.org\n\nhi\n".to_vec())]);
        let mbox = b"From a@example.org Mon Mar 18 13:00:00 2024\nSubject: 1\n\none\n>From the start\n\n\
                     From b@example.org Mon Mar 18 13:00:01 2024\nSubject: 2\n\ntwo\n"
            .to_vec();
        let got = split("box", mbox);
        assert_eq!(got.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(), ["box#1", "box#2"]);
        assert!(String::from_utf8_lossy(&got[0].1).contains("\nFrom the start"), "quoted From lines are unquoted");
        let piped = split("-", b"From MAILER-DAEMON Mon Mar 18 13:00:00 2024\nSubject: 1\n\none\n".to_vec());
        assert_eq!(piped.len(), 1);
        assert_eq!(piped[0].0, "-");
        assert!(piped[0].1.starts_with(b"Subject: 1"));
    }

    #[tokio::test]
    async fn a_maildir_is_read_new_first_and_its_new_messages_move_to_cur() {
        let dir = tempfile::tempdir().expect("tmp");
        let maildir = dir.path().join("bounces");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).expect("mkdir");
        }
        std::fs::write(maildir.join("new/2.b"), "Subject: b\n\nb").expect("write");
        std::fs::write(maildir.join("new/.hidden"), "x").expect("write");
        std::fs::write(maildir.join("cur/1.a:2,S"), "Subject: a\n\na").expect("write");
        std::fs::write(maildir.join("tmp/3.c"), "Subject: c\n\nc").expect("write");
        let found = places(std::slice::from_ref(&maildir)).await.expect("places");
        assert_eq!(
            found,
            [
                Place::Maildir { path: maildir.join("new/2.b"), fresh: true },
                Place::Maildir { path: maildir.join("cur/1.a:2,S"), fresh: false },
            ]
        );
        for place in &found {
            done(place).await.expect("done");
        }
        assert!(maildir.join("cur/2.b:2,S").is_file(), "moved and marked seen");
        assert!(maildir.join("cur/1.a:2,S").is_file(), "left where it was");
        assert!(!maildir.join("new/2.b").exists());

        let plain = dir.path().join("plain");
        std::fs::create_dir(&plain).expect("mkdir");
        assert!(matches!(places(&[plain]).await, Err(BounceError::NotMaildir(_))));
        assert!(matches!(places(&[dir.path().join("missing")]).await, Err(BounceError::Read { .. })));
    }

    #[tokio::test]
    async fn a_maildir_without_cur_gets_one_when_a_message_is_read() {
        let dir = tempfile::tempdir().expect("tmp");
        let maildir = dir.path().join("bounces");
        std::fs::create_dir_all(maildir.join("new")).expect("mkdir");
        std::fs::write(maildir.join("new/1.a"), "Subject: a\n\na").expect("write");
        let found = places(std::slice::from_ref(&maildir)).await.expect("places");
        assert_eq!(found.len(), 1);
        done(&found[0]).await.expect("moved");
        assert!(maildir.join("cur/1.a:2,S").is_file());
    }
}
