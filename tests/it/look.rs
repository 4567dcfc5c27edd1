//! The default digest as mailbox providers and readers see it: SpamAssassin's local rules, and
//! headless Chromium at phone and desktop widths, in light and dark colours. The screenshots are
//! kept under target/look/ to be looked at.

use std::{path::Path, process::Command};

use crate::support::{Publication, feeds_config, fixture, repo};

fn sample_eml() -> Vec<u8> {
    let p = Publication::sample();
    p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "eml", "--subscriber", "ada@example.org"]).ok().0.stdout
}

fn seed_publication() -> Publication {
    Publication::with_config(&feeds_config(
        &[fixture("feeds/seed-mirror.xml"), fixture("feeds/atom-rtl-arabic.xml")],
        "[selection]\nmax_age = \"7d\"\n",
    ))
}

fn spam_score(eml: &[u8]) -> f64 {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("m.eml");
    std::fs::write(&path, eml).expect("write");
    let out = Command::new("spamassassin")
        .args(["-L", "-t"])
        .stdin(std::fs::File::open(&path).expect("open"))
        .output()
        .expect("spamassassin is installed by scripts/test.sh");
    let report = String::from_utf8_lossy(&out.stdout);
    let status = report
        .lines()
        .find(|l| l.starts_with("X-Spam-Status:"))
        .unwrap_or_else(|| panic!("no X-Spam-Status:\n{report}"));
    let score: f64 = status
        .split("score=")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no score in {status}"));
    let rules: Vec<&str> = report.lines().skip_while(|l| !l.contains("Content analysis details")).collect();
    eprintln!("SpamAssassin score {score}\n{}", rules.join("\n"));
    score
}

#[test]
fn spamassassin_scores_the_sample_digest_at_most_2() {
    let score = spam_score(&sample_eml());
    assert!(score <= 2.0, "score {score}");
}

#[test]
fn spamassassin_scores_a_real_news_digest_at_most_2() {
    let p = seed_publication();
    let eml = p.gazette(&["preview", "--as-of", "2024-03-16T12:00:00-04:00", "--format", "eml"]).ok().0.stdout;
    let score = spam_score(&eml);
    assert!(score <= 2.0, "score {score}");
}

/// What the page reports about itself, read back through the DOM Chromium dumps.
struct Measure {
    scroll_width: u32,
    background: String,
    hidden_titles: u32,
}

/// A page that loads the digest in an iframe exactly as wide as the device (headless Chromium
/// will not make a window narrower than 500 px) and writes what it measures into its own DOM.
fn probe_page(digest: &Path, width: u32) -> String {
    format!(
        r#"<!doctype html><html><body style="margin:0">
<iframe id="f" src="file://{}" style="border:0;width:{width}px;height:900px"></iframe>
<script>
document.getElementById('f').addEventListener('load', function () {{
  const doc = this.contentDocument, win = this.contentWindow;
  let hidden = 0;
  doc.querySelectorAll('h2').forEach(h => {{ const r = h.getBoundingClientRect(); if (r.width === 0 || r.height === 0) hidden++; }});
  const out = document.createElement('pre');
  out.id = 'probe';
  out.textContent = JSON.stringify({{ sw: doc.documentElement.scrollWidth, bg: win.getComputedStyle(doc.body).backgroundColor, hidden, titles: doc.querySelectorAll('h2').length }});
  document.body.appendChild(out);
}});
</script></body></html>"#,
        digest.display()
    )
}

fn chromium(args: &[&str], page: &Path) -> String {
    let profile = tempfile::tempdir().expect("tmp");
    let out = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--allow-file-access-from-files",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium is installed by scripts/test.sh");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn measure(digest: &Path, width: u32, dark: bool, dir: &Path) -> Measure {
    let stem = digest.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let page = dir.join(format!("probe-{stem}-{width}-{dark}.html"));
    std::fs::write(&page, probe_page(digest, width)).expect("write");
    let size = format!("--window-size={},900", width.max(500) + 20);
    let mut args = vec![size.as_str(), "--virtual-time-budget=3000", "--dump-dom"];
    if dark {
        args.push("--force-dark-mode");
    }
    let dom = chromium(&args, &page);
    let json = dom
        .split("<pre id=\"probe\">")
        .nth(1)
        .and_then(|s| s.split("</pre>").next())
        .unwrap_or_else(|| panic!("no probe output at {width}px:\n{dom}"))
        .replace("&quot;", "\"");
    let v: serde_json::Value = serde_json::from_str(&json).expect("probe JSON");
    assert!(v["titles"].as_u64().unwrap_or(0) > 0, "the probe saw no article titles: {v}");
    Measure {
        scroll_width: v["sw"].as_u64().unwrap_or(u64::MAX) as u32,
        background: v["bg"].as_str().unwrap_or_default().to_owned(),
        hidden_titles: v["hidden"].as_u64().unwrap_or(u64::MAX) as u32,
    }
}

fn screenshot(page: &Path, width: u32, dark: bool, shot: &Path) {
    let size = format!("--window-size={width},2400");
    let target = format!("--screenshot={}", shot.display());
    let mut args = vec![size.as_str(), target.as_str()];
    if dark {
        args.push("--force-dark-mode");
    }
    chromium(&args, page);
    assert!(shot.exists(), "no screenshot at {}", shot.display());
}

fn check_layout(name: &str, html: &str) {
    let dir = repo().join("target/look");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let page = dir.join(format!("{name}.html"));
    std::fs::write(&page, html).expect("write");
    for (width, dark) in [(375, false), (375, true), (1200, false), (1200, true)] {
        let m = measure(&page, width, dark, &dir);
        assert!(m.scroll_width <= width, "{name}: {}px wide in a {width}px window: sideways scrolling", m.scroll_width);
        assert_eq!(m.hidden_titles, 0, "{name}: every article title is visible");
        let shade = if dark { "dark" } else { "light" };
        screenshot(&page, width, dark, &dir.join(format!("{name}-{width}-{shade}.png")));
        let lum = luminance(&m.background);
        if dark {
            assert!(lum < 0.3, "{name}: dark mode background is {} at {width}px", m.background);
        } else {
            assert!(lum > 0.7, "{name}: light background is {} at {width}px", m.background);
        }
    }
}

/// Relative luminance (0 black … 1 white) of a CSS `rgb()`/`rgba()` colour; a transparent body
/// shows the canvas, which Chromium paints white (light) or near-black (dark).
fn luminance(css: &str) -> f64 {
    let nums: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    match nums.as_slice() {
        [r, g, b] | [r, g, b, _] => (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255.0,
        _ => panic!("not a colour: {css}"),
    }
}

#[test]
fn the_sample_digest_fits_a_phone_and_a_desktop_in_light_and_dark() {
    let p = Publication::sample();
    let html = p.gazette(&["preview", "--as-of", "2024-03-16", "--format", "html"]).ok().stdout();
    assert!(html.contains("<html lang=\"en\""), "lang is set");
    assert!(
        html.contains("prefers-color-scheme: dark") || html.contains("prefers-color-scheme:dark"),
        "dark mode rules kept"
    );
    check_layout("sample", &html);
}

#[test]
fn a_real_news_digest_fits_a_phone_and_a_desktop() {
    let p = seed_publication();
    let html = p.gazette(&["preview", "--as-of", "2024-03-16T12:00:00-04:00", "--format", "html"]).ok().stdout();
    check_layout("seed", &html);
}

#[test]
fn every_image_has_alt_text_and_links_are_web_or_mail() {
    let p = seed_publication();
    let html = p.gazette(&["preview", "--as-of", "2024-03-16T12:00:00-04:00", "--format", "html"]).ok().stdout();
    for img in html.split("<img").skip(1) {
        let tag = img.split('>').next().unwrap_or_default();
        assert!(tag.contains("alt="), "image without alt: <img{tag}>");
    }
    for href in html.split("href=\"").skip(1) {
        let url = href.split('"').next().unwrap_or_default();
        assert!(url.starts_with("http://") || url.starts_with("https://") || url.starts_with("mailto:"), "link {url}");
    }
}
