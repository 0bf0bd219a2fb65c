//! Tokens that verified, kept until they expire (at most [`KEPT_FOR`]): a client sends
//! the same token with every request, and checking its signature and claims again was
//! the largest part of an authenticated request's cost. Only verified tokens are kept,
//! whole (never a hash of them), and the entries of a JWKS that changed are not used.

use std::{
    collections::HashMap,
    sync::{Arc, PoisonError, RwLock},
};

use super::caller::Claims;
use super::keys::VerifyingKey;

/// A token is checked again at least this often (seconds), whatever its `exp`.
pub const KEPT_FOR: u64 = 300;
/// Tokens kept; past this the cache starts over (bounded memory: tokens are a few
/// hundred bytes, and only the issuer can make valid ones).
pub const MAX_TOKENS: usize = 10_000;

/// The remote key set a token was verified with: `None` without a JWKS URL.
pub type KeySet = Option<Arc<[VerifyingKey]>>;

#[derive(Debug)]
struct Verified {
    claims: Claims,
    /// Unix seconds: the token's `exp` (without the leeway, so a token in its leeway is
    /// verified again each time), or [`KEPT_FOR`] after it verified.
    until: u64,
    keys: KeySet,
}

#[derive(Debug, Default)]
pub struct VerifiedTokens {
    entries: RwLock<HashMap<Box<str>, Verified>>,
}

fn same_keys(a: &KeySet, b: &KeySet) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

impl VerifiedTokens {
    /// The claims of `token` if it verified against `keys` and has not expired at `now`.
    pub fn get(&self, token: &str, keys: &KeySet, now: u64) -> Option<Claims> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let verified = entries.get(token)?;
        (now < verified.until && same_keys(&verified.keys, keys)).then(|| verified.claims.clone())
    }

    /// Remembers a token that just verified at `now`.
    pub fn keep(&self, token: &str, claims: &Claims, keys: KeySet, now: u64) {
        let expires = claims.expires_at().unwrap_or(0);
        let until = expires.min(now.saturating_add(KEPT_FOR));
        if until <= now {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_TOKENS {
            entries.clear();
        }
        entries.insert(token.into(), Verified { claims: claims.clone(), until, keys });
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries.read().unwrap_or_else(PoisonError::into_inner).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        serde_json::from_value(serde_json::json!({"sub": "u", "tenants": ["t"], "exp": exp}))
            .unwrap()
    }

    #[test]
    fn a_kept_token_is_used_until_its_exp_and_no_longer() {
        let cache = VerifiedTokens::default();
        cache.keep("a.b.c", &claims(1_000), None, 900);
        assert!(cache.get("a.b.c", &None, 999).is_some());
        assert!(cache.get("a.b.c", &None, 1_000).is_none(), "exp reached: verify again");
        assert!(cache.get("a.b.d", &None, 950).is_none(), "another token is not this one");
    }

    #[test]
    fn a_long_lived_token_is_verified_again_after_kept_for() {
        let cache = VerifiedTokens::default();
        cache.keep("t", &claims(u64::MAX), None, 100);
        assert!(cache.get("t", &None, 100 + KEPT_FOR - 1).is_some());
        assert!(cache.get("t", &None, 100 + KEPT_FOR).is_none());
    }

    #[test]
    fn expired_or_exp_less_tokens_are_not_kept() {
        let cache = VerifiedTokens::default();
        cache.keep("in-leeway", &claims(50), None, 100);
        let no_exp: Claims = serde_json::from_value(serde_json::json!({"sub": "u"})).unwrap();
        cache.keep("no-exp", &no_exp, None, 100);
        assert_eq!(cache.len(), 0);
    }

    #[test]
    fn a_changed_key_set_is_not_trusted_for_old_verifications() {
        let cache = VerifiedTokens::default();
        let before: KeySet = Some(Arc::from(Vec::new()));
        let after: KeySet = Some(Arc::from(Vec::new()));
        cache.keep("t", &claims(1_000), before.clone(), 0);
        assert!(cache.get("t", &before, 1).is_some());
        assert!(cache.get("t", &after, 1).is_none(), "the JWKS was refetched");
        assert!(cache.get("t", &None, 1).is_none());
    }

    #[test]
    fn the_cache_is_bounded() {
        let cache = VerifiedTokens::default();
        for n in 0..MAX_TOKENS + 5 {
            cache.keep(&format!("token-{n}"), &claims(1_000), None, 0);
        }
        assert!(cache.len() <= MAX_TOKENS);
    }
}
