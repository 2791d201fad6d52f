//! The pull loop's supervisor: one tokio task per polled agent, started on add, reactivate
//! and verifier start, told to stop or terminate by the API, and a semaphore that bounds
//! how many polls (request + check) run at once across all agents.
//!
//! The loop itself is in [`poll`] (V delivery in `poll::provide_v`); [`agent`] prepares an
//! agent's fixed inputs; [`client`] talks to the agent.

pub mod agent;
pub mod client;
mod poll;

pub(crate) use poll::retry_pause;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keylime_attestation::SeverityPolicy;
use keylime_store::{Store, VerifierAgent};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;

use crate::revocation::Notifier;
use crate::settings::PollTiming;
use crate::tls::AgentClientTls;

/// What the API asks of a running agent task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Run,
    /// Stop polling (state already set by the API).
    Stop,
    /// Delete the agent's record and stop.
    Terminate,
}

/// Everything agent tasks share.
pub struct PullContext {
    pub store: Store,
    pub timing: PollTiming,
    pub agent_tls: Arc<AgentClientTls>,
    pub severity: Arc<SeverityPolicy>,
    /// Index of the highest severity label.
    pub max_severity: u32,
    pub polls: Semaphore,
    pub require_mtls: bool,
    /// Revocation notices (webhook, agents).
    pub notifier: Arc<Notifier>,
    /// Prepared runtime and measured-boot policies.
    pub policies: Arc<crate::policy_cache::PolicyCache>,
}

struct Running {
    generation: u64,
    command: watch::Sender<Command>,
    task: JoinHandle<()>,
}

/// Owns the agent tasks.
pub struct Supervisor {
    pub ctx: PullContext,
    tasks: Mutex<HashMap<String, Running>>,
    next_generation: Mutex<u64>,
}

impl Supervisor {
    pub fn new(ctx: PullContext) -> Arc<Self> {
        Arc::new(Supervisor {
            ctx,
            tasks: Mutex::new(HashMap::new()),
            next_generation: Mutex::new(0),
        })
    }

    fn lock_tasks(&self) -> std::sync::MutexGuard<'_, HashMap<String, Running>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Start polling `agent`, replacing a task already running for it.
    pub fn spawn(self: &Arc<Self>, agent: VerifierAgent) {
        let generation = {
            let mut g = self
                .next_generation
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *g += 1;
            *g
        };
        let id = agent.agent_id.clone();
        let (tx, rx) = watch::channel(Command::Run);
        let sup = Arc::clone(self);
        let mut tasks = self.lock_tasks();
        let task = tokio::spawn(poll::run(sup, agent, rx, generation));
        if let Some(old) = tasks.insert(
            id,
            Running {
                generation,
                command: tx,
                task,
            },
        ) {
            let _ = old.command.send(Command::Stop);
            old.task.abort();
        }
    }

    /// Whether a task is polling `agent_id`.
    pub fn is_running(&self, agent_id: &str) -> bool {
        self.lock_tasks()
            .get(agent_id)
            .is_some_and(|r| !r.task.is_finished())
    }

    /// Send `command` to the agent's task; `false` if none runs.
    pub fn command(&self, agent_id: &str, command: Command) -> bool {
        self.lock_tasks()
            .get(agent_id)
            .is_some_and(|r| r.command.send(command).is_ok())
    }

    /// Called by a task when it ends.
    fn finished(&self, agent_id: &str, generation: u64) {
        let mut tasks = self.lock_tasks();
        if tasks
            .get(agent_id)
            .is_some_and(|r| r.generation == generation)
        {
            tasks.remove(agent_id);
        }
    }

    /// Abort every task (verifier shutdown); state stays in the database for the restart.
    pub fn shutdown(&self) {
        for (_, r) in self.lock_tasks().drain() {
            r.task.abort();
        }
        self.ctx.notifier.shutdown();
    }
}
