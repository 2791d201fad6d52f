//! The revocation webhook outbox (PROTOCOL.md §7) and its one delivery worker per verifier.
//!
//! A notice is queued in the store (`verifier_webhook_outbox`) before anything is sent; the
//! store gives it the next creation order. The worker POSTs the oldest pending notice until
//! the receiver acknowledges it (200/202), removes it, and only then takes the next one, so
//! the receiver gets every notice, at least once, in the order they were created, however
//! long it is down and across verifier restarts (a restarted worker starts again at the
//! oldest). A notice that keeps failing is never given up: past `max_retries` attempts each
//! failure is logged as an error and the head is tried again, `retry_interval` apart
//! (`exponential_backoff` as for agents, capped at [`MAX_WEBHOOK_PAUSE`]). Notices created
//! meanwhile queue behind it. Only `[revocations] webhook_max_age`, when set, drops a notice,
//! undelivered and with an error, once it is older than that.
//!
//! A notice that cannot be stored (the database is down) waits in memory, in order, ahead of
//! every later notice, and is stored as soon as the database answers.
//!
//! Notices go to the configured `webhook_url`; one queued under another URL, by a run whose
//! webhook has since been turned off, goes to the URL it was queued for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use keylime_store::verifier::PendingWebhook;
use keylime_store::{Store, StoreError};
use tokio::sync::{Mutex, Notify};

use crate::clock::unix_now;
use crate::outbound::{error_chain, retry_pause};
use crate::settings::PollTiming;

/// Longest pause between two attempts of one notice: a receiver that comes back after a
/// long outage gets its notices within this.
pub const MAX_WEBHOOK_PAUSE: Duration = Duration::from_secs(60);
/// Shortest pause, so a `retry_interval` of 0 does not make a busy loop.
const MIN_WEBHOOK_PAUSE: Duration = Duration::from_millis(50);
/// Pause before trying the database again when it could not be read or written.
const STORE_PAUSE: Duration = Duration::from_secs(2);

/// Where and how notices are delivered.
pub struct WebhookTarget {
    /// The configured receiver; `None` when the webhook notifier is off.
    pub url: Option<String>,
    pub http: reqwest::Client,
    /// `retry_interval`, `exponential_backoff`, `max_retries`.
    pub timing: PollTiming,
    /// `webhook_max_age`.
    pub max_age: Option<Duration>,
}

/// The outbox of one verifier: queueing and the delivery loop.
pub struct WebhookOutbox {
    store: Store,
    verifier_id: String,
    target: WebhookTarget,
    /// Notices not yet stored (the database did not answer), oldest first. Queueing holds
    /// this lock while it writes, so store order is creation order.
    unstored: Mutex<VecDeque<PendingWebhook>>,
    /// Wakes the worker when the outbox was empty.
    queued: Notify,
}

impl WebhookOutbox {
    pub fn new(store: Store, verifier_id: String, target: WebhookTarget) -> Self {
        WebhookOutbox {
            store,
            verifier_id,
            target,
            unstored: Mutex::new(VecDeque::new()),
            queued: Notify::new(),
        }
    }

    /// The configured receiver, if the webhook notifier is on.
    pub fn url(&self) -> Option<&str> {
        self.target.url.as_deref()
    }

    /// Queues `notice` behind every notice created before it. Returns once it is stored
    /// (or, with the database down, held in memory to be stored first when it answers).
    pub async fn queue(&self, notice: PendingWebhook) {
        let mut unstored = self.unstored.lock().await;
        unstored.push_back(notice);
        self.store_unstored(&mut unstored).await;
        drop(unstored);
        self.queued.notify_one();
    }

    /// Stores the held notices in order; stops at the first that the database does not take.
    async fn store_unstored(&self, unstored: &mut VecDeque<PendingWebhook>) {
        let repo = self.store.verifier();
        while let Some(notice) = unstored.front() {
            match repo.queue_webhook(notice).await {
                Ok(()) => {
                    tracing::info!(id = %notice.id, "revocation webhook notice queued");
                    unstored.pop_front();
                }
                Err(e @ StoreError::InvalidField { .. }) => {
                    tracing::error!(id = %notice.id, error = %e,
                        "revocation webhook notice cannot be stored; dropped undelivered");
                    unstored.pop_front();
                }
                Err(e) => {
                    tracing::error!(id = %notice.id, held = unstored.len(), error = %e,
                        "could not queue the revocation webhook notice; held in memory until the database answers");
                    return;
                }
            }
        }
    }

    /// Notices pending in the store for this verifier.
    pub async fn pending(&self) -> Result<usize, StoreError> {
        let pending = self
            .store
            .verifier()
            .pending_webhooks(&self.verifier_id)
            .await?;
        Ok(pending.len())
    }

    /// The delivery loop: the oldest notice until acknowledged, then the next. Runs until
    /// its task is aborted; whatever is pending then stays in the store.
    pub async fn run(self: Arc<Self>) {
        let repo = self.store.verifier();
        loop {
            let held = {
                let mut unstored = self.unstored.lock().await;
                self.store_unstored(&mut unstored).await;
                !unstored.is_empty()
            };
            match repo.next_webhook(&self.verifier_id).await {
                Ok(Some(notice)) => self.deliver(notice).await,
                Ok(None) if held => tokio::time::sleep(STORE_PAUSE).await,
                Ok(None) => self.queued.notified().await,
                Err(e) => {
                    tracing::error!(error = %e, "could not read the revocation webhook outbox; retrying");
                    tokio::time::sleep(STORE_PAUSE).await;
                }
            }
        }
    }

    /// POSTs `notice` until the receiver acknowledges it (or it is older than
    /// `webhook_max_age`), then removes it from the outbox.
    async fn deliver(&self, mut notice: PendingWebhook) {
        let url = self
            .target
            .url
            .clone()
            .unwrap_or_else(|| notice.url.clone());
        let max_retries = self.max_retries();
        loop {
            if let Some(max_age) = self.target.max_age {
                let age = unix_now().saturating_sub(notice.created_at);
                if u64::try_from(age).is_ok_and(|age| age > max_age.as_secs()) {
                    tracing::error!(id = %notice.id, %url, attempts = notice.attempts, age_secs = age,
                        "revocation webhook notice older than webhook_max_age; dropped undelivered");
                    self.remove(&notice).await;
                    return;
                }
            }
            let outcome = self
                .target
                .http
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(notice.body.clone())
                .send()
                .await;
            notice.attempts = notice.attempts.saturating_add(1);
            let reason = match outcome {
                Ok(r) if matches!(r.status().as_u16(), 200 | 202) => {
                    tracing::info!(id = %notice.id, %url, attempts = notice.attempts,
                        "revocation webhook delivered");
                    self.remove(&notice).await;
                    return;
                }
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => error_chain(&e),
            };
            let attempt = u32::try_from(notice.attempts).unwrap_or(u32::MAX);
            let pause = self.pause(attempt);
            if attempt >= max_retries {
                tracing::error!(id = %notice.id, %url, attempts = notice.attempts, max_retries,
                    %reason, retry_in = ?pause,
                    "revocation webhook still not delivered after max_retries attempts; \
                     retrying, later notices wait behind it");
            } else {
                tracing::warn!(id = %notice.id, %url, attempt = notice.attempts, %reason,
                    retry_in = ?pause, "revocation webhook failed; retrying");
            }
            if let Err(e) = self
                .store
                .verifier()
                .set_webhook_attempts(&notice.id, notice.attempts)
                .await
            {
                tracing::warn!(id = %notice.id, error = %e, "could not record a webhook attempt");
            }
            tokio::time::sleep(pause).await;
        }
    }

    /// Removes a delivered (or expired) notice, trying again while the database does not
    /// answer: the next notice is not sent before this one is gone, or it would be sent
    /// again after it.
    async fn remove(&self, notice: &PendingWebhook) {
        loop {
            match self.store.verifier().finish_webhook(&notice.id).await {
                Ok(_) => return,
                Err(e) if e.is_unavailable() => {
                    tracing::error!(id = %notice.id, error = %e,
                        "could not remove a delivered webhook notice; retrying");
                    tokio::time::sleep(STORE_PAUSE).await;
                }
                Err(e) => {
                    tracing::error!(id = %notice.id, error = %e,
                        "could not remove a delivered webhook notice; it may be delivered again");
                    return;
                }
            }
        }
    }

    /// Upstream: a non-positive `max_retries` means the default, 5.
    fn max_retries(&self) -> u32 {
        match self.target.timing.max_retries {
            0 => 5,
            n => n,
        }
    }

    fn pause(&self, attempt: u32) -> Duration {
        retry_pause(&self.target.timing, attempt).clamp(MIN_WEBHOOK_PAUSE, MAX_WEBHOOK_PAUSE)
    }
}
