//! Fetching feeds over HTTP. A feed server is somebody else's machine: it may be slow, huge,
//! redirect forever or answer with an error page, and one bad source must not hang or swamp a
//! run. So every request has a connect and a total timeout, a size cap enforced while reading
//! (not trusted from `Content-Length`), a redirect limit and an honest User-Agent; conditional
//! GET (ETag / Last-Modified) spares servers that have nothing new. A redirect never leads a
//! feed at a public address to a local one (`redirects.rs`).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::dns::Resolve;
use reqwest::header::{ACCEPT, ETAG, HeaderMap, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, LAST_MODIFIED};
use url::Url;

use super::SourceError;
use super::error::cause_chain;
use super::redirects::{GuardedResolver, RedirectGuard, Refused, SystemLookup};

/// What a feed URL answered, kept so the next fetch can be conditional.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CachedFeed {
    pub body: Vec<u8>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The outcome of a (possibly conditional) fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchOutcome {
    /// A new body (and the validators to send next time).
    Fresh(CachedFeed),
    /// The server says the `previous` body is still current (HTTP 304).
    NotModified,
}

/// An HTTP client for feeds, with limits. Cheap to share: build one per run.
#[derive(Clone)]
pub struct Fetcher {
    timeout: Duration,
    max_bytes: usize,
    /// Turns host names into addresses: the system's resolver, except in tests.
    lookup: Arc<dyn Resolve>,
}

impl fmt::Debug for Fetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fetcher").field("timeout", &self.timeout).field("max_bytes", &self.max_bytes).finish()
    }
}

impl Fetcher {
    /// The whole exchange, connection to last byte.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Connecting alone (capped by the total timeout).
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The largest feed read: 10 MiB.
    pub const DEFAULT_MAX_BYTES: usize = 10 * 1024 * 1024;
    /// Redirects followed before giving up.
    pub const MAX_REDIRECTS: usize = 5;
    /// What servers see us as.
    pub const USER_AGENT: &'static str = concat!("gazette/", env!("CARGO_PKG_VERSION"));

    /// A fetcher with the default limits (30 s, 10 MiB).
    pub fn new() -> Result<Self, SourceError> {
        Self::with_limits(Self::DEFAULT_TIMEOUT, Self::DEFAULT_MAX_BYTES)
    }

    /// A fetcher that gives up after `timeout` and refuses bodies over `max_bytes`.
    pub fn with_limits(timeout: Duration, max_bytes: usize) -> Result<Self, SourceError> {
        Self::with_lookup(timeout, max_bytes, Arc::new(SystemLookup))
    }

    fn with_lookup(timeout: Duration, max_bytes: usize, lookup: Arc<dyn Resolve>) -> Result<Self, SourceError> {
        super::install_crypto_provider();
        let fetcher = Self { timeout, max_bytes, lookup };
        // A TLS set-up problem belongs to the machine, not to a feed: it is reported before the
        // first source is read, not as that source's failure.
        fetcher.client_builder().build().map_err(|error| SourceError::Client { cause: cause_chain(&error) })?;
        Ok(fetcher)
    }

    fn client_builder(&self) -> reqwest::ClientBuilder {
        reqwest::Client::builder()
            .user_agent(Self::USER_AGENT)
            .connect_timeout(self.timeout.min(Self::CONNECT_TIMEOUT))
            .timeout(self.timeout)
    }

    /// A client for fetching `url`. Each fetch gets its own, because where its redirects may
    /// lead depends on the configured URL, and reqwest's resolver and redirect policy belong to
    /// a client, not to a request.
    fn client_for(&self, url: &Url) -> Result<reqwest::Client, SourceError> {
        let guard = Arc::new(RedirectGuard::new(url));
        self.client_builder()
            .redirect(guard.policy(Self::MAX_REDIRECTS))
            .dns_resolver(GuardedResolver { guard, lookup: Arc::clone(&self.lookup) })
            .build()
            .map_err(|error| SourceError::Client { cause: cause_chain(&error) })
    }

    /// Conditional GET: `previous` carries the ETag / Last-Modified (and body) of the last
    /// fetch; a 304 yields `NotModified`.
    pub async fn fetch(&self, url: &Url, previous: Option<&CachedFeed>) -> Result<FetchOutcome, SourceError> {
        let mut headers = HeaderMap::new();
        headers.insert(
            ACCEPT,
            HeaderValue::from_static(
                "application/rss+xml, application/atom+xml, application/feed+json, \
                 application/rdf+xml;q=0.9, application/xml;q=0.9, text/xml;q=0.9, \
                 application/json;q=0.8, */*;q=0.5",
            ),
        );
        if let Some(previous) = previous {
            let validators =
                [(IF_NONE_MATCH, previous.etag.as_deref()), (IF_MODIFIED_SINCE, previous.last_modified.as_deref())];
            for (name, value) in validators {
                if let Some(value) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
                    headers.insert(name, value);
                }
            }
        }
        let mut response = self
            .client_for(url)?
            .get(url.clone())
            .headers(headers)
            .send()
            .await
            .map_err(|error| self.request_error(url, &error))?;

        let status = response.status();
        if status == StatusCode::NOT_MODIFIED && previous.is_some() {
            return Ok(FetchOutcome::NotModified);
        }
        if !status.is_success() {
            return Err(SourceError::HttpStatus {
                url: url.to_string(),
                status: status.as_u16(),
                reason: status.canonical_reason().map(|reason| format!(" {reason}")).unwrap_or_default(),
            });
        }
        let header =
            |name| response.headers().get(name).and_then(|value: &HeaderValue| value.to_str().ok()).map(str::to_string);
        let etag = header(ETAG);
        let last_modified = header(LAST_MODIFIED);
        let too_large = || SourceError::TooLarge { url: url.to_string(), limit: self.max_bytes };
        if response.content_length().is_some_and(|length| length > self.max_bytes as u64) {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| self.request_error(url, &error))? {
            if body.len() + chunk.len() > self.max_bytes {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(FetchOutcome::Fresh(CachedFeed { body, etag, last_modified }))
    }

    fn request_error(&self, url: &Url, error: &reqwest::Error) -> SourceError {
        if let Some(refused) = refusal(error) {
            return SourceError::RedirectToLocal {
                url: url.to_string(),
                target: refused.target.clone(),
                address: refused.address,
                kind: refused.kind.describe(),
            };
        }
        if error.is_timeout() {
            return SourceError::Timeout { url: url.to_string(), seconds: self.timeout.as_secs_f64().ceil() as u64 };
        }
        // reqwest's own message repeats the URL; its causes say what went wrong.
        let cause = match std::error::Error::source(error) {
            Some(source) => cause_chain(source),
            None => error.to_string(),
        };
        let cause =
            if error.is_redirect() { format!("more than {} redirects ({cause})", Self::MAX_REDIRECTS) } else { cause };
        SourceError::Fetch { url: url.to_string(), cause }
    }
}

/// The refused redirect behind a reqwest error, if that is what it is: reqwest wraps the
/// policy's and the resolver's errors a layer or three deep.
fn refusal(error: &reqwest::Error) -> Option<&Refused> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = cause {
        if let Some(refused) = current.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = current.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use crate::sources::{FeedSource, Location, ReadOptions, Source, read};

    const FEED: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Loopback News</title><link>/</link>
<item><title>First</title><link>/first</link><pubDate>Tue, 12 Mar 2024 12:00:00 GMT</pubDate>
<description>Hello from the loopback.</description></item></channel></rss>"#;

    /// A one-request-per-connection HTTP/1.1 server with canned answers, on 127.0.0.1:0.
    async fn start_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket));
            }
        });
        address
    }

    async fn answer(mut socket: TcpStream) {
        let mut request = Vec::new();
        let mut buffer = [0u8; 2048];
        while !request.windows(4).any(|w| w == b"\r\n\r\n") {
            match socket.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
        let request = String::from_utf8_lossy(&request).to_lowercase();
        let path = request.split_whitespace().nth(1).unwrap_or("/").to_string();
        let port = socket.local_addr().map(|address| address.port()).unwrap_or_default();
        let redirect = |location: String| {
            format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                .into_bytes()
        };
        let has_header = |line: &str| request.lines().any(|l| l.trim() == line);
        let response: Vec<u8> = match path.as_str() {
            "/feed" if !request.contains("\r\nuser-agent: gazette/") => plain(400, "Bad Request", "no user agent"),
            "/feed" if has_header("if-none-match: \"v1\"") => {
                b"HTTP/1.1 304 Not Modified\r\nETag: \"v1\"\r\nConnection: close\r\n\r\n".to_vec()
            }
            "/feed" => format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/rss+xml\r\nETag: \"v1\"\r\n\
                 Last-Modified: Tue, 12 Mar 2024 12:00:00 GMT\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{FEED}",
                FEED.len()
            )
            .into_bytes(),
            "/error" => plain(500, "Internal Server Error", "oops"),
            "/missing" => plain(404, "Not Found", "no such feed"),
            "/html" => plain(200, "OK", "<html><body>Welcome!</body></html>"),
            "/big" => {
                // No Content-Length: the cap must hold while streaming.
                let mut out = b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n".to_vec();
                out.extend(std::iter::repeat_n(b'x', 4096));
                out
            }
            "/big-declared" => b"HTTP/1.1 200 OK\r\nContent-Length: 999999\r\nConnection: close\r\n\r\nxx".to_vec(),
            "/loop" => b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "/to-loopback" => redirect(format!("http://127.0.0.1:{port}/feed")),
            "/to-loopback-v6" => redirect(format!("http://[::ffff:127.0.0.1]:{port}/feed")),
            "/to-name" => redirect(format!("http://rebound.example.test:{port}/feed")),
            "/to-same-host" => redirect(format!("http://feed.example.test:{port}/feed")),
            "/stall" => {
                tokio::time::sleep(Duration::from_secs(10)).await;
                plain(200, "OK", "too late")
            }
            "/stall-body" => {
                let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\nabc";
                if socket.write_all(head).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(10)).await;
                Vec::new()
            }
            _ => plain(404, "Not Found", "unknown"),
        };
        let _ = socket.write_all(&response).await;
        let _ = socket.shutdown().await;
    }

    fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    }

    fn url(address: SocketAddr, path: &str) -> Url {
        Url::parse(&format!("http://{address}{path}")).expect("valid url")
    }

    fn fetcher() -> Fetcher {
        Fetcher::with_limits(Duration::from_millis(700), 1024).expect("client")
    }

    /// A resolver for names under `.example.test` that puts them all on 127.0.0.1, so that a
    /// configured URL can look public while every connection stays on loopback.
    struct LoopbackNames;

    impl Resolve for LoopbackNames {
        fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            let known = name.as_str().ends_with(".example.test");
            Box::pin(async move {
                if !known {
                    return Err("only .example.test names resolve in this test".into());
                }
                let addresses = vec![SocketAddr::from(([127, 0, 0, 1], 0))];
                Ok(Box::new(addresses.into_iter()) as reqwest::dns::Addrs)
            })
        }
    }

    fn fetcher_with_loopback_names() -> Fetcher {
        Fetcher::with_lookup(Duration::from_secs(5), 1024, Arc::new(LoopbackNames)).expect("client")
    }

    #[tokio::test]
    async fn conditional_get() {
        let address = start_server().await;
        let fetcher = fetcher();
        let feed_url = url(address, "/feed");
        let FetchOutcome::Fresh(cached) = fetcher.fetch(&feed_url, None).await.expect("fetched") else {
            panic!("expected a fresh body");
        };
        assert_eq!(cached.body, FEED.as_bytes());
        assert_eq!(cached.etag.as_deref(), Some("\"v1\""));
        assert_eq!(cached.last_modified.as_deref(), Some("Tue, 12 Mar 2024 12:00:00 GMT"));
        let again = fetcher.fetch(&feed_url, Some(&cached)).await.expect("fetched");
        assert_eq!(again, FetchOutcome::NotModified);
    }

    #[tokio::test]
    async fn http_errors_are_unreachable_and_named() {
        let address = start_server().await;
        let fetcher = fetcher();
        let error = fetcher.fetch(&url(address, "/error"), None).await.expect_err("500");
        assert!(error.is_unreachable());
        let message = error.to_string();
        assert!(message.contains(&format!("http://{address}/error")), "{message}");
        assert!(message.contains("HTTP 500 Internal Server Error"), "{message}");

        let error = fetcher.fetch(&url(address, "/missing"), None).await.expect_err("404");
        assert!(error.to_string().contains("HTTP 404"), "{error}");
        assert!(error.is_unreachable());

        let error = fetcher.fetch(&url(address, "/loop"), None).await.expect_err("redirect loop");
        assert!(error.is_unreachable());
        assert!(error.to_string().contains("redirects"), "{error}");
    }

    #[tokio::test]
    async fn a_public_feed_is_not_redirected_to_a_local_address() {
        let address = start_server().await;
        let port = address.port();
        let fetcher = fetcher_with_loopback_names();
        let public = |path: &str| Url::parse(&format!("http://feed.example.test:{port}{path}")).expect("url");

        // Straight to an address literal: refused by the redirect policy.
        for (path, target, address) in [
            ("/to-loopback", format!("http://127.0.0.1:{port}/feed"), "127.0.0.1"),
            ("/to-loopback-v6", format!("http://[::ffff:7f00:1]:{port}/feed"), "::ffff:127.0.0.1"),
        ] {
            let error = fetcher.fetch(&public(path), None).await.expect_err("refused");
            assert!(matches!(error, SourceError::RedirectToLocal { .. }), "{path}: {error:?}");
            assert!(error.is_unreachable());
            assert_eq!(
                error.to_string(),
                format!(
                    "http://feed.example.test:{port}{path}: refused to follow the feed's redirect to {target}: \
                     {address} is a loopback address, and a feed at a public address is never followed to a \
                     local one (if the feed really lives there, configure that URL as the source)"
                )
            );
        }

        // To another name that resolves to loopback: refused on the resolved address.
        let error = fetcher.fetch(&public("/to-name"), None).await.expect_err("refused");
        let SourceError::RedirectToLocal { target, address, kind, .. } = &error else {
            panic!("expected a refused redirect: {error:?}");
        };
        assert_eq!(target, &format!("http://rebound.example.test:{port}/feed"));
        assert_eq!(address.to_string(), "127.0.0.1");
        assert_eq!(*kind, "a loopback address");

        // The configured host itself is the publisher's choice, also when a redirect leads back
        // to it.
        for path in ["/feed", "/to-same-host"] {
            let outcome = fetcher.fetch(&public(path), None).await.expect("fetched");
            assert!(matches!(outcome, FetchOutcome::Fresh(ref cached) if cached.body == FEED.as_bytes()), "{path}");
        }
    }

    #[tokio::test]
    async fn a_local_feed_may_be_redirected_anywhere() {
        let address = start_server().await;
        let fetcher = fetcher_with_loopback_names();
        for path in ["/to-loopback", "/to-name", "/to-same-host"] {
            let outcome = fetcher.fetch(&url(address, path), None).await;
            assert!(matches!(outcome, Ok(FetchOutcome::Fresh(ref cached)) if cached.body == FEED.as_bytes()), "{path}");
        }
    }

    #[tokio::test]
    async fn size_cap() {
        let address = start_server().await;
        let fetcher = fetcher();
        for path in ["/big", "/big-declared"] {
            let error = fetcher.fetch(&url(address, path), None).await.expect_err("too large");
            assert!(matches!(error, SourceError::TooLarge { limit: 1024, .. }), "{error}");
            assert!(error.is_unreachable());
            assert!(error.to_string().contains(path), "{error}");
        }
    }

    #[tokio::test]
    async fn stalls_time_out() {
        let address = start_server().await;
        let fetcher = fetcher();
        for path in ["/stall", "/stall-body"] {
            let started = std::time::Instant::now();
            let error = fetcher.fetch(&url(address, path), None).await.expect_err("timeout");
            assert!(matches!(error, SourceError::Timeout { .. }), "{path}: {error:?}");
            assert!(error.is_unreachable());
            assert!(started.elapsed() < Duration::from_secs(5));
        }
    }

    #[tokio::test]
    async fn refused_connection_is_unreachable() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        let error = fetcher().fetch(&url(address, "/feed"), None).await.expect_err("refused");
        assert!(matches!(error, SourceError::Fetch { .. }), "{error:?}");
        assert!(error.is_unreachable());
    }

    #[tokio::test]
    async fn read_a_url_source() {
        let address = start_server().await;
        let fetcher = fetcher();
        let options = ReadOptions { timezone: chrono_tz::UTC };
        let source =
            Source::Feed(FeedSource { location: Location::Url(url(address, "/feed")), optional: false, name: None });
        let articles = read(&source, &fetcher, &options).await.expect("read");
        assert_eq!(articles.len(), 1);
        assert_eq!(articles[0].source, "Loopback News");
        // The relative link resolves against the feed's own URL via the relative site link.
        assert_eq!(articles[0].url.as_ref().map(Url::as_str), Some(format!("http://{address}/first").as_str()));

        let html =
            Source::Feed(FeedSource { location: Location::Url(url(address, "/html")), optional: true, name: None });
        let error = read(&html, &fetcher, &options).await.expect_err("not a feed");
        assert!(!error.is_unreachable());
        assert!(
            error.to_string().starts_with(&format!("http://{address}/html is not an RSS, Atom or JSON feed")),
            "{error}"
        );
    }
}
