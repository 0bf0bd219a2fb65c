//! Reading the tenant and the token from request headers: `TenantId` (header names are
//! case-insensitive, so `Tenantid` too) or the 2022 template's `tenant_id`; and
//! `Authorization: Bearer <jwt>` or the template's `auth_jwt: <jwt>`.

use axum::http::{HeaderMap, HeaderValue, header};

use super::error::{AuthError, TenantProblem, TokenProblem};
use super::tenant::TenantId;

/// Longer header values are refused before they are parsed: a JWT of a few claims is
/// under 2 KiB, and nothing legitimate reaches this.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

const TENANT: &str = "tenantid";
const LEGACY_TENANT: &str = "tenant_id";
const LEGACY_TOKEN: &str = "auth_jwt";

/// The request's tenant, `None` when no tenant header (or only empty ones) was sent.
pub fn tenant(headers: &HeaderMap) -> Result<Option<TenantId>, AuthError> {
    let mut found: Option<&str> = None;
    let values = headers.get_all(TENANT).iter().chain(headers.get_all(LEGACY_TENANT).iter());
    for value in values {
        if value.len() > MAX_HEADER_BYTES {
            return Err(AuthError::InvalidTenant(TenantProblem::TooLong));
        }
        let text = value
            .to_str()
            .map_err(|_| AuthError::InvalidTenant(TenantProblem::Charset))?
            .trim_ascii();
        if text.is_empty() {
            continue;
        }
        // Two headers naming two tenants: acting for either would be a guess.
        match found {
            Some(earlier) if earlier != text => {
                return Err(AuthError::InvalidTenant(TenantProblem::Ambiguous));
            }
            _ => found = Some(text),
        }
    }
    found.map(TenantId::parse).transpose()
}

/// The request's raw JWT, `None` when no token header (or only empty ones) was sent.
/// `Authorization` wins over `auth_jwt` when both are there.
pub fn token(headers: &HeaderMap) -> Result<Option<&str>, AuthError> {
    if let Some(value) = single(headers, header::AUTHORIZATION.as_str())? {
        let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(AuthError::InvalidToken(TokenProblem::NotBearer));
        }
        let jwt = rest.trim_ascii();
        if jwt.is_empty() {
            return Err(AuthError::InvalidToken(TokenProblem::Malformed(
                "Bearer without a token".into(),
            )));
        }
        return Ok(Some(jwt));
    }
    // Some clients of the template put the whole `Bearer <jwt>` in auth_jwt.
    Ok(single(headers, LEGACY_TOKEN)?.map(|value| match value.split_once(' ') {
        Some((scheme, jwt)) if scheme.eq_ignore_ascii_case("bearer") => jwt.trim_ascii(),
        _ => value,
    }))
}

/// The one non-empty value of a token header, as text.
fn single<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, AuthError> {
    let mut values = headers.get_all(name).iter().filter(|value| !is_blank(value));
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(AuthError::InvalidToken(TokenProblem::Ambiguous));
    }
    if value.len() > MAX_HEADER_BYTES {
        return Err(AuthError::InvalidToken(TokenProblem::TooLarge));
    }
    let text = value.to_str().map_err(|_| {
        AuthError::InvalidToken(TokenProblem::Malformed("not visible ASCII".into()))
    })?;
    Ok(Some(text.trim_ascii()))
}

fn is_blank(value: &HeaderValue) -> bool {
    value.as_bytes().iter().all(u8::is_ascii_whitespace)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderName;

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).expect("name");
            map.append(name, HeaderValue::from_str(value).expect("value"));
        }
        map
    }

    fn reason<T: std::fmt::Debug>(result: Result<T, AuthError>) -> &'static str {
        result.expect_err("refused").reason()
    }

    #[test]
    fn tenant_header_in_any_case_or_legacy_name() {
        for name in ["TenantId", "tenantid", "TENANTID", "Tenantid", "tenant_id"] {
            let got = tenant(&headers(&[(name, "t1")])).expect(name);
            assert_eq!(got.as_ref().map(TenantId::as_str), Some("t1"), "{name}");
        }
    }

    #[test]
    fn no_or_empty_tenant_header_is_none() {
        assert_eq!(tenant(&headers(&[])).expect("ok"), None);
        assert_eq!(tenant(&headers(&[("TenantId", "  ")])).expect("ok"), None);
    }

    #[test]
    fn the_same_tenant_twice_is_fine_two_tenants_are_not() {
        let same = headers(&[("TenantId", "t1"), ("tenant_id", "t1")]);
        assert_eq!(tenant(&same).expect("same").map(|t| t.to_string()), Some("t1".into()));
        let two = headers(&[("TenantId", "t1"), ("tenant_id", "t2")]);
        assert!(matches!(tenant(&two), Err(AuthError::InvalidTenant(TenantProblem::Ambiguous))));
    }

    #[test]
    fn bad_tenant_values_are_400s() {
        assert_eq!(reason(tenant(&headers(&[("TenantId", "../x")]))), "InvalidTenant");
        let huge = "a".repeat(MAX_HEADER_BYTES + 1);
        assert_eq!(reason(tenant(&headers(&[("TenantId", &huge)]))), "InvalidTenant");
        let mut map = HeaderMap::new();
        map.insert("tenantid", HeaderValue::from_bytes(b"t\xff").expect("opaque bytes"));
        assert_eq!(reason(tenant(&map)), "InvalidTenant");
    }

    #[test]
    fn bearer_scheme_in_any_case() {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let map = headers(&[("Authorization", &format!("{scheme} a.b.c"))]);
            assert_eq!(token(&map).expect(scheme), Some("a.b.c"));
        }
    }

    #[test]
    fn legacy_auth_jwt_raw_or_with_scheme() {
        assert_eq!(token(&headers(&[("auth_jwt", "a.b.c")])).expect("raw"), Some("a.b.c"));
        assert_eq!(
            token(&headers(&[("auth_jwt", "Bearer a.b.c")])).expect("bearer"),
            Some("a.b.c")
        );
    }

    #[test]
    fn authorization_wins_over_auth_jwt() {
        let map = headers(&[("auth_jwt", "x.y.z"), ("Authorization", "Bearer a.b.c")]);
        assert_eq!(token(&map).expect("ok"), Some("a.b.c"));
    }

    #[test]
    fn no_token_is_none() {
        assert_eq!(token(&headers(&[])).expect("ok"), None);
        assert_eq!(token(&headers(&[("Authorization", "")])).expect("ok"), None);
    }

    #[test]
    fn refused_token_headers() {
        assert_eq!(reason(token(&headers(&[("Authorization", "Basic dTpw")]))), "NotBearerScheme");
        assert_eq!(reason(token(&headers(&[("Authorization", "Bearer ")]))), "MalformedToken");
        let twice =
            headers(&[("Authorization", "Bearer a.b.c"), ("Authorization", "Bearer d.e.f")]);
        assert_eq!(reason(token(&twice)), "AmbiguousToken");
        let huge = format!("Bearer {}", "a".repeat(MAX_HEADER_BYTES));
        assert_eq!(reason(token(&headers(&[("Authorization", &huge)]))), "TokenTooLarge");
        let huge_legacy = "a".repeat(MAX_HEADER_BYTES + 1);
        assert_eq!(reason(token(&headers(&[("auth_jwt", &huge_legacy)]))), "TokenTooLarge");
        let mut map = HeaderMap::new();
        map.insert(header::AUTHORIZATION, HeaderValue::from_bytes(b"Bearer \xff").expect("bytes"));
        assert_eq!(reason(token(&map)), "MalformedToken");
    }
}
