//! Moving a publication from one store to another (`gazette migrate-store`): every table, row by
//! row in the order foreign keys need, into an empty destination, inside one transaction there,
//! so that a failure half-way leaves the destination as it was. Both backends share one schema
//! (the same tables, columns and unix-millisecond times), so rows travel as plain values.

use futures_util::{StreamExt, TryStreamExt, stream::BoxStream};
use serde::Serialize;
use sqlx::{Row, postgres::PgRow, sqlite::SqliteRow};

use super::{Store, StoreError};

/// How a column travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int,
    Text,
    Blob,
}

#[derive(Debug, Clone, PartialEq)]
enum Value {
    Null,
    Int(i64),
    Text(String),
    Blob(Vec<u8>),
}

struct Table {
    name: &'static str,
    /// The columns, the first being (the start of) the key rows are read in order of.
    columns: &'static [(&'static str, Kind)],
    /// The identity column whose sequence follows the copied ids on PostgreSQL.
    identity: Option<&'static str>,
}

use Kind::{Blob, Int, Text};

/// Parents before children. `rate_buckets` is left out: it only paces the sends of the moment;
/// so is `webhook_tokens`, which holds only minutes of webhook requests.
const TABLES: &[Table] = &[
    Table { name: "lists", columns: &[("id", Int), ("name", Text)], identity: Some("id") },
    Table {
        name: "subscribers",
        columns: &[
            ("id", Int),
            ("email", Text),
            ("name", Text),
            ("attributes", Text),
            ("status", Text),
            ("created_at", Int),
            ("updated_at", Int),
            ("edition", Text),
            ("topics", Text),
            ("paused_until", Int),
        ],
        identity: Some("id"),
    },
    Table {
        name: "memberships",
        columns: &[("list_id", Int), ("subscriber_id", Int), ("created_at", Int)],
        identity: None,
    },
    Table {
        name: "consent_events",
        columns: &[("id", Int), ("subscriber_id", Int), ("event", Text), ("source", Text), ("at", Int)],
        identity: Some("id"),
    },
    Table {
        name: "issues",
        columns: &[
            ("number", Int),
            ("status", Text),
            ("subject", Text),
            ("issue_date", Int),
            ("articles", Text),
            ("slot", Text),
            ("created_at", Int),
            ("finished_at", Int),
            ("note", Text),
            ("guard_since", Int),
            ("intro", Text),
            ("left_out", Text),
            ("edited_subject", Text),
            ("send_at", Int),
            ("edition", Text),
            ("queued_through", Int),
        ],
        identity: None,
    },
    Table { name: "issue_articles", columns: &[("issue_number", Int), ("identity", Text)], identity: None },
    Table {
        name: "deliveries",
        columns: &[
            ("id", Int),
            ("issue_number", Int),
            ("subscriber_id", Int),
            ("state", Text),
            ("attempts", Int),
            ("next_attempt_at", Int),
            ("lease_owner", Text),
            ("lease_until", Int),
            ("last_reply", Text),
            ("message_id", Text),
            ("updated_at", Int),
            ("sent_at", Int),
            ("relay", Text),
            ("variant", Int),
        ],
        identity: Some("id"),
    },
    // Which articles each copy carried: without them every delivery would count as having
    // carried its whole issue, and a reader could be sent an article again.
    Table {
        name: "issue_variants",
        columns: &[("issue_number", Int), ("variant", Int), ("articles", Text)],
        identity: None,
    },
    Table {
        name: "variant_articles",
        columns: &[("issue_number", Int), ("variant", Int), ("identity", Text)],
        identity: None,
    },
    Table { name: "article_first_seen", columns: &[("identity", Text), ("first_seen", Int)], identity: None },
    Table {
        name: "slots",
        columns: &[
            ("key", Text),
            ("at", Int),
            ("outcome", Text),
            ("issue_number", Int),
            ("reason", Text),
            ("recorded_at", Int),
        ],
        identity: None,
    },
    Table {
        name: "feed_cache",
        columns: &[("url", Text), ("etag", Text), ("last_modified", Text), ("body", Blob), ("fetched_at", Int)],
        identity: None,
    },
    // What each list file held when its bad rows were last reported.
    Table { name: "list_files", columns: &[("list", Text), ("digest", Text), ("changed_at", Int)], identity: None },
    // The sign-up limit's day of requests, so that moving stores does not reset it.
    Table { name: "signup_requests", columns: &[("mailbox", Text), ("at", Int)], identity: None },
    // Bounces and complaints, after the deliveries they name: a report read again after the move
    // is still known.
    Table {
        name: "bounces",
        columns: &[
            ("id", Int),
            ("message_key", Text),
            ("delivery_id", Int),
            ("subscriber_id", Int),
            ("issue_number", Int),
            ("kind", Text),
            ("status", Text),
            ("diagnostic", Text),
            ("at", Int),
        ],
        identity: Some("id"),
    },
    // The dashboard's users, so that they sign in to the new store as they did to the old one;
    // their sessions are left behind, and they sign in again.
    Table {
        name: "users",
        columns: &[
            ("id", Int),
            ("email", Text),
            ("email_key", Text),
            ("role", Text),
            ("password_hash", Text),
            ("created_at", Int),
        ],
        identity: Some("id"),
    },
    // The log of actions, after the issues, subscribers and users it names.
    Table {
        name: "actions",
        columns: &[
            ("id", Int),
            ("at", Int),
            ("actor", Text),
            ("action", Text),
            ("issue_number", Int),
            ("subscriber_id", Int),
            ("detail", Text),
        ],
        identity: Some("id"),
    },
];

/// Rows a statement inserts at once: well inside both backends' limits on bound values.
const BATCH: usize = 500;

/// What was copied, table by table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TransferReport {
    pub tables: Vec<(String, u64)>,
}

impl TransferReport {
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|(_, n)| n).sum()
    }
}

fn select(table: &Table, cast: impl Fn(&str, Kind) -> String) -> String {
    let columns: Vec<String> = table.columns.iter().map(|(c, k)| cast(c, *k)).collect();
    let key = table.columns.first().map_or("1", |(c, _)| c);
    let second = if table.identity.is_none() && table.columns.len() > 1 {
        format!(", {}", table.columns[1].0)
    } else {
        String::new()
    };
    format!("SELECT {} FROM {} ORDER BY {key}{second}", columns.join(", "), table.name)
}

fn sqlite_value(row: &SqliteRow, i: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Int => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::Text),
        Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map_or(Value::Null, Value::Blob),
    })
}

fn pg_value(row: &PgRow, i: usize, kind: Kind) -> Result<Value, sqlx::Error> {
    Ok(match kind {
        Int => row.try_get::<Option<i64>, _>(i)?.map_or(Value::Null, Value::Int),
        Text => row.try_get::<Option<String>, _>(i)?.map_or(Value::Null, Value::Text),
        Blob => row.try_get::<Option<Vec<u8>>, _>(i)?.map_or(Value::Null, Value::Blob),
    })
}

/// One row's values, column by column, read with `get`.
fn values(table: &Table, get: impl Fn(usize, Kind) -> Result<Value, sqlx::Error>) -> Result<Vec<Value>, sqlx::Error> {
    table.columns.iter().enumerate().map(|(i, (_, k))| get(i, *k)).collect()
}

/// The source's open, read-only transaction.
enum Reader {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Reader {
    async fn begin(store: &Store) -> Result<Self, StoreError> {
        Ok(match store {
            Store::Sqlite(s) => Self::Sqlite(s.pool.begin().await?),
            Store::Postgres(s) => {
                Self::Postgres(s.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?)
            }
        })
    }
}

/// The destination's open transaction.
enum Writer {
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>, std::collections::HashMap<String, String>),
}

impl Writer {
    async fn begin(store: &Store) -> Result<Self, StoreError> {
        match store {
            Store::Sqlite(s) => Ok(Self::Sqlite(s.pool.begin_with("BEGIN IMMEDIATE").await?)),
            Store::Postgres(s) => {
                let mut tx = s.pool.begin().await?;
                // The destination's own column types, so text travels into JSON columns and
                // integers into narrower ones by an explicit cast.
                let types = sqlx::query(
                    "SELECT table_name || '.' || column_name, udt_name FROM information_schema.columns \
                     WHERE table_schema = current_schema()",
                )
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(|r| (r.get::<String, _>(0), r.get::<String, _>(1)))
                .collect();
                Ok(Self::Postgres(tx, types))
            }
        }
    }

    async fn is_empty(&mut self) -> Result<bool, StoreError> {
        let sql =
            "SELECT (SELECT count(*) FROM subscribers) + (SELECT count(*) FROM issues) + (SELECT count(*) FROM lists)";
        let n: i64 = match self {
            Self::Sqlite(tx) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
            Self::Postgres(tx, _) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
        };
        Ok(n == 0)
    }

    async fn insert(&mut self, table: &Table, rows: &[Vec<Value>]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = table.columns.iter().map(|(c, _)| *c).collect();
        let width = names.len();
        let mut sql = format!("INSERT INTO {} ({}) VALUES ", table.name, names.join(", "));
        for r in 0..rows.len() {
            sql.push_str(if r == 0 { "(" } else { ", (" });
            for (c, column) in names.iter().enumerate() {
                if c > 0 {
                    sql.push_str(", ");
                }
                let n = r * width + c + 1;
                match self {
                    Self::Sqlite(_) => sql.push_str(&format!("?{n}")),
                    Self::Postgres(_, types) => {
                        let ty = types.get(&format!("{}.{column}", table.name)).map_or("text", String::as_str);
                        sql.push_str(&format!("${n}::{ty}"));
                    }
                }
            }
            sql.push(')');
        }
        // Table and column names come from the constant list above; every value is bound.
        let sql = sqlx::AssertSqlSafe(sql);
        match self {
            Self::Sqlite(tx) => {
                let mut q = sqlx::query(sql);
                for v in rows.iter().flatten() {
                    q = match v {
                        Value::Null => q.bind(None::<i64>),
                        Value::Int(i) => q.bind(*i),
                        Value::Text(t) => q.bind(t.clone()),
                        Value::Blob(b) => q.bind(b.clone()),
                    };
                }
                q.execute(&mut **tx).await?;
            }
            Self::Postgres(tx, _) => {
                let mut q = sqlx::query(sql);
                for (i, v) in rows.iter().flatten().enumerate() {
                    let kind = table.columns[i % width].1;
                    q = match (v, kind) {
                        (Value::Null, Int) => q.bind(None::<i64>),
                        (Value::Null, Text) => q.bind(None::<String>),
                        (Value::Null, Blob) => q.bind(None::<Vec<u8>>),
                        (Value::Int(i), _) => q.bind(*i),
                        (Value::Text(t), _) => q.bind(t.clone()),
                        (Value::Blob(b), _) => q.bind(b.clone()),
                    };
                }
                q.execute(&mut **tx).await?;
            }
        }
        Ok(())
    }

    async fn count(&mut self, table: &Table) -> Result<u64, StoreError> {
        let sql = sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {}", table.name));
        let n: i64 = match self {
            Self::Sqlite(tx) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
            Self::Postgres(tx, _) => sqlx::query_scalar(sql).fetch_one(&mut **tx).await?,
        };
        Ok(u64::try_from(n).unwrap_or_default())
    }

    async fn commit(self) -> Result<(), StoreError> {
        match self {
            Self::Sqlite(tx) => tx.commit().await?,
            Self::Postgres(mut tx, _) => {
                // Ids were copied as they were: new rows must be numbered after them.
                for t in TABLES {
                    if let Some(id) = t.identity {
                        let sql = sqlx::AssertSqlSafe(format!(
                            "SELECT setval(pg_get_serial_sequence('{0}', '{id}'), coalesce((SELECT max({id}) FROM {0}), 0) + 1, false)",
                            t.name
                        ));
                        sqlx::query(sql).execute(&mut *tx).await?;
                    }
                }
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

impl Store {
    /// Copies every row of this store into `dest`, which must hold no subscribers, lists or
    /// issues. `progress` hears each table's name and the rows copied so far.
    pub async fn copy_into(
        &self,
        dest: &Store,
        mut progress: impl FnMut(&str, u64),
    ) -> Result<TransferReport, StoreError> {
        let mut writer = Writer::begin(dest).await?;
        if !writer.is_empty().await? {
            return Err(StoreError::Unsupported(
                "the destination already holds subscribers or issues; migrate into a new, empty database".into(),
            ));
        }
        // One snapshot of the source for every table, so rows written meanwhile by a process
        // that was not stopped cannot leave a child without its parent.
        let mut source = Reader::begin(self).await?;
        let mut report = TransferReport::default();
        for table in TABLES {
            let mut copied = 0u64;
            let mut batch: Vec<Vec<Value>> = Vec::with_capacity(BATCH);
            let mut rows: BoxStream<'_, Result<Vec<Value>, sqlx::Error>> = match &mut source {
                Reader::Sqlite(tx) => {
                    let sql = sqlx::AssertSqlSafe(select(table, |c, _| c.to_owned()));
                    sqlx::query(sql)
                        .fetch(&mut **tx)
                        .map(|row| row.and_then(|row| values(table, |i, k| sqlite_value(&row, i, k))))
                        .boxed()
                }
                Reader::Postgres(tx) => {
                    let sql = sqlx::AssertSqlSafe(select(table, |c, k| match k {
                        Int => format!("{c}::bigint"),
                        Text => format!("{c}::text"),
                        Blob => c.to_owned(),
                    }));
                    sqlx::query(sql)
                        .fetch(&mut **tx)
                        .map(|row| row.and_then(|row| values(table, |i, k| pg_value(&row, i, k))))
                        .boxed()
                }
            };
            while let Some(values) = rows.try_next().await? {
                batch.push(values);
                if batch.len() == BATCH {
                    writer.insert(table, &batch).await?;
                    copied += batch.len() as u64;
                    batch.clear();
                    progress(table.name, copied);
                }
            }
            drop(rows);
            writer.insert(table, &batch).await?;
            copied += batch.len() as u64;
            progress(table.name, copied);
            let landed = writer.count(table).await?;
            if landed != copied {
                return Err(StoreError::Corrupt(format!(
                    "{}: {copied} rows read but {landed} in the destination; nothing was kept",
                    table.name
                )));
            }
            report.tables.push((table.name.to_owned(), copied));
        }
        writer.commit().await?;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tables a move leaves behind on purpose: the pacing of the moment, minutes of webhook
    /// tokens, and dashboard sessions (users sign in again).
    const LEFT_BEHIND: &[&str] = &["rate_buckets", "webhook_tokens", "sessions"];

    /// Every table and column the migrations make is copied, or left behind by name: a column
    /// added later and forgotten here would be lost by `migrate-store` without a word.
    #[tokio::test]
    async fn every_table_and_column_of_the_schema_is_moved() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("open");
        let Store::Sqlite(sqlite) = &store else { panic!("a SQLite store") };
        let pool = &sqlite.pool;
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
             AND name NOT LIKE '_sqlx%' ORDER BY name",
        )
        .fetch_all(pool)
        .await
        .expect("tables");
        for table in tables.iter().filter(|t| !LEFT_BEHIND.contains(&t.as_str())) {
            let moved = TABLES.iter().find(|t| t.name == table).unwrap_or_else(|| panic!("`{table}` is not moved"));
            let columns: Vec<String> = sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                .bind(table)
                .fetch_all(pool)
                .await
                .expect("columns");
            for column in columns {
                assert!(moved.columns.iter().any(|(c, _)| *c == column), "`{table}.{column}` is not moved");
            }
        }
    }
}
