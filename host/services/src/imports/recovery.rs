//! Import jobs of nodes that stopped: found by their lapsed heartbeat and
//! marked interrupted, so no job reads as running for ever.

use std::time::Duration;

use stratagem_store::{Backend, StoreError};

use super::ImportService;

/// How a node keeps its imports' jobs alive, and finds those of nodes
/// that stopped. A node renews the heartbeat of each job it runs every
/// `heartbeat_every` (and with every batch it writes); every `sweep_every`
/// each node marks `interrupted` the running jobs not heard from for
/// `lapse`. The lapse must be several heartbeats long: a live node whose
/// job is taken for dead has its next batch refused and stops, so a
/// wrong guess costs an import but never a count.
#[derive(Debug, Clone, Copy)]
pub struct ImportLeases {
    pub heartbeat_every: Duration,
    pub lapse: Duration,
    pub sweep_every: Duration,
}

impl Default for ImportLeases {
    /// A heartbeat every 10 s; a job silent for a minute (six missed
    /// heartbeats) is interrupted within 15 s more.
    fn default() -> Self {
        Self { heartbeat_every: Duration::from_secs(10), lapse: Duration::from_secs(60), sweep_every: Duration::from_secs(15) }
    }
}

impl ImportService {
    /// At a node's start-up: on SQLite, which one process uses at a time,
    /// every import still `running` was left by a process that stopped,
    /// and is marked `interrupted` at once. On every backend, imports whose
    /// node's heartbeat lapsed are marked interrupted now and every
    /// `sweep_every` after, by the task this returns; it also renews the
    /// heartbeat of this node's queued jobs.
    pub async fn recover(&self) -> Result<tokio::task::JoinHandle<()>, StoreError> {
        if self.store.backend() == Backend::Sqlite {
            let interrupted = self.store.imports().interrupt_imports_of_other_nodes(&self.node_id).await?;
            if interrupted > 0 {
                tracing::warn!(interrupted, "import jobs left running by a stopped process were marked interrupted");
            }
        }
        self.interrupt_lapsed().await?;
        let service = self.clone();
        Ok(tokio::spawn(async move {
            let mut sweep = tokio::time::interval(service.leases.sweep_every);
            let mut heartbeat = tokio::time::interval(service.leases.heartbeat_every);
            sweep.tick().await;
            loop {
                tokio::select! {
                    _ = sweep.tick() => if let Err(error) = service.interrupt_lapsed().await {
                        tracing::warn!(%error, "could not look for import jobs whose node stopped");
                    },
                    // Queued jobs are alive while their node is; and an
                    // import whose end could not start the next one (a
                    // database error) is made up for here.
                    _ = heartbeat.tick() => {
                        if let Err(error) = service.store.imports().renew_queued_heartbeats(&service.node_id).await {
                            tracing::warn!(%error, "could not renew the heartbeat of queued imports");
                        }
                        if let Err(error) = service.schedule().await {
                            tracing::warn!(%error, "could not start queued imports");
                        }
                    }
                }
            }
        }))
    }

    async fn interrupt_lapsed(&self) -> Result<(), StoreError> {
        let lapse = chrono::Duration::from_std(self.leases.lapse).unwrap_or(chrono::Duration::MAX);
        let interrupted = self.store.imports().interrupt_lapsed_imports(chrono::Utc::now() - lapse).await?;
        if interrupted > 0 {
            tracing::warn!(interrupted, "import jobs whose node stopped were marked interrupted");
        }
        Ok(())
    }
}
