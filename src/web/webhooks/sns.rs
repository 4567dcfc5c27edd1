//! Amazon SNS, which carries SES's notifications: a message (`Notification`,
//! `SubscriptionConfirmation`, `UnsubscribeConfirmation`) is taken only from a topic named in
//! `GAZETTE_SES_TOPIC_ARN` (anyone can publish to a topic of their own, and SNS signs that too),
//! and only with a valid signature: RSA over SNS's canonical string of the message's fields,
//! with SHA-1 (`SignatureVersion` 1) or SHA-256 (2), by the X.509 certificate at
//! `SigningCertURL`. That certificate is fetched over https, and only from an SNS host of
//! `amazonaws.com` ([`certificate_url`]), then kept by URL. A verified subscription confirmation
//! is followed by fetching its `SubscribeURL`, under the same rule.

use std::{collections::HashMap, sync::Mutex, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::{DateTime, Utc};
use rsa::{
    RsaPublicKey,
    pkcs1v15::{Signature, VerifyingKey},
    pkcs8::DecodePublicKey,
    signature::Verifier,
};
use serde::Deserialize;
use url::Url;
use x509_cert::{
    Certificate,
    der::{DecodePem, Encode},
};

use super::{SES_VAR, WebhookError, WebhookSetupError};

/// The hosts certificates and subscription confirmations are fetched from: `sns.REGION.` and
/// this suffix, nothing else.
pub const CERTIFICATE_HOSTS: &str = "sns.*.amazonaws.com";
const HOST_SUFFIX: &str = ".amazonaws.com";
/// SNS's certificates are a couple of kilobytes.
const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;
/// Certificates kept at once; SNS signs with one per region at a time.
const MAX_CACHED: usize = 32;
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The https client SNS is reached with: short timeouts and no redirects, since a redirect could
/// lead anywhere. The binary builds it as it is; tests add a resolver and their own CA.
pub fn sns_client_builder() -> reqwest::ClientBuilder {
    crate::sources::install_crypto_provider();
    reqwest::Client::builder()
        .user_agent(concat!("gazette/", env!("CARGO_PKG_VERSION")))
        .https_only(true)
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(FETCH_TIMEOUT)
        .timeout(FETCH_TIMEOUT)
}

/// The topics taken, the client and the certificates fetched so far.
pub(super) struct Sns {
    topics: Vec<String>,
    client: reqwest::Client,
    certificates: Mutex<HashMap<String, Cached>>,
}

#[derive(Clone)]
struct Cached {
    key: RsaPublicKey,
    not_after: DateTime<Utc>,
}

/// What a verified SNS message was.
pub(super) enum Delivered {
    /// A notification's `Message`: SES's JSON.
    Message(String),
    Subscribed,
    Unsubscribed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
enum Type {
    Notification,
    SubscriptionConfirmation,
    UnsubscribeConfirmation,
}

/// A message as SNS posts it; every field the signature covers.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Envelope {
    #[serde(rename = "Type")]
    kind: Type,
    message_id: String,
    topic_arn: String,
    message: String,
    timestamp: String,
    subject: Option<String>,
    token: Option<String>,
    #[serde(rename = "SubscribeURL")]
    subscribe_url: Option<String>,
    signature_version: String,
    signature: String,
    #[serde(rename = "SigningCertURL")]
    signing_cert_url: String,
}

impl Envelope {
    /// SNS's canonical string: each signed field's name and value on lines of their own, in
    /// this order, the subject only when there is one.
    fn canonical(&self) -> Result<String, WebhookError> {
        let missing = |field| WebhookError::Malformed(format!("a subscription message without {field}"));
        let mut fields: Vec<(&str, &str)> = vec![("Message", &self.message), ("MessageId", &self.message_id)];
        match self.kind {
            Type::Notification => {
                if let Some(subject) = &self.subject {
                    fields.push(("Subject", subject));
                }
                fields.extend([("Timestamp", self.timestamp.as_str()), ("TopicArn", &self.topic_arn)]);
            }
            Type::SubscriptionConfirmation | Type::UnsubscribeConfirmation => {
                let subscribe = self.subscribe_url.as_deref().ok_or_else(|| missing("SubscribeURL"))?;
                let token = self.token.as_deref().ok_or_else(|| missing("Token"))?;
                fields.extend([
                    ("SubscribeURL", subscribe),
                    ("Timestamp", &self.timestamp),
                    ("Token", token),
                    ("TopicArn", &self.topic_arn),
                ]);
            }
        }
        let kind = match self.kind {
            Type::Notification => "Notification",
            Type::SubscriptionConfirmation => "SubscriptionConfirmation",
            Type::UnsubscribeConfirmation => "UnsubscribeConfirmation",
        };
        fields.push(("Type", kind));
        Ok(fields.into_iter().map(|(k, v)| format!("{k}\n{v}\n")).collect())
    }
}

/// `text` as a URL gazette may fetch from SNS: https, on the default port, with no user
/// information, at a host `sns.REGION.amazonaws.com`. Anything else is refused before any
/// connection is made.
pub(super) fn certificate_url(text: &str) -> Result<Url, WebhookError> {
    let refused = WebhookError::Unverified("the certificate or confirmation URL is not an https URL of SNS");
    let url = Url::parse(text).map_err(|_| WebhookError::Unverified("the certificate URL is no URL"))?;
    let Some(url::Host::Domain(host)) = url.host() else { return Err(refused) };
    let region = host.strip_prefix("sns.").and_then(|h| h.strip_suffix(HOST_SUFFIX));
    let label = |l: &str| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let fine = url.scheme() == "https"
        && url.port().is_none()
        && url.username().is_empty()
        && url.password().is_none()
        && region.is_some_and(|r| r.split('.').all(label));
    if fine { Ok(url) } else { Err(refused) }
}

impl Sns {
    pub(super) fn new(topics: &str, client: reqwest::Client) -> Result<Self, WebhookSetupError> {
        let topics: Vec<String> =
            topics.split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
        if topics.is_empty() || topics.iter().any(|t| !t.starts_with("arn:") || t.contains(char::is_whitespace)) {
            return Err(WebhookSetupError::Invalid {
                variable: SES_VAR,
                reason: "must name SNS topics by ARN (arn:aws:sns:REGION:ACCOUNT:NAME), separated by commas",
            });
        }
        Ok(Self { topics, client, certificates: Mutex::new(HashMap::new()) })
    }

    /// Verifies a message and does what it asks: a notification's message is handed back, a
    /// subscription confirmation followed.
    pub(super) async fn receive(&self, body: &[u8], now: DateTime<Utc>) -> Result<Delivered, WebhookError> {
        let envelope: Envelope = serde_json::from_slice(body).map_err(WebhookError::json)?;
        if !self.topics.contains(&envelope.topic_arn) {
            return Err(WebhookError::Unverified("a topic that is not configured"));
        }
        let url = certificate_url(&envelope.signing_cert_url)?;
        let signature = STANDARD
            .decode(envelope.signature.trim())
            .ok()
            .and_then(|s| Signature::try_from(s.as_slice()).ok())
            .ok_or(WebhookError::Unverified("the signature is not base64"))?;
        let signed = envelope.canonical()?;
        let key = self.key(&url, now).await?;
        let valid = match envelope.signature_version.as_str() {
            "1" => VerifyingKey::<sha1::Sha1>::new(key).verify(signed.as_bytes(), &signature).is_ok(),
            "2" => VerifyingKey::<sha2::Sha256>::new(key).verify(signed.as_bytes(), &signature).is_ok(),
            _ => return Err(WebhookError::Unverified("an unknown signature version")),
        };
        if !valid {
            return Err(WebhookError::Unverified("wrong signature"));
        }
        match envelope.kind {
            Type::Notification => Ok(Delivered::Message(envelope.message)),
            Type::SubscriptionConfirmation => {
                let subscribe = certificate_url(envelope.subscribe_url.as_deref().unwrap_or_default())?;
                let response = self.client.get(subscribe).send().await.map_err(unreachable)?;
                if !response.status().is_success() {
                    return Err(WebhookError::Unreachable(format!("the subscription answered {}", response.status())));
                }
                Ok(Delivered::Subscribed)
            }
            Type::UnsubscribeConfirmation => Ok(Delivered::Unsubscribed),
        }
    }

    /// The public key of the certificate at `url`, fetched once and kept while it is valid.
    async fn key(&self, url: &Url, now: DateTime<Utc>) -> Result<RsaPublicKey, WebhookError> {
        let cached = self.certificates.lock().ok().and_then(|c| c.get(url.as_str()).cloned());
        if let Some(c) = cached.filter(|c| c.not_after > now) {
            return Ok(c.key);
        }
        let fetched = self.fetch(url, now).await?;
        if let Ok(mut certificates) = self.certificates.lock() {
            if certificates.len() >= MAX_CACHED {
                certificates.clear();
            }
            certificates.insert(url.as_str().to_owned(), fetched.clone());
        }
        Ok(fetched.key)
    }

    async fn fetch(&self, url: &Url, now: DateTime<Utc>) -> Result<Cached, WebhookError> {
        let mut response = self.client.get(url.clone()).send().await.map_err(unreachable)?;
        if !response.status().is_success() {
            return Err(WebhookError::Unreachable(format!("the certificate URL answered {}", response.status())));
        }
        let mut pem = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
            if pem.len() + chunk.len() > MAX_CERTIFICATE_BYTES {
                return Err(WebhookError::Unverified("the certificate is too large"));
            }
            pem.extend_from_slice(&chunk);
        }
        read_certificate(&pem, now)
    }
}

/// The RSA key of a PEM certificate valid at `now`.
fn read_certificate(pem: &[u8], now: DateTime<Utc>) -> Result<Cached, WebhookError> {
    let bad = WebhookError::Unverified("the signing certificate cannot be read");
    let certificate = Certificate::from_pem(pem).map_err(|_| bad)?;
    let validity = &certificate.tbs_certificate.validity;
    let time = |t: x509_cert::time::Time| {
        i64::try_from(t.to_unix_duration().as_secs()).ok().and_then(|s| DateTime::from_timestamp(s, 0))
    };
    let (Some(not_before), Some(not_after)) = (time(validity.not_before), time(validity.not_after)) else {
        return Err(WebhookError::Unverified("the signing certificate cannot be read"));
    };
    if now < not_before || now > not_after {
        return Err(WebhookError::Unverified("the signing certificate is not valid now"));
    }
    let der = certificate
        .tbs_certificate
        .subject_public_key_info
        .to_der()
        .map_err(|_| WebhookError::Unverified("the signing certificate cannot be read"))?;
    let key = RsaPublicKey::from_public_key_der(&der)
        .map_err(|_| WebhookError::Unverified("the signing certificate holds no RSA key"))?;
    Ok(Cached { key, not_after })
}

/// A fetch that failed, said without the URL's query (a subscription token).
fn unreachable(e: reqwest::Error) -> WebhookError {
    WebhookError::Unreachable(e.without_url().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_urls_of_sns_hosts_are_fetched() {
        for fine in [
            "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-abc.pem",
            "https://sns.eu-west-3.amazonaws.com:443/cert.pem",
        ] {
            assert!(certificate_url(fine).is_ok(), "{fine}");
        }
        for refused in [
            "https://evil.example/cert.pem",
            "http://sns.us-east-1.amazonaws.com/cert.pem",
            "https://sns.us-east-1.amazonaws.com.evil.example/cert.pem",
            "https://sns.us-east-1.amazonaws.com:8443/cert.pem",
            "https://user@sns.us-east-1.amazonaws.com/cert.pem",
            "https://s3.amazonaws.com/cert.pem",
            "https://sns.amazonaws.com/cert.pem",
            "https://evilamazonaws.com/cert.pem",
            "https://sns.x.evilamazonaws.com/cert.pem",
            "https://127.0.0.1/cert.pem",
            "file:///etc/passwd",
            "not a url",
        ] {
            assert!(certificate_url(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_canonical_string_has_the_fields_of_the_message_type() {
        let notification = Envelope {
            kind: Type::Notification,
            message_id: "m1".into(),
            topic_arn: "arn:aws:sns:us-east-1:123456789012:ses".into(),
            message: "{}".into(),
            timestamp: "2024-03-18T13:00:00.000Z".into(),
            subject: None,
            token: None,
            subscribe_url: None,
            signature_version: "1".into(),
            signature: String::new(),
            signing_cert_url: String::new(),
        };
        assert_eq!(
            notification.canonical().expect("canonical"),
            "Message\n{}\nMessageId\nm1\nTimestamp\n2024-03-18T13:00:00.000Z\nTopicArn\narn:aws:sns:us-east-1:123456789012:ses\nType\nNotification\n"
        );
        let confirmation = Envelope {
            kind: Type::SubscriptionConfirmation,
            token: Some("t".into()),
            subscribe_url: Some("https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription".into()),
            ..notification
        };
        assert_eq!(
            confirmation.canonical().expect("canonical"),
            "Message\n{}\nMessageId\nm1\nSubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription\n\
             Timestamp\n2024-03-18T13:00:00.000Z\nToken\nt\nTopicArn\narn:aws:sns:us-east-1:123456789012:ses\nType\nSubscriptionConfirmation\n"
        );
    }

    #[test]
    fn topics_are_named_by_arn() {
        let client = sns_client_builder().build().expect("a client");
        assert!(Sns::new("arn:aws:sns:us-east-1:123456789012:ses", client.clone()).is_ok());
        assert!(Sns::new("arn:aws:sns:us-east-1:1:a, arn:aws:sns:eu-west-1:1:b", client.clone()).is_ok());
        assert!(Sns::new("ses-bounces", client.clone()).is_err());
        assert!(Sns::new(" , ", client).is_err());
    }
}
