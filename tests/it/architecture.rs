//! The rules ARCHITECTURE.md states about the code, held against the code itself, so that they
//! cannot rot silently: which module may import which, which crate each outside protocol lives
//! behind, where time comes from, and that no two files import each other in a circle.

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
};

use crate::support::repo;

/// One file of the library, as its code (comments and test modules left out).
struct Source {
    file: String,
    module: Vec<String>,
    code: String,
}

fn sources() -> Vec<Source> {
    let src = repo().join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    files
        .into_iter()
        .filter_map(|path| {
            let rel = path.strip_prefix(&src).expect("under src").to_string_lossy().replace('\\', "/");
            // The binary and test files are not the library's structure.
            if rel == "main.rs" || rel.ends_with("tests.rs") || rel.contains("/tests/") || rel.contains("fixture_tests")
            {
                return None;
            }
            let text = std::fs::read_to_string(&path).expect("read source");
            Some(Source { module: module_of(&rel), code: code_of(&text), file: rel })
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `web/pages/home.rs` → `[web, pages, home]`; `web/mod.rs` → `[web]`; `lib.rs` → `[]`.
fn module_of(rel: &str) -> Vec<String> {
    let mut parts: Vec<String> = rel.trim_end_matches(".rs").split('/').map(str::to_owned).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib")) {
        parts.pop();
    }
    parts
}

/// The code without comments and without the test module at its end.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n")
}

/// Every path a file names in its `use` declarations (brace groups expanded) and inline
/// (`crate::x::y(…)`, `super::z`), made absolute from the crate root.
fn references(s: &Source) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let code = &s.code;
    let mut lines = code.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        let Some(tree) =
            ["use ", "pub use ", "pub(crate) use ", "pub(super) use "].iter().find_map(|p| t.strip_prefix(p))
        else {
            continue;
        };
        let mut statement = tree.to_owned();
        while !statement.contains(';') {
            let Some(more) = lines.next() else { break };
            statement.push_str(more);
        }
        expand("", statement.split(';').next().unwrap_or_default(), &mut paths);
    }
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if at > 0 && code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: String =
                code[at..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(path.trim_end_matches(':').to_owned());
        }
    }
    paths.into_iter().filter_map(|p| absolute(&s.module, &s.file, &p)).collect()
}

/// `a::{b, c::{d, e}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(prefix: &str, tree: &str, out: &mut Vec<String>) {
    // `x as y` names x; the rest of the white space means nothing.
    let mut words = tree.split_whitespace();
    let mut kept = String::new();
    while let Some(w) = words.next() {
        if w == "as" {
            let alias = words.next().unwrap_or_default();
            kept.extend(alias.chars().skip_while(|c| c.is_alphanumeric() || *c == '_'));
        } else {
            kept.push_str(w);
        }
    }
    let tree = kept;
    let Some(open) = tree.find('{') else {
        out.push(format!("{prefix}{tree}"));
        return;
    };
    let head = &tree[..open];
    let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
    let mut depth = 0;
    let mut part = String::new();
    for c in inner.chars().chain([',']) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                if !part.is_empty() {
                    expand(&format!("{prefix}{head}"), &part, out);
                }
                part.clear();
                continue;
            }
            _ => {}
        }
        part.push(c);
    }
}

fn absolute(module: &[String], file: &str, path: &str) -> Option<Vec<String>> {
    let mut segments = path.split("::").filter(|s| !s.is_empty());
    let mut at: Vec<String> = match segments.next()? {
        "crate" => Vec::new(),
        "self" => module.to_vec(),
        "super" => {
            // A file's `super` is its parent module; a `mod.rs` is its folder's module already.
            let mut m = module.to_vec();
            m.pop();
            m
        }
        _ => return None,
    };
    for s in segments {
        match s {
            "super" => {
                at.pop();
            }
            "self" => {}
            s => at.push(s.to_owned()),
        }
    }
    let _ = file;
    Some(at)
}

/// The file a path lands in: the deepest module that is a file.
fn file_of<'a>(files: &'a BTreeMap<Vec<String>, String>, path: &[String]) -> Option<&'a String> {
    (0..=path.len()).rev().find_map(|n| files.get(&path[..n]))
}

fn graph() -> (Vec<Source>, BTreeMap<String, BTreeSet<String>>) {
    let sources = sources();
    let files: BTreeMap<Vec<String>, String> = sources.iter().map(|s| (s.module.clone(), s.file.clone())).collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for s in &sources {
        for path in references(s) {
            let Some(target) = file_of(&files, &path) else { continue };
            // A module and the folder it sits in name each other by design (`mod` one way,
            // `super::` the other): only imports between files that are not one another's
            // ancestor are arrows.
            let target_module = module_of(target);
            let ancestor = s.module.starts_with(&target_module) || target_module.starts_with(&s.module);
            if target != &s.file && !ancestor {
                edges.entry(s.file.clone()).or_default().insert(target.clone());
            }
        }
    }
    (sources, edges)
}

#[test]
fn the_core_modules_do_not_import_one_another() {
    let (sources, edges) = graph();
    assert!(sources.len() > 50, "the sources were read: {}", sources.len());
    let core = ["compose", "sources", "store", "deliver"];
    let shared = ["domain", "clock", "config", "metrics"];
    let mut broken = Vec::new();
    for (from, targets) in &edges {
        let Some(own) = core.iter().find(|c| from.starts_with(&format!("{c}/"))) else { continue };
        for to in targets {
            let top = to.split('/').next().unwrap_or_default().trim_end_matches(".rs");
            if top != *own && !shared.contains(&top) {
                broken.push(format!("{from} -> {to}"));
            }
        }
    }
    assert!(broken.is_empty(), "the core modules share only domain, clock, config and metrics:\n{}", broken.join("\n"));
}

#[test]
fn each_outside_protocol_and_the_clock_have_one_home() {
    let homes: [(&str, &[&str], &str); 5] = [
        ("sqlx", &["store/"], "only store speaks SQL"),
        (
            "reqwest",
            &["sources/", "web/webhooks/sns.rs", "web/webhooks/mod.rs"],
            "only sources (and SNS's certificates) fetch over HTTP",
        ),
        ("lettre::transport", &["deliver/"], "only deliver speaks SMTP"),
        ("Utc::now()", &["clock.rs"], "time comes from clock"),
        (
            "tokio::fs",
            &[
                "compose/templates.rs",
                "sources/",
                "store/",
                "deliver/",
                "cli/",
                "web/",
                "subscribers/",
                "issue.rs",
                "publication.rs",
                "csv_import.rs",
                "config/",
                "daemon.rs",
                "tokens.rs",
                "bounces/",
            ],
            "compose reads only its template folder",
        ),
    ];
    let mut broken = Vec::new();
    for s in sources() {
        for (needle, allowed, rule) in homes {
            if s.code.contains(needle) && !allowed.iter().any(|a| s.file.starts_with(a)) {
                broken.push(format!("{}: uses {needle} ({rule})", s.file));
            }
        }
        if s.file.starts_with("compose/") && s.file != "compose/templates.rs" && s.code.contains("std::fs") {
            broken.push(format!("{}: uses std::fs (compose reads only its template folder)", s.file));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// The modules that combine others, and the only ones each may import: what a subscriber may
/// be is decided over the store, opening a process's store and transport needs nothing of an
/// issue, and a view only shapes records it is given.
#[test]
fn the_combining_modules_import_only_what_they_combine() {
    let (_, edges) = graph();
    let rules: [(&str, &[&str], &str); 3] = [
        ("subscribers", &["domain", "config", "csv_import", "store"], "the subscriber rules stand on the store alone"),
        ("setup", &["config", "deliver", "store"], "setup opens the store and the transport"),
        ("views", &["domain", "config", "store", "subscribers"], "views shape records, and fetch nothing"),
    ];
    let mut broken = Vec::new();
    for (from, targets) in &edges {
        let own = from.split('/').next().unwrap_or_default().trim_end_matches(".rs");
        let Some((_, allowed, rule)) = rules.iter().find(|(m, _, _)| *m == own) else { continue };
        for to in targets {
            let top = to.split('/').next().unwrap_or_default().trim_end_matches(".rs");
            if top != own && !allowed.contains(&top) {
                broken.push(format!("{from} -> {to} ({rule})"));
            }
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every change to subscribers goes through `subscribers`, so that the command line, the web
/// pages and the admin API cannot come to follow different rules again.
#[test]
fn subscribers_change_only_through_the_subscribers_module() {
    let changing = [
        ".import(",
        ".import_stream(",
        ".sync_list_stream(",
        ".recipients_after_sync(",
        ".note_list_file(",
        ".set_status(",
        ".forget(",
        ".request_subscription(",
        ".confirm_subscription(",
        ".apply_bounce(",
    ];
    let mut broken = Vec::new();
    for s in sources() {
        if s.file.starts_with("store/") || s.file.starts_with("subscribers/") {
            continue;
        }
        for call in changing {
            if s.code.contains(call) {
                broken.push(format!("{}: calls the store's `{}` itself", s.file, call.trim_matches(['.', '('])));
            }
        }
    }
    assert!(broken.is_empty(), "subscribers change only through src/subscribers/:\n{}", broken.join("\n"));
}

#[test]
fn no_two_files_import_each_other_in_a_circle() {
    let (_, edges) = graph();
    let found = circles(&edges);
    assert!(
        found.is_empty(),
        "files that import each other in a circle (give what they share a home of its own):\n{}",
        found.iter().map(|c| c.join(" <-> ")).collect::<Vec<_>>().join("\n")
    );
}

/// The same at the scale of the crate's modules (`issue`, `subscribers`, `web`, …): a module
/// that needs another never serves it in turn, so each can be read knowing only those below.
#[test]
fn no_two_modules_import_each_other_in_a_circle() {
    let (_, files) = graph();
    let top = |file: &str| file.split('/').next().unwrap_or_default().trim_end_matches(".rs").to_owned();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (from, targets) in &files {
        for to in targets {
            let (a, b) = (top(from), top(to));
            // `lib.rs` names every module; it is the root, not one of them.
            if a != b && a != "lib" && b != "lib" {
                edges.entry(a).or_default().insert(b);
            }
        }
    }
    assert!(edges.len() > 10, "the modules were read: {edges:?}");
    let found = circles(&edges);
    assert!(
        found.is_empty(),
        "modules that import each other in a circle:\n{}",
        found.iter().map(|c| c.join(" <-> ")).collect::<Vec<_>>().join("\n")
    );
}

/// The groups of more than one node that reach each other (Tarjan's strongly connected
/// components), each sorted.
fn circles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    struct State<'a> {
        edges: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on_stack: BTreeSet<&'a str>,
        next: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(st: &mut State<'a>, v: &'a str) {
        st.index.insert(v, st.next);
        st.low.insert(v, st.next);
        st.next += 1;
        st.stack.push(v);
        st.on_stack.insert(v);
        let edges = st.edges;
        for w in edges.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !st.index.contains_key(w) {
                visit(st, w);
                let lw = st.low[w];
                let lv = st.low[v];
                st.low.insert(v, lv.min(lw));
            } else if st.on_stack.contains(w) {
                let iw = st.index[w];
                let lv = st.low[v];
                st.low.insert(v, lv.min(iw));
            }
        }
        if st.low[v] == st.index[v] {
            let mut component = Vec::new();
            while let Some(w) = st.stack.pop() {
                st.on_stack.remove(w);
                component.push(w.to_owned());
                if w == v {
                    break;
                }
            }
            if component.len() > 1 {
                component.sort();
                st.out.push(component);
            }
        }
    }
    let mut st = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on_stack: BTreeSet::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in edges.keys() {
        if !st.index.contains_key(v.as_str()) {
            visit(&mut st, v);
        }
    }
    st.out
}

#[test]
fn the_reader_finds_a_use_tree_expanded() {
    let mut out = Vec::new();
    expand("", "crate::{compose::{render, text}, store::Store as S, domain}", &mut out);
    assert_eq!(out, ["crate::compose::render", "crate::compose::text", "crate::store::Store", "crate::domain"]);
    let m = module_of("web/pages/home.rs");
    assert_eq!(
        absolute(&m, "", "super::super::views::ERROR"),
        Some(vec!["web".into(), "views".into(), "ERROR".into()])
    );
}

/// The store is written by concern: each operation lives once, in its concern's module, and the
/// two backend files keep only what differs between the databases (SQL text, how a transaction
/// begins, which errors are worth a second run, how a list is bound). So neither backend file
/// serves a store operation, and no run of code lines stands in both.
#[test]
fn the_backend_files_hold_only_what_differs() {
    let read =
        |name: &str| code_of(&std::fs::read_to_string(repo().join("src/store").join(name)).expect("read backend"));
    let (sqlite, postgres) = (read("sqlite.rs"), read("postgres.rs"));
    let mut broken = Vec::new();
    for (file, code) in [("sqlite.rs", &sqlite), ("postgres.rs", &postgres)] {
        for line in code.lines().map(str::trim) {
            if line.starts_with("pub async fn") && !line.starts_with("pub async fn open(") {
                broken.push(format!("store/{file}: `{line}` serves an operation; write it once in its concern module"));
            }
        }
    }
    // Lines of code, not of SQL text or punctuation: a run of six of them in both files is logic
    // written twice.
    let logic = |code: &str| -> Vec<String> {
        code.lines()
            .map(str::trim)
            .filter(|l| l.chars().any(char::is_alphanumeric) && !l.starts_with('"') && !l.ends_with('\\'))
            .map(str::to_owned)
            .collect()
    };
    let (a, b) = (logic(&sqlite), logic(&postgres));
    let runs: BTreeSet<&[String]> = a.windows(6).collect();
    for run in b.windows(6) {
        if runs.contains(run) {
            broken.push(format!("both backend files carry:\n    {}", run.join("\n    ")));
        }
    }
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}
