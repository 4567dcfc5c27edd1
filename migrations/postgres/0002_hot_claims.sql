-- A claim only sets the lease columns. With no index on them and room left on each page, that
-- update is HOT: no index entry is written, where five were before. `next_due` and `release`
-- find leased rows through `deliveries_due` instead (the deliveries still to send).
DROP INDEX IF EXISTS deliveries_leased;
-- Pages of deliveries queued from now on keep a fifth free for the claim's new row versions.
ALTER TABLE deliveries SET (fillfactor = 80);
