-- Bounces and complaints that came back after a message went out, each report once: `message_key`
-- is the report's Message-ID, or a digest of the report where it has none. Autoresponders' answers
-- and reports gazette cannot act on are not kept. A bounce of a delivery leaves its state `sent`;
-- `issues show` counts them from here.
CREATE TABLE bounces (
    id             INTEGER PRIMARY KEY,
    message_key    TEXT    NOT NULL UNIQUE,
    delivery_id    INTEGER REFERENCES deliveries (id),
    subscriber_id  INTEGER NOT NULL REFERENCES subscribers (id),
    issue_number   INTEGER REFERENCES issues (number),
    kind           TEXT    NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    status         TEXT,     -- the enhanced status code (5.1.1), when the report gave one
    diagnostic     TEXT,     -- the server's words, on one line
    at             INTEGER NOT NULL
);
-- An issue's counts; one reader's soft bounces within the window.
CREATE INDEX bounces_issue ON bounces (issue_number, kind);
CREATE INDEX bounces_subscriber ON bounces (subscriber_id, kind, at);
