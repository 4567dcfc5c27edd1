-- The tokens of providers' signed webhook requests seen lately (Mailgun's), so that a request
-- captured and sent again is refused. A token is kept only as long as its timestamp would still
-- be taken: an older request is refused as stale anyway, so older rows are pruned.
CREATE TABLE webhook_tokens (
    provider  TEXT    NOT NULL,
    token     TEXT    NOT NULL,
    seen_at   INTEGER NOT NULL,
    PRIMARY KEY (provider, token)
);
CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
