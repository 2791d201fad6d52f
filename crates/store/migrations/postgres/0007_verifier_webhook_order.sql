-- The revocation webhook outbox is delivered oldest first, one notice at a time per
-- verifier. `seq` is the creation order: each queued notice takes the next value of one
-- counter, in the same transaction as its insert, so a notice that commits later always has
-- a higher `seq` (the counter row is locked until commit; a SEQUENCE would not give that).
-- Notices queued before this migration keep `seq` 0 and their (created_at, id) order, ahead
-- of every later one.
ALTER TABLE verifier_webhook_outbox ADD COLUMN seq BIGINT NOT NULL DEFAULT 0 CHECK (seq >= 0);
CREATE INDEX verifier_webhook_outbox_order ON verifier_webhook_outbox (verifier_id, seq);
CREATE TABLE verifier_webhook_sequence (
    id       SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT   NOT NULL CHECK (last_seq >= 0)
);
INSERT INTO verifier_webhook_sequence (id, last_seq) VALUES (1, 0);
