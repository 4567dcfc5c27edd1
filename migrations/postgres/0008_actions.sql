-- Who did what on the publisher's side; the same table as migrations/sqlite/0011_actions.sql.
CREATE TABLE actions (
    id             BIGSERIAL PRIMARY KEY,
    at             BIGINT NOT NULL,
    actor          TEXT   NOT NULL,
    action         TEXT   NOT NULL,
    issue_number   BIGINT REFERENCES issues (number),
    subscriber_id  BIGINT REFERENCES subscribers (id),
    detail         TEXT   NOT NULL DEFAULT ''
);
CREATE INDEX actions_at ON actions (at);
CREATE INDEX actions_issue ON actions (issue_number, at);
