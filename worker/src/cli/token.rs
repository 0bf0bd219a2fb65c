//! `licenseware-worker token --secret-file F --tenant T [--tenant T2] [--sub U]
//! [--plan unlimited] [--ttl 1h] [--machine]`: prints an HS256 JWT that `serve
//! --jwt-secret-file F` accepts, for development, tests and scripts. Exit 2 on bad
//! usage (a bad tenant id, an unreadable secret).

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::CliError;
use crate::serve::auth::{DEFAULT_MACHINE_ROLE, DevClaims, TenantId, mint_hs256, read_secret_file};

/// The longest `--ttl`: a minted token is a development credential.
const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

#[derive(Debug, Args)]
pub struct TokenArgs {
    /// The HS256 secret `serve` verifies with (its trailing newline is ignored).
    #[arg(long, env = "LW_JWT_SECRET_FILE", value_name = "FILE")]
    pub secret_file: PathBuf,
    /// A tenant the token grants; repeat for several. Optional with --machine.
    #[arg(long = "tenant", value_name = "TENANT", required_unless_present = "machine")]
    pub tenants: Vec<String>,
    /// The token's subject.
    #[arg(long, default_value = "dev")]
    pub sub: String,
    /// The `plan_type` claim; `unlimited` lifts the upload quota.
    #[arg(long, value_name = "PLAN")]
    pub plan: Option<String>,
    /// How long the token is valid: `90s`, `15m`, `1h`, `7d`.
    #[arg(long, default_value = "1h", value_parser = parse_ttl)]
    pub ttl: Duration,
    /// Mint a machine token (the machine role in `roles`).
    #[arg(long)]
    pub machine: bool,
    /// The machine role's name, as `serve --machine-role` expects it.
    #[arg(long, env = "LW_MACHINE_ROLE", default_value = DEFAULT_MACHINE_ROLE)]
    pub machine_role: String,
    /// The `iss` claim, for a `serve --jwt-issuer`.
    #[arg(long)]
    pub issuer: Option<String>,
    /// The `aud` claim, for a `serve --jwt-audience`.
    #[arg(long)]
    pub audience: Option<String>,
}

pub fn run(args: TokenArgs) -> Result<(), CliError> {
    for tenant in &args.tenants {
        TenantId::parse(tenant)
            .map_err(|error| CliError::Usage(format!("--tenant {tenant:?}: {error}")))?;
    }
    let secret = read_secret_file(&args.secret_file).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut claims = DevClaims::new(args.sub, args.tenants, args.ttl);
    claims.plan_type = args.plan;
    claims.iss = args.issuer;
    claims.aud = args.audience;
    if args.machine {
        claims.roles.push(args.machine_role);
    }
    let token = mint_hs256(&secret, &claims).map_err(|e| CliError::Failed(e.to_string()))?;
    writeln!(std::io::stdout().lock(), "{token}")
        .map_err(|error| CliError::Failed(format!("cannot write to stdout: {error}")))
}

/// `90s`, `15m`, `1h`, `7d`; a bare number is seconds.
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 90s, 15m, 1h or 7d"))?;
    let unit_seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit {unit:?}: use s, m, h or d")),
    };
    let ttl = count
        .checked_mul(unit_seconds)
        .map(Duration::from_secs)
        .filter(|ttl| *ttl <= MAX_TTL)
        .ok_or_else(|| format!("{text:?} is longer than 366 days"))?;
    if ttl.is_zero() {
        return Err("the ttl must be positive".into());
    }
    Ok(ttl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls() {
        assert_eq!(parse_ttl("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_ttl("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_ttl("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_ttl("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_ttl("120"), Ok(Duration::from_secs(120)));
        for bad in ["", "h", "1w", "-1h", "1.5h", "0s", "367d", "99999999999999999999d"] {
            assert!(parse_ttl(bad).is_err(), "{bad:?}");
        }
    }
}
