//! The client side of SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), as Kafka
//! runs it inside SaslAuthenticate: client-first, server-first, client-final,
//! server-final. No channel binding (`n,,`), as Kafka offers none.

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use hmac::{KeyInit, Mac};
use sha2::Digest;

/// Kafka's brokers use 4096 iterations and allow at most 16384; a server asking
/// for far more would make the client burn CPU on every connection.
const MAX_ITERATIONS: u32 = 65_536;
/// RFC 5802 §5.1: fewer than 4096 iterations is too weak to accept.
const MIN_ITERATIONS: u32 = 4096;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramHash {
    Sha256,
    Sha512,
}

/// Why a SCRAM exchange cannot go on. The broker's own refusals arrive as
/// SaslAuthenticate errors, not as these.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScramError {
    #[error("the server's SCRAM message is malformed: {0}")]
    Malformed(&'static str),
    #[error("the server's nonce does not extend the client's")]
    NonceMismatch,
    #[error("the server asks for {0} iterations, outside {MIN_ITERATIONS}..={MAX_ITERATIONS}")]
    Iterations(u32),
    #[error("the server refused the proof: {0}")]
    ServerError(String),
    #[error("the server's signature is wrong: it does not know the password")]
    ServerSignature,
}

/// One SCRAM exchange from the client's side.
#[derive(Debug)]
pub struct ScramClient {
    hash: ScramHash,
    password: Vec<u8>,
    client_nonce: String,
    client_first_bare: String,
}

/// What the client must still check after sending its proof.
#[derive(Debug)]
pub struct ExpectedServerSignature(Vec<u8>);

impl ScramClient {
    /// A fresh exchange with a random nonce.
    pub fn new(hash: ScramHash, username: &str, password: &str) -> Self {
        let nonce = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        Self::with_nonce(hash, username, password, &nonce)
    }

    fn with_nonce(hash: ScramHash, username: &str, password: &str, nonce: &str) -> Self {
        // RFC 5802 §5.1: '=' and ',' in a name are escaped. Passwords are taken as
        // UTF-8 bytes without SASLprep, which changes only non-ASCII spaces and the like.
        let name = username.replace('=', "=3D").replace(',', "=2C");
        Self {
            hash,
            password: password.as_bytes().to_vec(),
            client_nonce: nonce.to_owned(),
            client_first_bare: format!("n={name},r={nonce}"),
        }
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// The client-final message for `server_first`, and the signature the server
    /// must answer with.
    pub fn client_final(
        &self,
        server_first: &str,
    ) -> Result<(String, ExpectedServerSignature), ScramError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for attribute in server_first.split(',') {
            match attribute.split_once('=') {
                Some(("r", value)) => nonce = Some(value),
                Some(("s", value)) => salt = Some(value),
                Some(("i", value)) => iterations = Some(value),
                Some(("m", _)) => return Err(ScramError::Malformed("mandatory extension")),
                _ => {}
            }
        }
        let nonce = nonce.ok_or(ScramError::Malformed("no nonce"))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError::NonceMismatch);
        }
        let salt = BASE64
            .decode(salt.ok_or(ScramError::Malformed("no salt"))?)
            .map_err(|_| ScramError::Malformed("salt is not base64"))?;
        let iterations: u32 = iterations
            .ok_or(ScramError::Malformed("no iteration count"))?
            .parse()
            .map_err(|_| ScramError::Malformed("iteration count is not a number"))?;
        if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
            return Err(ScramError::Iterations(iterations));
        }
        let salted = self.salted_password(&salt, iterations);
        let client_key = hmac(self.hash, &salted, b"Client Key");
        let stored_key = digest(self.hash, &client_key);
        // "biws" is base64 of "n,,": no channel binding.
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac(self.hash, &stored_key, auth_message.as_bytes());
        let proof: Vec<u8> = client_key.iter().zip(&signature).map(|(k, s)| k ^ s).collect();
        let server_key = hmac(self.hash, &salted, b"Server Key");
        let expected = hmac(self.hash, &server_key, auth_message.as_bytes());
        Ok((
            format!("{without_proof},p={}", BASE64.encode(proof)),
            ExpectedServerSignature(expected),
        ))
    }

    fn salted_password(&self, salt: &[u8], iterations: u32) -> Vec<u8> {
        match self.hash {
            ScramHash::Sha256 => {
                let mut out = vec![0; 32];
                pbkdf2::pbkdf2_hmac::<sha2::Sha256>(&self.password, salt, iterations, &mut out);
                out
            }
            ScramHash::Sha512 => {
                let mut out = vec![0; 64];
                pbkdf2::pbkdf2_hmac::<sha2::Sha512>(&self.password, salt, iterations, &mut out);
                out
            }
        }
    }
}

impl ExpectedServerSignature {
    /// Checks the server-final message: the server proves it knew the password too.
    pub fn verify(&self, server_final: &str) -> Result<(), ScramError> {
        if let Some(error) = server_final.strip_prefix("e=") {
            return Err(ScramError::ServerError(error.chars().take(200).collect()));
        }
        let signature = server_final
            .split(',')
            .find_map(|attribute| attribute.strip_prefix("v="))
            .ok_or(ScramError::Malformed("no server signature"))?;
        let signature = BASE64
            .decode(signature)
            .map_err(|_| ScramError::Malformed("signature is not base64"))?;
        if signature == self.0 { Ok(()) } else { Err(ScramError::ServerSignature) }
    }
}

fn hmac(hash: ScramHash, key: &[u8], data: &[u8]) -> Vec<u8> {
    // Any key length is valid for HMAC; the error arm cannot happen.
    match hash {
        ScramHash::Sha256 => hmac::Hmac::<sha2::Sha256>::new_from_slice(key)
            .map(|mac| mac.chain_update(data).finalize().into_bytes().to_vec())
            .unwrap_or_default(),
        ScramHash::Sha512 => hmac::Hmac::<sha2::Sha512>::new_from_slice(key)
            .map(|mac| mac.chain_update(data).finalize().into_bytes().to_vec())
            .unwrap_or_default(),
    }
}

fn digest(hash: ScramHash, data: &[u8]) -> Vec<u8> {
    match hash {
        ScramHash::Sha256 => sha2::Sha256::digest(data).to_vec(),
        ScramHash::Sha512 => sha2::Sha512::digest(data).to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677 §3: the SCRAM-SHA-256 example exchange.
    const CLIENT_NONCE: &str = "rOprNGfwEbeRWgbNEkqO";
    const SERVER_FIRST: &str =
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";

    #[test]
    fn the_rfc_7677_exchange_gives_its_proof_and_signature() {
        let client = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
        assert_eq!(client.client_first(), "n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let (client_final, expected) = client.client_final(SERVER_FIRST).unwrap();
        assert_eq!(
            client_final,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        expected.verify("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=").unwrap();
        assert_eq!(
            expected.verify("v=AAAATRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="),
            Err(ScramError::ServerSignature)
        );
        assert_eq!(
            expected.verify("e=invalid-proof"),
            Err(ScramError::ServerError("invalid-proof".into()))
        );
    }

    #[test]
    fn sha_512_proofs_are_64_bytes_and_change_with_the_password() {
        let proof = |password| {
            let client = ScramClient::with_nonce(ScramHash::Sha512, "lw", password, CLIENT_NONCE);
            let (client_final, _) = client.client_final(SERVER_FIRST).unwrap();
            let proof = client_final.rsplit_once("p=").unwrap().1.to_owned();
            BASE64.decode(proof).unwrap()
        };
        assert_eq!(proof("a").len(), 64);
        assert_ne!(proof("a"), proof("b"));
    }

    #[test]
    fn names_are_escaped_and_nonces_random() {
        let client = ScramClient::new(ScramHash::Sha256, "a=b,c", "p");
        assert!(
            client.client_first().starts_with("n,,n=a=3Db=2Cc,r="),
            "{}",
            client.client_first()
        );
        assert_ne!(client.client_nonce, ScramClient::new(ScramHash::Sha256, "a", "p").client_nonce);
    }

    #[test]
    fn hostile_server_first_messages_are_refused() {
        let client = ScramClient::with_nonce(ScramHash::Sha256, "user", "pencil", CLIENT_NONCE);
        let refused = |message: &str| client.client_final(message).unwrap_err();
        assert_eq!(refused("r=other,s=AAAA,i=4096"), ScramError::NonceMismatch);
        assert_eq!(refused("r=rOprNGfwEbeRWgbNEkqO,s=AAAA,i=4096"), ScramError::NonceMismatch);
        assert_eq!(
            refused("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=999999999"),
            ScramError::Iterations(999_999_999)
        );
        assert_eq!(refused("r=rOprNGfwEbeRWgbNEkqOx,s=AAAA,i=1"), ScramError::Iterations(1));
        assert!(matches!(refused("r=rOprNGfwEbeRWgbNEkqOx,s=!!,i=4096"), ScramError::Malformed(_)));
        assert!(matches!(refused("garbage"), ScramError::Malformed(_)));
        assert!(matches!(refused("m=ext,r=rOprNGfwEbeRWgbNEkqOx"), ScramError::Malformed(_)));
    }
}
