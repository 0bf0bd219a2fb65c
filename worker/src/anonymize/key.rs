//! The key file and the keys derived from it.
//!
//! The key file holds a passphrase (its content, one trailing newline trimmed, so that
//! `echo secret > key` works). Two keys come from it:
//! - the token key, 64 bytes for AES-256-SIV, derived with HKDF-SHA256. A passphrase is
//!   text of any length while AES-SIV needs exactly 64 bytes; HKDF turns the one into
//!   the other, and its fixed `info` string separates this key from any other key made
//!   from the same passphrase (the SDK v2 key below is the passphrase's bare SHA-256:
//!   with HKDF the two share no key material). HKDF does not slow down guessing: the
//!   passphrase must be a long random secret (e.g. `openssl rand -base64 32`), not a
//!   word, since anyone holding tokens and guessing a plain value can test passphrases.
//!   There is no salt on purpose: the same passphrase must give the same tokens on every
//!   machine and in every upload, so that joins survive.
//! - the SDK v2 key, SHA-256 of the passphrase (UTF-8), to read old tokens.

use std::path::Path;

use hkdf::Hkdf;
use sha2::{Digest, Sha256};

use super::error::KeyError;

/// Names this use of the passphrase; changing it changes every token.
const TOKEN_KEY_INFO: &[u8] = b"licenseware-worker anonymize: AES-256-SIV token key v1";

/// The token key's size: AES-256-SIV uses two 256-bit keys (S2V/CMAC and CTR).
pub const TOKEN_KEY_LEN: usize = 64;

/// The keys derived from one passphrase.
#[derive(Clone)]
pub struct Keys {
    pub(super) token: [u8; TOKEN_KEY_LEN],
    pub(super) legacy: [u8; 32],
}

// Keys never reach logs.
impl std::fmt::Debug for Keys {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("Keys(..)")
    }
}

impl Keys {
    /// Reads the key file: its content, one trailing newline (`\n` or `\r\n`) trimmed.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let content = std::fs::read(path)
            .map_err(|source| KeyError::Unreadable { path: path.to_owned(), source })?;
        let passphrase = trim_one_newline(&content);
        if passphrase.is_empty() {
            return Err(KeyError::Empty { path: path.to_owned() });
        }
        Self::from_passphrase(passphrase)
    }

    pub fn from_passphrase(passphrase: &[u8]) -> Result<Self, KeyError> {
        let mut token = [0u8; TOKEN_KEY_LEN];
        Hkdf::<Sha256>::new(None, passphrase)
            .expand(TOKEN_KEY_INFO, &mut token)
            .map_err(|error| KeyError::Derivation(error.to_string()))?;
        let legacy: [u8; 32] = Sha256::digest(passphrase).into();
        Ok(Self { token, legacy })
    }
}

fn trim_one_newline(content: &[u8]) -> &[u8] {
    let content = content.strip_suffix(b"\n").unwrap_or(content);
    content.strip_suffix(b"\r").unwrap_or(content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_not_part_of_the_passphrase() {
        assert_eq!(trim_one_newline(b"secret\n"), b"secret");
        assert_eq!(trim_one_newline(b"secret\r\n"), b"secret");
        assert_eq!(trim_one_newline(b"secret\n\n"), b"secret\n");
        assert_eq!(trim_one_newline(b"secret"), b"secret");
    }

    #[test]
    fn an_empty_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "\n").unwrap();
        let error = Keys::load(&path).unwrap_err();
        assert_eq!(error.reason(), "KeyFileEmpty");
        let missing = Keys::load(&dir.path().join("absent")).unwrap_err();
        assert_eq!(missing.reason(), "KeyFileUnreadable");
    }

    #[test]
    fn the_token_key_and_the_legacy_key_differ() {
        let keys = Keys::from_passphrase(b"password").unwrap();
        assert_ne!(&keys.token[..32], &keys.legacy[..]);
        assert_ne!(&keys.token[32..], &keys.legacy[..]);
        let again = Keys::from_passphrase(b"password").unwrap();
        assert_eq!(keys.token, again.token, "derivation is deterministic");
    }
}
