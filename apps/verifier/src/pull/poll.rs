//! One agent's pull loop (PROTOCOL.md §5.5): fetch an integrity quote with a fresh nonce,
//! run the attestation engine, persist the outcome before acting on it, pace by
//! `quote_interval`; retries with `retry_interval`/`exponential_backoff` up to
//! `max_retries` then FAILED; INVALID_QUOTE on a failed attestation, polling on only for
//! recoverable failures below the maximum severity. An agent that rejects our API version
//! is renegotiated with (`version`) and the request retried at once.
//!
//! The database write of each poll is conditional: if an operator moved the agent to
//! TERMINATED or TENANT_FAILED meanwhile, the write is refused and the loop obeys. A
//! database that cannot be reached never ends the loop: the write is retried (backing off
//! up to [`STORE_RETRY_MAX`]) until it lands, and a quote whose policies cannot be loaded
//! is left unjudged until the next one.

use std::sync::Arc;
use std::time::Duration;

use keylime_api::verifier::{AddAgentRequest, OperationalState};
use keylime_attestation::{
    AgentState, Component, FailureEvent, Nonce, PreparedPolicy, QuoteEvidence, Verdict, attest,
};
use keylime_store::{AttestationProgress, VerifierAgent};
use rand::Rng as _;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use super::agent::PreparedAgent;
use super::client::{AgentClient, FetchedQuote};
use super::context::{Command, PullContext};
use crate::clock::unix_now;
use crate::outbound::{OutboundError, retry_pause};
use crate::policy_cache::PolicyLoadError;
use crate::revocation::{AgentNotice, NoticeKind};

mod provide_v;
mod version;

/// Quote responses above this size are checked on the blocking pool.
const INLINE_CHECK_MAX_BYTES: usize = 256 * 1024;
/// First and longest pause between attempts to write an agent's state to an unreachable
/// database.
const STORE_RETRY_MIN: Duration = Duration::from_secs(1);
const STORE_RETRY_MAX: Duration = Duration::from_secs(30);

/// Poll `agent` until told to stop or its polling ends.
pub(super) async fn run(
    ctx: Arc<PullContext>,
    agent: VerifierAgent,
    mut commands: watch::Receiver<Command>,
) {
    let span = tracing::info_span!("poll", agent_id = %agent.agent_id);
    let mut poller = Poller::new(&ctx, agent);
    let _ = tracing::Instrument::instrument(poller.run(&mut commands), span).await;
}

fn new_nonce() -> String {
    rand::thread_rng()
        .sample_iter(&rand::distributions::Alphanumeric)
        .take(20)
        .map(char::from)
        .collect()
}

/// Why the loop ended.
#[derive(Debug)]
enum Exit {
    Stopped,
}

struct Poller<'s> {
    ctx: &'s PullContext,
    id: String,
    row: AttestationProgress,
    engine: AgentState,
    add_request: String,
    /// Facts for revocation notices, once the add request parsed.
    notice: Option<AgentNotice>,
    /// The V-delivery marker stored for this agent (loaded on first use).
    v_delivered: Option<Option<String>>,
}

impl<'s> Poller<'s> {
    fn new(ctx: &'s PullContext, agent: VerifierAgent) -> Self {
        let engine: AgentState = serde_json::from_str(&agent.engine_state).unwrap_or_default();
        Poller {
            ctx,
            id: agent.agent_id,
            row: AttestationProgress {
                operational_state: agent.operational_state,
                engine_state: agent.engine_state,
                attestation_count: agent.attestation_count,
                last_received_quote: agent.last_received_quote,
                last_successful_attestation: agent.last_successful_attestation,
                severity_level: agent.severity_level,
                last_event_id: agent.last_event_id,
            },
            engine,
            add_request: agent.add_request,
            notice: None,
            v_delivered: None,
        }
    }

    async fn run(&mut self, commands: &mut watch::Receiver<Command>) -> Exit {
        let ctx = self.ctx;
        let prepared = match serde_json::from_str::<AddAgentRequest>(&self.add_request)
            .map_err(|e| e.to_string())
            .and_then(|r| {
                PreparedAgent::new(r, ctx.severity.clone(), ctx.require_mtls)
                    .map_err(|e| e.to_string())
            }) {
            Ok(p) => p,
            Err(e) => return self.fail(OperationalState::Failed, "exception", &e).await,
        };
        self.notice = Some(AgentNotice {
            agent_id: self.id.clone(),
            ip: Some(prepared.ip.clone()),
            port: Some(prepared.port),
            tpm_policy: prepared.request.tpm_policy.clone(),
            meta_data: prepared.request.metadata.clone(),
            revocation_key: prepared.request.revocation_key.clone(),
        });
        let mut client =
            match AgentClient::new(&prepared, &ctx.agent_tls, ctx.timing.request_timeout) {
                Ok(c) => c,
                Err(e) => {
                    return self
                        .fail(OperationalState::Failed, "exception", &e.to_string())
                        .await;
                }
            };
        if self.row.operational_state == OperationalState::Start as i32 {
            self.row.operational_state = OperationalState::GetQuote as i32;
            if let Some(exit) = self.save().await {
                return exit;
            }
        }
        // The first quote after (re)start carries the payload key (partial=0).
        let mut partial = false;
        let mut retries = 0u32;
        loop {
            let started = Instant::now();
            let nonce = new_nonce();
            let fetched = {
                let _permit = ctx.polls.acquire().await;
                tokio::select! {
                    r = client.integrity_quote(&nonce, partial, self.engine.ima.next_entry) => r,
                    exit = wait_command(commands) => return self.obey(exit).await,
                }
            };
            match fetched {
                Err(OutboundError::Unreachable(reason)) => {
                    retries += 1;
                    tracing::info!(attempt = retries, %reason, "agent unreachable");
                    if retries > ctx.timing.max_retries {
                        return self
                            .fail(OperationalState::Failed, "not_reachable", &reason)
                            .await;
                    }
                    self.row.operational_state = OperationalState::GetQuoteRetry as i32;
                    if let Some(exit) = self.save().await {
                        return exit;
                    }
                    let pause = retry_pause(&ctx.timing, retries);
                    tokio::select! {
                        _ = tokio::time::sleep(pause) => continue,
                        exit = wait_command(commands) => return self.obey(exit).await,
                    }
                }
                Err(e) if e.is_version_not_supported() => {
                    if let Err(exit) = self.renegotiate(&mut client, commands).await {
                        return exit;
                    }
                    continue;
                }
                Err(OutboundError::Status { code, status }) => {
                    let reason = format!("HTTP {code}: {status}");
                    return self
                        .fail(OperationalState::Failed, "no_quote", &reason)
                        .await;
                }
                Err(e @ OutboundError::Malformed(_)) => {
                    return self
                        .fail(OperationalState::Failed, "no_quote", &e.to_string())
                        .await;
                }
                Ok(quote) => {
                    retries = 0;
                    let policy = match self.current_policy(&prepared).await {
                        Ok(p) => p,
                        Err(PolicyLoadError::Store(e)) => {
                            // The database, not the policy: judge the next quote instead.
                            tracing::warn!(error = %e, "policies could not be loaded; quote not judged");
                            tokio::select! {
                                _ = tokio::time::sleep_until(started + ctx.timing.quote_interval) => continue,
                                exit = wait_command(commands) => return self.obey(exit).await,
                            }
                        }
                        Err(e) => {
                            return self
                                .fail(OperationalState::Failed, "exception", &e.to_string())
                                .await;
                        }
                    };
                    let verdict = self.check(policy, quote, nonce).await;
                    let passed = verdict.passed();
                    if let Some(exit) = self.record(verdict).await {
                        return exit;
                    }
                    partial = true;
                    if passed
                        && let Some(exit) = self.provide_v(&prepared, &mut client, commands).await
                    {
                        return exit;
                    }
                }
            }
            let next = started + ctx.timing.quote_interval;
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                exit = wait_command(commands) => return self.obey(exit).await,
            }
        }
    }

    /// The agent's engine policy with its runtime and measured-boot policies at their
    /// current versions (prepared once per version by the shared cache).
    async fn current_policy(
        &self,
        prepared: &PreparedAgent,
    ) -> Result<Arc<PreparedPolicy>, PolicyLoadError> {
        let cache = &self.ctx.policies;
        let req = &prepared.request;
        let runtime = match req.runtime_policy_name.as_deref().filter(|n| !n.is_empty()) {
            Some(name) => Some(cache.runtime(name).await?),
            None => None,
        };
        let mb = match Some(req.mb_policy_name.as_str()).filter(|n| !n.is_empty()) {
            Some(name) => Some(cache.mb(name).await?),
            None => None,
        };
        let settings = cache.settings();
        fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
            match (a, b) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b),
                (None, None) => true,
                _ => false,
            }
        }
        let base = &prepared.policy;
        if same(&base.runtime_policy, &runtime)
            && same(&base.mb_policy, &mb)
            && base.ignore_tomtou_errors == settings.ignore_tomtou_errors
            && base.mb_evaluate_always == settings.measured_boot_evaluate_always
        {
            return Ok(Arc::clone(base));
        }
        Ok(Arc::new(PreparedPolicy {
            runtime_policy: runtime,
            mb_policy: mb,
            ignore_tomtou_errors: settings.ignore_tomtou_errors,
            mb_evaluate_always: settings.measured_boot_evaluate_always,
            ..(**base).clone()
        }))
    }

    /// Run the engine: inline for a plain quote, on the blocking pool for a large one.
    async fn check(
        &self,
        policy: Arc<PreparedPolicy>,
        fetched: FetchedQuote,
        nonce: String,
    ) -> Verdict {
        let prior = self.engine.clone();
        let large = fetched.body_len > INLINE_CHECK_MAX_BYTES;
        let run = move || {
            let q = &fetched.quote;
            let evidence = QuoteEvidence {
                quote: q.quote.as_str().into(),
                hash_alg: q.hash_alg.as_str().into(),
                enc_alg: q.enc_alg.as_str().into(),
                sign_alg: q.sign_alg.as_str().into(),
                pubkey_pem: q.pubkey.as_deref().map(Into::into),
                ima_measurement_list: q.ima_measurement_list.as_deref().map(Into::into),
                ima_measurement_list_entry: q.ima_measurement_list_entry,
                mb_measurement_list: q.mb_measurement_list.as_deref().map(Into::into),
                boottime: q.boottime,
            };
            attest(&evidence, &Nonce::Text(nonce), &policy, &prior)
        };
        if !large {
            return run();
        }
        match tokio::task::spawn_blocking(run).await {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "attestation check panicked");
                let event = self.ctx.severity.event(
                    Component::Internal,
                    "verifier.exception",
                    json!({ "message": e.to_string() }),
                    false,
                );
                Verdict::fail(vec![event], self.engine.clone())
            }
        }
    }

    /// Persist the verdict; `Some` when the loop must end.
    async fn record(&mut self, verdict: Verdict) -> Option<Exit> {
        let now = unix_now();
        self.engine = verdict.next_state.clone();
        self.row.engine_state = serde_json::to_string(&self.engine).unwrap_or_default();
        self.row.last_received_quote = now;
        match verdict.failure() {
            None => {
                self.row.operational_state = OperationalState::GetQuote as i32;
                self.row.attestation_count =
                    i64::try_from(self.engine.attestation_count).unwrap_or(i64::MAX);
                self.row.last_successful_attestation = now;
                tracing::debug!(
                    attestation_count = self.row.attestation_count,
                    ima_chain_entries = verdict.ima_chain_entries,
                    ima_evaluated_entries = verdict.ima_evaluated_entries,
                    ima_next_entry = self.engine.ima.next_entry,
                    "attestation passed"
                );
                self.save().await
            }
            Some(failure) => {
                let top = failure.highest_severity_event().cloned();
                self.row.operational_state = OperationalState::InvalidQuote as i32;
                if let Some(e) = &top {
                    self.row.severity_level = i32::try_from(e.severity_level).ok();
                    self.row.last_event_id = Some(e.event_id.clone());
                }
                if let Some(exit) = self.save().await {
                    return Some(exit);
                }
                tracing::warn!(event_ids = ?failure.event_ids(), "attestation failed");
                self.notify(NoticeKind::Revocation, top.as_ref()).await;
                let keep_polling = failure.recoverable()
                    && top
                        .as_ref()
                        .is_some_and(|e| e.severity_level < self.ctx.max_severity);
                (!keep_polling).then_some(Exit::Stopped)
            }
        }
    }

    /// Send a revocation notice about this agent (when its add request was readable).
    async fn notify(&self, kind: NoticeKind, event: Option<&FailureEvent>) {
        match &self.notice {
            Some(n) => self.ctx.notifier.notify(n, kind, event).await,
            None => tracing::warn!(
                notification = kind.as_str(),
                "no agent facts for a revocation notice"
            ),
        }
    }

    /// Record an `internal.verifier.<name>` failure in `state` and end the loop. Losing a
    /// previously good agent (`not_reachable*`) sends a `comm_error` notice (§5.5).
    async fn fail(&mut self, state: OperationalState, name: &str, reason: &str) -> Exit {
        let event: FailureEvent = self.ctx.severity.event(
            Component::Internal,
            &format!("verifier.{name}"),
            json!({ "message": reason }),
            false,
        );
        tracing::warn!(event_id = %event.event_id, %reason, state = %state, "agent polling failed");
        self.row.operational_state = state as i32;
        self.row.severity_level = i32::try_from(event.severity_level).ok();
        self.row.last_event_id = Some(event.event_id.clone());
        let attested_before = self.row.attestation_count > 0;
        if self.save().await.is_none() && name.starts_with("not_reachable") && attested_before {
            self.notify(NoticeKind::CommError, Some(&event)).await;
        }
        Exit::Stopped
    }

    /// Write the row, retrying while the database cannot be reached (the loop waits: no
    /// quote is judged that could not be recorded). `Some(exit)` when an operator took over
    /// (the write was refused).
    async fn save(&mut self) -> Option<Exit> {
        let repo = self.ctx.store.verifier();
        let mut failures = 0u32;
        loop {
            match repo.save_progress(&self.id, &self.row).await {
                Ok(written) => {
                    if failures > 0 {
                        tracing::info!(failures, "agent state persisted again; polling resumes");
                    }
                    return if written {
                        None
                    } else {
                        Some(self.obey(Command::Stop).await)
                    };
                }
                Err(e) => {
                    failures += 1;
                    let pause = store_retry_pause(failures);
                    if failures == 1 {
                        tracing::error!(error = %e, retry_in = ?pause, "could not persist agent state; retrying until the database answers");
                    } else {
                        tracing::debug!(error = %e, failures, "could not persist agent state");
                    }
                    tokio::time::sleep(pause).await;
                }
            }
        }
    }

    /// Follow an operator's command or state: TERMINATED deletes the record.
    async fn obey(&mut self, command: Command) -> Exit {
        let repo = self.ctx.store.verifier();
        let terminated = match command {
            Command::Terminate => true,
            _ => {
                matches!(repo.get(&self.id).await, Ok(Some(a)) if a.operational_state == OperationalState::Terminated as i32)
            }
        };
        if terminated {
            match repo.delete(&self.id).await {
                Ok(_) => tracing::info!("agent deleted after termination"),
                Err(e) => tracing::error!(error = %e, "could not delete terminated agent"),
            }
        } else {
            tracing::info!("agent polling stopped");
        }
        Exit::Stopped
    }
}

/// Resolves with the next command other than `Run` (never, if the sender is gone).
async fn wait_command(commands: &mut watch::Receiver<Command>) -> Command {
    loop {
        if commands.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        let c = *commands.borrow_and_update();
        if c != Command::Run {
            return c;
        }
    }
}

/// Pause before the next write after `failures` failed ones: doubling from
/// [`STORE_RETRY_MIN`] up to [`STORE_RETRY_MAX`].
fn store_retry_pause(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (STORE_RETRY_MIN * 2u32.pow(doublings)).min(STORE_RETRY_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_retries_back_off_to_a_ceiling() {
        let pauses: Vec<u64> = (1..=8).map(|n| store_retry_pause(n).as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 8, 16, 30, 30, 30]);
        assert_eq!(store_retry_pause(u32::MAX), STORE_RETRY_MAX);
    }
}
