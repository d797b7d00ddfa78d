-- Migration 11: the register of personal-data breaches (GDPR Art. 33(5)),
-- and an index of the audit log by actor token. Never edit once landed.
--
-- An incident row keeps in the clear only what the register is listed and
-- sorted by (status, when the controller became aware, the earliest open
-- legal deadline); its title, description, risk assessment and the rest
-- are sealed by the service under an instance key. Its entries (timeline,
-- evidence, scope snapshots, notifications, containment actions) are
-- append-only and sealed too; they are listed by id (UUIDv7).
CREATE TABLE incidents (
    id         UUID PRIMARY KEY,
    status     TEXT NOT NULL,
    aware_at   BIGINT NOT NULL,
    due_at     BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    sealed     BYTEA NOT NULL
);
CREATE INDEX incidents_created ON incidents(created_at, id);

CREATE TABLE incident_entries (
    id          UUID PRIMARY KEY,
    incident_id UUID NOT NULL REFERENCES incidents(id),
    kind        TEXT NOT NULL,
    at          BIGINT NOT NULL,
    sealed      BYTEA NOT NULL
);
CREATE INDEX incident_entries_incident ON incident_entries(incident_id, id);

-- Audit queries by API token or session (the scope of a breach). Partial:
-- most entries (the system's, anonymous callers') carry no token.
CREATE INDEX audit_actor_token ON audit_log(actor_token, idx) WHERE actor_token IS NOT NULL;
