//! One test per real-world feed in `tests/fixtures/feeds` (see its SOURCES.md), each checking
//! what that feed is known for, plus the hand-written hostile feed. These feeds are why the
//! parsing rules exist; a rule that breaks one of them should fail here, by name.

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use url::Url;

use super::{ReadOptions, SourceError, parse_feed};
use crate::domain::Article;

const FEEDS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/feeds");

fn bytes(name: &str) -> Vec<u8> {
    let path = format!("{FEEDS}/{name}");
    std::fs::read(&path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"))
}

fn parse_with(name: &str, timezone: Tz, base: Option<&str>) -> Vec<Article> {
    let base = base.map(|b| Url::parse(b).expect("valid base"));
    let articles = parse_feed(&bytes(name), base.as_ref(), name, &ReadOptions { timezone })
        .unwrap_or_else(|error| panic!("{name}: {error}"));
    assert_well_formed(name, &articles);
    articles
}

fn parse(name: &str) -> Vec<Article> {
    parse_with(name, chrono_tz::UTC, None)
}

fn utc(text: &str) -> Option<DateTime<Utc>> {
    Some(DateTime::parse_from_rfc3339(text).expect("valid test date").with_timezone(&Utc))
}

fn find<'a>(articles: &'a [Article], title: &str) -> &'a Article {
    articles.iter().find(|a| a.title == title).unwrap_or_else(|| panic!("no article titled {title:?}"))
}

fn url_of(article: &Article) -> &str {
    article.url.as_ref().map_or("", Url::as_str)
}

/// What every article from every feed must satisfy, whatever the feed did.
fn assert_well_formed(name: &str, articles: &[Article]) {
    for article in articles {
        let title = &article.title;
        assert!(!title.is_empty(), "{name}: empty title");
        assert_eq!(title, title.trim(), "{name}: title {title:?} is padded");
        assert!(!title.contains(['\n', '\r', '\t']), "{name}: title {title:?} has line breaks");
        let summary = &article.summary;
        assert!(summary.chars().count() <= 301, "{name}: summary of {title:?} is too long");
        assert!(!summary.contains(['\n', '\r']), "{name}: summary of {title:?} has line breaks");
        // ("</" is allowed in summaries: Advogato's author wrote a literal "</rant>".)
        for markup in ["<p", "<br", "<a ", "<img", "<div", "&amp;", "&lt;", "&gt;", "&quot;", "&#"] {
            assert!(!summary.contains(markup), "{name}: summary of {title:?} has {markup:?}: {summary}");
        }
        for markup in ["<p", "<br", "<a ", "<img", "<div", "</", "&amp;", "&lt;", "&gt;", "&quot;", "&#"] {
            assert!(!title.contains(markup), "{name}: title {title:?} has {markup:?}");
        }
        if let Some(url) = &article.url {
            assert!(matches!(url.scheme(), "http" | "https"), "{name}: link {url}");
        }
        if let Some(image) = &article.image {
            assert!(matches!(image.url.scheme(), "http" | "https"), "{name}: image {}", image.url);
            assert!(!image.alt.is_empty(), "{name}: image without alt");
        }
        assert!(!article.id.is_empty(), "{name}: empty id");
        assert!(!article.source.is_empty(), "{name}: empty source label");
        assert_safe_html(name, article.content_html.as_str());
    }
}

/// The sanitiser's promises, checked on its output: element by element, attribute by attribute
/// (article text may well mention "JavaScript:" or "data:").
fn assert_safe_html(name: &str, html: &str) {
    const BANNED_ELEMENTS: &[&str] = &[
        "script", "style", "iframe", "frame", "frameset", "object", "embed", "applet", "form", "input", "button",
        "textarea", "select", "option", "svg", "math", "meta", "link", "base", "noscript", "template", "param",
    ];
    assert!(!html.contains("<!--"), "{name}: a comment survived");
    for tag in html.split('<').skip(1).filter_map(|t| t.split('>').next()) {
        let tag_name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_lowercase();
        assert!(!BANNED_ELEMENTS.contains(&tag_name.as_str()), "{name}: <{tag}> survived sanitising");
        let attributes = tag.split_once(' ').map_or("", |(_, a)| a);
        let lower = attributes.to_lowercase();
        for banned in ["javascript:", "vbscript:", "data:", "style=", "/_/stat", "/~r/", "/~ff/"] {
            assert!(!lower.contains(banned), "{name}: {banned:?} survived in <{tag}>");
        }
        for attribute in lower.split_whitespace() {
            assert!(!(attribute.starts_with("on") && attribute.contains('=')), "{name}: event handler in <{tag}>");
        }
        if tag_name == "img" {
            assert!(tag.contains(" alt=\""), "{name}: <{tag}> has no alt");
            assert!(tag.contains(" src=\"http"), "{name}: <{tag}> has no absolute src");
        }
        if tag_name == "a" && !tag.starts_with('/') {
            assert!(tag.contains("rel=\"noopener noreferrer\""), "{name}: <{tag}> lacks rel");
            if let Some(href) = tag.split("href=\"").nth(1) {
                assert!(
                    href.starts_with("http://") || href.starts_with("https://") || href.starts_with("mailto:"),
                    "{name}: <{tag}> has a bad href"
                );
            }
        }
    }
}

#[test]
fn wordpress_content_encoded_gives_full_html_and_creator() {
    let articles = parse("wordpress-content-encoded.xml");
    assert_eq!(articles.len(), 10);
    let article = find(&articles, "The Easiest Way to Get a URL for your Apple Wallet Passkit Pass");
    assert_eq!(article.source, "Natasha The Robot");
    assert_eq!(article.author.as_deref(), Some("Natasha Murashev"));
    assert_eq!(url_of(article), "https://www.natashatherobot.com/url-apple-wallet-passkit-pass/");
    assert_eq!(article.date, utc("2017-07-07T11:06:10Z"));
    assert!(article.tags.contains(&"passkit".to_string()), "{:?}", article.tags);
    // The full post from content:encoded, far longer than the excerpt in <description>.
    assert!(article.content_html.as_str().len() > 3000);
    assert!(article.content_html.as_str().contains("<a href=\"https://www.tryswift.co/events/2017/nyc/\""));
    assert!(article.summary.starts_with("For try! Swift NYC, we are playing with the idea"));
    let image = article.image.as_ref().expect("first image of the content");
    assert!(image.url.as_str().ends_with("Screen-Shot-2017-07-07-at-12.27.33-PM.png"));
}

#[test]
fn wordpress_untitled_items_get_fallback_titles() {
    let articles = parse("wordpress-untitled-items.xml");
    assert_eq!(articles.len(), 10);
    let titled = ["Instagram hits 400 million users", "Complete mirror of this blog", "Steve Jobs and ET"];
    for title in titled {
        find(&articles, title);
    }
    // The four items with `<title></title>` take their first words; `&#8217;` is decoded.
    let first = &articles[0];
    assert_eq!(first.title, "This week’s Core Intuition is out with a…");
    assert_eq!(url_of(first), "http://www.manton.org/2015/09/3071.html");
    let fallbacks = articles.iter().filter(|a| a.title.ends_with('…')).count();
    assert_eq!(fallbacks, 4);
    assert_eq!(articles[2].title, "Looking forward to NSDrinking tonight, 8pm at Radio…");
}

#[test]
fn feedburner_feed_with_leading_newline_parses() {
    let articles = parse("wordpress-feedburner-leading-newline.xml");
    assert_eq!(articles.len(), 20);
    assert_eq!(articles[0].source, "TechCrunch");
    let article = find(&articles, "Angie’s List Sets Price Range IPO At $11 To $13 Per Share; Valued At Over $600M");
    assert_eq!(article.author.as_deref(), Some("Leena Rao"));
    assert_eq!(article.date, utc("2011-11-02T17:25:27Z"));
    // The post's own picture (media:content), not the author's gravatar.
    let image = article.image.as_ref().expect("image");
    assert!(image.url.as_str().contains("angies-list.jpeg"), "{}", image.url);
    assert_eq!(image.alt, article.title);
    for article in &articles {
        assert!(article.image.as_ref().is_none_or(|i| !i.url.as_str().contains("gravatar")));
        assert!(!article.content_html.as_str().contains("feedburner.com/~"), "{}", article.title);
    }
}

#[test]
fn medium_stat_pixel_is_gone_and_source_parameter_dropped() {
    let raw = String::from_utf8(bytes("medium-rss.xml")).expect("utf-8");
    assert!(raw.contains("/_/stat?"), "the fixture has the pixel");
    let articles = parse("medium-rss.xml");
    assert_eq!(articles.len(), 10);
    for article in &articles {
        assert!(!article.content_html.as_str().contains("_/stat"), "{}", article.title);
        assert!(!url_of(article).contains("source=rss"), "{}", url_of(article));
    }
    let article = find(&articles, "Hodl Hodl closes funding round");
    assert_eq!(url_of(article), "https://medium.com/@hodlhodl/hodl-hodl-closes-funding-round-417d97952d42");
    assert_eq!(article.tags, ["bitcoin", "funding"]);
    assert_eq!(article.date, utc("2018-11-19T08:10:26Z"));
    assert_eq!(article.author.as_deref(), Some("Hodl Hodl"));
    assert!(articles.iter().any(|a| a.image.is_some()), "Medium figures become images");
}

#[test]
fn podcast_audio_enclosures_are_not_images() {
    let articles = parse("podcast-itunes-enclosures.xml");
    assert_eq!(articles.len(), 4);
    let article = find(&articles, "Andrea McVittie, User Experience Designer");
    assert_eq!(article.date, utc("2017-12-06T14:00:00Z"));
    assert!(article.summary.starts_with("Andrea studied fine art at Michigan State"));
    assert!(article.content_html.as_str().contains("Full transcript and show notes"));
    for article in &articles {
        assert!(article.image.as_ref().is_none_or(|i| !i.url.as_str().ends_with(".mp3")));
    }
}

#[test]
fn cdata_link_pubdate_and_bare_author() {
    let articles = parse("rss-cdata-link-and-pubdate.xml");
    assert_eq!(articles.len(), 25);
    let article = find(&articles, "PM Modi-Xi Jinping informal summit in Varanasi this October: Report");
    assert_eq!(
        url_of(article),
        "https://www.livemint.com/news/india/pm-modi-xi-jinping-informal-summit-in-varanasi-this-october-report-1559104147038.html"
    );
    // `<pubDate><![CDATA[Wed, 29 May 2019 10:16:00 GMT]]> </pubDate>`
    assert_eq!(article.date, utc("2019-05-29T10:16:00Z"));
    assert_eq!(article.author.as_deref(), Some("Elizabeth Roche"));
    assert!(articles.iter().all(|a| a.date.is_some()));
}

#[test]
fn escaped_html_and_double_escaped_entities_read_cleanly() {
    let articles = parse("rss-escaped-html-entities.xml");
    assert_eq!(articles.len(), 13);
    let article = find(&articles, "TCMPortMapper 2018 Edition");
    let text = super::text::html_to_text(article.content_html.as_str());
    // `&amp;#39;` in the XML is an apostrophe for the reader.
    assert!(text.contains("we needed a way to make the app's network service available"), "{text}");
    assert!(!text.contains("&#39;"));
    assert!(article.content_html.as_str().contains("<a href=\"https://subethaedit.net/\""));
    let swift = find(&articles, "Swift Library naming warts");
    assert!(swift.summary.contains("This list isn't exhaustive"), "{}", swift.summary);
}

#[test]
fn slovak_diacritics_survive() {
    let articles = parse("rss-nonascii-slovak.xml");
    assert_eq!(articles.len(), 30);
    assert_eq!(articles[0].source, "Aktuality.sk - aktuálne spravodajstvo");
    let article = find(&articles, "Analytici Goldman Sachs zvýšili odhad rastu ekonomiky USA");
    assert!(article.summary.starts_with("Očakávajú totiž, že plán fiškálnych stimulov"));
    assert_eq!(article.date, utc("2021-01-17T18:27:00Z"));
    assert!(articles.iter().all(|a| a.image.is_some()));
}

#[test]
fn gb2312_text_and_slash_dates() {
    let articles = parse_with("rss-gb2312-nonstandard-dates.xml", chrono_tz::Asia::Shanghai, None);
    assert_eq!(articles.len(), 20);
    assert_eq!(articles[0].source, "投资资讯网交易在线--流通纪念币最新20篇论坛主题-全文");
    let article = &articles[0];
    assert_eq!(article.title, "建国35周年纪念，华表，和平鸽");
    assert_eq!(article.author.as_deref(), Some("大鱼儿"));
    // `2020/1/10 14:33:00`, no zone: wall time in the publication's zone (UTC+8).
    assert_eq!(article.date, utc("2020-01-10T06:33:00Z"));
    assert!(article.summary.starts_with("建国35周年纪念，华表，和平鸽 35周年1套520"), "{}", article.summary);
    assert!(articles.iter().all(|a| a.date.is_some()));
}

#[test]
fn le_monde_latin1_double_escaped_and_image_enclosures() {
    let articles = parse("rss-iso-8859-1-double-escaped.xml");
    assert_eq!(articles.len(), 12);
    assert_eq!(articles[0].source, "Le Monde.fr : A la Une");
    let article = find(&articles, "L'arsenal du Hezbollah lui permet d'étendre la \"guerre des roquettes\"");
    // `&#38;#34;` in the XML: quotation marks for the reader.
    assert!(article.summary.starts_with("Outre 10 000 à 15 000 Katioucha, le \"Parti de Dieu\" aurait reçu de l'Iran"));
    assert_eq!(article.date, utc("2006-07-19T14:05:49Z"));
    let image = article.image.as_ref().expect("image/jpeg enclosure");
    assert_eq!(
        image.url.as_str(),
        "http://medias.lemonde.fr/mmpub/edt/ill/2006/07/19/h_1_ill_796917_roquettehaifa.jpg"
    );
    for article in &articles {
        assert!(!article.summary.contains("&#"), "{}", article.summary);
    }
}

#[test]
fn undeclared_latin1_and_portuguese_dates() {
    let articles = parse("rss-no-prolog-latin1-portuguese-dates.xml");
    assert_eq!(articles.len(), 15);
    assert_eq!(articles[0].source, "UOL Noticias");
    let article = &articles[0];
    assert_eq!(article.title, "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno");
    // `Seg, 24 Set 2018 19:42:40 -0300`: Monday 24 September.
    assert_eq!(article.date, utc("2018-09-24T22:42:40Z"));
    assert!(article.summary.starts_with("Líder na pesquisa Ibope"), "{}", article.summary);
    assert!(articles.iter().all(|a| a.date.is_some()));
    assert!(articles.iter().all(|a| !a.title.contains('\u{fffd}')));
}

#[test]
fn relative_links_resolve_and_two_digit_years_parse() {
    let feed_url = "https://www.arcgames.com/en/games/neverwinter/news/rss";
    let articles = parse_with("rss-relative-links-2digit-year.xml", chrono_tz::UTC, Some(feed_url));
    assert_eq!(articles.len(), 2);
    let article = find(&articles, "Neverwinter & Jingle Jam Humble Bundle!");
    // `<link>/en/games/neverwinter/news/detail/…</link>` against the channel link, itself
    // relative to the feed's URL.
    assert_eq!(
        url_of(article),
        "https://www.arcgames.com/en/games/neverwinter/news/detail/10743874-neverwinter-%26-jingle-jam-humble-bundle%21"
    );
    // `Thu, 07 Dec 17 10:00:29 -0800`
    assert_eq!(article.date, utc("2017-12-07T18:00:29Z"));

    // Read from a file there is nothing to resolve against: the permanent guid stands in, and
    // no relative link leaks out.
    let from_file = parse("rss-relative-links-2digit-year.xml");
    let article = find(&from_file, "Neverwinter & Jingle Jam Humble Bundle!");
    assert_eq!(url_of(article), "http://www.arcgames.com/en/games/PAB_nw/news/detail/10743874");
}

#[test]
fn utf8_bom_and_image_first_descriptions() {
    let raw = bytes("rss-utf8-bom.xml");
    assert!(raw.starts_with(b"\xef\xbb\xbf"), "the fixture starts with a BOM");
    let articles = parse("rss-utf8-bom.xml");
    assert_eq!(articles.len(), 10);
    assert_eq!(articles[0].source, "Don't Hit Save");
    let article = find(&articles, "Skipping Around");
    let image = article.image.as_ref().expect("the comic");
    assert_eq!(image.url.as_str(), "https://donthitsave.com/comicimages/dhs_2019-05-24_skipping-around.png");
    assert_eq!(image.alt, "Skipping Around");
    assert!(article.summary.starts_with("I was nearly murdered by a coconut today."));
    assert_eq!(article.date, utc("2019-05-24T07:00:00Z"));
}

#[test]
fn bogus_prolog_emoji_and_relative_images() {
    let articles = parse("rss-bogus-prolog-emoji.xml");
    assert_eq!(articles.len(), 20);
    assert_eq!(articles[0].source, "www.fcutrecht.net voetbalnieuws");
    let article = find(&articles, "Serdar Gözübüyük scheidsrechter bij FC Twente - FC Utrecht");
    assert!(article.summary.contains("🚩 Joost van Zuilen"), "{}", article.summary);
    // `<img src="/pictures/100/scheids.jpg">` against the channel link.
    let image = article.image.as_ref().expect("image");
    assert_eq!(image.url.as_str(), "https://www.fcutrecht.net/pictures/100/scheids.jpg");
    assert!(article.content_html.as_str().contains("src=\"https://www.fcutrecht.net/pictures/100/scheids.jpg\""));
    assert_eq!(article.date, utc("2021-09-06T10:17:00Z"));
}

#[test]
fn advogato_dirty_html_and_date_titles() {
    let articles = parse("rss-0.91-advogato.xml");
    assert_eq!(articles.len(), 10);
    let article = &articles[0];
    assert_eq!(article.title, "21 Sep 2004");
    // `Tue, 21 Sep 2004 14:20:46 -0700`
    assert_eq!(article.date, utc("2004-09-21T21:20:46Z"));
    // The unclosed `<p>`s come out balanced.
    let html = article.content_html.as_str();
    assert_eq!(html.matches("<p>").count(), html.matches("</p>").count(), "{html}");
    assert!(article.summary.starts_with("On the Fedora front: FC3test2 is out"), "{}", article.summary);
    let ben = articles.iter().find(|a| a.content_html.as_str().contains("Ben &amp; Jerry")).expect("Ben & Jerry's");
    assert!(super::text::html_to_text(ben.content_html.as_str()).contains("Ben & Jerry's"));
}

#[test]
fn userland_items_without_titles_or_dates() {
    let articles = parse("rss-0.92-userland-no-titles-no-dates.xml");
    assert_eq!(articles.len(), 22);
    assert_eq!(articles[0].source, "Dave Winer: Grateful Dead");
    assert!(articles.iter().all(|a| a.date.is_none()), "no pubDate means no date");
    assert_eq!(articles[0].title, "It's been a few days since I added…");
    // Ids are made from the content, so they are unique and the same on every read.
    let again = parse("rss-0.92-userland-no-titles-no-dates.xml");
    // (The feed carries one item twice, word for word: that pair shares an id, as it should.)
    let ids: std::collections::HashSet<&str> = articles.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids.len(), 21);
    assert!(articles.iter().zip(&again).all(|(a, b)| a.id == b.id));
    // mp3 enclosures are no pictures.
    assert!(articles.iter().all(|a| a.image.as_ref().is_none_or(|i| !i.url.as_str().ends_with(".mp3"))));
}

#[test]
fn biorxiv_padded_titles_and_date_only_dates() {
    let articles = parse_with("rss1-rdf-biorxiv.xml", chrono_tz::America::New_York, None);
    assert_eq!(articles.len(), 30);
    let article = &articles[0];
    assert!(article.title.starts_with("Wheat inositol pyrophosphate kinase (TaVIH2-3B) interacts"));
    assert_eq!(url_of(article), "http://biorxiv.org/cgi/content/short/743294v1?rss=1");
    // `<dc:date>2019-08-27</dc:date>`: midnight in the publication's zone.
    assert_eq!(article.date, utc("2019-08-27T04:00:00Z"));
    let author = article.author.as_deref().expect("creators");
    assert!(author.starts_with("Kaur, M., Shukla, A."), "{author}");
    assert!(author.chars().count() <= 121, "{author}");
    assert_eq!(articles[0].source, "bioRxiv Subject Collection: Plant Biology");
}

#[test]
fn japanese_rdf_uses_item_dates_not_the_channel_date() {
    let articles = parse("rss1-rdf-japanese.xml");
    assert_eq!(articles.len(), 36);
    let article = find(&articles, "新刊 『REMIX』 リリース");
    // The channel says 2007-07-16; the item says 2008-10-17T19:44:39+09:00.
    assert_eq!(article.date, utc("2008-10-17T10:44:39Z"));
    assert!(article.summary.starts_with("REMIX が出版された。"), "{}", article.summary);
    assert!(article.content_html.as_str().starts_with("<p>"), "the description is HTML");
    assert_eq!(article.author.as_deref(), Some("lessig"));
}

#[test]
fn blogger_atom_single_quotes_and_millisecond_dates() {
    let articles = parse("atom-blogger.xml");
    assert_eq!(articles.len(), 25);
    assert_eq!(articles[0].source, "4 Fighting Serpents of Death");
    let article = find(&articles, "4FSOD Documentary: Bloopers and Stuff");
    assert_eq!(url_of(article), "http://4fsodonline.blogspot.com/2007/12/4fsod-documentary-bloopers-and-stuff.html");
    assert_eq!(article.author.as_deref(), Some("Anthony"));
    // Entry dates, not the feed's 2014 <updated>.
    assert!(articles.iter().all(|a| a.date.is_some_and(|d| d.format("%Y").to_string() == "2007")));
    assert_eq!(article.date, utc("2007-12-15T07:15:00Z"));
    assert!(article.content_html.as_str().contains("<br>"));
}

#[test]
fn wordpress_atom_with_xml_base_and_mixed_cdata_titles() {
    let articles = parse("atom-wordpress-xml-base.xml");
    assert_eq!(articles.len(), 25);
    // `<title type="html">Link: <![CDATA[Pillow Fight Leaves 24 Concussed]]></title>`
    let article = find(&articles, "Link: Pillow Fight Leaves 24 Concussed");
    assert!(url_of(article).starts_with("http://www.nytimes.com/2015/09/05/us/"), "{}", url_of(article));
    assert_eq!(article.author.as_deref(), Some("Paul Kafasis"));
    assert_eq!(article.date, utc("2015-09-08T14:21:41Z"));
    let own = find(&articles, "Perverse Incentives");
    assert_eq!(url_of(own), "http://onefoottsunami.com/2015/09/07/perverse-incentives-2/");
    assert_eq!(own.id, "http://onefoottsunami.com/?p=14861");
}

#[test]
fn atom_relative_links_without_base_resolve_against_the_self_link() {
    let articles = parse("atom-relative-links-no-base.xml");
    assert_eq!(articles.len(), 20);
    let article = find(&articles, "Inhibiting Suspend");
    // `<link href="/blog/2012/07/16/Inhibiting-Suspend"/>`, feed `<link rel="self"
    // href="http://intertwingly.net/blog/index.atom"/>`.
    assert_eq!(url_of(article), "http://intertwingly.net/blog/2012/07/16/Inhibiting-Suspend");
    assert_eq!(article.date, utc("2012-07-16T15:48:01Z"));
    assert_eq!(article.author.as_deref(), Some("Sam Ruby"), "the feed's author");
    // The xhtml content keeps its paragraphs and code, loses its inline SVG.
    let html = article.content_html.as_str();
    assert!(html.contains("<pre>require 'dbus'"), "{html}");
    for article in &articles {
        for href in article.content_html.as_str().split("href=\"").skip(1) {
            assert!(href.starts_with("http"), "{}: {href}", article.title);
        }
    }
}

#[test]
fn github_atom_trims_titles_and_reads_offsets() {
    let articles = parse("atom-github-commits.xml");
    assert_eq!(articles.len(), 20);
    let article = &articles[0];
    assert_eq!(article.title, "Merge pull request #402 from albertsun/safer-liquid-migration");
    assert_eq!(article.author.as_deref(), Some("cantino"));
    assert_eq!(article.date, utc("2014-07-17T05:26:22Z"));
    // A lone `media:thumbnail` (the committer's avatar) is the picture.
    let image = article.image.as_ref().expect("avatar");
    assert_eq!(image.url.as_str(), "https://avatars3.githubusercontent.com/u/83835?s=30");
    // `2014-07-01T16:37:47+09:30`
    assert!(articles.iter().any(|a| a.date == utc("2014-07-01T07:07:47Z")));
}

#[test]
fn youtube_thumbnails_become_images() {
    let articles = parse("atom-youtube.xml");
    assert_eq!(articles.len(), 15);
    assert_eq!(articles[0].source, "SecDSM");
    let article = find(&articles, "SecDSM 2017 March - Talk 01");
    assert_eq!(url_of(article), "https://www.youtube.com/watch?v=OCs1E0vP7Oc");
    assert_eq!(article.id, "yt:video:OCs1E0vP7Oc");
    let image = article.image.as_ref().expect("thumbnail");
    assert_eq!(image.url.as_str(), "https://i4.ytimg.com/vi/OCs1E0vP7Oc/hqdefault.jpg");
    assert_eq!(image.alt, "SecDSM 2017 March - Talk 01");
    // The empty media:description gives an empty summary, not an error.
    assert_eq!(article.summary, "");
    assert!(articles.iter().all(|a| a.image.is_some()));
}

#[test]
fn arabic_text_is_intact() {
    let articles = parse("atom-rtl-arabic.xml");
    assert_eq!(articles.len(), 48);
    assert_eq!(articles[0].source, "BBCArabic.com | الصفحة الرئيسية");
    let article = &articles[0];
    assert_eq!(
        article.title,
        "مسؤول أمريكي لبي بي سي: تنظيم الدولة الإسلامية يصنع ويستخدم أسلحة كيماوية في العراق وسوريا"
    );
    assert!(article.summary.starts_with("تنظيم الدولة الإسلامية يستخدم أسلحة كيماوية"));
    assert!(article.tags.contains(&"الشرق الأوسط".to_string()), "{:?}", article.tags);
    assert_eq!(article.date, utc("2015-09-10T22:19:14Z"));
}

#[test]
fn json_feed_1_0() {
    let articles = parse("jsonfeed-1.0.json");
    assert_eq!(articles.len(), 20);
    assert_eq!(articles[0].source, "inessential.com");
    let article = &articles[0];
    assert_eq!(article.title, "James Dempsey and the Breakpoints Benefit App Camp for Girls");
    assert_eq!(url_of(article), "http://inessential.com/2017/06/02/james_dempsey_and_the_breakpoints_benefi");
    assert_eq!(article.author.as_deref(), Some("Brent Simmons"));
    assert_eq!(article.date, utc("2017-06-03T05:05:47Z"));
    assert!(article.content_html.as_str().starts_with("<p>On Wednesday night I know where I’ll be"));
}

#[test]
fn json_feed_1_1_authors_summary_and_images() {
    let articles = parse("jsonfeed-1.1.json");
    assert_eq!(articles.len(), 20);
    assert_eq!(articles[0].source, "fboës - Der Blog | Startseite");
    let article = find(&articles, "Lecker, lecker");
    assert_eq!(article.author.as_deref(), Some("Frank Boës"));
    assert_eq!(article.tags, ["Lustiges"]);
    assert_eq!(article.summary, "Da ist es zwar nicht ganz billig, dafür schmeckt's aber auch nicht.");
    assert_eq!(article.date, utc("2020-02-21T17:08:06Z"));
    let migrants = find(&articles, "Migrants");
    let image = migrants.image.as_ref().expect("item image");
    assert_eq!(image.url.as_str(), "https://img.youtube.com/vi/G2dGWH90aew/hqdefault.jpg");
    // The blog's Matomo counter is a tracking pixel.
    for article in &articles {
        assert!(!article.content_html.as_str().contains("stats.3960.org"), "{}", article.title);
    }
}

#[test]
fn json_feed_escaped_slashes_and_zone_less_dates() {
    let articles = parse_with("jsonfeed-1.0-escaped-slashes-no-tz.json", chrono_tz::America::Los_Angeles, None);
    assert_eq!(articles.len(), 26);
    let article = find(&articles, "Twitter Quitter");
    assert_eq!(url_of(article), "http://www.curtclifton.net/twitter-quitter");
    assert_eq!(article.id, "twitter-quitter");
    // `2018-01-06T08:00`: 08:00 in the publication's zone (Pacific, UTC-8 in January).
    assert_eq!(article.date, utc("2018-01-06T16:00:00Z"));
    assert_eq!(article.author.as_deref(), Some("Curt Clifton"));
}

#[test]
fn seed_mirror_article_and_its_week() {
    let articles = parse_with("seed-mirror.xml", chrono_tz::America::New_York, None);
    assert_eq!(articles.len(), 8);
    let article = find(&articles, "Armenian Sources Blast Azerbaijani TV Interviews with Artsakh POWs");
    assert_eq!(article.source, "The Armenian Mirror-Spectator");
    assert_eq!(
        url_of(article),
        "https://mirrorspectator.com/2024/03/12/armenian-sources-blast-azerbaijani-tv-interviews-with-artsakh-pows/"
    );
    assert_eq!(article.date, utc("2024-03-12T16:00:00Z"));
    assert_eq!(article.author.as_deref(), Some("Artak Beglaryan"));
    assert_eq!(article.tags, ["Armenia", "Artsakh"]);
    assert!(article.summary.starts_with("The We Exist initiative and Artak Beglaryan condemned"));
    let html = article.content_html.as_str();
    assert!(html.starts_with("<p>YEREVAN ( — The We Exist initiative denounced on March 12"), "{html}");
    assert!(html.contains("the arrest of Artsakh leaders is evidence of genocide"));
    assert!(html.contains("&amp;") || !html.contains('&'));
    // "The last 7 days" holds exactly 6 items from Fri 15 Mar 10:30 to Mon 18 Mar 14:20 (-0400).
    let eastern = chrono_tz::America::New_York;
    for now in [eastern.with_ymd_and_hms(2024, 3, 15, 10, 30, 0), eastern.with_ymd_and_hms(2024, 3, 18, 14, 19, 0)] {
        let now = now.single().expect("valid time").with_timezone(&Utc);
        let week = articles
            .iter()
            .filter_map(|a| a.date)
            .filter(|d| *d <= now && now - *d <= chrono::Duration::days(7))
            .count();
        assert_eq!(week, 6, "at {now}");
    }
}

#[test]
fn hostile_feed_leaves_nothing_dangerous() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/hostile-feed.xml");
    let raw = std::fs::read(path).expect("hostile fixture");
    let base = Url::parse("https://hostile.example/feed.xml").expect("valid");
    let articles = parse_feed(&raw, Some(&base), "hostile-feed.xml", &ReadOptions::default()).expect("parses");
    assert_well_formed("hostile-feed.xml", &articles);
    assert_eq!(articles.len(), 5);
    assert_eq!(articles[0].source, "Hostile Feed");

    let all_html: String = articles.iter().map(|a| a.content_html.as_str()).collect::<Vec<_>>().join("\n");
    for text in ["Visible text one.", "Visible text two.", "Visible text three."] {
        assert!(all_html.contains(text), "{text} was lost");
    }
    for gone in [
        "steal",
        "evil.example",
        "alert",
        "document.cookie",
        "display: none",
        "secret comment",
        "svg text",
        "math text",
        "template text",
        "iframe text",
        "object text",
        "applet text",
        "button text",
        "textarea text",
        "option text",
        "tracker.example",
        "pixel.wp.com",
        "piwik",
        "feedflare",
    ] {
        assert!(!all_html.contains(gone), "{gone:?} survived:\n{all_html}");
    }

    let scripts = find(&articles, "Scripts, styles and handlers");
    let html = scripts.content_html.as_str();
    assert!(html.contains("<img src=\"https://hostile.example/photo.jpg\" alt=\"\">"), "{html}");

    let urls = find(&articles, "Bad URLs");
    assert_eq!(urls.url, None, "a javascript: item link is no link");
    // Not the javascript: enclosure, nor the data: or javascript: images: the relative one.
    let image = urls.image.as_ref().expect("the resolved relative image");
    assert_eq!(image.url.as_str(), "https://hostile.example/images/relative.png");
    let html = urls.content_html.as_str();
    assert!(html.contains("<a href=\"https://hostile.example/relative/path\""), "{html}");
    assert!(html.contains("<a href=\"mailto:editor@hostile.example\""), "{html}");
    assert!(html.contains("src=\"https://hostile.example/images/relative.png\" alt=\"\""), "{html}");
    assert!(!html.contains("opener\""), "the feed's own rel is replaced: {html}");
    assert!(!html.contains("target="), "{html}");

    let pixels = find(&articles, "Tracking pixels");
    assert_eq!(url_of(pixels), "https://hostile.example/pixels");
    let html = pixels.content_html.as_str();
    assert_eq!(html.matches("<img").count(), 1, "only the real photo is left: {html}");
    assert!(html.contains("real-photo.jpg"));
    let image = pixels.image.as_ref().expect("the real photo, not the stat thumbnail");
    assert_eq!(image.url.as_str(), "https://hostile.example/real-photo.jpg");
    assert!(!html.contains("<a "), "the emptied feedflare link is gone: {html}");

    let escaped = find(&articles, "Escaped twice");
    assert_eq!(escaped.summary, "It's escaped twice");
    assert_eq!(escaped.content_html.as_str(), "<p>It's escaped twice</p>");
}

#[test]
fn hostile_atom_bases_cannot_smuggle_schemes() {
    let atom = br#"<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom" xml:base="javascript:alert(1)//">
      <title>x</title><id>x</id><updated>2024-03-12T00:00:00Z</updated>
      <entry xml:base="data:text/html,"><id>e</id><title type="html">&lt;img src=x onerror=alert(1)&gt;Hi</title>
        <updated>2024-03-12T00:00:00Z</updated><link href="/post"/>
        <content type="html" xml:base="vbscript:x">&lt;a href="/a"&gt;a&lt;/a&gt;&lt;img src="b.png"&gt;</content>
      </entry></feed>"#;
    let articles = parse_feed(atom, None, "atom.xml", &ReadOptions::default()).expect("parses");
    assert_well_formed("atom.xml", &articles);
    let article = &articles[0];
    assert_eq!(article.title, "Hi");
    assert_eq!(article.url, None);
    assert_eq!(article.content_html.as_str(), "<a rel=\"noopener noreferrer\">a</a>");
}

#[test]
fn every_fixture_parses_and_is_well_formed() {
    let mut names: Vec<String> = std::fs::read_dir(FEEDS)
        .expect("fixture folder")
        .filter_map(Result::ok)
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".xml") || name.ends_with(".json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 28, "{names:?}");
    for name in &names {
        let articles = parse_with(name, chrono_tz::Europe::Paris, Some("https://feeds.example/feed"));
        assert!(!articles.is_empty(), "{name}: no articles");
    }
}

#[test]
fn truncated_fixture_is_a_malformed_feed() {
    let raw = bytes("seed-mirror.xml");
    let cut = &raw[..raw.len() / 2];
    let error = parse_feed(cut, None, "seed-mirror.xml", &ReadOptions::default());
    match error {
        Err(error @ SourceError::NotAFeed { .. }) => {
            assert!(!error.is_unreachable());
            assert!(error.to_string().starts_with("seed-mirror.xml is not an RSS, Atom or JSON feed: "));
        }
        other => panic!("expected NotAFeed, got {other:?}"),
    }
}
