-- Migration 4: access control. Never edit once landed.
ALTER TABLE tokens ADD COLUMN revoked_at BIGINT;
ALTER TABLE tokens ADD COLUMN last_used_at BIGINT;
ALTER TABLE tokens ADD COLUMN purpose TEXT;
ALTER TABLE tokens ADD COLUMN mfa BOOLEAN NOT NULL DEFAULT FALSE;

ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;

CREATE TABLE credentials (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    secret      BYTEA NOT NULL,
    confirmed   BOOLEAN NOT NULL DEFAULT FALSE,
    last_step   BIGINT,
    created_at  BIGINT NOT NULL
);
CREATE INDEX credentials_user ON credentials(user_id);

CREATE TABLE recovery_codes (
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   BYTEA NOT NULL,
    used_at     BIGINT,
    PRIMARY KEY (user_id, code_hash)
);

CREATE TABLE training_records (
    id           UUID PRIMARY KEY,
    user_id      UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    course       TEXT NOT NULL,
    completed_on TEXT NOT NULL,
    expires_on   TEXT,
    created_at   BIGINT NOT NULL
);
CREATE INDEX training_user ON training_records(user_id);

CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  BIGINT NOT NULL
);

ALTER TABLE contacts ADD COLUMN restricted BOOLEAN NOT NULL DEFAULT FALSE;
