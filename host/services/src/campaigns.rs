//! A campaign's readiness and its status changes. A campaign becomes
//! CONFIGURED or RUNNING only when it can do its work: it has stages,
//! every stage's channel resolves to an integration of the right kind and
//! an agent with the channel and push configuration it needs, every
//! strategy it has is built, and it has contacts. Otherwise the change is
//! refused with every reason at once, so nothing sits in RUNNING doing
//! nothing. A stage is checked the same way when it is saved.

use stratagem_domain::quota::Quotas;
use stratagem_store::{Store, StoreError};
use stratagem_types::stage::ChannelChoice;
use stratagem_types::strategy::{BuildError, BuildStatus};
use stratagem_types::{Blocker, BlockerCode, Campaign, CampaignStatus, Channel, FieldError, Readiness, StageDefinition};

#[derive(Debug, thiserror::Error)]
pub enum CampaignError {
    #[error("the campaign is not ready to become {}: {}", .next.as_str(), .blockers.iter().map(|b| b.message.as_str()).collect::<Vec<_>>().join("; "))]
    NotReady { next: CampaignStatus, blockers: Vec<Blocker> },
    /// The status machine does not allow the move; `allowed` lists what it does.
    #[error("{detail}")]
    Transition { detail: String, allowed: Vec<String> },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct CampaignService {
    store: Store,
    /// The node's default quotas, for what RUNNING campaigns wait for.
    quotas: Quotas,
}

impl CampaignService {
    pub fn new(store: Store) -> Self {
        Self { store, quotas: Quotas::default() }
    }

    pub fn with_quotas(mut self, quotas: Quotas) -> Self {
        self.quotas = quotas;
        self
    }

    /// The campaign, with what it waits for while RUNNING.
    pub async fn campaign(&self, tenant: &str, id: &str) -> Result<Campaign, StoreError> {
        let mut campaign = self.store.campaigns().campaign(tenant, id).await?;
        self.say_what_waits(tenant, std::slice::from_mut(&mut campaign)).await?;
        Ok(campaign)
    }

    /// The tenant's campaigns (of `status`), with what those RUNNING wait for.
    pub async fn list(&self, tenant: &str, status: Option<CampaignStatus>) -> Result<Vec<Campaign>, StoreError> {
        let mut campaigns = self.store.campaigns().list_campaigns(tenant, status).await?;
        self.say_what_waits(tenant, &mut campaigns).await?;
        Ok(campaigns)
    }

    /// A tenant past a daily quota: its RUNNING campaigns' AGGREGATION
    /// waits (`stratagem_engine`'s aggregation phase), and they say so.
    async fn say_what_waits(&self, tenant: &str, campaigns: &mut [Campaign]) -> Result<(), StoreError> {
        if !campaigns.iter().any(|campaign| campaign.status == CampaignStatus::Running) {
            return Ok(());
        }
        let why = match self.store.tenants().admit_strategy_work(tenant, self.quotas).await {
            Ok(()) => return Ok(()),
            Err(StoreError::QuotaExceeded(exceeded)) => format!(
                "AGGREGATION waits: the tenant used {} of its {} {} per UTC day. Planned communications still go out; their \
                 outcomes are aggregated from 00:00 UTC, or as soon as the platform's operator raises the quota",
                exceeded.used,
                exceeded.limit,
                if exceeded.quota == "fuel_per_day" { "strategy fuel" } else { "outbound HTTP calls" }
            ),
            Err(other) => return Err(other),
        };
        for campaign in campaigns.iter_mut().filter(|campaign| campaign.status == CampaignStatus::Running) {
            campaign.waiting_for = Some(why.clone());
        }
        Ok(())
    }

    /// Moves the campaign to `next`; to CONFIGURED or RUNNING only when it
    /// is ready.
    pub async fn set_status(&self, tenant: &str, id: &str, next: CampaignStatus, reason: Option<&str>) -> Result<Campaign, CampaignError> {
        let current = self.store.campaigns().campaign(tenant, id).await?;
        if current.status.can_become(next) && matches!(next, CampaignStatus::Configured | CampaignStatus::Running) {
            let readiness = self.readiness(tenant, id).await?;
            if !readiness.ready {
                return Err(CampaignError::NotReady { next, blockers: readiness.blockers });
            }
        }
        match self.store.campaigns().set_campaign_status(tenant, id, next, reason).await {
            Err(StoreError::Conflict(detail)) => {
                let current = self.store.campaigns().campaign(tenant, id).await?;
                let allowed = current.status.next().iter().map(|s| s.as_str().to_owned()).collect();
                Err(CampaignError::Transition { detail, allowed })
            }
            other => Ok(other?),
        }
    }

    /// Every reason the campaign cannot run yet.
    pub async fn readiness(&self, tenant: &str, id: &str) -> Result<Readiness, StoreError> {
        self.store.campaigns().campaign(tenant, id).await?;
        let mut blockers = Vec::new();
        let stages = self.store.stages().list_stages(tenant, id).await?;
        if stages.is_empty() {
            blockers.push(blocker(BlockerCode::NoStages, "the campaign has no stage: add one on the Stages tab".into()));
        }
        for stage in &stages {
            for error in self.check_stage(tenant, &stage.definition).await? {
                blockers.push(Blocker {
                    stage_id: Some(stage.id.clone()),
                    field: Some(error.field.clone()),
                    ..blocker(BlockerCode::Stage, format!("stage `{}`: {}", stage.definition.name, error.message))
                });
            }
        }
        for strategy in self.store.strategies().list_strategies(tenant, id).await? {
            if strategy.active_version.is_some() {
                continue;
            }
            let (code, message) = match strategy.latest.status {
                BuildStatus::Building => (
                    BlockerCode::StrategyBuilding,
                    format!("the {} strategy `{}` is still building; wait for its build", strategy.kind.as_str(), strategy.name),
                ),
                _ => (
                    BlockerCode::StrategyFailed,
                    format!(
                        "the {} strategy `{}` failed to build ({}); upload a fixed version",
                        strategy.kind.as_str(),
                        strategy.name,
                        strategy.latest.error.as_ref().map_or_else(|| "no error was recorded".to_owned(), BuildError::summary)
                    ),
                ),
            };
            blockers.push(Blocker { strategy_id: Some(strategy.id.clone()), ..blocker(code, message) });
        }
        if !self.store.contacts().has_contacts(tenant, id).await? {
            blockers.push(blocker(BlockerCode::NoContacts, "the campaign has no contacts: import a contact file on the Contacts tab".into()));
        }
        Ok(Readiness { ready: blockers.is_empty(), blockers })
    }

    /// What a stage references, checked against the tenant's agents and
    /// integrations: every problem, each naming its field.
    pub async fn check_stage(&self, tenant: &str, definition: &StageDefinition) -> Result<Vec<FieldError>, StoreError> {
        let mut errors = Vec::new();
        for choice in definition.choices() {
            self.check_choice(tenant, &choice, &mut errors).await?;
        }
        Ok(errors)
    }

    async fn check_choice(&self, tenant: &str, choice: &ChannelChoice<'_>, errors: &mut Vec<FieldError>) -> Result<(), StoreError> {
        let (at, channel, settings) = (&choice.field_prefix, choice.channel, choice.settings);
        let agent = match choice.agent_id {
            None => None,
            Some(agent_id) => match self.store.agents().agent(tenant, agent_id).await {
                Ok(agent) => Some(agent),
                Err(StoreError::NotFound(_)) => {
                    errors.push(FieldError::new(format!("{at}agent_id"), format!("there is no agent `{agent_id}`")));
                    return Ok(());
                }
                Err(other) => return Err(other),
            },
        };
        if let (Some(agent), Some(name)) = (&agent, &settings.agent_channel) {
            if !agent.definition.channels.iter().any(|c| &c.name == name) {
                let known: Vec<&str> = agent.definition.channels.iter().map(|c| c.name.as_str()).collect();
                errors.push(FieldError::new(
                    format!("{at}settings.agent_channel"),
                    format!("agent `{}` has no channel `{name}`; its channels: {}", agent.definition.name, list_or_none(&known)),
                ));
                return Ok(());
            }
        }
        let Some(wanted) = channel.integration_kind() else { return Ok(()) };
        let Some(integration_id) = choice.integration_id(agent.as_ref().map(|agent| &agent.definition)) else {
            let (field, message) = match (channel, &agent) {
                (Channel::MobilePush, Some(agent)) => (
                    format!("{at}agent_id"),
                    format!("agent `{}` has no push notification configuration; set its push_integration_id", agent.definition.name),
                ),
                _ => (
                    format!("{at}settings.integration_id"),
                    format!("channel {} needs a {} integration: choose one, or an agent channel bound to one", channel.as_str(), wanted.as_str()),
                ),
            };
            errors.push(FieldError::new(field, message));
            return Ok(());
        };
        // Where the integration came from, for the field the error names.
        let field = match (channel, &settings.integration_id) {
            (Channel::MobilePush, _) => format!("{at}agent_id"),
            (_, Some(_)) => format!("{at}settings.integration_id"),
            (_, None) => format!("{at}settings.agent_channel"),
        };
        match self.store.integrations().integration(tenant, &integration_id).await {
            Ok(integration) if integration.kind != wanted => errors.push(FieldError::new(
                field,
                format!(
                    "integration `{}` is {}, but channel {} needs a {} integration",
                    integration.name,
                    integration.kind.as_str(),
                    channel.as_str(),
                    wanted.as_str()
                ),
            )),
            Ok(_) => {}
            Err(StoreError::NotFound(_)) => errors.push(FieldError::new(field, format!("there is no integration `{integration_id}`"))),
            Err(other) => return Err(other),
        }
        Ok(())
    }
}

fn blocker(code: BlockerCode, message: String) -> Blocker {
    Blocker { code, message, stage_id: None, field: None, strategy_id: None }
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
