//! `POST /{app}/uploads/{uploader}/validation`: the SDK's filename validation, the
//! quota check, an upload ticket and the history record.

use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
};
use jiff::Timestamp;
use mongodb::bson::oid::ObjectId;
use serde::Deserialize;

use super::{UploaderPath, find_uploader, quota_key};
use crate::consume::clock;
use crate::serve::openapi::{FailBody, FilenamesBody, QuotaResponse};
use crate::serve::{
    auth::Caller,
    error::ApiError,
    history::Subject,
    metrics::Metrics,
    quota,
    state::AppState,
    tickets::{self, Ticket},
};
use crate::validation::{FileValidationResponse, Status};

/// More names than this in one request is not a file picker's doing.
pub const MAX_FILENAMES: usize = 1000;
const BAD_BODY: &str = "Filenames sent for validation must be in a list of strings format";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    filenames: Vec<String>,
}

/// `{"filenames": [...]}` or a bare list, not empty.
pub fn parse_filenames(body: &[u8]) -> Result<Vec<String>, ApiError> {
    // The first byte tells the form: an untagged enum would try the object first and
    // build an error for every bare list.
    let parsed = match body.iter().find(|byte| !byte.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice::<Vec<String>>(body),
        _ => serde_json::from_slice::<Wrapped>(body).map(|wrapped| wrapped.filenames),
    };
    let Ok(names) = parsed else { return Err(ApiError::BadRequest(BAD_BODY.to_owned())) };
    if names.is_empty() {
        return Err(ApiError::BadRequest(BAD_BODY.to_owned()));
    }
    if names.len() > MAX_FILENAMES {
        return Err(ApiError::BadRequest(format!("At most {MAX_FILENAMES} filenames per request")));
    }
    Ok(names)
}

#[utoipa::path(
    post, path = "/{app_id}/uploads/{uploader}/validation", tag = "uploads",
    operation_id = "validate_filenames",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service"), ("uploader" = String, Path, description = "The uploader id in dash form, e.g. rv-tools")),
    request_body(content = FilenamesBody, description = "The names of the files to upload"),
    responses(
        (status = 200, description = "Each name's outcome; event_id is the upload ticket",
         body = FileValidationResponse,
         links(("UploadFiles" = (operation_id = "upload_files",
                                 parameters(("event_id" = "$response.body#/event_id")))))),
        (status = 400, description = "Not a list of names", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 402, description = "Monthly quota exceeded", body = QuotaResponse),
        (status = 404, description = "No such uploader", body = FailBody),
        (status = 503, description = "A store is unavailable", body = FailBody),
    )
)]
pub async fn validate(
    State(state): State<AppState>,
    Path(path): Path<UploaderPath>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<FileValidationResponse>, ApiError> {
    let tenant = caller.require_tenant()?.clone();
    let uploader = find_uploader(&state, &path)?;
    let filenames = parse_filenames(&body)?;
    let spec = &uploader.worker.spec;
    let response = uploader.rules.validator().check_filenames(&filenames, None);
    let accepted: Vec<String> = response
        .validation
        .iter()
        .filter(|entry| entry.status == Status::Success)
        .map(|entry| entry.filename.clone())
        .collect();
    if !caller.machine {
        let limit = quota::limit(caller.unlimited(), spec.free_quota_units);
        let units = i64::try_from(accepted.len()).unwrap_or(i64::MAX);
        let key = quota_key(&caller, &uploader);
        let outcome = state
            .quotas
            .check_recent(&key, limit, units)
            .await
            .map_err(|error| ApiError::unavailable("the quota store", error))?;
        if !outcome.within {
            Metrics::count(&state.metrics.quota_refusals, 1);
            return Err(ApiError::QuotaExceeded(outcome.response()));
        }
    }
    let ttl = state.settings.ticket_ttl;
    let expires =
        Timestamp::now().checked_add(jiff::SignedDuration::try_from(ttl).unwrap_or_default());
    let history_id = ObjectId::new();
    let ticket = Ticket {
        event_id: response.event_id.clone(),
        tenant_id: tenant.as_str().to_owned(),
        app_id: uploader.app_id.clone(),
        uploader_id: uploader.uploader_id.clone(),
        filenames: accepted,
        expires_at: clock::iso(expires.unwrap_or_else(|_| Timestamp::now())),
        history_id: Some(history_id.to_hex()),
    };
    let mut redis = state.redis().await.map_err(|e| ApiError::unavailable("Redis", e))?;
    tickets::store(&mut redis, &ticket, ttl)
        .await
        .map_err(|error| ApiError::unavailable("the ticket store", error))?;
    let subject = Subject {
        tenant_id: tenant.as_str(),
        app_id: &uploader.app_id,
        uploader_id: &uploader.uploader_id,
        event_id: &response.event_id,
    };
    state.history.filename_validation(&subject, &response.validation, history_id).await;
    Ok(Json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_body_forms_are_understood() {
        assert_eq!(parse_filenames(br#"{"filenames": ["a.csv"]}"#).unwrap(), ["a.csv"]);
        assert_eq!(parse_filenames(br#"["a.csv", "b.csv"]"#).unwrap(), ["a.csv", "b.csv"]);
    }

    #[test]
    fn bad_bodies_are_400_with_the_sdks_message() {
        for body in
            [&b""[..], b"[]", b"{}", b"{\"filenames\": [1]}", b"\"a.csv\"", b"{\"filenames\": []}"]
        {
            let error = parse_filenames(body).unwrap_err();
            assert_eq!(error.status(), 400, "{}", String::from_utf8_lossy(body));
            assert_eq!(error.to_string(), BAD_BODY);
        }
        let many = serde_json::to_vec(&vec!["a.csv"; MAX_FILENAMES + 1]).unwrap();
        assert_eq!(parse_filenames(&many).unwrap_err().status(), 400);
        let unknown = parse_filenames(br#"{"filenames": ["a.csv"], "x": 1}"#).unwrap_err();
        assert_eq!(unknown.status(), 400, "unknown fields are refused, as documented");
    }
}
