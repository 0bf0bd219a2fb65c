//! Tokens: `#sc#{base64}#ec#`, the SDK's form. The base64 is the standard alphabet with
//! `+` written `-` and `/` written `:` (so a token is a valid file name on Linux and
//! never adds a path separator; `:` is not valid in Windows file names), `=` padding
//! kept.
//!
//! The bytes are AES-256-SIV (RFC 5297) of the value with no nonce and no associated
//! data: deterministic authenticated encryption. The same value always gives the same
//! token under one key, so joins between files and uploads survive anonymization, and
//! only the key holder can read it back. What determinism gives away: equal tokens
//! reveal equal values, and a token's length reveals its value's length (16 bytes more).

use std::collections::HashMap;

use aes_siv::KeyInit;
use aes_siv::siv::Aes256Siv;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::error::{KeyError, TokenError};
use super::key::Keys;
use super::legacy;

pub const START_TAG: &str = "#sc#";
pub const END_TAG: &str = "#ec#";

/// No associated data: a token depends on the value and the key only.
const NO_HEADERS: [&[u8]; 0] = [];

/// Beyond this many distinct values the cache starts over: it only saves work on the
/// repeated values of a column, and must not grow with the file.
const CACHE_LIMIT: usize = 100_000;

/// Makes and reads tokens with the keys of one passphrase.
pub struct Tokenizer {
    siv: Aes256Siv,
    legacy_key: [u8; 32],
    cache: HashMap<Vec<u8>, String>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Tokenizer(..)")
    }
}

impl Tokenizer {
    pub fn new(keys: &Keys) -> Result<Self, KeyError> {
        let siv = Aes256Siv::new_from_slice(&keys.token)
            .map_err(|error| KeyError::Derivation(error.to_string()))?;
        Ok(Self { siv, legacy_key: keys.legacy, cache: HashMap::new() })
    }

    /// The token of a value (its bytes; text values are their UTF-8).
    pub fn token(&mut self, plain: &[u8]) -> Result<String, TokenError> {
        if let Some(token) = self.cache.get(plain) {
            return Ok(token.clone());
        }
        let sealed = self
            .siv
            .encrypt(NO_HEADERS, plain)
            .map_err(|error| TokenError::Encrypt(error.to_string()))?;
        let token = encode(&sealed);
        if self.cache.len() >= CACHE_LIMIT {
            self.cache.clear();
        }
        self.cache.insert(plain.to_vec(), token.clone());
        Ok(token)
    }

    /// The plain value of a token: this tool's SIV form first, then the SDK v2 form.
    /// The tags are optional, so a value copied without them still decrypts.
    pub fn reveal(&mut self, token: &str) -> Result<Vec<u8>, TokenError> {
        let sealed = decode(token).ok_or_else(|| TokenError::NotBase64 { token: token.into() })?;
        if let Ok(plain) = self.siv.decrypt(NO_HEADERS, &sealed) {
            return Ok(plain);
        }
        legacy::decrypt(&self.legacy_key, &sealed)
            .ok_or_else(|| TokenError::WrongKeyOrDamaged { token: token.into() })
    }
}

/// Wraps token bytes in the SDK's tags and alphabet.
pub fn encode(sealed: &[u8]) -> String {
    let base64 = STANDARD.encode(sealed).replace('+', "-").replace('/', ":");
    format!("{START_TAG}{base64}{END_TAG}")
}

/// The bytes of a token. The SDK appended one `=` when the text did not end with `=`
/// (wrong when two were missing, or none); here the padding is rebuilt to a multiple of
/// 4, so a token whose `=` were lost (a spreadsheet or a URL trimmed them) still reads.
pub fn decode(token: &str) -> Option<Vec<u8>> {
    let token = token.trim();
    let token = token.strip_prefix(START_TAG).unwrap_or(token);
    let token = token.strip_suffix(END_TAG).unwrap_or(token);
    let mut base64 = token.trim_end_matches('=').replace('-', "+").replace(':', "/");
    if base64.len() % 4 == 1 {
        return None;
    }
    while !base64.len().is_multiple_of(4) {
        base64.push('=');
    }
    STANDARD.decode(base64).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokenizer(passphrase: &str) -> Tokenizer {
        Tokenizer::new(&Keys::from_passphrase(passphrase.as_bytes()).unwrap()).unwrap()
    }

    #[test]
    fn the_same_value_gives_the_same_token() {
        let first = tokenizer("k1").token(b"DeviceX").unwrap();
        // A fresh tokenizer: no cache, the determinism is the cipher's.
        let second = tokenizer("k1").token(b"DeviceX").unwrap();
        assert_eq!(first, second);
        assert_ne!(first, tokenizer("k1").token(b"DeviceY").unwrap());
    }

    #[test]
    fn distinct_keys_give_distinct_tokens() {
        assert_ne!(
            tokenizer("k1").token(b"DeviceX").unwrap(),
            tokenizer("k2").token(b"DeviceX").unwrap()
        );
    }

    #[test]
    fn tokens_have_the_sdk_form() {
        let mut tokenizer = tokenizer("k1");
        for value in ["", "a", "somedb234", "ü€😀 non-ASCII", &"x".repeat(1000)] {
            let token = tokenizer.token(value.as_bytes()).unwrap();
            let body = token.strip_prefix("#sc#").and_then(|t| t.strip_suffix("#ec#")).unwrap();
            assert!(!body.contains(['+', '/', '#']), "{token}");
            assert!(body.chars().all(|c| c.is_ascii_alphanumeric() || "-:=".contains(c)));
            assert_eq!(body.len() % 4, 0, "padding kept");
        }
    }

    #[test]
    fn tokens_round_trip_including_non_ascii() {
        let mut tokenizer = tokenizer("k1");
        for value in ["", "hello john", "Łódź-客户-😀", "LMS_OPTIONS_x.csv", &"é".repeat(333)]
        {
            let token = tokenizer.token(value.as_bytes()).unwrap();
            assert_eq!(tokenizer.reveal(&token).unwrap(), value.as_bytes());
        }
    }

    #[test]
    fn a_token_of_another_key_or_not_base64_is_refused() {
        let token = tokenizer("k1").token(b"hello john").unwrap();
        assert_eq!(tokenizer("k2").reveal(&token).unwrap_err().reason(), "TokenDoesNotDecrypt");
        assert_eq!(
            tokenizer("k1").reveal("#sc#not*base64#ec#").unwrap_err().reason(),
            "TokenNotBase64"
        );
        let mut damaged = token.into_bytes();
        damaged[6] = if damaged[6] == b'A' { b'B' } else { b'A' };
        let damaged = String::from_utf8(damaged).unwrap();
        assert_eq!(tokenizer("k1").reveal(&damaged).unwrap_err().reason(), "TokenDoesNotDecrypt");
    }

    #[test]
    fn lost_padding_and_missing_tags_are_tolerated() {
        let mut tokenizer = tokenizer("k1");
        // 16 + 3 bytes: base64 ends with "==".
        let token = tokenizer.token(b"abc").unwrap();
        assert!(token.ends_with("==#ec#"), "{token}");
        let bare = token.trim_start_matches("#sc#").trim_end_matches("#ec#").trim_end_matches('=');
        assert_eq!(tokenizer.reveal(bare).unwrap(), b"abc");
    }

    #[test]
    fn sdk_v2_tokens_decrypt() {
        let keys = Keys::from_passphrase(b"password").unwrap();
        let mut tokenizer = Tokenizer::new(&keys).unwrap();
        for value in ["hello john", "SECRET", "deviceName", "database", "x", "0123456789abcdef"] {
            let token =
                encode(&legacy::encrypt(&keys.legacy, legacy::random_iv(), value.as_bytes()));
            assert_eq!(tokenizer.reveal(&token).unwrap(), value.as_bytes(), "{token}");
            // The SDK's own decrypt appended one `=`: a token missing one still reads.
            let shortened = token.replacen("=#ec#", "#ec#", 1);
            assert_eq!(tokenizer.reveal(&shortened).unwrap(), value.as_bytes());
        }
    }
}
