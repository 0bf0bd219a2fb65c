use rdkafka::Timestamp;

use super::*;

fn message(payload: &[u8], headers: OwnedHeaders) -> OwnedMessage {
    OwnedMessage::new(
        Some(payload.to_vec()),
        Some(b"e-1".to_vec()),
        "app.up.events".into(),
        Timestamp::NotAvailable,
        3,
        42,
        Some(headers),
    )
}

fn pairs(letter: &Letter) -> Vec<(String, String)> {
    letter
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), String::from_utf8_lossy(v).into_owned()))
        .collect()
}

fn header<'a>(letter: &'a Letter, name: &str) -> Option<&'a [u8]> {
    letter.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_slice())
}

#[test]
fn the_original_headers_stay_and_the_error_headers_are_added_once() {
    let original = OwnedHeaders::new()
        .insert(Header { key: "tenant_id", value: Some("t-1") })
        .insert(Header { key: "lw-error", value: Some("an older failure") })
        .insert(Header { key: "lw-truncated", value: Some("an older note") });
    let message = message(b"{}", original);
    let letter = DeadLetter::about(&message, "boom".into(), "ProcessingFailed", 5);
    let letter = letter.letter(&message, &DEFAULT_LIMITS);
    let expected = [
        ("tenant_id", "t-1"),
        ("lw-error", "boom"),
        ("lw-error-reason", "ProcessingFailed"),
        ("lw-attempts", "5"),
        ("lw-original-topic", "app.up.events"),
        ("lw-original-partition", "3"),
        ("lw-original-offset", "42"),
    ];
    let expected: Vec<(String, String)> =
        expected.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    assert_eq!(pairs(&letter), expected);
    assert_eq!(letter.key.as_deref(), Some(&b"e-1"[..]));
    assert_eq!(letter.payload.as_deref(), Some(&b"{}"[..]));
    let headers = letter.owned_headers();
    assert_eq!(header_text(Some(&headers), "lw-attempts"), Some("5"));
    assert_eq!(header_text(Some(&headers), "missing"), None);
    assert_eq!(header_text(None, "lw-attempts"), None);
}

#[test]
fn huge_headers_and_errors_are_cut_and_named() {
    let bogus = "x".repeat(600_000);
    let original = OwnedHeaders::new()
        .insert(Header { key: "tenant_id", value: Some(bogus.as_str()) })
        .insert(Header { key: "event_id", value: Some("e-1") });
    let message = message(b"{}", original);
    let error = format!("tenant_id is {bogus:?}, not a UUID");
    let letter =
        DeadLetter::about(&message, error, "InvalidId", 0).letter(&message, &DEFAULT_LIMITS);
    assert!(letter.size() < 16 * 1024, "{} bytes", letter.size());
    let tenant = header(&letter, "tenant_id").unwrap();
    assert!(tenant.starts_with(&[b'x'; 1024]));
    assert!(tenant.ends_with(b"...[truncated from 600000 bytes]"), "{:?}", &tenant[1000..]);
    let error = String::from_utf8_lossy(header(&letter, "lw-error").unwrap()).into_owned();
    assert!(error.starts_with("tenant_id is \"xxx") && error.contains("[truncated from"));
    assert_eq!(header(&letter, "event_id"), Some(&b"e-1"[..]));
    assert_eq!(header(&letter, "lw-truncated"), Some(&b"tenant_id,lw-error"[..]));
}

#[test]
fn a_huge_payload_becomes_a_stub_with_its_hash_and_size() {
    let payload = vec![b'{'; DEFAULT_LIMITS.payload + 1];
    let message = message(&payload, OwnedHeaders::new());
    let letter = DeadLetter::about(&message, "NotJson".into(), "NotJson", 0);
    let letter = letter.letter(&message, &DEFAULT_LIMITS);
    let stub: serde_json::Value =
        serde_json::from_slice(letter.payload.as_deref().unwrap()).unwrap();
    assert_eq!(stub["lw_dead_letter_stub"]["size"], payload.len());
    assert_eq!(stub["lw_dead_letter_stub"]["sha256"], bound::sha256_hex(&payload));
    let note = String::from_utf8_lossy(header(&letter, "lw-payload").unwrap()).into_owned();
    assert_eq!(note, format!("stub of {} bytes", payload.len()));
    // Just under the limit, the payload is kept.
    let payload = vec![b'{'; DEFAULT_LIMITS.payload];
    let message = self::message(&payload, OwnedHeaders::new());
    let letter =
        DeadLetter::about(&message, "x".into(), "NotJson", 0).letter(&message, &DEFAULT_LIMITS);
    assert_eq!(letter.payload.as_deref(), Some(payload.as_slice()));
}

#[test]
fn many_headers_and_long_keys_are_bounded() {
    let headers = (0..100).fold(OwnedHeaders::new(), |headers, _| {
        headers.insert(Header { key: "h", value: Some("v") })
    });
    let mut message = message(b"{}", headers);
    message = OwnedMessage::new(
        message.payload().map(<[u8]>::to_vec),
        Some(vec![b'k'; 5000]),
        message.topic().to_owned(),
        Timestamp::NotAvailable,
        0,
        0,
        message.headers().cloned(),
    );
    let letter = DeadLetter::about(&message, "x".into(), "r", 1).letter(&message, &DEFAULT_LIMITS);
    assert_eq!(letter.headers.iter().filter(|(k, _)| k == "h").count(), 64);
    assert_eq!(header(&letter, "lw-headers-dropped"), Some(&b"36"[..]));
    assert!(letter.key.as_ref().unwrap().starts_with(b"sha256:"));
    assert_eq!(header(&letter, "lw-truncated"), Some(&b"key"[..]));
}

#[test]
fn the_users_token_leaves_no_trace() {
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl";
    let payload = serde_json::json!({
        "schema": "ProcessingEvent:1",
        "data": {"tenant_id": "t", "authorization": format!("Bearer {jwt}"), "event_id": "e"},
    })
    .to_string();
    let headers = OwnedHeaders::new()
        .insert(Header { key: "Authorization", value: Some(format!("Bearer {jwt}").as_str()) })
        .insert(Header { key: "note", value: Some(format!("token {jwt}").as_str()) });
    let message = message(payload.as_bytes(), headers);
    let letter = DeadLetter::about(&message, format!("bad token {jwt}"), "r", 1);
    let letter = letter.letter(&message, &DEFAULT_LIMITS);
    let everything = format!(
        "{:?}{:?}",
        pairs(&letter),
        String::from_utf8_lossy(letter.payload.as_deref().unwrap())
    );
    assert!(!everything.contains(jwt), "{everything}");
    assert!(!everything.contains("authorization\""), "{everything}");
    let data: serde_json::Value =
        serde_json::from_slice(letter.payload.as_deref().unwrap()).unwrap();
    assert_eq!(data["data"]["tenant_id"], "t");
    assert_eq!(header(&letter, "lw-redacted"), Some(&b"payload,Authorization,note"[..]));
    assert_eq!(header(&letter, "note"), Some(&b"token [redacted]"[..]));
}

#[test]
fn the_minimal_letter_keeps_only_the_cause() {
    let headers = OwnedHeaders::new().insert(Header { key: "tenant_id", value: Some("t") });
    let message = message(&[b'y'; 2000], headers);
    let letter = DeadLetter::about(&message, "e".repeat(1000), "r", 2).minimal(&message);
    assert_eq!(header(&letter, "tenant_id"), None);
    assert_eq!(header(&letter, "lw-attempts"), Some(&b"2"[..]));
    assert!(letter.size() < 2048, "{}", letter.size());
    let stub: serde_json::Value =
        serde_json::from_slice(letter.payload.as_deref().unwrap()).unwrap();
    assert_eq!(stub["lw_dead_letter_stub"]["size"], 2000);
}
