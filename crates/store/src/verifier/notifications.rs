//! Verifier notification bookkeeping (migrations 0003, 0007): the revocation webhook outbox
//! (`verifier_webhook_outbox`), written before a delivery is first attempted and removed
//! once the receiver acknowledged it, so a stopped verifier resumes pending deliveries on
//! start; each notice takes the next value of one counter (`verifier_webhook_sequence`) in
//! its insert's transaction, so reading a verifier's outbox by `seq` gives its notices in
//! the order they were created. And the V-delivery marker per agent
//! (`verifier_v_deliveries`), so V is delivered once per payload key and V.

use sqlx::FromRow;

use super::{Bind, MAX_ID_CHARS, VerifierRepo, check_id, invalid};
use crate::pool::{AttemptFuture, is_unique_violation, sql, with_pool};
use crate::{Backend, StoreError};

/// Longest outbox id.
pub const MAX_OUTBOX_ID_CHARS: usize = 64;
/// Longest V-delivery marker.
pub const MAX_DELIVERY_MARKER_CHARS: usize = 128;
/// Largest webhook body kept.
pub const MAX_WEBHOOK_BODY_BYTES: usize = 16 * 1024 * 1024;

/// One webhook delivery not yet acknowledged. `Debug` omits the body.
#[derive(Clone, PartialEq, Eq, FromRow)]
pub struct PendingWebhook {
    /// Unique id chosen by the writer.
    pub id: String,
    /// Creation order, assigned by [`VerifierRepo::queue_webhook`] (the value it is given is
    /// ignored); 0 for notices queued before migration 0007.
    pub seq: i64,
    /// The verifier instance that owns the delivery.
    pub verifier_id: String,
    pub url: String,
    /// The JSON document to POST.
    pub body: String,
    /// Attempts made so far.
    pub attempts: i32,
    /// Unix seconds when queued.
    pub created_at: i64,
}

impl std::fmt::Debug for PendingWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingWebhook")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("verifier_id", &self.verifier_id)
            .field("url", &self.url)
            .field("body_len", &self.body.len())
            .field("attempts", &self.attempts)
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// Takes the next creation order; runs first in the transaction that queues a notice, and
/// holds the counter row until that transaction commits.
const BUMP_SEQ: &str = "UPDATE verifier_webhook_sequence SET last_seq = last_seq + 1 WHERE id = 1";
const INSERT_WEBHOOK: &str = "INSERT INTO verifier_webhook_outbox \
     (id, seq, verifier_id, url, body, attempts, created_at) VALUES \
     (?, (SELECT last_seq FROM verifier_webhook_sequence WHERE id = 1), ?, ?, ?, ?, ?)";
/// Creation order; rows from before migration 0007 (`seq` 0) by their old order.
macro_rules! outbox_order {
    () => {
        " FROM verifier_webhook_outbox WHERE verifier_id = ? ORDER BY seq, created_at, id"
    };
}
const SELECT_WEBHOOKS: &str = concat!(
    "SELECT id, seq, verifier_id, url, body, attempts, created_at",
    outbox_order!()
);
const SELECT_WEBHOOKS_MYSQL: &str = concat!(
    "SELECT CONVERT(id USING utf8mb4) AS id, seq, \
     CONVERT(verifier_id USING utf8mb4) AS verifier_id, CONVERT(url USING utf8mb4) AS url, \
     CONVERT(body USING utf8mb4) AS body, attempts, created_at",
    outbox_order!()
);
const SET_ATTEMPTS: &str = "UPDATE verifier_webhook_outbox SET attempts = ? WHERE id = ?";
const DELETE_WEBHOOK: &str = "DELETE FROM verifier_webhook_outbox WHERE id = ?";
const SELECT_DELIVERY: &str = "SELECT delivered_for FROM verifier_v_deliveries WHERE agent_id = ?";
const SELECT_DELIVERY_MYSQL: &str = "SELECT CONVERT(delivered_for USING utf8mb4) \
     FROM verifier_v_deliveries WHERE agent_id = ?";
const DELETE_DELIVERY: &str = "DELETE FROM verifier_v_deliveries WHERE agent_id = ?";
const INSERT_DELIVERY: &str =
    "INSERT INTO verifier_v_deliveries (agent_id, delivered_for) VALUES (?, ?)";

fn check_webhook(w: &PendingWebhook) -> Result<(), StoreError> {
    let n = w.id.chars().count();
    if n == 0 || n > MAX_OUTBOX_ID_CHARS {
        return Err(invalid(
            "webhook id",
            format!("{n} characters, expected 1 to {MAX_OUTBOX_ID_CHARS}"),
        ));
    }
    check_id("verifier_id", &w.verifier_id)?;
    if w.url.is_empty() {
        return Err(invalid("webhook url", "must not be empty"));
    }
    if w.body.len() > MAX_WEBHOOK_BODY_BYTES {
        return Err(invalid(
            "webhook body",
            format!("{} bytes, at most {MAX_WEBHOOK_BODY_BYTES}", w.body.len()),
        ));
    }
    if w.attempts < 0 {
        return Err(invalid("webhook attempts", "must not be negative"));
    }
    Ok(())
}

impl VerifierRepo<'_> {
    /// Queues a webhook delivery (before its first attempt) behind every notice queued
    /// before it: it takes the next creation order (`seq`). Queueing an id again is a
    /// no-op, so a call whose answer was lost can be repeated.
    pub async fn queue_webhook(&self, webhook: &PendingWebhook) -> Result<(), StoreError> {
        check_webhook(webhook)?;
        let w = webhook;
        let insert = vec![
            Bind::Text(w.id.clone()),
            Bind::Text(w.verifier_id.clone()),
            Bind::Text(w.url.clone()),
            Bind::Text(w.body.clone()),
            Bind::Int(w.attempts),
            Bind::Big(w.created_at),
        ];
        match self
            .transaction(
                "queue webhook",
                vec![(BUMP_SEQ, vec![]), (INSERT_WEBHOOK, insert)],
            )
            .await
        {
            // Queued by an earlier call whose answer was lost: ids are unique per notice.
            Err(StoreError::Database { source, .. }) if is_unique_violation(&source) => Ok(()),
            other => other.map(drop),
        }
    }

    /// Webhook deliveries of `verifier_id` still pending, in creation order.
    pub async fn pending_webhooks(
        &self,
        verifier_id: &str,
    ) -> Result<Vec<PendingWebhook>, StoreError> {
        self.select_webhooks(verifier_id, "", "list pending webhooks")
            .await
    }

    /// The oldest webhook delivery of `verifier_id` still pending: the one to deliver next.
    pub async fn next_webhook(
        &self,
        verifier_id: &str,
    ) -> Result<Option<PendingWebhook>, StoreError> {
        let mut head = self
            .select_webhooks(verifier_id, " LIMIT 1", "get the next pending webhook")
            .await?;
        Ok(head.pop())
    }

    async fn select_webhooks(
        &self,
        verifier_id: &str,
        limit: &'static str,
        operation: &'static str,
    ) -> Result<Vec<PendingWebhook>, StoreError> {
        check_id("verifier_id", verifier_id)?;
        let backend = self.backend();
        let select = if backend == Backend::Mysql {
            SELECT_WEBHOOKS_MYSQL
        } else {
            SELECT_WEBHOOKS
        };
        let q = format!("{}{limit}", sql(backend, select));
        let fetch: AttemptFuture<'_, Vec<PendingWebhook>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_as(&q).bind(verifier_id).fetch_all(p))
        });
        fetch.await.map_err(StoreError::db(operation))
    }

    /// Records how many attempts a pending delivery has had.
    pub async fn set_webhook_attempts(&self, id: &str, attempts: i32) -> Result<(), StoreError> {
        if attempts < 0 {
            return Err(invalid("webhook attempts", "must not be negative"));
        }
        let id = id.to_owned();
        self.execute("count webhook attempt", SET_ATTEMPTS, move |b| {
            b.extend([Bind::Int(attempts), Bind::Text(id.clone())])
        })
        .await?;
        Ok(())
    }

    /// Removes a delivery (acknowledged, or dropped as too old); `false` if it was not queued.
    pub async fn finish_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let n = self
            .execute("finish webhook", DELETE_WEBHOOK, move |b| {
                b.push(Bind::Text(id.clone()))
            })
            .await?;
        Ok(n > 0)
    }

    /// The marker of the last V delivered to `agent_id`, if any.
    pub async fn v_delivered_for(&self, agent_id: &str) -> Result<Option<String>, StoreError> {
        if check_id("agent_id", agent_id).is_err() {
            return Ok(None);
        }
        let backend = self.backend();
        let q = sql(
            backend,
            if backend == Backend::Mysql {
                SELECT_DELIVERY_MYSQL
            } else {
                SELECT_DELIVERY
            },
        );
        let fetch: AttemptFuture<'_, Option<String>> = with_pool!(self.pool, p => {
            Box::pin(sqlx::query_scalar(&q).bind(agent_id).fetch_optional(p))
        });
        fetch.await.map_err(StoreError::db("get V delivery"))
    }

    /// Records that V was delivered to `agent_id` for `marker` (replacing an older one).
    pub async fn record_v_delivered(&self, agent_id: &str, marker: &str) -> Result<(), StoreError> {
        check_id("agent_id", agent_id)?;
        let n = marker.chars().count();
        if n == 0 || n > MAX_DELIVERY_MARKER_CHARS {
            return Err(invalid(
                "delivered_for",
                format!("{n} characters, expected 1 to {MAX_DELIVERY_MARKER_CHARS}"),
            ));
        }
        self.forget_v_delivery(agent_id).await?;
        let (id, m) = (agent_id.to_owned(), marker.to_owned());
        self.execute("record V delivery", INSERT_DELIVERY, move |b| {
            b.extend([Bind::Text(id.clone()), Bind::Text(m.clone())])
        })
        .await?;
        Ok(())
    }

    /// Forgets the V delivery of `agent_id` (agent deleted).
    pub(super) async fn forget_v_delivery(&self, agent_id: &str) -> Result<(), StoreError> {
        debug_assert!(agent_id.chars().count() <= MAX_ID_CHARS);
        let id = agent_id.to_owned();
        self.execute("forget V delivery", DELETE_DELIVERY, move |b| {
            b.push(Bind::Text(id.clone()))
        })
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatabaseUrl, Store, StoreOptions};

    async fn sqlite() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let url = DatabaseUrl::Sqlite(dir.path().join("cv.sqlite"));
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .unwrap();
        (dir, store)
    }

    fn webhook(id: &str, verifier: &str, at: i64) -> PendingWebhook {
        PendingWebhook {
            id: id.into(),
            seq: 0,
            verifier_id: verifier.into(),
            url: "https://127.0.0.1:1/hook".into(),
            body: "{\"msg\": \"m\", \"signature\": \"\"}".into(),
            attempts: 0,
            created_at: at,
        }
    }

    #[tokio::test]
    async fn outbox_round_trip_per_verifier_in_queue_order() {
        let (_dir, store) = sqlite().await;
        let repo = store.verifier();
        // Queue order decides, not the clock: "b" was stamped later but queued first.
        repo.queue_webhook(&webhook("b", "v1", 2)).await.unwrap();
        repo.queue_webhook(&webhook("c", "v2", 1)).await.unwrap();
        repo.queue_webhook(&webhook("a", "v1", 1)).await.unwrap();
        // Repeating a call whose answer was lost changes nothing.
        repo.queue_webhook(&webhook("b", "v1", 2)).await.unwrap();
        let pending = repo.pending_webhooks("v1").await.unwrap();
        let ids: Vec<_> = pending.iter().map(|w| w.id.as_str()).collect();
        assert_eq!(ids, ["b", "a"]);
        assert!(pending[0].seq < pending[1].seq, "{pending:?}");
        assert_eq!(repo.next_webhook("v1").await.unwrap().unwrap().id, "b");
        repo.set_webhook_attempts("b", 3).await.unwrap();
        assert_eq!(repo.next_webhook("v1").await.unwrap().unwrap().attempts, 3);
        assert!(repo.finish_webhook("b").await.unwrap());
        assert!(!repo.finish_webhook("b").await.unwrap());
        assert_eq!(repo.next_webhook("v1").await.unwrap().unwrap().id, "a");
        assert!(repo.finish_webhook("a").await.unwrap());
        assert_eq!(repo.next_webhook("v1").await.unwrap(), None);
        assert_eq!(repo.next_webhook("v2").await.unwrap().unwrap().id, "c");
        let mut bad = webhook("", "v1", 1);
        assert!(repo.queue_webhook(&bad).await.is_err());
        bad.id = "x".into();
        bad.url.clear();
        assert!(repo.queue_webhook(&bad).await.is_err());
        store.close().await;
    }

    #[tokio::test]
    async fn v_delivery_marker_replaced_and_forgotten_with_the_agent() {
        let (_dir, store) = sqlite().await;
        let repo = store.verifier();
        assert_eq!(repo.v_delivered_for("a1").await.unwrap(), None);
        repo.record_v_delivered("a1", "m1").await.unwrap();
        repo.record_v_delivered("a1", "m2").await.unwrap();
        assert_eq!(
            repo.v_delivered_for("a1").await.unwrap().as_deref(),
            Some("m2")
        );
        assert!(repo.record_v_delivered("a1", "").await.is_err());
        repo.delete("a1").await.unwrap();
        assert_eq!(repo.v_delivered_for("a1").await.unwrap(), None);
        store.close().await;
    }
}
