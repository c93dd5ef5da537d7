//! Domain types to WIT records and back. Whatever comes back from a guest
//! is untrusted: malformed JSON or out-of-range times become
//! `InvokeError::InvalidResult`, never a panic.

use chrono::{DateTime, Utc};
use stratagem_domain as domain;

use crate::bindings::types as wit;
use crate::error::InvokeError;

/// Microseconds since the epoch, what Python's `datetime` and the store
/// keep; anything finer is dropped.
pub(crate) fn instant(time: DateTime<Utc>) -> wit::Instant {
    time.timestamp_micros()
}

fn time(instant: wit::Instant, field: &str) -> Result<DateTime<Utc>, InvokeError> {
    DateTime::from_timestamp_micros(instant)
        .ok_or_else(|| invalid(format!("{field} is out of range ({instant} µs from the Unix epoch)")))
}

fn invalid(message: String) -> InvokeError {
    InvokeError::InvalidResult { message }
}

fn json(map: &domain::JsonMap) -> String {
    // String keys and JSON values always serialize; no copy into a `Value`.
    serde_json::to_string(map).unwrap_or_default()
}

fn map(text: &str, field: &str) -> Result<domain::JsonMap, InvokeError> {
    match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => Ok(map),
        Ok(other) => Err(invalid(format!(
            "{field} must be a JSON object, got {}",
            match other {
                serde_json::Value::Array(_) => "an array",
                serde_json::Value::String(_) => "a string",
                serde_json::Value::Number(_) => "a number",
                serde_json::Value::Bool(_) => "a boolean",
                _ => "null",
            }
        ))),
        Err(error) => Err(invalid(format!("{field} is not valid JSON: {error}"))),
    }
}

/// Session results as the aggregation hook receives them.
pub(crate) fn session_results(map: &domain::JsonMap) -> String {
    json(map)
}

fn status(value: domain::CommunicationStatus) -> wit::CommunicationStatus {
    use domain::CommunicationStatus as D;
    use wit::CommunicationStatus as W;
    match value {
        D::Planned => W::Planned,
        D::InProgress => W::InProgress,
        D::Completed => W::Completed,
        D::Missed => W::Missed,
        D::Failed => W::Failed,
        D::Cancelled => W::Cancelled,
        D::InDoubt => W::InDoubt,
    }
}

fn status_back(value: wit::CommunicationStatus) -> domain::CommunicationStatus {
    use domain::CommunicationStatus as D;
    use wit::CommunicationStatus as W;
    match value {
        W::Planned => D::Planned,
        W::InProgress => D::InProgress,
        W::Completed => D::Completed,
        W::Missed => D::Missed,
        W::Failed => D::Failed,
        W::Cancelled => D::Cancelled,
        W::InDoubt => D::InDoubt,
    }
}

pub(crate) fn contact(contact: &domain::Contact) -> wit::Contact {
    wit::Contact {
        object_id: contact.object_id.clone(),
        external_id: contact.external_id.clone(),
        name: contact.name.clone(),
        email: contact.email.clone(),
        phone: contact.phone.clone(),
        parameters: json(&contact.parameters),
        current_stage: contact.current_stage.clone(),
        internal_data: json(&contact.internal_data),
        results: json(&contact.results),
        result_flag: contact.result_flag,
        result_datetime: contact.result_datetime.map(instant),
        communications: contact
            .communications
            .iter()
            .map(|comm| wit::Communication {
                id: comm.id.clone(),
                name: comm.name.clone(),
                stage_name: comm.stage_name.clone(),
                start_date: instant(comm.start_date),
                end_date: comm.end_date.map(instant),
                status: wit::CommunicationState {
                    status: status(comm.status.status),
                    detail: comm.status.detail.clone(),
                    updated_at: comm.status.updated_at.map(instant),
                },
                flagged: comm.flagged,
                alternative: comm.alternative.clone(),
                parameters: json(&comm.parameters),
            })
            .collect(),
    }
}

/// The contact a guest returned. A communication it kept is the one it
/// received at that index (`received`), taken at most once: an index
/// cannot make the host copy a communication more times than it sent it.
pub(crate) fn contact_back(contact: wit::ReturnedContact, received: &domain::Contact) -> Result<domain::Contact, InvokeError> {
    let mut kept = vec![false; received.communications.len()];
    let communications = contact
        .communications
        .into_iter()
        .enumerate()
        .map(|(index, returned)| match returned {
            wit::ReturnedCommunication::Kept(position) => {
                // Named only when it is wrong: a kept communication is the common case.
                let at = || format!("contact.communications[{index}]");
                let taken = kept.get_mut(position as usize).ok_or_else(|| {
                    invalid(format!("{} keeps received communication {position}, but the contact had {}", at(), received.communications.len()))
                })?;
                if std::mem::replace(taken, true) {
                    return Err(invalid(format!("{} keeps received communication {position} a second time; each is kept at most once", at())));
                }
                Ok(received.communications[position as usize].clone())
            }
            wit::ReturnedCommunication::Changed(comm) => communication_back(comm, index),
        })
        .collect::<Result<Vec<_>, InvokeError>>()?;
    Ok(domain::Contact {
        object_id: contact.object_id,
        external_id: contact.external_id,
        name: contact.name,
        email: contact.email,
        phone: contact.phone,
        parameters: map(&contact.parameters, "contact.parameters")?,
        current_stage: contact.current_stage,
        internal_data: map(&contact.internal_data, "contact.internal_data")?,
        results: map(&contact.results, "contact.results")?,
        result_flag: contact.result_flag,
        result_datetime: contact
            .result_datetime
            .map(|when| time(when, "contact.result_datetime"))
            .transpose()?,
        communications,
    })
}

fn communication_back(comm: wit::Communication, index: usize) -> Result<domain::Communication, InvokeError> {
    let at = |field: &str| format!("contact.communications[{index}].{field}");
    Ok(domain::Communication {
        id: comm.id,
        name: comm.name,
        stage_name: comm.stage_name,
        start_date: time(comm.start_date, &at("start_date"))?,
        end_date: comm.end_date.map(|end| time(end, &at("end_date"))).transpose()?,
        status: domain::CommunicationState {
            status: status_back(comm.status.status),
            detail: comm.status.detail,
            updated_at: comm.status.updated_at.map(|when| time(when, &at("status.updated_at"))).transpose()?,
        },
        flagged: comm.flagged,
        alternative: comm.alternative,
        parameters: map(&comm.parameters, &at("parameters"))?,
    })
}

pub(crate) fn message(message: &domain::Message) -> wit::Message {
    wit::Message {
        role: match message.role {
            domain::MessageRole::Agent => wit::MessageRole::Agent,
            domain::MessageRole::Contact => wit::MessageRole::Contact,
        },
        content: message.content.clone(),
        sent_at: instant(message.sent_at),
        communication_id: message.communication_id.clone(),
    }
}

pub(crate) fn campaign(campaign: &domain::CampaignContext) -> wit::Campaign {
    wit::Campaign {
        id: campaign.id.clone(),
        name: campaign.name.clone(),
        result_fields: campaign
            .result_fields
            .iter()
            .map(|field| wit::ResultField {
                code: field.code.clone(),
                name: field.name.clone(),
                description: field.description.clone(),
            })
            .collect(),
    }
}
