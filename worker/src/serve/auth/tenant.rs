//! The tenant a request acts for. Its id reaches file paths, MongoDB queries and logs,
//! so it is checked against a strict charset once, here, and carried as a type after.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::error::{AuthError, TenantProblem};

/// At most this many characters; UUIDs (36) and the SDK's short ids fit.
const MAX_LEN: usize = 64;

/// A tenant id matching `^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

impl TenantId {
    pub fn parse(value: &str) -> Result<Self, AuthError> {
        check(value).map_err(AuthError::InvalidTenant)?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn check(value: &str) -> Result<(), TenantProblem> {
    let bytes = value.as_bytes();
    if bytes.len() > MAX_LEN {
        return Err(TenantProblem::TooLong);
    }
    let Some((first, rest)) = bytes.split_first() else {
        return Err(TenantProblem::Charset);
    };
    // A leading `-` or `_` could read as an option or a hidden name where the id lands.
    let valid = first.is_ascii_alphanumeric()
        && rest.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
    if valid { Ok(()) } else { Err(TenantProblem::Charset) }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for TenantId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Serialize for TenantId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

// Deserializing checks too, so an id read from a path or a body is as safe as a header's.
impl<'de> Deserialize<'de> for TenantId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        check(&value).map_err(|problem| serde::de::Error::custom(problem.to_string()))?;
        Ok(Self(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_uuids_and_short_ids() {
        for id in ["a", "Z9", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "tenant_1", &"a".repeat(64)] {
            assert_eq!(TenantId::parse(id).expect(id).as_str(), id);
        }
    }

    #[test]
    fn refuses_everything_outside_the_charset() {
        let long = "a".repeat(65);
        let refused =
            ["", "-a", "_a", "a/b", "../x", "a.b", "a b", "a\0", "é", "a\n", "$where", "{}", &long];
        for id in refused {
            let error = TenantId::parse(id).expect_err(id);
            assert_eq!(error.reason(), "InvalidTenant", "{id:?}");
        }
    }

    #[test]
    fn too_long_is_told_apart_from_a_bad_character() {
        assert!(matches!(check(&"a".repeat(65)), Err(TenantProblem::TooLong)));
        assert!(matches!(check("a/b"), Err(TenantProblem::Charset)));
    }

    #[test]
    fn displays_and_serializes_as_the_plain_id() {
        let id = TenantId::parse("t-1").expect("valid");
        assert_eq!(id.to_string(), "t-1");
        assert_eq!(serde_json::to_string(&id).expect("serializes"), "\"t-1\"");
        let back: TenantId = serde_json::from_str("\"t-1\"").expect("deserializes");
        assert_eq!(back, id);
        assert!(serde_json::from_str::<TenantId>("\"../etc\"").is_err());
    }
}
