//! What the registry holds, served: `GET /registry/{kind}`, `GET /{app}/metadata` (the
//! SDK's full app metadata) and `POST /uploaders/match` (the universal uploader: which
//! uploaders of every app accept each file name).

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    routing::{get, post},
};
use licenseware_crds::names::dash;
use serde_json::{Map, Value, json};

use super::openapi::{AppMetadata, FailBody, FilenamesBody, MatchResponse};
use super::{
    auth::Caller, error::ApiError, registry::kind_of_route, state::AppState,
    uploads::parse_filenames,
};
use crate::validation::Status;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/registry/{kind}", get(registry_kind))
        .route("/{app_id}/metadata", get(app_metadata))
        .route("/uploaders/match", post(match_uploaders).layer(DefaultBodyLimit::max(1 << 20)))
}

/// A document as clients see it: the SDK metadata and our traceability fields; the
/// worker config (topics, processing rules) stays inside the platform.
pub fn public(mut document: Map<String, Value>) -> Value {
    document.remove("worker");
    Value::Object(document)
}

#[utoipa::path(
    get, path = "/registry/{kind}", tag = "registry",
    params(("kind" = String, Path, description = "apps, uploaders, reports, components or datatables")),
    responses(
        (status = 200, description = "Every registered document of the kind", body = Vec<Object>),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such kind", body = FailBody),
    )
)]
pub async fn registry_kind(
    State(state): State<AppState>,
    Path(kind): Path<String>,
    _caller: Caller,
) -> Result<Json<Vec<Value>>, ApiError> {
    let kind = kind_of_route(&kind).ok_or_else(|| {
        ApiError::NotFound(
            "Registry kinds: apps, uploaders, reports, components, datatables".into(),
        )
    })?;
    Ok(Json(state.registry.documents(kind, None).into_iter().map(public).collect()))
}

#[utoipa::path(
    get, path = "/{app_id}/metadata", tag = "registry",
    params(("app_id" = String, Path, description = "The app id, e.g. ifmp-service")),
    responses(
        (status = 200, description = "The app's full metadata", body = AppMetadata),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such app", body = FailBody),
    )
)]
pub async fn app_metadata(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    _caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let registry = &state.registry;
    let of = |kind| -> Vec<Value> {
        registry.documents(kind, Some(&app_id)).into_iter().map(public).collect()
    };
    let app = of("app").into_iter().next();
    let Some(app) = app else {
        return Err(ApiError::NotFound("App not found".to_owned()));
    };
    Ok(Json(json!({
        "app": app,
        "uploaders": of("uploader"),
        "reports": of("report"),
        "report_components": of("component"),
        "datatables": of("datatable"),
    })))
}

#[utoipa::path(
    post, path = "/uploaders/match", tag = "registry",
    request_body(content = FilenamesBody),
    responses(
        (status = 200, description = "For each name, the uploaders that accept it", body = MatchResponse),
        (status = 400, description = "Not a list of 1 to 1,000 names", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody), (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
    )
)]
pub async fn match_uploaders(
    State(state): State<AppState>,
    _caller: Caller,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let filenames = parse_filenames(&body)?;
    let uploaders = state.registry.uploaders();
    let candidates: Vec<_> = uploaders
        .iter()
        .filter(|u| !u.worker.spec.validation.ignored_by_uup)
        .map(|u| (u, u.rules.validator()))
        .collect();
    let matches: Vec<Value> = filenames
        .iter()
        .map(|filename| {
            let accepting: Vec<Value> = candidates
                .iter()
                .filter(|(_, validator)| {
                    validator.check_filename(filename).status == Status::Success
                })
                .map(|(u, _)| {
                    let d = dash(&u.uploader_id);
                    json!({
                        "app_id": u.app_id,
                        "uploader_id": u.uploader_id,
                        "name": u.worker.spec.name,
                        "upload_validation_url": format!("/{}/uploads/{d}/validation", u.app_id),
                        "upload_url": format!("/{}/uploads/{d}/files", u.app_id),
                    })
                })
                .collect();
            json!({"filename": filename, "uploaders": accepting})
        })
        .collect();
    Ok(Json(json!({"status": "success", "matches": matches})))
}
