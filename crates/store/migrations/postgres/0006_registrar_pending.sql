-- A re-registration of an ACTIVE agent with its own TPM identity: held here, beside the
-- active record, until its activation succeeds. The active record (and its mTLS
-- certificate and contact address) stays as it is meanwhile, so an unauthenticated
-- re-registration cannot deactivate an agent, and a wrong tag discards only this row.
CREATE TABLE registrar_pending_registrations (
    agent_id       VARCHAR(80)  NOT NULL PRIMARY KEY
                   REFERENCES registrar_agents (agent_id) ON DELETE CASCADE,
    ekcert         BYTEA,
    iak_tpm        BYTEA,
    iak_cert       BYTEA,
    idevid_tpm     BYTEA,
    idevid_cert    BYTEA,
    mtls_cert      TEXT,
    ip             VARCHAR(255),
    port           INTEGER      CHECK (port BETWEEN 1 AND 65535),
    activation_key VARCHAR(512) NOT NULL CHECK (length(activation_key) >= 1)
);
