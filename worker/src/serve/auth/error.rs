//! Why a request's credentials were refused, and why the authenticator could not be
//! built. A refusal answers with the SDK's status and body (`{"status":"fail",
//! "message":...}`) plus a short `reason`; the precise cause goes to the log only, so
//! a caller probing tokens learns no more than the SDK told it.

use std::path::PathBuf;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The SDK's message for any missing or failed credential (v2 `authorization_check`).
pub const MISSING_CREDENTIALS: &str = "Missing Tenant or Authorization information";
pub const TENANT_NOT_ALLOWED: &str = "Tenant not allowed for this token";
pub const INVALID_TENANT: &str = "Invalid tenant id";
pub const MACHINE_REQUIRED: &str = "Machine token required";
pub const KEYS_UNAVAILABLE: &str = "Authentication keys unavailable";

/// A request's credentials were refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no tenant header (TenantId or tenant_id)")]
    MissingTenant,
    #[error("no token (Authorization: Bearer or auth_jwt)")]
    MissingToken,
    #[error("invalid tenant id: {0}")]
    InvalidTenant(TenantProblem),
    #[error("token refused: {0}")]
    InvalidToken(TokenProblem),
    #[error("the token does not grant the requested tenant")]
    TenantNotAllowed,
    #[error("the route needs a token with the machine role")]
    MachineRoleRequired,
    /// The token names a key we do not hold and the key set could not be fetched:
    /// the fault is ours or the issuer's, not the caller's.
    #[error("the key set could not be fetched: {0}")]
    KeysUnavailable(String),
}

impl AuthError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingTenant => "MissingTenant",
            Self::MissingToken => "MissingToken",
            Self::InvalidTenant(_) => "InvalidTenant",
            Self::InvalidToken(problem) => problem.reason(),
            Self::TenantNotAllowed => "TenantNotAllowed",
            Self::MachineRoleRequired => "MachineRoleRequired",
            Self::KeysUnavailable(_) => "KeysUnavailable",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingTenant | Self::MissingToken => StatusCode::FORBIDDEN,
            Self::InvalidTenant(_) => StatusCode::BAD_REQUEST,
            Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::TenantNotAllowed | Self::MachineRoleRequired => StatusCode::FORBIDDEN,
            Self::KeysUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The body's `message`: the SDK's words where the SDK had a case.
    pub fn message(&self) -> &'static str {
        match self {
            Self::MissingTenant | Self::MissingToken | Self::InvalidToken(_) => MISSING_CREDENTIALS,
            Self::InvalidTenant(_) => INVALID_TENANT,
            Self::TenantNotAllowed => TENANT_NOT_ALLOWED,
            Self::MachineRoleRequired => MACHINE_REQUIRED,
            Self::KeysUnavailable(_) => KEYS_UNAVAILABLE,
        }
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = serde_json::json!({
            "status": "fail",
            "message": self.message(),
            "reason": self.reason(),
        });
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: clients and proxies learn to fetch a new token, not to retry.
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
        }
        response
    }
}

/// What is wrong with a tenant header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TenantProblem {
    #[error("only ASCII letters, digits, '_' and '-' are allowed, starting with a letter or digit")]
    Charset,
    #[error("longer than 64 characters")]
    TooLong,
    #[error("the TenantId and tenant_id headers name different tenants")]
    Ambiguous,
}

/// Why a token was not accepted. Each is a 401; `reason()` is what the body says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenProblem {
    #[error("the header is longer than 8 KiB")]
    TooLarge,
    #[error("the Authorization scheme is not Bearer")]
    NotBearer,
    #[error("several tokens were sent")]
    Ambiguous,
    #[error("not a well-formed JWT: {0}")]
    Malformed(String),
    #[error("algorithm {0} is not accepted by any configured key")]
    AlgorithmNotAllowed(String),
    #[error("no configured key matches (kid {kid:?}, alg {alg})")]
    UnknownKey { kid: Option<String>, alg: String },
    #[error("the signature does not verify")]
    BadSignature,
    #[error("expired")]
    Expired,
    #[error("not valid yet (nbf)")]
    NotYetValid,
    #[error("issuer not accepted")]
    WrongIssuer,
    #[error("audience not accepted")]
    WrongAudience,
    #[error("claim {0:?} is missing or empty")]
    MissingClaim(String),
    #[error("claims do not have the expected shape: {0}")]
    InvalidClaims(String),
}

impl TokenProblem {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::TooLarge => "TokenTooLarge",
            Self::NotBearer => "NotBearerScheme",
            Self::Ambiguous => "AmbiguousToken",
            Self::Malformed(_) => "MalformedToken",
            Self::AlgorithmNotAllowed(_) => "AlgorithmNotAllowed",
            Self::UnknownKey { .. } => "UnknownKey",
            Self::BadSignature => "BadSignature",
            Self::Expired => "TokenExpired",
            Self::NotYetValid => "TokenNotYetValid",
            Self::WrongIssuer => "InvalidIssuer",
            Self::WrongAudience => "InvalidAudience",
            Self::MissingClaim(_) => "MissingClaim",
            Self::InvalidClaims(_) => "InvalidClaims",
        }
    }

    /// Sorts jsonwebtoken's verdict into our problems.
    pub(crate) fn from_jwt(error: &jsonwebtoken::errors::Error) -> Self {
        use jsonwebtoken::errors::ErrorKind as Kind;
        match error.kind() {
            Kind::InvalidSignature => Self::BadSignature,
            Kind::ExpiredSignature => Self::Expired,
            Kind::ImmatureSignature => Self::NotYetValid,
            Kind::InvalidIssuer => Self::WrongIssuer,
            Kind::InvalidAudience => Self::WrongAudience,
            Kind::MissingRequiredClaim(claim) => Self::MissingClaim(claim.clone()),
            Kind::InvalidClaimFormat(claim) => Self::InvalidClaims(format!("claim {claim:?}")),
            Kind::InvalidAlgorithm | Kind::InvalidAlgorithmName | Kind::UnsupportedAlgorithm => {
                Self::AlgorithmNotAllowed(error.to_string())
            }
            Kind::Json(source) => Self::InvalidClaims(source.to_string()),
            // A key that cannot verify at all is rejected when it is loaded; what is left
            // here (bad base64, a broken shape, a key unfit for the algorithm) is the token's.
            _ => Self::Malformed(error.to_string()),
        }
    }
}

/// The authenticator could not be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum AuthSetupError {
    #[error(
        "no key to verify tokens with: give --jwt-secret-file, --jwt-public-key-file, \
         --jwks-file or --jwks-url"
    )]
    NoKeySource,
    #[error("cannot read {path}: {source}")]
    Unreadable { path: PathBuf, source: std::io::Error },
    #[error("{path} is empty (after its trailing newline)")]
    EmptySecret { path: PathBuf },
    #[error("{path} is not a usable public key: {detail}")]
    InvalidPublicKey { path: PathBuf, detail: String },
    #[error("{path} holds a private key; give the public key (openssl pkey -pubout)")]
    PrivateKeyGiven { path: PathBuf },
    #[error("the JWKS from {origin} is not usable: {detail}")]
    InvalidJwks { origin: String, detail: String },
    #[error("--jwks-url {url:?} is not an http(s) URL: {detail}")]
    InvalidJwksUrl { url: String, detail: String },
    #[error("no TLS root certificates to fetch {url} with: {detail}")]
    TlsRoots { url: String, detail: String },
    #[error("jsonwebtoken has no crypto provider (a build with both or neither backend)")]
    NoCryptoProvider,
}

impl AuthSetupError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::NoKeySource => "NoKeySource",
            Self::Unreadable { .. } => "KeyFileUnreadable",
            Self::EmptySecret { .. } => "SecretFileEmpty",
            Self::InvalidPublicKey { .. } => "InvalidPublicKey",
            Self::PrivateKeyGiven { .. } => "PrivateKeyGiven",
            Self::InvalidJwks { .. } => "InvalidJwks",
            Self::InvalidJwksUrl { .. } => "InvalidJwksUrl",
            Self::TlsRoots { .. } => "TlsRootsUnavailable",
            Self::NoCryptoProvider => "NoCryptoProvider",
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn answer(error: AuthError) -> (StatusCode, serde_json::Value, Option<HeaderValue>) {
        let response = error.into_response();
        let status = response.status();
        let challenge = response.headers().get(header::WWW_AUTHENTICATE).cloned();
        let bytes = to_bytes(response.into_body(), 4096).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json body"), challenge)
    }

    fn body(message: &str, reason: &str) -> serde_json::Value {
        serde_json::json!({"status": "fail", "message": message, "reason": reason})
    }

    #[tokio::test]
    async fn every_refusal_has_its_status_and_sdk_body() {
        let cases = [
            (AuthError::MissingTenant, 403, MISSING_CREDENTIALS, "MissingTenant"),
            (AuthError::MissingToken, 403, MISSING_CREDENTIALS, "MissingToken"),
            (
                AuthError::InvalidTenant(TenantProblem::Charset),
                400,
                INVALID_TENANT,
                "InvalidTenant",
            ),
            (
                AuthError::InvalidToken(TokenProblem::Expired),
                401,
                MISSING_CREDENTIALS,
                "TokenExpired",
            ),
            (
                AuthError::InvalidToken(TokenProblem::BadSignature),
                401,
                MISSING_CREDENTIALS,
                "BadSignature",
            ),
            (AuthError::TenantNotAllowed, 403, TENANT_NOT_ALLOWED, "TenantNotAllowed"),
            (AuthError::MachineRoleRequired, 403, MACHINE_REQUIRED, "MachineRoleRequired"),
            (
                AuthError::KeysUnavailable("timeout".into()),
                503,
                KEYS_UNAVAILABLE,
                "KeysUnavailable",
            ),
        ];
        for (error, status, message, reason) in cases {
            let (got_status, got_body, challenge) = answer(error).await;
            assert_eq!(got_status.as_u16(), status, "{reason}");
            assert_eq!(got_body, body(message, reason));
            assert_eq!(challenge.is_some(), status == 401, "{reason}");
        }
    }

    #[tokio::test]
    async fn the_body_never_carries_the_precise_cause() {
        let error = AuthError::InvalidToken(TokenProblem::UnknownKey {
            kid: Some("secret-kid".into()),
            alg: "RS256".into(),
        });
        let (_, got, _) = answer(error).await;
        assert!(!got.to_string().contains("secret-kid"));
    }

    #[test]
    fn token_problems_have_distinct_reasons() {
        let problems = [
            TokenProblem::TooLarge,
            TokenProblem::NotBearer,
            TokenProblem::Ambiguous,
            TokenProblem::Malformed(String::new()),
            TokenProblem::AlgorithmNotAllowed(String::new()),
            TokenProblem::UnknownKey { kid: None, alg: String::new() },
            TokenProblem::BadSignature,
            TokenProblem::Expired,
            TokenProblem::NotYetValid,
            TokenProblem::WrongIssuer,
            TokenProblem::WrongAudience,
            TokenProblem::MissingClaim(String::new()),
            TokenProblem::InvalidClaims(String::new()),
        ];
        let reasons: std::collections::HashSet<_> = problems.iter().map(|p| p.reason()).collect();
        assert_eq!(reasons.len(), problems.len());
    }
}
