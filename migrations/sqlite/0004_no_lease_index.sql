-- Leases are renewed by delivery id; an index on the owner only cost every claim and record.
DROP INDEX IF EXISTS deliveries_lease;
