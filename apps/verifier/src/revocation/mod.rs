//! Revocation notifications (PROTOCOL.md §7): on INVALID_QUOTE (`revocation`) and when a
//! previously good agent becomes unreachable (`comm_error`), a signed envelope goes to the
//! notifiers of `[revocations] enabled_revocation_notifications`:
//! * `webhook`: queued in the store *before* the first attempt, POSTed to `webhook_url`
//!   (HTTPS with the verifier's client identity and `trusted_server_ca`, or plain HTTP) until
//!   the receiver answers 200/202 or `max_retries` attempts failed (pause as the pull loop:
//!   `retry_interval`, exponential if configured). A stopped verifier resumes the queue on
//!   start, so a delivery is at least once, never lost by a shutdown.
//! * `agent`: POST `/v{ver}/notifications/revocation` to every agent of this verifier over
//!   the agent mTLS client (each agent once, the failing one included).
//! * `zeromq`: not supported; a warning at start.
//!
//! Deliveries run as tasks owned by the [`Notifier`]; the pull loop never waits for them.

pub mod message;

use std::sync::{Arc, Mutex};

use keylime_api::verifier::AddAgentRequest;
use keylime_attestation::FailureEvent;
use keylime_store::Store;
use keylime_store::verifier::PendingWebhook;
use rand::Rng as _;
use tokio::task::JoinSet;

pub use message::{AgentNotice, NoticeKind};

use crate::clock::unix_now;
use crate::outbound::contact::AgentContact;
use crate::outbound::{OutboundError, error_chain, https_client, post_json, retry_pause};
use crate::settings::{PollTiming, RevocationSettings};
use crate::tls::AgentClientTls;

/// Sends revocation notices and owns their delivery tasks.
pub struct Notifier {
    store: Store,
    verifier_id: String,
    timing: PollTiming,
    agent_tls: Arc<AgentClientTls>,
    require_mtls: bool,
    notify_agents: bool,
    webhook: Option<Webhook>,
    tasks: Mutex<JoinSet<()>>,
}

struct Webhook {
    url: String,
    http: reqwest::Client,
}

impl Notifier {
    /// Set up the configured notifiers.
    pub fn new(
        settings: &RevocationSettings,
        store: Store,
        verifier_id: String,
        timing: PollTiming,
        agent_tls: Arc<AgentClientTls>,
        require_mtls: bool,
    ) -> anyhow::Result<Arc<Self>> {
        let enabled = |name: &str| settings.notifiers.iter().any(|n| n.trim() == name);
        if enabled("zeromq") {
            tracing::warn!(
                "[revocations] enabled_revocation_notifications includes 'zeromq', which this \
                 verifier does not support: no ZeroMQ notices will be published (use 'webhook' or 'agent')"
            );
        }
        let webhook = match (enabled("webhook"), settings.webhook_url.trim()) {
            (false, _) => None,
            (true, "") => {
                tracing::warn!("webhook notifications are enabled but webhook_url is empty");
                None
            }
            (true, url) => Some(Webhook {
                url: url.to_owned(),
                http: https_client(&agent_tls, None, timing.request_timeout)?,
            }),
        };
        Ok(Arc::new(Notifier {
            store,
            verifier_id,
            timing,
            agent_tls,
            require_mtls,
            notify_agents: enabled("agent"),
            webhook,
            tasks: Mutex::new(JoinSet::new()),
        }))
    }

    fn spawn(&self, task: impl std::future::Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        while tasks.try_join_next().is_some() {}
        tasks.spawn(task);
    }

    /// Stop every delivery; queued webhooks stay in the store for the next start.
    pub fn shutdown(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .abort_all();
    }

    /// Resume the webhook deliveries a previous run left pending.
    pub async fn resume_pending(self: &Arc<Self>) -> anyhow::Result<usize> {
        let pending = self
            .store
            .verifier()
            .pending_webhooks(&self.verifier_id)
            .await?;
        let n = pending.len();
        for p in pending {
            let me = Arc::clone(self);
            self.spawn(async move { me.deliver_webhook(p).await });
        }
        if n > 0 {
            tracing::info!(pending = n, "resuming revocation webhook deliveries");
        }
        Ok(n)
    }

    /// Send a notice about `agent`. Returns once the webhook delivery (if any) is queued.
    pub async fn notify(
        self: &Arc<Self>,
        agent: &AgentNotice,
        kind: NoticeKind,
        event: Option<&FailureEvent>,
    ) {
        let envelope = match message::build_envelope(agent, kind, event, message::local_now()) {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(agent_id = %agent.agent_id, error = %e, "revocation notice not sent");
                return;
            }
        };
        tracing::warn!(
            agent_id = %agent.agent_id,
            notification = kind.as_str(),
            event_id = event.map(|e| e.event_id.as_str()),
            severity_label = event.map(|e| e.severity_label.as_str()),
            signed = !envelope.signature.is_empty(),
            "sending revocation notice"
        );
        let body = match serde_json::to_value(&envelope) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "revocation envelope not serialisable");
                return;
            }
        };
        if let Some(w) = &self.webhook {
            let pending = PendingWebhook {
                id: outbox_id(),
                verifier_id: self.verifier_id.clone(),
                url: w.url.clone(),
                body: body.to_string(),
                attempts: 0,
                created_at: unix_now(),
            };
            match self.store.verifier().queue_webhook(&pending).await {
                Ok(()) => {
                    let me = Arc::clone(self);
                    self.spawn(async move { me.deliver_webhook(pending).await });
                }
                Err(e) => {
                    // Not durable, but still attempted.
                    tracing::error!(error = %e, "could not queue the webhook delivery");
                    let me = Arc::clone(self);
                    self.spawn(async move { me.deliver_webhook(pending).await });
                }
            }
        }
        if self.notify_agents {
            let me = Arc::clone(self);
            self.spawn(async move { me.notify_all_agents(body).await });
        }
    }

    /// POST one queued delivery until acknowledged or out of retries.
    async fn deliver_webhook(self: Arc<Self>, mut pending: PendingWebhook) {
        let http = match &self.webhook {
            Some(w) => w.http.clone(),
            None => match https_client(&self.agent_tls, None, self.timing.request_timeout) {
                Ok(h) => h,
                Err(_) => {
                    tracing::error!(id = %pending.id, "no HTTP client for a pending webhook");
                    return;
                }
            },
        };
        // Upstream: a non-positive max_retries means the default, 5.
        let max_attempts = if self.timing.max_retries == 0 {
            5
        } else {
            i32::try_from(self.timing.max_retries).unwrap_or(i32::MAX)
        };
        let repo = self.store.verifier();
        loop {
            let outcome = http
                .post(&pending.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(pending.body.clone())
                .send()
                .await;
            pending.attempts = pending.attempts.saturating_add(1);
            let reason = match outcome {
                Ok(r) if matches!(r.status().as_u16(), 200 | 202) => {
                    tracing::info!(url = %pending.url, attempts = pending.attempts, "revocation webhook delivered");
                    if let Err(e) = repo.finish_webhook(&pending.id).await {
                        tracing::error!(error = %e, "could not remove a delivered webhook");
                    }
                    return;
                }
                Ok(r) => format!("HTTP {}", r.status().as_u16()),
                Err(e) => error_chain(&e),
            };
            if pending.attempts >= max_attempts {
                tracing::error!(url = %pending.url, attempts = pending.attempts, %reason,
                    "revocation webhook not delivered; giving up");
                if let Err(e) = repo.finish_webhook(&pending.id).await {
                    tracing::error!(error = %e, "could not remove an abandoned webhook");
                }
                return;
            }
            tracing::warn!(url = %pending.url, attempt = pending.attempts, %reason,
                "revocation webhook failed; retrying");
            if let Err(e) = repo
                .set_webhook_attempts(&pending.id, pending.attempts)
                .await
            {
                tracing::error!(error = %e, "could not record a webhook attempt");
            }
            let attempt = u32::try_from(pending.attempts).unwrap_or(u32::MAX);
            tokio::time::sleep(retry_pause(&self.timing, attempt)).await;
        }
    }

    /// POST the envelope to every agent of this verifier (each once).
    async fn notify_all_agents(self: Arc<Self>, body: serde_json::Value) {
        let agents = match self.store.verifier().list(Some(&self.verifier_id)).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "could not list agents for revocation notices");
                return;
            }
        };
        let body = Arc::new(body);
        let mut posts = JoinSet::new();
        for agent in agents {
            let Ok(request) = serde_json::from_str::<AddAgentRequest>(&agent.add_request) else {
                continue;
            };
            let Ok(contact) = AgentContact::from_request(&request, self.require_mtls) else {
                // Push-mode agents have no contact address.
                continue;
            };
            let url = format!(
                "{}/v{}/notifications/revocation",
                contact.base_url(),
                contact.api_version
            );
            let http = match https_client(
                &self.agent_tls,
                contact.mtls_cert.clone(),
                self.timing.request_timeout,
            ) {
                Ok(h) => h,
                Err(e) => {
                    tracing::warn!(agent_id = %agent.agent_id, error = %e, "no client for revocation notice");
                    continue;
                }
            };
            let body = Arc::clone(&body);
            let id = agent.agent_id;
            posts.spawn(async move {
                match post_json(&http, &url, &body).await {
                    Ok(()) => tracing::info!(agent_id = %id, "revocation notice delivered to agent"),
                    Err(OutboundError::Status { code, status }) => {
                        tracing::warn!(agent_id = %id, code, %status, "agent refused the revocation notice")
                    }
                    Err(e) => {
                        tracing::warn!(agent_id = %id, error = %e, "revocation notice not delivered to agent")
                    }
                }
            });
        }
        while posts.join_next().await.is_some() {}
    }
}

fn outbox_id() -> String {
    let bytes: [u8; 16] = rand::thread_rng().r#gen();
    hex::encode(bytes)
}
