//! A PostgreSQL database of its own for one test, on the server `scripts/test.sh` starts (or the
//! one `$GAZETTE_TEST_POSTGRES` names), dropped with any connection still open to it when the
//! test is done. A server that cannot be reached fails the test: it is never skipped.

use sqlx::{Connection, PgConnection};

const DEFAULT_SERVER: &str = "postgres://postgres@127.0.0.1:5432/postgres";

pub struct TestDatabase {
    server: String,
    name: String,
    url: String,
}

/// Runs `work` on a runtime of its own, in a thread of its own: callers may be inside a runtime.
fn run<T: Send + 'static>(work: impl Future<Output = T> + Send + 'static) -> T {
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        rt.block_on(work)
    })
    .join()
    .expect("database thread")
}

impl TestDatabase {
    pub fn create() -> Self {
        let server = std::env::var("GAZETTE_TEST_POSTGRES")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or(DEFAULT_SERVER.into());
        let name = format!("gazette_it_{:016x}", rand::random::<u64>());
        let mut url = url::Url::parse(&server).expect("$GAZETTE_TEST_POSTGRES is a URL");
        url.set_path(&format!("/{name}"));
        let (s, n) = (server.clone(), name.clone());
        run(async move {
            let mut admin = PgConnection::connect(&s).await.unwrap_or_else(|e| {
                panic!(
                    "PostgreSQL is not reachable at {s} ({e}): run `bash scripts/test.sh`, which installs and starts \
                     it, or point $GAZETTE_TEST_POSTGRES at a server where this user may create databases"
                )
            });
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {n}")))
                .execute(&mut admin)
                .await
                .expect("create the test database");
            let _ = admin.close().await;
        });
        Self { server, name, url: url.to_string() }
    }

    /// The database's URL, for `database_url` or `$DATABASE_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (server, name) = (self.server.clone(), self.name.clone());
        let dropped = run(async move {
            let mut admin = PgConnection::connect(&server).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut admin)
                .await?;
            admin.close().await
        });
        if let Err(e) = dropped
            && !std::thread::panicking()
        {
            panic!("could not drop the test database {}: {e}", self.name);
        }
    }
}
