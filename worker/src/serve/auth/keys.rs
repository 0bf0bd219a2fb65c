//! The keys tokens are verified with. Each key carries the only algorithms it may
//! verify, fixed by its type when it is loaded, never by a token: an HMAC secret only
//! HS256, an RSA key only RS*, an EC key only the ES* of its curve. That is what keeps
//! a token signed with HS256 and a public key as the "secret" (algorithm confusion)
//! or an `alg: none` token from ever verifying.

use std::fmt;
use std::path::Path;

use jsonwebtoken::jwk::{
    AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, KeyOperations, PublicKeyUse,
};
use jsonwebtoken::{Algorithm, DecodingKey};

use super::error::AuthSetupError;

const RSA_ALGORITHMS: [Algorithm; 3] = [Algorithm::RS256, Algorithm::RS384, Algorithm::RS512];
/// aws-lc refuses smaller moduli when verifying; refusing them when loading says why.
const MIN_RSA_BITS: usize = 2048;

/// A key and what it may verify.
#[derive(Clone)]
pub(crate) struct VerifyingKey {
    /// The JWK's `kid`; keys from a secret or PEM file have none and match any token.
    pub kid: Option<String>,
    pub algorithms: Vec<Algorithm>,
    pub key: DecodingKey,
    /// Where the key came from, for logs.
    pub origin: String,
}

// Without the key bytes: an HMAC secret must not reach a log through `{:?}`.
impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("kid", &self.kid)
            .field("algorithms", &self.algorithms)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl VerifyingKey {
    pub fn allows(&self, algorithm: Algorithm) -> bool {
        self.algorithms.contains(&algorithm)
    }
}

/// A shared secret file's bytes. The trailing newline an editor or `echo` leaves is
/// not part of the secret, for minting and verifying alike.
pub fn read_secret_file(path: &Path) -> Result<Vec<u8>, AuthSetupError> {
    let mut bytes = std::fs::read(path)
        .map_err(|source| AuthSetupError::Unreadable { path: path.to_owned(), source })?;
    while matches!(bytes.last(), Some(b'\n' | b'\r')) {
        bytes.pop();
    }
    if bytes.is_empty() {
        return Err(AuthSetupError::EmptySecret { path: path.to_owned() });
    }
    Ok(bytes)
}

pub(crate) fn hs256_from_file(path: &Path) -> Result<VerifyingKey, AuthSetupError> {
    let secret = read_secret_file(path)?;
    if secret.len() < 32 {
        // RFC 7518 §3.2 asks for at least 256 bits; shorter secrets are still accepted
        // for local development.
        tracing::warn!(reason = "WeakHs256Secret", path = %path.display(), bytes = secret.len(),
            "the HS256 secret is shorter than 32 bytes");
    }
    let key = DecodingKey::from_secret(&secret).map_err(|error| {
        AuthSetupError::InvalidPublicKey { path: path.to_owned(), detail: error.to_string() }
    })?;
    Ok(VerifyingKey {
        kid: None,
        algorithms: vec![Algorithm::HS256],
        key,
        origin: format!("secret {}", path.display()),
    })
}

/// A PEM public key: RSA (SPKI or PKCS#1), EC P-256/P-384 or Ed25519 (SPKI).
pub(crate) fn from_pem_file(path: &Path) -> Result<VerifyingKey, AuthSetupError> {
    let bytes = std::fs::read(path)
        .map_err(|source| AuthSetupError::Unreadable { path: path.to_owned(), source })?;
    let invalid =
        |detail: String| AuthSetupError::InvalidPublicKey { path: path.to_owned(), detail };
    let block = pem::parse(&bytes).map_err(|error| invalid(format!("not PEM: {error}")))?;
    match block.tag() {
        "PUBLIC KEY" | "RSA PUBLIC KEY" => {}
        tag if tag.contains("PRIVATE") => {
            return Err(AuthSetupError::PrivateKeyGiven { path: path.to_owned() });
        }
        tag => return Err(invalid(format!("a PEM {tag:?} block, not a PUBLIC KEY"))),
    }
    let origin = format!("public key {}", path.display());
    let (key, algorithms) = pem_key(&bytes).map_err(invalid)?;
    Ok(VerifyingKey { kid: None, algorithms, key, origin })
}

fn pem_key(bytes: &[u8]) -> Result<(DecodingKey, Vec<Algorithm>), String> {
    if let Ok(key) = DecodingKey::from_rsa_pem(bytes) {
        check_rsa(&key)?;
        return Ok((key, RSA_ALGORITHMS.to_vec()));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(bytes) {
        // The uncompressed point's length names the curve: 1 + 2 × 32 or 1 + 2 × 48.
        let algorithm = match key.try_get_as_bytes().map(<[u8]>::len) {
            Ok(65) => Algorithm::ES256,
            Ok(97) => Algorithm::ES384,
            _ => return Err("an EC key on a curve other than P-256 or P-384".into()),
        };
        return Ok((key, vec![algorithm]));
    }
    if let Ok(key) = DecodingKey::from_ed_pem(bytes) {
        return Ok((key, vec![Algorithm::EdDSA]));
    }
    Err("neither an RSA, an EC (P-256, P-384) nor an Ed25519 public key".into())
}

/// Parses the RSA key now, so that a broken or short key fails at startup rather than
/// on every request.
fn check_rsa(key: &DecodingKey) -> Result<(), String> {
    let jwk = Jwk::from_decoding_key(key, None).map_err(|e| format!("bad RSA key: {e}"))?;
    let AlgorithmParameters::RSA(params) = &jwk.algorithm else {
        return Err("not an RSA key".into());
    };
    let modulus = base64_url_len(&params.n);
    if modulus * 8 < MIN_RSA_BITS {
        return Err(format!(
            "an RSA key of {} bits; at least {MIN_RSA_BITS} are needed",
            modulus * 8
        ));
    }
    Ok(())
}

/// Decoded length of unpadded base64url, without decoding.
fn base64_url_len(text: &str) -> usize {
    text.len() * 3 / 4
}

/// A key of a JSON Web Key Set, or why it is skipped.
pub(crate) fn from_jwk(jwk: &Jwk, origin: &str) -> Result<VerifyingKey, String> {
    if matches!(jwk.common.public_key_use, Some(ref use_) if *use_ != PublicKeyUse::Signature) {
        return Err("not a signature key (use)".into());
    }
    if let Some(ops) = &jwk.common.key_operations
        && !ops.contains(&KeyOperations::Verify)
    {
        return Err("not a verification key (key_ops)".into());
    }
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            let mut all = RSA_ALGORITHMS.to_vec();
            all.extend([Algorithm::PS256, Algorithm::PS384, Algorithm::PS512]);
            all
        }
        AlgorithmParameters::EllipticCurve(params) => match params.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return Err("an EC curve other than P-256 or P-384".into()),
        },
        AlgorithmParameters::OctetKeyPair(params) if params.curve == EllipticCurve::Ed25519 => {
            vec![Algorithm::EdDSA]
        }
        // A key set is published; a secret in it would let anyone mint tokens.
        AlgorithmParameters::OctetKey(_) => return Err("a symmetric (oct) key".into()),
        _ => return Err("an unsupported key type".into()),
    };
    let algorithms = match jwk.common.key_algorithm {
        None => {
            // Without `alg`, RSA keys take PKCS#1 v1.5 only, the common RS*; PSS must be named.
            by_type
                .into_iter()
                .filter(|a| !matches!(a, Algorithm::PS256 | Algorithm::PS384 | Algorithm::PS512))
                .collect()
        }
        Some(named) => {
            let algorithm = to_algorithm(named).ok_or("an unsupported alg")?;
            if !by_type.contains(&algorithm) {
                return Err(format!("alg {algorithm:?} does not fit the key type"));
            }
            vec![algorithm]
        }
    };
    let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("unusable: {e}"))?;
    Ok(VerifyingKey { kid: jwk.common.key_id.clone(), algorithms, key, origin: origin.to_owned() })
}

fn to_algorithm(named: KeyAlgorithm) -> Option<Algorithm> {
    Some(match named {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The usable keys of a JSON Web Key Set document. Unusable keys are skipped (logged),
/// so that one key of a type we do not handle does not take the others down; a set
/// with no usable key at all is an error.
pub(crate) fn parse_jwks(bytes: &[u8], origin: &str) -> Result<Vec<VerifyingKey>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWKS: {e}"))?;
    let mut keys = Vec::with_capacity(raw.keys.len());
    for (index, value) in raw.keys.into_iter().enumerate() {
        let parsed = serde_json::from_value::<Jwk>(value)
            .map_err(|e| format!("not a JWK: {e}"))
            .and_then(|jwk| from_jwk(&jwk, origin));
        match parsed {
            Ok(key) => keys.push(key),
            Err(why) => {
                tracing::debug!(
                    reason = "JwkSkipped",
                    origin,
                    index,
                    why,
                    "key of the JWKS skipped"
                );
            }
        }
    }
    if keys.is_empty() {
        return Err("no usable signature key".into());
    }
    Ok(keys)
}

pub(crate) fn jwks_from_file(path: &Path) -> Result<Vec<VerifyingKey>, AuthSetupError> {
    let bytes = std::fs::read(path)
        .map_err(|source| AuthSetupError::Unreadable { path: path.to_owned(), source })?;
    let origin = format!("JWKS file {}", path.display());
    parse_jwks(&bytes, &origin).map_err(|detail| AuthSetupError::InvalidJwks {
        origin: path.display().to_string(),
        detail,
    })
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn fixture(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/jwt").join(name)
    }

    #[test]
    fn pem_keys_allow_only_their_own_algorithms() {
        let cases = [
            ("rsa1.pub.pem", vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]),
            ("rsa1.pkcs1.pub.pem", vec![Algorithm::RS256, Algorithm::RS384, Algorithm::RS512]),
            ("ec1.pub.pem", vec![Algorithm::ES256]),
            ("ec384.pub.pem", vec![Algorithm::ES384]),
        ];
        for (file, algorithms) in cases {
            let key = from_pem_file(&fixture(file)).expect(file);
            assert_eq!(key.algorithms, algorithms, "{file}");
            assert!(!key.allows(Algorithm::HS256), "{file}");
        }
    }

    #[test]
    fn private_and_short_keys_are_refused() {
        let error = from_pem_file(&fixture("rsa1.key.pem")).expect_err("private");
        assert_eq!(error.reason(), "PrivateKeyGiven");
        let error = from_pem_file(&fixture("rsa1024.pub.pem")).expect_err("short");
        assert_eq!(error.reason(), "InvalidPublicKey");
        assert!(error.to_string().contains("1024 bits"), "{error}");
        let error = from_pem_file(&fixture("README.md")).expect_err("not pem");
        assert_eq!(error.reason(), "InvalidPublicKey");
    }

    #[test]
    fn secret_files_lose_their_trailing_newline_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, b" s3cret \r\n\n").expect("write");
        assert_eq!(read_secret_file(&path).expect("secret"), b" s3cret ");
        std::fs::write(&path, b"\n").expect("write");
        assert_eq!(read_secret_file(&path).expect_err("empty").reason(), "SecretFileEmpty");
        let missing = dir.path().join("missing");
        assert_eq!(read_secret_file(&missing).expect_err("missing").reason(), "KeyFileUnreadable");
        std::fs::write(&path, b"s3cret\n").expect("write");
        let key = hs256_from_file(&path).expect("hs256");
        assert_eq!(key.algorithms, vec![Algorithm::HS256]);
        assert!(!format!("{key:?}").contains("s3cret"));
    }

    fn jwk(json: serde_json::Value) -> Jwk {
        serde_json::from_value(json).expect("jwk")
    }

    const P256_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const P256_Y: &str = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0";

    #[test]
    fn jwk_algorithms_come_from_the_key_type_and_alg() {
        let ec = jwk(
            serde_json::json!({"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "e"}),
        );
        let key = from_jwk(&ec, "test").expect("ec");
        assert_eq!((key.kid.as_deref(), key.algorithms), (Some("e"), vec![Algorithm::ES256]));
        let rsa = jwk(serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "PS256"}));
        assert_eq!(from_jwk(&rsa, "test").expect("rsa").algorithms, vec![Algorithm::PS256]);
        let rsa = jwk(serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"}));
        assert_eq!(from_jwk(&rsa, "test").expect("rsa").algorithms, RSA_ALGORITHMS.to_vec());
    }

    #[test]
    fn unfit_jwks_are_skipped() {
        let refused = [
            serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "alg": "HS256"}),
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "HS256"}),
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "ES256"}),
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "use": "enc"}),
            serde_json::json!({"kty": "RSA", "n": "AQAB", "e": "AQAB", "key_ops": ["encrypt"]}),
        ];
        for json in refused {
            assert!(from_jwk(&jwk(json.clone()), "test").is_err(), "{json}");
        }
    }

    #[test]
    fn a_jwks_keeps_its_usable_keys() {
        let set = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0"},
            {"kty": "weird"},
            {"kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y, "kid": "a"},
        ]});
        let keys = parse_jwks(set.to_string().as_bytes(), "test").expect("one usable");
        assert_eq!(keys.len(), 1);
        let only_secret = serde_json::json!({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]});
        assert!(parse_jwks(only_secret.to_string().as_bytes(), "test").is_err());
        assert!(parse_jwks(b"[]", "test").is_err());
    }
}
