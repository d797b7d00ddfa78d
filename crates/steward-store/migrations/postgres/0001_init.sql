-- Steward PostgreSQL schema, migration 1. Never edit once landed; add a new file.
-- Instants are microseconds since the Unix epoch (BIGINT), matching SQLite.
-- Personal values live only in sealed blobs (`fields`, `summary`).

CREATE TABLE contacts (
    subject_id  UUID PRIMARY KEY,
    purposes    TEXT NOT NULL,
    fields      BYTEA NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    version     BIGINT NOT NULL
);

CREATE TABLE contact_terms (
    term        BYTEA NOT NULL,
    subject_id  UUID NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    is_unique   BOOLEAN NOT NULL,
    PRIMARY KEY (term, subject_id)
);
CREATE UNIQUE INDEX contact_terms_unique ON contact_terms(term) WHERE is_unique;
CREATE INDEX contact_terms_subject ON contact_terms(subject_id);

CREATE TABLE organizations (
    id          UUID PRIMARY KEY,
    name        TEXT NOT NULL,
    domain      TEXT,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);

CREATE TABLE deals (
    id              UUID PRIMARY KEY,
    title           TEXT NOT NULL,
    stage           TEXT NOT NULL,
    amount_minor    BIGINT,
    currency        TEXT,
    organization_id UUID REFERENCES organizations(id),
    subject_id      UUID REFERENCES contacts(subject_id) ON DELETE SET NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL
);
CREATE INDEX deals_subject ON deals(subject_id);
CREATE INDEX deals_organization ON deals(organization_id);

CREATE TABLE interactions (
    id          UUID PRIMARY KEY,
    subject_id  UUID NOT NULL REFERENCES contacts(subject_id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    created_at  BIGINT NOT NULL,
    summary     BYTEA NOT NULL
);
CREATE INDEX interactions_subject ON interactions(subject_id, id);

CREATE TABLE users (
    id            UUID PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    role          TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);

CREATE TABLE tokens (
    id          UUID PRIMARY KEY,
    user_id     UUID NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind        TEXT NOT NULL,
    name        TEXT,
    hash        BYTEA NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT
);
CREATE INDEX tokens_user ON tokens(user_id);
