-- The revocation webhook outbox is delivered oldest first, one notice at a time per
-- verifier. `seq` is the creation order: each queued notice takes the next value of one
-- counter, in the same transaction as its insert, so a notice that commits later always has
-- a higher `seq` (the counter row is locked until commit; AUTO_INCREMENT would not give
-- that). Notices queued before this migration keep `seq` 0 and their (created_at, id)
-- order, ahead of every later one.
ALTER TABLE verifier_webhook_outbox
    ADD COLUMN seq BIGINT NOT NULL DEFAULT 0,
    ADD CONSTRAINT verifier_webhook_outbox_seq CHECK (seq >= 0),
    ADD INDEX verifier_webhook_outbox_order (verifier_id, seq);
CREATE TABLE verifier_webhook_sequence (
    id       SMALLINT NOT NULL PRIMARY KEY,
    last_seq BIGINT   NOT NULL,
    CONSTRAINT verifier_webhook_sequence_single CHECK (id = 1),
    CONSTRAINT verifier_webhook_sequence_positive CHECK (last_seq >= 0)
) ENGINE=InnoDB;
INSERT INTO verifier_webhook_sequence (id, last_seq) VALUES (1, 0);
