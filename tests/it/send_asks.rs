//! `send` asks before it sends, naming how many readers the issue reaches: on a terminal it waits
//! for y, and where stdin is no terminal (a pipe, cron) it sends nothing without `--yes`.

use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
};

use crate::support::{Publication, Run};

const AS_OF: &str = "2024-03-16";

fn outbox_count(p: &Publication) -> usize {
    std::fs::read_dir(p.path().join("outbox/new")).map(|d| d.count()).unwrap_or(0)
}

fn issue_count(p: &Publication) -> usize {
    let issues = p.gazette(&["issues", "list", "--json"]).ok().json();
    issues["issues"].as_array().map_or(0, Vec::len)
}

/// Runs `command` on a pseudo-terminal (python3's `pty`), answering `answer` once the question
/// ending in `[y/N]` is shown. Returns everything the terminal showed, and the exit code.
fn on_a_terminal(command: &Command, answer: &str) -> (String, i32) {
    const DRIVER: &str = r#"
import os, pty, select, sys
answer, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
shown, answered = b"", False
while True:
    ready, _, _ = select.select([fd], [], [], 30)
    if not ready:
        break
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    shown += data
    if not answered and b"[y/N]" in shown:
        os.write(fd, answer.encode() + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(shown)
sys.exit(os.waitstatus_to_exitcode(status))
"#;
    let mut python = Command::new("python3");
    python.arg("-c").arg(DRIVER).arg(answer).arg(command.get_program()).args(command.get_args());
    for (key, value) in command.get_envs() {
        match value {
            Some(v) => python.env(key, v),
            None => python.env_remove(key),
        };
    }
    let out = python.output().expect("python3 runs the pseudo-terminal");
    (String::from_utf8_lossy(&out.stdout).into_owned(), out.status.code().unwrap_or(-1))
}

fn piped(p: &Publication, args: &[&str], input: &str) -> Run {
    let mut child = p
        .command(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gazette");
    // The process may refuse before it reads a byte: a closed pipe is no failure here.
    let _ = child.stdin.take().expect("stdin").write_all(input.as_bytes());
    Run(child.wait_with_output().expect("gazette ends"))
}

#[test]
fn without_a_terminal_send_needs_yes_and_changes_nothing() {
    let p = Publication::sample();
    let run = piped(&p, &["send", "--as-of", AS_OF], "y\n");
    assert_eq!(run.code(), 2, "{}{}", run.stdout(), run.stderr());
    assert!(run.stderr().contains("--yes"), "{}", run.stderr());
    assert_eq!(outbox_count(&p), 0);
    assert!(!Path::new(&p.path().join("gazette.db")).exists(), "the store was not even opened");

    let json = piped(&p, &["send", "--as-of", AS_OF, "--json"], "y\n");
    assert_eq!(json.code(), 2);
    assert_eq!(json.json()["error"]["field"], "--yes", "{}", json.stdout());
    let queued = piped(&p, &["send", "--as-of", AS_OF, "--queue-only"], "");
    assert_eq!(queued.code(), 2, "{}", queued.stderr());
    assert_eq!(issue_count(&p), 0);

    // A dry run and a test copy send no issue to readers: they need no --yes.
    piped(&p, &["send", "--as-of", AS_OF, "--dry-run"], "").ok();
    piped(&p, &["send", "--as-of", AS_OF, "--to", "editor@example.net"], "").ok();
    assert_eq!(issue_count(&p), 0);
    assert_eq!(outbox_count(&p), 1, "the test copy alone");

    piped(&p, &["send", "--as-of", AS_OF, "--yes"], "").ok();
    assert_eq!(outbox_count(&p), 4, "the test copy and the sample list's 3 readers");
}

#[test]
fn on_a_terminal_send_asks_naming_the_readers() {
    let p = Publication::sample();
    let (shown, code) = on_a_terminal(&p.command(&["send", "--as-of", AS_OF]), "n");
    assert_eq!(code, 2, "{shown}");
    assert!(shown.contains("Send issue #1 to 3 readers? [y/N]"), "{shown}");
    assert_eq!((issue_count(&p), outbox_count(&p)), (0, 0), "{shown}");

    let (shown, code) = on_a_terminal(&p.command(&["send", "--as-of", AS_OF]), "y");
    assert_eq!(code, 0, "{shown}");
    assert!(shown.contains("Send issue #1 to 3 readers? [y/N]"), "{shown}");
    assert_eq!((issue_count(&p), outbox_count(&p)), (1, 3), "{shown}");
}
