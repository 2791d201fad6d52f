-- Revocation webhook deliveries not yet acknowledged (PROTOCOL.md §7): written before the
-- first attempt so a verifier that stops or crashes resumes them on start.
CREATE TABLE verifier_webhook_outbox (
    id          VARCHAR(64) NOT NULL PRIMARY KEY CHECK (length(id) >= 1),
    verifier_id VARCHAR(80) NOT NULL CHECK (length(verifier_id) >= 1),
    url         TEXT        NOT NULL,
    body        TEXT        NOT NULL,
    attempts    INTEGER     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    created_at  BIGINT      NOT NULL
);
CREATE INDEX verifier_webhook_outbox_by_verifier ON verifier_webhook_outbox (verifier_id);
-- V (the verifier's bootstrap key share, §4.6) delivered to an agent: `delivered_for` is a
-- digest of the agent's payload public key and V, so a new key or a new V means delivery again.
CREATE TABLE verifier_v_deliveries (
    agent_id      VARCHAR(80)  NOT NULL PRIMARY KEY CHECK (length(agent_id) >= 1),
    delivered_for VARCHAR(128) NOT NULL
);
