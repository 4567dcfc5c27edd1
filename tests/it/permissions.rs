//! What gazette writes about its readers is its owner's alone, whatever the umask: the SQLite
//! store with its -wal and -shm, the Maildir outbox and the messages in it, and the link secret
//! it makes when `$GAZETTE_SECRET` is unset. What the publisher made already keeps its mode.

use std::{
    io::{BufRead, BufReader},
    os::unix::fs::PermissionsExt,
    path::Path,
    process::{Command, Stdio},
    sync::mpsc,
    time::Duration,
};

use crate::support::Publication;

/// The binary on `p`, under the umask most systems give (022), with no `$GAZETTE_SECRET`.
fn gazette_under_umask_022(p: &Publication, args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "umask 022 && exec \"$@\"", "sh", env!("CARGO_BIN_EXE_gazette"), "--config"])
        .arg(p.path().join("gazette.toml"))
        .args(args)
        .env_remove("GAZETTE_SMTP_URL")
        .env_remove("DATABASE_URL")
        .env_remove("GAZETTE_CONFIG")
        .env_remove("GAZETTE_SECRET");
    cmd
}

fn send(p: &Publication) {
    let out = gazette_under_umask_022(p, &["send", "--as-of", "2024-03-16", "--yes"]).output().expect("run gazette");
    assert!(
        out.status.success(),
        "gazette send failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The permission bits, written as `chmod` takes them.
fn mode(path: &Path) -> String {
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    format!("{:04o}", meta.permissions().mode() & 0o777)
}

fn a_message(p: &Publication) -> std::path::PathBuf {
    std::fs::read_dir(p.path().join("outbox/new"))
        .expect("outbox/new")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .next()
        .expect("a message in the outbox")
}

#[test]
fn the_store_the_outbox_and_the_secret_are_made_owner_only_under_umask_022() {
    let p = Publication::sample();
    send(&p);
    let path = |name: &str| p.path().join(name);
    for file in [path("gazette.db"), path(".gazette-secret"), a_message(&p)] {
        assert_eq!(mode(&file), "0600", "{}", file.display());
    }
    for folder in ["outbox", "outbox/tmp", "outbox/new", "outbox/cur"] {
        assert_eq!(mode(&path(folder)), "0700", "{folder}");
    }

    // SQLite's -wal and -shm live while a process has the store open, and are gone after.
    let mut serve = gazette_under_umask_022(&p, &["serve", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start gazette serve");
    let stderr = serve.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = String::new();
    while !log.contains("listening on ") {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => log.push_str(&(line + "\n")),
            Err(_) => {
                let _ = serve.kill();
                let _ = serve.wait();
                panic!("gazette serve did not start:\n{log}");
            }
        }
    }
    let modes = ["gazette.db-wal", "gazette.db-shm"].map(|f| (f, path(f).exists().then(|| mode(&path(f)))));
    let _ = Command::new("kill").arg("-TERM").arg(serve.id().to_string()).status();
    let _ = serve.wait();
    for (file, mode) in modes {
        assert_eq!(mode.as_deref(), Some("0600"), "{file} while the store is open");
    }
}

#[test]
fn what_the_publisher_made_keeps_its_mode() {
    let p = Publication::sample();
    let path = |name: &str| p.path().join(name);
    // An empty file is an empty SQLite database.
    std::fs::write(path("gazette.db"), "").expect("write");
    std::fs::write(path(".gazette-secret"), "a secret of the publisher's own, 32 bytes at least").expect("write");
    std::fs::create_dir(path("outbox")).expect("mkdir");
    for (name, mode) in [("gazette.db", 0o640), (".gazette-secret", 0o640), ("outbox", 0o750)] {
        std::fs::set_permissions(path(name), std::fs::Permissions::from_mode(mode)).expect("chmod");
    }
    send(&p);
    assert_eq!(mode(&path("gazette.db")), "0640");
    assert_eq!(mode(&path(".gazette-secret")), "0640");
    assert_eq!(mode(&path("outbox")), "0750");
    // The folders inside it are gazette's own.
    assert_eq!(mode(&path("outbox/new")), "0700");
    assert_eq!(mode(a_message(&p).as_path()), "0600");
}
