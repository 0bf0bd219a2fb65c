//! Public report links, under `/{app_id}/` at the URLs the registry advertises
//! (`public_url` of reports and components):
//! - `POST /public-reports/{report}?expire=<minutes>` (user): a link token bound to
//!   the caller's tenant, the app and the report, expiring (`expire` as the SDK:
//!   default 90, at most 30 days), recorded in `PublicReportLinks` ([`store`]);
//!   answers `{token, public_url, expiration_date, expire}`. The SDK's
//!   `GET /reports/{r}?public_url=true&expire=`.
//! - `DELETE /public-reports/{report}[?public_token=<token>]` (user): revokes that
//!   link, or every link of the tenant for the report (the SDK's `?public_url=false`).
//! - `GET /public-reports/{report}?public_token=` (the token alone): the report's
//!   metadata. The SDK's `/reports/{r}/public`.
//! - `GET|POST /public-report-components/{component}?public_token=` (the token alone):
//!   a component of the token's report, as `/report-components/{component}` answers
//!   it (filters, `limit`, `skip`, cache, ETag) for the token's tenant.
//!
//! What the SDK did not check and this does: the signature, `exp`, the record (a
//! revoked or unknown link is refused), the app, the report, and that a component is
//! in that report. A missing token, or one for another report or component, is a 403
//! ("Public token missing or invalid", the SDK's words); a bad, expired or revoked one
//! a 401. `public_url` is relative to the API (`{api}/{app}/public-reports/...`), like
//! the registry's URLs: the frontend's own page for links is not configured here.

pub mod store;
pub mod token;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State, rejection::QueryRejection},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use jsonwebtoken::get_current_timestamp;
use licenseware_crds::{names::dash, registry::ReportEntry};
use mongodb::bson::DateTime;
use serde::Deserialize;
use serde_json::{Value, json};

use self::{
    store::Links,
    token::{LinkClaims, LinkRefusal},
};
use super::{
    auth::{Caller, TenantId},
    error::ApiError,
    openapi::{FailBody, FilterBody},
    reports::{self, metadata, query::PagingQuery, refused},
    state::AppState,
};

/// The SDK's message for every refused public token.
pub const PUBLIC_TOKEN_REFUSED: &str = "Public token missing or invalid";
const BODY_LIMIT: usize = 256 << 10;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/{app_id}/public-reports/{report}",
            get(public_report).post(create_link).delete(revoke_links),
        )
        .route(
            "/{app_id}/public-report-components/{component}",
            get(public_component_data)
                .post(public_component_data)
                .layer(DefaultBodyLimit::max(BODY_LIMIT)),
        )
}

/// A public route's refusal: the token's, or any other.
#[derive(Debug)]
pub enum PublicError {
    Refused(LinkRefusal),
    Api(ApiError),
}

impl From<LinkRefusal> for PublicError {
    fn from(refusal: LinkRefusal) -> Self {
        Self::Refused(refusal)
    }
}

impl From<ApiError> for PublicError {
    fn from(error: ApiError) -> Self {
        Self::Api(error)
    }
}

impl IntoResponse for PublicError {
    fn into_response(self) -> Response {
        match self {
            Self::Api(error) => error.into_response(),
            Self::Refused(refusal) => {
                tracing::info!(reason = refusal.reason(), detail = %refusal, "public token refused");
                let status = if refusal.is_forbidden() {
                    StatusCode::FORBIDDEN
                } else {
                    StatusCode::UNAUTHORIZED
                };
                let body = json!({
                    "status": "fail", "message": PUBLIC_TOKEN_REFUSED, "reason": refusal.reason(),
                });
                (status, Json(body)).into_response()
            }
        }
    }
}

fn mongo(error: mongodb::error::Error) -> ApiError {
    reports::mongo_error(error)
}

async fn secret(state: &AppState) -> Result<&[u8], ApiError> {
    state.link_secret.get(&state.database).await.map_err(mongo)
}

#[derive(Debug, Default, Deserialize)]
pub struct TokenQuery {
    pub public_token: Option<String>,
}

/// The verified claims of a request's token, for `app`: signature, expiry, record.
async fn authorize(
    state: &AppState,
    app: &str,
    token: Option<&str>,
) -> Result<LinkClaims, PublicError> {
    let token = token.ok_or(LinkRefusal::Missing)?;
    let claims = token::verify(secret(state).await?, token, get_current_timestamp())?;
    Links::new(&state.database).check(&claims).await.map_err(mongo)??;
    TenantId::parse(&claims.tenant_id).map_err(|_| LinkRefusal::Invalid("tenant id".to_owned()))?;
    if claims.app_id != app {
        return Err(LinkRefusal::OtherReport.into());
    }
    Ok(claims)
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateQuery {
    pub expire: Option<u64>,
}

#[utoipa::path(
    post, path = "/{app_id}/public-reports/{report}", tag = "public links",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("expire" = Option<u64>, Query, minimum = 1, maximum = 43_200, description = "Minutes the link lives; default 90, at most 30 days"),
    ),
    responses(
        (status = 201, description = "{token, public_url (relative to the API, with ?public_token=), expiration_date (ISO 8601), expire}", body = Object),
        (status = 400, description = "expire out of bounds", body = FailBody),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn create_link(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<CreateQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let expire = token::expire_minutes(query.expire)
        .map_err(|error| refused("BadExpire", error.to_string()))?;
    let report_id = report_id(&state, &app_id, &report)?;
    let claims =
        LinkClaims::new(tenant.as_str(), &app_id, &report_id, expire, get_current_timestamp());
    let token = token::sign(secret(&state).await?, &claims)
        .map_err(|error| ApiError::internal("PublicTokenNotSigned", error))?;
    Links::new(&state.database).insert(&claims, &caller.subject).await.map_err(mongo)?;
    let expiration = i64::try_from(claims.exp.saturating_mul(1000)).unwrap_or(i64::MAX);
    let body = json!({
        "token": token,
        "public_url": format!("/{app_id}/public-reports/{}?public_token={token}", dash(&report_id)),
        "expiration_date": DateTime::from_millis(expiration).try_to_rfc3339_string().unwrap_or_default(),
        "expire": expire,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// The registry's id of `report` (either form) in `app`.
fn report_id(state: &AppState, app: &str, report: &str) -> Result<String, ApiError> {
    let document = metadata::find_report(&state.registry, app, report)?;
    document.get("report_id").and_then(Value::as_str).map(str::to_owned).ok_or_else(|| {
        ApiError::internal("RegistryDocumentUnreadable", "a report without report_id")
    })
}

#[utoipa::path(
    delete, path = "/{app_id}/public-reports/{report}", tag = "public links",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("public_token" = Option<String>, Query, description = "The link to revoke; without, every link of the tenant for the report"),
    ),
    responses(
        (status = 200, description = "{status: success, message, revoked: <count>}", body = Object),
        (status = 401, description = "Bad or expired token", body = FailBody),
        (status = 403, description = "Missing headers, or a tenant the token does not list", body = FailBody),
        (status = 404, description = "No such report, or no such link of the tenant for it", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn revoke_links(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    caller: Caller,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let tenant = caller.require_tenant()?;
    let Query(query) = query.map_err(|rejection| refused("BadQuery", rejection.body_text()))?;
    let report_id = report_id(&state, &app_id, &report)?;
    let not_found = || ApiError::NotFound("Public link not found".to_owned());
    let jti = match query.public_token.as_deref() {
        None => None,
        // An expired link is still revocable: its expiry is not checked (now = 0),
        // its signature and binding are.
        Some(token) => {
            let claims = token::verify(secret(&state).await?, token, 0).map_err(|_| not_found())?;
            let ours = claims.tenant_id == tenant.as_str()
                && claims.app_id == app_id
                && claims.report_id == report_id;
            if !ours {
                return Err(not_found());
            }
            Some(claims.jti)
        }
    };
    let revoked = Links::new(&state.database)
        .revoke(tenant.as_str(), &app_id, &report_id, jti.as_deref())
        .await
        .map_err(mongo)?;
    if jti.is_some() && revoked == 0 {
        return Err(not_found());
    }
    Ok(Json(json!({
        "status": "success",
        "message": format!("Revoked {revoked} public link(s)"),
        "revoked": revoked,
    })))
}

#[utoipa::path(
    get, path = "/{app_id}/public-reports/{report}", tag = "public links",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("report" = String, Path, description = "The report id in dash form (the id is accepted too)"),
        ("public_token" = Option<String>, Query, description = "The link's token: the only credential"),
    ),
    security(),
    responses(
        (status = 200, description = "The report's SDK metadata", body = Object),
        (status = 401, description = "A bad, expired or revoked token", body = FailBody),
        (status = 403, description = "No token, or a token of another report", body = FailBody),
        (status = 404, description = "No such report", body = FailBody),
        (status = 503, description = "MongoDB is unavailable", body = FailBody),
    )
)]
pub async fn public_report(
    State(state): State<AppState>,
    Path((app_id, report)): Path<(String, String)>,
    query: Result<Query<TokenQuery>, QueryRejection>,
) -> Result<Json<Value>, PublicError> {
    let token = query.ok().and_then(|Query(q)| q.public_token);
    let claims = authorize(&state, &app_id, token.as_deref()).await?;
    if dash(&claims.report_id) != dash(&report) {
        return Err(LinkRefusal::OtherReport.into());
    }
    let document = metadata::find_report(&state.registry, &app_id, &claims.report_id)?;
    Ok(Json(metadata::report_metadata(document)))
}

#[utoipa::path(
    method(get, post), path = "/{app_id}/public-report-components/{component}", tag = "public links",
    params(
        ("app_id" = String, Path, description = "The app id"),
        ("component" = String, Path, description = "A component of the token's report (dash form or id)"),
        ("public_token" = Option<String>, Query, description = "The link's token: the only credential"),
        ("limit" = Option<u64>, Query, minimum = 1, maximum = 50_000, description = "Rows to return; default 10,000"),
        ("skip" = Option<u64>, Query, maximum = 1_000_000_000, description = "Rows to skip"),
        ("filters" = Option<String>, Query, description = "GET: the filters list as JSON (POST sends it as the body)"),
    ),
    request_body(content = Vec<FilterBody>, description = "The SDK's filters; columns from the report's and the component's filters"),
    security(),
    responses(
        (status = 200, description = "The component's rows for the token's tenant; headers ETag, X-Cache, X-Has-More", body = Vec<Object>),
        (status = 304, description = "Not modified since the If-None-Match ETag"),
        (status = 400, description = "Bad filters, limit or skip", body = FailBody),
        (status = 401, description = "A bad, expired or revoked token", body = FailBody),
        (status = 403, description = "No token, or a component not in the token's report", body = FailBody),
        (status = 404, description = "The token's report is gone", body = FailBody),
        (status = 503, description = "MongoDB is unavailable, or the aggregation took too long", body = FailBody),
    )
)]
pub async fn public_component_data(
    State(state): State<AppState>,
    Path((app_id, component)): Path<(String, String)>,
    token_query: Result<Query<TokenQuery>, QueryRejection>,
    query: Result<Query<PagingQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PublicError> {
    let token = token_query.ok().and_then(|Query(q)| q.public_token);
    let claims = authorize(&state, &app_id, token.as_deref()).await?;
    let document = metadata::find_report(&state.registry, &app_id, &claims.report_id)?;
    let report: ReportEntry = serde_json::from_value(Value::Object(document))
        .map_err(|error| ApiError::internal("RegistryDocumentUnreadable", error))?;
    let wanted = dash(&component);
    let shown = report.report_components.iter().flatten().any(|c| dash(&c.component_id) == wanted);
    if !shown {
        return Err(LinkRefusal::OtherComponent.into());
    }
    let target =
        metadata::report_component_target(&state.registry, &app_id, &claims.report_id, &component)?;
    let tenant = claims.tenant_id.as_str();
    Ok(reports::serve_component(&state, tenant, &target, query, &headers, &body).await?)
}
