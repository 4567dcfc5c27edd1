//! placeholder
use super::*;

#[test]
fn dump() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/feeds");
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != "SOURCES.md" && !n.starts_with('.'))
        .collect();
    names.sort();
    let opts = ReadOptions { timezone: chrono_tz::UTC };
    for name in names {
        let bytes = std::fs::read(format!("{dir}/{name}")).unwrap();
        match parse_feed(&bytes, None, &name, &opts) {
            Err(e) => println!("=== {name}: ERROR {e}"),
            Ok(articles) => {
                println!(
                    "=== {name}: {} articles, source={:?}",
                    articles.len(),
                    articles.first().map(|a| a.source.clone())
                );
                for a in articles.iter().take(3) {
                    let s: String = a.summary.chars().take(100).collect();
                    let c: String = a.content_html.as_str().chars().take(150).collect();
                    println!(
                        "  - title={:?}\n    url={:?} date={:?}\n    author={:?} tags={:?}\n    image={:?}\n    id={:?}\n    summary={:?}\n    content={:?} ({} bytes)",
                        a.title,
                        a.url.as_ref().map(|u| u.as_str()),
                        a.date.map(|d| d.to_rfc3339()),
                        a.author,
                        a.tags,
                        a.image.as_ref().map(|i| (i.url.as_str(), i.alt.as_str())),
                        a.id,
                        s,
                        c,
                        a.content_html.as_str().len()
                    );
                }
                let undated = articles.iter().filter(|a| a.date.is_none()).count();
                let nourl = articles.iter().filter(|a| a.url.is_none()).count();
                let noimg = articles.iter().filter(|a| a.image.is_none()).count();
                println!("  undated={undated} nourl={nourl} noimage={noimg}");
            }
        }
    }
}
