-- One generation counter for every named policy (runtime and measured boot). Each policy
-- write takes the next value, so a generation never repeats for a name, even when the
-- policy is deleted and created again under the same name: a verifier caching prepared
-- policies by (name, generation) can never mistake a re-created policy for the old one.
-- Starts above every generation already stored.
CREATE TABLE verifier_policy_generation (
    id              INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
    last_generation INTEGER NOT NULL CHECK (last_generation >= 0)
);
INSERT INTO verifier_policy_generation (id, last_generation)
SELECT 1, COALESCE(MAX(g), 0) FROM (
    SELECT MAX(generation) AS g FROM verifier_runtime_policies
    UNION ALL
    SELECT MAX(generation) AS g FROM verifier_mb_policies
) AS stored;
