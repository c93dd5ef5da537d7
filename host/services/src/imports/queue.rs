//! The node's import queue: an import is a job from the moment its file
//! is checked, `queued` until one of the node's slots is free for it.
//!
//! Slots are shared across tenants. A tenant runs at most
//! [`TENANT_SHARE`] imports at once on a node, so a slot is always left
//! for another tenant's import; queued imports start in turns: a tenant's
//! first waiting import goes ahead of any tenant's second one, then by
//! age. The order is read from the database, so every node that answers
//! `GET /imports/{id}` gives the same position the scheduler goes by.

use std::collections::HashMap;

use bytes::Bytes;
use stratagem_domain::contact_file::FileFormat;
use stratagem_store::{ImportEnd, ImportStatus, InterruptedReason, NodeImport, StoreError};

use super::{pipeline, ImportService, IMPORTS_AT_ONCE};

/// Imports one tenant runs at once on a node: one slot stays free for
/// the others (one import keeps the node's cores busy already: its
/// strategies run several at a time).
pub const TENANT_SHARE: usize = if IMPORTS_AT_ONCE > 1 { IMPORTS_AT_ONCE - 1 } else { 1 };

/// What a queued import needs to start, kept by the node that holds it.
pub(super) struct Waiting {
    pub tenant: String,
    pub campaign_id: String,
    pub format: FileFormat,
    /// The checked file, mapped from its spool file.
    pub bytes: Bytes,
    /// One of the tenant's places, given back when the import starts.
    pub _ticket: super::WaitingTicket,
}

/// The node's queued jobs in the order they start: by their turn (the
/// imports their tenant runs, plus its own queued ahead of them), then
/// by age. The first starts when a slot is free and its turn is below
/// [`TENANT_SHARE`].
pub(super) fn start_order(jobs: &[NodeImport]) -> Vec<(&NodeImport, usize)> {
    let mut turns: HashMap<&str, usize> = HashMap::new();
    for job in jobs.iter().filter(|job| job.status == ImportStatus::Running) {
        *turns.entry(job.tenant_id.as_str()).or_default() += 1;
    }
    // `jobs` is oldest first: each tenant's queued jobs take its next turns.
    let mut queued: Vec<(&NodeImport, usize)> = jobs
        .iter()
        .filter(|job| job.status == ImportStatus::Queued)
        .map(|job| {
            let turn = turns.entry(job.tenant_id.as_str()).or_default();
            *turn += 1;
            (job, *turn - 1)
        })
        .collect();
    queued.sort_by(|(a, a_turn), (b, b_turn)| a_turn.cmp(b_turn).then(a.created_at.cmp(&b.created_at)).then(a.id.cmp(&b.id)));
    queued
}

impl ImportService {
    /// Starts queued imports while the node has free slots and the next
    /// one's tenant is within its share. Called when an import is queued
    /// and when one ends; one call at a time. Boxed: the imports it starts
    /// call it again when they end.
    pub(super) fn schedule(&self) -> futures::future::BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(self.start_next())
    }

    async fn start_next(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.scheduling.lock().await;
        loop {
            if self.shutdown.is_cancelled() {
                return Ok(());
            }
            let jobs = self.store.imports().node_queue(&self.node_id).await?;
            let running = jobs.iter().filter(|job| job.status == ImportStatus::Running).count();
            if running >= IMPORTS_AT_ONCE {
                return Ok(());
            }
            let Some(&(next, turn)) = start_order(&jobs).first() else { return Ok(()) };
            if turn >= TENANT_SHARE {
                return Ok(());
            }
            let waiting = self.waiting.lock().expect("import queue").remove(&next.id);
            let Some(waiting) = waiting else {
                // Queued by this node, yet not in its memory: only a bug
                // gets here. Closed, so that it neither blocks the queue
                // nor reads as waiting for ever.
                tracing::error!(job_id = %next.id, "a queued import's file is not on its node; the job is closed");
                self.store.imports().finish_import_job(&next.id, &self.node_id, ImportEnd::Interrupted(InterruptedReason::Error)).await?;
                continue;
            };
            if !self.store.imports().start_queued_import(&next.id, &self.node_id).await? {
                continue; // taken for dead meanwhile: marked interrupted
            }
            let store = self.store.clone();
            let campaign = match store.campaigns().campaign(&waiting.tenant, &waiting.campaign_id).await {
                Ok(campaign) => campaign,
                Err(error) => {
                    tracing::error!(job_id = %next.id, %error, "a queued import's campaign could not be read; the job is closed");
                    store.imports().finish_import_job(&next.id, &self.node_id, ImportEnd::Interrupted(InterruptedReason::Error)).await?;
                    continue;
                }
            };
            let options = stratagem_engine::invoke_options(&store, &waiting.tenant, &campaign, std::sync::Arc::new(stratagem_runtime::SystemClock));
            let batches = pipeline::read_batches(waiting.format, waiting.bytes);
            self.running.spawn(pipeline::run(self.clone(), options, next.id.clone(), batches));
        }
    }

    /// Once the node shuts down: closes the jobs still in its queue, which
    /// never started (their files go with the process).
    pub(super) async fn close_queue(&self) {
        let queued: Vec<String> = self.waiting.lock().expect("import queue").drain().map(|(id, _)| id).collect();
        for id in queued {
            let closed = self.store.imports().finish_import_job(&id, &self.node_id, ImportEnd::Interrupted(InterruptedReason::Shutdown)).await;
            if let Err(error) = closed {
                tracing::error!(job_id = %id, %error, "could not close a queued import at shutdown");
            }
        }
    }

    /// Where a queued job stands in its node's queue: 1 for the next.
    pub(super) async fn queue_position(&self, job_id: &str) -> Result<Option<u32>, StoreError> {
        let node = self.store.imports().import_node(job_id).await?;
        let Some(node) = node else { return Ok(None) };
        let jobs = self.store.imports().node_queue(&node).await?;
        Ok(start_order(&jobs).iter().position(|(job, _)| job.id == job_id).map(|index| index as u32 + 1))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn job(id: &str, tenant: &str, status: ImportStatus, minute: u32) -> NodeImport {
        NodeImport { id: id.into(), tenant_id: tenant.into(), status, created_at: Utc.with_ymd_and_hms(2026, 12, 5, 9, minute, 0).unwrap() }
    }

    fn order(jobs: &[NodeImport]) -> Vec<(&str, usize)> {
        start_order(jobs).into_iter().map(|(job, turn)| (job.id.as_str(), turn)).collect()
    }

    #[test]
    fn works_when_tenants_take_turns_whatever_they_queued_first() {
        use ImportStatus::{Queued, Running};
        let jobs = [
            job("a1", "acme", Running, 0),
            job("a2", "acme", Queued, 1),
            job("a3", "acme", Queued, 2),
            job("b1", "bolt", Queued, 3),
            job("c1", "crux", Queued, 4),
            job("b2", "bolt", Queued, 5),
        ];
        // bolt and crux have nothing running: their first imports go
        // ahead of acme's second and third, then turns alternate by age.
        assert_eq!(order(&jobs), [("b1", 0), ("c1", 0), ("a2", 1), ("b2", 1), ("a3", 2)]);
    }

    #[test]
    fn works_when_the_oldest_goes_first_among_equal_turns() {
        use ImportStatus::Queued;
        let jobs = [job("b1", "bolt", Queued, 0), job("a1", "acme", Queued, 1)];
        assert_eq!(order(&jobs), [("b1", 0), ("a1", 0)]);
    }

    #[test]
    fn errors_when_a_tenant_past_its_share_would_start_again() {
        use ImportStatus::{Queued, Running};
        // acme holds its share: its next one waits (turn 1) even with a slot free.
        let jobs = [job("a1", "acme", Running, 0), job("a2", "acme", Queued, 1)];
        let order = order(&jobs);
        assert_eq!(order, [("a2", TENANT_SHARE)]);
        assert!(order[0].1 >= TENANT_SHARE, "it does not start");
    }
}
