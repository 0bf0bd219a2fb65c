//! Exponential backoff between attempts of an event (in process: the partition waits,
//! so later events of the partition keep their order behind a failing one).
//!
//! The waits are jittered (between half and all of the exponential delay): the replicas
//! of a worker, and the workers of every Uploader, that lost MongoDB or Kafka at the
//! same moment would otherwise all retry at the same moments too.

use std::{
    hash::{BuildHasher, Hasher, RandomState},
    time::Duration,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based): between half and all of
    /// [`Self::ceiling`].
    pub fn delay(&self, attempt: u32) -> Duration {
        jittered(self.ceiling(attempt), random_fraction())
    }

    /// The exponential delay before jitter: base, 2·base, 4·base... capped at `max`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

/// `delay` scaled by `fraction` of its upper half ("equal jitter").
fn jittered(delay: Duration, fraction: f64) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fraction.clamp(0.0, 1.0))
}

/// A random fraction in [0, 1): the standard library's randomly keyed hasher is enough
/// for jitter.
fn random_fraction() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(500), max: Duration::from_secs(3) };
        let delays: Vec<u128> = (0..=6).map(|n| backoff.ceiling(n).as_millis()).collect();
        assert_eq!(delays, [500, 500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(backoff.ceiling(u32::MAX), Duration::from_secs(3), "no overflow");
    }

    #[test]
    fn replicas_do_not_retry_in_lockstep() {
        let backoff = Backoff { base: Duration::from_secs(2), max: Duration::from_secs(60) };
        // Twenty replicas after their third failure each.
        let waits: std::collections::BTreeSet<Duration> =
            (0..20).map(|_| backoff.delay(3)).collect();
        let ceiling = backoff.ceiling(3);
        assert!(waits.iter().all(|w| (ceiling / 2..=ceiling).contains(w)), "{waits:?}");
        assert!(waits.len() > 1, "every replica waits the same: {waits:?}");
    }
}
