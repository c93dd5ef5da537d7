//! The campaign panel's numbers, read from rollup counters that triggers
//! keep exact in the transaction of every write to contacts and
//! communications (migration 0011): a panel read sums a few hundred
//! counter rows, not a campaign's million contacts.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::{get, micros, Result, Store};

/// The metrics overview of a campaign (`Overview`). The definitions are
/// the API's:
/// - processed: has a final result, or a communication whose session ended;
/// - completed: ResultFlag is true or false;
/// - successful: ResultFlag is true.
pub use stratagem_types::analytics::{AlternativeCount, Overview, StageCount};
use stratagem_types::analytics::{FAILURE_STATUSES, IN_DOUBT_SUFFIX};

/// What a distribution counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributionKey {
    /// Communications by stage name.
    Stage,
    /// Communications by status.
    Status,
    /// FAILED and IN_DOUBT communications by stage name, the IN_DOUBT ones
    /// under the name with [`IN_DOUBT_SUFFIX`].
    Failure,
}

/// Distributions are read in 15-minute slots (every time zone's offset is
/// a multiple of 15 minutes) and bucketed by the caller in local time.
pub const SLOT_MICROS: i64 = 15 * 60 * 1_000_000;

fn ratio(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// The figures of a campaign's Analytics tab. Reached through [`Store::analytics`].
#[derive(Clone, Copy)]
pub struct Analytics<'a> {
    store: &'a Store,
}

impl Store {
    pub fn analytics(&self) -> Analytics<'_> {
        Analytics { store: self }
    }
}

impl Analytics<'_> {
    /// The campaign's contacts, counted: the floor the panel's queries are
    /// measured against.
    pub async fn count_contacts(self, tenant_id: &str, campaign_id: &str) -> Result<i64> {
        let row = sqlx::query("SELECT COUNT(*) AS n FROM contacts WHERE tenant_id = $1 AND campaign_id = $2")
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_one(&self.store.pool)
            .await?;
        get(&row, "n")
    }

    pub async fn campaign_overview(self, tenant_id: &str, campaign_id: &str) -> Result<Overview> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        // The contact counters per stage give the stages and, summed, the
        // totals; shards and flag states are summed away here.
        let rows = sqlx::query(
            "SELECT staged, stage, CAST(SUM(contacts) AS BIGINT) AS contacts, \
               CAST(SUM(CASE WHEN result >= 0 THEN contacts ELSE 0 END) AS BIGINT) AS completed, \
               CAST(SUM(CASE WHEN result = 1 THEN contacts ELSE 0 END) AS BIGINT) AS successful, \
               CAST(SUM(CASE WHEN result >= 0 OR session = 1 THEN contacts ELSE 0 END) AS BIGINT) AS processed \
             FROM contact_rollups WHERE tenant_id = $1 AND campaign_id = $2 \
             GROUP BY staged, stage HAVING SUM(contacts) <> 0",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.store.pool)
        .await?;
        let (mut total, mut processed, mut completed, mut successful) = (0, 0, 0, 0);
        let mut by_stage = Vec::with_capacity(rows.len());
        for row in &rows {
            let contacts: i64 = get(row, "contacts")?;
            let stage_successful: i64 = get(row, "successful")?;
            total += contacts;
            processed += get::<i64>(row, "processed")?;
            completed += get::<i64>(row, "completed")?;
            successful += stage_successful;
            let stage = (get::<i64>(row, "staged")? != 0).then(|| get::<String>(row, "stage")).transpose()?;
            by_stage.push(StageCount { stage, contacts, successful: stage_successful });
        }
        by_stage.sort_by(|a, b| b.contacts.cmp(&a.contacts).then_with(|| a.stage.cmp(&b.stage)));
        let by_alternative = sqlx::query(
            "SELECT stage_name, alternative, CAST(SUM(communications) AS BIGINT) AS communications, \
               CAST(SUM(successful) AS BIGINT) AS successful \
             FROM alternative_rollups WHERE tenant_id = $1 AND campaign_id = $2 \
             GROUP BY stage_name, alternative HAVING SUM(communications) <> 0 ORDER BY stage_name, alternative",
        )
        .bind(tenant_id)
        .bind(campaign_id)
        .fetch_all(&self.store.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(AlternativeCount {
                stage: get(row, "stage_name")?,
                label: get(row, "alternative")?,
                communications: get(row, "communications")?,
                successful: get(row, "successful")?,
            })
        })
        .collect::<Result<_>>()?;
        Ok(Overview {
            total_contacts: total,
            processed_contacts: processed,
            completed_contacts: completed,
            successful_contacts: successful,
            completion_rate: ratio(completed, total),
            success_rate: ratio(successful, completed),
            by_stage,
            by_alternative,
        })
    }

    /// Communications starting in `[from, to)`, counted by stage, status or
    /// failure per 15-minute slot (its start, UTC).
    pub async fn communication_slots(
        self,
        tenant_id: &str,
        campaign_id: &str,
        key: DistributionKey,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<(DateTime<Utc>, String, i64)>> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        // The key's columns (selected, grouped by), and which
        // communications count.
        let (column, group, only) = match key {
            DistributionKey::Stage => ("stage_name AS key", "stage_name", String::new()),
            DistributionKey::Status => ("status AS key", "status", String::new()),
            DistributionKey::Failure => (
                "stage_name AS key, status",
                "stage_name, status",
                format!(" AND status IN ({})", FAILURE_STATUSES.map(|status| format!("'{status}'")).join(", ")),
            ),
        };
        let (from, to) = (micros(from), micros(to));
        // Slots wholly inside [from, to) are read from the slot counters.
        // The range's ends when they are not on a slot boundary, and the
        // slots at and before the epoch (the division truncates toward
        // zero, so slot 0 spans both sides of it), are counted in the
        // communications themselves: a short index range each.
        let first = from.max(SLOT_MICROS).div_euclid(SLOT_MICROS) + i64::from(from.max(SLOT_MICROS).rem_euclid(SLOT_MICROS) != 0);
        let last = to.div_euclid(SLOT_MICROS);
        let mut rows = Vec::new();
        let edges = if first < last {
            rows.extend(
                sqlx::query(&format!(
                    "SELECT slot, {column}, CAST(SUM(communications) AS BIGINT) AS n FROM slot_rollups \
                     WHERE tenant_id = $1 AND campaign_id = $2 AND slot >= $3 AND slot < $4 {only} \
                     GROUP BY slot, {group} HAVING SUM(communications) <> 0"
                ))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(first)
                .bind(last)
                .fetch_all(&self.store.pool)
                .await?,
            );
            vec![(from, first * SLOT_MICROS), (last * SLOT_MICROS, to)]
        } else {
            vec![(from, to)]
        };
        for (start, end) in edges.into_iter().filter(|(start, end)| start < end) {
            rows.extend(
                sqlx::query(&format!(
                    "SELECT (start_date / {SLOT_MICROS}) AS slot, {column}, COUNT(*) AS n FROM communications \
                     WHERE tenant_id = $1 AND campaign_id = $2 AND start_date >= $3 AND start_date < $4 {only} \
                     GROUP BY (start_date / {SLOT_MICROS}), {group}"
                ))
                .bind(tenant_id)
                .bind(campaign_id)
                .bind(start)
                .bind(end)
                .fetch_all(&self.store.pool)
                .await?,
            );
        }
        let mut slots = BTreeMap::new();
        for row in &rows {
            let slot: i64 = get(row, "slot")?;
            let start = crate::from_micros(slot * SLOT_MICROS)?;
            let mut name: String = get(row, "key")?;
            if key == DistributionKey::Failure && get::<String>(row, "status")? == "IN_DOUBT" {
                name.push_str(IN_DOUBT_SUFFIX);
            }
            *slots.entry((start, name)).or_insert(0) += get::<i64>(row, "n")?;
        }
        Ok(slots.into_iter().map(|((start, key), n)| (start, key, n)).collect())
    }
}
