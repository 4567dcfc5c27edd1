//! `[dkim]`: `gazette send` to a real SMTP server signs every message as docs/src/delivery.md
//! says (rsa-sha256 or ed25519, no `l=`, `d=` the From domain, the listed headers covered), and the
//! signature verifies with dkimpy (`tests/smtp/dkim_verify.py`, DNS answered offline) — and stops
//! verifying once a byte of the body or the Subject changes. A missing or unusable key is exit 2
//! naming the file and `dkim.private_key_file`.

use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::{
    deliver::{AS_OF, publication},
    smtp::{Options, Received, SmtpServer},
    support::{Publication, repo},
};

const DKIM_TABLE: &str =
    "\n[dkim]\ndomain = \"example.org\"\nselector = \"gazette\"\nprivate_key_file = \"dkim.pem\"\n";

/// The headers docs/src/delivery.md says the signature covers.
const MUST_SIGN: &[&str] =
    &["from", "to", "subject", "date", "message-id", "list-unsubscribe", "list-unsubscribe-post"];

/// [`publication`] with `[dkim]` appended to its config.
fn signed_publication(n: usize, server: &SmtpServer) -> Publication {
    let p = publication(n, &server.url(), "");
    let mut config = std::fs::read_to_string(p.path().join("gazette.toml")).expect("read config");
    config.push_str(DKIM_TABLE);
    p.write("gazette.toml", &config);
    p
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// A 2048-bit RSA key as PKCS#1 PEM (`BEGIN RSA PRIVATE KEY`, what lettre reads) at `dir/dkim.pem`;
/// returns the DNS TXT record that publishes its public half.
fn rsa_key(dir: &Path) -> String {
    let pem = dir.join("dkim.pem");
    run(Command::new("openssl").args(["genrsa", "-traditional", "-out"]).arg(&pem).arg("2048"));
    let text = std::fs::read_to_string(&pem).expect("read dkim.pem");
    assert!(text.starts_with("-----BEGIN RSA PRIVATE KEY-----"), "not PKCS#1: {}", &text[..40.min(text.len())]);
    let der = run(Command::new("openssl").args(["rsa", "-pubout", "-outform", "DER", "-in"]).arg(&pem));
    format!("v=DKIM1; k=rsa; p={}", base64(&der))
}

/// An Ed25519 key written as lettre takes it (base64 of the 32-byte seed) at `dir/dkim.pem`;
/// returns the DNS TXT record (RFC 8463: base64 of the 32-byte public key).
fn ed25519_key(dir: &Path) -> String {
    let pem = dir.join("ed25519.pem");
    run(Command::new("openssl").args(["genpkey", "-algorithm", "ed25519", "-out"]).arg(&pem));
    // Both DER forms end with the raw 32 bytes: PKCS#8 the seed, SubjectPublicKeyInfo the key.
    let private = run(Command::new("openssl").args(["pkey", "-outform", "DER", "-in"]).arg(&pem));
    let public = run(Command::new("openssl").args(["pkey", "-pubout", "-outform", "DER", "-in"]).arg(&pem));
    let last32 = |b: &[u8]| b[b.len() - 32..].to_vec();
    std::fs::write(dir.join("dkim.pem"), format!("{}\n", base64(&last32(&private)))).expect("write key");
    format!("v=DKIM1; k=ed25519; p={}", base64(&last32(&public)))
}

fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The header block of a raw message (up to the first empty line), lines unfolded.
fn headers(raw: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(raw);
    let head = text.split("\r\n\r\n").next().unwrap_or_default();
    let mut out: Vec<(String, String)> = Vec::new();
    for line in head.split("\r\n") {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = out.last_mut() {
                last.1.push_str(line);
            }
        } else if let Some((name, value)) = line.split_once(':') {
            out.push((name.to_owned(), value.to_owned()));
        }
    }
    out
}

/// The tags of the message's one DKIM-Signature, whitespace removed from the values.
fn dkim_tags(m: &Received) -> Vec<(String, String)> {
    let sigs: Vec<String> =
        headers(&m.raw).into_iter().filter(|(n, _)| n.eq_ignore_ascii_case("DKIM-Signature")).map(|(_, v)| v).collect();
    assert_eq!(sigs.len(), 1, "one DKIM-Signature in\n{}", String::from_utf8_lossy(&m.raw));
    sigs[0]
        .split(';')
        .filter_map(|t| t.split_once('='))
        .map(|(k, v)| (k.trim().to_owned(), v.split_whitespace().collect()))
        .collect()
}

fn tag<'a>(tags: &'a [(String, String)], name: &str) -> Option<&'a str> {
    tags.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Runs `tests/smtp/dkim_verify.py` on the message: `Ok` with its output when it verifies.
fn verify(dir: &Path, name: &str, raw: &[u8], record: &str) -> Result<String, String> {
    let file: PathBuf = dir.join(name);
    std::fs::write(&file, raw).expect("write .eml");
    let out = Command::new("python3")
        .arg(repo().join("tests/smtp/dkim_verify.py"))
        .arg(&file)
        .arg(record)
        .output()
        .expect("run python3 tests/smtp/dkim_verify.py");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    match out.status.code() {
        Some(0) => Ok(said),
        Some(1) => Err(said),
        other => panic!(
            "dkim_verify.py could not run (exit {other:?}); it needs dkimpy (and pynacl for ed25519), \
             as scripts/test.sh installs:\n{said}"
        ),
    }
}

/// Replaces the first `from` after the header block (or in it, with `in_headers`) by `to`.
fn tamper(raw: &[u8], from: &str, to: &str, in_headers: bool) -> Vec<u8> {
    let text = String::from_utf8(raw.to_vec()).expect("the message is ASCII/UTF-8");
    let split = text.find("\r\n\r\n").expect("a header block") + 4;
    let (head, body) = text.split_at(split);
    let changed = if in_headers {
        assert!(head.contains(from), "{from:?} not in the headers:\n{head}");
        format!("{}{body}", head.replacen(from, to, 1))
    } else {
        assert!(body.contains(from), "{from:?} not in the body");
        format!("{head}{}", body.replacen(from, to, 1))
    };
    assert_ne!(changed.as_bytes(), raw);
    changed.into_bytes()
}

/// Sends a three-subscriber issue signed with the key `make_key` writes, checks the tags on every
/// message, verifies every signature, and checks that a changed body or Subject fails.
fn signs_and_verifies(make_key: fn(&Path) -> String, algorithm: &str) {
    let server = SmtpServer::start(Options::default());
    let p = signed_publication(3, &server);
    let record = make_key(p.path());
    let doc = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]).ok().json();
    assert_eq!(doc["counts"]["sent"], 3, "{doc:#}");
    let messages = server.messages();
    assert_eq!(messages.len(), 3);

    for (i, m) in messages.iter().enumerate() {
        let tags = dkim_tags(m);
        assert_eq!(tag(&tags, "v"), Some("1"), "{tags:?}");
        assert_eq!(tag(&tags, "a"), Some(algorithm), "{tags:?}");
        assert_eq!(tag(&tags, "l"), None, "no body length limit: {tags:?}");
        assert_eq!(tag(&tags, "d"), Some("example.org"), "aligned with From weekly@example.org: {tags:?}");
        assert_eq!(tag(&tags, "s"), Some("gazette"), "{tags:?}");
        let signed: Vec<String> =
            tag(&tags, "h").expect("h= tag").split(':').map(|h| h.trim().to_ascii_lowercase()).collect();
        for h in MUST_SIGN {
            assert!(signed.iter().any(|s| s == h), "h= lacks {h}: {signed:?}");
        }
        // Every signed header is really there (a signed absent header is legal but pointless
        // for the ones the manual lists).
        let present: Vec<String> = headers(&m.raw).into_iter().map(|(n, _)| n.to_ascii_lowercase()).collect();
        for h in MUST_SIGN {
            assert!(present.iter().any(|p| p == h), "{h} missing from the message");
        }

        let verified = verify(p.path(), &format!("{i}.eml"), &m.raw, &record)
            .unwrap_or_else(|why| panic!("message {i} does not verify:\n{why}"));
        assert!(verified.contains("gazette._domainkey.example.org"), "asked DNS for the right name: {verified}");
    }

    let m = &messages[0];
    let body = tamper(&m.raw, "Armenian", "Armenien", false);
    let why = verify(p.path(), "body.eml", &body, &record).expect_err("a changed body must not verify");
    assert!(why.contains("body hash mismatch"), "{why}");
    let subject = tamper(&m.raw, "Subject: The", "Subject: Tho", true);
    let why = verify(p.path(), "subject.eml", &subject, &record).expect_err("a changed Subject must not verify");
    assert!(why.contains("does not verify"), "{why}");
    // And a key that is not the signer's fails too.
    let other = tempfile::tempdir().expect("tempdir");
    let wrong = make_key(other.path());
    let why = verify(p.path(), "wrong-key.eml", &m.raw, &wrong).expect_err("another key must not verify");
    assert!(why.contains("does not verify"), "{why}");
}

#[test]
fn rsa_signatures_cover_the_spec_headers_and_verify() {
    signs_and_verifies(rsa_key, "rsa-sha256");
}

#[test]
fn ed25519_signatures_verify() {
    signs_and_verifies(ed25519_key, "ed25519-sha256");
}

/// `send` with this text as the key file (`None`: no file at all).
fn send_with_key(key: Option<&str>) -> (crate::support::Run, SmtpServer, Publication) {
    let server = SmtpServer::start(Options::default());
    let p = signed_publication(2, &server);
    if let Some(text) = key {
        p.write("dkim.pem", text);
    }
    let run = p.gazette(&["send", "--yes", "--as-of", AS_OF]);
    (run, server, p)
}

#[test]
fn a_missing_or_unusable_key_is_exit_2_naming_the_file() {
    for key in [
        None,
        Some("not a key at all\n"),
        Some("-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n"),
        Some("c2hvcnQ=\n"), // base64, but not 32 bytes
    ] {
        let (run, server, p) = send_with_key(key);
        let all = format!("{}{}", run.stdout(), run.stderr());
        assert_eq!(run.code(), 2, "key {key:?}: {all}");
        assert!(all.contains("dkim.pem"), "key {key:?}: the error names the file: {all}");
        assert!(server.messages().is_empty(), "key {key:?}: nothing sent");

        let json = p.gazette(&["send", "--yes", "--as-of", AS_OF, "--json"]);
        assert_eq!(json.code(), 2, "key {key:?}: {}", json.stdout());
        let error = &json.json()["error"];
        assert_eq!(error["field"], "dkim.private_key_file", "key {key:?}: {error:#}");
        assert!(error["message"].as_str().is_some_and(|m| m.contains("dkim.pem")), "{error:#}");
        assert!(server.messages().is_empty(), "key {key:?}: nothing sent");
    }
}
