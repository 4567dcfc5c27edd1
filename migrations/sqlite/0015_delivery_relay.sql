-- The relay (`host:port`, never its credentials) each delivery's last outcome came from, written
-- with that outcome; NULL for the outbox and for outcomes recorded before this column.
ALTER TABLE deliveries ADD COLUMN relay TEXT;
