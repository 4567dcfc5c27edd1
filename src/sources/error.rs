//! The one error type of the sources module. Each variant names the URL, file or line at fault
//! and says what to do, because the command line prints it as is; `is_unreachable` splits them
//! into "could not be read, try again later" (exit 1) and "the content is wrong" (exit 2).

use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Why a source could not be turned into articles.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The HTTP client could not be built (a TLS set-up problem, not a feed problem).
    #[error("cannot set up the HTTP client: {cause}")]
    Client { cause: String },

    /// The server could not be reached, or the connection broke.
    #[error("{url}: cannot fetch the feed: {cause}")]
    Fetch { url: String, cause: String },

    /// The server answered with an error status.
    #[error("{url}: the server answered HTTP {status}{reason}; check the URL or try again later")]
    HttpStatus {
        url: String,
        status: u16,
        /// The status's reason phrase, with a leading space, or empty.
        reason: String,
    },

    /// The server did not finish answering in time.
    #[error("{url}: no complete answer within {seconds} s; the server is too slow or down")]
    Timeout { url: String, seconds: u64 },

    /// A redirect led a feed at a public address to a local one (loopback, private, link-local…).
    #[error(
        "{url}: refused to follow the feed's redirect to {target}: {address} is {kind}, and a feed at \
         a public address is never followed to a local one (if the feed really lives there, configure \
         that URL as the source)"
    )]
    RedirectToLocal {
        url: String,
        /// The URL redirected to.
        target: String,
        /// The address that URL named or resolved to.
        address: IpAddr,
        /// What kind of local address it is, with its article: "a loopback address".
        kind: &'static str,
    },

    /// The answer was bigger than the size cap.
    #[error("{url}: the feed is larger than {limit} bytes; gazette reads at most that much")]
    TooLarge { url: String, limit: usize },

    /// A feed file or a folder could not be read.
    #[error("{}: cannot read it: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The bytes are not a feed gazette understands.
    #[error("{location} is not an RSS, Atom or JSON feed: {cause}")]
    NotAFeed { location: String, cause: String },

    /// A Markdown file of a folder source is wrong; `line` counts from the file's first line.
    #[error("{}:{line}: {message}", file.display())]
    Article { file: PathBuf, line: usize, message: String },
}

impl SourceError {
    /// True when the source could not be reached (network, an HTTP error status, a timeout, a
    /// refused redirect, an oversized answer, a missing file or folder): the command exits 1 and
    /// a later run may succeed. False when the content is malformed (exit 2): it needs fixing
    /// first.
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Fetch { .. }
            | Self::RedirectToLocal { .. }
            | Self::HttpStatus { .. }
            | Self::Timeout { .. }
            | Self::TooLarge { .. }
            | Self::ReadFile { .. } => true,
            Self::Client { .. } | Self::NotAFeed { .. } | Self::Article { .. } => false,
        }
    }

    /// The file at fault, where there is one (for `--json` error output).
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::ReadFile { path, .. } => Some(path),
            Self::Article { file, .. } => Some(file),
            _ => None,
        }
    }

    /// The line at fault (1-based), where there is one.
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Article { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// Replaces the location named by a `NotAFeed` error (e.g. a file name by its full path).
    pub(crate) fn at_location(self, location: String) -> Self {
        match self {
            Self::NotAFeed { cause, .. } => Self::NotAFeed { location, cause },
            other => other,
        }
    }
}

/// A cause and its sources on one line, for messages ("a: b: c").
pub(crate) fn cause_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let next = cause.to_string();
        if !text.contains(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreachable_split() {
        let fetch = SourceError::Timeout { url: "https://example.org/feed".into(), seconds: 30 };
        assert!(fetch.is_unreachable());
        let bad = SourceError::NotAFeed { location: "feed.xml".into(), cause: "no root element".into() };
        assert!(!bad.is_unreachable());
        assert_eq!(bad.to_string(), "feed.xml is not an RSS, Atom or JSON feed: no root element");
    }

    #[test]
    fn article_error_names_file_and_line() {
        let error = SourceError::Article {
            file: PathBuf::from("articles/2024-03-12-hello.md"),
            line: 3,
            message: "date: \"next tuesday\" is not a date".into(),
        };
        assert_eq!(error.to_string(), "articles/2024-03-12-hello.md:3: date: \"next tuesday\" is not a date");
        assert_eq!(error.line(), Some(3));
        assert!(!error.is_unreachable());
    }
}
