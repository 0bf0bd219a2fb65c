//! SDK v2 tokens (`AESCipher`), read by `decrypt` only: AES-256-CBC with the key
//! SHA-256(passphrase), the token bytes are IV (16 bytes) ‖ ciphertext, PKCS#7 padding.
//! CBC carries no authentication, so a wrong key is detected only by the padding and the
//! UTF-8 check below: about one wrong key in 256 passes the padding, and the UTF-8 check
//! refuses most of those. That is why SIV is tried first and this form last.

use cbc::cipher::{BlockModeDecrypt, KeyIvInit, block_padding::Pkcs7};

const BLOCK: usize = 16;

type Decryptor = cbc::Decryptor<aes::Aes256>;

/// The plain value of an SDK v2 token's bytes, or None when they do not decrypt to
/// UTF-8 text with this key. The SDK encrypted `str` values, so anything else is a
/// wrong key or another kind of token.
pub fn decrypt(key: &[u8; 32], token: &[u8]) -> Option<Vec<u8>> {
    if token.len() < 2 * BLOCK || !token.len().is_multiple_of(BLOCK) {
        return None;
    }
    let (iv, ciphertext) = token.split_at(BLOCK);
    let plain =
        Decryptor::new_from_slices(key, iv).ok()?.decrypt_padded_vec::<Pkcs7>(ciphertext).ok()?;
    std::str::from_utf8(&plain).ok()?;
    Some(plain)
}

/// The SDK v2 encryption, for tests: it is how the companion app made tokens. Padding
/// is by bytes (the SDK padded characters, which broke on non-ASCII text).
#[cfg(test)]
pub fn encrypt(key: &[u8; 32], iv: [u8; 16], plain: &[u8]) -> Vec<u8> {
    use cbc::cipher::BlockModeEncrypt;
    let ciphertext = cbc::Encryptor::<aes::Aes256>::new_from_slices(key, &iv)
        .expect("32-byte key, 16-byte IV")
        .encrypt_padded_vec::<Pkcs7>(plain);
    [iv.as_slice(), &ciphertext].concat()
}

/// A fresh IV per call, as the SDK drew one: std's per-process random hasher keys are
/// enough for tests and avoid a dependency on a random number crate.
#[cfg(test)]
pub fn random_iv() -> [u8; 16] {
    use std::hash::{BuildHasher, RandomState};
    let state = RandomState::new();
    let mut iv = [0u8; 16];
    iv[..8].copy_from_slice(&state.hash_one(1u8).to_le_bytes());
    iv[8..].copy_from_slice(&state.hash_one(2u8).to_le_bytes());
    iv
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn key(passphrase: &str) -> [u8; 32] {
        Sha256::digest(passphrase.as_bytes()).into()
    }

    #[test]
    fn hello_john_round_trips() {
        let token = encrypt(&key("password"), random_iv(), b"hello john");
        assert_eq!(token.len(), 32, "IV and one block");
        assert_eq!(decrypt(&key("password"), &token).as_deref(), Some(&b"hello john"[..]));
    }

    #[test]
    fn random_ivs_give_distinct_ciphertexts() {
        let first = encrypt(&key("password"), random_iv(), b"hello john");
        let second = encrypt(&key("password"), random_iv(), b"hello john");
        assert_ne!(first, second);
    }

    #[test]
    fn a_wrong_key_or_a_bad_length_gives_nothing() {
        let token = encrypt(&key("password"), random_iv(), b"a longer value, two blocks");
        assert_eq!(decrypt(&key("other"), &token), None);
        assert_eq!(decrypt(&key("password"), &token[..token.len() - 1]), None);
        assert_eq!(decrypt(&key("password"), &token[..16]), None);
    }
}
