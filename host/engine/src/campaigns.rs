//! What a tick knows of a campaign: its stages and strategies, loaded
//! once per tick ([`TickCache`]), and the stop of a campaign that cannot
//! run (a strategy that failed to build or does not fit the contract).

use std::collections::HashMap;
use std::sync::Arc;

use stratagem_domain::strategy::BuildError;
use stratagem_domain::{Campaign, CampaignStatus, Stage, StrategyType};
use stratagem_runtime::{LoadError, Strategy};
use stratagem_store::{StoreError, StrategyState};

use crate::{Engine, EngineError};

/// Per-tick lookups, so a batch of one campaign reads its settings once.
#[derive(Default)]
pub(crate) struct TickCache {
    pub(crate) campaigns: HashMap<String, Option<CampaignSetup>>,
}

/// What the engine needs of a campaign to work on it.
pub(crate) struct CampaignSetup {
    pub(crate) campaign: Campaign,
    pub(crate) stages: Vec<Stage>,
    pub(crate) aggregation: Option<Arc<Strategy>>,
    pub(crate) contact_answer: Option<Arc<Strategy>>,
}

impl TickCache {
    /// A campaign loaded by [`Engine::load_campaign`] this tick; `None` if
    /// it is gone or cannot run.
    pub(crate) fn get(&self, campaign_id: &str) -> Option<&CampaignSetup> {
        self.campaigns.get(campaign_id).and_then(Option::as_ref)
    }
}

impl Engine {
    /// Loads a campaign's stages and AGGREGATION strategy into the tick's
    /// cache, once per tick.
    pub(crate) async fn load_campaign(&self, cache: &mut TickCache, tenant_id: &str, campaign_id: &str) -> Result<(), EngineError> {
        if !cache.campaigns.contains_key(campaign_id) {
            let setup = self.campaign_setup(tenant_id, campaign_id).await?;
            cache.campaigns.insert(campaign_id.to_owned(), setup);
        }
        Ok(())
    }

    /// A campaign with its stages and strategies; `None` when it is gone or
    /// cannot run. A strategy that does not fit the contract stops the
    /// campaign: ERROR with the reason, and none of its work is done.
    async fn campaign_setup(&self, tenant_id: &str, campaign_id: &str) -> Result<Option<CampaignSetup>, EngineError> {
        let campaign = match self.store.campaigns().campaign(tenant_id, campaign_id).await {
            Ok(campaign) => campaign,
            Err(StoreError::NotFound(_)) => return Ok(None),
            Err(other) => return Err(other.into()),
        };
        let stages = self.store.stages().list_stages(tenant_id, campaign_id).await?;
        let Some(aggregation) = self.strategy(tenant_id, campaign_id, StrategyType::Aggregation).await? else { return Ok(None) };
        let Some(contact_answer) = self.strategy(tenant_id, campaign_id, StrategyType::ContactAnswer).await? else { return Ok(None) };
        Ok(Some(CampaignSetup { campaign, stages, aggregation, contact_answer }))
    }

    /// The campaign's active strategy of `kind`: `Some(None)` when it has
    /// none, `None` when it has one that cannot run now — still building
    /// (the campaign waits: running without it would decide its sessions
    /// as if it had none), or failed to build (the campaign stops, ERROR).
    /// Its component (megabytes) is read only when this node has not
    /// loaded it yet.
    async fn strategy(&self, tenant_id: &str, campaign_id: &str, kind: StrategyType) -> Result<Option<Option<Arc<Strategy>>>, EngineError> {
        let hash = match self.store.strategies().strategy_state(tenant_id, campaign_id, kind).await? {
            None => return Ok(Some(None)),
            Some(StrategyState::Ready(hash)) => hash,
            Some(StrategyState::Building) => return Ok(None),
            Some(StrategyState::Failed(error)) => {
                let reason = format!(
                    "the {} strategy failed to build: {}; upload a fixed version and configure the campaign again",
                    kind.as_str(),
                    error.as_ref().map_or_else(|| "no error was recorded".into(), BuildError::summary)
                );
                self.stop_campaign(tenant_id, campaign_id, &reason).await?;
                return Ok(None);
            }
        };
        if let Some(strategy) = self.strategies.cached(&hash) {
            return Ok(Some(Some(strategy)));
        }
        let Some((hash, component)) = self.store.strategies().active_component(tenant_id, campaign_id, kind).await? else {
            return Ok(Some(None));
        };
        match self.strategies.load(&hash, component).await {
            Ok(strategy) => Ok(Some(Some(strategy))),
            Err(error @ (LoadError::NotAComponent(_) | LoadError::ContractMismatch(_))) => {
                let reason = format!(
                    "the {} strategy cannot run: {error}; upload a fixed version and configure the campaign again",
                    kind.as_str()
                );
                self.stop_campaign(tenant_id, campaign_id, &reason).await?;
                Ok(None)
            }
            Err(error) => {
                // This node's artifact cache or toolchain, not the
                // campaign: try again next tick.
                tracing::error!(%error, campaign_id, kind = kind.as_str(), "loading a strategy failed on this node");
                Ok(None)
            }
        }
    }

    /// The campaign goes to ERROR with `reason` (unless it left RUNNING
    /// meanwhile).
    pub(crate) async fn stop_campaign(&self, tenant_id: &str, campaign_id: &str, reason: &str) -> Result<(), EngineError> {
        match self.store.campaigns().set_campaign_status(tenant_id, campaign_id, CampaignStatus::Error, Some(reason)).await {
            Ok(_) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(other) => Err(other.into()),
        }
    }
}
