-- The dashboard's figures. An issue's messages over time are counted by (issue, state, time of
-- the last change) from this index alone, without reading each delivery's row; it also answers
-- what `deliveries_due` did for counts by state. The subscribers over time are counted from the
-- consent record by its time, which no index read before: `consent_events_at` holds the event
-- too, so a day's joins and departures are read from it alone.
CREATE INDEX deliveries_state_time ON deliveries (issue_number, state, updated_at);
CREATE INDEX consent_events_at ON consent_events (at, event);
