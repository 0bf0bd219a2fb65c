//! Where the keys come from and what a token must say, as settings and as the flags
//! (each with an `LW_*` environment twin) that `serve` flattens into its arguments.

use std::path::PathBuf;

/// How tokens are verified. At least one key source must be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthSettings {
    /// An HS256 shared secret; the file's trailing newline is not part of it.
    pub hs256_secret_file: Option<PathBuf>,
    /// PEM public keys (SPKI, or PKCS#1 for RSA), one per file; each allows only the
    /// algorithms of its type (RSA: RS256/384/512, P-256: ES256, P-384: ES384, Ed25519: EdDSA).
    pub public_key_files: Vec<PathBuf>,
    /// A JSON Web Key Set on disk, read once at startup.
    pub jwks_file: Option<PathBuf>,
    /// A JSON Web Key Set served by the issuer, fetched at startup and again when a
    /// token names a key id we do not hold.
    pub jwks_url: Option<String>,
    /// When set, the `iss` claim is required and must equal it.
    pub issuer: Option<String>,
    /// When set, the `aud` claim is required and must contain it.
    pub audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The role (in `roles` or `role`) that marks a machine token.
    pub machine_role: String,
}

pub const DEFAULT_LEEWAY_SECONDS: u64 = 30;
pub const DEFAULT_MACHINE_ROLE: &str = "machine";

impl Default for AuthSettings {
    fn default() -> Self {
        Self {
            hs256_secret_file: None,
            public_key_files: Vec::new(),
            jwks_file: None,
            jwks_url: None,
            issuer: None,
            audience: None,
            leeway_seconds: DEFAULT_LEEWAY_SECONDS,
            machine_role: DEFAULT_MACHINE_ROLE.to_owned(),
        }
    }
}

impl AuthSettings {
    pub fn has_key_source(&self) -> bool {
        self.hs256_secret_file.is_some()
            || !self.public_key_files.is_empty()
            || self.jwks_file.is_some()
            || self.jwks_url.is_some()
    }
}

/// The authentication flags of `serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct AuthArgs {
    /// File holding the HS256 shared secret (its trailing newline is ignored).
    #[arg(long = "jwt-secret-file", env = "LW_JWT_SECRET_FILE", value_name = "FILE")]
    pub jwt_secret_file: Option<PathBuf>,
    /// PEM public key (RSA or EC) to verify RS256/ES256 tokens with; repeat the flag or
    /// separate files with commas.
    #[arg(
        long = "jwt-public-key-file",
        env = "LW_JWT_PUBLIC_KEY_FILE",
        value_name = "FILE",
        value_delimiter = ','
    )]
    pub jwt_public_key_files: Vec<PathBuf>,
    /// JSON Web Key Set file; tokens pick their key by `kid`.
    #[arg(long = "jwks-file", env = "LW_JWKS_FILE", value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// JSON Web Key Set URL, refetched (at most every 30 s) for an unknown `kid`.
    #[arg(long = "jwks-url", env = "LW_JWKS_URL", value_name = "URL")]
    pub jwks_url: Option<String>,
    /// Required `iss` claim.
    #[arg(long = "jwt-issuer", env = "LW_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` claim.
    #[arg(long = "jwt-audience", env = "LW_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long = "jwt-leeway-seconds", env = "LW_JWT_LEEWAY_SECONDS", default_value_t = DEFAULT_LEEWAY_SECONDS)]
    pub jwt_leeway_seconds: u64,
    /// The role (in the `roles` or `role` claim) of machine tokens.
    #[arg(long = "machine-role", env = "LW_MACHINE_ROLE", default_value = DEFAULT_MACHINE_ROLE)]
    pub machine_role: String,
}

impl From<AuthArgs> for AuthSettings {
    // An empty environment variable (`LW_JWKS_URL=`) means unset, as a chart's
    // optional value renders it.
    fn from(args: AuthArgs) -> Self {
        let path = |p: Option<PathBuf>| p.filter(|p| !p.as_os_str().is_empty());
        let text = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Self {
            hs256_secret_file: path(args.jwt_secret_file),
            public_key_files: args
                .jwt_public_key_files
                .into_iter()
                .filter(|p| !p.as_os_str().is_empty())
                .collect(),
            jwks_file: path(args.jwks_file),
            jwks_url: text(args.jwks_url),
            issuer: text(args.jwt_issuer),
            audience: text(args.jwt_audience),
            leeway_seconds: args.jwt_leeway_seconds,
            machine_role: args.machine_role,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        auth: AuthArgs,
    }

    fn settings(args: &[&str]) -> AuthSettings {
        let argv = std::iter::once("serve").chain(args.iter().copied());
        Cli::try_parse_from(argv).expect("parses").auth.into()
    }

    #[test]
    fn defaults() {
        let got = settings(&["--jwt-secret-file", "/s"]);
        assert_eq!(got.leeway_seconds, 30);
        assert_eq!(got.machine_role, "machine");
        assert_eq!(got.hs256_secret_file, Some(PathBuf::from("/s")));
        assert!(got.has_key_source());
    }

    #[test]
    fn public_keys_repeat_or_split_on_commas() {
        let got = settings(&[
            "--jwt-public-key-file",
            "/a.pem,/b.pem",
            "--jwt-public-key-file",
            "/c.pem",
        ]);
        let want: Vec<PathBuf> = ["/a.pem", "/b.pem", "/c.pem"].map(PathBuf::from).into();
        assert_eq!(got.public_key_files, want);
    }

    #[test]
    fn every_flag_reaches_the_settings() {
        let got = settings(&[
            "--jwks-file",
            "/k.json",
            "--jwks-url",
            "https://idp/jwks",
            "--jwt-issuer",
            "idp",
            "--jwt-audience",
            "api",
            "--jwt-leeway-seconds",
            "5",
            "--machine-role",
            "robot",
        ]);
        let want = AuthSettings {
            jwks_file: Some("/k.json".into()),
            jwks_url: Some("https://idp/jwks".into()),
            issuer: Some("idp".into()),
            audience: Some("api".into()),
            leeway_seconds: 5,
            machine_role: "robot".into(),
            ..AuthSettings::default()
        };
        assert_eq!(got, want);
    }

    #[test]
    fn empty_values_are_unset() {
        let got = settings(&["--jwks-url", "", "--jwt-issuer", " "]);
        assert_eq!(got, AuthSettings::default());
        assert!(!got.has_key_source());
    }
}
