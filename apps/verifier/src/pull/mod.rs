//! The pull loop's supervisor: one tokio task per polled agent, started on add, reactivate
//! and verifier start, told to stop or terminate by the API, and a semaphore that bounds
//! how many polls (request + check) run at once across all agents.
//!
//! The loop itself is in [`poll`] (V delivery in `poll::provide_v`); [`context`] holds
//! what every task shares and the commands it obeys; [`agent`] prepares an agent's fixed
//! inputs; [`client`] talks to the agent.

pub mod agent;
pub mod client;
mod context;
mod poll;

pub use context::{Command, PullContext};

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keylime_store::VerifierAgent;
use tokio::sync::watch;
use tokio::task::JoinHandle;

struct Running {
    generation: u64,
    command: watch::Sender<Command>,
    task: JoinHandle<()>,
}

/// Owns the agent tasks.
pub struct Supervisor {
    pub ctx: Arc<PullContext>,
    tasks: Mutex<HashMap<String, Running>>,
    next_generation: Mutex<u64>,
}

impl Supervisor {
    pub fn new(ctx: PullContext) -> Arc<Self> {
        Arc::new(Supervisor {
            ctx: Arc::new(ctx),
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
        let ctx = Arc::clone(&self.ctx);
        let mut tasks = self.lock_tasks();
        let task = tokio::spawn(async move {
            let id = agent.agent_id.clone();
            poll::run(ctx, agent, rx).await;
            sup.finished(&id, generation);
        });
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

    /// Called when a task ends.
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
