//! Stages of a campaign, in the order of the Stages tab.

use chrono::Utc;
use sqlx::any::AnyRow;
use stratagem_domain::{Stage, StageDefinition};

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

const COLUMNS: &str = "id, campaign_id, position, definition, created_at, updated_at";

fn stage(row: &AnyRow) -> Result<Stage> {
    let definition: String = get(row, "definition")?;
    Ok(Stage {
        id: get(row, "id")?,
        campaign_id: get(row, "campaign_id")?,
        position: get(row, "position")?,
        definition: from_json(&definition)?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// A unique-index violation on the stage name, told apart from other
/// database errors so the API can answer 409.
fn name_taken(error: sqlx::Error, name: &str) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::Conflict(format!("this campaign already has a stage named `{name}`; stage names must be unique"))
        }
        _ => error.into(),
    }
}

/// A campaign's stages. Reached through [`Store::stages`].
#[derive(Clone, Copy)]
pub struct Stages<'a> {
    store: &'a Store,
}

impl Store {
    pub fn stages(&self) -> Stages<'_> {
        Stages { store: self }
    }
}

impl Stages<'_> {
    /// Appends a stage to the campaign (which must be the tenant's).
    pub async fn create_stage(self, tenant_id: &str, campaign_id: &str, definition: &StageDefinition) -> Result<Stage> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let id = new_id("stg");
        let now = micros(Utc::now());
        let name = definition.name.trim();
        sqlx::query(
            "INSERT INTO stages (id, tenant_id, campaign_id, position, name, definition, created_at, updated_at) \
             SELECT $1, $2, $3, COALESCE(MAX(position), 0) + 1, $4, $5, $6, $6 FROM stages WHERE tenant_id = $2 AND campaign_id = $3",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(name)
        .bind(to_json(definition)?)
        .bind(now)
        .execute(&self.store.pool)
        .await
        .map_err(|error| name_taken(error, name))?;
        self.stage(tenant_id, &id).await
    }

    pub async fn stage(self, tenant_id: &str, id: &str) -> Result<Stage> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM stages WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("stage"))?;
        stage(&row)
    }

    pub async fn list_stages(self, tenant_id: &str, campaign_id: &str) -> Result<Vec<Stage>> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM stages WHERE tenant_id = $1 AND campaign_id = $2 ORDER BY position"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(stage).collect()
    }

    /// Every stage of the tenant, for reference checks (which stages use
    /// an agent or an integration).
    pub async fn tenant_stages(self, tenant_id: &str) -> Result<Vec<Stage>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM stages WHERE tenant_id = $1 ORDER BY campaign_id, position"))
            .bind(tenant_id)
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter().map(stage).collect()
    }

    pub async fn update_stage(self, tenant_id: &str, id: &str, definition: &StageDefinition) -> Result<Stage> {
        let name = definition.name.trim();
        let done = sqlx::query("UPDATE stages SET name = $1, definition = $2, updated_at = $3 WHERE id = $4 AND tenant_id = $5")
            .bind(name)
            .bind(to_json(definition)?)
            .bind(micros(Utc::now()))
            .bind(id)
            .bind(tenant_id)
            .execute(&self.store.pool)
            .await
            .map_err(|error| name_taken(error, name))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("stage"));
        }
        self.stage(tenant_id, id).await
    }

    /// Deletes a stage. Communications planned on it would have nowhere to
    /// go: while any is PLANNED the delete is refused, unless
    /// `cancel_planned`, which cancels them (with why) in the same
    /// transaction; one IN_PROGRESS always refuses it.
    pub async fn delete_stage(self, tenant_id: &str, id: &str, cancel_planned: bool) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM stages WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or(StoreError::NotFound("stage"))?;
        let stage = stage(&row)?;
        let name = &stage.definition.name;
        let counts = sqlx::query(
            "SELECT status, COUNT(*) AS n FROM communications WHERE tenant_id = $1 AND campaign_id = $2 AND stage_name = $3 \
             AND status IN ('PLANNED', 'IN_PROGRESS') GROUP BY status",
        )
        .bind(tenant_id)
        .bind(&stage.campaign_id)
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        let count = |status: &str| -> Result<i64> {
            for row in &counts {
                if get::<String>(row, "status")? == status {
                    return get(row, "n");
                }
            }
            Ok(0)
        };
        let (planned, in_progress) = (count("PLANNED")?, count("IN_PROGRESS")?);
        if in_progress > 0 {
            return Err(StoreError::Conflict(format!(
                "stage `{name}` has {in_progress} communication(s) in progress; delete it once they have ended"
            )));
        }
        if planned > 0 && !cancel_planned {
            return Err(StoreError::Conflict(format!(
                "stage `{name}` has {planned} planned communication(s); delete it with ?cancel_planned=true to cancel them, \
                 or change the strategies that plan them first"
            )));
        }
        if planned > 0 {
            let now = micros(Utc::now());
            // The engine writes a contact only at the revision it read: one
            // computed before this cancel is computed again.
            sqlx::query(
                "UPDATE contacts SET revision = revision + 1 WHERE id IN (SELECT contact_id FROM communications \
                 WHERE tenant_id = $1 AND campaign_id = $2 AND stage_name = $3 AND status = 'PLANNED')",
            )
            .bind(tenant_id)
            .bind(&stage.campaign_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "UPDATE communications SET status = 'CANCELLED', status_detail = $1, status_updated_at = $2 \
                 WHERE tenant_id = $3 AND campaign_id = $4 AND stage_name = $5 AND status = 'PLANNED'",
            )
            .bind(format!("its stage `{name}` was deleted"))
            .bind(now)
            .bind(tenant_id)
            .bind(&stage.campaign_id)
            .bind(name)
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query("DELETE FROM stages WHERE id = $1 AND tenant_id = $2").bind(id).bind(tenant_id).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
