-- Migration 17: the Data Rights Protocol (authorised agents). Never edit once landed.
-- Nothing personal is kept here: agents are organisations; a request's
-- consumer is known only through its DSR (keyed identifier hash, sealed
-- address); the agent's own reference is sealed by the service.
CREATE TABLE drp_agents (
    id              TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    verify_key      BLOB NOT NULL,
    token_hash      BLOB UNIQUE,
    token_issued_at INTEGER,
    created_by      BLOB,
    created_at      INTEGER NOT NULL
);

-- The request_id an agent sees is the DSR's id.
CREATE TABLE drp_requests (
    dsr_id           BLOB PRIMARY KEY,
    agent_id         TEXT NOT NULL,
    exercise         TEXT NOT NULL,
    agent_request_id TEXT,
    attested         TEXT NOT NULL,
    created_at       INTEGER NOT NULL
);
CREATE INDEX drp_requests_agent ON drp_requests(agent_id);

-- Digests of accepted signed messages, kept until they expire: a message
-- is accepted once.
CREATE TABLE drp_nonces (
    digest     BLOB PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX drp_nonces_expiry ON drp_nonces(expires_at);
