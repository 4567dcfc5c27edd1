//! The credentials of the web's guarded routes: `$GAZETTE_ADMIN_TOKEN` (the admin API, and
//! `/metrics`) and `$GAZETTE_METRICS_TOKEN` (`/metrics` alone), taken from the environment once
//! at start, and the check of a request's `Authorization: Bearer` against them. A token shorter
//! than [`MIN_TOKEN_CHARS`] is refused at start, and no error or log line holds a token.

use axum::http::{HeaderMap, header};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The shortest token gazette takes: 32 characters, what `openssl rand -hex 16` prints, is
/// beyond guessing over HTTP.
pub const MIN_TOKEN_CHARS: usize = 32;

pub const ADMIN_TOKEN_VAR: &str = "GAZETTE_ADMIN_TOKEN";
pub const METRICS_TOKEN_VAR: &str = "GAZETTE_METRICS_TOKEN";

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    #[error(
        "{variable} is shorter than {MIN_TOKEN_CHARS} characters; set it to a long random value (e.g. `openssl rand -hex 32`) or unset it"
    )]
    ShortToken { variable: &'static str },
}

impl AccessError {
    /// The environment variable at fault.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::ShortToken { variable } => variable,
        }
    }
}

/// The tokens the web accepts; either may be absent.
#[derive(Clone, Default)]
pub struct AccessTokens {
    /// Guards the admin API and `/metrics`; without it the API answers 401 to everyone.
    pub admin: Option<SecretString>,
    /// Guards `/metrics` alone, for a scraper that must not reach the admin API.
    pub metrics: Option<SecretString>,
}

impl std::fmt::Debug for AccessTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessTokens")
            .field("admin", &self.admin.as_ref().map(|_| "…"))
            .field("metrics", &self.metrics.as_ref().map(|_| "…"))
            .finish()
    }
}

impl AccessTokens {
    /// The tokens from the process's environment.
    pub fn from_env() -> Result<Self, AccessError> {
        Self::from_values(std::env::var(ADMIN_TOKEN_VAR).ok(), std::env::var(METRICS_TOKEN_VAR).ok())
    }

    /// The tokens from the variables' values: blank means unset; white space around a value is
    /// dropped, since a client's header loses it too.
    pub fn from_values(admin: Option<String>, metrics: Option<String>) -> Result<Self, AccessError> {
        Ok(Self { admin: token(ADMIN_TOKEN_VAR, admin)?, metrics: token(METRICS_TOKEN_VAR, metrics)? })
    }

    /// Whether `headers` carry the admin token.
    pub fn admits_admin(&self, headers: &HeaderMap) -> bool {
        bearer(headers).is_some_and(|given| self.admin.as_ref().is_some_and(|t| token_matches(given, t)))
    }

    /// Whether `/metrics` is served at all: only when some token guards it.
    pub fn metrics_on(&self) -> bool {
        self.admin.is_some() || self.metrics.is_some()
    }

    /// Whether `headers` carry a token that opens `/metrics`.
    pub fn admits_metrics(&self, headers: &HeaderMap) -> bool {
        let Some(given) = bearer(headers) else { return false };
        // Both are compared whatever the first gives, so the time taken does not say which one
        // a caller holds.
        [&self.metrics, &self.admin].into_iter().flatten().fold(false, |ok, t| ok | token_matches(given, t))
    }
}

fn token(variable: &'static str, value: Option<String>) -> Result<Option<SecretString>, AccessError> {
    let Some(value) = value else { return Ok(None) };
    let value = value.trim();
    if value.is_empty() {
        return Ok(None);
    }
    if value.chars().count() < MIN_TOKEN_CHARS {
        return Err(AccessError::ShortToken { variable });
    }
    Ok(Some(SecretString::from(value.to_owned())))
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
}

/// Compares digests in constant time: equal lengths, so the time taken says nothing about the
/// token, not even its length.
fn token_matches(given: &str, expected: &SecretString) -> bool {
    let given = Sha256::digest(given.as_bytes());
    let expected = Sha256::digest(expected.expose_secret().as_bytes());
    given.ct_eq(&expected).into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    const ADMIN: &str = "admin-0123456789abcdef0123456789abcdef";
    const METRICS: &str = "metrics-0123456789abcdef0123456789abcdef";

    fn with_bearer(token: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(&format!("Bearer {token}")).expect("header"));
        h
    }

    #[test]
    fn only_the_exact_token_matches() {
        let token = SecretString::from("s3cret-token-value");
        assert!(token_matches("s3cret-token-value", &token));
        assert!(!token_matches("s3cret-token-valu", &token));
        assert!(!token_matches("", &token));
    }

    #[test]
    fn metrics_open_to_either_token_and_the_api_to_the_admin_token_alone() {
        let tokens = AccessTokens::from_values(Some(ADMIN.into()), Some(format!(" {METRICS}\n"))).expect("tokens");
        assert!(tokens.metrics_on());
        assert!(tokens.admits_metrics(&with_bearer(METRICS)));
        assert!(tokens.admits_metrics(&with_bearer(ADMIN)));
        assert!(!tokens.admits_metrics(&with_bearer("metrics-0123456789abcdef0123456789abcdeX")));
        assert!(!tokens.admits_metrics(&HeaderMap::new()));
        assert!(tokens.admits_admin(&with_bearer(ADMIN)));
        assert!(!tokens.admits_admin(&with_bearer(METRICS)), "the metrics token opens nothing else");
        let mut basic = HeaderMap::new();
        basic.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic YWRtaW46cGFzcw=="));
        assert!(!tokens.admits_metrics(&basic));

        let none = AccessTokens::from_values(None, Some("  ".into())).expect("tokens");
        assert!(!none.metrics_on(), "a blank variable is no token");
        assert!(!none.admits_admin(&with_bearer("")));
    }

    #[test]
    fn a_short_token_is_refused_by_name_without_its_value() {
        let short = "s".repeat(MIN_TOKEN_CHARS - 1);
        let e = AccessTokens::from_values(Some(short.clone()), None).expect_err("too short");
        assert_eq!(e.variable(), ADMIN_TOKEN_VAR);
        let e = AccessTokens::from_values(Some(ADMIN.into()), Some(format!("{short}  "))).expect_err("too short");
        assert_eq!(e.variable(), METRICS_TOKEN_VAR);
        let message = e.to_string();
        assert!(message.contains("GAZETTE_METRICS_TOKEN") && message.contains("openssl rand -hex 32"), "{message}");
        assert!(!message.contains(&short), "{message}");
        assert!(AccessTokens::from_values(Some("s".repeat(MIN_TOKEN_CHARS)), None).is_ok());
    }
}
