-- Revocation webhook deliveries not yet acknowledged (PROTOCOL.md §7): written before the
-- first attempt so a verifier that stops or crashes resumes them on start.
CREATE TABLE verifier_webhook_outbox (
    id          TEXT    NOT NULL PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 64),
    verifier_id TEXT    NOT NULL CHECK (length(verifier_id) BETWEEN 1 AND 80),
    url         TEXT    NOT NULL,
    body        TEXT    NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at  INTEGER NOT NULL
);
CREATE INDEX verifier_webhook_outbox_by_verifier ON verifier_webhook_outbox (verifier_id);
-- V (the verifier's bootstrap key share, §4.6) delivered to an agent: `delivered_for` is a
-- digest of the agent's payload public key and V, so a new key or a new V means delivery again.
CREATE TABLE verifier_v_deliveries (
    agent_id      TEXT NOT NULL PRIMARY KEY CHECK (length(agent_id) BETWEEN 1 AND 80),
    delivered_for TEXT NOT NULL CHECK (length(delivered_for) <= 128)
);
