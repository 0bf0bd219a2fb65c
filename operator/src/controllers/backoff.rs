//! Per-object exponential backoff for `error_policy`: kube's controller keeps no
//! state between failures of one object, so the controller keeps it here.
//!
//! Delays are jittered (between half and all of the exponential delay), so objects
//! that failed together (a broker down fails every Topic) do not retry in lockstep.
//! An entry goes on success, when the object is found deleted, or once it has not
//! failed for twice the longest delay (an object deleted while failing, whose delete
//! the controller never saw as a reconcile).

use std::{
    collections::HashMap,
    hash::{BuildHasher, Hasher, RandomState},
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use kube::{Resource, runtime::reflector::ObjectRef};

/// The backoff key of `object`: its kind, namespace and name.
pub fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    ObjectRef::from_obj(object).to_string()
}

/// The delay before retry number `attempt` (0 for the first retry): `base * 2^attempt`,
/// at most `max`.
pub fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempt.min(31));
    base.saturating_mul(factor).min(max)
}

/// `delay` scaled by `fraction` of its upper half: between `delay / 2` and `delay`
/// ("equal jitter").
pub fn jittered(delay: Duration, fraction: f64) -> Duration {
    let half = delay / 2;
    half + half.mul_f64(fraction.clamp(0.0, 1.0))
}

/// The next resync of an object that reconciled well: `resync` give or take a tenth,
/// so that objects created together (thousands at once from a Git sync) do not all
/// come back in the same second, every time, and crowd the queue and the apiserver.
pub fn spread_resync(resync: Duration) -> Duration {
    spread(resync, random_fraction())
}

fn spread(resync: Duration, fraction: f64) -> Duration {
    resync.mul_f64(0.9 + 0.2 * fraction.clamp(0.0, 1.0))
}

/// A random fraction in [0, 1): the standard library's randomly keyed hasher is
/// enough for jitter, without a random number crate.
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

/// Failure counts by object key, with the time of the last failure.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: Mutex<HashMap<String, (u32, Instant)>>,
}

/// The first retry delay of a failed reconcile.
const RECONCILE_BASE: Duration = Duration::from_secs(1);
/// The longest retry delay of a failed reconcile.
const RECONCILE_MAX: Duration = Duration::from_secs(300);

impl Backoff {
    pub fn new(base: Duration, max: Duration) -> Self {
        Self { base, max, attempts: Mutex::default() }
    }

    /// The backoff of every controller's failed reconciles: 1 s, doubling up to 5 min.
    pub fn reconciles() -> Self {
        Self::new(RECONCILE_BASE, RECONCILE_MAX)
    }

    /// Records one more failure of `key` and returns how long to wait before retrying.
    pub fn next(&self, key: &str) -> Duration {
        jittered(self.next_at(key, Instant::now()), random_fraction())
    }

    /// [`Self::next`] at `now`, before jitter; drops the entries that have not failed
    /// for twice the longest delay.
    fn next_at(&self, key: &str, now: Instant) -> Duration {
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let stale = self.max.saturating_mul(2);
        attempts.retain(|_, (_, last)| now.saturating_duration_since(*last) <= stale);
        let (attempt, last) = attempts.entry(key.to_owned()).or_insert((0, now));
        let wait = delay(self.base, self.max, *attempt);
        *attempt = attempt.saturating_add(1);
        *last = now;
        wait
    }

    /// Objects with failures on record.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Forgets the failures of `key`, after a success or once the object is gone.
    pub fn reset(&self, key: &str) {
        self.attempts.lock().unwrap_or_else(PoisonError::into_inner).remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delay_doubles_up_to_the_cap() {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(5);
        let delays: Vec<_> = (0..6).map(|a| delay(base, max, a)).collect();
        assert_eq!(delays, [500, 1000, 2000, 4000, 5000, 5000].map(Duration::from_millis).to_vec());
        assert_eq!(delay(base, max, u32::MAX), max);
    }

    #[test]
    fn backoff_is_per_object_and_resets_on_success() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let now = Instant::now();
        assert_eq!(backoff.next_at("a/x", now), Duration::from_secs(1));
        assert_eq!(backoff.next_at("a/x", now), Duration::from_secs(2));
        assert_eq!(backoff.next_at("a/y", now), Duration::from_secs(1));
        backoff.reset("a/x");
        assert_eq!(backoff.next_at("a/x", now), Duration::from_secs(1));
    }

    #[test]
    fn entries_of_objects_that_stopped_failing_are_dropped() {
        let backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));
        let start = Instant::now();
        backoff.next_at("deleted-while-failing", start);
        backoff.next_at("still-failing", start);
        backoff.next_at("still-failing", start + Duration::from_secs(60));
        assert_eq!(backoff.len(), 2, "within twice the longest delay");
        backoff.next_at("still-failing", start + Duration::from_secs(121));
        assert_eq!(backoff.len(), 1, "the deleted object's entry is gone");
        assert_eq!(
            backoff.next_at("still-failing", start + Duration::from_secs(122)),
            Duration::from_secs(8),
            "the failing object keeps its count"
        );
    }

    #[test]
    fn resyncs_are_spread_over_a_tenth_either_side() {
        let resync = Duration::from_secs(100);
        assert_eq!(spread(resync, 0.0), Duration::from_secs(90));
        assert_eq!(spread(resync, 0.5), Duration::from_secs(100));
        assert_eq!(spread(resync, 1.0), Duration::from_secs(110));
        let drawn: std::collections::BTreeSet<Duration> =
            (0..50).map(|_| spread_resync(resync)).collect();
        assert!(drawn.len() > 10, "not spread: {drawn:?}");
        assert!(drawn.iter().all(|d| (90..=110).contains(&d.as_secs())), "{drawn:?}");
    }

    #[test]
    fn retries_are_jittered_between_half_and_all_of_the_delay() {
        let delay = Duration::from_secs(8);
        assert_eq!(jittered(delay, 0.0), Duration::from_secs(4));
        assert_eq!(jittered(delay, 1.0), delay);
        let backoff = Backoff::new(Duration::from_secs(8), Duration::from_secs(60));
        let waits: std::collections::BTreeSet<Duration> =
            (0..20).map(|i| backoff.next(&format!("object-{i}"))).collect();
        assert!(waits.iter().all(|w| (Duration::from_secs(4)..=delay).contains(w)), "{waits:?}");
        // Twenty objects failing together do not all retry at the same moment.
        assert!(waits.len() > 1, "{waits:?}");
    }
}
