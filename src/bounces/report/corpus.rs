//! The parser's recall on real bounces: every message of tests/fixtures/bounces/corpus/ read,
//! its kind and first recipient compared with what `expected.tsv` says it must yield (the
//! folder's README names where each message and each expectation comes from). The table per
//! mail server and the misses are printed (`--no-capture` shows them on a passing run); the test
//! fails when recall falls below [`FLOOR`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::*;

/// Messages read right (kind and address both), in thousandths of the corpus: just under what
/// the parser reaches, so that a change that loses a message fails.
const FLOOR: usize = 970;

/// One line of the manifest.
struct Expected {
    file: String,
    server: String,
    kind: ReportKind,
    /// The recipient the report must name first; `None` where the message names none.
    address: Option<String>,
}

fn folder() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/bounces/corpus")
}

fn manifest() -> Vec<Expected> {
    let text = std::fs::read_to_string(folder().join("expected.tsv")).expect("the corpus has a manifest");
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|(n, line)| {
            let fields: Vec<&str> = line.split('\t').collect();
            let [file, server, kind, address] = fields[..] else {
                panic!("expected.tsv line {}: four tab-separated fields, got {line:?}", n + 1)
            };
            Expected {
                file: file.to_owned(),
                server: server.to_owned(),
                kind: kind.parse().unwrap_or_else(|_| panic!("expected.tsv line {}: kind {kind:?}", n + 1)),
                address: (address != "-").then(|| address.to_ascii_lowercase()),
            }
        })
        .collect()
}

/// Why a message was read wrong, or `None` when it was read right.
fn miss(e: &Expected, r: &Report) -> Option<String> {
    let named = r.recipients.first().map(EmailAddress::key);
    let kind_ok = r.kind == e.kind;
    let address_ok = e.address.is_none() || named == e.address;
    if kind_ok && address_ok {
        return None;
    }
    let mut why = Vec::new();
    if !kind_ok {
        why.push(format!("kind {} (want {})", r.kind.as_str(), e.kind.as_str()));
    }
    if !address_ok {
        why.push(format!(
            "address {} (want {})",
            named.as_deref().unwrap_or("none"),
            e.address.as_deref().unwrap_or("none")
        ));
    }
    Some(why.join(", "))
}

#[test]
fn corpus_recall_per_server() {
    let expected = manifest();
    assert!(expected.len() >= 120, "the corpus holds {} messages", expected.len());
    let on_disk = std::fs::read_dir(folder())
        .expect("the corpus folder")
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
        .count();
    assert_eq!(on_disk, expected.len(), "every .eml has a line in expected.tsv, and every line a file");

    let mut per_server: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for e in &expected {
        let raw = std::fs::read(folder().join(&e.file)).unwrap_or_else(|err| panic!("{}: {err}", e.file));
        let report = read(&raw);
        let entry = per_server.entry(&e.server).or_default();
        entry.1 += 1;
        match miss(e, &report) {
            None => entry.0 += 1,
            Some(why) => misses.push(format!("{}: {why}", e.file)),
        }
    }
    let right: usize = per_server.values().map(|(r, _)| r).sum();
    let recall = right * 1000 / expected.len();

    let mut out = String::from("server                          right / all\n");
    for (server, (r, all)) in &per_server {
        out.push_str(&format!("{server:<32}{r:>5} / {all}\n"));
    }
    out.push_str(&format!("recall: {right} / {} = {}.{}%\n", expected.len(), recall / 10, recall % 10));
    if !misses.is_empty() {
        out.push_str("misses:\n");
        for m in &misses {
            out.push_str(&format!("  {m}\n"));
        }
    }
    println!("{out}");
    assert!(recall >= FLOOR, "recall {recall}‰ fell below {FLOOR}‰\n{out}");
}
