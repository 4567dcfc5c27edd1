//! Where a feed fetch may connect once a server redirects it. A feed at a public address must not
//! be able to bounce gazette onto the machine it runs on or the network around it (a cloud
//! metadata service at 169.254.169.254, an admin page on 127.0.0.1, a database on 10.0.0.5).
//! So every connection a redirect leads to is checked on the address actually connected, after
//! DNS: a redirect to a public-looking name that resolves to a local address is refused like a
//! redirect to `http://127.0.0.1/`.
//!
//! The publisher's own choice is not second-guessed. The configured URL's host is reached
//! whatever it resolves to (an intranet name, or a test name that resolves to loopback), also
//! when a redirect leads back to it; and when the configured URL itself names a local address
//! (`http://127.0.0.1:8080/feed`, `http://10.0.0.5/`, `http://localhost/`), its redirects may go
//! anywhere.
//!
//! The check has two halves, because reqwest connects to an address literal without asking a
//! resolver: the redirect policy refuses literals, [`GuardedResolver`] refuses what names resolve
//! to. Behind an HTTP proxy (`HTTPS_PROXY`), the proxy resolves names, not gazette: only redirects
//! to address literals are refused then.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::redirect::{Attempt, Policy};
use url::{Host, Url};

/// Why an address is not a public one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LocalAddress {
    Unspecified,
    Loopback,
    /// RFC 1918, and IPv6 unique local (fc00::/7) and site-local (fec0::/10) addresses.
    Private,
    /// 100.64.0.0/10, carrier-grade NAT: the provider's network, not the internet.
    SharedNat,
    LinkLocal,
    Multicast,
    Broadcast,
    Documentation,
    /// Benchmarking, IETF protocol assignments, the old class E and other special ranges.
    Reserved,
}

impl LocalAddress {
    /// What kind of local address `address` is, or `None` for a public one.
    pub(crate) fn of(address: IpAddr) -> Option<Self> {
        match address {
            IpAddr::V4(v4) => Self::of_v4(v4),
            IpAddr::V6(v6) => Self::of_v6(v6),
        }
    }

    fn of_v4(address: Ipv4Addr) -> Option<Self> {
        let [a, b, c, _] = address.octets();
        Some(match address {
            // All of 0.0.0.0/8 is "this network": Linux connects 0.0.0.0 to the local host.
            _ if a == 0 => Self::Unspecified,
            _ if address.is_loopback() => Self::Loopback,
            _ if address.is_private() => Self::Private,
            _ if a == 100 && (64..128).contains(&b) => Self::SharedNat,
            _ if address.is_link_local() => Self::LinkLocal,
            _ if address.is_broadcast() => Self::Broadcast,
            _ if address.is_multicast() => Self::Multicast,
            _ if address.is_documentation() => Self::Documentation,
            _ if a == 192 && b == 0 && c == 0 => Self::Reserved,
            _ if a == 198 && (b == 18 || b == 19) => Self::Reserved,
            _ if a >= 240 => Self::Reserved,
            _ => return None,
        })
    }

    fn of_v6(address: Ipv6Addr) -> Option<Self> {
        // ::ffff:127.0.0.1 reaches 127.0.0.1.
        if let Some(v4) = address.to_ipv4_mapped() {
            return Self::of_v4(v4);
        }
        let segments = address.segments();
        let embedded = |high: u16, low: u16| Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        Some(match segments {
            _ if address.is_unspecified() => Self::Unspecified,
            _ if address.is_loopback() => Self::Loopback,
            // NAT64 (64:ff9b::/96) and 6to4 (2002::/16) reach the IPv4 address inside them, often
            // through a gateway on the local network.
            [0x64, 0xff9b, 0, 0, 0, 0, high, low] => return Self::of_v4(embedded(high, low)),
            [0x2002, high, low, ..] => return Self::of_v4(embedded(high, low)),
            // The deprecated IPv4-compatible ::a.b.c.d, and local-use NAT64 (64:ff9b:1::/48).
            [0, 0, 0, 0, 0, 0, _, _] | [0x64, 0xff9b, 1, ..] => Self::Reserved,
            // Discard-only.
            [0x100, 0, 0, 0, ..] => Self::Reserved,
            [0x2001, 0xdb8, ..] | [0x3fff, 0..=0x0fff, ..] => Self::Documentation,
            // IETF protocol assignments (2001::/23: Teredo, ORCHID, AMT…).
            [0x2001, second, ..] if second < 0x200 => Self::Reserved,
            [first, ..] if first & 0xfe00 == 0xfc00 => Self::Private,
            [first, ..] if first & 0xffc0 == 0xfe80 => Self::LinkLocal,
            [first, ..] if first & 0xffc0 == 0xfec0 => Self::Private,
            [first, ..] if first & 0xff00 == 0xff00 => Self::Multicast,
            _ => return None,
        })
    }

    /// For messages: "a loopback address".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Unspecified => "an unspecified address",
            Self::Loopback => "a loopback address",
            Self::Private => "a private address",
            Self::SharedNat => "a shared (carrier-grade NAT) address",
            Self::LinkLocal => "a link-local address",
            Self::Multicast => "a multicast address",
            Self::Broadcast => "the broadcast address",
            Self::Documentation => "a documentation address",
            Self::Reserved => "a reserved address",
        }
    }
}

/// A connection a redirect led to, refused. It travels through reqwest as the cause of its
/// error, and the fetcher turns it into [`super::SourceError::RedirectToLocal`].
#[derive(Debug, thiserror::Error)]
#[error("refused to follow a redirect to {target}: {address} is {}", kind.describe())]
pub(crate) struct Refused {
    /// The URL redirected to.
    pub target: String,
    pub address: IpAddr,
    pub kind: LocalAddress,
}

/// The rule for one fetch, made from its configured URL; the redirect policy and the resolver
/// of that fetch's client share it.
#[derive(Debug)]
pub(crate) struct RedirectGuard {
    /// The configured URL's host, when it is a name: reached whatever it resolves to.
    configured_host: Option<String>,
    /// The configured URL names a local address itself, so its redirects may go anywhere.
    local_allowed: bool,
    /// The redirect being followed, so that a refusal by the resolver, which sees only a host
    /// name, can name the URL.
    following: Mutex<Option<Url>>,
}

impl RedirectGuard {
    pub(crate) fn new(configured: &Url) -> Self {
        let (configured_host, local_allowed) = match configured.host() {
            Some(Host::Ipv4(address)) => (None, LocalAddress::of(address.into()).is_some()),
            Some(Host::Ipv6(address)) => (None, LocalAddress::of(address.into()).is_some()),
            Some(Host::Domain(name)) => {
                let name = normalize_host(name);
                // RFC 6761: these names are the local host, whatever a resolver says.
                let local = name == "localhost" || name.ends_with(".localhost");
                (Some(name), local)
            }
            None => (None, false),
        };
        Self { configured_host, local_allowed, following: Mutex::new(None) }
    }

    /// Whether this fetch may connect to `address`, which `host` (a name, or an address
    /// literal) stands for.
    pub(crate) fn check(&self, host: &str, address: IpAddr) -> Result<(), LocalAddress> {
        if self.local_allowed || self.configured_host.as_deref() == Some(normalize_host(host).as_str()) {
            return Ok(());
        }
        match LocalAddress::of(address) {
            Some(kind) => Err(kind),
            None => Ok(()),
        }
    }

    /// The redirect policy of this fetch: at most `max_redirects` redirects, none to a local
    /// address literal.
    pub(crate) fn policy(self: &Arc<Self>, max_redirects: usize) -> Policy {
        let guard = Arc::clone(self);
        let limit = Policy::limited(max_redirects);
        Policy::custom(move |attempt: Attempt<'_>| {
            let target = attempt.url().clone();
            let literal = match target.host() {
                Some(Host::Ipv4(address)) => Some(IpAddr::V4(address)),
                Some(Host::Ipv6(address)) => Some(IpAddr::V6(address)),
                Some(Host::Domain(_)) | None => None,
            };
            if let Some(address) = literal
                && let Err(kind) = guard.check(&address.to_string(), address)
            {
                return attempt.error(Refused { target: target.to_string(), address, kind });
            }
            *guard.following.lock().unwrap_or_else(PoisonError::into_inner) = Some(target);
            limit.redirect(attempt)
        })
    }

    /// The URL named when the resolver refuses `host`.
    fn target(&self, host: &str) -> String {
        match self.following.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            Some(url) => url.to_string(),
            None => host.to_string(),
        }
    }
}

/// Lower case, without the final dot of a fully qualified name.
fn normalize_host(host: &str) -> String {
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// A resolver that hands reqwest only the addresses this fetch may connect to: when a name
/// resolves to local addresses alone, the connection fails with [`Refused`].
pub(crate) struct GuardedResolver {
    pub guard: Arc<RedirectGuard>,
    pub lookup: Arc<dyn Resolve>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = Arc::clone(&self.guard);
        let host = name.as_str().to_string();
        let lookup = self.lookup.resolve(name);
        Box::pin(async move {
            let mut refused = None;
            let allowed: Vec<SocketAddr> = lookup
                .await?
                .filter(|address| match guard.check(&host, address.ip()) {
                    Ok(()) => true,
                    Err(kind) => {
                        refused.get_or_insert((address.ip(), kind));
                        false
                    }
                })
                .collect();
            match refused {
                Some((address, kind)) if allowed.is_empty() => {
                    Err(Box::new(Refused { target: guard.target(&host), address, kind }) as _)
                }
                _ => Ok(Box::new(allowed.into_iter()) as Addrs),
            }
        })
    }
}

/// The system's resolver (getaddrinfo, off the async threads), as reqwest's default is.
pub(crate) struct SystemLookup;

impl Resolve for SystemLookup {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn local_addresses_are_named() {
        use LocalAddress::*;
        let cases = [
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("10.1.2.3", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("192.168.1.1", Some(Private)),
            ("169.254.169.254", Some(LinkLocal)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(Unspecified)),
            ("100.64.0.1", Some(SharedNat)),
            ("224.0.0.1", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("192.0.2.1", Some(Documentation)),
            ("198.18.0.1", Some(Reserved)),
            ("240.0.0.1", Some(Reserved)),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:10.0.0.5", Some(Private)),
            ("64:ff9b::a9fe:a9fe", Some(LinkLocal)),
            ("2002:7f00:1::", Some(Loopback)),
            ("::127.0.0.1", Some(Reserved)),
            ("fc00::1", Some(Private)),
            ("fd12:3456::1", Some(Private)),
            ("fec0::1", Some(Private)),
            ("fe80::1", Some(LinkLocal)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("100::1", Some(Reserved)),
            // Public ones.
            ("93.184.215.14", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("8.8.8.8", None),
            ("::ffff:8.8.8.8", None),
            ("64:ff9b::808:808", None),
            ("2606:4700::1111", None),
            ("2a00:1450:4001::1", None),
        ];
        for (address, expected) in cases {
            assert_eq!(LocalAddress::of(ip(address)), expected, "{address}");
        }
    }

    #[test]
    fn a_public_feed_is_not_followed_to_a_local_address() {
        let guard = RedirectGuard::new(&Url::parse("https://feed.example.org/atom.xml").expect("url"));
        assert_eq!(guard.check("127.0.0.1", ip("127.0.0.1")), Err(LocalAddress::Loopback));
        assert_eq!(guard.check("elsewhere.example", ip("10.0.0.5")), Err(LocalAddress::Private));
        assert_eq!(guard.check("metadata.example", ip("169.254.169.254")), Err(LocalAddress::LinkLocal));
        assert_eq!(guard.check("::1", ip("::1")), Err(LocalAddress::Loopback));
        assert_eq!(guard.check("localhost", ip("127.0.0.1")), Err(LocalAddress::Loopback));
        assert_eq!(guard.check("cdn.example", ip("93.184.215.14")), Ok(()));
        // The configured host is the publisher's choice, whatever it resolves to.
        assert_eq!(guard.check("feed.example.org", ip("10.0.0.5")), Ok(()));
        assert_eq!(guard.check("FEED.example.org.", ip("127.0.0.1")), Ok(()));

        let guard = RedirectGuard::new(&Url::parse("http://93.184.215.14/feed").expect("url"));
        assert_eq!(guard.check("127.0.0.1", ip("127.0.0.1")), Err(LocalAddress::Loopback));
    }

    #[test]
    fn a_local_feed_may_be_followed_anywhere() {
        for configured in [
            "http://127.0.0.1:8080/feed",
            "http://10.0.0.5/feed",
            "http://[::1]/feed",
            "http://[fd00::5]/feed",
            "http://localhost:8080/feed",
            "http://feeds.localhost/",
        ] {
            let guard = RedirectGuard::new(&Url::parse(configured).expect("url"));
            for (host, address) in [("127.0.0.1", "127.0.0.1"), ("intranet.example", "10.9.8.7"), ("x", "fe80::1")] {
                assert_eq!(guard.check(host, ip(address)), Ok(()), "{configured} → {address}");
            }
        }
    }
}
