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

#[cfg(test)]
mod tests {
    use axum::http::{HeaderValue, Request};

    use super::*;
    use crate::serve::auth::{AuthSettings, DevClaims, mint_hs256};

    #[tokio::test]
    async fn a_verdict_is_reached_once_per_request_and_kept_apart_by_kind() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "extract-test-secret").expect("write");
        let settings = AuthSettings { hs256_secret_file: Some(secret), ..AuthSettings::default() };
        let auth = Authenticator::from_settings(&settings).await.expect("authenticator");
        let mut claims =
            DevClaims::new("svc", vec!["t1".into()], std::time::Duration::from_secs(60));
        claims.roles.push("machine".into());
        let token = mint_hs256(b"extract-test-secret", &claims).expect("mint");
        let request = Request::get("/")
            .header("TenantId", "t1")
            .header("Authorization", format!("Bearer {token}"))
            .body(())
            .expect("request");
        let (mut parts, ()) = request.into_parts();

        let first = Caller::from_request_parts(&mut parts, &auth).await.expect("user");
        // With the headers gone, only the kept verdict can answer.
        parts.headers.remove("Authorization");
        let again = Caller::from_request_parts(&mut parts, &auth).await.expect("kept");
        assert_eq!(first, again);
        let machine = MachineCaller::from_request_parts(&mut parts, &auth).await;
        assert_eq!(machine.expect_err("not kept for machines").reason(), "MissingToken");

        parts.headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {token}")).expect("value"),
        );
        let MachineCaller(caller) =
            MachineCaller::from_request_parts(&mut parts, &auth).await.expect("machine");
        assert!(caller.machine);
    }
}
