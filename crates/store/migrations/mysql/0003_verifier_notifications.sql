-- Revocation webhook deliveries not yet acknowledged (PROTOCOL.md §7): written before the
-- first attempt so a verifier that stops or crashes resumes them on start.
CREATE TABLE verifier_webhook_outbox (
    id          VARCHAR(64) NOT NULL PRIMARY KEY,
    verifier_id VARCHAR(80) NOT NULL,
    url         TEXT        NOT NULL,
    body        LONGTEXT    NOT NULL,
    attempts    INT         NOT NULL DEFAULT 0,
    created_at  BIGINT      NOT NULL,
    CONSTRAINT verifier_webhook_outbox_attempts CHECK (attempts >= 0),
    INDEX verifier_webhook_outbox_by_verifier (verifier_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
-- V (the verifier's bootstrap key share, §4.6) delivered to an agent: `delivered_for` is a
-- digest of the agent's payload public key and V, so a new key or a new V means delivery again.
CREATE TABLE verifier_v_deliveries (
    agent_id      VARCHAR(80)  NOT NULL PRIMARY KEY,
    delivered_for VARCHAR(128) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
