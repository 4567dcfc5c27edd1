-- Issues may now be paused (their bounce or complaint rate passed its limit) and, for review,
-- be drafts, held or approved. SQLite cannot change a CHECK constraint in place, so the table is
-- made again inside this migration's transaction. Foreign keys cannot be switched off within a
-- transaction; they are deferred instead: dropping `issues` leaves the rows that reference it
-- without a parent for a moment, and putting the issues back into the new table restores every
-- one of them before the commit checks.
--
-- `note` says why an issue stands where it is (why it was paused); `guard_since` is when it was
-- last resumed: its bounce and complaint rates count only what was sent after that.
PRAGMA defer_foreign_keys = ON;

CREATE TEMPORARY TABLE issues_before_0009 AS SELECT * FROM issues;

DROP TABLE issues;

CREATE TABLE issues (
    number       INTEGER PRIMARY KEY,
    status       TEXT    NOT NULL CHECK (status IN ('draft', 'held', 'approved', 'sending', 'paused', 'sent', 'cancelled')),
    subject      TEXT    NOT NULL,
    issue_date   INTEGER NOT NULL,         -- the "now" the issue was composed for
    articles     TEXT    NOT NULL,         -- the frozen articles, JSON
    slot         TEXT    UNIQUE,           -- the schedule slot that made it, if any
    created_at   INTEGER NOT NULL,
    finished_at  INTEGER,
    note         TEXT,
    guard_since  INTEGER
);

INSERT INTO issues (number, status, subject, issue_date, articles, slot, created_at, finished_at)
    SELECT number, status, subject, issue_date, articles, slot, created_at, finished_at FROM issues_before_0009;

DROP TABLE issues_before_0009;

CREATE INDEX issues_status ON issues (status);
