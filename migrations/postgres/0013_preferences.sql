-- What each reader chose, and which edition each issue belongs to.
--
-- `edition` is the key of the edition's name (its lower case); NULL = the default edition, which
-- is what every reader had before editions. `topics` holds topic keys, sorted, each closed by `;`
-- on both sides (';arts & culture;science;'), so that one topic is found with a LIKE and equal
-- choices compare equal; NULL = every topic. `paused_until` (unix ms): no issue until then.
ALTER TABLE subscribers ADD COLUMN edition TEXT;
ALTER TABLE subscribers ADD COLUMN topics TEXT;
ALTER TABLE subscribers ADD COLUMN paused_until BIGINT;

-- The edition's key; NULL for an issue made without [[edition]] (counted as the default's).
ALTER TABLE issues ADD COLUMN edition TEXT;

-- A reader's change of edition, topics, name or pause is recorded as `preferences`.
ALTER TABLE consent_events DROP CONSTRAINT consent_events_event_check;
ALTER TABLE consent_events ADD CONSTRAINT consent_events_event_check
    CHECK (event IN ('subscribe', 'confirm', 'unsubscribe', 'import', 'add', 'bounce', 'complaint', 'forget', 'preferences'));
