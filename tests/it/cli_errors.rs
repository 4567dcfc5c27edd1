//! Bad input of every kind: a clear error naming the file, line or field, exit 2 (or 1 for what
//! could not be reached), and JSON errors in the shape docs/src/commands.md gives.

use crate::support::{Publication, feeds_config, fixture};

#[test]
fn an_unknown_key_names_file_line_and_key() {
    let p = Publication::with_config("[publication]\nname = \"M\"\nfrom = \"m@example.org\"\ncolour = \"red\"\n");
    let run = p.gazette(&["articles"]);
    assert_eq!(run.code(), 2);
    let err = run.stderr();
    assert!(err.contains("gazette.toml:4") && err.contains("publication.colour"), "{err}");

    let json = p.gazette(&["articles", "--json"]).json();
    assert_eq!(json["error"]["line"], 4);
    assert_eq!(json["error"]["field"], "publication.colour");
    assert!(json["error"]["file"].as_str().is_some_and(|f| f.ends_with("gazette.toml")));
    assert!(json["error"]["message"].as_str().is_some());
}

/// A crontab line pasted as it is: the error says six fields are needed, seconds first, and
/// gives the expression to write, its day numbers as names (crontab's 1 is Monday).
#[test]
fn a_five_field_cron_gets_its_six_field_form() {
    let p = Publication::sample();
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("cron = \"0 0 9 * * Mon\"", "cron = \"0 9 * * 1\""));
    let run = p.gazette(&["check"]);
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    let shown = format!("{}{}", run.stdout(), run.stderr());
    assert!(shown.contains("six fields, seconds first") && shown.contains("\"0 0 9 * * Mon\""), "{shown}");
    let json = p.gazette(&["articles", "--json"]).json();
    assert_eq!(json["error"]["field"], "schedule.cron", "{json:#}");
}

#[test]
fn a_missing_config_says_how_to_make_one() {
    let dir = tempfile::tempdir().expect("tmp");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_gazette"))
        .args(["--config", &dir.path().join("nope.toml").display().to_string(), "articles"])
        .output()
        .expect("run");
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("gazette init"));
}

#[test]
fn a_template_syntax_error_names_the_file_and_line() {
    let p = Publication::sample();
    p.write(
        "templates/email/digest.txt",
        "{{ publication.name }}\n\n{% for a in issue.articles %}\n{{ a.title | }}\n{% endfor %}\n",
    );
    let run = p.gazette(&["preview", "--as-of", "2024-03-16"]);
    assert_eq!(run.code(), 2);
    let err = run.stderr();
    assert!(err.contains("digest.txt:4"), "{err}");
}

#[test]
fn an_unknown_template_variable_names_the_template() {
    let p = Publication::sample();
    p.write("templates/email/digest.txt", "{{ issue.nonsense }}\n");
    let run = p.gazette(&["preview", "--as-of", "2024-03-16"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("digest.txt") && run.stderr().contains("nonsense"), "{}", run.stderr());
}

#[test]
fn a_malformed_feed_is_exit_2_and_named() {
    let p = Publication::with_config(&feeds_config(&[], ""));
    let feed = p.write("broken.xml", "<rss><channel><item><title>half");
    let config = feeds_config(std::slice::from_ref(&feed), "");
    p.write("gazette.toml", &config);
    let run = p.gazette(&["articles"]);
    assert_eq!(run.code(), 2, "{}", run.stderr());
    assert!(run.stderr().contains("broken.xml"), "{}", run.stderr());
}

#[test]
fn a_missing_feed_is_exit_1_unless_optional() {
    let p = Publication::with_config("");
    let missing = p.path().join("gone.xml");
    p.write("gazette.toml", &feeds_config(std::slice::from_ref(&missing), ""));
    let run = p.gazette(&["articles"]);
    assert_eq!(run.code(), 1, "{}", run.stderr());
    assert!(run.stderr().contains("gone.xml"));

    let mut optional = feeds_config(&[fixture("feeds/seed-mirror.xml")], "");
    optional.push_str(&format!("\n[[source]]\nfeed = {:?}\noptional = true\n", missing.display().to_string()));
    p.write("gazette.toml", &optional);
    let run = p.gazette(&["articles", "--as-of", "2024-03-16"]).ok();
    assert!(run.stderr().contains("gone.xml"), "the skipped source is named: {}", run.stderr());
}

#[test]
fn a_bad_as_of_and_a_bad_subscriber_are_usage_errors() {
    let p = Publication::sample();
    let run = p.gazette(&["articles", "--as-of", "next monday"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("--as-of") || run.stderr().contains("RFC 3339"), "{}", run.stderr());
    let run = p.gazette(&["preview", "--subscriber", "not an address"]);
    assert_eq!(run.code(), 2);
    assert!(run.stderr().contains("--subscriber"), "{}", run.stderr());
}

#[test]
fn check_lists_every_problem_and_exits_2() {
    let p = Publication::sample();
    p.write("templates/email/digest.html", "{% if %}");
    let mut config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    config.push_str("\n[[source]]\nfeed = \"missing.xml\"\n");
    config = config.replace("file = \"subscribers/weekly.csv\"", "file = \"subscribers/nope.csv\"");
    p.write("gazette.toml", &config);
    let run = p.gazette(&["check", "--json"]);
    assert_eq!(run.code(), 2);
    let json = run.json();
    let problems: Vec<String> = json["problems"].as_array().expect("problems").iter().map(|v| v.to_string()).collect();
    assert!(problems.iter().any(|p| p.contains("missing.xml")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("nope.csv")), "{problems:?}");
    assert!(problems.iter().any(|p| p.contains("digest.html")), "{problems:?}");
    assert_eq!(json["next_runs"].as_array().map(Vec::len), Some(5));
}

/// `check` reads the list files as a send syncs them: each bad row is a problem by its file
/// and line.
#[test]
fn check_names_each_bad_row_of_a_list_file() {
    let p = Publication::sample();
    p.write(
        "subscribers/weekly.csv",
        "email,name\nada@example.org,Ada\nnot-an-address,Bob\nada@example.org,Ada again\n",
    );
    let run = p.gazette(&["check", "--json"]);
    assert_eq!(run.code(), 2, "{}", run.stdout());
    let json = run.json();
    let problems: Vec<&str> =
        json["problems"].as_array().expect("problems").iter().filter_map(|v| v.as_str()).collect();
    for needle in ["weekly.csv:3: email", "weekly.csv:4: ada@example.org appears earlier"] {
        assert!(problems.iter().any(|p| p.contains(needle)), "{needle}: {problems:?}");
    }
}

/// An issue of no article is skipped while send_when_empty is false: `check` says so, and why,
/// instead of an unqualified ok.
#[test]
fn check_says_when_the_next_issue_would_be_skipped() {
    let p = Publication::sample();
    let json = p.gazette(&["check", "--json"]).ok().json();
    let warnings = json["warnings"].to_string();
    assert!(warnings.contains("would be skipped") && warnings.contains("send_when_empty"), "{json:#}");
    assert!(warnings.contains("no article within max_age (7d)"), "{json:#}");

    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    p.write("gazette.toml", &config.replace("max_age = \"7d\"", "max_age = \"99999d\""));
    let json = p.gazette(&["check", "--json"]).ok().json();
    assert!(!json["warnings"].to_string().contains("skipped"), "{json:#}");
}

#[test]
fn check_passes_on_the_sample() {
    let p = Publication::sample();
    let run = p.gazette(&["check"]).ok();
    assert!(run.stdout().contains("next runs"), "{}", run.stdout());
}

/// `EST` is a fixed UTC-5 that the tz database happens to hold: a Massachusetts paper set to it
/// would go out an hour late all summer. It is refused with the zone meant, by key and line.
#[test]
fn a_time_zone_abbreviation_is_refused_with_the_zone_meant() {
    let config = |tz: &str| {
        format!(
            "[publication]\nname = \"M\"\nfrom = \"m@example.org\"\n\ntimezone = \"{tz}\"\n[[source]]\nfolder = \"articles\"\n"
        )
    };
    for (tz, meant) in [("EST", "America/New_York"), ("CET", "Europe/Paris"), ("UTC+5", "Etc/GMT-5")] {
        let p = Publication::with_config(&config(tz));
        std::fs::create_dir_all(p.path().join("articles")).expect("mkdir");
        let run = p.gazette(&["articles"]);
        assert_eq!(run.code(), 2, "{tz}: {}", run.stderr());
        let err = run.stderr();
        assert!(err.contains("gazette.toml:5") && err.contains("publication.timezone"), "{err}");
        assert!(err.contains(meant), "{tz}: {err}");
        let json = p.gazette(&["articles", "--json"]).json();
        assert_eq!(
            (json["error"]["line"].as_u64(), json["error"]["field"].as_str()),
            (Some(5), Some("publication.timezone"))
        );
    }
    for tz in ["UTC", "Etc/GMT+5", "America/New_York"] {
        let p = Publication::with_config(&config(tz));
        std::fs::create_dir_all(p.path().join("articles")).expect("mkdir");
        p.gazette(&["articles"]).ok();
    }
}

/// Every command that takes `--as-of` explains it in its help.
#[test]
fn as_of_is_explained_wherever_it_is_taken() {
    for command in ["articles", "preview", "send"] {
        let run =
            std::process::Command::new(env!("CARGO_BIN_EXE_gazette")).args([command, "--help"]).output().expect("run");
        let help = String::from_utf8_lossy(&run.stdout);
        let line = help.lines().find(|l| l.contains("--as-of")).unwrap_or_else(|| panic!("{command}: {help}"));
        assert!(line.contains("Stand in for \"now\""), "{command}: {help}");
    }
}
