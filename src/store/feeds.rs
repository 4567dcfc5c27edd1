//! The feed cache: each feed's last body with the validators (ETag, Last-Modified) that let the
//! next fetch ask only for what changed.

use chrono::{DateTime, Utc};

use super::{
    FeedCacheEntry, Store, StoreError,
    backend::{ms, with_backend},
};

const ONE: &str = "SELECT body, etag, last_modified FROM feed_cache WHERE url = $1";
const KEEP: &str = "INSERT INTO feed_cache (url, etag, last_modified, body, fetched_at) VALUES ($1, $2, $3, $4, $5) \
     ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified, \
     body = excluded.body, fetched_at = excluded.fetched_at";

impl Store {
    pub async fn cached_feed(&self, url: &str) -> Result<Option<FeedCacheEntry>, StoreError> {
        let row: Option<(Vec<u8>, Option<String>, Option<String>)> =
            with_backend!(self, |pool, db| sqlx::query_as(ONE).bind(url).fetch_optional(pool).await?);
        Ok(row.map(|(body, etag, last_modified)| FeedCacheEntry { body, etag, last_modified }))
    }

    pub async fn cache_feed(&self, url: &str, entry: &FeedCacheEntry, now: DateTime<Utc>) -> Result<(), StoreError> {
        with_backend!(self, |pool, db| {
            sqlx::query(KEEP)
                .bind(url)
                .bind(&entry.etag)
                .bind(&entry.last_modified)
                .bind(&entry.body)
                .bind(ms(now))
                .execute(pool)
                .await?;
        });
        Ok(())
    }
}
