//! Dead letters: the original message (key, value, headers) on the uploader's DLQ
//! topic, with why and where it came from in `lw-*` headers, so that an operator can
//! read the cause and replay the message to the events topic as it was.

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};

/// Why and from where a message is dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    pub error: String,
    pub reason: String,
    /// Processing attempts made: 0 for a message that did not parse.
    pub attempts: u32,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
}

/// Headers this module adds; earlier ones of the same names (a replayed dead letter
/// that failed again) are dropped so that each appears once.
pub const HEADER_NAMES: [&str; 6] = [
    "lw-error",
    "lw-error-reason",
    "lw-attempts",
    "lw-original-topic",
    "lw-original-partition",
    "lw-original-offset",
];

impl DeadLetter {
    pub fn about(message: &OwnedMessage, error: String, reason: &str, attempts: u32) -> Self {
        Self {
            error,
            reason: reason.to_owned(),
            attempts,
            topic: message.topic().to_owned(),
            partition: message.partition(),
            offset: message.offset(),
        }
    }

    /// The `lw-*` header values, in [`HEADER_NAMES`] order.
    pub fn header_values(&self) -> [String; 6] {
        [
            self.error.clone(),
            self.reason.clone(),
            self.attempts.to_string(),
            self.topic.clone(),
            self.partition.to_string(),
            self.offset.to_string(),
        ]
    }

    /// The original headers, then the `lw-*` ones.
    pub fn headers(&self, original: Option<&OwnedHeaders>) -> OwnedHeaders {
        let mut headers = OwnedHeaders::new();
        for header in original.into_iter().flat_map(|h| h.iter()) {
            if !HEADER_NAMES.contains(&header.key) {
                headers = headers.insert(header);
            }
        }
        for (key, value) in HEADER_NAMES.iter().zip(self.header_values()) {
            headers = headers.insert(Header { key, value: Some(value.as_bytes()) });
        }
        headers
    }
}

/// A header of a message as text, if present and UTF-8.
pub fn header_text<'a>(headers: Option<&'a OwnedHeaders>, key: &str) -> Option<&'a str> {
    headers?
        .iter()
        .filter(|header| header.key == key)
        .last()
        .and_then(|header| std::str::from_utf8(header.value?).ok())
}

#[cfg(test)]
mod tests {
    use rdkafka::Timestamp;

    use super::*;

    #[test]
    fn the_original_headers_stay_and_the_error_headers_are_added_once() {
        let original = OwnedHeaders::new()
            .insert(Header { key: "tenant_id", value: Some("t-1") })
            .insert(Header { key: "lw-error", value: Some("an older failure") });
        let message = OwnedMessage::new(
            Some(b"{}".to_vec()),
            Some(b"e-1".to_vec()),
            "app.up.events".into(),
            Timestamp::NotAvailable,
            3,
            42,
            Some(original),
        );
        let letter = DeadLetter::about(&message, "boom".into(), "ProcessingFailed", 5);
        let headers = letter.headers(message.headers());
        let pairs: Vec<(String, String)> = headers
            .iter()
            .map(|h| (h.key.to_owned(), String::from_utf8_lossy(h.value.unwrap()).into_owned()))
            .collect();
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
        assert_eq!(pairs, expected);
        assert_eq!(header_text(Some(&headers), "lw-attempts"), Some("5"));
        assert_eq!(header_text(Some(&headers), "missing"), None);
        assert_eq!(header_text(None, "lw-attempts"), None);
    }
}
