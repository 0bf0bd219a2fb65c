//! Dead letters: the original message (key, value, headers) on the uploader's DLQ
//! topic, with why and where it came from in `lw-*` headers, so that an operator can
//! read the cause and replay the message to the events topic. A letter is bounded (see
//! [`bound`]) and carries no credentials (see [`redact`]); what was cut or removed is
//! named in its `lw-truncated`, `lw-redacted` and `lw-payload` headers.

pub mod bound;
pub mod produce;
pub mod redact;

use rdkafka::Message;
use rdkafka::message::{Header, Headers, OwnedHeaders, OwnedMessage};

pub use bound::{DEFAULT_LIMITS, Limits, MINIMAL_LIMITS};

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

/// Headers that say how the letter differs from the original message.
pub const ALTERED_HEADERS: [&str; 4] =
    ["lw-truncated", "lw-redacted", "lw-payload", "lw-headers-dropped"];

/// The message produced to the DLQ topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub key: Option<Vec<u8>>,
    pub payload: Option<Vec<u8>>,
    pub headers: Vec<(String, Vec<u8>)>,
}

impl Letter {
    pub fn owned_headers(&self) -> OwnedHeaders {
        self.headers.iter().fold(OwnedHeaders::new(), |headers, (key, value)| {
            headers.insert(Header { key, value: Some(value) })
        })
    }

    /// Bytes of key, payload, header names and values: what counts against
    /// `message.max.bytes`, give or take the record's framing.
    pub fn size(&self) -> usize {
        let parts =
            self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len);
        parts + self.headers.iter().map(|(k, v)| k.len() + v.len()).sum::<usize>()
    }
}

/// What was changed while a letter was made, for its `lw-*` headers.
#[derive(Default)]
struct Changes {
    truncated: Vec<String>,
    redacted: Vec<String>,
    dropped_headers: usize,
}

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

    /// The letter of `original` within `limits`: its key, its payload without the user's
    /// token (or a stub), its headers without credentials, then the `lw-*` ones.
    pub fn letter(&self, original: &OwnedMessage, limits: &Limits) -> Letter {
        let mut changes = Changes::default();
        let key = original.key().map(|key| {
            let bounded = bound::bounded_key(key, limits.key);
            if bounded.len() != key.len() {
                changes.truncated.push("key".to_owned());
            }
            bounded
        });
        let mut payload_note = None;
        let payload = original.payload().map(|payload| {
            if payload.len() > limits.payload {
                payload_note = Some(format!("stub of {} bytes", payload.len()));
                return bound::payload_stub(payload, "PayloadTooLarge");
            }
            match redact::redact_payload(payload) {
                Some(redacted) => {
                    changes.redacted.push("payload".to_owned());
                    redacted
                }
                None => payload.to_vec(),
            }
        });
        let mut headers = original_headers(original, limits, &mut changes);
        for (name, value) in HEADER_NAMES.iter().zip(self.header_values()) {
            let value = redact::redact_tokens(value.as_bytes()).unwrap_or(value.into_bytes());
            headers.push(bounded_header((*name).to_owned(), value, limits, &mut changes));
        }
        headers.extend(notes(&changes, payload_note, limits));
        Letter { key, payload, headers }
    }

    /// The smallest letter that still says what happened: the `lw-*` headers (cut
    /// short) and a stub for the payload; the original's headers are left out.
    pub fn minimal(&self, original: &OwnedMessage) -> Letter {
        self.letter(original, &MINIMAL_LIMITS)
    }
}

/// The original message's headers that a letter keeps: no earlier `lw-*` ones, no
/// credentials, at most `limits.headers`, each bounded.
fn original_headers(
    original: &OwnedMessage,
    limits: &Limits,
    changes: &mut Changes,
) -> Vec<(String, Vec<u8>)> {
    let mut headers = Vec::new();
    for header in original.headers().into_iter().flat_map(|h| h.iter()) {
        if HEADER_NAMES.contains(&header.key) || ALTERED_HEADERS.contains(&header.key) {
            continue;
        }
        if redact::is_secret_header(header.key) {
            changes.redacted.push(bounded_name(header.key));
            continue;
        }
        if headers.len() >= limits.headers {
            changes.dropped_headers += 1;
            continue;
        }
        let name = bounded_name(header.key);
        let value = header.value.unwrap_or_default();
        let value = match redact::redact_tokens(value) {
            Some(redacted) => {
                changes.redacted.push(name.clone());
                redacted
            }
            None => value.to_vec(),
        };
        headers.push(bounded_header(name, value, limits, changes));
    }
    headers
}

/// The headers that say what the letter changed, those that are not empty.
fn notes(
    changes: &Changes,
    payload_note: Option<String>,
    limits: &Limits,
) -> Vec<(String, Vec<u8>)> {
    let dropped = (changes.dropped_headers > 0).then(|| changes.dropped_headers.to_string());
    let notes = [
        ("lw-truncated", changes.truncated.join(",")),
        ("lw-redacted", changes.redacted.join(",")),
        ("lw-payload", payload_note.unwrap_or_default()),
        ("lw-headers-dropped", dropped.unwrap_or_default()),
    ];
    notes
        .into_iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| {
            // The lists name each header at most once, and are bounded like values.
            let value = bound::truncate(value.as_bytes(), limits.header_value.max(256))
                .unwrap_or(value.into_bytes());
            (name.to_owned(), value)
        })
        .collect()
}

/// A header name as kept: names are bounded like values (a name is input too).
fn bounded_name(name: &str) -> String {
    match bound::truncate(name.as_bytes(), 128) {
        Some(cut) => String::from_utf8_lossy(&cut).into_owned(),
        None => name.to_owned(),
    }
}

fn bounded_header(
    name: String,
    value: Vec<u8>,
    limits: &Limits,
    changes: &mut Changes,
) -> (String, Vec<u8>) {
    match bound::truncate(&value, limits.header_value) {
        Some(cut) => {
            changes.truncated.push(name.clone());
            (name, cut)
        }
        None => (name, value),
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
mod tests;
