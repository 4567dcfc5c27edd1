//! What can go wrong with the store, said so a publisher knows what to do.

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Unsupported(String),
    #[error("cannot open the database: {0}; check [storage] database_url (or $DATABASE_URL)")]
    Open(#[source] sqlx::Error),
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
}
