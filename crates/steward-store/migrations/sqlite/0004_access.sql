-- Migration 4: access control. Never edit once landed.
-- Tokens: revocation, last use (for idle expiry), purpose scope, and whether
-- a session was established with a second factor.
ALTER TABLE tokens ADD COLUMN revoked_at INTEGER;
ALTER TABLE tokens ADD COLUMN last_used_at INTEGER;
ALTER TABLE tokens ADD COLUMN purpose TEXT;
ALTER TABLE tokens ADD COLUMN mfa INTEGER NOT NULL DEFAULT 0;

-- Users: sign-in failures and lockout.
ALTER TABLE users ADD COLUMN failed_logins INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until INTEGER;

-- Second factors (TOTP now; WebAuthn later), secrets sealed by the service.
CREATE TABLE credentials (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    secret      BLOB NOT NULL,
    confirmed   INTEGER NOT NULL DEFAULT 0,
    last_step   INTEGER,
    created_at  INTEGER NOT NULL
);
CREATE INDEX credentials_user ON credentials(user_id);

-- One-time recovery codes, stored as keyed hashes only.
CREATE TABLE recovery_codes (
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    used_at     INTEGER,
    PRIMARY KEY (user_id, code_hash)
) WITHOUT ROWID;

-- Staff data-protection training.
CREATE TABLE training_records (
    id           BLOB PRIMARY KEY,
    user_id      BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    course       TEXT NOT NULL,
    completed_on TEXT NOT NULL,
    expires_on   TEXT,
    created_at   INTEGER NOT NULL
);
CREATE INDEX training_user ON training_records(user_id);

-- Instance settings (name → value).
CREATE TABLE settings (
    name        TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    updated_at  INTEGER NOT NULL
);

-- Restriction of processing (GDPR Art. 18).
ALTER TABLE contacts ADD COLUMN restricted INTEGER NOT NULL DEFAULT 0;
