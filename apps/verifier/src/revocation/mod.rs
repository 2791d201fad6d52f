//! Revocation notifications (PROTOCOL.md §7): on INVALID_QUOTE (`revocation`) and when a
//! previously good agent becomes unreachable (`comm_error`), a signed envelope goes to the
//! notifiers of `[revocations] enabled_revocation_notifications`:
//! * `webhook`: queued in the store's outbox *before* the first attempt and POSTed to
//!   `webhook_url` (HTTPS with the verifier's client identity and `trusted_server_ca`, or
//!   plain HTTP) by one worker per verifier, oldest first, until the receiver answers
//!   200/202: every notice, in creation order, at least once, through any outage and
//!   verifier restarts ([`outbox`]).
//! * `agent`: POST `/v{ver}/notifications/revocation` to every agent of this verifier over
//!   the agent mTLS client (each agent once, the failing one included).
//! * `zeromq`: not supported; a warning at start.
//!
//! The webhook worker and the agent deliveries run as tasks owned by the [`Notifier`]; the
//! pull loop never waits for a delivery.

pub mod message;
pub mod outbox;

use std::sync::{Arc, Mutex};

use keylime_api::verifier::AddAgentRequest;
use keylime_attestation::FailureEvent;
use keylime_payload::revocation::RevocationEnvelope;
use keylime_store::Store;
use keylime_store::verifier::PendingWebhook;
use rand::Rng as _;
use tokio::task::JoinSet;

pub use message::{AgentNotice, NoticeKind};
use outbox::{WebhookOutbox, WebhookTarget};

use crate::clock::unix_now;
use crate::outbound::contact::AgentContact;
use crate::outbound::{OutboundError, https_client, json_body, post_json};
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
    outbox: Arc<WebhookOutbox>,
    tasks: Mutex<JoinSet<()>>,
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
        let webhook_url = match (enabled("webhook"), settings.webhook_url.trim()) {
            (false, _) => None,
            (true, "") => {
                tracing::warn!("webhook notifications are enabled but webhook_url is empty");
                None
            }
            (true, url) => Some(url.to_owned()),
        };
        let target = WebhookTarget {
            url: webhook_url,
            http: https_client(&agent_tls, None, timing.request_timeout)?,
            timing: timing.clone(),
            max_age: settings.webhook_max_age,
        };
        let outbox = Arc::new(WebhookOutbox::new(
            store.clone(),
            verifier_id.clone(),
            target,
        ));
        Ok(Arc::new(Notifier {
            store,
            verifier_id,
            timing,
            agent_tls,
            require_mtls,
            notify_agents: enabled("agent"),
            outbox,
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

    /// Start the webhook delivery worker, which begins with the notices a previous run left
    /// pending. Returns how many there are.
    pub async fn resume_pending(self: &Arc<Self>) -> anyhow::Result<usize> {
        let n = self.outbox.pending().await?;
        if n > 0 {
            tracing::info!(pending = n, "resuming revocation webhook deliveries");
        }
        self.spawn(Arc::clone(&self.outbox).run());
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
        let body = match json_body(&envelope) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, "revocation envelope not serialisable");
                return;
            }
        };
        if let Some(url) = self.outbox.url() {
            let notice = PendingWebhook {
                id: outbox_id(),
                seq: 0,
                verifier_id: self.verifier_id.clone(),
                url: url.to_owned(),
                body: body.clone(),
                attempts: 0,
                created_at: unix_now(),
            };
            self.outbox.queue(notice).await;
        }
        if self.notify_agents {
            let me = Arc::clone(self);
            self.spawn(async move { me.notify_all_agents(envelope).await });
        }
    }

    /// POST the envelope to every agent of this verifier (each once).
    async fn notify_all_agents(self: Arc<Self>, envelope: RevocationEnvelope) {
        let agents = match self.store.verifier().list(Some(&self.verifier_id)).await {
            Ok(a) => a,
            Err(e) => {
                tracing::error!(error = %e, "could not list agents for revocation notices");
                return;
            }
        };
        let body = Arc::new(envelope);
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
