//! Minting HS256 tokens for development and tests (`licenseware-worker token`): the
//! claims `serve` reads, signed with the secret `serve --jwt-secret-file` verifies with.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde::Serialize;

/// The claims of a minted token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DevClaims {
    pub sub: String,
    pub tenants: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan_type: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    pub iat: u64,
    pub exp: u64,
}

impl DevClaims {
    /// Claims for `sub` acting for `tenants`, issued now and valid for `ttl`.
    pub fn new(sub: impl Into<String>, tenants: Vec<String>, ttl: Duration) -> Self {
        let now = get_current_timestamp();
        Self {
            sub: sub.into(),
            tenants,
            plan_type: None,
            roles: Vec::new(),
            iss: None,
            aud: None,
            iat: now,
            exp: now.saturating_add(ttl.as_secs()),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the token: {0}")]
pub struct MintError(String);

impl MintError {
    pub fn reason(&self) -> &'static str {
        "MintFailed"
    }
}

pub fn mint_hs256(secret: &[u8], claims: &DevClaims) -> Result<String, MintError> {
    let key = EncodingKey::from_secret(secret).map_err(|e| MintError(e.to_string()))?;
    encode(&Header::new(Algorithm::HS256), claims, &key).map_err(|e| MintError(e.to_string()))
}
