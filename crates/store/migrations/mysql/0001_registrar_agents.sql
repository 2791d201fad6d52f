-- Registrar state: one row per registered agent (PROTOCOL.md §2.2-2.4).
-- Upstream's equivalent table is `registrarmain`; column names follow it.
-- `activation_key` holds the pending HMAC key (upstream column `key`); NULL once activated.
-- utf8mb4_bin: agent ids and activation keys compare case-sensitively, as on the other backends.
CREATE TABLE registrar_agents (
    agent_id       VARCHAR(80)  NOT NULL PRIMARY KEY,
    ek_tpm         BLOB,
    ekcert         MEDIUMBLOB,
    aik_tpm        BLOB         NOT NULL,
    iak_tpm        BLOB,
    iak_cert       MEDIUMBLOB,
    idevid_tpm     BLOB,
    idevid_cert    MEDIUMBLOB,
    mtls_cert      MEDIUMTEXT,
    ip             VARCHAR(255),
    port           INT,
    activation_key VARCHAR(512),
    active         BOOLEAN      NOT NULL DEFAULT FALSE,
    regcount       INT          NOT NULL DEFAULT 0,
    CONSTRAINT registrar_agents_port CHECK (port BETWEEN 1 AND 65535),
    CONSTRAINT registrar_agents_regcount CHECK (regcount >= 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
