-- Who did what on the publisher's side: each review transition, each change made from the
-- dashboard or the command line, with its actor and time. Never updated, never deleted.
-- `actor` is how the actor reads in the log: a dashboard user's address, `command line`,
-- `scheduler` or `admin API`. `subscriber_id` names a subscriber the action touched, by id, so
-- that forgetting the subscriber leaves no address here.
CREATE TABLE actions (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    at             INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    action         TEXT    NOT NULL,
    issue_number   INTEGER REFERENCES issues (number),
    subscriber_id  INTEGER REFERENCES subscribers (id),
    detail         TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX actions_at ON actions (at);
CREATE INDEX actions_issue ON actions (issue_number, at);
