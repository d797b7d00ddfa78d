-- Migration 14: SCIM 2.0 provisioning of staff accounts (RFC 7643/7644).
-- Never edit once landed.
--
-- A provisioning client's bearer tokens: keyed hashes like API tokens, but
-- owned by no staff user, so a SCIM token can only provision and a staff
-- token can never provision.
CREATE TABLE scim_tokens (
    id           UUID PRIMARY KEY,
    name         TEXT NOT NULL,
    default_role TEXT NOT NULL,
    hash         BYTEA NOT NULL UNIQUE,
    created_at   BIGINT NOT NULL,
    revoked_at   BIGINT,
    last_used_at BIGINT
);

-- What SCIM knows of a staff account beyond `users`: a keyed hash of the
-- identity provider's externalId (for lookups), the profile (names,
-- e-mail addresses) sealed by the service and bound to the user id, and
-- when SCIM deleted the account (which stays, disabled, as evidence).
CREATE TABLE scim_users (
    user_id          UUID PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    external_id_hash BYTEA UNIQUE,
    profile          BYTEA NOT NULL,
    updated_at       BIGINT NOT NULL,
    deleted_at       BIGINT
);
