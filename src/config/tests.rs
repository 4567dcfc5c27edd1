use std::path::Path;

use secrecy::ExposeSecret;

use super::*;

/// A publication that sets most keys of every table (docs/src/configuration.md lists them all).
const EXAMPLE: &str = r#"
[publication]
name = "The Weekly Mirror"
from = "The Weekly Mirror <weekly@example.org>"
reply_to = "editor@example.org"
unsubscribe_mailto = "unsubscribe@example.org"
base_url = "https://news.example.org"
timezone = "America/New_York"
subject = "{{ publication.name }}: {{ issue.date | date(format='%-d %B %Y') }}"
lists = ["weekly"]

[[source]]
feed = "https://example.org/feed/"
optional = false

[[source]]
folder = "articles"

[selection]
max_age = "7d"
max_items = 10
since_last_issue = true
include_tags = []
exclude_tags = []
send_when_empty = false

[schedule]
cron = "0 0 9 * * Mon"
catch_up = "24h"

[[list]]
name = "weekly"
file = "subscribers/weekly.csv"

[templates]
dir = "templates"

[delivery]
transport = "outbox"
smtp_url = "smtp://user:pass@smtp.example.org:587"
outbox = "outbox"
concurrency = 8
rate = 0
max_attempts = 6
retry_backoff = "1m"
lease = "30s"
ca_file = "ca.pem"

[dkim]
domain = "example.org"
selector = "gazette"
private_key_file = "dkim.pem"

[storage]
database_url = "sqlite://gazette.db"

[bounces]
return_path = "bounces@example.org"
soft_limit = 3
soft_window = "30d"

[web]
listen = "127.0.0.1:8080"
subscribe_rate = "5/m"
"#;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, Path::new("/pub/gazette.toml"), &Environment::default())
}

fn invalid(text: &str) -> (Option<usize>, Option<String>, String) {
    match parse(text) {
        Err(ConfigError::Invalid { line, field, message, .. }) => (line, field, message),
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

const MINIMAL: &str = "[publication]\nname = \"M\"\nfrom = \"m@example.org\"\n";

#[test]
fn reads_every_key_of_the_example() {
    let c = parse(EXAMPLE).expect("the example parses");
    assert_eq!(c.publication.name, "The Weekly Mirror");
    assert_eq!(c.publication.from.to_string(), "The Weekly Mirror <weekly@example.org>");
    assert_eq!(c.publication.timezone, chrono_tz::America::New_York);
    assert_eq!(c.sources.len(), 2);
    assert_eq!(c.sources[1], SourceSetting::Folder { path: "/pub/articles".into(), name: None });
    assert_eq!(c.selection.max_age, Duration::from_secs(7 * 86_400));
    assert_eq!(c.lists[0].file.as_deref(), Some(Path::new("/pub/subscribers/weekly.csv")));
    assert_eq!(c.templates_dir.as_deref(), Some(Path::new("/pub/templates")));
    assert_eq!(c.delivery.concurrency, 8);
    assert_eq!(c.delivery.ca_file.as_deref(), Some(Path::new("/pub/ca.pem")));
    assert_eq!(c.storage.database_url.expose_secret(), "sqlite:///pub/gazette.db");
    assert!(c.schedule.is_some());
    assert!(c.dkim.is_some());
    assert_eq!(c.bounces.return_path.map(|p| p.to_string()).as_deref(), Some("bounces@example.org"));
}

#[test]
fn defaults_fill_what_is_left_out() {
    let c = parse(MINIMAL).expect("minimal parses");
    assert_eq!(c.delivery.transport, Transport::Outbox);
    assert_eq!(c.selection.max_items, 10);
    assert!(c.selection.since_last_issue);
    assert_eq!(c.publication.timezone, chrono_tz::UTC);
    assert!(c.templates_dir.is_none());
}

#[test]
fn unknown_key_is_named_with_its_line() {
    let (line, field, message) = invalid(&format!("{MINIMAL}colour = \"red\"\n"));
    assert_eq!(line, Some(4));
    assert_eq!(field.as_deref(), Some("publication.colour"));
    assert!(message.contains("colour"), "{message}");
}

#[test]
fn bad_duration_names_the_key() {
    let (line, field, message) = invalid(&format!("{MINIMAL}[selection]\nmax_age = \"a week\"\n"));
    assert_eq!(line, Some(5));
    assert_eq!(field.as_deref(), Some("selection.max_age"));
    assert!(message.contains("7d"), "{message}");
}

#[test]
fn bad_timezone_and_cron_are_refused() {
    let (_, field, _) = invalid(&MINIMAL.replace("name = \"M\"", "name = \"M\"\ntimezone = \"Mars/Olympus\""));
    assert_eq!(field.as_deref(), Some("publication.timezone"));
    let (line, field, msg) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"0 9 * * 1\"\n"));
    assert_eq!((line, field.as_deref()), (Some(5), Some("schedule.cron")));
    assert!(msg.contains("six fields"), "{msg}");
}

#[test]
fn a_crontab_expression_gets_its_six_field_form() {
    let (line, field, msg) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"30 9 * * 1-5\"\n"));
    assert_eq!((line, field.as_deref()), (Some(5), Some("schedule.cron")));
    assert!(msg.contains("five fields") && msg.contains("six fields, seconds first"), "{msg}");
    assert!(msg.contains("\"0 30 9 * * Mon-Fri\""), "{msg}");
    let (_, _, msg) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"0 9 * * 0,6\"\n"));
    assert!(msg.contains("\"0 0 9 * * Sun,Sat\""), "{msg}");
    let (_, _, msg) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"*/15 * * * *\"\n"));
    assert!(msg.contains("\"0 */15 * * * *\""), "{msg}");
    // What no prefix mends gets the general advice.
    let (_, _, msg) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"0 99 * * *\"\n"));
    assert!(msg.contains("six fields") && !msg.contains("five fields"), "{msg}");
}

#[test]
fn a_source_may_be_named_on_one_line() {
    let c =
        parse(&format!("{MINIMAL}[[source]]\nfolder = \"articles\"\nname = \" Harbour  desk \"\n")).expect("parses");
    assert_eq!(c.sources[0], SourceSetting::Folder { path: "/pub/articles".into(), name: Some("Harbour desk".into()) });
    let (line, field, _) = invalid(&format!("{MINIMAL}[[source]]\nfeed = \"a.xml\"\nname = \"\"\n"));
    assert_eq!((line, field.as_deref()), (Some(6), Some("source[1].name")));
    let (_, field, _) = invalid(&format!("{MINIMAL}[[source]]\nfeed = \"a.xml\"\nname = \"A\\u0007B\"\n"));
    assert_eq!(field.as_deref(), Some("source[1].name"));
}

#[test]
fn a_source_needs_exactly_one_kind() {
    let (_, field, _) = invalid(&format!("{MINIMAL}[[source]]\nfeed = \"a.xml\"\nfolder = \"b\"\n"));
    assert_eq!(field.as_deref(), Some("source[1]"));
}

#[test]
fn a_header_injection_in_from_is_refused() {
    let (_, field, _) = invalid("[publication]\nname = \"M\"\nfrom = \"M <m@example.org>\\r\\nBcc: x@y.org\"\n");
    assert_eq!(field.as_deref(), Some("publication.from"));
}

#[test]
fn environment_overrides_smtp_and_database() {
    let env = Environment {
        smtp_url: Some("smtp://u:p@127.0.0.1:2525".into()),
        database_url: Some("postgres://localhost/x".into()),
        ..Environment::default()
    };
    let c = Config::parse(EXAMPLE, Path::new("/pub/gazette.toml"), &env).expect("parses");
    assert_eq!(
        c.delivery.smtp_url.as_ref().map(|s| s.expose_secret().to_owned()).as_deref(),
        Some("smtp://u:p@127.0.0.1:2525")
    );
    assert_eq!(c.storage.database_url.expose_secret(), "postgres://localhost/x");
}

#[test]
fn smtp_errors_never_repeat_the_password() {
    let (_, _, message) =
        invalid(&format!("{MINIMAL}[delivery]\ntransport = \"smtp\"\nsmtp_url = \"http://u:hunter2@x\"\n"));
    assert!(!message.contains("hunter2"), "{message}");
}

#[test]
fn dkim_must_align_with_from() {
    let (_, field, _) =
        invalid(&format!("{MINIMAL}[dkim]\ndomain = \"other.org\"\nselector = \"s\"\nprivate_key_file = \"k.pem\"\n"));
    assert_eq!(field.as_deref(), Some("dkim.domain"));
}

#[test]
fn the_pool_size_defaults_to_ten_and_must_be_a_positive_number() {
    assert_eq!(parse(MINIMAL).expect("minimal parses").storage.pool_size, 10);
    let c =
        parse(&format!("{MINIMAL}[storage]\ndatabase_url = \"postgres://db/news\"\npool_size = 4\n")).expect("parses");
    assert_eq!(c.storage.pool_size, 4);
    let (line, field, message) = invalid(&format!("{MINIMAL}[storage]\npool_size = 0\n"));
    assert_eq!((line, field.as_deref()), (Some(5), Some("storage.pool_size")));
    assert!(message.contains("at least 1"), "{message}");
    let (line, field, _) = invalid(&format!("{MINIMAL}[storage]\n\npool_size = 100000\n"));
    assert_eq!((line, field.as_deref()), (Some(6), Some("storage.pool_size")));
    let (line, field, _) = invalid(&format!("{MINIMAL}[storage]\npool_size = \"ten\"\n"));
    assert_eq!((line, field.as_deref()), (Some(5), Some("storage.pool_size")));
}

#[test]
fn every_rate_key_takes_a_number_or_a_count_per_span() {
    use crate::domain::Rate;
    let rate = |text: &str| parse(&format!("{MINIMAL}{text}")).expect("parses");
    let per_second = Some(Rate::per_second(20));
    assert_eq!(rate("[delivery]\nrate = 20\n").delivery.rate, per_second);
    assert_eq!(rate("[delivery]\nrate = \"20/s\"\n").delivery.rate, per_second);
    assert_eq!(rate("[delivery]\nrate = \"300/m\"\n").delivery.rate, Some("300/m".parse().expect("rate")));
    assert_eq!(rate("[delivery]\nrate = 0\n").delivery.rate, None, "0 is no limit");
    assert_eq!(rate("").delivery.rate, None);
    assert_eq!(rate("[web]\nsubscribe_rate = 2\n").web.subscribe_rate, Rate::per_second(2));
    assert_eq!(rate("[web]\nsubscribe_rate = \"5/m\"\n").web.subscribe_rate, "5/m".parse().expect("rate"));
    assert_eq!(rate("").web.subscribe_rate, "5/m".parse().expect("rate"));

    for (bad, key) in [
        ("[delivery]\nrate = \"fast\"\n", "delivery.rate"),
        ("[delivery]\nrate = -1\n", "delivery.rate"),
        ("[delivery]\nrate = \"5/d\"\n", "delivery.rate"),
        ("[delivery]\nrate = 2.5\n", "delivery.rate"),
        ("[web]\nsubscribe_rate = 0\n", "web.subscribe_rate"),
    ] {
        let (line, field, message) = invalid(&format!("{MINIMAL}{bad}"));
        assert_eq!((line, field.as_deref()), (Some(5), Some(key)), "{bad}: {message}");
        assert!(message.contains("20/s") || message.contains("\"20/s\""), "{bad}: {message}");
    }
}

#[test]
fn bounces_are_off_unless_a_return_path_is_given() {
    let c = parse(MINIMAL).expect("minimal parses");
    assert_eq!(c.bounces, Bounces::default());
    assert!(c.bounces.return_path.is_none());
    assert_eq!((c.bounces.soft_limit, c.bounces.soft_window), (3, Duration::from_secs(30 * 86_400)));

    let c = parse(&format!(
        "{MINIMAL}[bounces]\nreturn_path = \"Bounces@Example.org\"\nsoft_limit = 2\nsoft_window = \"7d\"\n"
    ))
    .expect("parses");
    assert_eq!(c.bounces.return_path.as_ref().map(|p| p.to_string()).as_deref(), Some("Bounces@example.org"));
    assert_eq!((c.bounces.soft_limit, c.bounces.soft_window), (2, Duration::from_secs(7 * 86_400)));
}

#[test]
fn a_bad_return_path_names_the_key_and_its_line() {
    let (line, field, message) = invalid(&format!("{MINIMAL}[bounces]\nreturn_path = \"bounces\"\n"));
    assert_eq!((line, field.as_deref()), (Some(5), Some("bounces.return_path")));
    assert!(message.contains("bounces@example.org"), "{message}");
    let long = format!("{}@example.org", "b".repeat(30));
    let (_, field, message) = invalid(&format!("{MINIMAL}[bounces]\nreturn_path = {long:?}\n"));
    assert_eq!(field.as_deref(), Some("bounces.return_path"));
    assert!(message.contains("no room for the token"), "{message}");
    let (_, field, _) = invalid(&format!("{MINIMAL}[bounces]\nsoft_limit = 0\n"));
    assert_eq!(field.as_deref(), Some("bounces.soft_limit"));
    let (_, field, _) = invalid(&format!("{MINIMAL}[bounces]\nsoft_window = \"a month\"\n"));
    assert_eq!(field.as_deref(), Some("bounces.soft_window"));
}

#[test]
fn bounce_and_complaint_limits_are_shares_and_off_by_default() {
    let c = parse(MINIMAL).expect("config");
    assert!(c.bounces.limits.is_off());
    let c = parse(&format!("{MINIMAL}[bounces]\nmax_bounce_rate = \"5%\"\nmax_complaint_rate = \"0.1%\"\n"))
        .expect("config");
    let shown = |s: Option<crate::domain::Share>| s.map(|s| s.to_string());
    assert_eq!(shown(c.bounces.limits.hard_bounces).as_deref(), Some("5%"));
    assert_eq!(shown(c.bounces.limits.complaints).as_deref(), Some("0.1%"));
    for bad in ["\"5\"", "0.05", "\"120%\""] {
        let (line, field, message) = invalid(&format!("{MINIMAL}[bounces]\nmax_bounce_rate = {bad}\n"));
        assert_eq!((line, field.as_deref()), (Some(5), Some("bounces.max_bounce_rate")), "{bad}: {message}");
    }
}

#[test]
fn the_daemon_reads_a_maildir_and_an_imap_mailbox_every_poll() {
    let c = Config::parse(
        &format!(
            "{MINIMAL}[bounces]\nmaildir = \"bounces\"\nimap_url = \"imaps://u:hunter2@imap.example.org/Bounces\"\nimap_ca_file = \"ca.pem\"\npoll = \"30s\"\n"
        ),
        Path::new("/pub/gazette.toml"),
        &Environment::default(),
    )
    .expect("parses");
    let b = &c.bounces;
    assert_eq!(b.maildir.as_deref(), Some(Path::new("/pub/bounces")));
    assert_eq!(b.imap_ca_file.as_deref(), Some(Path::new("/pub/ca.pem")));
    assert_eq!(b.poll, Duration::from_secs(30));
    let url = b.imap_url.as_ref().expect("an IMAP URL");
    assert_eq!((url.host(), url.port(), url.mailbox()), ("imap.example.org", 993, "Bounces"));
    assert!(!format!("{c:?}").contains("hunter2"), "the password never prints");
    assert_eq!(parse(MINIMAL).expect("parses").bounces.poll, Duration::from_secs(60));
}

#[test]
fn the_environment_imap_url_wins_over_the_file() {
    let env = Environment { imap_url: Some("imap://v:pw@127.0.0.1:1143/INBOX".into()), ..Environment::default() };
    let text = format!("{MINIMAL}[bounces]\nimap_url = \"imaps://u:p@imap.example.org/Bounces\"\n");
    let c = Config::parse(&text, Path::new("/pub/gazette.toml"), &env).expect("parses");
    let url = c.bounces.imap_url.expect("an IMAP URL");
    assert_eq!((url.user(), url.port(), url.security()), ("v", 1143, ImapSecurity::StartTls));

    let env = Environment { imap_url: Some("http://v:hunter2@x/".into()), ..Environment::default() };
    match Config::parse(MINIMAL, Path::new("/pub/gazette.toml"), &env) {
        Err(ConfigError::Invalid { field, message, .. }) => {
            assert_eq!(field.as_deref(), Some("bounces.imap_url"));
            assert!(message.contains("$GAZETTE_IMAP_URL"), "{message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        other => panic!("expected an invalid config, got {other:?}"),
    }
}

#[test]
fn bad_imap_and_maildir_keys_are_named_with_their_line() {
    for (bad, key) in [
        ("imap_url = \"https://u:hunter2@h/INBOX\"\n", "bounces.imap_url"),
        ("imap_url = \"imaps://h/INBOX\"\n", "bounces.imap_url"),
        ("imap_ca_file = \"ca.pem\"\n", "bounces.imap_ca_file"),
        ("poll = \"0s\"\n", "bounces.poll"),
        ("maildir = \"\"\n", "bounces.maildir"),
    ] {
        let (line, field, message) = invalid(&format!("{MINIMAL}[bounces]\n{bad}"));
        assert_eq!((line, field.as_deref()), (Some(5), Some(key)), "{bad}: {message}");
        assert!(!message.contains("hunter2"), "{message}");
    }
    let (_, field, _) = invalid(&format!("{MINIMAL}[bounces]\npoll = \"often\"\n"));
    assert_eq!(field.as_deref(), Some("bounces.poll"));
}

const PUBLICATION_ONLY: &str = "[publication]\nname = \"N\"\nfrom = \"n@example.org\"\n";

#[test]
fn relays_imply_smtp_and_keep_their_order() {
    let text = format!(
        "{PUBLICATION_ONLY}\n[[relay]]\nurl = \"smtps://u:pw@a.example.org\"\nweight = 3\n\n\
         [[relay]]\nurl_env = \"RELAY_B\"\nconcurrency = 2\n"
    );
    let env = Environment {
        variables: super::Variables::default().with("RELAY_B", "smtp://b.example.org:2525"),
        ..Environment::default()
    };
    let c = Config::parse(&text, Path::new("/pub/gazette.toml"), &env).expect("parses");
    assert_eq!(c.delivery.transport, Transport::Smtp);
    assert!(c.delivery.smtp_url.is_none());
    let relays: Vec<(&str, u32, Option<usize>)> =
        c.delivery.relays.iter().map(|r| (r.server.as_str(), r.weight, r.concurrency)).collect();
    assert_eq!(relays, [("a.example.org:465", 3, None), ("b.example.org:2525", 1, Some(2))]);
}

#[test]
fn relays_beside_smtp_url_or_an_outbox_are_refused_naming_both() {
    let relay = "[[relay]]\nurl = \"smtp://u:hunter2@a.example.org\"\n";
    let text = format!("{PUBLICATION_ONLY}[delivery]\nsmtp_url = \"smtp://b.example.org\"\n\n{relay}");
    let (line, _, message) = invalid(&text);
    assert!(message.contains("[[relay]]") && message.contains("delivery.smtp_url"), "{message}");
    assert_eq!(line, Some(7));
    let env = Environment { smtp_url: Some("smtp://b.example.org".into()), ..Environment::default() };
    let e = Config::parse(&format!("{PUBLICATION_ONLY}{relay}"), Path::new("/pub/gazette.toml"), &env)
        .expect_err("refused");
    assert!(e.to_string().contains("$GAZETTE_SMTP_URL"), "{e}");
    let (_, field, message) = invalid(&format!("{PUBLICATION_ONLY}[delivery]\ntransport = \"outbox\"\n\n{relay}"));
    assert_eq!(field.as_deref(), Some("delivery.transport"), "{message}");
    assert!(!message.contains("hunter2"));
}

#[test]
fn an_unset_url_env_is_named_with_its_relay() {
    let (line, field, message) = invalid(&format!("{PUBLICATION_ONLY}\n[[relay]]\nurl_env = \"NO_SUCH_RELAY_VAR\"\n"));
    assert_eq!(field.as_deref(), Some("relay[1].url_env"));
    assert!(message.contains("NO_SUCH_RELAY_VAR"), "{message}");
    assert_eq!(line, Some(5));
}

#[test]
fn shaping_groups_take_domains_once_each_with_their_caps() {
    let c = parse(&format!(
        "{MINIMAL}[[shaping]]\ndomains = [\"GMail.com\", \"googlemail.com\"]\nconcurrency = 4\nrate = 20\n\n\
         [[shaping]]\ndomains = [\"yahoo.com\"]\nrate = \"600/m\"\n"
    ))
    .expect("parses");
    assert_eq!(c.shaping.len(), 2);
    assert_eq!(c.shaping[0].domains, ["gmail.com", "googlemail.com"]);
    assert_eq!(c.shaping[0].concurrency, Some(4));
    assert_eq!(c.shaping[0].rate.map(|r| r.as_per_second()), Some(20.0));
    assert_eq!((c.shaping[1].concurrency, c.shaping[1].rate.map(|r| r.as_per_second())), (None, Some(10.0)));
    assert!(parse(MINIMAL).expect("minimal").shaping.is_empty());

    let (_, field, message) =
        invalid(&format!("{MINIMAL}[[shaping]]\ndomains = [\"a.org\"]\n[[shaping]]\ndomains = [\"A.org\"]\n"));
    assert_eq!(field.as_deref(), Some("shaping[2].domains"));
    assert!(message.contains("more than one group"), "{message}");
    let (_, field, _) = invalid(&format!("{MINIMAL}[[shaping]]\ndomains = [\"a.org\"]\nconcurrency = 0\n"));
    assert_eq!(field.as_deref(), Some("shaping[1].concurrency"));
    let (_, field, _) = invalid(&format!("{MINIMAL}[[shaping]]\ndomains = []\n"));
    assert_eq!(field.as_deref(), Some("shaping[1].domains"));
}

#[test]
fn review_takes_editors_a_lead_and_an_approval_and_names_what_is_wrong() {
    assert!(parse(MINIMAL).expect("minimal").review.is_none(), "no [review]: issues go out as they are made");
    let c = parse(&format!("{MINIMAL}[review]\neditors = [\"ed@example.org\"]\n")).expect("parses");
    let r = c.review.expect("review");
    assert_eq!(r.editors[0].as_str(), "ed@example.org");
    assert_eq!(r.lead, Duration::from_secs(24 * 3600));
    assert_eq!(r.approval, super::Approval::Required);
    let c = parse(&format!("{MINIMAL}[review]\neditors = [\"ed@example.org\"]\nlead = \"2h\"\napproval = \"auto\"\n"))
        .expect("parses");
    let r = c.review.expect("review");
    assert_eq!((r.lead, r.approval), (Duration::from_secs(7200), super::Approval::Auto));

    let (_, field, _) = invalid(&format!("{MINIMAL}[review]\neditors = [\"ed@example.org\"]\nleed = \"2h\"\n"));
    assert_eq!(field.as_deref(), Some("review.leed"));
    let (line, field, msg) =
        invalid(&format!("{MINIMAL}[review]\neditors = [\"ed@example.org\"]\napproval = \"maybe\"\n"));
    assert_eq!((line, field.as_deref()), (Some(6), Some("review.approval")));
    assert!(msg.contains("\"required\" or \"auto\""), "{msg}");
    let (_, field, _) = invalid(&format!("{MINIMAL}[review]\neditors = []\n"));
    assert_eq!(field.as_deref(), Some("review.editors"));
    let (_, field, _) = invalid(&format!("{MINIMAL}[review]\neditors = [\"not an address\"]\n"));
    assert_eq!(field.as_deref(), Some("review.editors"));
}

const EDITIONS: &str = r#"
[selection]
max_age = "7d"

[[topic]]
name = "Arts & Culture"
tags = ["Arts", "culture"]

[[topic]]
name = "Science"
tags = ["science"]

[[edition]]
name = "daily"
cron = "0 0 7 * * *"
max_age = "1d"

[[edition]]
name = "Weekly"
cron = "0 0 9 * * Mon"
default = true
"#;

#[test]
fn editions_and_topics_are_read_with_one_default() {
    let c = parse(&format!("{MINIMAL}{EDITIONS}")).expect("editions parse");
    assert_eq!(c.editions.len(), 2);
    assert_eq!(c.editions[0].max_age, Duration::from_secs(86_400));
    assert_eq!(c.editions[1].max_age, Duration::from_secs(7 * 86_400), "the selection's max_age when unset");
    assert!(!c.editions[0].default && c.editions[1].default);
    assert_eq!(c.default_edition().map(|e| e.name.as_str()), Some("Weekly"));
    assert_eq!(c.edition("WEEKLY").map(|e| e.name.key()).as_deref(), Some("weekly"));
    assert!(c.edition("monthly").is_none());
    assert_eq!(c.topic("arts & CULTURE").map(|t| t.tags.clone()), Some(vec!["arts".to_owned(), "culture".to_owned()]));
    assert!(c.schedule.is_none());
    assert!(c.editions.iter().all(|e| e.schedule.is_some()));

    let one = parse(&format!("{MINIMAL}[[edition]]\nname = \"weekly\"\n")).expect("one edition");
    assert!(one.editions[0].default, "a single edition is the default");
    assert!(parse(MINIMAL).expect("minimal").editions.is_empty());
}

#[test]
fn bad_editions_and_topics_name_the_key() {
    let (_, field, message) = invalid(&format!("{MINIMAL}{}", EDITIONS.replace("default = true\n", "")));
    assert_eq!(field.as_deref(), Some("edition.default"));
    assert!(message.contains("default = true"), "{message}");

    let (_, field, _) = invalid(&format!("{MINIMAL}{}", EDITIONS.replace("name = \"daily\"", "name = \"weekly\"")));
    assert_eq!(field.as_deref(), Some("edition.name"));

    let (_, field, _) =
        invalid(&format!("{MINIMAL}{}", EDITIONS.replace("name = \"Science\"", "name = \"arts & culture\"")));
    assert_eq!(field.as_deref(), Some("topic[2].name"));

    let (line, field, _) = invalid(&format!("{MINIMAL}{}", EDITIONS.replace("tags = [\"science\"]", "tags = []")));
    assert_eq!(field.as_deref(), Some("topic[2].tags"));
    assert!(line.is_some());

    let (_, field, message) =
        invalid(&format!("{MINIMAL}{}", EDITIONS.replace("cron = \"0 0 7 * * *\"", "cron = \"0 7 * * *\"")));
    assert_eq!(field.as_deref(), Some("edition[1].cron"));
    assert!(message.contains("0 0 7 * * *"), "{message}");

    let (_, field, message) = invalid(&format!("{MINIMAL}[schedule]\ncron = \"0 0 9 * * Mon\"\n{EDITIONS}"));
    assert_eq!(field.as_deref(), Some("edition"));
    assert!(message.contains("[schedule]"), "{message}");

    let (_, field, _) = invalid(&format!("{MINIMAL}[[topic]]\nname = \"a;b\"\ntags = [\"x\"]\n"));
    assert_eq!(field.as_deref(), Some("topic[1].name"));
}
