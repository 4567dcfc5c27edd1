//! The daemon hears bounces: `gazette run`, started as a process with a short `[bounces] poll`,
//! reads a real Dovecot's mailbox over TLS (a certificate and a CA the test makes, a passwd-file
//! user) and a Maildir, and applies the DSN of a reader who received an issue (sent first through
//! the SMTP test server, as `bounces.rs` does). What it read is marked: `\Seen` on the server,
//! moved to `cur/` in the Maildir. A wrong password or a certificate nobody trusts is a clear
//! error in the log, nothing is applied, and the daemon keeps running.
//!
//! Dovecot refuses mail access as root, so when the tests run as root its mail processes run as
//! the `mail` user (and its login processes as `dovenull`), and the mailbox's files are theirs.

use std::{
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use serde_json::Value;

use crate::{
    bounces::{dsn, sent_to},
    daemon::{terminate, wait_until},
    deliver::{AS_OF, Backend, Stored, publication_on},
    smtp::{Options, SmtpServer, TlsFiles, self_signed_cert},
    support::Publication,
};

const USER: &str = "bounces";
const PASSWORD: &str = "s3cret-imap-pw";

/// A Dovecot of the test's own on two free loopback ports: IMAPS and IMAP with STARTTLS.
struct Dovecot {
    dir: tempfile::TempDir,
    /// `None` until it is launched.
    child: Option<Child>,
    imaps: u16,
    imap: u16,
    tls: TlsFiles,
    /// Who owns the mail files: `mail` as root, else whoever runs the tests.
    mail_user: String,
}

impl Dovecot {
    fn start() -> Self {
        let mut dovecot = Self::prepare();
        dovecot.launch();
        dovecot
    }

    /// Its files and ports, not yet running.
    fn prepare() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir for Dovecot");
        // Its login and mail processes run as other users, and must reach their files.
        chmod(dir.path(), 0o755);
        let tls = self_signed_cert(dir.path());
        chmod(&tls.key, 0o644);
        let root = run_output(Command::new("id").arg("-u")) == "0";
        let me = run_output(Command::new("id").arg("-un"));
        let (mail_user, login_user, internal_user) = if root {
            ("mail".to_owned(), "dovenull".to_owned(), "dovecot".to_owned())
        } else {
            (me.clone(), me.clone(), me)
        };
        let (imaps, imap) = (free_port(), free_port());
        let d = dir.path();
        std::fs::write(d.join("passwd"), format!("{USER}:{{PLAIN}}{PASSWORD}\n")).expect("passwd");
        for sub in ["new", "cur", "tmp"] {
            std::fs::create_dir_all(d.join("home").join(USER).join("Maildir").join(sub)).expect("mkdir");
        }
        let config = format!(
            "base_dir = {d}/run\nstate_dir = {d}/state\nlog_path = {d}/dovecot.log\n\
             protocols = imap\nlisten = 127.0.0.1\n\
             ssl = required\nssl_cert = <{cert}\nssl_key = <{key}\n\
             disable_plaintext_auth = yes\nauth_mechanisms = plain login\n\
             first_valid_uid = 1\nfirst_valid_gid = 1\n\
             default_login_user = {login_user}\ndefault_internal_user = {internal_user}\n\
             passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN username_format=%u {d}/passwd\n}}\n\
             userdb {{\n  driver = static\n  args = uid={mail_user} gid={mail_user} home={d}/home/%u\n}}\n\
             mail_location = maildir:~/Maildir\n\
             service imap-login {{\n  inet_listener imap {{\n    port = {imap}\n  }}\n  \
             inet_listener imaps {{\n    port = {imaps}\n    ssl = yes\n  }}\n}}\n",
            d = d.display(),
            cert = tls.cert.display(),
            key = tls.key.display(),
        );
        std::fs::write(d.join("dovecot.conf"), config).expect("dovecot.conf");
        chown(&d.join("home"), &mail_user);
        Self { dir, child: None, imaps, imap, tls, mail_user }
    }

    fn launch(&mut self) {
        let child = Command::new("/usr/sbin/dovecot")
            .arg("-F")
            .arg("-c")
            .arg(self.dir.path().join("dovecot.conf"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dovecot (Debian package dovecot-imapd)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", self.imaps)).is_err()
            || TcpStream::connect(("127.0.0.1", self.imap)).is_err()
        {
            assert!(Instant::now() < deadline, "Dovecot did not listen within 20 s:\n{}", self.log());
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dovecot.log")).unwrap_or_default()
    }

    fn maildir(&self) -> PathBuf {
        self.dir.path().join("home").join(USER).join("Maildir")
    }

    /// `message` delivered into the mailbox, as an MTA's local delivery writes it.
    fn deliver(&self, name: &str, message: &str) {
        let tmp = self.maildir().join("tmp").join(name);
        std::fs::write(&tmp, message).expect("write the message");
        chown(&tmp, &self.mail_user);
        std::fs::rename(&tmp, self.maildir().join("new").join(name)).expect("deliver the message");
    }

    /// The flags of the message delivered as `name` (`S` for `\Seen`), wherever it is now.
    fn flags(&self, name: &str) -> Option<String> {
        for sub in ["new", "cur"] {
            for entry in std::fs::read_dir(self.maildir().join(sub)).expect("read the Maildir").flatten() {
                let file = entry.file_name().to_string_lossy().into_owned();
                if file == name || file.starts_with(&format!("{name}:")) {
                    return Some(file.split_once(":2,").map(|(_, f)| f.to_owned()).unwrap_or_default());
                }
            }
        }
        None
    }
}

impl Drop for Dovecot {
    fn drop(&mut self) {
        let Some(child) = &mut self.child else { return };
        // SIGTERM, so the master takes its login and mail processes with it.
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn run_output(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run a command");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

fn chown(path: &Path, user: &str) {
    run_output(Command::new("chown").arg("-R").arg(format!("{user}:")).arg(path));
}

/// A publication of three readers whose issue #1 went out through `server` with VERP return
/// paths, and `bounces` added to its `[bounces]`; `gazette run` needs a schedule, which never
/// comes due while the test runs.
fn sent_publication(server: &SmtpServer, bounces: &str) -> Stored {
    let p = publication_on(
        Backend::Sqlite,
        3,
        &server.url(),
        &format!(
            "concurrency = 2\n\n[bounces]\nreturn_path = \"bounces@example.org\"\npoll = \"1s\"\n{bounces}\n\n\
             [schedule]\ncron = \"0 0 9 1 1 *\"\ncatch_up = \"1s\"\n"
        ),
    );
    p.gazette(&["send", "--yes", "--as-of", AS_OF]).ok();
    p
}

/// A hard bounce of reader `n`'s message, to the return address it went out from.
fn hard_bounce(server: &SmtpServer, n: usize) -> String {
    let rcpt = format!("reader{n}@example.org");
    let (verp, id) = sent_to(server, &rcpt);
    dsn(&verp, &rcpt, &id, "5.1.1", &format!("imap-hard-{n}"))
}

fn status(p: &Publication, email: &str) -> String {
    let all = p.gazette(&["subscribers", "list", "--json"]).ok().json();
    all["subscribers"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["email"] == email))
        .and_then(|s| s["status"].as_str())
        .unwrap_or_else(|| panic!("{email} is no subscriber: {all:#}"))
        .to_owned()
}

/// `gazette run` on a free web port, its log gathered by a thread of its own so the pipe never
/// fills.
fn start_logged(p: &Publication, env: &[(&str, &str)]) -> (Child, Arc<Mutex<String>>) {
    let mut child = p
        .command(&["run", "--listen", "127.0.0.1:0"])
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gazette run");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(String::new()));
    let kept = Arc::clone(&log);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let mut log = kept.lock().expect("log");
            log.push_str(&line);
            log.push('\n');
        }
    });
    (child, log)
}

fn logged(log: &Arc<Mutex<String>>) -> String {
    log.lock().expect("log").clone()
}

#[test]
fn the_daemon_applies_a_bounce_from_an_imap_mailbox_and_marks_it_seen() {
    let mut dovecot = Dovecot::prepare();
    let server = SmtpServer::start(Options::default());
    let p = sent_publication(
        &server,
        &format!(
            "imap_url = \"imaps://{USER}:{PASSWORD}@localhost:{}/INBOX\"\nimap_ca_file = {:?}\n",
            dovecot.imaps,
            dovecot.tls.ca.display().to_string()
        ),
    );
    dovecot.deliver("1710766809.dsn0.test", &hard_bounce(&server, 0));
    assert_eq!(dovecot.flags("1710766809.dsn0.test").as_deref(), Some(""), "unseen before the daemon runs");

    // The server is not up yet: the daemon says so, keeps running, and reads it once it is.
    let (mut daemon, log) = start_logged(&p, &[]);
    wait_until("the unreachable server in the log", Duration::from_secs(30), || {
        logged(&log).contains("cannot connect")
    });
    assert!(daemon.try_wait().expect("wait").is_none(), "the daemon keeps running:\n{}", logged(&log));
    dovecot.launch();
    let check = p.gazette(&["check"]);
    assert!(
        check.stdout().contains(&format!("bounces.imap_url imaps://localhost:{}/INBOX: logged in", dovecot.imaps)),
        "{}{}",
        check.stdout(),
        check.stderr()
    );
    wait_until("the bounce applied by the daemon", Duration::from_secs(30), || {
        status(&p, "reader0@example.org") == "bounced"
    });
    wait_until("the message marked \\Seen", Duration::from_secs(10), || {
        dovecot.flags("1710766809.dsn0.test").is_some_and(|f| f.contains('S'))
    });
    assert_eq!(status(&p, "reader1@example.org"), "active", "only the reader it named");

    // A second report arrives while the daemon runs: the next poll takes it.
    dovecot.deliver("1710766810.dsn1.test", &hard_bounce(&server, 1));
    wait_until("the second bounce", Duration::from_secs(30), || status(&p, "reader1@example.org") == "bounced");
    let exit = terminate(&mut daemon);
    assert!(exit.success(), "{exit:?}\n{}", logged(&log));

    let log = logged(&log);
    assert!(log.contains("1 read, 1 applied"), "the log counts what it read:\n{log}");
    assert!(log.contains("read again"), "the server's return is said:\n{log}");
    assert!(log.contains(&format!("imaps://localhost:{}/INBOX", dovecot.imaps)), "{log}");
    for secret in [PASSWORD, "reader0@example.org", "reader1@example.org"] {
        assert!(!log.contains(secret), "the log names no password and no reader ({secret}):\n{log}");
    }
    let listed = p.gazette(&["bounces", "list", "--json"]).ok().json();
    assert_eq!(listed["bounces"].as_array().map(Vec::len), Some(2), "each report applied once: {listed:#}");
}

#[test]
fn a_wrong_password_or_an_untrusted_certificate_applies_nothing_and_the_daemon_keeps_running() {
    let dovecot = Dovecot::start();
    let server = SmtpServer::start(Options::default());
    let ca = dovecot.tls.ca.display().to_string();
    // STARTTLS on the plain port: the password is refused only after TLS was set up and verified.
    let p = sent_publication(
        &server,
        &format!("imap_url = \"imap://{USER}:wrong-pw@localhost:{}/INBOX\"\nimap_ca_file = {ca:?}\n", dovecot.imap),
    );
    dovecot.deliver("1710766811.dsn0.test", &hard_bounce(&server, 0));
    let check = p.gazette(&["check"]);
    assert_eq!(check.code(), 2, "{}", check.stdout());
    assert!(check.stdout().contains("login refused") || check.stderr().contains("login refused"), "{}", check.stdout());

    let (mut daemon, log) = start_logged(&p, &[]);
    wait_until("the refused login in the log", Duration::from_secs(30), || logged(&log).contains("login refused"));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(daemon.try_wait().expect("wait").is_none(), "the daemon keeps running:\n{}", logged(&log));
    let exit = terminate(&mut daemon);
    assert!(exit.success(), "{exit:?}");
    let text = logged(&log);
    assert_eq!(text.matches("login refused").count(), 1, "said once while it lasts, not every poll:\n{text}");
    assert!(text.contains("check the user and password of bounces.imap_url"), "{text}");
    assert!(!text.contains("wrong-pw"), "{text}");
    assert_eq!(status(&p, "reader0@example.org"), "active");
    assert_eq!(dovecot.flags("1710766811.dsn0.test").as_deref(), Some(""), "left unseen");

    // The right password from the environment, but no CA file: the test CA is trusted by nobody.
    let config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("config");
    let without_ca: String =
        config.lines().filter(|l| !l.starts_with("imap_ca_file")).map(|l| format!("{l}\n")).collect();
    p.write("gazette.toml", &without_ca);
    let url = format!("imaps://{USER}:{PASSWORD}@localhost:{}/INBOX", dovecot.imaps);
    let (mut daemon, log) = start_logged(&p, &[("GAZETTE_IMAP_URL", url.as_str())]);
    wait_until("the refused certificate in the log", Duration::from_secs(30), || logged(&log).contains("TLS refused"));
    std::thread::sleep(Duration::from_millis(1500));
    assert!(daemon.try_wait().expect("wait").is_none(), "the daemon keeps running:\n{}", logged(&log));
    let exit = terminate(&mut daemon);
    assert!(exit.success(), "{exit:?}");
    let text = logged(&log);
    assert!(text.contains("bounces.imap_ca_file"), "the error says what to do:\n{text}");
    assert!(!text.contains(PASSWORD), "{text}");
    assert_eq!(status(&p, "reader0@example.org"), "active", "nothing applied");
    assert_eq!(dovecot.flags("1710766811.dsn0.test").as_deref(), Some(""), "left unseen");
    let server_log = dovecot.log();
    assert!(server_log.contains("unknown ca"), "the client refused the certificate:\n{server_log}");
    assert!(!server_log.contains("Login: user=<"), "never logged in:\n{server_log}");
}

#[test]
fn the_daemon_reads_a_maildir_and_moves_what_it_read_to_cur() {
    let server = SmtpServer::start(Options::default());
    let p = sent_publication(&server, "maildir = \"bounces\"\n");
    for sub in ["new", "cur", "tmp"] {
        std::fs::create_dir_all(p.path().join("bounces").join(sub)).expect("mkdir");
    }
    p.write("bounces/new/1710766812.dsn2.test", &hard_bounce(&server, 2));
    let (mut daemon, log) = start_logged(&p, &[]);
    wait_until("the bounce applied by the daemon", Duration::from_secs(30), || {
        status(&p, "reader2@example.org") == "bounced"
    });
    wait_until("the message moved to cur/", Duration::from_secs(10), || {
        p.path().join("bounces/cur/1710766812.dsn2.test:2,S").is_file()
    });
    assert!(!p.path().join("bounces/new/1710766812.dsn2.test").exists());
    let exit = terminate(&mut daemon);
    assert!(exit.success(), "{exit:?}");
    let text = logged(&log);
    assert!(text.contains("the Maildir: 1 read, 1 applied"), "{text}");
    assert!(!text.contains("reader2@example.org"), "{text}");
    let doc: Value = p.gazette(&["bounces", "list", "--json"]).ok().json();
    assert_eq!(doc["bounces"][0]["email"], "reader2@example.org", "{doc:#}");
}
