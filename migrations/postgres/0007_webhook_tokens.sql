-- The tokens of providers' signed webhook requests seen lately (Mailgun's), so that a request
-- captured and sent again is refused. The same table as migrations/sqlite/0010_webhook_tokens.sql.
CREATE TABLE webhook_tokens (
    provider  TEXT   NOT NULL,
    token     TEXT   NOT NULL,
    seen_at   BIGINT NOT NULL,
    PRIMARY KEY (provider, token)
);
CREATE INDEX webhook_tokens_seen ON webhook_tokens (seen_at);
