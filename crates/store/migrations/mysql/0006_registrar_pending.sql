-- A re-registration of an ACTIVE agent with its own TPM identity: held here, beside the
-- active record, until its activation succeeds. The active record (and its mTLS
-- certificate and contact address) stays as it is meanwhile, so an unauthenticated
-- re-registration cannot deactivate an agent, and a wrong tag discards only this row.
CREATE TABLE registrar_pending_registrations (
    agent_id       VARCHAR(80)  NOT NULL PRIMARY KEY,
    ekcert         MEDIUMBLOB,
    iak_tpm        BLOB,
    iak_cert       MEDIUMBLOB,
    idevid_tpm     BLOB,
    idevid_cert    MEDIUMBLOB,
    mtls_cert      MEDIUMTEXT,
    ip             VARCHAR(255),
    port           INT,
    activation_key VARCHAR(512) NOT NULL,
    CONSTRAINT registrar_pending_agent FOREIGN KEY (agent_id)
        REFERENCES registrar_agents (agent_id) ON DELETE CASCADE,
    CONSTRAINT registrar_pending_port CHECK (port BETWEEN 1 AND 65535)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
