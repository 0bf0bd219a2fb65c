//! Size bounds of a dead letter. A dead letter echoes its input (headers, payload, an
//! error message that quotes a bogus field) plus headers of its own, so an input near
//! the size limit makes a letter past it, which the broker refuses for ever. Bounded,
//! it always fits: header values cut, a big payload replaced by a stub that still
//! identifies it (SHA-256 and size).

use sha2::{Digest, Sha256};

/// Limits of a dead letter's parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of one header value (the truncation marker comes on top).
    pub header_value: usize,
    /// Headers of the original message kept; later ones are dropped.
    pub headers: usize,
    /// Bytes of the key; a longer one is replaced by its hash.
    pub key: usize,
    /// Bytes of the payload; a larger one is replaced by a stub.
    pub payload: usize,
}

/// Far below the producer's `message.max.bytes` (1,000,000 by default) and the
/// broker's: 64 headers of 1 KiB and the `lw-*` ones leave ~400 KiB of headroom.
pub const DEFAULT_LIMITS: Limits =
    Limits { header_value: 1024, headers: 64, key: 1024, payload: 512 * 1024 };

/// What [`minimal`](super::DeadLetter::minimal) letters keep: the letter of last resort
/// when the bounded one was still refused as too large (a DLQ topic with a small
/// `max.message.bytes`).
pub const MINIMAL_LIMITS: Limits = Limits { header_value: 256, headers: 0, key: 128, payload: 0 };

/// `value` cut to at most `max` bytes (at a character boundary when it is text) with a
/// marker saying how long it was; `None` when it fits.
pub fn truncate(value: &[u8], max: usize) -> Option<Vec<u8>> {
    if value.len() <= max {
        return None;
    }
    // A text value is cut at a character boundary; bytes are bytes.
    let text = std::str::from_utf8(value).map_or_else(|error| error.valid_up_to() >= max, |_| true);
    let cut = if text { char_boundary(value, max) } else { max };
    let mut truncated = value[..cut].to_vec();
    truncated.extend_from_slice(format!("...[truncated from {} bytes]", value.len()).as_bytes());
    Some(truncated)
}

/// The largest `n <= max` that does not split a UTF-8 sequence of `text`.
fn char_boundary(text: &[u8], max: usize) -> usize {
    let mut cut = max.min(text.len());
    // Continuation bytes are 0b10xxxxxx.
    while cut > 0 && text.get(cut).is_some_and(|byte| byte & 0xC0 == 0x80) {
        cut -= 1;
    }
    cut
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().fold(String::with_capacity(64), |mut hex, byte| {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        hex
    })
}

/// The JSON that stands in for a payload of `size` bytes that is not kept.
pub fn payload_stub(payload: &[u8], why: &str) -> Vec<u8> {
    serde_json::json!({
        "lw_dead_letter_stub": {
            "reason": why,
            "size": payload.len(),
            "sha256": sha256_hex(payload),
        }
    })
    .to_string()
    .into_bytes()
}

/// A key of at most `max` bytes: the key itself, or `sha256:{hex}` of it.
pub fn bounded_key(key: &[u8], max: usize) -> Vec<u8> {
    if key.len() <= max { key.to_vec() } else { format!("sha256:{}", sha256_hex(key)).into_bytes() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_values_are_kept_and_long_ones_cut_with_a_marker() {
        assert_eq!(truncate(b"short", 10), None);
        assert_eq!(truncate(b"0123456789", 10), None);
        let cut = truncate(b"0123456789abc", 10).unwrap();
        assert_eq!(cut, b"0123456789...[truncated from 13 bytes]");
    }

    #[test]
    fn text_is_cut_at_a_character_boundary() {
        // 'é' is two bytes: a cut after 3 bytes would split the second one.
        let cut = truncate("éé-long".as_bytes(), 3).unwrap();
        assert_eq!(String::from_utf8(cut).unwrap(), "é...[truncated from 9 bytes]");
        let binary = [0xff_u8; 20];
        assert_eq!(truncate(&binary, 4).unwrap()[..4], [0xff; 4]);
    }

    #[test]
    fn stubs_and_keys_identify_what_they_replace() {
        let payload = vec![b'x'; 100];
        let stub: serde_json::Value =
            serde_json::from_slice(&payload_stub(&payload, "Big")).unwrap();
        assert_eq!(stub["lw_dead_letter_stub"]["size"], 100);
        assert_eq!(stub["lw_dead_letter_stub"]["reason"], "Big");
        assert_eq!(stub["lw_dead_letter_stub"]["sha256"], sha256_hex(&payload));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(bounded_key(b"e-1", 8), b"e-1");
        assert_eq!(
            bounded_key(&[b'k'; 9], 8),
            format!("sha256:{}", sha256_hex(&[b'k'; 9])).as_bytes()
        );
    }
}
