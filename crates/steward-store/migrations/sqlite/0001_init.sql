-- Steward SQLite schema, migration 1. Never edit once landed; add a new file.
-- Instants are microseconds since the Unix epoch; ids are 16-byte UUIDv7.
-- Personal values live only in sealed blobs (`fields`, `summary`).

CREATE TABLE contacts (
    subject_id  BLOB PRIMARY KEY,
    purposes    TEXT NOT NULL,
    fields      BLOB NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    version     INTEGER NOT NULL
);

CREATE TABLE contact_terms (
    term        BLOB NOT NULL,
    subject_id  BLOB NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    is_unique   INTEGER NOT NULL,
    PRIMARY KEY (term, subject_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX contact_terms_unique ON contact_terms(term) WHERE is_unique = 1;
CREATE INDEX contact_terms_subject ON contact_terms(subject_id);

CREATE TABLE organizations (
    id          BLOB PRIMARY KEY,
    name        TEXT NOT NULL,
    domain      TEXT,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL
);

CREATE TABLE deals (
    id              BLOB PRIMARY KEY,
    title           TEXT NOT NULL,
    stage           TEXT NOT NULL,
    amount_minor    INTEGER,
    currency        TEXT,
    organization_id BLOB REFERENCES organizations(id),
    subject_id      BLOB REFERENCES contacts(subject_id) ON DELETE SET NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX deals_subject ON deals(subject_id);
CREATE INDEX deals_organization ON deals(organization_id);

CREATE TABLE interactions (
    id          BLOB PRIMARY KEY,
    subject_id  BLOB NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    summary     BLOB NOT NULL
);
CREATE INDEX interactions_subject ON interactions(subject_id, id);

CREATE TABLE users (
    id            BLOB PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    id          BLOB PRIMARY KEY,
    user_id     BLOB NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    name        TEXT,
    hash        BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER
);
CREATE INDEX tokens_user ON tokens(user_id);
