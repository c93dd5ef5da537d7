//! Writing strategies' contacts that are still at the revision each saw,
//! with their communications, a few multi-row statements per batch.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use stratagem_domain::{Communication, Contact};

use super::column_params;
use crate::communication_row::{bind_fields, prefixed, AnyQuery, FIELD_COLUMNS, FIELD_COUNT};
use super::sessions::{session_results, SessionStart};
use crate::contacts::{flag, placeholders, COMMUNICATION_CHUNK, CONTACT_CHUNK, ID_CHUNK};
use crate::{get, micros, new_id, to_json, Result};

/// A strategy's contact, to be written if it is still at `revision`.
pub(super) struct ContactWrite<'a> {
    pub(super) tenant_id: &'a str,
    pub(super) contact_id: &'a str,
    pub(super) revision: i64,
    pub(super) contact: &'a Contact,
    /// Its communications as the strategy saw them, in stored order.
    pub(super) seen_communications: &'a [Communication],
    pub(super) last_error: Option<&'a serde_json::Value>,
    /// The ended session this write aggregates: if the write updates its
    /// communication, the same update ends it (one row version, not two).
    pub(super) session: Option<Session<'a>>,
}

/// An ended session whose outcome a contact write applies.
#[derive(Clone, Copy)]
pub(super) struct Session<'a> {
    pub(super) communication_id: &'a str,
    /// How it started, when that is written with the outcome.
    pub(super) start: Option<&'a SessionStart>,
}

impl ContactWrite<'_> {
    /// The stored communications the strategy changed (other than its
    /// session's), each with the status it saw them in.
    fn changed_communications(&self) -> impl Iterator<Item = (&str, &str)> {
        self.contact.communications.iter().filter_map(|returned| {
            let id = returned.id.as_deref()?;
            let seen = self.seen_communications.iter().find(|seen| seen.id.as_deref() == Some(id))?;
            let ours = self.session.is_some_and(|session| session.communication_id == id);
            let unchanged = !seen.flagged && *seen == Communication { flagged: false, ..returned.clone() };
            (!ours && !unchanged).then_some((id, seen.status.status.as_str()))
        })
    }

    /// Whether the strategy returned this stored communication as it was
    /// (its `flagged` mark aside, which is never stored set): then its row
    /// is left alone — fewer row versions, and no stale copy written over
    /// a claim another tick made meanwhile.
    fn unchanged(&self, position: usize, returned: &Communication) -> bool {
        self.seen_communications
            .get(position)
            .is_some_and(|seen| !seen.flagged && *seen == Communication { flagged: false, ..returned.clone() })
    }
}

/// A communication row a contact write puts in place.
struct CommunicationRow<'a> {
    id: String,
    contact_id: &'a str,
    position: usize,
    /// As the strategy returned it, without its `flagged` mark: that is
    /// the platform's, and never stored set.
    communication: Cow<'a, Communication>,
    /// The write's session, when this is its communication.
    session: Option<Session<'a>>,
}

impl<'a> CommunicationRow<'a> {
    fn new(id: String, contact_id: &'a str, position: usize, returned: &'a Communication, session: Option<Session<'a>>) -> Self {
        let communication = if returned.flagged {
            Cow::Owned(Communication { flagged: false, ..returned.clone() })
        } else {
            Cow::Borrowed(returned)
        };
        CommunicationRow { id, contact_id, position, communication, session }
    }
}

/// What a batch of contact writes does to their stored communications.
#[derive(Default)]
struct CommunicationChanges<'a> {
    /// Stored ones the strategies changed, updated in place.
    known: Vec<CommunicationRow<'a>>,
    /// New ones, planned.
    planned: Vec<CommunicationRow<'a>>,
    /// Stored ones the strategies dropped, cancelled if still planned.
    dropped: Vec<String>,
}

/// What [`write_contacts`] did.
pub(super) struct Written {
    /// Per write, whether it was applied.
    pub(super) applied: Vec<bool>,
    /// The writes' sessions whose communication was updated and marked
    /// aggregated with it.
    pub(super) aggregated: HashSet<String>,
}

/// Writes strategies' contacts that are still at the revision each saw:
/// their fields and communications (existing ones updated in place, new
/// ones planned, planned ones the strategy dropped cancelled; ones it
/// returned unchanged are not rewritten). A few multi-row statements per
/// batch, not several per contact: on PostgreSQL each statement also fires
/// the rollup triggers. `session_ended_at` marks the contacts processed.
/// Says per write whether it was applied: `false`, with nothing of it
/// written, when its contact moved on — or when an earlier write of the
/// batch is for the same contact (both saw one revision; the caller runs
/// the later one again).
pub(super) async fn write_contacts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lock: &str,
    writes: &[ContactWrite<'_>],
    session_ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Written> {
    let mut seen = HashSet::new();
    let first: Vec<&ContactWrite<'_>> = writes.iter().filter(|write| seen.insert(write.contact_id)).collect();
    let moved_on = communications_moved_on(tx, lock, &first).await?;
    let first: Vec<&ContactWrite<'_>> = first.into_iter().filter(|write| !moved_on.contains(write.contact_id)).collect();
    let updated = update_contacts(tx, &first, session_ended_at, now).await?;
    let mut taken = HashSet::new();
    let applied: Vec<bool> =
        writes.iter().map(|write| updated.contains(write.contact_id) && taken.insert(write.contact_id)).collect();
    let written: Vec<&ContactWrite<'_>> = writes.iter().zip(&applied).filter(|(_, applied)| **applied).map(|(write, _)| write).collect();

    let existing = stored_communications(tx, &written).await?;
    let changes = communication_changes(&written, &existing);
    update_known(tx, &changes.known, now).await?;
    let aggregated = changes.known.iter().filter(|row| row.session.is_some()).map(|row| row.id.clone()).collect();
    insert_planned(tx, &changes.planned).await?;
    cancel_dropped(tx, &changes.dropped, now).await?;
    Ok(Written { applied, aggregated })
}

/// Updates the contacts of `writes` that are still at the revision their
/// strategy saw; returns their ids.
async fn update_contacts(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    writes: &[&ContactWrite<'_>],
    session_ended_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<HashSet<String>> {
    let mut updated: HashSet<String> = HashSet::new();
    for chunk in writes.chunks(CONTACT_CHUNK) {
        let sql = format!(
            "WITH v (contact_id, owner, seen_revision, new_stage, new_internal_data, new_results, new_flag, new_flagged_at, \
               new_count, new_error) AS (VALUES {}) \
             UPDATE contacts SET current_stage = v.new_stage, internal_data = v.new_internal_data, results = v.new_results, \
               result_flag = v.new_flag, result_datetime = v.new_flagged_at, communication_count = v.new_count, \
               last_error = v.new_error, updated_at = ${n}, last_session_at = COALESCE(${}, contacts.last_session_at), \
               revision = contacts.revision + 1 \
             FROM v WHERE contacts.id IN ({}) AND contacts.id = v.contact_id AND contacts.tenant_id = v.owner \
               AND contacts.revision = v.seen_revision \
             RETURNING id",
            placeholders(1, 10, chunk.len()),
            chunk.len() * 10 + 2,
            column_params(1, 10, chunk.len()),
            n = chunk.len() * 10 + 1,
        );
        let mut query = sqlx::query(&sql);
        for write in chunk {
            let contact = write.contact;
            query = query
                .bind(write.contact_id.to_owned())
                .bind(write.tenant_id.to_owned())
                .bind(write.revision)
                .bind(contact.current_stage.clone())
                .bind(to_json(&contact.internal_data)?)
                .bind(to_json(&contact.results)?)
                .bind(flag(contact.result_flag))
                .bind(contact.result_datetime.map(micros))
                .bind(contact.communications.len() as i64)
                .bind(write.last_error.map(|e| e.to_string()));
        }
        for row in query.bind(micros(now)).bind(session_ended_at.map(micros)).fetch_all(&mut **tx).await? {
            updated.insert(get(&row, "id")?);
        }
    }
    Ok(updated)
}

/// The ids of the stored communications of the contacts of `writes`, by
/// contact id.
async fn stored_communications(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    writes: &[&ContactWrite<'_>],
) -> Result<HashMap<String, Vec<String>>> {
    let mut existing: HashMap<String, Vec<String>> = HashMap::new();
    for chunk in writes.chunks(ID_CHUNK) {
        let sql = format!("SELECT id, contact_id FROM communications WHERE contact_id IN ({})", placeholders(1, 1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for write in chunk {
            query = query.bind(write.contact_id.to_owned());
        }
        for row in query.fetch_all(&mut **tx).await? {
            existing.entry(get(&row, "contact_id")?).or_default().push(get(&row, "id")?);
        }
    }
    Ok(existing)
}

/// Sorts the communications the strategies returned against the stored
/// ones (`existing`): changed, new, dropped. Ones returned unchanged are
/// left out.
fn communication_changes<'a>(
    writes: &[&ContactWrite<'a>],
    existing: &HashMap<String, Vec<String>>,
) -> CommunicationChanges<'a> {
    let mut changes = CommunicationChanges::default();
    for write in writes {
        let stored = existing.get(write.contact_id).map(Vec::as_slice).unwrap_or_default();
        let mut kept = HashSet::new();
        for (position, communication) in write.contact.communications.iter().enumerate() {
            // An id the contact does not own, or one returned twice, is a
            // new communication.
            match communication.id.as_ref().filter(|id| stored.contains(id) && kept.insert(id.as_str())) {
                Some(_) if write.unchanged(position, communication) => {}
                Some(id) => {
                    let session = write.session.filter(|session| session.communication_id == id);
                    changes.known.push(CommunicationRow::new(id.clone(), write.contact_id, position, communication, session));
                }
                None => changes.planned.push(CommunicationRow::new(new_id("com"), write.contact_id, position, communication, None)),
            }
        }
        changes.dropped.extend(stored.iter().filter(|id| !kept.contains(id.as_str())).cloned());
    }
    changes
}

/// Updates stored communications in place; a session's communication ends
/// as `end_sessions` ends it.
async fn update_known(tx: &mut sqlx::Transaction<'_, sqlx::Any>, known: &[CommunicationRow<'_>], now: DateTime<Utc>) -> Result<()> {
    let values = communication_values();
    for chunk in known.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "WITH v (communication_id, owner, {values}) AS (VALUES {}) \
             UPDATE communications SET position = v.new_position, name = v.new_name, stage_name = v.new_stage_name, \
               start_date = v.new_start_date, end_date = v.new_end_date, \
               status = CASE WHEN v.ends_session = 1 AND v.new_status IN ('IN_PROGRESS', 'PLANNED') THEN 'COMPLETED' \
                 ELSE v.new_status END, \
               status_detail = v.new_status_detail, \
               status_updated_at = CASE WHEN v.ends_session = 1 THEN ${n} ELSE v.new_status_updated_at END, \
               flagged = v.new_flagged, alternative = v.new_alternative, parameters = v.new_parameters, \
               aggregated_at = CASE WHEN v.ends_session = 1 THEN ${n} ELSE communications.aggregated_at END, \
               lease_until = CASE WHEN v.ends_session = 1 THEN NULL ELSE communications.lease_until END, \
               session_ended_at = CASE WHEN v.ends_session = 1 THEN COALESCE(communications.session_ended_at, ${n}) \
                 ELSE communications.session_ended_at END, \
               session_results = COALESCE(v.new_session_results, communications.session_results), \
               channel = COALESCE(NULLIF(v.new_channel, ''), communications.channel) \
             FROM v WHERE communications.id IN ({}) AND communications.id = v.communication_id \
               AND communications.contact_id = v.owner",
            placeholders(1, COMMUNICATION_ROW, chunk.len()),
            column_params(1, COMMUNICATION_ROW, chunk.len()),
            n = chunk.len() * COMMUNICATION_ROW + 1,
        );
        bind_communications(sqlx::query(&sql), chunk)?.bind(micros(now)).execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts the communications strategies planned, in their contacts'
/// tenant and campaign.
async fn insert_planned(tx: &mut sqlx::Transaction<'_, sqlx::Any>, planned: &[CommunicationRow<'_>]) -> Result<()> {
    let values = communication_values();
    let fields = prefixed(FIELD_COLUMNS, "v.new_");
    for chunk in planned.chunks(COMMUNICATION_CHUNK) {
        let sql = format!(
            "WITH v (communication_id, owner, {values}) AS (VALUES {}) \
             INSERT INTO communications (id, contact_id, {FIELD_COLUMNS}, tenant_id, campaign_id) \
             SELECT v.communication_id, v.owner, {fields}, c.tenant_id, c.campaign_id \
             FROM v JOIN contacts c ON c.id = v.owner WHERE c.id IN ({})",
            placeholders(1, COMMUNICATION_ROW, chunk.len()),
            column_params(2, COMMUNICATION_ROW, chunk.len()),
        );
        bind_communications(sqlx::query(&sql), chunk)?.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Cancels the dropped communications that are still planned.
async fn cancel_dropped(tx: &mut sqlx::Transaction<'_, sqlx::Any>, dropped: &[String], now: DateTime<Utc>) -> Result<()> {
    for chunk in dropped.chunks(ID_CHUNK) {
        let sql = format!(
            "UPDATE communications SET status = 'CANCELLED', status_updated_at = $1 WHERE status = 'PLANNED' AND id IN ({})",
            placeholders(2, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(micros(now));
        for id in chunk {
            query = query.bind(id.clone());
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// The contacts of `writes` one of whose communications the strategy
/// changed while it changed under the strategy: another node's tick
/// claimed it, or it was marked MISSED. The contact's revision does not
/// cover that (a claim does not touch the contact), and writing the
/// strategy's copy would undo the claim. Such a write is not applied (its
/// strategy runs again on what is there now). The rows read are locked
/// until the transaction ends, so no claim slips in before the write.
async fn communications_moved_on<'w>(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    lock: &str,
    writes: &[&ContactWrite<'w>],
) -> Result<HashSet<&'w str>> {
    let mut expected: HashMap<&str, (&str, &'w str)> = HashMap::new();
    for write in writes {
        for (id, status) in write.changed_communications() {
            expected.insert(id, (status, write.contact_id));
        }
    }
    let ids: Vec<&str> = expected.keys().copied().collect();
    let mut moved_on = HashSet::new();
    for chunk in ids.chunks(ID_CHUNK) {
        let sql = format!("SELECT id, status FROM communications WHERE id IN ({}) {lock}", placeholders(1, 1, chunk.len()));
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(*id);
        }
        for row in query.fetch_all(&mut **tx).await? {
            let (id, status): (String, String) = (get(&row, "id")?, get(&row, "status")?);
            if let Some((seen, contact_id)) = expected.get(id.as_str()) {
                if *seen != status {
                    moved_on.insert(*contact_id);
                }
            }
        }
    }
    Ok(moved_on)
}

/// The columns of a `VALUES` list of communication rows after their id and
/// contact id: the fields, then three that end a session (`ends_session` 0
/// or 1, and how it started when that is written with it); inserts ignore
/// those three.
fn communication_values() -> String {
    format!("{}, ends_session, new_session_results, new_channel", prefixed(FIELD_COLUMNS, "new_"))
}

/// Parameters per communication row: id, contact id and the values above.
const COMMUNICATION_ROW: usize = 2 + FIELD_COUNT + 3;

fn bind_communications<'q>(mut query: AnyQuery<'q>, rows: &'q [CommunicationRow<'_>]) -> Result<AnyQuery<'q>> {
    for row in rows {
        query = query.bind(row.id.as_str()).bind(row.contact_id);
        let start = row.session.and_then(|session| session.start);
        query = bind_fields(query, row.position, &row.communication)?
            .bind(i64::from(row.session.is_some()))
            .bind(session_results(start)?)
            .bind(start.map(|start| start.channel.as_str()));
    }
    Ok(query)
}
