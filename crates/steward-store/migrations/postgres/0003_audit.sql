-- Migration 3: the audit log (an RFC 9162 Merkle log) and its signed tree
-- heads. Never edit once landed. `entry` holds the canonical entry bytes the
-- leaf hash covers; the other columns are copies for filtering and are not
-- trusted by verification. Entries hold ids and field names, never personal data.
CREATE TABLE audit_log (
    idx         BIGINT PRIMARY KEY,
    entry       BYTEA NOT NULL,
    leaf_hash   BYTEA NOT NULL,
    at          BIGINT NOT NULL,
    subject_id  UUID,
    actor_user  UUID,
    actor_token UUID,
    action      TEXT NOT NULL
);
CREATE INDEX audit_subject ON audit_log(subject_id, idx);
CREATE INDEX audit_actor_user ON audit_log(actor_user, idx);

CREATE TABLE audit_tree_heads (
    tree_size    BIGINT PRIMARY KEY,
    timestamp_ms BIGINT NOT NULL,
    root         BYTEA NOT NULL,
    signature    BYTEA NOT NULL,
    key_id       TEXT NOT NULL
);
