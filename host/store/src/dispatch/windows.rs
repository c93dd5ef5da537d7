//! Per-second send budgets of a tenant's channels (`send_windows`).

use crate::{get, Result};
use super::Dispatch;

impl Dispatch<'_> {
    /// Takes one send of `channel`'s budget for the tenant in the given
    /// second (Unix time); `false` when `limit` sends were already taken.
    pub async fn take_send_slot(self, tenant_id: &str, channel: &str, second: i64, limit: u32) -> Result<bool> {
        let row = sqlx::query(
            "INSERT INTO send_windows (tenant_id, channel, second, sends) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (tenant_id, channel, second) DO UPDATE SET sends = send_windows.sends + 1 RETURNING sends",
        )
        .bind(tenant_id)
        .bind(channel)
        .bind(second)
        .fetch_one(&self.store.pool)
        .await?;
        Ok(get::<i64>(&row, "sends")? <= i64::from(limit))
    }

    /// The most sends a tenant's send log has in one second.
    pub async fn busiest_send_second(self, tenant_id: &str) -> Result<i64> {
        let row = sqlx::query(
            "SELECT COALESCE(MAX(n), 0) AS busiest FROM (SELECT COUNT(*) AS n FROM channel_sends WHERE tenant_id = $1 \
             GROUP BY created_at / 1000000) AS seconds",
        )
        .bind(tenant_id)
        .fetch_one(&self.store.pool)
        .await?;
        get(&row, "busiest")
    }

    pub async fn prune_send_windows(self, before_second: i64) -> Result<()> {
        sqlx::query("DELETE FROM send_windows WHERE second < $1").bind(before_second).execute(&self.store.pool).await?;
        Ok(())
    }
}
