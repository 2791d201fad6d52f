-- Named runtime (IMA) and measured-boot policies shared by agents (PROTOCOL.md §5.8;
-- upstream's `allowlists` and `mbpolicies`). `generation` grows on every update so a
-- verifier re-parses a policy once per version, and agents keep their IMA progress across
-- an update. Agents refer to their policies by name.
CREATE TABLE verifier_runtime_policies (
    name           VARCHAR(255) NOT NULL PRIMARY KEY,
    runtime_policy LONGTEXT     NOT NULL,
    tpm_policy     LONGTEXT,
    generation     BIGINT       NOT NULL DEFAULT 1,
    CONSTRAINT verifier_runtime_policies_generation CHECK (generation >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE verifier_mb_policies (
    name       VARCHAR(255) NOT NULL PRIMARY KEY,
    mb_policy  LONGTEXT,
    generation BIGINT       NOT NULL DEFAULT 1,
    CONSTRAINT verifier_mb_policies_generation CHECK (generation >= 1)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
ALTER TABLE verifier_agents ADD COLUMN runtime_policy_name VARCHAR(255) NULL;
ALTER TABLE verifier_agents ADD COLUMN mb_policy_name VARCHAR(255) NULL;
CREATE INDEX verifier_agents_by_runtime_policy ON verifier_agents (runtime_policy_name);
CREATE INDEX verifier_agents_by_mb_policy ON verifier_agents (mb_policy_name);
