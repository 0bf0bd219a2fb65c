//! Verifying a request's token and deciding who the caller is.

use std::sync::Arc;

use axum::http::HeaderMap;
use jsonwebtoken::{Algorithm, Header, Validation, decode, decode_header};

use super::caller::{Caller, Claims};
use super::error::{AuthError, AuthSetupError, TokenProblem};
use super::headers;
use super::jwks::{Refresh, RemoteJwks};
use super::keys::{self, VerifyingKey};
use super::settings::AuthSettings;
use super::verified::VerifiedTokens;

/// Verifies tokens against the configured keys. Clones share one key cache.
#[derive(Debug, Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// From the secret file, the PEM files and the JWKS file: fixed for the process.
    fixed: Vec<VerifyingKey>,
    remote: Option<RemoteJwks>,
    /// What every token must satisfy; each key narrows `algorithms` to its own.
    validation: Validation,
    machine_role: String,
    verified: VerifiedTokens,
}

impl Authenticator {
    pub async fn from_settings(settings: &AuthSettings) -> Result<Self, AuthSetupError> {
        // Fail here, at startup, rather than panic inside jsonwebtoken on the first token.
        if jsonwebtoken::crypto::CryptoProvider::try_get_default().is_none() {
            return Err(AuthSetupError::NoCryptoProvider);
        }
        if !settings.has_key_source() {
            return Err(AuthSetupError::NoKeySource);
        }
        let mut fixed = Vec::new();
        if let Some(path) = &settings.hs256_secret_file {
            fixed.push(keys::hs256_from_file(path)?);
        }
        for path in &settings.public_key_files {
            fixed.push(keys::from_pem_file(path)?);
        }
        if let Some(path) = &settings.jwks_file {
            fixed.extend(keys::jwks_from_file(path)?);
        }
        let remote = match &settings.jwks_url {
            Some(url) => Some(RemoteJwks::new(url).await?),
            None => None,
        };
        let inner = Inner {
            fixed,
            remote,
            validation: validation(settings),
            machine_role: settings.machine_role.clone(),
            verified: VerifiedTokens::default(),
        };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// A user route: a tenant header and a token that grants it (or a machine token).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let result = async {
            // The SDK's order: a missing header (403) before any judgement of the token.
            let tenant = headers::tenant(headers)?.ok_or(AuthError::MissingTenant)?;
            let token = headers::token(headers)?.ok_or(AuthError::MissingToken)?;
            let claims = self.verify(token).await?;
            claims.into_user_caller(tenant, &self.inner.machine_role)
        }
        .await;
        log_refusal(result)
    }

    /// A machine route: a token with the machine role; the tenant header is optional.
    pub async fn authenticate_machine(&self, headers: &HeaderMap) -> Result<Caller, AuthError> {
        let result = async {
            let tenant = headers::tenant(headers)?;
            let token = headers::token(headers)?.ok_or(AuthError::MissingToken)?;
            let claims = self.verify(token).await?;
            claims.into_machine_caller(tenant, &self.inner.machine_role)
        }
        .await;
        log_refusal(result)
    }

    async fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(claims) = self.inner.verified.get(token, &self.remote_keys(), now) {
            return Ok(claims);
        }
        let invalid = AuthError::InvalidToken;
        // `alg: none` and unknown algorithms fail here: jsonwebtoken has no such variant.
        let header =
            decode_header(token).map_err(|e| invalid(TokenProblem::Malformed(e.to_string())))?;
        let mut refresh_failed = None;
        if let (Some(kid), Some(remote)) = (&header.kid, &self.inner.remote)
            && !self.holds_kid(kid)
        {
            match remote.refresh_for(kid).await {
                Ok(Refresh::Throttled) => {
                    tracing::debug!(
                        reason = "JwksRefreshThrottled",
                        kid,
                        "unknown kid, no refetch yet"
                    );
                }
                Ok(Refresh::Fetched | Refresh::AlreadyThere) => {}
                Err(error) => {
                    tracing::warn!(reason = error.reason(), %error, "JWKS refresh failed");
                    refresh_failed = Some(error);
                }
            }
        }
        // A failed refresh is ours to answer for (503), unless another key verifies.
        let unverified = |problem| match &refresh_failed {
            Some(error) => AuthError::KeysUnavailable(error.to_string()),
            None => invalid(problem),
        };
        let remote = self.remote_keys();
        let candidates: Vec<&VerifyingKey> =
            self.all_keys(&remote).filter(|key| fits(&header, key)).collect();
        if candidates.is_empty() {
            return Err(unverified(self.no_key_problem(&header)));
        }
        let mut validation = self.inner.validation.clone();
        for key in candidates {
            validation.algorithms.clone_from(&key.algorithms);
            match decode::<Claims>(token, &key.key, &validation) {
                Ok(data) => {
                    self.inner.verified.keep(token, &data.claims, remote.clone(), now);
                    return Ok(data.claims);
                }
                // Several keys may fit; only a bad signature means "try the next one".
                Err(error) => match TokenProblem::from_jwt(&error) {
                    TokenProblem::BadSignature => continue,
                    problem => return Err(invalid(problem)),
                },
            }
        }
        Err(unverified(TokenProblem::BadSignature))
    }

    fn remote_keys(&self) -> Option<Arc<[VerifyingKey]>> {
        self.inner.remote.as_ref().map(RemoteJwks::keys)
    }

    fn all_keys<'a>(
        &'a self,
        remote: &'a Option<Arc<[VerifyingKey]>>,
    ) -> impl Iterator<Item = &'a VerifyingKey> {
        self.inner.fixed.iter().chain(remote.iter().flat_map(|keys| keys.iter()))
    }

    fn holds_kid(&self, kid: &str) -> bool {
        self.all_keys(&self.remote_keys()).any(|key| key.kid.as_deref() == Some(kid))
    }

    fn no_key_problem(&self, header: &Header) -> TokenProblem {
        let alg = format!("{:?}", header.alg);
        if self.all_keys(&self.remote_keys()).any(|key| key.allows(header.alg)) {
            TokenProblem::UnknownKey { kid: header.kid.clone(), alg }
        } else {
            TokenProblem::AlgorithmNotAllowed(alg)
        }
    }
}

/// A key may have signed a token when it allows the token's algorithm and, if both
/// name a key id, the ids agree. Keys without a kid (secret, PEM files) fit any id.
fn fits(header: &Header, key: &VerifyingKey) -> bool {
    let kid_agrees = match (&header.kid, &key.kid) {
        (Some(wanted), Some(kid)) => wanted == kid,
        _ => true,
    };
    kid_agrees && key.allows(header.alg)
}

fn validation(settings: &AuthSettings) -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = settings.leeway_seconds;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &settings.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    match &settings.audience {
        Some(audience) => {
            validation.set_audience(&[audience]);
            required.push("aud");
        }
        // Tokens of an issuer that sets `aud` would be refused with no audience to
        // compare to; without a configured audience the claim is not ours to judge.
        None => validation.validate_aud = false,
    }
    validation.set_required_spec_claims(&required);
    validation
}

/// Every refusal is logged once, with its precise cause; the answer carries only the
/// short reason.
fn log_refusal(result: Result<Caller, AuthError>) -> Result<Caller, AuthError> {
    if let Err(error) = &result {
        match error {
            AuthError::MissingTenant | AuthError::MissingToken => {
                tracing::debug!(reason = error.reason(), %error, "request refused");
            }
            _ => tracing::info!(reason = error.reason(), %error, "request refused"),
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::HeaderValue;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    use super::*;
    use crate::serve::auth::TenantId;
    use crate::serve::auth::mint::{DevClaims, mint_hs256};

    const SECRET: &[u8] = b"unit-test-secret-of-32-bytes-at-least";

    struct Fixture {
        _dir: tempfile::TempDir,
        auth: Authenticator,
    }

    async fn fixture(tune: impl FnOnce(&mut AuthSettings)) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, [SECRET, b"\n"].concat()).expect("write secret");
        let mut settings =
            AuthSettings { hs256_secret_file: Some(path), ..AuthSettings::default() };
        tune(&mut settings);
        let auth = Authenticator::from_settings(&settings).await.expect("authenticator");
        Fixture { _dir: dir, auth }
    }

    fn user_claims(tenants: &[&str]) -> DevClaims {
        let tenants = tenants.iter().map(|t| (*t).to_owned()).collect();
        DevClaims::new("user-1", tenants, Duration::from_secs(600))
    }

    fn request(tenant: Option<&str>, token: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(tenant) = tenant {
            headers.insert("TenantId", HeaderValue::from_str(tenant).expect("tenant"));
        }
        if let Some(token) = token {
            let value = HeaderValue::from_str(&format!("Bearer {token}")).expect("token");
            headers.insert("Authorization", value);
        }
        headers
    }

    async fn user_reason(
        auth: &Authenticator,
        tenant: Option<&str>,
        token: Option<&str>,
    ) -> &'static str {
        auth.authenticate(&request(tenant, token)).await.expect_err("refused").reason()
    }

    #[tokio::test]
    async fn a_good_token_for_its_tenant_makes_a_caller() {
        let f = fixture(|_| {}).await;
        let mut claims = user_claims(&["t1", "t2"]);
        claims.plan_type = Some("UNLIMITED".into());
        let token = mint_hs256(SECRET, &claims).expect("mint");
        let caller = f.auth.authenticate(&request(Some("t2"), Some(&token))).await.expect("ok");
        assert_eq!(caller.tenant.as_ref().map(TenantId::as_str), Some("t2"));
        assert_eq!(caller.subject, "user-1");
        assert!(caller.unlimited());
        assert!(!caller.machine);
    }

    #[tokio::test]
    async fn a_verified_token_is_kept_and_still_judged_per_tenant() {
        let f = fixture(|_| {}).await;
        let token = mint_hs256(SECRET, &user_claims(&["t1"])).expect("mint");
        for _ in 0..3 {
            let caller = f.auth.authenticate(&request(Some("t1"), Some(&token))).await;
            assert_eq!(caller.expect("ok").subject, "user-1");
        }
        assert_eq!(f.auth.inner.verified.len(), 1, "verified once, then kept");
        // The kept claims still go through the tenant rule on every request.
        assert_eq!(user_reason(&f.auth, Some("t2"), Some(&token)).await, "TenantNotAllowed");
        // A forged token (another secret) is neither accepted nor kept.
        let forged = mint_hs256(b"another-secret-of-32-bytes-at-least!", &user_claims(&["t1"]));
        let forged = forged.expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&forged)).await, "BadSignature");
        assert_eq!(f.auth.inner.verified.len(), 1);
    }

    #[tokio::test]
    async fn missing_parts_are_403s_and_the_tenant_is_checked_first() {
        let f = fixture(|_| {}).await;
        let token = mint_hs256(SECRET, &user_claims(&["t1"])).expect("mint");
        assert_eq!(user_reason(&f.auth, None, Some(&token)).await, "MissingTenant");
        assert_eq!(user_reason(&f.auth, Some("t1"), None).await, "MissingToken");
        assert_eq!(user_reason(&f.auth, Some("../t1"), None).await, "InvalidTenant");
        assert_eq!(user_reason(&f.auth, Some("t1/x"), Some("garbage")).await, "InvalidTenant");
        let mut basic = request(None, None);
        basic.insert("Authorization", HeaderValue::from_static("Basic dTpw"));
        let error = f.auth.authenticate(&basic).await.expect_err("no tenant");
        assert_eq!(error.reason(), "MissingTenant");
    }

    #[tokio::test]
    async fn another_tenant_is_refused() {
        let f = fixture(|_| {}).await;
        let token = mint_hs256(SECRET, &user_claims(&["t1"])).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t2"), Some(&token)).await, "TenantNotAllowed");
    }

    #[tokio::test]
    async fn expiry_allows_the_leeway_only() {
        let f = fixture(|s| s.leeway_seconds = 30).await;
        let mut claims = user_claims(&["t1"]);
        claims.exp = get_now() - 10;
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert!(f.auth.authenticate(&request(Some("t1"), Some(&token))).await.is_ok());
        claims.exp = get_now() - 60;
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "TokenExpired");
    }

    #[tokio::test]
    async fn a_token_not_valid_yet_is_refused() {
        let f = fixture(|s| s.leeway_seconds = 30).await;
        let mut claims = serde_json::to_value(user_claims(&["t1"])).expect("claims");
        claims["nbf"] = serde_json::json!(get_now() + 300);
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("key");
        let token = jsonwebtoken::encode(&Header::default(), &claims, &key).expect("encode");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "TokenNotYetValid");
    }

    fn get_now() -> u64 {
        jsonwebtoken::get_current_timestamp()
    }

    #[tokio::test]
    async fn a_token_without_exp_is_refused() {
        let f = fixture(|_| {}).await;
        let claims = serde_json::json!({"sub": "u", "tenants": ["t1"]});
        let key = jsonwebtoken::EncodingKey::from_secret(SECRET).expect("key");
        let token = jsonwebtoken::encode(&Header::default(), &claims, &key).expect("encode");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "MissingClaim");
    }

    #[tokio::test]
    async fn forged_and_malformed_tokens_are_401s() {
        let f = fixture(|_| {}).await;
        let other =
            mint_hs256(b"another-secret-another-secret-xx", &user_claims(&["t1"])).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&other)).await, "BadSignature");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some("not-a-jwt")).await, "MalformedToken");
        let error =
            f.auth.authenticate(&request(Some("t1"), Some("a.b.c"))).await.expect_err("bad");
        assert_eq!(error.status(), axum::http::StatusCode::UNAUTHORIZED);
    }

    #[tokio::test]
    async fn alg_none_never_verifies() {
        let f = fixture(|_| {}).await;
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let claims = serde_json::to_vec(&user_claims(&["t1"])).expect("claims");
        let token = format!("{header}.{}.", URL_SAFE_NO_PAD.encode(claims));
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "MalformedToken");
    }

    #[tokio::test]
    async fn issuer_and_audience_when_configured() {
        let f = fixture(|s| {
            s.issuer = Some("idp".into());
            s.audience = Some("api".into());
        })
        .await;
        let mut claims = user_claims(&["t1"]);
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "MissingClaim");
        claims.iss = Some("other".into());
        claims.aud = Some("api".into());
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "InvalidIssuer");
        claims.iss = Some("idp".into());
        claims.aud = Some("other".into());
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert_eq!(user_reason(&f.auth, Some("t1"), Some(&token)).await, "InvalidAudience");
        claims.aud = Some("api".into());
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert!(f.auth.authenticate(&request(Some("t1"), Some(&token))).await.is_ok());
    }

    #[tokio::test]
    async fn an_audience_is_ignored_when_none_is_configured() {
        let f = fixture(|_| {}).await;
        let mut claims = user_claims(&["t1"]);
        claims.aud = Some("anyone".into());
        let token = mint_hs256(SECRET, &claims).expect("mint");
        assert!(f.auth.authenticate(&request(Some("t1"), Some(&token))).await.is_ok());
    }

    #[tokio::test]
    async fn machine_routes_need_the_machine_role() {
        let f = fixture(|_| {}).await;
        let user = mint_hs256(SECRET, &user_claims(&["t1"])).expect("mint");
        let error = f.auth.authenticate_machine(&request(Some("t1"), Some(&user))).await;
        assert_eq!(error.expect_err("user").reason(), "MachineRoleRequired");
        let mut claims = user_claims(&[]);
        claims.roles = vec!["machine".into()];
        let machine = mint_hs256(SECRET, &claims).expect("mint");
        let caller = f.auth.authenticate_machine(&request(None, Some(&machine))).await.expect("ok");
        assert!(caller.machine && caller.tenant.is_none());
        let caller = f.auth.authenticate(&request(Some("any"), Some(&machine))).await.expect("ok");
        assert_eq!(caller.tenant.as_ref().map(TenantId::as_str), Some("any"));
        let error = f.auth.authenticate_machine(&request(None, None)).await.expect_err("none");
        assert_eq!(error.reason(), "MissingToken");
    }

    #[tokio::test]
    async fn a_key_source_is_required() {
        let error = Authenticator::from_settings(&AuthSettings::default()).await.expect_err("none");
        assert_eq!(error.reason(), "NoKeySource");
    }
}
