//! TEMPORARY STUB (replaced by the auth branch): the interface serve builds on.
#![allow(missing_docs, dead_code)]

use axum::{
    extract::{FromRef, FromRequestParts},
    http::{HeaderMap, StatusCode, request::Parts},
    response::{IntoResponse, Response},
};

#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    #[arg(long, env = "LW_JWT_SECRET_FILE")]
    pub jwt_secret_file: Option<std::path::PathBuf>,
}

#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub hs256_secret_file: Option<std::path::PathBuf>,
}

impl From<AuthArgs> for AuthSettings {
    fn from(args: AuthArgs) -> Self {
        Self { hs256_secret_file: args.jwt_secret_file }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("auth setup")]
pub struct AuthSetupError;

#[derive(Debug, Clone)]
pub struct Authenticator;

impl Authenticator {
    pub async fn from_settings(_: &AuthSettings) -> Result<Self, AuthSetupError> {
        Ok(Self)
    }
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let tenant = headers.get("tenantid").and_then(|v| v.to_str().ok()).ok_or(AuthError)?;
        Ok(Caller {
            tenant: Some(TenantId::parse(tenant)?),
            subject: "stub".into(),
            plan_type: None,
            machine: false,
        })
    }
    pub async fn authenticate_machine(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let mut caller = self.authenticate(headers).await?;
        caller.machine = true;
        Ok(caller)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        Ok(Self(value.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone)]
pub struct Caller {
    pub tenant: Option<TenantId>,
    pub subject: String,
    pub plan_type: Option<String>,
    pub machine: bool,
}

impl Caller {
    pub fn require_tenant(&self) -> Result<&TenantId, AuthError> {
        self.tenant.as_ref().ok_or(AuthError)
    }
    pub fn unlimited(&self) -> bool {
        false
    }
}

#[derive(Debug, Clone)]
pub struct MachineCaller(pub Caller);

#[derive(Debug, thiserror::Error)]
#[error("auth")]
pub struct AuthError;

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        (StatusCode::FORBIDDEN, "no").into_response()
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
{
    type Rejection = AuthError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Authenticator::from_ref(state).authenticate(&parts.headers).await
    }
}

impl<S: Send + Sync> FromRequestParts<S> for MachineCaller
where
    Authenticator: FromRef<S>,
{
    type Rejection = AuthError;
    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Authenticator::from_ref(state).authenticate_machine(&parts.headers).await.map(MachineCaller)
    }
}
