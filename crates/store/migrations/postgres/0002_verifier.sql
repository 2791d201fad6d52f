-- Verifier state: one row per agent enrolled at a verifier (PROTOCOL.md §5.2-5.5).
-- Upstream's equivalent table is `verifiermain`. `add_request` keeps the tenant's add-agent
-- body (JSON text) and `engine_state` the attestation engine's per-agent state (JSON text)
-- so a restarted verifier resumes every agent where it was.
CREATE TABLE verifier_agents (
    agent_id                    VARCHAR(80)  NOT NULL PRIMARY KEY CHECK (length(agent_id) >= 1),
    verifier_id                 VARCHAR(80)  NOT NULL CHECK (length(verifier_id) >= 1),
    operational_state           INTEGER      NOT NULL CHECK (operational_state BETWEEN 0 AND 10),
    ip                          VARCHAR(255),
    port                        INTEGER      CHECK (port BETWEEN 1 AND 65535),
    add_request                 TEXT         NOT NULL,
    engine_state                TEXT         NOT NULL,
    attestation_count           BIGINT       NOT NULL DEFAULT 0 CHECK (attestation_count >= 0),
    last_received_quote         BIGINT       NOT NULL DEFAULT 0,
    last_successful_attestation BIGINT       NOT NULL DEFAULT 0,
    severity_level              INTEGER,
    last_event_id               VARCHAR(255)
);
CREATE INDEX verifier_agents_by_verifier ON verifier_agents (verifier_id);
