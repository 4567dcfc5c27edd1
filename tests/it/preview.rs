//! `preview` and `articles` on the sample publication and the seed feed, read back as a mail
//! client would.

use mail_parser::{MessageParser, MimeHeaders};

use crate::support::{Publication, feeds_config, fixture};

const AS_OF: &str = "2024-03-16T12:00:00-04:00";

#[test]
fn seed_feed_selects_exactly_six_articles_newest_first() {
    let p = Publication::with_config(&feeds_config(&[fixture("feeds/seed-mirror.xml")], ""));
    let json = p.gazette(&["articles", "--as-of", AS_OF, "--json", "--all"]).ok().json();
    let articles = json["articles"].as_array().expect("articles");
    assert_eq!(articles.len(), 6, "{json:#}");
    let titles: Vec<&str> = articles.iter().filter_map(|a| a["title"].as_str()).collect();
    assert!(titles.contains(&"Armenian Sources Blast Azerbaijani TV Interviews with Artsakh POWs"), "{titles:?}");
    let dates: Vec<&str> = articles.iter().filter_map(|a| a["date"].as_str()).collect();
    let mut sorted = dates.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(dates, sorted, "newest first");
    for a in articles {
        for key in ["title", "url", "date", "author", "summary", "tags", "source"] {
            assert!(a.get(key).is_some(), "{key} missing in {a}");
        }
    }
    let left_out = json["left_out"].as_array().expect("left_out with --all");
    assert_eq!(left_out.len(), 2);
    assert!(left_out.iter().all(|l| l["reason"].as_str().is_some_and(|r| r.contains("max_age"))), "{left_out:?}");
}

#[test]
fn left_out_is_null_without_all() {
    let p = Publication::sample();
    let json = p.gazette(&["articles", "--as-of", "2024-03-16", "--json"]).ok().json();
    assert!(json["left_out"].is_null());
    assert_eq!(json["articles"].as_array().map(Vec::len), Some(3), "the draft is left out: {json:#}");
}

#[test]
fn sample_issue_as_eml_has_every_header_and_both_parts() {
    let p = Publication::sample();
    let out = p.path().join("issue.eml");
    let out_s = out.display().to_string();
    p.gazette(&[
        "preview",
        "--as-of",
        "2024-03-16",
        "--format",
        "eml",
        "--out",
        &out_s,
        "--subscriber",
        "grace@example.org",
    ])
    .ok();
    let raw = std::fs::read(&out).expect("eml written");
    let raw_text = String::from_utf8_lossy(&raw);
    let msg = MessageParser::default().parse(&raw).expect("a MIME message");

    assert_eq!(msg.from().and_then(|a| a.first()).and_then(|a| a.address()), Some("weekly@example.org"));
    let to = msg.to().and_then(|a| a.first()).expect("To");
    assert_eq!(to.address(), Some("grace@example.org"));
    assert_eq!(to.name(), Some("Grace Hopper"));
    assert_eq!(msg.subject(), Some("The Weekly Mirror: 16 March 2024"));
    assert!(msg.date().is_some());
    let id = msg.message_id().expect("Message-ID").to_owned();
    assert!(id.ends_with("@example.org"), "{id}");
    assert!(msg.reply_to().is_some());
    let header = |name: &str| {
        msg.header_raw(name)
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|| panic!("{name} missing:\n{raw_text}"))
    };
    assert!(header("List-Id").contains("<weekly.127.0.0.1>"), "{}", header("List-Id"));
    let unsub = header("List-Unsubscribe");
    assert!(unsub.contains("<http://127.0.0.1:8080/unsubscribe/"), "{unsub}");
    assert!(unsub.contains("<mailto:unsubscribe@example.org?subject=unsubscribe>"), "{unsub}");
    assert_eq!(header("List-Unsubscribe-Post"), "List-Unsubscribe=One-Click");

    // multipart/alternative: text/plain first, then text/html, both UTF-8.
    let ct = msg.content_type().expect("Content-Type");
    assert_eq!((ct.ctype(), ct.subtype()), ("multipart", Some("alternative")));
    assert_eq!(msg.text_body.len(), 1);
    assert_eq!(msg.html_body.len(), 1);
    let parts: Vec<String> = msg
        .parts
        .iter()
        .filter_map(|p| p.content_type().map(|c| format!("{}/{}", c.ctype(), c.subtype().unwrap_or(""))))
        .collect();
    assert_eq!(parts, ["multipart/alternative", "text/plain", "text/html"]);
    for part in &msg.parts[1..] {
        let charset = part.content_type().and_then(|c| c.attribute("charset")).map(str::to_ascii_lowercase);
        assert_eq!(charset.as_deref(), Some("utf-8"));
    }

    let text = msg.body_text(0).expect("text part");
    let html = msg.body_html(0).expect("html part");
    for title in ["Welcome to the first issue", "Field notes: the harbour at low tide", "The reading list"] {
        assert!(text.contains(title), "text lacks {title}:\n{text}");
        assert!(html.contains(title), "html lacks {title}");
    }
    assert!(!text.contains("Ideas for next month"), "a draft was carried");
    assert!(!text.contains('<') || !text.contains("</"), "HTML left in the text part:\n{text}");
    for line in text.lines() {
        assert!(line.chars().count() <= 72 || !line.contains(' '), "over 72 columns: {line:?}");
    }
    let unsubscribe_link = unsub.split(['<', '>']).find(|s| s.starts_with("http")).expect("link").to_owned();
    assert!(html.contains(&unsubscribe_link), "the HTML footer links to the same unsubscribe URL");
    assert!(text.contains(&unsubscribe_link), "the text footer lists the unsubscribe URL");
    assert!(html.contains("grace@example.org"));
    let preview_html = p
        .gazette(&["preview", "--as-of", "2024-03-16", "--format", "html", "--subscriber", "grace@example.org"])
        .ok()
        .stdout();
    assert_eq!(html.replace("\r\n", "\n"), preview_html, "the mailed HTML decodes to exactly the previewed one");

    // The same issue for the same reader is the same message.
    let again = p.path().join("again.eml");
    let again_s = again.display().to_string();
    p.gazette(&[
        "preview",
        "--as-of",
        "2024-03-16",
        "--format",
        "eml",
        "--out",
        &again_s,
        "--subscriber",
        "grace@example.org",
    ])
    .ok();
    let again_raw = std::fs::read(&again).expect("eml");
    let again_msg = MessageParser::default().parse(&again_raw).expect("mime");
    assert_eq!(again_msg.message_id(), Some(id.as_str()));
}

#[test]
fn other_readers_get_other_links_and_ids() {
    let p = Publication::sample();
    let eml = |who: &str| {
        let run = p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "eml", "--subscriber", who]).ok();
        run.0.stdout
    };
    let a = eml("ada@example.org");
    let b = eml("ken@example.net");
    let (a, b) = (MessageParser::default().parse(&a).expect("mime"), MessageParser::default().parse(&b).expect("mime"));
    assert_ne!(a.message_id(), b.message_id());
    assert_ne!(a.header_raw("List-Unsubscribe"), b.header_raw("List-Unsubscribe"));
    assert!(a.body_html(0).expect("html").contains("ada@example.org"));
    assert!(!a.body_html(0).expect("html").contains("ken@example.net"));
}

#[test]
fn non_latin_subjects_are_encoded_and_survive() {
    let config = feeds_config(
        &[fixture("feeds/atom-rtl-arabic.xml")],
        "subject = \"{{ issue.articles.0.title }} — Ժամանակ\"\n[selection]\nmax_age = \"9999d\"\n",
    );
    let p = Publication::with_config(&config);
    let run = p.gazette(&["preview", "--as-of", "2026-01-01", "--format", "eml"]).ok();
    let raw = run.0.stdout;
    let raw_text = String::from_utf8_lossy(&raw);
    let subject_line = raw_text.lines().find(|l| l.starts_with("Subject:")).expect("Subject header");
    assert!(subject_line.is_ascii() && subject_line.contains("=?utf-8?"), "{subject_line}");
    let msg = MessageParser::default().parse(&raw).expect("mime");
    let subject = msg.subject().expect("subject");
    assert!(subject.contains("Ժամանակ"));
    assert!(subject.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)), "Arabic kept: {subject}");
    let html = msg.body_html(0).expect("html");
    assert!(html.chars().any(|c| ('\u{0600}'..='\u{06FF}').contains(&c)));
}

#[test]
fn line_breaks_in_titles_and_names_never_become_headers() {
    let p = Publication::with_config(&feeds_config(
        &[fixture("header-injection-feed.xml")],
        "subject = \"{{ issue.articles.0.title }}\"\n[selection]\nmax_age = \"99999d\"\n[[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n",
    ));
    p.write("list.csv", "email,name\n\"eve@example.org\",\"Eve\r\nBcc: victim@example.com\"\n");
    let run =
        p.gazette(&["preview", "--as-of", "2026-01-01", "--format", "eml", "--subscriber", "eve@example.org"]).ok();
    let raw = run.0.stdout;
    let msg = MessageParser::default().parse(&raw).expect("mime");
    let raw_text = String::from_utf8_lossy(&raw);
    let headers = raw_text.split("\r\n\r\n").next().expect("headers");
    for line in headers.split("\r\n") {
        let lower = line.to_ascii_lowercase();
        assert!(!lower.starts_with("bcc:") && !lower.starts_with("x-injected:"), "injected header: {line}");
    }
    assert_eq!(msg.to().and_then(|a| a.first()).and_then(|a| a.address()), Some("eve@example.org"));
    assert_eq!(msg.to().map(|a| a.iter().count()), Some(1));
    assert!(msg.bcc().is_none());
}

#[test]
fn html_and_text_formats_go_to_stdout_or_a_file() {
    let p = Publication::sample();
    let text = p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "text"]).ok().stdout();
    assert!(text.starts_with("The Weekly Mirror") || text.contains("The Weekly Mirror"), "{text}");
    let out = p.path().join("out/digest.html");
    let run = p.gazette(&["preview", "--as-of", "2024-03-16", "--out", &out.display().to_string()]).ok();
    assert!(run.stdout().contains("written to"), "{}", run.stdout());
    let html = std::fs::read_to_string(out).expect("html written");
    assert!(html.contains("<html lang="));
    assert!(!html.contains("<link"), "no external stylesheet");
    assert!(!html.contains("<script"), "no script");
}

/// The sample articles are dated from the day `init` runs, so the new publication's next issue,
/// previewed at once without `--as-of`, carries them.
#[test]
fn init_writes_a_publication_that_previews_and_refuses_to_overwrite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let target = dir.path().join("news");
    let bin = env!("CARGO_BIN_EXE_gazette");
    let run = std::process::Command::new(bin).arg("init").arg(&target).output().expect("run");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let p = Publication { dir: tempfile::TempDir::new().expect("tmp") };
    drop(p);
    let preview = std::process::Command::new(bin)
        .args(["--config", &target.join("gazette.toml").display().to_string(), "preview", "--format", "text"])
        .env("GAZETTE_SECRET", "test-secret-0123456789abcdef")
        .output()
        .expect("run");
    assert!(preview.status.success(), "{}", String::from_utf8_lossy(&preview.stderr));
    let text = String::from_utf8_lossy(&preview.stdout);
    for title in ["Welcome to the first issue", "Field notes", "The reading list"] {
        assert!(text.contains(title), "{title}: {text}");
    }
    let again = std::process::Command::new(bin).arg("init").arg(&target).output().expect("run");
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already holds"));
}

/// `preview --subscriber` is that subscriber's copy: the spelling stored, their name and
/// attributes as the store holds them (a list file's row on top), whatever case the address is
/// typed in; it matches, byte for byte, the text the real send mails them.
#[test]
fn a_stored_subscribers_preview_is_the_copy_the_send_mails_them() {
    let p = Publication::sample();
    let text = std::fs::read_to_string(p.path().join("templates/email/digest.txt")).expect("template");
    p.write(
        "templates/email/digest.txt",
        &text.replacen(
            "{{ publication.name }}\n",
            "{{ publication.name }}\nFor {{ subscriber.name }} <{{ subscriber.email }}> of {{ subscriber.attributes.city }}\n",
            1,
        ),
    );
    let file = p.write("zed.csv", "email,name,city\nZed@Example.org,Zed Stored,Yerevan\n");
    p.gazette(&["subscribers", "import", file.to_str().expect("utf-8"), "--list", "readers"]).ok();

    let preview =
        p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "text", "--subscriber", "zed@EXAMPLE.org"]).ok();
    let shown = preview.stdout();
    assert!(shown.contains("For Zed Stored <Zed@example.org> of Yerevan"), "{shown}");
    assert!(preview.stderr().is_empty(), "a subscriber's copy needs no warning: {}", preview.stderr());
    let eml =
        p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "eml", "--subscriber", "zed@example.org"]).ok();
    let raw = eml.0.stdout;
    let msg = MessageParser::default().parse(&raw).expect("mime");
    let to = msg.to().and_then(|t| t.first()).expect("To");
    assert_eq!((to.name(), to.address()), (Some("Zed Stored"), Some("Zed@example.org")));

    // A list file's row is what the send will sync: its name wins over the stored one.
    let grace =
        p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "text", "--subscriber", "grace@example.org"]).ok();
    assert!(grace.stdout().contains("For Grace Hopper <grace@example.org> of Arlington"), "{}", grace.stdout());

    // Nobody by that address: said, not hidden.
    let stranger =
        p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "text", "--subscriber", "who@example.org"]).ok();
    assert!(stranger.stderr().contains("not a subscriber"), "{}", stranger.stderr());

    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    let sent = std::fs::read_dir(p.path().join("outbox/new"))
        .expect("outbox")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("read"))
        .find(|m| String::from_utf8_lossy(m).contains("<Zed@example.org>"))
        .expect("the send mailed Zed");
    let sent = MessageParser::default().parse(&sent).expect("mime");
    let body = sent.body_text(0).expect("text").replace("\r\n", "\n");
    assert_eq!(body.trim_end(), shown.trim_end(), "the preview is the copy mailed");
}

fn article_sources(p: &Publication, args: &[&str]) -> Vec<String> {
    let mut all = vec!["articles", "--json"];
    all.extend_from_slice(args);
    let json = p.gazette(&all).ok().json();
    json["articles"]
        .as_array()
        .expect("articles")
        .iter()
        .map(|a| a["source"].as_str().unwrap_or("?").to_owned())
        .collect()
}

/// A Markdown folder is the publication's own writing: its articles come from the publication
/// (or the source's `name`), never from a folder called `articles`. A feed may be renamed too.
/// Renaming a source does not make what an issue carried new again.
#[test]
fn an_articles_source_is_the_publication_or_the_name_given() {
    let p = Publication::sample();
    assert_eq!(article_sources(&p, &["--as-of", "2024-03-16"]), ["The Weekly Mirror"; 3]);
    let text = p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "text"]).ok().stdout();
    assert!(text.contains("· The Weekly Mirror") && !text.contains("· articles"), "{text}");

    p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write(
        "gazette.toml",
        &config.replace("folder = \"articles\"\n", "folder = \"articles\"\nname = \"Harbour desk\"\n"),
    );
    let all = p.gazette(&["articles", "--as-of", "2024-03-16", "--all", "--json"]).ok().json();
    let left_out = all["left_out"].as_array().expect("left_out");
    assert_eq!(left_out.len(), 4, "the three sent and the draft: {all:#}");
    assert!(all["articles"].as_array().is_some_and(Vec::is_empty), "nothing is new under a new name: {all:#}");

    let feed = Publication::with_config(&format!(
        "{}name = \"Mirror wire\"\n",
        feeds_config(&[fixture("feeds/seed-mirror.xml")], "")
    ));
    assert_eq!(article_sources(&feed, &["--as-of", AS_OF]), ["Mirror wire"; 6]);
}
