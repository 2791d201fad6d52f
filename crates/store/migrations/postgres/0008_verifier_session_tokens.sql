-- Bearer tokens of push agents' proof-of-possession sessions (API 3.0). Only the SHA-256
-- of a token is kept (hex, 64 characters), with the agent it authenticates and its expiry
-- in Unix seconds; a new token replaces the agent's older ones.
CREATE TABLE verifier_session_tokens (
    token_hash CHAR(64)    NOT NULL PRIMARY KEY,
    agent_id   VARCHAR(80) NOT NULL,
    expires_at BIGINT      NOT NULL
);
CREATE INDEX verifier_session_tokens_agent ON verifier_session_tokens (agent_id);
