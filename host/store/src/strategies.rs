//! Strategies: one per type per campaign; each upload or edit is a new
//! version with its own build. The active version of a type is its newest
//! READY one, so a failed edit never breaks a running campaign.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
pub use stratagem_domain::strategy::{BuildError, BuildErrorKind, BuildPhase, BuildStatus, StrategyVersion, StrategyView};
use stratagem_domain::StrategyType;

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

/// A stored build status; a value no version can have is a corrupt row.
fn build_status(text: &str) -> Result<BuildStatus> {
    BuildStatus::parse(text).ok_or_else(|| StoreError::Corrupt(format!("build status {text}")))
}

/// What a version is built from.
pub enum VersionInput<'a> {
    /// Python files, built here with componentize-py.
    Source { entry: &'a str, sources: &'a BTreeMap<String, String> },
    /// A component the user built; it is checked against the contract
    /// and compiled.
    Component(&'a [u8]),
}

/// How a new version starts.
pub enum VersionStart {
    /// In the queue, for any node's build worker.
    Queued,
    /// Leased to the caller, who builds it, until then.
    Leased(DateTime<Utc>),
    /// Failed before any build: the upload's own check found the error.
    Failed(BuildError),
}

/// Which builds a node claims: those waiting in the queue, or those
/// whose node stopped (their lease expired).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuildClaim {
    Queued,
    Stale,
}

/// A build claimed by a node: from the queue, or taken over from a node
/// whose lease expired.
pub struct BuildJob {
    pub tenant_id: String,
    pub strategy_id: String,
    pub version: i64,
    /// How many nodes have started this build, this one included.
    pub attempts: i64,
    pub input: OwnedVersionInput,
}

/// Strategy versions waiting for a build, and those being built.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BuildQueue {
    /// Queued, or left by a node whose lease lapsed.
    pub waiting: i64,
    pub building: i64,
}

pub enum OwnedVersionInput {
    Source { entry: String, sources: BTreeMap<String, String> },
    Component(Vec<u8>),
}

fn version(row: &AnyRow) -> Result<StrategyVersion> {
    let sources: String = get(row, "sources")?;
    Ok(StrategyVersion {
        version: get(row, "version")?,
        status: build_status(&get::<String>(row, "status")?)?,
        origin: get(row, "origin")?,
        error: get::<Option<String>>(row, "error")?
            .map(|text| from_json(&text))
            .transpose()?,
        entry: get(row, "entry")?,
        sources: from_json(&sources)?,
        created_at: from_micros(get(row, "created_at")?)?,
        queue_position: None,
        phase: None,
    })
}

/// Strategies, their versions and the build queue's rows. Reached through [`Store::strategies`].
#[derive(Clone, Copy)]
pub struct Strategies<'a> {
    store: &'a Store,
}

impl Store {
    pub fn strategies(&self) -> Strategies<'_> {
        Strategies { store: self }
    }
}

impl Strategies<'_> {
    /// Records an upload (or edit) as a new version, as `start` says:
    /// building (queued or leased), or failed already. Older versions
    /// still building are cancelled: only the newest can become active.
    /// Returns the strategy id and the version number.
    #[allow(clippy::too_many_arguments)]
    pub async fn add_strategy_version(
        self,
        tenant_id: &str,
        campaign_id: &str,
        name: &str,
        kind: StrategyType,
        input: VersionInput<'_>,
        start: VersionStart,
    ) -> Result<(String, i64)> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let mut tx = self.store.begin_write().await?;
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
                let superseded = BuildError::new(
                    BuildErrorKind::Superseded,
                    format!("version {version} replaced this version before its build finished"),
                );
                sqlx::query(
                    "UPDATE strategy_versions SET status = 'cancelled', error = $1, build_lease_until = NULL \
                     WHERE strategy_id = $2 AND status = 'building'",
                )
                .bind(to_json(&superseded)?)
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
        let (origin, entry, sources, component) = match input {
            VersionInput::Source { entry, sources } => ("source", entry, to_json(sources)?, None),
            VersionInput::Component(bytes) => ("component", "", "{}".to_owned(), Some(bytes.to_vec())),
        };
        let (status, error, lease) = match &start {
            VersionStart::Queued => (BuildStatus::Building, None, None),
            VersionStart::Leased(until) => (BuildStatus::Building, None, Some(micros(*until))),
            VersionStart::Failed(error) => (BuildStatus::Failed, Some(to_json(error)?), None),
        };
        sqlx::query(
            "INSERT INTO strategy_versions (strategy_id, version, tenant_id, entry, sources, status, error, origin, component, \
             build_lease_until, build_attempts, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&id)
        .bind(version)
        .bind(tenant_id)
        .bind(entry)
        .bind(sources)
        .bind(status.as_str())
        .bind(error)
        .bind(origin)
        .bind(component)
        .bind(lease)
        .bind(i64::from(lease.is_some()))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((id, version))
    }

    /// Stores the outcome of a build: the component, or the error. Only a
    /// version still building is changed, so when two nodes race on a
    /// taken-over build the first outcome stands.
    pub async fn finish_strategy_build(
        self,
        strategy_id: &str,
        version: i64,
        outcome: std::result::Result<(&[u8], &str), BuildError>,
    ) -> Result<()> {
        let query = match &outcome {
            Ok((component, hash)) => sqlx::query(
                "UPDATE strategy_versions SET status = 'ready', component = $1, component_hash = $2, build_lease_until = NULL \
                 WHERE strategy_id = $3 AND version = $4 AND status = 'building'",
            )
            .bind(component.to_vec())
            .bind(hash.to_string()),
            Err(error) => sqlx::query(
                "UPDATE strategy_versions SET status = 'failed', error = $1, build_lease_until = NULL \
                 WHERE strategy_id = $2 AND version = $3 AND status = 'building'",
            )
            .bind(to_json(error)?),
        };
        let mut tx = self.store.begin_write().await?;
        let finished = query.bind(strategy_id).bind(version).execute(&mut *tx).await?.rows_affected() == 1;
        if finished && outcome.is_ok() {
            // The newest ready version is the active one, for good: older
            // versions can never run again, so their components go.
            sqlx::query(
                "UPDATE strategy_versions SET component = NULL WHERE strategy_id = $1 AND version < $2 \
                 AND status <> 'building' AND component IS NOT NULL",
            )
            .bind(strategy_id)
            .bind(version)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The content hash of a built version, whether or not it still keeps
    /// its component.
    pub async fn component_hash(self, strategy_id: &str, version: i64) -> Result<Option<String>> {
        let row = sqlx::query("SELECT component_hash FROM strategy_versions WHERE strategy_id = $1 AND version = $2")
            .bind(strategy_id)
            .bind(version)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.map(|row| get::<Option<String>>(&row, "component_hash")).transpose()?.flatten())
    }

    /// Which of `hashes` some version can still run: its component is kept.
    pub async fn runnable_component_hashes(self, hashes: &[String]) -> Result<std::collections::HashSet<String>> {
        let mut runnable = std::collections::HashSet::new();
        for chunk in hashes.chunks(50) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            let sql = format!(
                "SELECT DISTINCT component_hash FROM strategy_versions WHERE component IS NOT NULL AND component_hash IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql);
            for hash in chunk {
                query = query.bind(hash);
            }
            for row in query.fetch_all(&self.store.pool).await? {
                runnable.insert(get::<String>(&row, "component_hash")?);
            }
        }
        Ok(runnable)
    }

    /// Extends the lease of a build this node is working on; `false` when
    /// the build is no longer building (finished elsewhere, or deleted).
    pub async fn renew_build_lease(self, strategy_id: &str, version: i64, until: DateTime<Utc>) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE strategy_versions SET build_lease_until = $1 WHERE strategy_id = $2 AND version = $3 AND status = 'building'",
        )
        .bind(micros(until))
        .bind(strategy_id)
        .bind(version)
        .execute(&self.store.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims one build for the caller until `until`: the oldest queued
    /// one, or one whose lease expired before `now` (its node stopped),
    /// skipping tenants that already have `per_tenant` builds running on
    /// any node. The lease is a compare-and-set on the old one, so of
    /// several nodes claiming at once exactly one wins each build.
    /// The build queue over every tenant and node, now.
    pub async fn build_queue(self, now: DateTime<Utc>) -> Result<BuildQueue> {
        let row = sqlx::query(
            "SELECT COALESCE(SUM(CASE WHEN build_lease_until >= $1 THEN 1 ELSE 0 END), 0) AS building, COUNT(*) AS total \
             FROM strategy_versions WHERE status = 'building'",
        )
        .bind(micros(now))
        .fetch_one(&self.store.pool)
        .await?;
        let (building, total): (i64, i64) = (get(&row, "building")?, get(&row, "total")?);
        Ok(BuildQueue { waiting: total - building, building })
    }

    /// Records that a build's Python part is done: its component is being
    /// compiled.
    pub async fn mark_compiling(self, strategy_id: &str, version: i64, now: DateTime<Utc>) -> Result<()> {
        sqlx::query("UPDATE strategy_versions SET compiling_since = $1 WHERE strategy_id = $2 AND version = $3 AND status = 'building'")
            .bind(micros(now))
            .bind(strategy_id)
            .bind(version)
            .execute(&self.store.pool)
            .await?;
        Ok(())
    }

    /// Puts a build this node leases back in the queue, for any node to
    /// take at once: the node is shutting down. The attempt it made is not
    /// counted (an interrupted build fails after a few attempts).
    pub async fn release_build(self, strategy_id: &str, version: i64) -> Result<bool> {
        let released = sqlx::query(
            "UPDATE strategy_versions SET build_lease_until = NULL, compiling_since = NULL, \
             build_attempts = CASE WHEN build_attempts > 0 THEN build_attempts - 1 ELSE 0 END \
             WHERE strategy_id = $1 AND version = $2 AND status = 'building' AND build_lease_until IS NOT NULL",
        )
        .bind(strategy_id)
        .bind(version)
        .execute(&self.store.pool)
        .await?;
        Ok(released.rows_affected() > 0)
    }

    pub async fn claim_next_build(
        self,
        which: BuildClaim,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_tenant: i64,
    ) -> Result<Option<BuildJob>> {
        // Tenants at their share are left out in the query itself, so a
        // tenant with a long queue cannot hide another tenant's build
        // behind the candidates' limit.
        let under_share = "(SELECT COUNT(*) FROM strategy_versions r WHERE r.tenant_id = v.tenant_id \
             AND r.status = 'building' AND r.build_lease_until >= $1) < $2";
        let sql = match which {
            BuildClaim::Queued => format!(
                "SELECT strategy_id, version, build_lease_until FROM strategy_versions v \
                 WHERE status = 'building' AND build_lease_until IS NULL AND {under_share} \
                 ORDER BY created_at, strategy_id LIMIT 16"
            ),
            BuildClaim::Stale => format!(
                "SELECT strategy_id, version, build_lease_until FROM strategy_versions v \
                 WHERE status = 'building' AND build_lease_until < $1 AND {under_share} \
                 ORDER BY build_lease_until LIMIT 16"
            ),
        };
        let candidates = sqlx::query(&sql)
        .bind(micros(now))
        .bind(per_tenant)
        .fetch_all(&self.store.pool)
        .await?;
        for candidate in &candidates {
            let strategy_id: String = get(candidate, "strategy_id")?;
            let version: i64 = get(candidate, "version")?;
            let old_lease = get::<Option<i64>>(candidate, "build_lease_until")?.unwrap_or(0);
            let claimed = sqlx::query(
                "UPDATE strategy_versions SET build_lease_until = $1, build_attempts = build_attempts + 1, compiling_since = NULL \
                 WHERE strategy_id = $2 AND version = $3 AND status = 'building' AND COALESCE(build_lease_until, 0) = $4",
            )
            .bind(micros(until))
            .bind(&strategy_id)
            .bind(version)
            .bind(old_lease)
            .execute(&self.store.pool)
            .await?;
            if claimed.rows_affected() == 0 {
                continue; // another node won it
            }
            let row = sqlx::query(
                "SELECT tenant_id, origin, entry, sources, component, build_attempts FROM strategy_versions \
                 WHERE strategy_id = $1 AND version = $2",
            )
            .bind(&strategy_id)
            .bind(version)
            .fetch_one(&self.store.pool)
            .await?;
            let input = match get::<String>(&row, "origin")?.as_str() {
                "component" => OwnedVersionInput::Component(
                    get::<Option<Vec<u8>>>(&row, "component")?
                        .ok_or_else(|| StoreError::Corrupt(format!("{strategy_id} v{version} has no component")))?,
                ),
                _ => OwnedVersionInput::Source { entry: get(&row, "entry")?, sources: from_json(&get::<String>(&row, "sources")?)? },
            };
            return Ok(Some(BuildJob {
                tenant_id: get(&row, "tenant_id")?,
                strategy_id,
                version,
                attempts: get(&row, "build_attempts")?,
                input,
            }));
        }
        Ok(None)
    }

    pub async fn strategy(self, tenant_id: &str, id: &str) -> Result<StrategyView> {
        let row = sqlx::query("SELECT id, campaign_id, name, kind, latest_version, created_at FROM strategies WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("strategy"))?;
        let latest_version: i64 = get(&row, "latest_version")?;
        let latest = sqlx::query(
            "SELECT version, status, origin, error, entry, sources, created_at, build_lease_until, compiling_since \
             FROM strategy_versions WHERE strategy_id = $1 AND version = $2",
        )
        .bind(id)
        .bind(latest_version)
        .fetch_one(&self.store.pool)
        .await?;
        let mut latest_view = version(&latest)?;
        if latest_view.status == BuildStatus::Building {
            latest_view.phase = Some(match (get::<Option<i64>>(&latest, "build_lease_until")?, get::<Option<i64>>(&latest, "compiling_since")?) {
                (None, _) => BuildPhase::Queued,
                (Some(_), None) => BuildPhase::Building,
                (Some(_), Some(_)) => BuildPhase::Compiling,
            });
        }
        if latest_view.phase == Some(BuildPhase::Queued) {
            let created_at: i64 = get(&latest, "created_at")?;
            let ahead: i64 = sqlx::query(
                "SELECT COUNT(*) AS ahead FROM strategy_versions WHERE status = 'building' AND build_lease_until IS NULL \
                 AND (created_at < $1 OR (created_at = $1 AND strategy_id < $2))",
            )
            .bind(created_at)
            .bind(id)
            .fetch_one(&self.store.pool)
            .await
            .map(|row| get::<i64>(&row, "ahead"))??;
            latest_view.queue_position = Some(ahead + 1);
        }
        let active: Option<i64> = sqlx::query(
            "SELECT MAX(version) AS version FROM strategy_versions WHERE strategy_id = $1 AND status = 'ready'",
        )
        .bind(id)
        .fetch_one(&self.store.pool)
        .await
        .map(|row| get::<Option<i64>>(&row, "version"))??;
        let kind: String = get(&row, "kind")?;
        Ok(StrategyView {
            id: get(&row, "id")?,
            campaign_id: get(&row, "campaign_id")?,
            name: get(&row, "name")?,
            kind: StrategyType::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("kind {kind}")))?,
            latest: latest_view,
            active_version: active,
            created_at: from_micros(get(&row, "created_at")?)?,
        })
    }

    pub async fn list_strategies(self, tenant_id: &str, campaign_id: &str) -> Result<Vec<StrategyView>> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let ids = sqlx::query("SELECT id FROM strategies WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY created_at")
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_all(&self.store.pool)
            .await?;
        let mut views = Vec::with_capacity(ids.len());
        for row in &ids {
            views.push(self.strategy(tenant_id, &get::<String>(row, "id")?).await?);
        }
        Ok(views)
    }

    pub async fn delete_strategy(self, tenant_id: &str, id: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
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

    /// The component of the active version of a campaign's strategy of
    /// `kind`: (content hash, bytes).
    pub async fn active_component(
        self,
        tenant_id: &str,
        campaign_id: &str,
        kind: StrategyType,
    ) -> Result<Option<(String, Vec<u8>)>> {
        let row = sqlx::query(&format!("SELECT v.component_hash, v.component {ACTIVE_VERSION}"))
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(kind.as_str())
            .fetch_optional(&self.store.pool)
            .await?;
        row.map(|row| Ok((get(&row, "component_hash")?, get(&row, "component")?))).transpose()
    }
}

/// Whether a campaign's strategy of a kind can run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrategyState {
    /// Its active version: the newest ready one, by content hash (enough
    /// to find a strategy already loaded, without the component's bytes).
    Ready(String),
    /// No version is ready yet, and one is still building.
    Building,
    /// Every version failed to build; the newest with this error (as
    /// [`StrategyVersion::error`]).
    Failed(Option<BuildError>),
}

impl Strategies<'_> {
    /// The state of a campaign's strategy of `kind`, in one query (the
    /// engine asks on every tick); `None` when the campaign has none.
    pub async fn strategy_state(self, tenant_id: &str, campaign_id: &str, kind: StrategyType) -> Result<Option<StrategyState>> {
        let row = sqlx::query(
            "SELECT v.status, v.component_hash, v.error FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id \
             WHERE s.tenant_id = $1 AND s.campaign_id = $2 AND s.kind = $3 \
             ORDER BY CASE v.status WHEN 'ready' THEN 0 WHEN 'building' THEN 1 WHEN 'failed' THEN 2 ELSE 3 END, v.version DESC LIMIT 1",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(kind.as_str())
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(match build_status(&get::<String>(&row, "status")?)? {
            BuildStatus::Ready => StrategyState::Ready(get(&row, "component_hash")?),
            BuildStatus::Building => StrategyState::Building,
            BuildStatus::Failed | BuildStatus::Cancelled => StrategyState::Failed(get::<Option<String>>(&row, "error")?.map(|text| from_json(&text)).transpose()?),
        }))
    }
}

/// The active version of a campaign's strategy of a kind (`$1` tenant,
/// `$2` campaign, `$3` kind): its newest READY one.
const ACTIVE_VERSION: &str = "FROM strategy_versions v JOIN strategies s ON s.id = v.strategy_id \
     WHERE s.tenant_id = $1 AND s.campaign_id = $2 AND s.kind = $3 AND v.status = 'ready' \
     ORDER BY v.version DESC LIMIT 1";
