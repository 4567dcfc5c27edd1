-- The people who may use the dashboard, and their sessions. A user is found by the lower-case
-- address (`email_key`); `password_hash` is an Argon2id PHC string, never the password. A
-- session is found by the SHA-256 digest of its cookie's token, so that the table alone opens
-- no session; it carries the token its forms must echo (`csrf`), when it began, when it was
-- last used (idle expiry) and when it ends whatever happens (absolute expiry).
CREATE TABLE users (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    email          TEXT    NOT NULL,
    email_key      TEXT    NOT NULL UNIQUE,
    role           TEXT    NOT NULL CHECK (role IN ('owner', 'editor')),
    password_hash  TEXT    NOT NULL,
    created_at     INTEGER NOT NULL
);
CREATE TABLE sessions (
    token_digest   TEXT    PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    csrf           TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    seen_at        INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_expiry ON sessions (expires_at);
