//! The file's shape for serde, then the checks serde cannot make, each error turned into a
//! `ConfigError` with the line and the key at fault.

use std::{
    net::SocketAddr,
    ops::Range,
    path::{Path, PathBuf},
    str::FromStr,
};

use chrono_tz::Tz;
use secrecy::SecretString;
use serde::Deserialize;
use toml::Spanned;
use url::Url;

use super::{
    Approval, Bounces, Config, ConfigError, Delivery, Dkim, Edition, Environment, FeedLocation, ImapUrl, ListSetting,
    Publication, Review, Schedule, Selection, Sender, Shaping, SourceSetting, Storage, Topic, Transport, Web,
    relay::RawRelay,
};
use crate::domain::{
    Duration, EditionName, EmailAddress, ListName, RateLimits, RateValue, ReturnPath, Share, TopicName,
};

const DEFAULT_SUBJECT: &str = "{{ publication.name }}: {{ issue.date | date(format='%-d %B %Y') }}";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    publication: RawPublication,
    #[serde(default, rename = "source")]
    sources: Vec<Spanned<RawSource>>,
    #[serde(default)]
    selection: RawSelection,
    schedule: Option<RawSchedule>,
    #[serde(default, rename = "list")]
    lists: Vec<Spanned<RawList>>,
    templates: Option<RawTemplates>,
    #[serde(default)]
    delivery: RawDelivery,
    #[serde(default)]
    shaping: Vec<Spanned<RawShaping>>,
    dkim: Option<RawDkim>,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    web: RawWeb,
    bounces: Option<RawBounces>,
    #[serde(default, rename = "relay")]
    relays: Vec<Spanned<RawRelay>>,
    review: Option<RawReview>,
    #[serde(default, rename = "edition")]
    editions: Vec<Spanned<RawEdition>>,
    #[serde(default, rename = "topic")]
    topics: Vec<Spanned<RawTopic>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEdition {
    name: Spanned<String>,
    cron: Option<Spanned<String>>,
    max_age: Option<Duration>,
    catch_up: Option<Duration>,
    default: Option<Spanned<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTopic {
    name: Spanned<String>,
    tags: Spanned<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublication {
    name: Spanned<String>,
    from: Spanned<String>,
    reply_to: Option<EmailAddress>,
    unsubscribe_mailto: Option<EmailAddress>,
    base_url: Option<Spanned<String>>,
    #[serde(default)]
    timezone: Option<Spanned<String>>,
    subject: Option<String>,
    #[serde(default = "no_lists")]
    lists: Spanned<Vec<ListName>>,
    postal_address: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSource {
    feed: Option<String>,
    folder: Option<String>,
    #[serde(default)]
    optional: bool,
    name: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelection {
    #[serde(default = "default_max_age")]
    max_age: Duration,
    #[serde(default = "default_max_items")]
    max_items: Spanned<i64>,
    #[serde(default = "yes")]
    since_last_issue: bool,
    #[serde(default)]
    include_tags: Vec<String>,
    #[serde(default)]
    exclude_tags: Vec<String>,
    #[serde(default)]
    send_when_empty: bool,
}

impl Default for RawSelection {
    fn default() -> Self {
        Self {
            max_age: default_max_age(),
            max_items: Spanned::new(0..0, 10),
            since_last_issue: true,
            include_tags: Vec::new(),
            exclude_tags: Vec::new(),
            send_when_empty: false,
        }
    }
}

fn default_max_age() -> Duration {
    Duration::from_secs(7 * 86_400)
}
fn default_max_items() -> Spanned<i64> {
    Spanned::new(0..0, 10)
}
fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSchedule {
    cron: Spanned<String>,
    #[serde(default = "default_catch_up")]
    catch_up: Duration,
}

fn default_catch_up() -> Duration {
    Duration::from_secs(86_400)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawList {
    name: ListName,
    file: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTemplates {
    dir: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDelivery {
    transport: Option<Spanned<RawTransport>>,
    smtp_url: Option<Spanned<String>>,
    #[serde(default = "default_outbox")]
    outbox: String,
    #[serde(default = "default_concurrency")]
    concurrency: Spanned<i64>,
    #[serde(default = "no_rate")]
    rate: Spanned<RateValue>,
    #[serde(default = "default_max_attempts")]
    max_attempts: Spanned<i64>,
    #[serde(default = "default_retry_backoff")]
    retry_backoff: Duration,
    #[serde(default = "default_lease")]
    lease: Duration,
    #[serde(default = "default_timeout")]
    timeout: Duration,
    #[serde(default = "default_throttle_timeout")]
    throttle_timeout: Duration,
    #[serde(default = "default_queue_chunk")]
    queue_chunk: Spanned<i64>,
    ca_file: Option<String>,
}

impl Default for RawDelivery {
    fn default() -> Self {
        Self {
            transport: None,
            smtp_url: None,
            outbox: default_outbox(),
            concurrency: default_concurrency(),
            rate: no_rate(),
            max_attempts: default_max_attempts(),
            retry_backoff: default_retry_backoff(),
            lease: default_lease(),
            timeout: default_timeout(),
            throttle_timeout: default_throttle_timeout(),
            queue_chunk: default_queue_chunk(),
            ca_file: None,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawShaping {
    domains: Spanned<Vec<String>>,
    concurrency: Option<Spanned<i64>>,
    #[serde(default = "no_rate")]
    rate: Spanned<RateValue>,
}

#[derive(Deserialize, Default, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum RawTransport {
    Smtp,
    #[default]
    Outbox,
}

fn no_lists() -> Spanned<Vec<ListName>> {
    Spanned::new(0..0, Vec::new())
}
fn no_rate() -> Spanned<RateValue> {
    Spanned::new(0..0, RateValue::Number(0))
}
fn default_outbox() -> String {
    "outbox".into()
}
fn default_concurrency() -> Spanned<i64> {
    Spanned::new(0..0, 8)
}
fn default_max_attempts() -> Spanned<i64> {
    Spanned::new(0..0, 6)
}
fn default_retry_backoff() -> Duration {
    Duration::from_secs(60)
}
fn default_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_queue_chunk() -> Spanned<i64> {
    Spanned::new(0..0, 10_000)
}
fn default_throttle_timeout() -> Duration {
    Duration::from_secs(600)
}
fn default_lease() -> Duration {
    Duration::from_secs(30)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDkim {
    domain: Spanned<String>,
    selector: String,
    private_key_file: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    #[serde(default = "default_database_url")]
    database_url: String,
    #[serde(default = "default_pool_size")]
    pool_size: Spanned<i64>,
}

impl Default for RawStorage {
    fn default() -> Self {
        Self { database_url: default_database_url(), pool_size: default_pool_size() }
    }
}

fn default_pool_size() -> Spanned<i64> {
    Spanned::new(0..0, 10)
}

fn default_database_url() -> String {
    "sqlite://gazette.db".into()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWeb {
    #[serde(default = "default_listen")]
    listen: Spanned<String>,
    #[serde(default = "default_subscribe_rate")]
    subscribe_rate: Spanned<RateValue>,
    #[serde(default)]
    welcome: bool,
    #[serde(default)]
    trust_forwarded: bool,
}

impl Default for RawWeb {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            subscribe_rate: default_subscribe_rate(),
            welcome: false,
            trust_forwarded: false,
        }
    }
}

fn default_listen() -> Spanned<String> {
    Spanned::new(0..0, "127.0.0.1:8080".into())
}
fn default_subscribe_rate() -> Spanned<RateValue> {
    Spanned::new(0..0, RateValue::Text("5/m".into()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBounces {
    return_path: Option<Spanned<String>>,
    soft_limit: Option<Spanned<i64>>,
    soft_window: Option<Duration>,
    max_bounce_rate: Option<Share>,
    max_complaint_rate: Option<Share>,
    maildir: Option<Spanned<String>>,
    imap_url: Option<Spanned<String>>,
    imap_ca_file: Option<Spanned<String>>,
    poll: Option<Spanned<Duration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawReview {
    editors: Option<Spanned<Vec<EmailAddress>>>,
    lead: Option<Spanned<Duration>>,
    approval: Option<Spanned<String>>,
}

/// Turns byte spans into line numbers and keys for messages.
struct Locator<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Locator<'_> {
    fn line_of(&self, span: &Range<usize>) -> Option<usize> {
        (span.end > 0 || span.start > 0).then(|| self.text[..span.start.min(self.text.len())].matches('\n').count() + 1)
    }

    fn error(&self, span: Option<Range<usize>>, field: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            file: self.file.to_owned(),
            line: span.as_ref().and_then(|s| self.line_of(s)),
            field: Some(field.to_owned()),
            message: format!("{field}: {}", message.into()),
        }
    }

    /// The dotted key at a line: the nearest table header above it and the key on the line.
    fn key_at(&self, line: usize) -> Option<String> {
        let lines: Vec<&str> = self.text.lines().collect();
        let here = lines.get(line.checked_sub(1)?)?.trim();
        let key = here.split_once('=').map(|(k, _)| k.trim().to_owned());
        let table = lines[..line.saturating_sub(1)]
            .iter()
            .rev()
            .map(|l| l.trim())
            .find(|l| l.starts_with('['))
            .map(|l| l.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        if here.starts_with('[') {
            return Some(here.trim_matches(|c| c == '[' || c == ']').trim().to_owned());
        }
        match (table, key) {
            (Some(t), Some(k)) => Some(format!("{t}.{k}")),
            (None, Some(k)) => Some(k),
            (Some(t), None) => Some(t),
            (None, None) => None,
        }
    }
}

pub(super) fn parse(text: &str, file: &Path, env: &Environment) -> Result<Config, ConfigError> {
    let at = Locator { text, file };
    let raw: RawConfig = toml::from_str(text).map_err(|e| {
        let line = e.span().and_then(|s| at.line_of(&s));
        let field = line.and_then(|l| at.key_at(l));
        let message = e.message().trim().to_owned();
        ConfigError::Invalid {
            file: file.to_owned(),
            line,
            message: match &field {
                Some(f) => format!("{f}: {message}"),
                None => message,
            },
            field,
        }
    })?;
    let folder = file.parent().map(Path::to_owned).unwrap_or_default();
    let resolve = |p: &str| -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() { p.to_owned() } else { folder.join(p) }
    };

    let p = raw.publication;
    if p.name.get_ref().trim().is_empty() || has_line_break(p.name.get_ref()) {
        return Err(at.error(Some(p.name.span()), "publication.name", "give a name on one line"));
    }
    let from = parse_sender(p.from.get_ref()).map_err(|m| at.error(Some(p.from.span()), "publication.from", m))?;
    let base_url = match &p.base_url {
        Some(u) => parse_http_url(u.get_ref()).map_err(|m| at.error(Some(u.span()), "publication.base_url", m))?,
        None => Url::parse("http://127.0.0.1:8080/").expect("a literal URL parses"),
    };
    let timezone = match &p.timezone {
        Some(tz) => super::timezone::parse(tz.get_ref())
            .map_err(|why| at.error(Some(tz.span()), "publication.timezone", why))?,
        None => Tz::UTC,
    };

    let mut lists = Vec::new();
    for l in &raw.lists {
        if lists.iter().any(|x: &ListSetting| x.name == l.get_ref().name) {
            return Err(at.error(
                Some(l.span()),
                "list.name",
                format!("the list `{}` is defined twice", l.get_ref().name),
            ));
        }
        lists.push(ListSetting { name: l.get_ref().name.clone(), file: l.get_ref().file.as_deref().map(resolve) });
    }
    if p.lists.get_ref().is_empty() && !lists.is_empty() {
        return Err(at.error(
            Some(p.lists.span()),
            "publication.lists",
            "name the lists this publication sends to, e.g. lists = [\"weekly\"]",
        ));
    }

    let mut sources = Vec::new();
    for (i, s) in raw.sources.iter().enumerate() {
        let field = format!("source[{}]", i + 1);
        let src = s.get_ref();
        let name = src.name.as_ref().map(|n| source_name(n, &at, &field)).transpose()?;
        let setting = match (&src.feed, &src.folder) {
            (Some(feed), None) => SourceSetting::Feed {
                location: if feed.starts_with("http://") || feed.starts_with("https://") {
                    FeedLocation::Url(
                        parse_http_url(feed).map_err(|m| at.error(Some(s.span()), &format!("{field}.feed"), m))?,
                    )
                } else {
                    FeedLocation::File(resolve(feed))
                },
                optional: src.optional,
                name,
            },
            (None, Some(folder)) => {
                if src.optional {
                    return Err(at.error(Some(s.span()), &format!("{field}.optional"), "only a feed can be optional"));
                }
                SourceSetting::Folder { path: resolve(folder), name }
            }
            _ => {
                return Err(at.error(
                    Some(s.span()),
                    &field,
                    "give exactly one of `feed = \"URL or file\"` or `folder = \"articles\"`",
                ));
            }
        };
        sources.push(setting);
    }

    let sel = raw.selection;
    let max_items = positive(&sel.max_items, &at, "selection.max_items")?;
    let selection = Selection {
        max_age: sel.max_age,
        max_items,
        since_last_issue: sel.since_last_issue,
        include_tags: sel.include_tags,
        exclude_tags: sel.exclude_tags,
        send_when_empty: sel.send_when_empty,
    };

    let schedule = match &raw.schedule {
        Some(s) => {
            if let Some(e) = raw.editions.first() {
                return Err(at.error(
                    Some(e.span()),
                    "edition",
                    "with [[edition]], each edition has its own `cron`: move [schedule]'s `cron` into the edition it belongs to and remove [schedule]",
                ));
            }
            let (cron, expression) = cron_of(&s.cron, &at, "schedule.cron")?;
            Some(Schedule { cron, expression, catch_up: s.catch_up })
        }
        None => None,
    };
    let editions = editions(&raw.editions, &at, selection.max_age)?;
    let topics = topics(&raw.topics, &at)?;

    let d = raw.delivery;
    let smtp_url = env.smtp_url.clone().or_else(|| d.smtp_url.as_ref().map(|u| u.get_ref().clone()));
    if let Some(u) = &smtp_url {
        // Checked here so a typo is caught by `check`; the message never repeats the URL, which may hold a password.
        let span = d.smtp_url.as_ref().map(|s| s.span());
        let ok = Url::parse(u).ok().filter(|u| matches!(u.scheme(), "smtp" | "smtps") && u.host_str().is_some());
        if ok.is_none() {
            return Err(at.error(
                span,
                "delivery.smtp_url",
                "not an SMTP URL; write smtp://user:pass@host:587 or smtps://user:pass@host:465 (or set $GAZETTE_SMTP_URL)",
            ));
        }
    }
    let relays = relays(raw.relays, &at, env)?;
    if let Some(first) = relays.first() {
        let origin = if env.smtp_url.is_some() { "$GAZETTE_SMTP_URL" } else { "delivery.smtp_url" };
        if smtp_url.is_some() {
            return Err(at.error(
                Some(first.0.clone()),
                "relay",
                format!("[[relay]] and {origin} are both set; keep one of them (the relays replace smtp_url)"),
            ));
        }
        if let Some(t) = d.transport.as_ref().filter(|t| matches!(t.get_ref(), RawTransport::Outbox)) {
            return Err(at.error(
                Some(t.span()),
                "delivery.transport",
                "transport = \"outbox\" and [[relay]] disagree; [[relay]] sends by SMTP",
            ));
        }
    }
    let transport = match d.transport.as_ref().map(|t| *t.get_ref()) {
        _ if !relays.is_empty() => Transport::Smtp,
        Some(RawTransport::Smtp) => Transport::Smtp,
        Some(RawTransport::Outbox) | None => Transport::Outbox,
    };
    if transport == Transport::Smtp && smtp_url.is_none() && relays.is_empty() {
        return Err(at.error(None, "delivery.smtp_url", "transport = \"smtp\" needs smtp_url (or $GAZETTE_SMTP_URL)"));
    }
    let delivery = Delivery {
        transport,
        smtp_url: smtp_url.map(SecretString::from),
        relays: relays.into_iter().map(|(_, r)| r).collect(),
        outbox: resolve(&d.outbox),
        concurrency: positive(&d.concurrency, &at, "delivery.concurrency")?,
        rate: d
            .rate
            .get_ref()
            .limit()
            .map_err(|e| at.error(Some(d.rate.span()), "delivery.rate", format!("{e}; or 0 for no limit")))?,
        max_attempts: u32::try_from(positive(&d.max_attempts, &at, "delivery.max_attempts")?)
            .map_err(|_| at.error(Some(d.max_attempts.span()), "delivery.max_attempts", "too large"))?,
        retry_backoff: d.retry_backoff,
        lease: d.lease,
        timeout: d.timeout,
        throttle_timeout: d.throttle_timeout,
        queue_chunk: positive(&d.queue_chunk, &at, "delivery.queue_chunk")?,
        ca_file: d.ca_file.as_deref().map(resolve),
    };

    let shaping = shaping(&raw.shaping, &at)?;

    let dkim = match raw.dkim {
        Some(k) => {
            let domain = k.domain.get_ref().trim().to_lowercase();
            if domain != from.address.domain() && !from.address.domain().ends_with(&format!(".{domain}")) {
                return Err(at.error(
                    Some(k.domain.span()),
                    "dkim.domain",
                    format!("`{domain}` is not aligned with the From domain `{}`", from.address.domain()),
                ));
            }
            Some(Dkim { domain, selector: k.selector, private_key_file: resolve(&k.private_key_file) })
        }
        None => None,
    };

    // Beyond any server's connection limit, a number is a typo rather than a setting.
    let pool_size = u32::try_from(positive(&raw.storage.pool_size, &at, "storage.pool_size")?)
        .ok()
        .filter(|n| *n <= 1000)
        .ok_or_else(|| at.error(Some(raw.storage.pool_size.span()), "storage.pool_size", "must be at most 1000"))?;
    let database_url = env.database_url.clone().unwrap_or(raw.storage.database_url);
    let database_url = anchor_sqlite_url(&database_url, &folder);

    let subscribe_rate = raw
        .web
        .subscribe_rate
        .get_ref()
        .rate()
        .map_err(|e| at.error(Some(raw.web.subscribe_rate.span()), "web.subscribe_rate", e.to_string()))?;

    let listen: SocketAddr = raw.web.listen.get_ref().parse().map_err(|_| {
        at.error(Some(raw.web.listen.span()), "web.listen", "write an address and port, like 127.0.0.1:8080")
    })?;

    let bounces = bounces(raw.bounces, &at, env, &resolve)?;
    let review = raw.review.map(|r| review(r, &at)).transpose()?;

    Ok(Config {
        file: file.to_owned(),
        publication: Publication {
            name: p.name.into_inner().trim().to_owned(),
            from,
            reply_to: p.reply_to,
            unsubscribe_mailto: p.unsubscribe_mailto,
            base_url,
            timezone,
            subject: p.subject.unwrap_or_else(|| DEFAULT_SUBJECT.to_owned()),
            lists: p.lists.into_inner(),
            postal_address: p.postal_address.filter(|a| !a.trim().is_empty()),
        },
        sources,
        selection,
        schedule,
        lists,
        templates_dir: raw.templates.map(|t| resolve(&t.dir)),
        delivery,
        shaping,
        dkim,
        storage: Storage { database_url: SecretString::from(database_url), pool_size },
        web: Web { listen, subscribe_rate, welcome: raw.web.welcome, trust_forwarded: raw.web.trust_forwarded },
        bounces,
        review,
        editions,
        topics,
    })
}

/// A six-field cron expression, with a suggestion when it has crontab's five.
fn cron_of(raw: &Spanned<String>, at: &Locator<'_>, field: &str) -> Result<(cron::Schedule, String), ConfigError> {
    let expression = raw.get_ref().trim().to_owned();
    let cron = cron::Schedule::from_str(&expression).map_err(|e| {
        let message = match crontab_suggestion(&expression) {
            Some(suggestion) => format!(
                "`{expression}` has five fields, as crontab writes them; gazette's schedules take six fields, seconds first: write \"{suggestion}\""
            ),
            None => format!(
                "`{expression}` is not a schedule ({e}); write six fields, seconds first, with day names: \"0 0 9 * * Mon\""
            ),
        };
        at.error(Some(raw.span()), field, message)
    })?;
    Ok((cron, expression))
}

fn editions(raw: &[Spanned<RawEdition>], at: &Locator<'_>, max_age: Duration) -> Result<Vec<Edition>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, e) in raw.iter().enumerate() {
        let field = format!("edition[{}]", i + 1);
        let e = e.get_ref();
        let name: EditionName = e.name.get_ref().parse().map_err(|err: crate::domain::ChoiceNameError| {
            at.error(Some(e.name.span()), &format!("{field}.name"), err.to_string())
        })?;
        let schedule = match &e.cron {
            Some(c) => {
                let (cron, expression) = cron_of(c, at, &format!("{field}.cron"))?;
                Some(Schedule { cron, expression, catch_up: e.catch_up.unwrap_or_else(default_catch_up) })
            }
            None => None,
        };
        out.push(Edition { name, schedule, max_age: e.max_age.unwrap_or(max_age), default: false });
    }
    let names: Vec<EditionName> = out.iter().map(|e| e.name.clone()).collect();
    super::choices::unique(&names)
        .map_err(|err| at.error(raw.get(1).map(Spanned::span), "edition.name", err.to_string()))?;
    let marked: Vec<bool> = raw.iter().map(|e| e.get_ref().default.as_ref().is_some_and(|d| *d.get_ref())).collect();
    let chosen = super::choices::default_of(&names, &marked).map_err(|err| {
        let span = raw
            .iter()
            .rev()
            .find_map(|e| e.get_ref().default.as_ref().filter(|d| *d.get_ref()))
            .map(Spanned::span)
            .or_else(|| raw.first().map(Spanned::span));
        at.error(span, "edition.default", err.to_string())
    })?;
    if let Some(i) = chosen {
        out[i].default = true;
    }
    Ok(out)
}

fn topics(raw: &[Spanned<RawTopic>], at: &Locator<'_>) -> Result<Vec<Topic>, ConfigError> {
    let mut out = Vec::with_capacity(raw.len());
    for (i, t) in raw.iter().enumerate() {
        let field = format!("topic[{}]", i + 1);
        let t = t.get_ref();
        let name: TopicName = t.name.get_ref().parse().map_err(|err: crate::domain::ChoiceNameError| {
            at.error(Some(t.name.span()), &format!("{field}.name"), err.to_string())
        })?;
        let tags = super::choices::tags(t.tags.get_ref())
            .map_err(|err| at.error(Some(t.tags.span()), &format!("{field}.tags"), err.to_string()))?;
        if out.iter().any(|o: &Topic| o.name.key() == name.key()) {
            return Err(at.error(
                Some(t.name.span()),
                &format!("{field}.name"),
                super::choices::ChoiceError::Repeated(name.to_string()).to_string(),
            ));
        }
        out.push(Topic { name, tags });
    }
    Ok(out)
}

fn review(r: RawReview, at: &Locator<'_>) -> Result<Review, ConfigError> {
    let editors = r.editors.as_ref().map(|e| e.get_ref().clone()).unwrap_or_default();
    if editors.is_empty() {
        return Err(at.error(
            r.editors.as_ref().map(Spanned::span),
            "review.editors",
            "name at least one editor, like [\"editor@example.org\"]; they get each draft by mail",
        ));
    }
    let lead = match &r.lead {
        Some(l) if l.get_ref().std().is_zero() => {
            return Err(at.error(Some(l.span()), "review.lead", "must be longer than 0s, like \"24h\""));
        }
        Some(l) => *l.get_ref(),
        None => Review::DEFAULT_LEAD,
    };
    let approval = match &r.approval {
        Some(a) => a.get_ref().parse::<Approval>().map_err(|e| at.error(Some(a.span()), "review.approval", e))?,
        None => Approval::Required,
    };
    Ok(Review { editors, lead, approval })
}

fn shaping(groups: &[Spanned<RawShaping>], at: &Locator<'_>) -> Result<Vec<Shaping>, ConfigError> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(groups.len());
    for (i, g) in groups.iter().enumerate() {
        let field = format!("shaping[{}]", i + 1);
        let g = g.get_ref();
        let domains = super::shaping::domains(g.domains.get_ref(), &mut seen)
            .map_err(|e| at.error(Some(g.domains.span()), &format!("{field}.domains"), e.to_string()))?;
        let concurrency =
            g.concurrency.as_ref().map(|c| positive(c, at, &format!("{field}.concurrency"))).transpose()?;
        let rate =
            g.rate.get_ref().limit().map_err(|e| {
                at.error(Some(g.rate.span()), &format!("{field}.rate"), format!("{e}; or 0 for no limit"))
            })?;
        out.push(Shaping { domains, concurrency, rate });
    }
    Ok(out)
}

fn bounces(
    b: Option<RawBounces>,
    at: &Locator<'_>,
    env: &Environment,
    resolve: &dyn Fn(&str) -> PathBuf,
) -> Result<Bounces, ConfigError> {
    let defaults = Bounces::default();
    let b = b.unwrap_or(RawBounces {
        return_path: None,
        soft_limit: None,
        soft_window: None,
        maildir: None,
        imap_url: None,
        imap_ca_file: None,
        poll: None,
        max_bounce_rate: None,
        max_complaint_rate: None,
    });
    let return_path = match &b.return_path {
        Some(p) => Some(p.get_ref().parse::<ReturnPath>().map_err(|e| {
            at.error(
                Some(p.span()),
                "bounces.return_path",
                format!("{e}; write an address of yours, like \"bounces@example.org\""),
            )
        })?),
        None => None,
    };
    let soft_limit = match &b.soft_limit {
        Some(n) => u32::try_from(positive(n, at, "bounces.soft_limit")?)
            .map_err(|_| at.error(Some(n.span()), "bounces.soft_limit", "too large"))?,
        None => defaults.soft_limit,
    };
    let maildir = match &b.maildir {
        Some(m) if m.get_ref().trim().is_empty() => {
            return Err(at.error(Some(m.span()), "bounces.maildir", "give the Maildir folder, like \"bounces\""));
        }
        Some(m) => Some(resolve(m.get_ref())),
        None => None,
    };
    // The environment's URL wins, as for `smtp_url`; an error names where the bad one came from.
    let imap_url = match (&env.imap_url, &b.imap_url) {
        (Some(u), _) => {
            Some(ImapUrl::parse(u).map_err(|e| at.error(None, "bounces.imap_url", format!("$GAZETTE_IMAP_URL: {e}")))?)
        }
        (None, Some(u)) => {
            Some(ImapUrl::parse(u.get_ref()).map_err(|e| at.error(Some(u.span()), "bounces.imap_url", e.to_string()))?)
        }
        (None, None) => None,
    };
    let imap_ca_file = match &b.imap_ca_file {
        Some(f) if imap_url.is_none() => {
            return Err(at.error(
                Some(f.span()),
                "bounces.imap_ca_file",
                "is only used with imap_url (or $GAZETTE_IMAP_URL); set one or remove it",
            ));
        }
        Some(f) => Some(resolve(f.get_ref())),
        None => None,
    };
    let poll = match &b.poll {
        Some(p) if p.get_ref().std() < std::time::Duration::from_secs(1) => {
            return Err(at.error(Some(p.span()), "bounces.poll", "must be at least 1s, like \"1m\""));
        }
        Some(p) => *p.get_ref(),
        None => defaults.poll,
    };
    Ok(Bounces {
        return_path,
        soft_limit,
        soft_window: b.soft_window.unwrap_or(defaults.soft_window),
        limits: RateLimits { hard_bounces: b.max_bounce_rate, complaints: b.max_complaint_rate },
        maildir,
        imap_url,
        imap_ca_file,
        poll,
    })
}

/// A five-field crontab expression as the six-field schedule it means: `0 ` (the seconds) in
/// front, and the day-of-week numbers as names, since crontab counts Monday as 1 and the `cron`
/// crate counts Sunday as 1 (`0 9 * * 1` is Monday at 9 in crontab; `0 0 9 * * 1` is Sunday).
/// `None` unless that is a schedule.
fn crontab_suggestion(expression: &str) -> Option<String> {
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let [minute, hour, day, month, weekday] = fields.as_slice() else { return None };
    let suggestion = format!("0 {minute} {hour} {day} {month} {}", crontab_weekdays(weekday)?);
    cron::Schedule::from_str(&suggestion).is_ok().then_some(suggestion)
}

/// Crontab's day-of-week numbers (0 and 7 Sunday, 1 Monday…) as names; a step (`*/2`) stays a
/// number.
fn crontab_weekdays(field: &str) -> Option<String> {
    const NAMES: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let mut out = String::new();
    let mut digits = String::new();
    let mut after_slash = false;
    let flush = |digits: &mut String, out: &mut String, step: bool| -> Option<()> {
        if !digits.is_empty() {
            if step {
                out.push_str(digits);
            } else {
                out.push_str(NAMES.get(digits.parse::<usize>().ok()?)?);
            }
            digits.clear();
        }
        Some(())
    };
    for c in field.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out, after_slash)?;
        after_slash = c == '/';
        out.push(c);
    }
    flush(&mut digits, &mut out, after_slash)?;
    Some(out)
}

/// A `[[source]] name`: one printable line of at most 200 characters.
fn source_name(name: &Spanned<String>, at: &Locator<'_>, field: &str) -> Result<String, ConfigError> {
    let refused = || {
        at.error(
            Some(name.span()),
            &format!("{field}.name"),
            "give the name readers see for this source's articles: one line of at most 200 characters",
        )
    };
    let line = crate::domain::printable_line(name.get_ref()).map_err(|_| refused())?;
    if line.is_empty() || line.chars().count() > 200 {
        return Err(refused());
    }
    Ok(line)
}

/// Every `[[relay]]`, each with the span of its table for messages.
fn relays(
    raw: Vec<Spanned<RawRelay>>,
    at: &Locator<'_>,
    env: &Environment,
) -> Result<Vec<(Range<usize>, super::Relay)>, ConfigError> {
    raw.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let span = r.span();
            r.into_inner()
                .parse(i + 1, |name| env.variables.get(name))
                .map(|relay| (span.clone(), relay))
                .map_err(|e| at.error(Some(span), &e.field, e.message))
        })
        .collect()
}

fn positive(v: &Spanned<i64>, at: &Locator<'_>, field: &str) -> Result<usize, ConfigError> {
    usize::try_from(*v.get_ref())
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| at.error(Some(v.span()), field, "must be a whole number of at least 1"))
}

fn has_line_break(s: &str) -> bool {
    s.contains(['\r', '\n'])
}

/// `Name <addr@example.org>` or a bare address.
fn parse_sender(s: &str) -> Result<Sender, String> {
    if has_line_break(s) {
        return Err("must be on one line".into());
    }
    let s = s.trim();
    let (name, addr) = match (s.rfind('<'), s.ends_with('>')) {
        (Some(i), true) => (Some(s[..i].trim().trim_matches('"').trim()), &s[i + 1..s.len() - 1]),
        _ => (None, s),
    };
    let address: EmailAddress =
        addr.parse().map_err(|e| format!("{e}; write \"The Weekly Mirror <weekly@example.org>\""))?;
    Ok(Sender { name: name.filter(|n| !n.is_empty()).map(str::to_owned), address })
}

fn parse_http_url(s: &str) -> Result<Url, String> {
    let u = Url::parse(s.trim()).map_err(|e| format!("`{s}` is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(format!("`{s}` is not an http(s) URL"));
    }
    Ok(u)
}

/// A relative SQLite path is relative to the config's folder, like every other path.
fn anchor_sqlite_url(url: &str, folder: &Path) -> String {
    let Some(rest) = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")) else {
        return url.to_owned();
    };
    let (path, query) = rest.split_once('?').map_or((rest, None), |(p, q)| (p, Some(q)));
    if path.starts_with('/') || path == ":memory:" || path.is_empty() {
        return url.to_owned();
    }
    let joined = folder.join(path);
    match query {
        Some(q) => format!("sqlite://{}?{q}", joined.display()),
        None => format!("sqlite://{}", joined.display()),
    }
}
