//! The OpenAPI document, generated from the handlers' annotations, served at
//! `/openapi.json` with a vendored Swagger UI at `/docs` (nothing is downloaded at build
//! time). The shapes below exist for the document: the handlers build the same JSON.
//! The document is built at its first request and kept as JSON: building it runs about
//! a megabyte of generated code that nothing else needs, which a server that is never
//! asked for it should not keep resident.

use std::sync::LazyLock;

use axum::{
    Router,
    body::Bytes,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::Serialize;
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::{
        RefOr, Schema, Type,
        schema::{AdditionalProperties, ArrayBuilder, ObjectBuilder, OneOfBuilder},
        security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};

use super::uploads::MAX_FILENAMES;

use crate::validation::{FileValidationResponse, Status, ValidationResponse};

/// The SDK's error body.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailBody {
    /// `fail` (or `failed` for a server error, as the SDK).
    pub status: String,
    pub message: String,
    /// A stable reason, on refusals of the credentials.
    pub reason: Option<String>,
}

/// A refused data-table row or query: the SDK's body with every message in `errors`
/// (`message` is them joined with `; `).
#[derive(Debug, Serialize, ToSchema)]
pub struct RowRefused {
    pub status: String,
    pub message: String,
    /// A stable reason: RowInvalid, RowMalformed, RowIdMissing, RowRefusedByDatabase,
    /// KeyNotAllowed, BadQuery, BadLimit, BadSkip.
    pub reason: String,
    pub errors: Vec<String>,
}

/// The SDK's UploaderQuotaResponse.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuotaResponse {
    /// `success` within the quota, `failed` over it.
    pub status: String,
    pub message: String,
    pub monthly_quota: i64,
    pub monthly_quota_consumed: i64,
    /// UTC, ISO 8601 without a zone.
    pub quota_reset_date: String,
    pub app_id: String,
    pub user_id: String,
    pub uploader_id: String,
}

/// `{"filenames": [...]}`, or the bare list: 1 to 1,000 names (written by hand: the
/// derive cannot bound the items of an enum variant).
#[derive(Debug)]
pub struct FilenamesBody;

impl utoipa::PartialSchema for FilenamesBody {
    fn schema() -> RefOr<Schema> {
        let names = || {
            ArrayBuilder::new()
                .items(ObjectBuilder::new().schema_type(Type::String))
                .min_items(Some(1))
                .max_items(Some(MAX_FILENAMES))
        };
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .property("filenames", names())
                    .required("filenames")
                    .additional_properties(Some(AdditionalProperties::FreeForm(false))),
            )
            .item(names())
            .into()
    }
}

impl ToSchema for FilenamesBody {}

/// The multipart form of an upload: the files under `files` (or `files[]`).
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadForm {
    #[schema(value_type = Vec<String>, format = Binary, min_items = 1)]
    pub files: Vec<Vec<u8>>,
    /// Any value containing `true` clears the tenant's data once a file is valid.
    pub clear_data: Option<String>,
    /// The event id `/validation` returned (the upload ticket).
    pub event_id: Option<String>,
}

/// A refused upload: the validation when no file is valid, the SDK's body otherwise.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum UploadRefused {
    Validation(FileValidationResponse),
    Fail(FailBody),
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusBody {
    /// `idle` or `running`.
    pub status: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UploaderMatch {
    pub app_id: String,
    pub uploader_id: String,
    pub name: String,
    pub upload_validation_url: String,
    pub upload_url: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FilenameMatches {
    pub filename: String,
    pub uploaders: Vec<UploaderMatch>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MatchResponse {
    pub status: String,
    pub matches: Vec<FilenameMatches>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TenantInfo {
    pub app_activated: bool,
    pub data_available: bool,
    pub last_update_date: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AppMetadata {
    #[schema(value_type = Object)]
    pub app: serde_json::Value,
    #[schema(value_type = Vec<Object>)]
    pub uploaders: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub reports: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub report_components: Vec<serde_json::Value>,
    #[schema(value_type = Vec<Object>)]
    pub datatables: Vec<serde_json::Value>,
}

/// One of the SDK's report filters.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilterBody {
    /// A column of the report's or the component's filters.
    pub column: String,
    /// equals, contains, in_list, greater_than, greater_or_equal_to, less_than or
    /// less_or_equal_to, as the column allows.
    pub filter_type: String,
    /// Of the column's type; a list for in_list; a string for contains (a literal,
    /// case-insensitive).
    pub filter_value: serde_json::Value,
}

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build(),
            ),
        );
        components.add_security_scheme(
            "tenant",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("TenantId"))),
        );
    }
}

#[derive(Debug, OpenApi)]
#[openapi(
    info(
        title = "Licenseware app API",
        description = "Uploads, status, quota, history, reports, component data, data tables and registry of every app the \
                       operator registered. App routes live under /{app_id}/."
    ),
    paths(
        super::uploads::validation::validate,
        super::uploads::files::upload,
        super::uploads::quota_route,
        super::uploads::status::status,
        super::history_routes::list,
        super::history_routes::one,
        super::reports::list_reports,
        super::reports::report,
        super::reports::component_data,
        super::reports::report_component_data,
        super::reports::download::component,
        super::reports::download::report_component,
        super::reports::download::report,
        super::datatables::list_tables,
        super::datatables::read,
        super::datatables::update,
        super::datatables::insert,
        super::datatables::delete,
        super::snapshots::create_snapshot,
        super::snapshots::versions_or_metadata,
        super::snapshots::delete_snapshot,
        super::snapshots::component_rows,
        super::snapshots::component_rows_by_query,
        super::snapshots::edit_row,
        super::snapshots::delete_row,
        super::public_links::create_link,
        super::public_links::revoke_links,
        super::public_links::public_report,
        super::public_links::public_component_data,
        super::meta::registry_kind,
        super::meta::app_metadata,
        super::meta::match_uploaders,
        super::tenants::activate,
        super::tenants::info,
        super::ops::healthz,
        super::ops::readyz,
        super::ops::metrics,
    ),
    components(schemas(
        FailBody, QuotaResponse, FilenamesBody, UploadForm, UploadRefused, StatusBody,
        MatchResponse, TenantInfo, AppMetadata, FileValidationResponse, ValidationResponse, Status,
        FilterBody, RowRefused
    )),
    modifiers(&Security),
    security(("bearer" = [], "tenant" = []))
)]
pub struct ApiDoc;

const DOCUMENT_PATH: &str = "/openapi.json";

/// `/openapi.json` and the Swagger UI at `/docs`, which reads the document from there.
pub fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let swagger = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .config(utoipa_swagger_ui::Config::from(DOCUMENT_PATH));
    Router::new().route(DOCUMENT_PATH, get(document)).merge(swagger)
}

static DOCUMENT: LazyLock<Result<Bytes, String>> = LazyLock::new(|| {
    serde_json::to_vec(&ApiDoc::openapi()).map(Bytes::from).map_err(|error| error.to_string())
});

async fn document() -> Response {
    match &*DOCUMENT {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json.clone()).into_response(),
        Err(error) => {
            tracing::error!(%error, "the OpenAPI document could not be written");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_and_uploads_are_binary() {
        let document = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let paths = document["paths"].as_object().unwrap();
        for path in [
            "/{app_id}/uploads/{uploader}/validation",
            "/{app_id}/uploads/{uploader}/files",
            "/{app_id}/uploads/{uploader}/quota",
            "/{app_id}/uploads/{uploader}/status",
            "/{app_id}/history",
            "/{app_id}/history/{event_id}",
            "/{app_id}/reports",
            "/{app_id}/reports/{report}",
            "/{app_id}/report-components/{component}",
            "/{app_id}/reports/{report}/{component}",
            "/{app_id}/report-components/{component}/download",
            "/{app_id}/reports/{report}/download",
            "/{app_id}/datatables",
            "/{app_id}/datatables/{component}",
            "/{app_id}/snapshot-reports/{report}",
            "/{app_id}/snapshot-report-components/{component}/{version}",
            "/{app_id}/public-reports/{report}",
            "/{app_id}/public-report-components/{component}",
            "/registry/{kind}",
            "/{app_id}/metadata",
            "/uploaders/match",
            "/{app_id}/tenants/activation",
            "/{app_id}/tenants/{tenant}",
            "/healthz",
            "/readyz",
            "/metrics",
        ] {
            assert!(paths.contains_key(path), "{path} is not documented");
        }
        let files = &document["components"]["schemas"]["UploadForm"]["properties"]["files"];
        assert_eq!(files["items"]["format"], "binary", "{files}");
        let links =
            &paths["/{app_id}/uploads/{uploader}/validation"]["post"]["responses"]["200"]["links"];
        assert_eq!(links["UploadFiles"]["operationId"], "upload_files", "{links}");
        let data = &paths["/{app_id}/report-components/{component}"];
        for method in ["get", "post"] {
            let responses = data[method]["responses"].as_object().unwrap();
            for status in ["200", "304", "400", "401", "403", "404", "503"] {
                assert!(responses.contains_key(status), "{method} {status}");
            }
        }
    }
}
