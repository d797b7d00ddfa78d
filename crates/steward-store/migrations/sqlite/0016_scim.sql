-- Migration 16: SCIM 2.0 provisioning of staff accounts (RFC 7643/7644).
-- Never edit once landed.
--
-- A provisioning client's bearer tokens: keyed hashes like API tokens, but
-- owned by no staff user, so a SCIM token can only provision and a staff
-- token can never provision.
CREATE TABLE scim_tokens (
    id           BLOB PRIMARY KEY,
    name         TEXT NOT NULL,
    default_role TEXT NOT NULL,
    hash         BLOB NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER,
    last_used_at INTEGER
);

-- What SCIM knows of a staff account beyond `users`: a keyed hash of the
-- identity provider's externalId (for lookups), the profile (names,
-- e-mail addresses) sealed by the service and bound to the user id, and
-- when SCIM deleted the account (which stays, disabled, as evidence).
CREATE TABLE scim_users (
    user_id          BLOB PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    external_id_hash BLOB UNIQUE,
    profile          BLOB NOT NULL,
    updated_at       INTEGER NOT NULL,
    deleted_at       INTEGER
);
