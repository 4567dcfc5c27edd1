-- Times are unix milliseconds (UTC). States are spelled as in src/domain/status.rs and
-- constrained here, so no other spelling can be stored.

CREATE TABLE subscribers (
    id          INTEGER PRIMARY KEY,
    email       TEXT    NOT NULL UNIQUE,  -- domain lowercased; the local part kept as given
    name        TEXT    NOT NULL DEFAULT '',
    attributes  TEXT    NOT NULL DEFAULT '{}',  -- a JSON object of strings
    status      TEXT    NOT NULL CHECK (status IN ('unconfirmed', 'active', 'unsubscribed', 'bounced', 'complained')),
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE lists (
    id    INTEGER PRIMARY KEY,
    name  TEXT NOT NULL UNIQUE
);

CREATE TABLE memberships (
    list_id        INTEGER NOT NULL REFERENCES lists (id) ON DELETE CASCADE,
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
    created_at     INTEGER NOT NULL,
    PRIMARY KEY (list_id, subscriber_id)
);
CREATE INDEX memberships_subscriber ON memberships (subscriber_id);

-- The consent record: who joined, confirmed or left, when, and through what.
CREATE TABLE consent_events (
    id             INTEGER PRIMARY KEY,
    subscriber_id  INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    event          TEXT    NOT NULL CHECK (event IN ('subscribe', 'confirm', 'unsubscribe', 'import', 'add', 'bounce', 'complaint', 'forget')),
    source         TEXT    NOT NULL,
    at             INTEGER NOT NULL
);
CREATE INDEX consent_events_subscriber ON consent_events (subscriber_id);

CREATE TABLE issues (
    number       INTEGER PRIMARY KEY,
    status       TEXT    NOT NULL CHECK (status IN ('sending', 'sent', 'cancelled')),
    subject      TEXT    NOT NULL,
    issue_date   INTEGER NOT NULL,         -- the "now" the issue was composed for
    articles     TEXT    NOT NULL,         -- the frozen articles, JSON
    slot         TEXT    UNIQUE,           -- the schedule slot that made it, if any
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER
);

-- What each issue carried, by article identity, for `since_last_issue`.
CREATE TABLE issue_articles (
    issue_number  INTEGER NOT NULL REFERENCES issues (number),
    identity      TEXT    NOT NULL,
    PRIMARY KEY (issue_number, identity)
);
CREATE INDEX issue_articles_identity ON issue_articles (identity);

-- The delivery ledger: one row per (issue, subscriber), never deleted.
CREATE TABLE deliveries (
    id               INTEGER PRIMARY KEY,
    issue_number     INTEGER NOT NULL REFERENCES issues (number),
    subscriber_id    INTEGER NOT NULL REFERENCES subscribers (id),
    state            TEXT    NOT NULL CHECK (state IN ('queued', 'sent', 'deferred', 'failed', 'skipped')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  INTEGER NOT NULL,
    lease_owner      TEXT,
    lease_until      INTEGER,
    last_reply       TEXT,
    message_id       TEXT,
    updated_at       INTEGER NOT NULL,
    sent_at          INTEGER,
    UNIQUE (issue_number, subscriber_id)
);
-- Claims look for due, unleased rows of one issue.
CREATE INDEX deliveries_due ON deliveries (issue_number, state, next_attempt_at);
CREATE INDEX deliveries_lease ON deliveries (lease_owner);

-- When an undated feed item was first seen: it counts as published then.
CREATE TABLE article_first_seen (
    identity    TEXT    PRIMARY KEY,
    first_seen  INTEGER NOT NULL
);
