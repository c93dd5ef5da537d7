//! Contacts and their communications. A contact and its communications are
//! written in one transaction, batched: an import never leaves a contact
//! half-written.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::Utc;
use sqlx::any::AnyRow;
pub use stratagem_domain::contact::{ContactSummary, StoredContact};
use stratagem_domain::{Communication, Contact};

use crate::array_rows::{ArrayRows, Cell};
use crate::communication_row::{bind_fields, communication, field_cells, prefixed, COMMUNICATION_COLUMNS, FIELD_ARRAYS, FIELD_COLUMNS, FIELD_COUNT};
use crate::{from_json, from_micros, get, micros, new_id, to_json, Backend, Result, Store, StoreError};

#[derive(Debug, Clone, Default)]
pub struct ContactFilter {
    pub stage: Option<String>,
    /// Matches object id, external id, name, email or phone (substring).
    pub search: Option<String>,
    pub limit: i64,
    pub offset: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpsertOutcome {
    Inserted,
    Updated,
}

pub(crate) const CONTACT_COLUMNS: &str = "id, object_id, external_id, name, email, phone, parameters, current_stage, \
     internal_data, results, result_flag, result_datetime, last_error, created_at, updated_at";
/// Rows per multi-row statement. Small on purpose: sqlx resolves each `$N`
/// of a SQLite statement by scanning its parameter names, so binding cost
/// grows with the square of a statement's parameters (measured: 500-row
/// statements spent 19 % of an import in sqlite3_bind_parameter_name).
pub(crate) const CONTACT_CHUNK: usize = 50;
pub(crate) const COMMUNICATION_CHUNK: usize = 50;
pub(crate) const ID_CHUNK: usize = 200;

/// `($s, $s+1, …), (…)` for `rows` rows of `columns` parameters.
pub(crate) fn placeholders(start: usize, columns: usize, rows: usize) -> String {
    (0..rows)
        .map(|row| {
            let first = start + row * columns;
            let row: Vec<String> = (first..first + columns).map(|n| format!("${n}")).collect();
            if columns == 1 { row.join(", ") } else { format!("({})", row.join(", ")) }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The columns an upsert writes, in the order of its values.
const UPSERT_COLUMNS: &str = "id, tenant_id, campaign_id, object_id, external_id, name, email, phone, parameters, current_stage, \
     internal_data, results, result_flag, result_datetime, communication_count, last_error, created_at, updated_at";
/// What an upsert does to a contact that exists: everything but its id
/// and creation time is the new row's.
const UPSERT_CONFLICT: &str = "ON CONFLICT (object_id, campaign_id, tenant_id) DO UPDATE SET external_id = excluded.external_id, \
     name = excluded.name, email = excluded.email, phone = excluded.phone, parameters = excluded.parameters, \
     current_stage = excluded.current_stage, internal_data = excluded.internal_data, results = excluded.results, \
     result_flag = excluded.result_flag, result_datetime = excluded.result_datetime, \
     communication_count = excluded.communication_count, last_error = excluded.last_error, \
     updated_at = excluded.updated_at RETURNING id, object_id";

/// The columns of [`contact_cells`] with their types: an upsert's rows, as
/// [`ArrayRows`].
const CONTACT_ARRAYS: [(&str, &str); 14] = [
    ("id", "TEXT"),
    ("object_id", "TEXT"),
    ("external_id", "TEXT"),
    ("name", "TEXT"),
    ("email", "TEXT"),
    ("phone", "TEXT"),
    ("parameters", "TEXT"),
    ("current_stage", "TEXT"),
    ("internal_data", "TEXT"),
    ("results", "TEXT"),
    ("result_flag", "BIGINT"),
    ("result_datetime", "BIGINT"),
    ("communication_count", "BIGINT"),
    ("last_error", "TEXT"),
];

/// A contact offered with the id `id` as a row of [`CONTACT_ARRAYS`].
fn contact_cells<'a>(id: &'a str, contact: &'a Contact, last_error: Option<&serde_json::Value>) -> Result<[Cell<'a>; 14]> {
    Ok([
        Cell::text(id),
        Cell::text(&contact.object_id),
        Cell::text(&contact.external_id),
        Cell::text(&contact.name),
        Cell::text(&contact.email),
        Cell::text(&contact.phone),
        Cell::owned(to_json(&contact.parameters)?),
        Cell::optional(contact.current_stage.as_deref()),
        Cell::owned(to_json(&contact.internal_data)?),
        Cell::owned(to_json(&contact.results)?),
        Cell::Int(flag(contact.result_flag)),
        Cell::Int(contact.result_datetime.map(micros)),
        Cell::Int(Some(contact.communications.len() as i64)),
        Cell::Text(last_error.map(|error| error.to_string().into())),
    ])
}

/// The columns of a batch's communications before their fields.
const COMMUNICATION_KEYS: [(&str, &str); 2] = [("id", "TEXT"), ("contact_id", "TEXT")];
/// [`COMMUNICATION_KEYS`] and [`FIELD_ARRAYS`], as one list.
const COMMUNICATION_ARRAYS: [(&str, &str); 2 + FIELD_COUNT] = {
    let mut columns = [("", ""); 2 + FIELD_COUNT];
    let mut at = 0;
    while at < columns.len() {
        columns[at] = if at < 2 { COMMUNICATION_KEYS[at] } else { FIELD_ARRAYS[at - 2] };
        at += 1;
    }
    columns
};

/// A batch's communications on PostgreSQL, in one statement whose rows are
/// a parameter per column (as [`Contacts::upsert_array_rows`] does contacts).
async fn insert_communication_array_rows(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: &str,
    campaign_id: &str,
    communications: &[(&String, usize, &Communication)],
) -> Result<()> {
    if communications.is_empty() {
        return Ok(());
    }
    let mut rows = ArrayRows::new(&COMMUNICATION_ARRAYS);
    for (contact_id, position, comm) in communications {
        let id = comm.id.clone().unwrap_or_else(|| new_id("com"));
        let keys = [Cell::owned(id), Cell::text(contact_id)];
        rows.push(keys.into_iter().chain(field_cells(*position, comm)?));
    }
    let sql = format!(
        "INSERT INTO communications (id, tenant_id, campaign_id, contact_id, {FIELD_COLUMNS}) \
         SELECT r.id, $1, $2, r.contact_id, {} FROM {}",
        prefixed(FIELD_COLUMNS, "r."),
        rows.source(3, "r")
    );
    rows.bind(sqlx::query(&sql).bind(tenant_id).bind(campaign_id)).execute(&mut **tx).await?;
    Ok(())
}

/// A contact and its communications (two queries: run them in a snapshot).
async fn read_contact(connection: &mut sqlx::AnyConnection, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<Option<StoredContact>> {
    let row = sqlx::query(&format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id = $3"))
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(object_id)
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: String = get(&row, "id")?;
    let comms = sqlx::query(&format!("SELECT {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id = $1 ORDER BY position"))
        .bind(&id)
        .fetch_all(&mut *connection)
        .await?;
    Ok(Some(stored_contact(&row, comms.iter().map(communication).collect::<Result<_>>()?)?))
}

pub(crate) fn flag(value: Option<bool>) -> Option<i64> {
    value.map(i64::from)
}

/// A campaign's contacts with their communications. Reached through [`Store::contacts`].
#[derive(Clone, Copy)]
pub struct Contacts<'a> {
    store: &'a Store,
}

impl Store {
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts { store: self }
    }
}

impl Contacts<'_> {
    /// Inserts or replaces contacts (matched by object id) with their
    /// communications, in one transaction for the whole batch, with
    /// multi-row statements: a handful of round trips per batch, not per row.
    pub async fn upsert_contacts(
        self,
        tenant_id: &str,
        campaign_id: &str,
        contacts: &[(Contact, Option<serde_json::Value>)],
    ) -> Result<Vec<UpsertOutcome>> {
        let mut tx = self.store.begin_write().await?;
        let outcomes = self.upsert_contacts_in(&mut tx, tenant_id, campaign_id, contacts).await?;
        tx.commit().await?;
        Ok(outcomes)
    }

    /// `upsert_contacts` inside a write transaction the caller commits
    /// (an import commits its job's progress with the batch).
    pub(crate) async fn upsert_contacts_in(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        tenant_id: &str,
        campaign_id: &str,
        contacts: &[(Contact, Option<serde_json::Value>)],
    ) -> Result<Vec<UpsertOutcome>> {
        if contacts.is_empty() {
            return Ok(Vec::new());
        }
        let object_ids: Vec<&str> = contacts.iter().map(|(contact, _)| contact.object_id.as_str()).collect();
        if object_ids.iter().collect::<HashSet<_>>().len() != object_ids.len() {
            return Err(StoreError::Conflict("a batch names the same object_id twice".into()));
        }
        // Every row is offered with a new id. A contact that exists keeps
        // its own (the upsert does not set `id`), so a returned id that is
        // not the one offered marks an update: also when another node
        // inserted the contact a moment ago.
        let proposed: Vec<String> = contacts.iter().map(|_| new_id("ctc")).collect();
        let now = micros(Utc::now());
        let stored = match self.store.backend() {
            Backend::Postgres => self.upsert_array_rows(tx, tenant_id, campaign_id, contacts, &proposed, now).await?,
            Backend::Sqlite => self.upsert_value_rows(tx, tenant_id, campaign_id, contacts, &proposed, now).await?,
        };
        let ids: Vec<String> = contacts
            .iter()
            .map(|(contact, _)| stored.get(&contact.object_id).cloned().ok_or_else(|| StoreError::Corrupt("upsert returned no row".into())))
            .collect::<Result<_>>()?;
        let updated: Vec<bool> = proposed.iter().zip(&ids).map(|(proposed, id)| proposed != id).collect();

        let replaced: Vec<&String> = ids.iter().zip(&updated).filter(|(_, updated)| **updated).map(|(id, _)| id).collect();
        for chunk in replaced.chunks(ID_CHUNK) {
            let sql = format!("DELETE FROM communications WHERE contact_id IN ({})", placeholders(1, 1, chunk.len()));
            let sql = self.store.positional(sql);
            let mut query = sqlx::query(&sql);
            for id in chunk {
                query = query.bind((*id).clone());
            }
            query.execute(&mut **tx).await?;
        }

        let communications: Vec<(&String, usize, &Communication)> = contacts
            .iter()
            .zip(&ids)
            .flat_map(|((contact, _), id)| contact.communications.iter().enumerate().map(move |(p, c)| (id, p, c)))
            .collect();
        match self.store.backend() {
            Backend::Postgres => insert_communication_array_rows(tx, tenant_id, campaign_id, &communications).await?,
            Backend::Sqlite => self.insert_communication_value_rows(tx, tenant_id, campaign_id, &communications).await?,
        }
        Ok(updated.into_iter().map(|updated| if updated { UpsertOutcome::Updated } else { UpsertOutcome::Inserted }).collect())
    }

    /// The upsert on PostgreSQL: the whole batch in one statement whose rows
    /// are a parameter per column ([`ArrayRows`]). Row by row in multi-row
    /// `VALUES`, an import sent, and PostgreSQL planned, 18 parameters a
    /// contact.
    async fn upsert_array_rows(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        tenant_id: &str,
        campaign_id: &str,
        contacts: &[(Contact, Option<serde_json::Value>)],
        proposed: &[String],
        now: i64,
    ) -> Result<HashMap<String, String>> {
        let mut rows = ArrayRows::new(&CONTACT_ARRAYS);
        for ((contact, last_error), id) in contacts.iter().zip(proposed) {
            rows.push(contact_cells(id, contact, last_error.as_ref())?);
        }
        let sql = format!(
            "INSERT INTO contacts ({UPSERT_COLUMNS}) \
             SELECT r.id, $1, $2, r.object_id, r.external_id, r.name, r.email, r.phone, r.parameters, r.current_stage, \
             r.internal_data, r.results, r.result_flag, r.result_datetime, r.communication_count, r.last_error, $3, $3 \
             FROM {} {UPSERT_CONFLICT}",
            rows.source(4, "r")
        );
        let query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id).bind(now);
        let rows = rows.bind(query).fetch_all(&mut **tx).await?;
        rows.iter().map(|row| Ok((get(row, "object_id")?, get(row, "id")?))).collect()
    }

    /// The upsert on SQLite: multi-row `VALUES`, bound by position (see
    /// [`Store::positional`]), [`CONTACT_CHUNK`] rows a statement.
    async fn upsert_value_rows(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        tenant_id: &str,
        campaign_id: &str,
        contacts: &[(Contact, Option<serde_json::Value>)],
        proposed: &[String],
        now: i64,
    ) -> Result<HashMap<String, String>> {
        let mut stored: HashMap<String, String> = HashMap::with_capacity(contacts.len());
        for (chunk, chunk_ids) in contacts.chunks(CONTACT_CHUNK).zip(proposed.chunks(CONTACT_CHUNK)) {
            let sql = format!("INSERT INTO contacts ({UPSERT_COLUMNS}) VALUES {} {UPSERT_CONFLICT}", placeholders(1, 18, chunk.len()));
            let sql = self.store.positional(sql);
            let mut query = sqlx::query(&sql);
            for ((contact, last_error), id) in chunk.iter().zip(chunk_ids) {
                // UPSERT_COLUMNS' order: the id, the tenant and campaign,
                // the contact's other cells, then the times.
                let mut cells = contact_cells(id, contact, last_error.as_ref())?.into_iter();
                query = cells.next().expect("the id").bind(query).bind(tenant_id).bind(campaign_id);
                query = cells.fold(query, |query, cell| cell.bind(query)).bind(now).bind(now);
            }
            for row in query.fetch_all(&mut **tx).await? {
                stored.insert(get(&row, "object_id")?, get(&row, "id")?);
            }
        }
        Ok(stored)
    }

    /// A batch's communications on SQLite: multi-row `VALUES`,
    /// [`COMMUNICATION_CHUNK`] rows a statement.
    async fn insert_communication_value_rows(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        tenant_id: &str,
        campaign_id: &str,
        communications: &[(&String, usize, &Communication)],
    ) -> Result<()> {
        for chunk in communications.chunks(COMMUNICATION_CHUNK) {
            let sql = format!(
                "INSERT INTO communications (id, tenant_id, campaign_id, contact_id, {FIELD_COLUMNS}) VALUES {}",
                placeholders(1, 4 + FIELD_COUNT, chunk.len())
            );
            let sql = self.store.positional(sql);
            let mut query = sqlx::query(&sql);
            for (contact_id, position, comm) in chunk {
                query = query
                    .bind(comm.id.clone().unwrap_or_else(|| new_id("com")))
                    .bind(tenant_id)
                    .bind(campaign_id)
                    .bind(contact_id.as_str());
                query = bind_fields(query, *position, comm)?;
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// The stored contacts among `object_ids`, with communications, in two
    /// queries per chunk (an import reads a whole batch at once), from one
    /// snapshot: read apart, an outcome committed between a chunk's
    /// contacts and their communications paired one state of a contact with
    /// another's communications.
    pub async fn find_contacts(
        self,
        tenant_id: &str,
        campaign_id: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, StoredContact>> {
        let mut snapshot = self.store.begin_snapshot().await?;
        self.read_contacts(&mut snapshot, tenant_id, campaign_id, object_ids).await
    }

    async fn read_contacts(
        self,
        connection: &mut sqlx::AnyConnection,
        tenant_id: &str,
        campaign_id: &str,
        object_ids: &[String],
    ) -> Result<HashMap<String, StoredContact>> {
        let mut found = HashMap::new();
        for chunk in object_ids.chunks(ID_CHUNK) {
            let sql = format!(
                "SELECT {CONTACT_COLUMNS} FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 AND object_id IN ({})",
                placeholders(3, 1, chunk.len())
            );
            let sql = self.store.positional(sql);
            let mut query = sqlx::query(&sql).bind(tenant_id).bind(campaign_id);
            for object_id in chunk {
                query = query.bind(object_id.clone());
            }
            let rows = query.fetch_all(&mut *connection).await?;
            for stored in self.with_communications(connection, &rows).await? {
                found.insert(stored.contact.object_id.clone(), stored);
            }
        }
        Ok(found)
    }

    /// The contacts of `rows` (of [`CONTACT_COLUMNS`]), in their order, with
    /// their communications, read in one query per [`ID_CHUNK`] contacts.
    async fn with_communications(self, connection: &mut sqlx::AnyConnection, rows: &[AnyRow]) -> Result<Vec<StoredContact>> {
        let mut contacts = Vec::with_capacity(rows.len());
        for chunk in rows.chunks(ID_CHUNK) {
            let ids: Vec<String> = chunk.iter().map(|row| get(row, "id")).collect::<Result<_>>()?;
            let sql = format!(
                "SELECT contact_id, {COMMUNICATION_COLUMNS} FROM communications WHERE contact_id IN ({}) ORDER BY contact_id, position",
                placeholders(1, 1, ids.len())
            );
            let sql = self.store.positional(sql);
            let mut query = sqlx::query(&sql);
            for id in &ids {
                query = query.bind(id.clone());
            }
            let mut by_contact: HashMap<String, Vec<Communication>> = HashMap::new();
            for row in query.fetch_all(&mut *connection).await? {
                by_contact.entry(get(&row, "contact_id")?).or_default().push(communication(&row)?);
            }
            for (row, id) in chunk.iter().zip(&ids) {
                contacts.push(stored_contact(row, by_contact.remove(id).unwrap_or_default())?);
            }
        }
        Ok(contacts)
    }

    /// Whether the campaign has at least one contact.
    pub async fn has_contacts(self, tenant_id: &str, campaign_id: &str) -> Result<bool> {
        let row = sqlx::query("SELECT 1 AS one FROM contacts WHERE tenant_id = $1 AND campaign_id = $2 LIMIT 1")
            .bind(tenant_id)
            .bind(campaign_id)
            .fetch_optional(&self.store.pool)
            .await?;
        Ok(row.is_some())
    }

    pub async fn contact(self, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<StoredContact> {
        self.find_contact(tenant_id, campaign_id, object_id).await?.ok_or(StoreError::NotFound("contact"))
    }

    pub async fn find_contact(self, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<Option<StoredContact>> {
        let mut snapshot = self.store.begin_snapshot().await?;
        read_contact(&mut snapshot, tenant_id, campaign_id, object_id).await
    }

    /// A contact with its sessions, as one consistent snapshot: read
    /// apart, an outcome committed between the reads showed its
    /// communications beside the contact's fields from before it.
    pub async fn contact_detail(self, tenant_id: &str, campaign_id: &str, object_id: &str) -> Result<(StoredContact, Vec<crate::SessionRecord>)> {
        let mut snapshot = self.store.begin_snapshot().await?;
        let contact = read_contact(&mut snapshot, tenant_id, campaign_id, object_id).await?.ok_or(StoreError::NotFound("contact"))?;
        let sessions = crate::dispatch::read_sessions(&mut snapshot, tenant_id, &contact.id).await?;
        Ok((contact, sessions))
    }

    /// A page of contacts and the total it is a page of, from one
    /// snapshot: counted apart, a batch an import committed between the two
    /// reads made the page longer than its total.
    pub async fn list_contacts(self, tenant_id: &str, campaign_id: &str, filter: &ContactFilter) -> Result<(Vec<ContactSummary>, i64)> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        let mut snapshot = self.store.begin_snapshot().await?;
        let search = filter.search.as_ref().map(|s| format!("%{}%", s.replace(['%', '_'], "")));
        let condition = "tenant_id = $1 AND campaign_id = $2 \
             AND (CAST($3 AS TEXT) IS NULL OR current_stage = $3) \
             AND (CAST($4 AS TEXT) IS NULL OR object_id LIKE $4 OR external_id LIKE $4 OR name LIKE $4 OR email LIKE $4 OR phone LIKE $4)";
        let total = sqlx::query(&format!("SELECT COUNT(*) AS total FROM contacts WHERE {condition}"))
            .bind(tenant_id)
            .bind(campaign_id)
            .bind(&filter.stage)
            .bind(&search)
            .fetch_one(&mut *snapshot)
            .await?;
        let rows = sqlx::query(&format!(
            "SELECT id, object_id, external_id, name, email, phone, current_stage, communication_count, result_flag, results \
             FROM contacts WHERE {condition} ORDER BY object_id LIMIT $5 OFFSET $6"
        ))
        .bind(tenant_id)
        .bind(campaign_id)
        .bind(&filter.stage)
        .bind(&search)
        .bind(filter.limit)
        .bind(filter.offset)
        .fetch_all(&mut *snapshot)
        .await?;
        let ids: Vec<String> = rows.iter().map(|row| get(row, "id")).collect::<Result<_>>()?;
        let mut activity = communication_activity(&mut snapshot, &ids).await?;
        let summaries = rows
            .iter()
            .map(|row| {
                let results: stratagem_domain::JsonMap = from_json(&get::<String>(row, "results")?)?;
                let id: String = get(row, "id")?;
                let activity = activity.remove(&id).unwrap_or_default();
                let outcome = activity.outcome(&results);
                Ok(ContactSummary {
                    id: get(row, "id")?,
                    object_id: get(row, "object_id")?,
                    external_id: get(row, "external_id")?,
                    name: get(row, "name")?,
                    email: get(row, "email")?,
                    phone: get(row, "phone")?,
                    current_stage: get(row, "current_stage")?,
                    communication_count: get(row, "communication_count")?,
                    sent_count: activity.sent,
                    planned_count: activity.planned,
                    result_flag: get::<Option<i64>>(row, "result_flag")?.map(|v| v != 0),
                    outcome,
                })
            })
            .collect::<Result<_>>()?;
        Ok((summaries, get(&total, "total")?))
    }

    /// Every contact of a campaign with its communications, in object-id
    /// order, from one snapshot (the simulator's whole population).
    pub async fn all_contacts(self, tenant_id: &str, campaign_id: &str) -> Result<Vec<StoredContact>> {
        let mut export = self.export_contacts(tenant_id, campaign_id).await?;
        let mut contacts = Vec::new();
        while let Some(chunk) = export.next_chunk().await? {
            contacts.extend(chunk);
        }
        Ok(contacts)
    }

    /// Starts reading a campaign's contacts for export; see [`ContactExport`].
    pub async fn export_contacts(self, tenant_id: &str, campaign_id: &str) -> Result<ContactExport> {
        self.store.campaigns().campaign(tenant_id, campaign_id).await?;
        Ok(ContactExport {
            store: self.store.clone(),
            snapshot: self.store.begin_snapshot().await?,
            tenant_id: tenant_id.to_owned(),
            campaign_id: campaign_id.to_owned(),
            after: None,
            done: false,
        })
    }
}

/// Contacts per chunk of an export.
const EXPORT_CHUNK: usize = 500;

/// A campaign's contacts read for export, a chunk at a time in object-id
/// order, all from one snapshot: an export holds one chunk in memory, not
/// the campaign, and one taken during an import holds whole batches of it,
/// never a contact beside another state's communications.
pub struct ContactExport {
    store: Store,
    snapshot: sqlx::Transaction<'static, sqlx::Any>,
    tenant_id: String,
    campaign_id: String,
    /// The last object id read.
    after: Option<String>,
    done: bool,
}

impl ContactExport {
    /// Every parameter name any of the contacts has, sorted, and whether
    /// its CSV column must hold JSON: some contact's value is not text, or
    /// some contact lacks it. A CSV's columns, known before its first row
    /// is read.
    pub async fn parameter_columns(&mut self) -> Result<BTreeMap<String, bool>> {
        let sql = match self.store.backend {
            Backend::Sqlite => {
                "SELECT parameter.key AS name, COUNT(*) AS holders, SUM(CASE WHEN parameter.type = 'text' THEN 0 ELSE 1 END) AS typed \
                 FROM contacts, json_each(contacts.parameters) AS parameter \
                 WHERE contacts.tenant_id = $1 AND contacts.campaign_id = $2 GROUP BY parameter.key"
            }
            Backend::Postgres => {
                "SELECT parameter.key AS name, COUNT(*) AS holders, SUM(CASE WHEN jsonb_typeof(parameter.value) = 'string' THEN 0 ELSE 1 END) AS typed \
                 FROM contacts, jsonb_each(CAST(contacts.parameters AS jsonb)) AS parameter \
                 WHERE contacts.tenant_id = $1 AND contacts.campaign_id = $2 GROUP BY parameter.key"
            }
        };
        let counted = self.campaign_rows("SELECT COUNT(*) AS total FROM contacts WHERE tenant_id = $1 AND campaign_id = $2").await?;
        let total: i64 = counted.first().map_or(Ok(0), |row| get(row, "total"))?;
        self.campaign_rows(sql)
            .await?
            .iter()
            .map(|row| Ok((get(row, "name")?, get::<i64>(row, "typed")? > 0 || get::<i64>(row, "holders")? < total)))
            .collect()
    }

    /// The rows of `sql`, whose `$1` and `$2` are the tenant and campaign,
    /// read in the export's snapshot.
    async fn campaign_rows(&mut self, sql: &str) -> Result<Vec<AnyRow>> {
        Ok(sqlx::query(sql).bind(&self.tenant_id).bind(&self.campaign_id).fetch_all(&mut *self.snapshot).await?)
    }

    /// Every result code any of the contacts has, sorted: the report's
    /// columns.
    pub async fn result_codes(&mut self) -> Result<BTreeSet<String>> {
        let sql = match self.store.backend {
            Backend::Sqlite => {
                "SELECT DISTINCT result.key AS name FROM contacts, json_each(contacts.results) AS result \
                 WHERE contacts.tenant_id = $1 AND contacts.campaign_id = $2"
            }
            Backend::Postgres => {
                "SELECT DISTINCT jsonb_object_keys(CAST(results AS jsonb)) AS name FROM contacts \
                 WHERE tenant_id = $1 AND campaign_id = $2"
            }
        };
        self.campaign_rows(sql).await?.iter().map(|row| get(row, "name")).collect()
    }

    /// The contacts table's rows of a chunk, read in the export's snapshot.
    pub async fn summaries(&mut self, chunk: &[StoredContact]) -> Result<Vec<ContactSummary>> {
        let ids: Vec<String> = chunk.iter().map(|stored| stored.id.clone()).collect();
        let mut activity = communication_activity(&mut self.snapshot, &ids).await?;
        Ok(chunk
            .iter()
            .map(|stored| {
                let contact = &stored.contact;
                let activity = activity.remove(&stored.id).unwrap_or_default();
                ContactSummary {
                    id: stored.id.clone(),
                    object_id: contact.object_id.clone(),
                    external_id: contact.external_id.clone(),
                    name: contact.name.clone(),
                    email: contact.email.clone(),
                    phone: contact.phone.clone(),
                    current_stage: contact.current_stage.clone(),
                    communication_count: contact.communications.len() as i64,
                    sent_count: activity.sent,
                    planned_count: activity.planned,
                    result_flag: contact.result_flag,
                    outcome: activity.outcome(&contact.results),
                }
            })
            .collect())
    }

    /// The next contacts in object-id order, or `None` after the last.
    pub async fn next_chunk(&mut self) -> Result<Option<Vec<StoredContact>>> {
        if self.done {
            return Ok(None);
        }
        // Read along the object-id index from the last chunk on. Through
        // `contacts_panel`'s (tenant, campaign) prefix SQLite sorted the
        // whole campaign for every chunk (13k contacts/s at 100k); the `+`
        // keeps it off that index.
        let scope = match self.store.backend {
            Backend::Sqlite => "+tenant_id = $1 AND +campaign_id = $2",
            Backend::Postgres => "tenant_id = $1 AND campaign_id = $2",
        };
        let sql = match self.after {
            None => format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE {scope} ORDER BY object_id LIMIT $3"),
            Some(_) => format!("SELECT {CONTACT_COLUMNS} FROM contacts WHERE {scope} AND object_id > $3 ORDER BY object_id LIMIT $4"),
        };
        let mut query = sqlx::query(&sql).bind(&self.tenant_id).bind(&self.campaign_id);
        if let Some(after) = &self.after {
            query = query.bind(after);
        }
        let rows = query.bind(EXPORT_CHUNK as i64).fetch_all(&mut *self.snapshot).await?;
        self.done = rows.len() < EXPORT_CHUNK;
        let contacts = self.store.contacts().with_communications(&mut self.snapshot, &rows).await?;
        let Some(last) = contacts.last() else { return Ok(None) };
        self.after = Some(last.contact.object_id.clone());
        Ok(Some(contacts))
    }
}

pub(crate) fn stored_contact(row: &AnyRow, communications: Vec<Communication>) -> Result<StoredContact> {
    Ok(StoredContact {
        id: get(row, "id")?,
        contact: Contact {
            object_id: get(row, "object_id")?,
            external_id: get(row, "external_id")?,
            name: get(row, "name")?,
            email: get(row, "email")?,
            phone: get(row, "phone")?,
            parameters: from_json(&get::<String>(row, "parameters")?)?,
            current_stage: get(row, "current_stage")?,
            internal_data: from_json(&get::<String>(row, "internal_data")?)?,
            results: from_json(&get::<String>(row, "results")?)?,
            result_flag: get::<Option<i64>>(row, "result_flag")?.map(|v| v != 0),
            result_datetime: get::<Option<i64>>(row, "result_datetime")?.map(from_micros).transpose()?,
            communications,
        },
        last_error: get::<Option<String>>(row, "last_error")?
            .map(|text| from_json(&text))
            .transpose()?,
        created_at: from_micros(get(row, "created_at")?)?,
        updated_at: from_micros(get(row, "updated_at")?)?,
    })
}

/// The result a strategy sets as a contact's outcome (the contacts
/// table's Outcome column).
pub const OUTCOME_RESULT: &str = "Outcome";

/// A result value as the Outcome column shows it: text as it is, other
/// values as JSON; `null` and blank text are no outcome.
fn text_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(text) => Some(text.clone()).filter(|text| !text.trim().is_empty()),
        other => Some(other.to_string()),
    }
}

/// What a contact's communications came to, for its row in the table.
#[derive(Default)]
struct Activity {
    sent: i64,
    planned: i64,
    /// `OutcomeStatus` of its latest ended session.
    last_outcome: Option<String>,
}

impl Activity {
    /// The Outcome column: the result a strategy set, else the last
    /// session's outcome.
    fn outcome(&self, results: &stratagem_domain::JsonMap) -> Option<String> {
        results.get(OUTCOME_RESULT).and_then(text_value).or_else(|| self.last_outcome.clone())
    }
}

/// The [`Activity`] of a page of contacts (by contact id), in one query
/// per [`ID_CHUNK`] contacts.
async fn communication_activity(connection: &mut sqlx::AnyConnection, ids: &[String]) -> Result<HashMap<String, Activity>> {
    let mut activity: HashMap<String, Activity> = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(ID_CHUNK) {
        let sql = format!(
            "SELECT contact_id, status, CASE WHEN channel IS NULL THEN 0 ELSE 1 END AS went_out, session_results, session_ended_at FROM communications \
             WHERE contact_id IN ({}) ORDER BY contact_id, session_ended_at",
            placeholders(1, 1, chunk.len())
        );
        let mut query = sqlx::query(&sql);
        for id in chunk {
            query = query.bind(id);
        }
        for row in query.fetch_all(&mut *connection).await? {
            let entry = activity.entry(get(&row, "contact_id")?).or_default();
            let status: String = get(&row, "status")?;
            if status == "PLANNED" {
                entry.planned += 1;
            } else if get::<i64>(&row, "went_out")? == 1 && status != "FAILED" {
                entry.sent += 1;
            }
            // Ordered by end: the last ended session's outcome stays.
            if get::<Option<i64>>(&row, "session_ended_at")?.is_some() {
                let results: Option<stratagem_domain::JsonMap> =
                    get::<Option<String>>(&row, "session_results")?.map(|text| from_json(&text)).transpose()?;
                if let Some(outcome) = results.as_ref().and_then(|results| results.get("OutcomeStatus")).and_then(text_value) {
                    entry.last_outcome = Some(outcome);
                }
            }
        }
    }
    Ok(activity)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The upsert's array columns and its `INSERT` columns must name the
    /// same fields: a field added to one list and not the other must fail
    /// here, not leave a column empty.
    #[test]
    fn works_when_the_array_columns_are_the_upsert_columns() {
        let sorted = |mut names: Vec<&'static str>| {
            names.sort_unstable();
            names
        };
        // The upsert sets the rest itself: the tenant, the campaign and the times.
        let mut written: Vec<&str> = CONTACT_ARRAYS.iter().map(|(name, _)| *name).collect();
        written.extend(["tenant_id", "campaign_id", "created_at", "updated_at"]);
        assert_eq!(sorted(written), sorted(UPSERT_COLUMNS.split(", ").collect()));
        let names: Vec<&str> = COMMUNICATION_ARRAYS.iter().map(|(name, _)| *name).collect();
        assert_eq!(names.join(", "), format!("id, contact_id, {FIELD_COLUMNS}"));
    }
}
