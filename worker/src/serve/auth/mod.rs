//! Authentication and tenancy of the HTTP API. A user request carries its tenant
//! (`TenantId`, or the legacy `tenant_id`) and a JWT (`Authorization: Bearer`, or the
//! legacy `auth_jwt`); the token is verified locally against an HS256 secret, PEM
//! public keys or a JWKS (file or URL), where the SDK asked an auth service per
//! request. Refusals answer with the SDK's statuses and bodies.

mod authenticator;
mod caller;
mod error;
mod extract;
mod fetch;
mod headers;
mod jwks;
mod keys;
mod mint;
mod settings;
mod tenant;
mod verified;

pub use authenticator::Authenticator;
pub use caller::Caller;
pub use error::{
    AuthError, AuthSetupError, INVALID_TENANT, KEYS_UNAVAILABLE, MACHINE_REQUIRED,
    MISSING_CREDENTIALS, TENANT_NOT_ALLOWED, TenantProblem, TokenProblem,
};
pub use extract::MachineCaller;
pub use fetch::{FETCH_TIMEOUT, FetchError, MAX_JWKS_BYTES};
pub use headers::MAX_HEADER_BYTES;
pub use jwks::MIN_REFRESH_INTERVAL;
pub use keys::read_secret_file;
pub use mint::{DevClaims, MintError, mint_hs256};
pub use settings::{AuthArgs, AuthSettings, DEFAULT_LEEWAY_SECONDS, DEFAULT_MACHINE_ROLE};
pub use tenant::TenantId;
