//! Contacts as the engine reads them: with the revision a write must match.

use std::collections::{HashMap, HashSet};

use sqlx::any::AnyRow;

use crate::communication_row::{communication, COMMUNICATION_COLUMNS};
use crate::contacts::{stored_contact, CONTACT_COLUMNS, ID_CHUNK};
use crate::{get, Result, StoreError, StoredContact};
use super::Dispatch;

/// A contact as the engine reads it: with the revision its update must match.
#[derive(Debug, Clone)]
pub struct ContactAtRevision {
    pub stored: StoredContact,
    pub revision: i64,
    /// Its communications that went out on a channel, by id.
    pub sent: Vec<String>,
}

impl Dispatch<'_> {
    /// Several contacts, each of its tenant (`(tenant_id, contact_id)`), as
    /// [`Dispatch::contact_at_revision`] reads one: two queries per 200 contacts
    /// instead of two per contact. Missing ones (deleted meanwhile, or not
    /// the tenant's) are absent from the map, keyed by contact id.
    pub async fn contacts_at_revision(self, contacts: &[(&str, &str)]) -> Result<HashMap<String, ContactAtRevision>> {
        let mut found = HashMap::with_capacity(contacts.len());
        for chunk in contacts.chunks(ID_CHUNK) {
            let list = (1..=chunk.len()).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ");
            let sql = format!("SELECT {CONTACT_COLUMNS}, revision, tenant_id FROM contacts WHERE id IN ({list})");
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let rows = query.fetch_all(&self.store.pool).await?;
            let sql = format!(
                "SELECT contact_id, channel, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id IN ({list}) ORDER BY contact_id, position"
            );
            let mut query = sqlx::query(&sql);
            for (_, id) in chunk {
                query = query.bind(*id);
            }
            let rows_of_communications = query.fetch_all(&self.store.pool).await?;
            let mut communications: HashMap<String, Vec<&AnyRow>> = HashMap::new();
            for row in &rows_of_communications {
                communications.entry(get(row, "contact_id")?).or_default().push(row);
            }
            let wanted: HashSet<(&str, &str)> = chunk.iter().copied().collect();
            for row in &rows {
                let id: String = get(row, "id")?;
                let tenant: String = get(row, "tenant_id")?;
                if !wanted.contains(&(tenant.as_str(), id.as_str())) {
                    continue;
                }
                let own = communications.remove(&id).unwrap_or_default();
                found.insert(id, contact_at_revision(row, &own)?);
            }
        }
        Ok(found)
    }

    pub async fn contact_at_revision(self, tenant_id: &str, contact_id: &str) -> Result<ContactAtRevision> {
        let row = sqlx::query(&format!("SELECT {CONTACT_COLUMNS}, revision FROM contacts WHERE id = $1 AND tenant_id = $2"))
            .bind(contact_id)
            .bind(tenant_id)
            .fetch_optional(&self.store.pool)
            .await?
            .ok_or(StoreError::NotFound("contact"))?;
        let communications = sqlx::query(&format!(
            "SELECT channel, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id = $1 ORDER BY position"
        ))
        .bind(contact_id)
        .fetch_all(&self.store.pool)
        .await?;
        contact_at_revision(&row, &communications.iter().collect::<Vec<_>>())
    }
}

/// A contact row (with `revision`) and its communications' rows (with
/// `channel`), in position order.
fn contact_at_revision(row: &AnyRow, communications: &[&AnyRow]) -> Result<ContactAtRevision> {
    let mut sent = Vec::new();
    for row in communications {
        if get::<Option<String>>(row, "channel")?.is_some() {
            sent.push(get(row, "id")?);
        }
    }
    Ok(ContactAtRevision {
        stored: stored_contact(row, communications.iter().map(|row| communication(row)).collect::<Result<_>>()?)?,
        revision: get(row, "revision")?,
        sent,
    })
}
