//! Strategies: one per type per campaign; each upload or edit is a new
//! version with its own build. The active version of a type is its newest
//! READY one, so a failed edit never breaks a running campaign.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::any::AnyRow;
use stratagem_domain::StrategyType;

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BuildStatus {
    Building,
    Ready,
    Failed,
}

impl BuildStatus {
    fn as_str(self) -> &'static str {
        match self {
            BuildStatus::Building => "building",
            BuildStatus::Ready => "ready",
            BuildStatus::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        match text {
            "building" => Ok(BuildStatus::Building),
            "ready" => Ok(BuildStatus::Ready),
            "failed" => Ok(BuildStatus::Failed),
            other => Err(StoreError::Corrupt(format!("build status {other}"))),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyVersion {
    pub version: i64,
    pub status: BuildStatus,
    /// The build error (file, line, column, message) when `failed`.
    pub error: Option<serde_json::Value>,
    pub entry: String,
    pub sources: BTreeMap<String, String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StrategyView {
    pub id: String,
    pub campaign_id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: StrategyType,
    pub latest: StrategyVersion,
    /// The version that runs: the newest READY one.
    pub active_version: Option<i64>,
    pub created_at: DateTime<Utc>,
}

fn version(row: &AnyRow) -> Result<StrategyVersion> {
    let sources: String = get(row, "sources")?;
    Ok(StrategyVersion {
        version: get(row, "version")?,
        status: BuildStatus::parse(&get::<String>(row, "status")?)?,
        error: get::<Option<String>>(row, "error")?
            .map(|text| from_json(&text))
            .transpose()?,
        entry: get(row, "entry")?,
        sources: from_json(&sources)?,
        created_at: from_micros(get(row, "created_at")?)?,
    })
}

impl Store {
    /// Records an upload (or edit) as a new version in `building` state.
    /// Returns the strategy id and the version number.
    pub async fn add_strategy_version(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        name: &str,
        kind: StrategyType,
        entry: &str,
        sources: &BTreeMap<String, String>,
    ) -> Result<(String, i64)> {
        self.campaign(tenant_id, campaign_id).await?;
        let mut tx = self.pool.begin().await?;
        let existing = sqlx::query("SELECT id, latest_version FROM strategies WHERE tenant_id = $1 AND campaign_id = $2 AND kind = $3")
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(kind.as_str())
            .fetch_optional(&mut *tx)
            .await?;
        let now = micros(Utc::now());
        let (id, version) = match existing {
            Some(row) => {
                let id: String = get(&row, "id")?;
                let version = get::<i64>(&row, "latest_version")? + 1;
                sqlx::query("UPDATE strategies SET latest_version = $1, name = $2 WHERE id = $3")
                    .bind(version)
                    .bind(name)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?;
                (id, version)
            }
            None => {
                let id = new_id("str");
                sqlx::query(
                    "INSERT INTO strategies (id, tenant_id, campaign_id, name, kind, latest_version, created_at) \
                     VALUES ($1, $2, $3, $4, $5, 1, $6)",
                )
                .bind(&id)
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(name)
                .bind(kind.as_str())
                .bind(now)
                .execute(&mut *tx)
                .await?;
                (id, 1)
            }
        };
        sqlx::query(
            "INSERT INTO strategy_versions (strategy_id, version, tenant_id, entry, sources, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&id)
        .bind(version)
        .bind(tenant_id)
        .bind(entry)
        .bind(to_json(sources)?)
        .bind(BuildStatus::Building.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, version))
    }

    /// Stores the outcome of a build: the component, or the error.
    pub async fn finish_strategy_build(
        &self,
        strategy_id: &str,
        version: i64,
        outcome: std::result::Result<(&[u8], &str), serde_json::Value>,
    ) -> Result<()> {
        let query = match &outcome {
            Ok((component, hash)) => sqlx::query(
                "UPDATE strategy_versions SET status = 'ready', component = $1, component_hash = $2 WHERE strategy_id = $3 AND version = $4",
            )
            .bind(component.to_vec())
            .bind(hash.to_string()),
            Err(error) => sqlx::query(
                "UPDATE strategy_versions SET status = 'failed', error = $1 WHERE strategy_id = $2 AND version = $3",
            )
            .bind(error.to_string()),
        };
        query.bind(strategy_id).bind(version).execute(&self.pool).await?;
        Ok(())
    }

    pub async fn strategy(&self, tenant_id: &str, id: &str) -> Result<StrategyView> {
        let row = sqlx::query("SELECT id, campaign_id, name, kind, latest_version, created_at FROM strategies WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or(StoreError::NotFound("strategy"))?;
        let latest_version: i64 = get(&row, "latest_version")?;
        let latest = sqlx::query(
            "SELECT version, status, error, entry, sources, created_at FROM strategy_versions WHERE strategy_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(latest_version)
        .fetch_one(&self.pool)
        .await?;
        let active: Option<i64> = sqlx::query(
            "SELECT MAX(version) AS version FROM strategy_versions WHERE strategy_id = $1 AND status = 'ready'",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await
        .map(|row| get::<Option<i64>>(&row, "version"))??;
        let kind: String = get(&row, "kind")?;
        Ok(StrategyView {
            id: get(&row, "id")?,
            campaign_id: get(&row, "campaign_id")?,
            name: get(&row, "name")?,
            kind: StrategyType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?,
            latest: version(&latest)?,
            active_version: active,
            created_at: from_micros(get(&row, "created_at")?)?,
        })
    }

    pub async fn list_strategies(&self, tenant_id: &str, campaign_id: &str) -> Result<Vec<StrategyView>> {
        self.campaign(tenant_id, campaign_id).await?;
        let ids = sqlx::query("SELECT id FROM strategies WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY created_at")
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_all(&self.pool)
            .await?;
        let mut views = Vec::with_capacity(ids.len());
        for row in &ids {
            views.push(self.strategy(tenant_id, &get::<String>(row, "id")?).await?);
        }
        Ok(views)
    }

    pub async fn delete_strategy(&self, tenant_id: &str, id: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let owned = sqlx::query("SELECT id FROM strategies WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?;
        if owned.is_none() {
            return Err(StoreError::NotFound("strategy"));
        }
        sqlx::query("DELETE FROM strategy_versions WHERE strategy_id = $1").bind(id).execute(&mut *tx).await?;
        sqlx::query("DELETE FROM strategies WHERE id = $1").bind(id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The component of the active (newest READY) version of a campaign's
    /// strategy of `kind`: (content hash, bytes).
    pub async fn active_component(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        kind: StrategyType,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(
            "SELECT v.component_hash, v.component FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id \
             WHERE s.tenant_id = $1 AND s.campaign_id = $2 AND s.kind = $3 AND v.status = 'ready' \
             ORDER BY v.version DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(kind.as_str())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| Ok((get(&row, "component_hash")?, get(&row, "component")?))).transpose()
    }
}
