-- What each reader chose, and which edition each issue belongs to.
--
-- `edition` is the key of the edition's name (its lower case); NULL = the default edition, which
-- is what every reader had before editions. `topics` holds topic keys, sorted, each closed by `;`
-- on both sides (';arts & culture;science;'), so that one topic is found with a LIKE and equal
-- choices compare equal; NULL = every topic. `paused_until` (unix ms): no issue until then.
ALTER TABLE subscribers ADD COLUMN edition TEXT;
ALTER TABLE subscribers ADD COLUMN topics TEXT;
ALTER TABLE subscribers ADD COLUMN paused_until INTEGER;

-- The edition's key; NULL for an issue made without [[edition]] (counted as the default's).
ALTER TABLE issues ADD COLUMN edition TEXT;

-- A reader's change of edition, topics, name or pause is recorded in the consent record as
-- `preferences`. SQLite cannot change a CHECK constraint in place, so the table is made again
-- inside this migration's transaction (nothing references it).
CREATE TEMPORARY TABLE consent_events_before_0016 AS SELECT * FROM consent_events;

DROP TABLE consent_events;

CREATE TABLE consent_events (
    id             INTEGER PRIMARY KEY,
    subscriber_id  INTEGER REFERENCES subscribers (id) ON DELETE SET NULL,
    event          TEXT    NOT NULL CHECK (event IN ('subscribe', 'confirm', 'unsubscribe', 'import', 'add', 'bounce', 'complaint', 'forget', 'preferences')),
    source         TEXT    NOT NULL,
    at             INTEGER NOT NULL
);

INSERT INTO consent_events (id, subscriber_id, event, source, at)
    SELECT id, subscriber_id, event, source, at FROM consent_events_before_0016;

DROP TABLE consent_events_before_0016;

CREATE INDEX consent_events_subscriber ON consent_events (subscriber_id);
CREATE INDEX consent_events_recent ON consent_events (subscriber_id, event, at);
CREATE INDEX consent_events_at ON consent_events (at, event);
