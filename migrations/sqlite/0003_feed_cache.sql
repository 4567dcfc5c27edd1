-- The last body of each feed fetched over HTTP, with its validators, for conditional GET.
CREATE TABLE feed_cache (
    url            TEXT    PRIMARY KEY,
    etag           TEXT,
    last_modified  TEXT,
    body           BLOB    NOT NULL,
    fetched_at     INTEGER NOT NULL
);
