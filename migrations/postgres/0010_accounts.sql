-- The dashboard's users and sessions; the same tables as migrations/sqlite/0013_accounts.sql.
CREATE TABLE users (
    id             BIGSERIAL PRIMARY KEY,
    email          TEXT   NOT NULL,
    email_key      TEXT   NOT NULL UNIQUE,
    role           TEXT   NOT NULL CHECK (role IN ('owner', 'editor')),
    password_hash  TEXT   NOT NULL,
    created_at     BIGINT NOT NULL
);
CREATE TABLE sessions (
    token_digest   TEXT   PRIMARY KEY,
    user_id        BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf           TEXT   NOT NULL,
    created_at     BIGINT NOT NULL,
    seen_at        BIGINT NOT NULL,
    expires_at     BIGINT NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
