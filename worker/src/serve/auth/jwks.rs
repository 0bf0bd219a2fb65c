//! The issuer's key set, fetched from its URL and cached. A token naming a key id we
//! do not hold triggers a refetch (the issuer rotated its keys), but at most one per
//! [`MIN_REFRESH_INTERVAL`]: key ids are the caller's to choose, and made-up ones must
//! not turn us into a load generator against the issuer.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use super::error::AuthSetupError;
use super::fetch::{FetchError, JwksClient};
use super::keys::{VerifyingKey, parse_jwks};

pub const MIN_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// Allows one refresh per interval. The fetch at startup does not count: it is not
/// the caller's doing, and the first rotation after it must not wait.
#[derive(Debug)]
pub(crate) struct RefreshGate {
    min_interval: Duration,
    last: Option<Instant>,
}

impl RefreshGate {
    pub fn new(min_interval: Duration) -> Self {
        Self { min_interval, last: None }
    }

    pub fn try_acquire(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last
            && now.saturating_duration_since(last) < self.min_interval
        {
            return false;
        }
        self.last = Some(now);
        true
    }
}

/// What a refresh request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refresh {
    /// The set was fetched again (whether or not it has the key now).
    Fetched,
    /// Another request fetched it while this one waited; the key is there.
    AlreadyThere,
    /// Too soon after the last refresh; nothing was fetched.
    Throttled,
}

#[derive(Debug)]
pub(crate) struct RemoteJwks {
    client: JwksClient,
    keys: RwLock<Arc<[VerifyingKey]>>,
    // Held across the fetch so that concurrent requests for one new kid cause one fetch.
    gate: tokio::sync::Mutex<RefreshGate>,
}

impl RemoteJwks {
    /// Fetches the set once. An issuer that is down at startup is logged, not fatal:
    /// the next token with a key id brings a fetch, and a restart loop would help no one.
    pub async fn new(url: &str) -> Result<Self, AuthSetupError> {
        let client = JwksClient::new(url)?;
        let remote = Self {
            client,
            keys: RwLock::new(Arc::from(Vec::new())),
            gate: tokio::sync::Mutex::new(RefreshGate::new(MIN_REFRESH_INTERVAL)),
        };
        if let Err(error) = remote.fetch_and_store().await {
            tracing::warn!(reason = error.reason(), url, %error,
                "the JWKS could not be fetched at startup; retrying when a token needs it");
        }
        Ok(remote)
    }

    pub fn keys(&self) -> Arc<[VerifyingKey]> {
        // A poisoned lock only means a writer panicked mid-swap of an `Arc`; the value
        // is still whole.
        self.keys.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn has_kid(&self, kid: &str) -> bool {
        self.keys().iter().any(|key| key.kid.as_deref() == Some(kid))
    }

    /// Refetches the set for a token whose `kid` we do not hold, when the gate allows.
    pub async fn refresh_for(&self, kid: &str) -> Result<Refresh, FetchError> {
        let mut gate = self.gate.lock().await;
        if self.has_kid(kid) {
            return Ok(Refresh::AlreadyThere);
        }
        if !gate.try_acquire(Instant::now()) {
            return Ok(Refresh::Throttled);
        }
        self.fetch_and_store().await?;
        Ok(Refresh::Fetched)
    }

    async fn fetch_and_store(&self) -> Result<(), FetchError> {
        let bytes = self.client.fetch().await?;
        let origin = format!("JWKS {}", self.client.url());
        let keys = parse_jwks(&bytes, &origin).map_err(FetchError::Unusable)?;
        tracing::info!(url = %self.client.url(), keys = keys.len(), "JWKS fetched");
        *self.keys.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::from(keys);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_allows_one_refresh_per_interval() {
        let start = Instant::now();
        let mut gate = RefreshGate::new(Duration::from_secs(30));
        assert!(gate.try_acquire(start), "the first refresh is not delayed");
        assert!(!gate.try_acquire(start));
        assert!(!gate.try_acquire(start + Duration::from_secs(29)));
        assert!(gate.try_acquire(start + Duration::from_secs(30)));
        assert!(!gate.try_acquire(start + Duration::from_secs(45)));
        assert!(gate.try_acquire(start + Duration::from_secs(61)));
    }

    #[test]
    fn a_clock_going_backwards_does_not_open_the_gate() {
        let start = Instant::now() + Duration::from_secs(100);
        let mut gate = RefreshGate::new(Duration::from_secs(30));
        assert!(gate.try_acquire(start));
        assert!(!gate.try_acquire(start - Duration::from_secs(50)));
    }
}
