-- Sign-up requests are counted per address from the consent record.
CREATE INDEX consent_events_recent ON consent_events (subscriber_id, event, at);

-- The token bucket every worker draws its sends from, so that `rate` holds for all of them
-- together. Tokens are fractional; `updated_at` is unix ms.
CREATE TABLE rate_buckets (
    name        TEXT    PRIMARY KEY,
    tokens      REAL    NOT NULL,
    updated_at  INTEGER NOT NULL
);
