//! A late bounce through a real Postfix. gazette sends an issue to a private Postfix instance on
//! loopback (`tests/postfix/`), which takes every reader's message with a 250 and only then fails
//! to deliver one of them; Postfix's own DSN goes back to that message's VERP envelope sender and
//! lands in a Maildir, which `gazette bounces ingest` reads, or is piped to `gazette bounces
//! ingest -` by a `pipe` transport. The DSN Postfix wrote is kept as
//! `tests/fixtures/bounces/postfix/error-5.1.1.eml`, and read on its own here too.

use std::{
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    deliver::AS_OF,
    support::{Publication, fixture, repo},
};

/// The readers, all at the domain Postfix takes mail for; the last one's mailbox is gone.
const READERS: [&str; 3] = ["ann@readers.test", "bob@readers.test", "gone@readers.test"];
const GONE: &str = "gone@readers.test";

/// How long Postfix may take to start, or to deliver a message or its DSN.
const PATIENCE: Duration = Duration::from_secs(30);

/// A Postfix of the test's own: its configuration, queue, data and Maildirs in one temporary
/// folder, stopped and removed when dropped, whether the test passed or not.
struct Postfix {
    dir: tempfile::TempDir,
    port: u16,
    /// Whether the `postfix` command needs `sudo -n` (the tests run as another user than root).
    sudo: bool,
    /// Who the `gazette` pipe runs as, by name and, when the test is root, by uid and gid (else
    /// it is the test's own user).
    pipe_user: String,
    pipe_ids: Option<(u32, u32)>,
}

impl Postfix {
    /// Started, with its `gazette` pipe running the binary on `publication`'s config.
    fn start(publication: &Publication) -> Self {
        let sudo = output(Command::new("id").arg("-u")).trim() != "0";
        let dir = tempfile::tempdir().expect("a temp dir for Postfix");
        // Postfix's daemons run as its own user and must reach the queue inside.
        set_mode(dir.path(), 0o755);
        let port = free_port();
        // virtual(8) refuses root: when the test is root, the Maildirs belong to `nobody`.
        let owner = if sudo { None } else { Some("nobody") };
        let uid = output(Command::new("id").arg("-u").args(owner)).trim().to_owned();
        let gid = output(Command::new("id").arg("-g").args(owner)).trim().to_owned();
        // pipe(8) refuses root too.
        let pipe_user = output(Command::new("id").arg("-un").args(owner)).trim().to_owned();
        let etc = dir.path().join("etc");
        let mail = dir.path().join("mail");
        for d in [&etc, &dir.path().join("spool"), &mail] {
            std::fs::create_dir(d).expect("mkdir");
        }
        let fill = |name: &str| {
            let template =
                std::fs::read_to_string(repo().join("tests/postfix").join(name)).expect("a Postfix template");
            let text = template
                .replace("@DIR@", &dir.path().display().to_string())
                .replace("@PORT@", &port.to_string())
                .replace("@UID@", &uid)
                .replace("@GID@", &gid)
                .replace("@PIPE_USER@", &pipe_user)
                .replace("@GAZETTE@", env!("CARGO_BIN_EXE_gazette"))
                .replace("@CONFIG@", &publication.path().join("gazette.toml").display().to_string());
            std::fs::write(etc.join(name), text).expect("write Postfix's configuration");
        };
        fill("main.cf");
        fill("master.cf");
        if !sudo {
            chown(&mail, &uid, &gid);
        }
        let pipe_ids = (!sudo).then(|| (uid.parse().expect("a uid"), gid.parse().expect("a gid")));
        let postfix = Self { dir, port, sudo, pipe_user, pipe_ids };
        // Starting Postfix takes root: the tests' own user, or sudo without a password.
        let run = postfix.postfix(&["start"]).unwrap_or_else(|e| {
            let what = if postfix.sudo { "sudo -n postfix" } else { "postfix" };
            panic!("cannot run {what} ({e}): scripts/test.sh installs Debian's postfix; the test needs root or sudo")
        });
        assert!(
            run.status.success(),
            "postfix start failed (it needs root, or sudo without a password): {}\n{}",
            stderr(&run),
            postfix.log()
        );
        postfix.wait_for_greeting();
        postfix
    }

    /// `postfix -c DIR ARGS…`, as root. An error rather than a panic, since `drop` runs it too.
    fn postfix(&self, args: &[&str]) -> std::io::Result<std::process::Output> {
        let etc = self.dir.path().join("etc");
        let mut command = if self.sudo {
            let mut c = Command::new("sudo");
            c.args(["-n", "postfix"]);
            c
        } else {
            Command::new("postfix")
        };
        command.arg("-c").arg(etc).args(args).output()
    }

    /// Whether `postfix -c DIR ARGS…` ran and succeeded.
    fn ran(&self, args: &[&str]) -> bool {
        self.postfix(args).is_ok_and(|out| out.status.success())
    }

    fn wait_for_greeting(&self) {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.port)) {
                stream.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
                let mut line = String::new();
                if BufReader::new(&stream).read_line(&mut line).is_ok() && line.starts_with("220 ") {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "Postfix's smtpd did not answer on port {}:\n{}", self.port, self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn smtp_url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// The Maildir of `bounces@bounces.test` (`bounces`) or of the readers' domain (`readers`).
    fn maildir(&self, name: &str) -> PathBuf {
        self.dir.path().join("mail").join(name)
    }

    /// Postfix's log, for a failure's message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("maillog")).unwrap_or_default()
    }

    /// The messages in `maildir`'s `new/`, once there are `count` of them.
    fn wait_for(&self, maildir: &Path, count: usize) -> Vec<PathBuf> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
                .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
                .unwrap_or_default();
            if files.len() >= count {
                return files;
            }
            assert!(
                Instant::now() < deadline,
                "{} of {count} messages in {} after {PATIENCE:?}; Postfix's log:\n{}",
                files.len(),
                maildir.display(),
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Postfix {
    fn drop(&mut self) {
        // `stop` lets the master finish its children; `abort` if that did not do.
        if !self.ran(&["stop"]) {
            self.ran(&["abort"]);
        }
        let deadline = Instant::now() + PATIENCE;
        while self.ran(&["status"]) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.sudo {
            // The queue belongs to Postfix's user; only root removes it.
            let _ = Command::new("sudo").args(["-n", "rm", "-rf"]).arg(self.dir.path()).status();
        }
    }
}

fn output(command: &mut Command) -> String {
    let out = command.output().expect("run");
    assert!(out.status.success(), "{command:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, uid: &str, gid: &str) {
    output(Command::new("chown").arg(format!("{uid}:{gid}")).arg(path));
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// The publication's config: its readers are `READERS`, and it sends through `smtp_url` from
/// VERP return addresses made from `return_path`.
fn configure(p: &Publication, smtp_url: &str, return_path: &str) {
    let mut csv = String::from("email,name,lists\n");
    for (i, r) in READERS.iter().enumerate() {
        csv.push_str(&format!("{r},Reader {i},\n"));
    }
    p.write("subscribers/weekly.csv", &csv);
    let config = format!(
        "[publication]\nname = \"The Weekly Mirror\"\nfrom = \"The Weekly Mirror <weekly@example.org>\"\n\
         unsubscribe_mailto = \"unsubscribe@example.org\"\nbase_url = \"https://news.example.org\"\n\
         timezone = \"America/New_York\"\nlists = [\"weekly\"]\n\n\
         [[source]]\nfeed = {:?}\n\n[[list]]\nname = \"weekly\"\nfile = \"subscribers/weekly.csv\"\n\n\
         [selection]\nsend_when_empty = true\n\n\
         [delivery]\ntransport = \"smtp\"\nsmtp_url = {smtp_url:?}\n\n\
         [bounces]\nreturn_path = {return_path:?}\n",
        fixture("feeds/seed-mirror.xml").display().to_string(),
    );
    p.write("gazette.toml", &config);
}

/// The binary on `p`, keeping its secret in `.gazette-secret` beside the config (as a publisher
/// without `GAZETTE_SECRET` does), where the pipe run by Postfix finds it too.
fn gazette(p: &Publication, args: &[&str]) -> Value {
    p.gazette_with(args, &[("GAZETTE_SECRET", "")]).ok().json()
}

/// `gazette`, run as the user of Postfix's pipe, so that what it writes is that user's, as a
/// publisher's files are the user's named in master.cf.
fn gazette_as_pipe(p: &Publication, postfix: &Postfix, args: &[&str]) -> Value {
    use std::os::unix::process::CommandExt;
    let mut command = p.command(args);
    command.env("GAZETTE_SECRET", "");
    if let Some((uid, gid)) = postfix.pipe_ids {
        command.uid(uid).gid(gid);
    }
    crate::support::Run(command.output().expect("run gazette")).ok().json()
}

fn statuses(p: &Publication) -> Vec<(String, String)> {
    let doc = gazette(p, &["subscribers", "list", "--json"]);
    let mut all: Vec<(String, String)> = doc["subscribers"]
        .as_array()
        .expect("subscribers")
        .iter()
        .map(|s| (s["email"].as_str().unwrap_or("").to_owned(), s["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    all.sort();
    all
}

fn ingest(p: &Publication, path: &Path) -> Value {
    gazette(p, &["bounces", "ingest", path.to_str().expect("utf-8"), "--json"])
}

fn counts(p: &Publication) -> Value {
    gazette(p, &["issues", "show", "1", "--json"])["counts"].clone()
}

/// What the readers' statuses should be after gone@'s bounce.
fn after_the_bounce() -> Vec<(String, String)> {
    vec![
        ("ann@readers.test".into(), "active".into()),
        ("bob@readers.test".into(), "active".into()),
        (GONE.into(), "bounced".into()),
    ]
}

/// The value of the first header `name` in `message`'s header block.
fn header(message: &str, name: &str) -> Option<String> {
    message
        .split("\n\n")
        .next()?
        .lines()
        .find_map(|l| l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned()))
}

#[test]
fn a_message_postfix_accepted_then_could_not_deliver_comes_back_to_its_return_address_and_bounces_its_reader() {
    let p = Publication::with_config("");
    let postfix = Postfix::start(&p);
    configure(&p, &postfix.smtp_url(), "bounces@bounces.test");
    let sent = gazette(&p, &["send", "--yes", "--as-of", AS_OF, "--json"]);
    assert_eq!(sent["counts"]["sent"], 3, "Postfix took every message, the gone one too: {sent:#}");
    assert_eq!(sent["counts"]["failed"], 0, "{sent:#}");

    // The two readers whose mailboxes exist get their copies, each from a return address of its own.
    let delivered = postfix.wait_for(&postfix.maildir("readers"), 2);
    let mut return_paths: Vec<String> = delivered
        .iter()
        .map(|f| {
            let text = std::fs::read_to_string(f).expect("a delivered message");
            header(&text, "Return-Path").unwrap_or_else(|| panic!("no Return-Path in {text}"))
        })
        .collect();
    return_paths.sort();
    return_paths.dedup();
    assert_eq!(return_paths.len(), 2, "{return_paths:?}");
    assert!(
        return_paths.iter().all(|r| r.starts_with("<bounces+d") && r.ends_with("@bounces.test>")),
        "{return_paths:?}"
    );

    // Postfix's DSN for the third comes back to that message's own return address.
    let bounces = postfix.maildir("bounces");
    let dsn_file = postfix.wait_for(&bounces, 1).remove(0);
    let dsn = std::fs::read_to_string(&dsn_file).expect("the DSN");
    let verp = header(&dsn, "Delivered-To").unwrap_or_else(|| panic!("no Delivered-To in the DSN:\n{dsn}"));
    assert!(verp.starts_with("bounces+d") && verp.ends_with("@bounces.test"), "{verp}");
    assert!(!return_paths.contains(&format!("<{verp}>")), "its own return address, no other reader's");
    assert_eq!(header(&dsn, "X-Original-To").as_deref(), Some(verp.as_str()));
    assert!(dsn.contains("Status: 5.1.1") && dsn.contains(&format!("Final-Recipient: rfc822; {GONE}")), "{dsn}");
    if std::env::var_os("GAZETTE_KEEP_POSTFIX_DSN").is_some() {
        // How tests/fixtures/bounces/postfix/ was filled.
        std::fs::copy(&dsn_file, fixture("bounces/postfix/error-5.1.1.eml")).expect("keep the DSN");
    }

    // The clue that decides is the return address the DSN was delivered to: read on its own, the
    // report names it first, before the copy of the original's Return-Path.
    let report = gazette::bounces::read(dsn.as_bytes());
    assert_eq!(report.returned_to.first(), Some(&verp), "{:?}", report.returned_to);

    let doc = ingest(&p, &bounces);
    let lines = doc["messages"].as_array().expect("messages");
    assert_eq!(lines.len(), 1, "{doc:#}");
    let line = &lines[0];
    assert_eq!(
        (line["kind"].as_str(), line["email"].as_str(), line["issue"].as_u64(), line["status"].as_str()),
        (Some("hard"), Some(GONE), Some(1), Some("5.1.1")),
        "{doc:#}"
    );
    assert!(
        line["diagnostic"].as_str().is_some_and(|d| d.contains("mailbox gone@readers.test does not exist")),
        "Postfix's words: {doc:#}"
    );
    assert_eq!(line["applied"], true, "{doc:#}");
    assert_eq!(std::fs::read_dir(bounces.join("new")).expect("new/").count(), 0, "read, so moved to cur/");
    assert_eq!(std::fs::read_dir(bounces.join("cur")).expect("cur/").count(), 1);

    assert_eq!(statuses(&p), after_the_bounce());
    let listed = gazette(&p, &["bounces", "list", "--json"]);
    assert_eq!(listed["bounces"].as_array().map(Vec::len), Some(1), "{listed:#}");
    assert_eq!(
        (listed["bounces"][0]["email"].as_str(), listed["bounces"][0]["status"].as_str()),
        (Some(GONE), Some("5.1.1")),
        "{listed:#}"
    );
    let counts = counts(&p);
    assert_eq!((counts["sent"].as_u64(), counts["bounced"].as_u64()), (Some(3), Some(1)), "{counts:#}");

    // The same Maildir again: the DSN, now in cur/, is recognised and nothing changes.
    let again = ingest(&p, &bounces);
    assert_eq!(
        (again["messages"][0]["applied"].as_bool(), again["messages"][0]["note"].as_str()),
        (Some(false), Some("read before")),
        "{again:#}"
    );
    assert_eq!(statuses(&p), after_the_bounce());
    assert_eq!(self::counts(&p), counts);

    // The same DSN with its delivery headers' token altered, the real Message-ID and recipient
    // still inside: the altered return address is what is read, so it is taken for a forgery.
    let (local, domain) = verp.split_once('@').expect("an address");
    let last = local.chars().last().expect("a token");
    let forged = format!("{}{}@{domain}", &local[..local.len() - 1], if last == 'a' { 'b' } else { 'a' });
    let (head, body) = dsn.split_once("\n\n").expect("a header block");
    let altered = p.write("altered.eml", &format!("{}\n\n{body}", head.replace(&verp, &forged)));
    let doc = ingest(&p, &altered);
    assert_eq!(
        (doc["messages"][0]["applied"].as_bool(), doc["messages"][0]["note"].as_str()),
        (Some(false), Some("forged return address")),
        "{doc:#}"
    );
}

#[test]
fn a_pipe_transport_hands_postfix_s_dsn_to_bounces_ingest() {
    let p = Publication::with_config("");
    let postfix = Postfix::start(&p);
    configure(&p, &postfix.smtp_url(), "bounces@piped.test");
    // The pipe runs as its own user, which must be able to write the store and read the secret:
    // the publication is that user's, and so is everything gazette makes in it.
    output(Command::new("chown").arg("-R").arg(&postfix.pipe_user).arg(p.path()));
    let sent = gazette_as_pipe(&p, &postfix, &["send", "--yes", "--as-of", AS_OF, "--json"]);
    assert_eq!(sent["counts"]["sent"], 3, "{sent:#}");

    // Postfix logs the pipe's delivery once gazette has exited.
    let deadline = Instant::now() + PATIENCE;
    let piped = loop {
        if let Some(line) = postfix.log().lines().find(|l| l.contains("relay=gazette")) {
            break line.to_owned();
        }
        assert!(Instant::now() < deadline, "no delivery to the gazette pipe; Postfix's log:\n{}", postfix.log());
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        piped.contains("to=<bounces+d") && piped.contains("status=sent (delivered via gazette service ("),
        "{piped}\n{}",
        postfix.log()
    );
    // What gazette printed, Postfix logs with the delivery.
    assert!(piped.contains("hard  gone@readers.test  #1     5.1.1"), "{piped}");

    assert_eq!(statuses(&p), after_the_bounce());
    let listed = gazette(&p, &["bounces", "list", "--json"]);
    assert_eq!(
        (
            listed["bounces"][0]["email"].as_str(),
            listed["bounces"][0]["kind"].as_str(),
            listed["bounces"][0]["status"].as_str()
        ),
        (Some(GONE), Some("hard"), Some("5.1.1")),
        "{listed:#}"
    );
    assert!(listed["bounces"][0]["diagnostic"].as_str().is_some_and(|d| d.contains("does not exist")), "{listed:#}");
    assert_eq!(counts(&p)["bounced"], 1);
}

/// The DSN Postfix wrote in the test above, kept: read without Postfix, it says the same.
#[test]
fn the_kept_postfix_dsn_reads_as_a_hard_bounce_to_its_return_address() {
    let raw = std::fs::read(fixture("bounces/postfix/error-5.1.1.eml")).expect("the kept DSN");
    let report = gazette::bounces::read(&raw);
    assert_eq!(report.kind, gazette::domain::ReportKind::Hard);
    assert_eq!(report.status.as_deref(), Some("5.1.1"));
    assert!(report.diagnostic.as_deref().is_some_and(|d| d.contains("does not exist")), "{report:?}");
    assert!(
        report.returned_to.first().is_some_and(|r| r.starts_with("bounces+d") && r.ends_with("@bounces.test")),
        "{report:?}"
    );
    assert_eq!(report.recipients.first().map(|r| r.as_str()), Some(GONE));
    assert!(report.original_message_id.is_some(), "{report:?}");
}
