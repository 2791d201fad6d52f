-- Registrar state: one row per registered agent (PROTOCOL.md §2.2-2.4).
-- Upstream's equivalent table is `registrarmain`; column names follow it.
-- `activation_key` holds the pending HMAC key (upstream column `key`); NULL once activated.
CREATE TABLE registrar_agents (
    agent_id       VARCHAR(80)  NOT NULL PRIMARY KEY CHECK (length(agent_id) >= 1),
    ek_tpm         BYTEA,
    ekcert         BYTEA,
    aik_tpm        BYTEA        NOT NULL,
    iak_tpm        BYTEA,
    iak_cert       BYTEA,
    idevid_tpm     BYTEA,
    idevid_cert    BYTEA,
    mtls_cert      TEXT,
    ip             VARCHAR(255),
    port           INTEGER      CHECK (port BETWEEN 1 AND 65535),
    activation_key VARCHAR(512),
    active         BOOLEAN      NOT NULL DEFAULT FALSE,
    regcount       INTEGER      NOT NULL DEFAULT 0 CHECK (regcount >= 0)
);
