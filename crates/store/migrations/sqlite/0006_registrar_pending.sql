-- A re-registration of an ACTIVE agent with its own TPM identity: held here, beside the
-- active record, until its activation succeeds. The active record (and its mTLS
-- certificate and contact address) stays as it is meanwhile, so an unauthenticated
-- re-registration cannot deactivate an agent, and a wrong tag discards only this row.
CREATE TABLE registrar_pending_registrations (
    agent_id       TEXT    NOT NULL PRIMARY KEY
                   REFERENCES registrar_agents (agent_id) ON DELETE CASCADE,
    ekcert         BLOB,
    iak_tpm        BLOB,
    iak_cert       BLOB,
    idevid_tpm     BLOB,
    idevid_cert    BLOB,
    mtls_cert      TEXT,
    ip             TEXT    CHECK (length(ip) <= 255),
    port           INTEGER CHECK (port BETWEEN 1 AND 65535),
    activation_key TEXT    NOT NULL CHECK (length(activation_key) BETWEEN 1 AND 512)
);
