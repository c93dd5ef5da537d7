//! What a tenant may hold and use per day, set by the operator: per
//! tenant (`stratagem tenant quota`), else the node's default (`serve
//! --quota-…`). Going over is refused before anything is written, with a
//! `quota-exceeded` problem naming the quota, the use and the limit.
//!
//! The daily quotas (strategy fuel, outbound HTTP calls; UTC days) admit
//! work rather than cut it: an import that starts within them runs to its
//! end, AGGREGATION of a tenant past them waits (nothing planned is
//! dropped: planned communications still go out), and a conversation's
//! CONTACT_ANSWER is never refused. What the admitted work used counts.

use serde::{Deserialize, Serialize};

/// The limits in force; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Quotas {
    /// Contacts across the tenant's campaigns.
    pub contacts: Option<u64>,
    pub campaigns: Option<u64>,
    /// Strategy fuel per UTC day, over every hook.
    pub fuel_per_day: Option<u64>,
    /// Outbound HTTP calls of strategies per UTC day.
    pub http_calls_per_day: Option<u64>,
    /// MiB of the tenant's data: contacts, communications, strategy
    /// versions and kept invocations, without the database's overhead.
    pub storage_mib: Option<u64>,
}

impl Quotas {
    /// No limits (the default).
    pub const UNLIMITED: Quotas = Quotas { contacts: None, campaigns: None, fuel_per_day: None, http_calls_per_day: None, storage_mib: None };

    /// The limit a tenant's own setting gives: none set (`None`) is the
    /// default's, 0 is unlimited.
    pub fn effective(own: Option<i64>, default: Option<u64>) -> Option<u64> {
        match own {
            None => default,
            Some(limit) if limit <= 0 => None,
            Some(limit) => Some(limit as u64),
        }
    }
}

/// A refusal: `used` + `requested` would pass `limit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuotaExceeded {
    /// `contacts`, `campaigns`, `fuel_per_day`, `http_calls_per_day` or
    /// `storage_bytes` (the storage quota in bytes).
    pub quota: String,
    pub used: u64,
    pub requested: u64,
    pub limit: u64,
}

impl std::fmt::Display for QuotaExceeded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.quota.as_str() {
            "contacts" => write!(
                f,
                "the tenant's contacts quota is {}: it has {} (with imports in progress), and this file adds {} new ones; nothing was imported. \
                 Remove contacts, split the file, or ask the platform's operator to raise the quota",
                self.limit, self.used, self.requested
            ),
            "fuel_per_day" | "http_calls_per_day" => write!(
                f,
                "the tenant's quota of {} per UTC day is {}, and {} were used today; nothing was started. \
                 It renews at 00:00 UTC, or ask the platform's operator to raise the quota",
                if self.quota == "fuel_per_day" { "strategy fuel" } else { "outbound HTTP calls" },
                self.limit,
                self.used
            ),
            "storage_bytes" => write!(
                f,
                "the tenant's storage quota is {} MiB: it stores {:.1} MiB, and this adds {:.1} MiB; nothing was written. \
                 Delete campaigns or contacts it no longer needs, or ask the platform's operator to raise the quota",
                self.limit >> 20,
                self.used as f64 / 1048576.0,
                self.requested as f64 / 1048576.0
            ),
            quota => write!(
                f,
                "the tenant's {quota} quota is {}: it has {}; ask the platform's operator to raise the quota",
                self.limit, self.used
            ),
        }
    }
}
