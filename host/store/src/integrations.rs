//! Integrations of a tenant. Secrets are sealed before they reach the
//! database and leave the store only through [`Integrations::integration_secrets`],
//! which the channel adapters use and the API never calls.

use chrono::Utc;
use sqlx::any::AnyRow;
use stratagem_domain::{Integration, IntegrationKind, JsonMap};

use crate::{from_json, from_micros, get, micros, new_id, to_json, Result, Store, StoreError};

const COLUMNS: &str = "id, kind, name, settings, secret_names, created_at, updated_at";

fn integration(row: &AnyRow) -> Result<Integration> {
    let kind: String = get(row, "kind")?;
    let settings: String = get(row, "settings")?;
    let secret_names: String = get(row, "secret_names")?;
    Ok(Integration {
        id: get(row, "id")?,
        kind: IntegrationKind::parse(&kind).ok_or_else(|| StoreError::Corrupt(format!("integration kind {kind}")))?,
        name: get(row, "name")?,
        settings: from_json(&settings)?,
        secrets_set: from_json(&secret_names)?,
        // The public URL is the service's to know (`stratagem_api`).
        webhook_url: None,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// What is sealed is bound to its row: a sealed value copied to another
/// row or tenant does not open.
fn context(tenant_id: &str, id: &str) -> String {
    format!("stratagem/integration/{tenant_id}/{id}")
}

pub struct IntegrationChanges<'a> {
    pub name: &'a str,
    pub settings: &'a JsonMap,
    /// New secret values; secrets not named here keep their value.
    pub secrets: &'a JsonMap,
}

/// Provider integrations and their encrypted secrets. Reached through [`Store::integrations`].
#[derive(Clone, Copy)]
pub struct Integrations<'a> {
    store: &'a Store,
}

impl Store {
    pub fn integrations(&self) -> Integrations<'_> {
        Integrations { store: self }
    }
}

impl<'a> Integrations<'a> {
    fn secrets_key(self) -> Result<&'a crate::SecretsKey> {
        self.store.secrets.as_ref().ok_or_else(|| {
            StoreError::Corrupt("no secrets key is configured (set STRATAGEM_SECRETS_KEY or let `serve` create one)".into())
        })
    }

    pub async fn create_integration(
        self,
        tenant_id: &str,
        kind: IntegrationKind,
        changes: IntegrationChanges<'_>,
    ) -> Result<Integration> {
        let id = new_id("int");
        let sealed = self.secrets_key()?.seal(&context(tenant_id, &id), to_json(changes.secrets)?.as_bytes())?;
        let names: Vec<&String> = changes.secrets.keys().collect();
        sqlx::query(
            "INSERT INTO integrations (id, tenant_id, kind, name, settings, secret_names, secrets, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(kind.as_str())
        .bind(changes.name)
        .bind(to_json(changes.settings)?)
        .bind(to_json(&names)?)
        .bind(sealed)
        .bind(micros(Utc::now()))
        .execute(&self.store.pool)
        .await?;
        self.integration(tenant_id, &id).await
    }

    pub async fn integration(self, tenant_id: &str, id: &str) -> Result<Integration> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM integrations WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("integration"))?;
        integration(&row)
    }

    pub async fn list_integrations(self, tenant_id: &str) -> Result<Vec<Integration>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM integrations WHERE tenant_id = $1 ORDER BY created_at DESC"))
            .bind(tenant_id)
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter().map(integration).collect()
    }

    /// The secret values, for the adapter that talks to the provider.
    pub async fn integration_secrets(self, tenant_id: &str, id: &str) -> Result<JsonMap> {
        let row = sqlx::query("SELECT secrets FROM integrations WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("integration"))?;
        let sealed: String = get(&row, "secrets")?;
        let json = self.secrets_key()?.open(&context(tenant_id, id), &sealed)?;
        serde_json::from_slice(&json).map_err(|error| StoreError::Corrupt(format!("integration secrets: {error}")))
    }

    /// An integration found by id alone, with its tenant and secret values:
    /// for provider webhooks, which name the integration in their URL and
    /// carry no API key. Only a verified signature may act on what this
    /// returns.
    pub async fn integration_account(self, integration_id: &str) -> Result<(String, Integration, JsonMap)> {
        let row = sqlx::query(&format!("SELECT tenant_id, secrets, {COLUMNS} FROM integrations WHERE id = $1"))
            .bind(integration_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("integration"))?;
        let tenant_id: String = get(&row, "tenant_id")?;
        let sealed: String = get(&row, "secrets")?;
        let json = self.secrets_key()?.open(&context(&tenant_id, integration_id), &sealed)?;
        let secrets = serde_json::from_slice(&json).map_err(|error| StoreError::Corrupt(format!("integration secrets: {error}")))?;
        Ok((tenant_id, integration(&row)?, secrets))
    }

    /// Replaces name and settings and merges the given secrets over the
    /// stored ones, in one transaction so a concurrent update is not lost.
    pub async fn update_integration(self, tenant_id: &str, id: &str, changes: IntegrationChanges<'_>) -> Result<Integration> {
        let mut transaction = self.store.begin_write().await?;
        let row = sqlx::query("SELECT secrets FROM integrations WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(&mut *transaction)
            .await?
            .ok_or(StoreError::NotFound("integration"))?;
        let sealed: String = get(&row, "secrets")?;
        let key = self.secrets_key()?;
        let mut secrets: JsonMap = serde_json::from_slice(&key.open(&context(tenant_id, id), &sealed)?)
            .map_err(|error| StoreError::Corrupt(format!("integration secrets: {error}")))?;
        secrets.extend(changes.secrets.clone());
        let names: Vec<&String> = secrets.keys().collect();
        sqlx::query(
            "UPDATE integrations SET name = $1, settings = $2, secret_names = $3, secrets = $4, updated_at = $5 \
             WHERE id = $6 AND tenant_id = $7",
        )
        .bind(changes.name)
        .bind(to_json(changes.settings)?)
        .bind(to_json(&names)?)
        .bind(key.seal(&context(tenant_id, id), to_json(&secrets)?.as_bytes())?)
        .bind(micros(Utc::now()))
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        self.integration(tenant_id, id).await
    }

    pub async fn delete_integration(self, tenant_id: &str, id: &str) -> Result<()> {
        let done = sqlx::query("DELETE FROM integrations WHERE id = $1 AND tenant_id = $2")
            .bind(id)
            .bind(tenant_id)
            .execute(&self.store.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("integration"));
        }
        Ok(())
    }
}
