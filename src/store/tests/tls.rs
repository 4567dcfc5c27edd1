//! TLS to PostgreSQL, against a server of the test's own: a throwaway cluster on a free loopback
//! port with `ssl = on`, a certificate for `localhost` and `127.0.0.1` signed by a CA made here,
//! and a `pg_hba.conf` that refuses any connection without TLS. The shared test server is left
//! as it is. Skipped, saying so, only where PostgreSQL's server programs are not installed.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::{fs::MetadataExt, process::CommandExt},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use super::*;

/// A PostgreSQL server that speaks TLS only, stopped and deleted when dropped.
struct TlsServer {
    child: Child,
    port: u16,
    /// The CA that signed the server's certificate.
    ca: PathBuf,
    /// A CA that signed nothing the server holds.
    other_ca: PathBuf,
    dir: tempfile::TempDir,
}

/// The folder of `initdb` and `postgres`: Debian keeps each major version apart.
fn server_programs() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("postgres").is_file())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name.pem`, `name.key`) made by `openssl` in `dir`.
fn make_ca(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join(format!("{name}.pem")), dir.join(format!("{name}.key")));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "3650", "-subj", &format!("/CN=gazette test {name}")])
        .args(["-addext", "basicConstraints=critical,CA:TRUE"])
        .args(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]));
    (cert, key)
}

/// The server's certificate and key, signed by the CA.
fn make_server_cert(dir: &Path, ca: &(PathBuf, PathBuf)) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("server.pem"), dir.join("server.key"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .arg("-CA")
        .arg(&ca.0)
        .arg("-CAkey")
        .arg(&ca.1)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-days", "3650", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // `req -x509` marks certificates as CAs unless told otherwise, and rustls refuses a CA
        // certificate presented as a server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=critical,digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth"]));
    (cert, key)
}

/// A port on 127.0.0.1 that nothing listens on just now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free loopback port").port()
}

impl TlsServer {
    /// Starts the server, or says why not and returns `None` when PostgreSQL's server programs
    /// are not installed.
    fn start() -> Option<Self> {
        let Some(bin) = server_programs() else {
            eprintln!(
                "SKIPPED: no PostgreSQL server programs in /usr/lib/postgresql/*/bin (Debian package \
                 postgresql, which scripts/test.sh installs); this TLS test needs a server of its own"
            );
            return None;
        };
        let dir = tempfile::tempdir().expect("tmp");
        // PostgreSQL will not run as root: then the cluster belongs to the `postgres` user.
        let me = std::fs::metadata(dir.path()).expect("stat").uid();
        let owner = (me == 0).then(|| {
            let id = |flag: &str| -> u32 {
                let out = Command::new("id").args([flag, "postgres"]).output().expect("run id");
                assert!(out.status.success(), "running as root, and there is no `postgres` user to run PostgreSQL as");
                String::from_utf8_lossy(&out.stdout).trim().parse().expect("a numeric id")
            };
            (id("-u"), id("-g"))
        });

        let ca = make_ca(dir.path(), "ca");
        let other_ca = make_ca(dir.path(), "other-ca");
        let (cert, key) = make_server_cert(dir.path(), &ca);
        // The server refuses a key that others can read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).expect("chmod");
        let data = dir.path().join("data");
        if let Some((uid, gid)) = owner {
            for path in [dir.path(), &cert, &key] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
            }
        }
        let as_owner = |program: &str| {
            let mut cmd = Command::new(bin.join(program));
            cmd.current_dir(dir.path());
            if let Some((uid, gid)) = owner {
                cmd.uid(uid).gid(gid);
            }
            cmd
        };
        run(as_owner("initdb")
            .args(["--auth=trust", "--username=postgres", "--encoding=UTF8", "--locale=C", "--no-sync", "-D"])
            .arg(&data));
        std::fs::write(data.join("pg_hba.conf"), "hostssl all all 127.0.0.0/8 trust\nhost all all all reject\n")
            .expect("write pg_hba.conf");

        // A port found free may be taken before the server binds it: then another one.
        for _ in 0..5 {
            let port = free_port();
            let log = std::fs::File::create(dir.path().join(format!("postgres-{port}.log"))).expect("log file");
            let mut child = as_owner("postgres")
                .arg("-D")
                .arg(&data)
                .args(["-p", &port.to_string()])
                // 127.0.0.2 too, an address the certificate does not name.
                .args(["-c", "listen_addresses=127.0.0.1,127.0.0.2", "-c", "unix_socket_directories="])
                .args(["-c", "ssl=on", "-c", &format!("ssl_cert_file={}", cert.display())])
                .args(["-c", &format!("ssl_key_file={}", key.display())])
                .args(["-c", "fsync=off", "-c", "max_connections=20", "-c", "shared_buffers=16MB"])
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("log file"))
                .stderr(log)
                .spawn()
                .expect("start postgres");
            let deadline = Instant::now() + Duration::from_secs(60);
            let ready = loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break false;
                }
                // The eighth line of postmaster.pid says `ready` once connections are accepted.
                let pid_file = std::fs::read_to_string(data.join("postmaster.pid")).unwrap_or_default();
                if pid_file.lines().nth(7).is_some_and(|l| l.trim() == "ready")
                    && TcpStream::connect(("127.0.0.1", port)).is_ok()
                {
                    break true;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("PostgreSQL did not start in 60 s:\n{}", log_of(dir.path(), port));
                }
                std::thread::sleep(Duration::from_millis(50));
            };
            if ready {
                return Some(Self { child, port, ca: ca.0, other_ca: other_ca.0, dir });
            }
            let log = log_of(dir.path(), port);
            assert!(log.contains("could not bind") || log.contains("in use"), "PostgreSQL did not start:\n{log}");
        }
        panic!("PostgreSQL found no free port in five tries")
    }

    fn url(&self, query: &str) -> String {
        self.url_at("127.0.0.1", query)
    }

    fn url_at(&self, host: &str, query: &str) -> String {
        format!("postgres://postgres@{host}:{}/gazette?{query}", self.port)
    }
}

fn log_of(dir: &Path, port: u16) -> String {
    std::fs::read_to_string(dir.join(format!("postgres-{port}.log"))).unwrap_or_default()
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        // SIGINT is PostgreSQL's fast shutdown; std sends only SIGKILL, so ask kill(1).
        let _ = Command::new("kill").arg("-INT").arg(self.child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        eprintln!("PostgreSQL in {} did not stop in time and was killed", self.dir.path().display());
    }
}

/// `verify-full` with the CA that signed the server's certificate: the store is made, migrated
/// and used, over TLS. Before sqlx was built with TLS, every such URL failed to connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_verify_full_with_the_servers_ca_works_over_tls() {
    let Some(server) = TlsServer::start() else { return };
    let url = server.url(&format!("sslmode=verify-full&sslrootcert={}", server.ca.display()));
    // The database does not exist yet: creating it takes a connection of its own, also verified.
    let store = Store::open_with(&url, StoreOptions { pool_size: 2 }).await.expect("open over TLS");
    let counts = store.import(&[row("reader@example.org", &["weekly"])], "test", now()).await.expect("import");
    assert_eq!(counts.imported, 1);
    let reader: EmailAddress = "reader@example.org".parse().expect("address");
    assert_eq!(store.subscriber(&reader).await.expect("read").map(|s| s.status), Some(SubscriberStatus::Active));

    let mut conn = pool(&store).acquire().await.expect("connection");
    let (ssl, version): (bool, Option<String>) =
        sqlx::query_as("SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(&mut *conn)
            .await
            .expect("pg_stat_ssl");
    assert!(ssl, "the store's connection is not encrypted");
    assert!(version.is_some_and(|v| v.starts_with("TLSv1.")), "no TLS version");
    drop(conn);

    // `require` is verified too: against the root certificate given, and it passes.
    let url = server.url(&format!("sslmode=require&sslrootcert={}", server.ca.display()));
    Store::open_with(&url, StoreOptions { pool_size: 1 }).await.expect("require with the right CA");
}

/// A certificate gazette cannot verify is refused, with a message that says what to change:
/// `verify-full` without the CA, or with another CA, `verify-ca` and `require` with another CA,
/// and `verify-full` at an address the certificate does not name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_refuses_a_certificate_it_cannot_verify() {
    let Some(server) = TlsServer::start() else { return };
    let other = server.other_ca.display();
    for query in [
        "sslmode=verify-full".to_owned(),
        format!("sslmode=verify-full&sslrootcert={other}"),
        format!("sslmode=verify-ca&sslrootcert={other}"),
        format!("sslmode=require&sslrootcert={other}"),
    ] {
        let error = Store::open_with(&server.url(&query), StoreOptions { pool_size: 1 })
            .await
            .expect_err(&format!("{query} connected to a server whose CA it was not given"));
        let text = error.to_string();
        assert!(matches!(error, StoreError::Certificate { .. }), "{query}: {text}");
        assert!(
            text.contains("TLS certificate was refused")
                && text.contains("not signed by a CA gazette trusts")
                && text.contains("sslrootcert="),
            "{query}: {text}"
        );
    }

    // The right CA, at an address the certificate does not name: verify-ca takes it, verify-full
    // does not.
    let ca = server.ca.display();
    let other_host = server.url_at("127.0.0.2", &format!("sslmode=verify-ca&sslrootcert={ca}"));
    Store::open_with(&other_host, StoreOptions { pool_size: 1 }).await.expect("verify-ca checks no name");
    for mode in ["verify-full", "require"] {
        let other_host = server.url_at("127.0.0.2", &format!("sslmode={mode}&sslrootcert={ca}"));
        let error =
            Store::open_with(&other_host, StoreOptions { pool_size: 1 }).await.expect_err("the name is checked");
        let text = error.to_string();
        assert!(text.contains("does not name the host"), "{mode}: {text}");
    }
    // Without a root certificate, `require` refuses a certificate no public CA signed.
    let error = Store::open_with(&server.url("sslmode=require"), StoreOptions { pool_size: 1 })
        .await
        .expect_err("require verifies");
    assert!(matches!(error, StoreError::Certificate { .. }), "{error}");
}
