-- The dashboard's figures; the same indexes as migrations/sqlite/0014_figures.sql. An issue's
-- messages over time are counted by (issue, state, time of the last change) by an index-only
-- scan. It replaces `deliveries_state`, whose every use it serves as well: recording an outcome
-- changes `state`, so it writes this index whether or not `updated_at` is in it, and a claim,
-- which changes neither, stays a HOT update. The subscribers over time are counted from the
-- consent record by its time.
CREATE INDEX deliveries_state_time ON deliveries (issue_number, state, updated_at);
DROP INDEX IF EXISTS deliveries_state;
CREATE INDEX consent_events_at ON consent_events (at, event);
