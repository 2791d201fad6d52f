-- Verifier state: one row per agent enrolled at a verifier (PROTOCOL.md §5.2-5.5).
-- Upstream's equivalent table is `verifiermain`. `add_request` keeps the tenant's add-agent
-- body (JSON text) and `engine_state` the attestation engine's per-agent state (JSON text)
-- so a restarted verifier resumes every agent where it was.
CREATE TABLE verifier_agents (
    agent_id                    VARCHAR(80)  NOT NULL PRIMARY KEY,
    verifier_id                 VARCHAR(80)  NOT NULL,
    operational_state           INT          NOT NULL,
    ip                          VARCHAR(255),
    port                        INT,
    add_request                 LONGTEXT     NOT NULL,
    engine_state                MEDIUMTEXT   NOT NULL,
    attestation_count           BIGINT       NOT NULL DEFAULT 0,
    last_received_quote         BIGINT       NOT NULL DEFAULT 0,
    last_successful_attestation BIGINT       NOT NULL DEFAULT 0,
    severity_level              INT,
    last_event_id               VARCHAR(255),
    CONSTRAINT verifier_agents_state CHECK (operational_state BETWEEN 0 AND 10),
    CONSTRAINT verifier_agents_port CHECK (port BETWEEN 1 AND 65535),
    CONSTRAINT verifier_agents_count CHECK (attestation_count >= 0),
    INDEX verifier_agents_by_verifier (verifier_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
