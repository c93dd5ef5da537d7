//! AI agents of a tenant.

use chrono::Utc;
use sqlx::any::AnyRow;
use stratagem_domain::{Agent, AgentDefinition, AgentStatus};

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

const COLUMNS: &str = "id, definition, created_at, updated_at";

fn agent(row: &AnyRow) -> Result<Agent> {
    let definition: String = get(row, "definition")?;
    Ok(Agent {
        id: get(row, "id")?,
        definition: from_json(&definition)?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// The tenant's AI agents. Reached through [`Store::agents`].
#[derive(Clone, Copy)]
pub struct Agents<'a> {
    store: &'a Store,
}

impl Store {
    pub fn agents(&self) -> Agents<'_> {
        Agents { store: self }
    }
}

impl Agents<'_> {
    pub async fn create_agent(self, tenant_id: &str, definition: &AgentDefinition) -> Result<Agent> {
        let id = new_id("agt");
        sqlx::query(
            "INSERT INTO agents (id, tenant_id, status, definition, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(definition.status.as_str())
        .bind(to_json(definition)?)
        .bind(micros(Utc::now()))
        .execute(&self.store.pool)
        .await?;
        self.agent(tenant_id, &id).await
    }

    pub async fn agent(self, tenant_id: &str, id: &str) -> Result<Agent> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM agents WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("agent"))?;
        agent(&row)
    }

    pub async fn list_agents(self, tenant_id: &str, status: Option<AgentStatus>) -> Result<Vec<Agent>> {
        let query = match status {
            Some(_) => format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 AND status = $2 ORDER BY created_at DESC"),
            None => format!("SELECT {COLUMNS} FROM agents WHERE tenant_id = $1 ORDER BY created_at DESC"),
        };
        let mut query = sqlx::query(&query).bind(tenant_id);
        if let Some(status) = status {
            query = query.bind(status.as_str());
        }
        query.fetch_all(&self.store.pool).await?.iter().map(agent).collect()
    }

    pub async fn update_agent(self, tenant_id: &str, id: &str, definition: &AgentDefinition) -> Result<Agent> {
        let done = sqlx::query("UPDATE agents SET status = $1, definition = $2, updated_at = $3 WHERE id = $4 AND tenant_id = $5")
            .bind(definition.status.as_str())
            .bind(to_json(definition)?)
            .bind(micros(Utc::now()))
            .bind(id)
            .bind(tenant_id)
            .execute(&self.store.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        self.agent(tenant_id, id).await
    }

    pub async fn delete_agent(self, tenant_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM agents WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .execute(&self.store.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("agent"));
        }
        Ok(())
    }
}
