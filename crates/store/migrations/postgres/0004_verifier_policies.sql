-- Named runtime (IMA) and measured-boot policies shared by agents (PROTOCOL.md §5.8;
-- upstream's `allowlists` and `mbpolicies`). `generation` grows on every update so a
-- verifier re-parses a policy once per version, and agents keep their IMA progress across
-- an update. Agents refer to their policies by name.
CREATE TABLE verifier_runtime_policies (
    name           VARCHAR(255) NOT NULL PRIMARY KEY CHECK (length(name) >= 1),
    runtime_policy TEXT         NOT NULL,
    tpm_policy     TEXT,
    generation     BIGINT       NOT NULL DEFAULT 1 CHECK (generation >= 1)
);
CREATE TABLE verifier_mb_policies (
    name       VARCHAR(255) NOT NULL PRIMARY KEY CHECK (length(name) >= 1),
    mb_policy  TEXT,
    generation BIGINT       NOT NULL DEFAULT 1 CHECK (generation >= 1)
);
ALTER TABLE verifier_agents ADD COLUMN runtime_policy_name VARCHAR(255);
ALTER TABLE verifier_agents ADD COLUMN mb_policy_name VARCHAR(255);
CREATE INDEX verifier_agents_by_runtime_policy ON verifier_agents (runtime_policy_name);
CREATE INDEX verifier_agents_by_mb_policy ON verifier_agents (mb_policy_name);
