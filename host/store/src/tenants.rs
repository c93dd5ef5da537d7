//! Tenants and their API keys. A key is `stg_<key id>_<secret>`: the id
//! finds the row, the secret is compared by SHA-256 in constant time. The
//! secret itself is never stored and is shown once, at creation.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{from_micros, get, micros, new_id, Result, Store, StoreError};

const KEY_PREFIX: &str = "stg";

#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new key: `key` is the only time the secret is visible.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub info: ApiKey,
    pub key: String,
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

impl Store {
    /// Creates a tenant and its first API key.
    pub async fn create_tenant(&self, name: &str) -> Result<(String, CreatedKey)> {
        let id = new_id("ten");
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(name)
            .bind(micros(Utc::now()))
            .execute(&self.pool)
            .await?;
        let key = self.create_api_key(&id, "first key").await?;
        Ok((id, key))
    }

    pub async fn create_api_key(&self, tenant_id: &str, name: &str) -> Result<CreatedKey> {
        let id = new_id("key");
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = Utc::now();
        sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(secret_hash(&secret))
        .bind(micros(now))
        .execute(&self.pool)
        .await?;
        let key = format!("{KEY_PREFIX}_{}_{secret}", id.trim_start_matches("key_"));
        Ok(CreatedKey { info: ApiKey { id, name: name.into(), created_at: now, revoked_at: None }, key })
    }

    /// The tenant a presented key belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, presented: &str) -> Result<Option<String>> {
        let mut parts = presented.splitn(3, '_');
        let (Some(KEY_PREFIX), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(None);
        };
        let row = sqlx::query("SELECT tenant_id, secret_hash FROM api_keys WHERE id = $1 AND revoked_at IS NULL")
            .bind(format!("key_{id}"))
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let stored: String = get(&row, "secret_hash")?;
        let matches: bool = secret_hash(secret).as_bytes().ct_eq(stored.as_bytes()).into();
        Ok(if matches { Some(get(&row, "tenant_id")?) } else { None })
    }

    pub async fn list_api_keys(&self, tenant_id: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at",
        )
        .bind(tenant_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ApiKey {
                    id: get(row, "id")?,
                    name: get(row, "name")?,
                    created_at: from_micros(get(row, "created_at")?)?,
                    revoked_at: get::<Option<i64>>(row, "revoked_at")?.map(from_micros).transpose()?,
                })
            })
            .collect()
    }

    pub async fn revoke_api_key(&self, tenant_id: &str, key_id: &str) -> Result<()> {
        let done = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL")
            .bind(micros(Utc::now()))
            .bind(key_id)
            .bind(tenant_id)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("api key"));
        }
        Ok(())
    }
}
