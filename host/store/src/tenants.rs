//! Tenants and their API keys. A key is `stg_<key id>_<secret>`: the id
//! finds the row, the secret is compared by SHA-256 in constant time. The
//! secret itself is never stored and is shown once, at creation.
//!
//! The operator disables a tenant (its keys are refused until it is
//! enabled again) or deletes it: a deleted tenant's keys are revoked, its
//! running campaigns and analyses stopped, and its rows kept — nothing is
//! erased, so a mistaken delete loses no customer data.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{from_micros, get, micros, new_id, Backend, Result, Store, StoreError};

const KEY_PREFIX: &str = "stg";

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for CreatedKey {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        let own = ObjectBuilder::new()
            .property("key", ObjectBuilder::new().schema_type(Type::String).description(Some("the secret: send it as `Authorization: Bearer …`")))
            .required("key");
        stratagem_domain::openapi::into_schema(stratagem_domain::openapi::extended(<ApiKey as utoipa::PartialSchema>::schema(), own.build()))
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for CreatedKey {}

/// What a presented key is worth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// A valid key of an active tenant.
    Tenant(String),
    /// A valid key of a tenant the operator disabled.
    TenantDisabled(String),
    /// Malformed, unknown, revoked, wrong secret, or of a deleted tenant.
    Refused,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TenantStatus {
    Active,
    Disabled,
    Deleted,
}

impl TenantStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TenantStatus::Active => "active",
            TenantStatus::Disabled => "disabled",
            TenantStatus::Deleted => "deleted",
        }
    }
}

/// A tenant as the operator sees it.
#[derive(Debug, Clone, Serialize)]
pub struct TenantInfo {
    pub id: String,
    pub name: String,
    pub status: TenantStatus,
    /// Keys not revoked.
    pub active_keys: i64,
    pub created_at: DateTime<Utc>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// What deleting a tenant stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeletedTenant {
    pub revoked_keys: u64,
    pub stopped_campaigns: u64,
    pub stopped_analyses: u64,
}

const TENANT_COLUMNS: &str = "t.id, t.name, t.created_at, t.disabled_at, t.deleted_at, \
     (SELECT COUNT(*) FROM api_keys k WHERE k.tenant_id = t.id AND k.revoked_at IS NULL) AS active_keys";

fn tenant_info(row: &sqlx::any::AnyRow) -> Result<TenantInfo> {
    let disabled_at = get::<Option<i64>>(row, "disabled_at")?.map(from_micros).transpose()?;
    let deleted_at = get::<Option<i64>>(row, "deleted_at")?.map(from_micros).transpose()?;
    Ok(TenantInfo {
        id: get(row, "id")?,
        name: get(row, "name")?,
        status: match (deleted_at, disabled_at) {
            (Some(_), _) => TenantStatus::Deleted,
            (None, Some(_)) => TenantStatus::Disabled,
            (None, None) => TenantStatus::Active,
        },
        active_keys: get(row, "active_keys")?,
        created_at: from_micros(get(row, "created_at")?)?,
        disabled_at,
        deleted_at,
    })
}

fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Tenants and their API keys. Reached through [`Store::tenants`].
#[derive(Clone, Copy)]
pub struct Tenants<'a> {
    pub(crate) store: &'a Store,
}

impl Store {
    pub fn tenants(&self) -> Tenants<'_> {
        Tenants { store: self }
    }
}

impl Tenants<'_> {
    /// Creates a tenant and its first API key.
    pub async fn create_tenant(self, name: &str) -> Result<(String, CreatedKey)> {
        let id = new_id("ten");
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(&id)
            .bind(name)
            .bind(micros(Utc::now()))
            .execute(&self.store.pool)
            .await?;
        let key = self.create_api_key(&id, "first key").await?;
        Ok((id, key))
    }

    /// A new key of a tenant that is not deleted (`NotFound` otherwise).
    pub async fn create_api_key(self, tenant_id: &str, name: &str) -> Result<CreatedKey> {
        let id = new_id("key");
        let secret = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let now = Utc::now();
        let done = sqlx::query(
            "INSERT INTO api_keys (id, tenant_id, name, secret_hash, created_at) \
             SELECT $1, $2, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM tenants WHERE id = $2 AND deleted_at IS NULL)",
        )
        .bind(&id)
        .bind(tenant_id)
        .bind(name)
        .bind(secret_hash(&secret))
        .bind(micros(now))
        .execute(&self.store.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound("tenant"));
        }
        let key = format!("{KEY_PREFIX}_{}_{secret}", id.trim_start_matches("key_"));
        Ok(CreatedKey { info: ApiKey { id, name: name.into(), created_at: now, revoked_at: None }, key })
    }

    /// The tenant a presented key belongs to, if the key is valid and not
    /// revoked and its tenant is active.
    pub async fn authenticate(self, presented: &str) -> Result<Option<String>> {
        Ok(match self.check_api_key(presented).await? {
            KeyCheck::Tenant(tenant) => Some(tenant),
            KeyCheck::TenantDisabled(_) | KeyCheck::Refused => None,
        })
    }

    /// Checks a presented key and the state of its tenant, read now: a
    /// tenant disabled or deleted a moment ago is refused from the next
    /// request on. The tenant's state is told only once the secret matched.
    pub async fn check_api_key(self, presented: &str) -> Result<KeyCheck> {
        let mut parts = presented.splitn(3, '_');
        let (Some(KEY_PREFIX), Some(id), Some(secret)) = (parts.next(), parts.next(), parts.next()) else {
            return Ok(KeyCheck::Refused);
        };
        let row = sqlx::query(
            "SELECT k.tenant_id, k.secret_hash, t.disabled_at, t.deleted_at FROM api_keys k \
             JOIN tenants t ON t.id = k.tenant_id WHERE k.id = $1 AND k.revoked_at IS NULL",
        )
        .bind(format!("key_{id}"))
        .fetch_optional(&self.store.pool)
        .await?;
        let Some(row) = row else { return Ok(KeyCheck::Refused) };
        let stored: String = get(&row, "secret_hash")?;
        let matches: bool = secret_hash(secret).as_bytes().ct_eq(stored.as_bytes()).into();
        if !matches || get::<Option<i64>>(&row, "deleted_at")?.is_some() {
            return Ok(KeyCheck::Refused);
        }
        let tenant: String = get(&row, "tenant_id")?;
        Ok(match get::<Option<i64>>(&row, "disabled_at")? {
            Some(_) => KeyCheck::TenantDisabled(tenant),
            None => KeyCheck::Tenant(tenant),
        })
    }

    pub async fn list_api_keys(self, tenant_id: &str) -> Result<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, name, created_at, revoked_at FROM api_keys WHERE tenant_id = $1 ORDER BY created_at",
        )
        .bind(tenant_id)
        .fetch_all(&self.store.pool)
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

    /// Revokes one of the tenant's active keys; `LastApiKey` when it is
    /// the only one, which would lock the tenant out. The tenant's row is
    /// locked first, so two revocations at once cannot each leave the
    /// other's key as the last one and both go ahead.
    pub async fn revoke_api_key(self, tenant_id: &str, key_id: &str) -> Result<()> {
        let mut tx = self.store.begin_write().await?;
        self.lock_tenant(&mut tx, tenant_id).await?;
        let active: Vec<String> = sqlx::query("SELECT id FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL")
            .bind(tenant_id)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| get(row, "id"))
            .collect::<Result<_>>()?;
        if !active.iter().any(|id| id == key_id) {
            return Err(StoreError::NotFound("api key"));
        }
        if active.len() == 1 {
            return Err(StoreError::LastApiKey);
        }
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3 AND revoked_at IS NULL")
            .bind(micros(Utc::now()))
            .bind(key_id)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Holds the tenant's row until the transaction ends (SQLite's write
    /// transaction holds the whole database already).
    pub(crate) async fn lock_tenant(self, tx: &mut sqlx::Transaction<'static, sqlx::Any>, tenant_id: &str) -> Result<()> {
        let sql = match self.store.backend {
            Backend::Postgres => "SELECT id FROM tenants WHERE id = $1 FOR UPDATE",
            Backend::Sqlite => "SELECT id FROM tenants WHERE id = $1",
        };
        sqlx::query(sql).bind(tenant_id).fetch_optional(&mut **tx).await?.ok_or(StoreError::NotFound("tenant"))?;
        Ok(())
    }

    /// Every tenant, deleted ones too, oldest first.
    pub async fn list_tenants(self) -> Result<Vec<TenantInfo>> {
        let rows = sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants t ORDER BY t.created_at, t.id"))
            .fetch_all(&self.store.pool)
            .await?;
        rows.iter().map(tenant_info).collect()
    }

    /// The tenants `reference` names: the one with that id, else those not
    /// deleted with that name (several when the name is ambiguous).
    pub async fn find_tenants(self, reference: &str) -> Result<Vec<TenantInfo>> {
        let by_id = sqlx::query(&format!("SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.id = $1"))
            .bind(reference)
            .fetch_optional(&self.store.pool)
            .await?;
        if let Some(row) = by_id {
            return Ok(vec![tenant_info(&row)?]);
        }
        let rows = sqlx::query(&format!(
            "SELECT {TENANT_COLUMNS} FROM tenants t WHERE t.name = $1 AND t.deleted_at IS NULL ORDER BY t.created_at, t.id"
        ))
        .bind(reference)
        .fetch_all(&self.store.pool)
        .await?;
        rows.iter().map(tenant_info).collect()
    }

    /// Disables (`true`) or enables a tenant; returns whether its state
    /// changed. `Conflict` for a deleted tenant, which stays deleted.
    pub async fn set_tenant_disabled(self, tenant_id: &str, disabled: bool) -> Result<bool> {
        let mut tx = self.store.begin_write().await?;
        self.lock_tenant(&mut tx, tenant_id).await?;
        let row = sqlx::query("SELECT disabled_at, deleted_at FROM tenants WHERE id = $1").bind(tenant_id).fetch_one(&mut *tx).await?;
        if get::<Option<i64>>(&row, "deleted_at")?.is_some() {
            return Err(StoreError::Conflict("the tenant is deleted; a deleted tenant cannot be enabled or disabled".into()));
        }
        if get::<Option<i64>>(&row, "disabled_at")?.is_some() == disabled {
            return Ok(false);
        }
        sqlx::query("UPDATE tenants SET disabled_at = $1 WHERE id = $2")
            .bind(disabled.then(|| micros(Utc::now())))
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a tenant deleted, in one transaction: every key revoked, every
    /// RUNNING campaign STOPPED (the engine sends nothing more for it) and
    /// every Deep Analysis run in progress STOPPED. Its data is kept.
    /// `Conflict` when it is deleted already.
    pub async fn delete_tenant(self, tenant_id: &str) -> Result<DeletedTenant> {
        let now = micros(Utc::now());
        let mut tx = self.store.begin_write().await?;
        self.lock_tenant(&mut tx, tenant_id).await?;
        let done = sqlx::query("UPDATE tenants SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
            .bind(now)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::Conflict("the tenant is deleted already".into()));
        }
        let revoked = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE tenant_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let campaigns = sqlx::query("UPDATE campaigns SET status = 'STOPPED', updated_at = $1 WHERE tenant_id = $2 AND status = 'RUNNING'")
            .bind(now)
            .bind(tenant_id)
            .execute(&mut *tx)
            .await?;
        let analyses = sqlx::query(
            "UPDATE analysis_runs SET status = 'STOPPED', finished_at = $1, updated_at = $1, lease_until = NULL \
             WHERE tenant_id = $2 AND status = 'PROGRESS'",
        )
        .bind(now)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(DeletedTenant {
            revoked_keys: revoked.rows_affected(),
            stopped_campaigns: campaigns.rows_affected(),
            stopped_analyses: analyses.rows_affected(),
        })
    }
}
