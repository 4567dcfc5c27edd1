//! `[bounces] imap_url`: the mailbox the daemon polls for bounces, parsed once into its parts.
//! The password is kept as a secret: neither `Debug`, `Display` nor any error shows it, so the
//! value can be logged and named in messages as `imaps://host:993/INBOX`.
//!
//! Only two forms are taken, both encrypted and both verified: `imaps://` (TLS from the first
//! byte, port 993) and `imap://` (port 143, always upgraded with STARTTLS; a server that does not
//! offer it is refused when connecting). A password never crosses the network in the clear.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

/// How the connection is encrypted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImapSecurity {
    /// `imaps://`: TLS from the first byte.
    Tls,
    /// `imap://`: plain at first, then STARTTLS before anything else is said.
    StartTls,
}

/// A parsed `imaps://user:pass@host[:port]/MAILBOX`.
#[derive(Clone)]
pub struct ImapUrl {
    security: ImapSecurity,
    host: String,
    port: u16,
    user: String,
    password: SecretString,
    mailbox: String,
}

/// Why a text is no IMAP URL. The messages never repeat the text, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImapUrlError {
    #[error("not a URL; write imaps://user:password@imap.example.org/INBOX")]
    NotAUrl,
    #[error(
        "the scheme must be imaps:// (TLS) or imap:// (STARTTLS); write imaps://user:password@imap.example.org/INBOX"
    )]
    Scheme,
    #[error("no host; write imaps://user:password@imap.example.org/INBOX")]
    NoHost,
    #[error(
        "give the user and password: imaps://user:password@imap.example.org/INBOX (percent-encode `@`, `:` and `/` in them)"
    )]
    NoCredentials,
    #[error("the user and password must be UTF-8 without line breaks")]
    BadCredentials,
    #[error("the mailbox name must be printable ASCII, like INBOX or Bounces")]
    BadMailbox,
    #[error("takes no query or fragment (`?…`, `#…`)")]
    Extra,
}

impl ImapUrl {
    pub fn parse(text: &str) -> Result<Self, ImapUrlError> {
        let url = Url::parse(text.trim()).map_err(|_| ImapUrlError::NotAUrl)?;
        let (security, default_port) = match url.scheme() {
            "imaps" => (ImapSecurity::Tls, 993),
            "imap" => (ImapSecurity::StartTls, 143),
            _ => return Err(ImapUrlError::Scheme),
        };
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or(ImapUrlError::NoHost)?;
        let host = host.trim_matches(['[', ']']).to_owned();
        if url.query().is_some() || url.fragment().is_some() {
            return Err(ImapUrlError::Extra);
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|c| c.into_owned())
                .map_err(|_| ImapUrlError::BadCredentials)
        };
        let user = decode(url.username())?;
        let password = decode(url.password().unwrap_or_default())?;
        if user.is_empty() || password.is_empty() {
            return Err(ImapUrlError::NoCredentials);
        }
        // IMAP quoted strings cannot hold a line break or NUL, and the client would quote the
        // offending character back in its error.
        if [&user, &password].iter().any(|s| s.contains(['\r', '\n', '\0'])) {
            return Err(ImapUrlError::BadCredentials);
        }
        let path = url.path().trim_start_matches('/');
        let mailbox = percent_encoding::percent_decode_str(path).decode_utf8().map_err(|_| ImapUrlError::BadMailbox)?;
        let mailbox = if mailbox.is_empty() { "INBOX".to_owned() } else { mailbox.into_owned() };
        // Other names would need IMAP's modified UTF-7.
        if !mailbox.chars().all(|c| c.is_ascii_graphic() || c == ' ') || mailbox.contains(['"', '\\']) {
            return Err(ImapUrlError::BadMailbox);
        }
        Ok(Self {
            security,
            host,
            port: url.port().unwrap_or(default_port),
            user,
            password: SecretString::from(password),
            mailbox,
        })
    }

    pub fn security(&self) -> ImapSecurity {
        self.security
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn password(&self) -> &SecretString {
        &self.password
    }

    pub fn mailbox(&self) -> &str {
        &self.mailbox
    }
}

/// `imaps://host:993/INBOX`: where, never who or with what password.
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            ImapSecurity::Tls => "imaps",
            ImapSecurity::StartTls => "imap",
        };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{scheme}://{host}:{}/{}", self.port, self.mailbox)
    }
}

impl fmt::Debug for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImapUrl({self})")
    }
}

impl PartialEq for ImapUrl {
    fn eq(&self, other: &Self) -> bool {
        self.security == other.security
            && self.host == other.host
            && self.port == other.port
            && self.user == other.user
            && self.mailbox == other.mailbox
            && self.password.expose_secret() == other.password.expose_secret()
    }
}

impl Eq for ImapUrl {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_imaps_url_is_read_into_its_parts() {
        let u = ImapUrl::parse("imaps://bounces%40example.org:p%40ss%2Fw0rd@imap.example.org/Bounces").expect("parses");
        assert_eq!(u.security(), ImapSecurity::Tls);
        assert_eq!((u.host(), u.port()), ("imap.example.org", 993));
        assert_eq!(u.user(), "bounces@example.org");
        assert_eq!(u.password().expose_secret(), "p@ss/w0rd");
        assert_eq!(u.mailbox(), "Bounces");
    }

    #[test]
    fn imap_means_starttls_and_the_mailbox_defaults_to_inbox() {
        let u = ImapUrl::parse("imap://u:p@127.0.0.1:10143").expect("parses");
        assert_eq!(u.security(), ImapSecurity::StartTls);
        assert_eq!((u.port(), u.mailbox()), (10143, "INBOX"));
        assert_eq!(ImapUrl::parse("imap://u:p@[::1]/").expect("parses").to_string(), "imap://[::1]:143/INBOX");
        assert_eq!(ImapUrl::parse("imaps://u:p@h/Junk%20Bounces").expect("parses").mailbox(), "Junk Bounces");
    }

    #[test]
    fn the_password_is_never_shown() {
        let u = ImapUrl::parse("imaps://ann:hunter2@imap.example.org/INBOX").expect("parses");
        for shown in [u.to_string(), format!("{u:?}"), format!("{:?}", Some(&u))] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("ann"), "{shown}");
        }
        assert_eq!(u.to_string(), "imaps://imap.example.org:993/INBOX");
    }

    #[test]
    fn what_is_no_imap_url_is_refused_without_repeating_it() {
        for (text, why) in [
            ("imap.example.org", ImapUrlError::NotAUrl),
            ("https://u:hunter2@h/INBOX", ImapUrlError::Scheme),
            ("pop3s://u:hunter2@h/", ImapUrlError::Scheme),
            ("imaps://h/INBOX", ImapUrlError::NoCredentials),
            ("imaps://u@h/INBOX", ImapUrlError::NoCredentials),
            ("imaps://u:hunter2%0A@h/INBOX", ImapUrlError::BadCredentials),
            ("imaps://u:hunter2@h/Bo%C3%AEte", ImapUrlError::BadMailbox),
            ("imaps://u:hunter2@h/A%22B", ImapUrlError::BadMailbox),
            ("imaps://u:hunter2@h/INBOX?tls=no", ImapUrlError::Extra),
        ] {
            let err = ImapUrl::parse(text).expect_err(text);
            assert_eq!(err, why, "{text}");
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
