//! Secrets a dead letter must not carry: the user's JWT travels in the event
//! (`data.authorization`) and may come in headers; a DLQ topic is read by operators and
//! kept for weeks, far beyond the token's audience and lifetime.

use std::sync::LazyLock;

use regex::bytes::Regex;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Header names (compared lowercased) that carry credentials.
const SECRET_HEADERS: [&str; 4] = ["authorization", "proxy-authorization", "cookie", "set-cookie"];

/// Bearer tokens and JWT-shaped strings (three base64url parts, the first a JSON
/// object: `eyJ`), in text that is not JSON.
static TOKENS: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?i:bearer)\s+[A-Za-z0-9._~+/=-]+|eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*",
    )
    .ok()
});

/// Whether a header of this name is dropped from a dead letter.
pub fn is_secret_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_HEADERS.contains(&name.as_str()) || name.contains("authorization")
}

/// `value` with bearer tokens and JWTs replaced; `None` when it has none.
pub fn redact_tokens(value: &[u8]) -> Option<Vec<u8>> {
    let tokens = TOKENS.as_ref()?;
    tokens.is_match(value).then(|| tokens.replace_all(value, REDACTED.as_bytes()).into_owned())
}

/// The payload without the user's token: an event envelope loses `data.authorization`
/// (re-serialized, field order kept); any other payload has its token-shaped strings
/// replaced. `None` when there was nothing to remove.
pub fn redact_payload(payload: &[u8]) -> Option<Vec<u8>> {
    let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(payload) else {
        return redact_tokens(payload);
    };
    let removed = value
        .get_mut("data")
        .and_then(serde_json::Value::as_object_mut)
        .and_then(|data| data.remove("authorization"))
        .is_some();
    // A token elsewhere in the JSON (another producer's field, an echo in a value).
    let text = value.to_string().into_bytes();
    match (removed, redact_tokens(&text)) {
        (_, Some(redacted)) => Some(redacted),
        (true, None) => Some(text),
        (false, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";

    #[test]
    fn the_events_token_is_removed_and_the_rest_kept_in_order() {
        let payload = format!(
            r#"{{"schema":"ProcessingEvent:1","data":{{"tenant_id":"t","authorization":"Bearer {JWT}","event_id":"e"}}}}"#
        );
        let redacted = String::from_utf8(redact_payload(payload.as_bytes()).unwrap()).unwrap();
        assert_eq!(
            redacted,
            r#"{"schema":"ProcessingEvent:1","data":{"tenant_id":"t","event_id":"e"}}"#
        );
        assert_eq!(redact_payload(br#"{"schema":"x","data":{"tenant_id":"t"}}"#), None);
    }

    #[test]
    fn tokens_in_text_and_in_other_json_fields_are_replaced() {
        let text = format!("{{not json \"authorization\": \"Bearer {JWT}\"");
        let redacted = String::from_utf8(redact_payload(text.as_bytes()).unwrap()).unwrap();
        assert_eq!(redacted, "{not json \"authorization\": \"[redacted]\"");
        let other = format!(r#"{{"token":"{JWT}"}}"#);
        let redacted = String::from_utf8(redact_payload(other.as_bytes()).unwrap()).unwrap();
        assert_eq!(redacted, r#"{"token":"[redacted]"}"#);
        assert_eq!(redact_tokens(b"no secrets here"), None);
    }

    #[test]
    fn credential_headers_are_recognized_whatever_their_case() {
        for name in ["authorization", "Authorization", "X-Forwarded-Authorization", "Cookie"] {
            assert!(is_secret_header(name), "{name}");
        }
        for name in ["tenant_id", "event_id", "traceparent"] {
            assert!(!is_secret_header(name), "{name}");
        }
    }
}
