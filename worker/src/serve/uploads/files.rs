//! `POST /{app}/uploads/{uploader}/files`: the files streamed to disk under the
//! Uploader's limits and a request deadline, each validated in the contained child
//! process, the quota consumed atomically, the history recorded, then the processing
//! event sent on the Uploader's events topic.

use std::{path::PathBuf, time::Duration};

use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, header},
};
use mongodb::bson::oid::ObjectId;
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::FutureRecord,
};
use serde::Deserialize;
use serde_json::Value;

use super::{
    UploaderPath, find_uploader,
    form::{FormReader, boundary},
    quota_key,
    receive::{NO_FILES, ReceivedFile, Staging, drain, receive},
};
use crate::serve::openapi::{FailBody, QuotaResponse, UploadForm, UploadRefused};
use crate::serve::{
    auth::{Caller, TenantId},
    error::ApiError,
    history::Subject,
    metrics::Metrics,
    quota,
    registry::UploaderInfo,
    state::AppState,
    tickets::{self, Ticket},
};
use crate::validation::{
    CONTENTS_ANALYSED, FileToValidate, FileValidationResponse, Status, ValidationResponse,
};
use licenseware_crds::event_schema::UploadEvent;

/// How long sending the event may take before the upload fails (and is undone).
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
const NOT_IN_TICKET: &str = "File was not accepted by the validation of this event";
const BAD_TICKET: &str = "The event_id is not an upload ticket of this tenant and uploader";

#[derive(Debug, Default, Deserialize)]
pub struct UploadQuery {
    pub clear_data: Option<String>,
    pub event_id: Option<String>,
}

/// The SDK v2 rule: any value containing "true".
pub fn clear_data(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.to_ascii_lowercase().contains("true"))
}

#[utoipa::path(
    post, path = "/{app_id}/uploads/{uploader}/files", tag = "uploads",
    operation_id = "upload_files",
    params(
        ("app_id" = String, Path, description = "The app id, e.g. ifmp-service"), ("uploader" = String, Path, description = "The uploader id in dash form, e.g. rv-tools"),
        ("event_id" = Option<String>, Query, description = "The ticket /validation returned"),
        ("clear_data" = Option<String>, Query,
         description = "Any value containing true: the tenant's data is replaced"),
    ),
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 200, description = "Stored, validated and sent for processing",
         body = FileValidationResponse),
        (status = 400, description = "No valid file (the validation), or a malformed form",
         body = UploadRefused),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 402, description = "Monthly quota exceeded", body = QuotaResponse),
        (status = 404, description = "No such uploader", body = FailBody),
        (status = 408, description = "The upload took longer than its deadline", body = FailBody),
        (status = 413, description = "Over the uploader's limits", body = FailBody),
        (status = 500, description = "The processing event does not match the schema of the \
         uploader's events topic (EventSchemaRefused): nothing was sent, no quota used",
         body = FailBody),
        (status = 503, description = "A store or Kafka is unavailable", body = FailBody),
    )
)]
pub async fn upload(
    State(state): State<AppState>,
    Path(path): Path<UploaderPath>,
    caller: Caller,
    Query(query): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<FileValidationResponse>, ApiError> {
    let tenant = caller.require_tenant()?.clone();
    let uploader = find_uploader(&state, &path)?;
    let boundary = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(boundary)
        .ok_or_else(|| ApiError::BadRequest(NO_FILES.to_owned()))?;
    let mut form = FormReader::new(body.into_data_stream(), &boundary);
    let tenant_dir = state.settings.upload_root.join(tenant.as_str());
    let staging = Staging::create(&tenant_dir)?;
    let deadline = state.settings.upload_deadline;
    let limits = &uploader.worker.spec.upload;
    let received = match tokio::time::timeout(deadline, receive(&mut form, &staging, limits)).await
    {
        Ok(Ok(received)) => received,
        Ok(Err(refused)) => {
            drain(&mut form).await;
            return Err(refused);
        }
        Err(_) => return Err(ApiError::Deadline(deadline.as_secs())),
    };
    // An empty event_id (a form's empty field) is no ticket.
    let event_id =
        query.event_id.or(received.event_id.clone()).filter(|event_id| !event_id.is_empty());
    let ticket = match &event_id {
        Some(event_id) => Some(take_ticket(&state, event_id, &tenant, &uploader).await?),
        None => None,
    };
    let event_id = event_id.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let clear = clear_data(query.clear_data.as_deref().or(received.clear_data.as_deref()));

    let entries = validate_all(&state, &uploader, &received.files, ticket.as_ref()).await;
    let response = FileValidationResponse::new(CONTENTS_ANALYSED, entries, Some(&event_id));
    let accepted: Vec<&ReceivedFile> = received
        .files
        .iter()
        .zip(&response.validation)
        .filter(|(_, entry)| entry.status == Status::Success)
        .map(|(file, _)| file)
        .collect();
    let subject = Subject {
        tenant_id: tenant.as_str(),
        app_id: &uploader.app_id,
        uploader_id: &uploader.uploader_id,
        event_id: &event_id,
    };
    if accepted.is_empty() {
        record_history(&state, &subject, &response, &[], ticket.as_ref()).await;
        return Err(ApiError::Rejected(serde_json::to_value(&response).unwrap_or_default()));
    }
    for file in &received.files {
        if !accepted.iter().any(|a| a.path == file.path) {
            let _ = std::fs::remove_file(&file.path);
        }
    }

    let filepaths: Vec<String> = accepted
        .iter()
        .map(|file| format!("{}/{event_id}/{}", tenant.as_str(), file.name))
        .collect();
    let envelope = UploadEvent {
        tenant_id: tenant.as_str(),
        uploader_id: &uploader.uploader_id,
        filepaths: &filepaths,
        clear_data: clear,
        event_id: &event_id,
        app_id: &uploader.app_id,
    }
    .envelope();
    // Checked before the quota is used and the files are kept: an event the topic's
    // contract refuses changes nothing.
    if let Some(schema) = &uploader.event_schema {
        match schema.as_ref() {
            Ok(compiled) => compiled.check(&envelope)?,
            Err(error) => return Err(error.clone().into()),
        }
    }

    let units = i64::try_from(accepted.len()).unwrap_or(i64::MAX);
    let key = quota_key(&caller, &uploader);
    if !caller.machine {
        let limit = quota::limit(caller.unlimited(), uploader.worker.spec.free_quota_units);
        let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
        let outcome = state
            .quotas
            .consume(&mut redis, &key, limit, units)
            .await
            .map_err(|error| ApiError::unavailable("the quota store", error))?;
        if !outcome.within {
            Metrics::count(&state.metrics.quota_refusals, 1);
            return Err(ApiError::QuotaExceeded(outcome.response()));
        }
    }

    let event_dir = tenant_dir.join(&event_id);
    let refund = || async {
        if !caller.machine
            && let Err(error) = state.quotas.refund(&key, units).await
        {
            tracing::warn!(%error, "quota not refunded after a failed upload");
        }
    };
    if let Err(error) = staging.commit(&event_dir) {
        refund().await;
        return Err(ApiError::internal("UploadWriteFailed", error));
    }
    // Written before the event is sent, never beside it: the worker's records are
    // upserts on the same tenant and event, and two upserts racing on a document not yet
    // there would make two documents.
    record_history(&state, &subject, &response, &filepaths, ticket.as_ref()).await;
    if let Err(error) = send_event(&state, &uploader, &tenant, &event_id, &envelope, &headers).await
    {
        refund().await;
        let _ = std::fs::remove_dir_all(&event_dir);
        return Err(error);
    }
    Metrics::count(&state.metrics.uploads, 1);
    Metrics::count(&state.metrics.uploaded_files, accepted.len() as u64);
    Metrics::count(&state.metrics.uploaded_bytes, accepted.iter().map(|f| f.bytes).sum());
    Ok(Json(response))
}

/// The ticket of `event_id`, if it was issued for this tenant and uploader. Taken
/// atomically; a ticket of someone else is put back untouched.
async fn take_ticket(
    state: &AppState,
    event_id: &str,
    tenant: &TenantId,
    uploader: &UploaderInfo,
) -> Result<Ticket, ApiError> {
    if !tickets::well_formed(event_id) {
        return Err(ApiError::BadRequest("event_id must be the id /validation returned".into()));
    }
    let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
    let taken = tickets::take(&mut redis, event_id)
        .await
        .map_err(|error| ApiError::unavailable("the ticket store", error))?;
    match taken {
        Some(ticket) if ticket.allows(tenant.as_str(), &uploader.app_id, &uploader.uploader_id) => {
            Ok(ticket)
        }
        Some(ticket) => {
            if let Err(error) = tickets::store(&mut redis, &ticket, state.settings.ticket_ttl).await
            {
                tracing::warn!(%error, "a ticket of another tenant was not put back");
            }
            Err(ApiError::Forbidden(BAD_TICKET.to_owned()))
        }
        None => Err(ApiError::Forbidden(BAD_TICKET.to_owned())),
    }
}

async fn validate_all(
    state: &AppState,
    uploader: &UploaderInfo,
    files: &[ReceivedFile],
    ticket: Option<&Ticket>,
) -> Vec<ValidationResponse> {
    let mut entries = Vec::with_capacity(files.len());
    for file in files {
        if let Some(ticket) = ticket
            && !ticket.accepted(&file.client_name)
            && !ticket.accepted(&file.name)
        {
            entries.push(ValidationResponse::failed(&file.name, NOT_IN_TICKET.to_owned()));
            continue;
        }
        let sandbox = state.sandbox.clone();
        let validation = uploader.worker.spec.validation.clone();
        let to_check = FileToValidate::new(PathBuf::from(&file.path), file.name.clone());
        let checked =
            tokio::task::spawn_blocking(move || sandbox.check_file(&validation, &to_check)).await;
        entries.push(checked.unwrap_or_else(|error| {
            ValidationResponse::failed(
                &file.name,
                format!("The file could not be checked: {error}"),
            )
        }));
    }
    entries
}

async fn record_history(
    state: &AppState,
    subject: &Subject<'_>,
    response: &FileValidationResponse,
    filepaths: &[String],
    ticket: Option<&Ticket>,
) {
    let id = match ticket {
        Some(ticket) => ticket.history_id.as_deref().and_then(|hex| ObjectId::parse_str(hex).ok()),
        // An event id made by this request: no record of it waits anywhere.
        None => Some(ObjectId::new()),
    };
    if let Err(error) =
        state.history.filecontent_validation(subject, &response.validation, filepaths, id).await
    {
        tracing::warn!(%error, event_id = subject.event_id, "upload history not written");
    }
}

/// The processing event's kafkaesk envelope, keyed by event id, with the contract
/// headers; the caller's `traceparent` is passed on.
async fn send_event(
    state: &AppState,
    uploader: &UploaderInfo,
    tenant: &TenantId,
    event_id: &str,
    envelope: &Value,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    let payload = envelope.to_string();
    let traceparent =
        headers.get("traceparent").and_then(|v| v.to_str().ok()).filter(|v| v.len() <= 128);
    let mut kafka_headers = OwnedHeaders::new()
        .insert(Header { key: "tenant_id", value: Some(tenant.as_str()) })
        .insert(Header { key: "event_id", value: Some(event_id) });
    if let Some(traceparent) = traceparent {
        kafka_headers =
            kafka_headers.insert(Header { key: "traceparent", value: Some(traceparent) });
    }
    let record = FutureRecord::to(&uploader.worker.events_topic)
        .key(event_id)
        .payload(&payload)
        .headers(kafka_headers);
    state
        .producer
        .send(record, SEND_TIMEOUT)
        .await
        .map(drop)
        .map_err(|(error, _)| ApiError::unavailable("Kafka", error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clear_data_is_any_value_containing_true() {
        assert!(clear_data(Some("true")));
        assert!(clear_data(Some("True")));
        assert!(clear_data(Some("yes-true")));
        assert!(!clear_data(Some("false")));
        assert!(!clear_data(Some("1")));
        assert!(!clear_data(None));
    }
}
