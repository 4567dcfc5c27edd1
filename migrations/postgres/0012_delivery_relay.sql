-- The relay (`host:port`, never its credentials) each delivery's last outcome came from, written
-- with that outcome; NULL for the outbox and for outcomes recorded before this column. A column
-- with no default: adding it rewrites nothing.
ALTER TABLE deliveries ADD COLUMN relay TEXT;
