//! What a tenant may hold, set by the operator: per tenant
//! (`stratagem tenant quota`), else the node's default (`serve
//! --quota-…`). Going over is refused before anything is written, with a
//! `quota-exceeded` problem naming the quota, the use and the limit.

use serde::{Deserialize, Serialize};

/// The limits in force; `None` is unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Quotas {
    /// Contacts across the tenant's campaigns.
    pub contacts: Option<u64>,
    pub campaigns: Option<u64>,
}

impl Quotas {
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
    /// `contacts` or `campaigns`.
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
            quota => write!(
                f,
                "the tenant's {quota} quota is {}: it has {}; ask the platform's operator to raise the quota",
                self.limit, self.used
            ),
        }
    }
}
