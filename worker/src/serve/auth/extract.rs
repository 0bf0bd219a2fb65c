//! axum extractors, so that a handler states what it needs in its signature:
//! `async fn list(caller: Caller, ...)` for user routes, `MachineCaller` for the
//! routes other services call. The state gives the [`Authenticator`] through `FromRef`.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;

use super::authenticator::Authenticator;
use super::caller::Caller;
use super::error::AuthError;

/// A caller authenticated with the machine role (see [`Authenticator::authenticate_machine`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineCaller(pub Caller);

// The verdicts are kept in the request's extensions, under types of their own, so a
// route layer and the handler behind it verify the token once between them, and a
// machine verdict never passes for a user one.
#[derive(Clone)]
struct UserVerdict(Caller);
#[derive(Clone)]
struct MachineVerdict(Caller);

impl<S> FromRequestParts<S> for Caller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(UserVerdict(caller)) = parts.extensions.get() {
            return Ok(caller.clone());
        }
        let caller = Authenticator::from_ref(state).authenticate(&parts.headers).await?;
        parts.extensions.insert(UserVerdict(caller.clone()));
        Ok(caller)
    }
}

impl<S> FromRequestParts<S> for MachineCaller
where
    Authenticator: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(MachineVerdict(caller)) = parts.extensions.get() {
            return Ok(Self(caller.clone()));
        }
        let caller = Authenticator::from_ref(state).authenticate_machine(&parts.headers).await?;
        parts.extensions.insert(MachineVerdict(caller.clone()));
        Ok(Self(caller))
    }
}
