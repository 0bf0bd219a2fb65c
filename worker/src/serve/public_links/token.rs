//! Public report links: HS256 JWTs bound to one tenant, one app and one report, with
//! an `exp` and a `jti` (the key of the link's record, which can be revoked). The SDK's
//! tokens had neither `exp` nor a binding that anyone checked. Pure.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

/// `expire` (minutes) when the request names none: the SDK's default.
pub const DEFAULT_EXPIRE_MINUTES: u64 = 90;
/// The longest a link may live: 30 days.
pub const MAX_EXPIRE_MINUTES: u64 = 30 * 24 * 60;
/// The audience of every link token: a user token (signed with another secret anyway)
/// or any other HS256 token is never taken for one.
pub const AUDIENCE: &str = "licenseware:public-report";

/// A link token's claims.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub jti: String,
    pub tenant_id: String,
    pub app_id: String,
    pub report_id: String,
    /// The lifetime asked for, in minutes (the SDK's claim).
    pub expire: u64,
    pub iat: u64,
    pub exp: u64,
    pub aud: String,
}

impl LinkClaims {
    pub fn new(tenant: &str, app: &str, report: &str, expire_minutes: u64, now: u64) -> Self {
        Self {
            jti: uuid::Uuid::new_v4().to_string(),
            tenant_id: tenant.to_owned(),
            app_id: app.to_owned(),
            report_id: report.to_owned(),
            expire: expire_minutes,
            iat: now,
            exp: now.saturating_add(expire_minutes.saturating_mul(60)),
            aud: AUDIENCE.to_owned(),
        }
    }
}

/// Why a link token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkRefusal {
    #[error("no public_token")]
    Missing,
    #[error("not a valid public token: {0}")]
    Invalid(String),
    #[error("the public token expired")]
    Expired,
    #[error("the public link was revoked")]
    Revoked,
    #[error("the public token is for another app or report")]
    OtherReport,
    #[error("the component is not in the public token's report")]
    OtherComponent,
}

impl LinkRefusal {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "PublicTokenMissing",
            Self::Invalid(_) => "PublicTokenInvalid",
            Self::Expired => "PublicTokenExpired",
            Self::Revoked => "PublicTokenRevoked",
            Self::OtherReport => "PublicTokenOtherReport",
            Self::OtherComponent => "PublicTokenOtherComponent",
        }
    }

    /// 403 when no token was given or it grants something else (the SDK's 403 for a
    /// missing one); 401 when the token itself is bad, expired or revoked.
    pub fn is_forbidden(&self) -> bool {
        matches!(self, Self::Missing | Self::OtherReport | Self::OtherComponent)
    }
}

/// Why `expire` is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "expire is in minutes, from 1 to {MAX_EXPIRE_MINUTES} (30 days); default {DEFAULT_EXPIRE_MINUTES}"
)]
pub struct BadExpire;

pub fn expire_minutes(requested: Option<u64>) -> Result<u64, BadExpire> {
    let minutes = requested.unwrap_or(DEFAULT_EXPIRE_MINUTES);
    if (1..=MAX_EXPIRE_MINUTES).contains(&minutes) { Ok(minutes) } else { Err(BadExpire) }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot sign the public token: {0}")]
pub struct SignError(String);

pub fn sign(secret: &[u8], claims: &LinkClaims) -> Result<String, SignError> {
    let key = EncodingKey::from_secret(secret).map_err(|e| SignError(e.to_string()))?;
    encode(&Header::new(Algorithm::HS256), claims, &key).map_err(|e| SignError(e.to_string()))
}

/// The claims of `token` if it is ours (HS256 with `secret`, our audience) and
/// unexpired at `now`; revocation is the record's to say.
pub fn verify(secret: &[u8], token: &str, now: u64) -> Result<LinkClaims, LinkRefusal> {
    if token.is_empty() {
        return Err(LinkRefusal::Missing);
    }
    let key = DecodingKey::from_secret(secret).map_err(|e| LinkRefusal::Invalid(e.to_string()))?;
    let mut validation = Validation::new(Algorithm::HS256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_required_spec_claims(&["exp", "aud"]);
    // The expiry is checked below against `now`, to the second and without leeway.
    validation.validate_exp = false;
    let claims = decode::<LinkClaims>(token, &key, &validation)
        .map_err(|e| LinkRefusal::Invalid(e.to_string()))?
        .claims;
    if claims.exp <= now {
        return Err(LinkRefusal::Expired);
    }
    if claims.jti.is_empty() || claims.tenant_id.is_empty() {
        return Err(LinkRefusal::Invalid("empty jti or tenant".to_owned()));
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a public link secret of 32 bytes";
    const NOW: u64 = 1_800_000_000;

    fn claims() -> LinkClaims {
        LinkClaims::new("t1", "app", "devices", 90, NOW)
    }

    #[test]
    fn a_signed_token_verifies_until_it_expires() {
        let claims = claims();
        assert_eq!(claims.exp, NOW + 90 * 60);
        let token = sign(SECRET, &claims).unwrap();
        assert_eq!(verify(SECRET, &token, NOW).unwrap(), claims);
        assert_eq!(verify(SECRET, &token, claims.exp - 1).unwrap(), claims);
        assert_eq!(verify(SECRET, &token, claims.exp), Err(LinkRefusal::Expired));
    }

    #[test]
    fn other_secrets_audiences_and_garbage_are_invalid() {
        let token = sign(SECRET, &claims()).unwrap();
        let refusal = verify(b"another secret of thirty-two byt", &token, NOW).unwrap_err();
        assert_eq!(refusal.reason(), "PublicTokenInvalid");
        let mut other = claims();
        other.aud = "someone-else".to_owned();
        let token = sign(SECRET, &other).unwrap();
        assert_eq!(verify(SECRET, &token, NOW).unwrap_err().reason(), "PublicTokenInvalid");
        for garbage in ["x", "a.b.c", "eyJhbGciOiJub25lIn0.e30."] {
            assert_eq!(verify(SECRET, garbage, NOW).unwrap_err().reason(), "PublicTokenInvalid");
        }
        assert_eq!(verify(SECRET, "", NOW), Err(LinkRefusal::Missing));
    }

    #[test]
    fn statuses_follow_the_kind_of_refusal() {
        assert!(LinkRefusal::Missing.is_forbidden());
        assert!(LinkRefusal::OtherReport.is_forbidden());
        assert!(LinkRefusal::OtherComponent.is_forbidden());
        assert!(!LinkRefusal::Expired.is_forbidden());
        assert!(!LinkRefusal::Revoked.is_forbidden());
        assert!(!LinkRefusal::Invalid(String::new()).is_forbidden());
    }

    #[test]
    fn expire_is_bounded_with_the_sdks_default() {
        assert_eq!(expire_minutes(None), Ok(90));
        assert_eq!(expire_minutes(Some(1)), Ok(1));
        assert_eq!(expire_minutes(Some(MAX_EXPIRE_MINUTES)), Ok(MAX_EXPIRE_MINUTES));
        assert_eq!(expire_minutes(Some(0)), Err(BadExpire));
        assert_eq!(expire_minutes(Some(MAX_EXPIRE_MINUTES + 1)), Err(BadExpire));
    }
}
