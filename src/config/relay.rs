//! `[[relay]]`: one of several SMTP servers gazette hands messages to, each with its share of the
//! traffic (`weight`), a cap on connections to it and a rate of its own. Its URL comes from the
//! file or from a variable the file names (`url_env`), and is kept as a secret: what names a
//! relay in messages, logs and metrics is its `host:port` alone.

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::domain::{Rate, RateValue};

/// A relay, parsed.
#[derive(Debug, Clone)]
pub struct Relay {
    /// `smtp://` or `smtps://`, possibly with a user and password.
    pub url: SecretString,
    /// `host:port`, the only name the relay goes by outside this struct.
    pub server: String,
    /// Its share of the messages while every relay is up: whole, at least 1.
    pub weight: u32,
    /// Connections to it at most; `None` = only `[delivery] concurrency` bounds them.
    pub concurrency: Option<usize>,
    /// Messages a second to it at most, over every process on the store; `None` = no limit.
    pub rate: Option<Rate>,
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelay {
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default = "one")]
    weight: i64,
    concurrency: Option<i64>,
    #[serde(default = "no_rate")]
    rate: RateValue,
}

fn one() -> i64 {
    1
}

fn no_rate() -> RateValue {
    RateValue::Number(0)
}

/// What is wrong with one relay: the key at fault (`relay[2].url`) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub(super) struct RelayError {
    pub field: String,
    pub message: String,
}

impl RawRelay {
    /// The relay numbered `number` (from 1, as people count tables), its `url_env` looked up
    /// through `variable`.
    pub(super) fn parse(
        self,
        number: usize,
        variable: impl Fn(&str) -> Option<SecretString>,
    ) -> Result<Relay, RelayError> {
        let error = |key: &str, message: String| RelayError { field: format!("relay[{number}].{key}"), message };
        let (url, key) = match (self.url, self.url_env) {
            (Some(url), None) => (SecretString::from(url), "url"),
            (None, Some(name)) => {
                let url = variable(&name).ok_or_else(|| {
                    error("url_env", format!("the variable `{name}` it names is not set (or is empty)"))
                })?;
                (url, "url_env")
            }
            _ => {
                return Err(error(
                    "url",
                    "give exactly one of `url = \"smtps://user:pass@host:465\"` or `url_env = \"VARIABLE\"`".into(),
                ));
            }
        };
        // The message never repeats the URL, which may hold a password.
        let server = server_of(url.expose_secret()).ok_or_else(|| {
            error(key, "not an SMTP URL; write smtp://user:pass@host:587 or smtps://user:pass@host:465".into())
        })?;
        let weight = u32::try_from(self.weight)
            .ok()
            .filter(|w| *w >= 1)
            .ok_or_else(|| error("weight", "must be a whole number of at least 1".into()))?;
        let concurrency = self
            .concurrency
            .map(|c| usize::try_from(c).ok().filter(|c| *c >= 1))
            .map(|c| c.ok_or_else(|| error("concurrency", "must be a whole number of at least 1".into())))
            .transpose()?;
        let rate = self.rate.limit().map_err(|e| error("rate", format!("{e}; or 0 for no limit")))?;
        Ok(Relay { url, server, weight, concurrency, rate })
    }
}

/// `host:port` of an SMTP URL, with the port its scheme implies when none is written.
fn server_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    let default_port = match url.scheme() {
        "smtps" => 465,
        "smtp" => 587,
        _ => return None,
    };
    let host = url.host_str().filter(|h| !h.is_empty())?;
    Some(format!("{host}:{}", url.port().unwrap_or(default_port)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> RawRelay {
        toml::from_str(text).expect("a relay table")
    }

    fn none(_: &str) -> Option<SecretString> {
        None
    }

    #[test]
    fn a_relay_is_named_by_host_and_port_only() {
        let r = raw("url = \"smtps://u:hunter2@smtp1.example.org\"\nweight = 3\nconcurrency = 4\nrate = \"30/m\"")
            .parse(1, none)
            .expect("parses");
        assert_eq!(r.server, "smtp1.example.org:465");
        assert_eq!((r.weight, r.concurrency), (3, Some(4)));
        assert_eq!(r.rate, Some("30/m".parse().expect("rate")));
        assert!(!format!("{r:?}").contains("hunter2"));
    }

    #[test]
    fn defaults_are_weight_one_no_cap_and_no_rate() {
        let r = raw("url = \"smtp://relay.example.org:2525\"").parse(2, none).expect("parses");
        assert_eq!((r.server.as_str(), r.weight, r.concurrency, r.rate), ("relay.example.org:2525", 1, None, None));
    }

    #[test]
    fn url_env_is_looked_up_and_an_unset_one_is_named() {
        let set = |name: &str| (name == "RELAY_A").then(|| SecretString::from("smtp://x:y@a.example.org:25"));
        let r = raw("url_env = \"RELAY_A\"").parse(1, set).expect("parses");
        assert_eq!(r.server, "a.example.org:25");
        let e = raw("url_env = \"RELAY_B\"").parse(2, set).expect_err("unset");
        assert_eq!(e.field, "relay[2].url_env");
        assert!(e.message.contains("RELAY_B"), "{e}");
    }

    #[test]
    fn bad_values_are_named_by_key_and_never_echo_the_url() {
        let cases = [
            ("url = \"smtp://a:25\"\nurl_env = \"X\"", "relay[1].url"),
            ("weight = 2", "relay[1].url"),
            ("url = \"http://u:hunter2@a\"", "relay[1].url"),
            ("url = \"smtp://a\"\nweight = 0", "relay[1].weight"),
            ("url = \"smtp://a\"\nconcurrency = 0", "relay[1].concurrency"),
            ("url = \"smtp://a\"\nrate = \"fast\"", "relay[1].rate"),
        ];
        for (text, field) in cases {
            let e = raw(text).parse(1, none).err().unwrap_or_else(|| panic!("{text} is refused"));
            assert_eq!(e.field, field, "{text}");
            assert!(!e.message.contains("hunter2"), "{e}");
        }
    }
}
