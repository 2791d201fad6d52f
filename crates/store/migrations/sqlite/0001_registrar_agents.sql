-- Registrar state: one row per registered agent (PROTOCOL.md §2.2-2.4).
-- Upstream's equivalent table is `registrarmain`; column names follow it.
-- `activation_key` holds the pending HMAC key (upstream column `key`); NULL once activated.
CREATE TABLE registrar_agents (
    agent_id       TEXT    NOT NULL PRIMARY KEY CHECK (length(agent_id) BETWEEN 1 AND 80),
    ek_tpm         BLOB,
    ekcert         BLOB,
    aik_tpm        BLOB    NOT NULL,
    iak_tpm        BLOB,
    iak_cert       BLOB,
    idevid_tpm     BLOB,
    idevid_cert    BLOB,
    mtls_cert      TEXT,
    ip             TEXT    CHECK (length(ip) <= 255),
    port           INTEGER CHECK (port BETWEEN 1 AND 65535),
    activation_key TEXT    CHECK (length(activation_key) <= 512),
    active         BOOLEAN NOT NULL DEFAULT FALSE,
    regcount       INTEGER NOT NULL DEFAULT 0 CHECK (regcount >= 0)
);
