//! What can go wrong with the store, said so a publisher knows what to do.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open the database: {0}; check [storage] database_url (or $DATABASE_URL)")]
    Open(#[source] sqlx::Error),
    #[error("cannot open the database: the server's TLS certificate was refused ({source}): {advice}")]
    Certificate {
        advice: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("cannot use the CA certificate {file} (sslrootcert in the database URL, or $PGSSLROOTCERT): {reason}")]
    RootCert { file: String, reason: String },
    #[error("cannot migrate the database: {0}")]
    Migrate(#[source] sqlx::migrate::MigrateError),
    #[error("database error: {0}")]
    Query(#[from] sqlx::Error),
    #[error("the database holds a value this version cannot read: {0}")]
    Corrupt(String),
    #[error("the schedule slot {0} was already served (by this or another process)")]
    SlotTaken(String),
    #[error("issue {0} already exists (another process created it); run the command again to resume it")]
    IssueExists(u32),
    #[error(
        "the database `{name}` does not exist and could not be created: {source}; create it (createdb {name}) or let the user of [storage] database_url create databases"
    )]
    CreateDatabase {
        name: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("the database stayed busy with other writers ({0}); run the command again")]
    Contended(String),
    #[error("the rows to import stopped before their end; nothing was imported")]
    InputEnded,
    /// A strict import met rows whose address an earlier row named: nothing was imported.
    #[error("{} row(s) repeat an address named earlier in the file; nothing was imported", .0.len())]
    Repeated(Vec<super::Repeated>),
    #[error("there is no issue {0}; `gazette issues list` shows them")]
    NoIssue(u32),
    #[error("issue {number} is {status}: {why}")]
    IssueState { number: u32, status: crate::domain::IssueStatus, why: &'static str },
    #[error("{0}")]
    EditRefused(String),
}
