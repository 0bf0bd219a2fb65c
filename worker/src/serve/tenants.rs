//! Tenant activation and info, as SDK v2's `/activate_app` and `/register_tenant`:
//! `POST /{app}/tenants/activation` initialises the caller's quota for every uploader of
//! the app and marks the app activated for the tenant (idempotent);
//! `GET /{app}/tenants/{tenant}` (machine token) says whether it is activated, whether
//! data is available and when it last changed.

use axum::{
    Json, Router,
    extract::{Path, State},
    routing::{get, post},
};
use mongodb::{
    bson::{Document, doc},
    options::UpdateOptions,
};
use serde_json::{Value, json};

use super::{
    auth::{Caller, MachineCaller, TenantId},
    error::ApiError,
    quota::{self, QuotaKey},
    state::AppState,
};
use crate::consume::{clock, history::COLLECTION as HISTORY};

/// One document per app and tenant that activated it.
pub const COLLECTION: &str = "Tenants";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/{app_id}/tenants/activation", post(activate))
        .route("/{app_id}/tenants/{tenant}", get(info))
}

fn store_error(error: mongodb::error::Error) -> ApiError {
    ApiError::unavailable("MongoDB", error)
}

async fn activate(
    State(state): State<AppState>,
    Path(app_id): Path<String>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    if !state.registry.has_app(&app_id) {
        return Err(ApiError::NotFound("App not found".to_owned()));
    }
    for uploader in state.registry.uploaders().iter().filter(|u| u.app_id == app_id) {
        let key = QuotaKey {
            user_id: &caller.subject,
            app_id: &app_id,
            uploader_id: &uploader.uploader_id,
        };
        let limit = quota::limit(caller.unlimited(), uploader.worker.spec.free_quota_units);
        state
            .quotas
            .current(&key, limit)
            .await
            .map_err(|e| ApiError::unavailable("the quota store", e))?;
    }
    let now = clock::now_iso();
    state
        .database
        .collection::<Document>(COLLECTION)
        .update_one(
            doc! {"_id": format!("{app_id}/{tenant}")},
            doc! {
                "$setOnInsert": {"app_id": &app_id, "tenant_id": tenant.as_str(), "activated_at": &now},
                "$set": {"updated_at": &now},
            },
        )
        .with_options(UpdateOptions::builder().upsert(true).build())
        .await
        .map_err(store_error)?;
    Ok(Json(json!({"status": "success", "message": "App installed successfully"})))
}

async fn info(
    State(state): State<AppState>,
    Path((app_id, tenant)): Path<(String, String)>,
    MachineCaller(_caller): MachineCaller,
) -> Result<Json<Value>, ApiError> {
    let tenant = TenantId::parse(&tenant)?;
    let activated = state
        .database
        .collection::<Document>(COLLECTION)
        .find_one(doc! {"_id": format!("{app_id}/{tenant}")})
        .await
        .map_err(store_error)?
        .is_some();
    let last_success = state
        .database
        .collection::<Document>(HISTORY)
        .find_one(
            doc! {"tenant_id": tenant.as_str(), "app_id": &app_id, "processing_status": "success"},
        )
        .sort(doc! {"updated_at": -1})
        .await
        .map_err(store_error)?;
    let last_update = last_success.as_ref().and_then(|d| d.get_str("updated_at").ok());
    Ok(Json(json!({
        "app_activated": activated,
        "data_available": last_success.is_some(),
        "last_update_date": last_update,
    })))
}
