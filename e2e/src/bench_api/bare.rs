//! The bare filename check over HTTP, for `make bench-api`: the API has no route that
//! checks names without I/O, so this small axum server (run as `bench_api bare-server`,
//! a child process) serves the part of `/validation` that needs none, with the API's
//! own code: the `Caller` extractor (the token verified by `Authenticator`, the tenant
//! checked), `parse_filenames`, and `check_filenames` with the uploader's rules
//! compiled once (`CompiledRules`), as the API's registry keeps them. No quota, ticket, history or
//! registry lookup. Its `/hello` is the hello world of this same server, and the API's
//! own `/healthz` is measured beside it.

use std::path::PathBuf;

use axum::{
    Json, Router,
    body::Bytes,
    extract::{FromRef, State},
    routing::{get, post},
};
use licenseware_crds::ValidationParameters;
use licenseware_worker::{
    serve::{
        auth::{AuthSettings, Authenticator, Caller},
        error::ApiError,
        uploads::parse_filenames,
    },
    validation::{CompiledRules, FileValidationResponse},
};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct BareState {
    auth: Authenticator,
    rules: std::sync::Arc<CompiledRules>,
}

impl FromRef<BareState> for Authenticator {
    fn from_ref(state: &BareState) -> Self {
        state.auth.clone()
    }
}

async fn check(
    State(state): State<BareState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<FileValidationResponse>, ApiError> {
    caller.require_tenant()?;
    let filenames = parse_filenames(&body)?;
    Ok(Json(state.rules.validator().check_filenames(&filenames, None)))
}

async fn hello() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// The bare check's route (the API's path, so that the same request fits both) and
/// `/hello`.
pub fn router(auth: Authenticator, rules: ValidationParameters) -> Router {
    Router::new()
        .route("/{app_id}/uploads/{uploader}/validation", post(check))
        .route("/hello", get(hello))
        .with_state(BareState { auth, rules: std::sync::Arc::new(CompiledRules::new(rules)) })
}

/// Serves on an ephemeral loopback port, printed as `listening on http://...` the way
/// `licenseware-worker serve` prints it, until killed.
#[allow(clippy::print_stdout)] // the parent reads the address on stdout
pub async fn serve(secret_file: PathBuf, rules_json: &str) -> anyhow::Result<()> {
    let rules: ValidationParameters = serde_json::from_str(rules_json)?;
    let settings = AuthSettings { hs256_secret_file: Some(secret_file), ..AuthSettings::default() };
    let auth = Authenticator::from_settings(&settings).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    axum::serve(listener, router(auth, rules).into_make_service()).await?;
    Ok(())
}
