//! Per-object exponential backoff for `error_policy`: kube's controller keeps no
//! state between failures of one object, so the controller keeps it here.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::Duration,
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

/// Failure counts by object key.
#[derive(Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    attempts: Mutex<HashMap<String, u32>>,
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
        let mut attempts = self.attempts.lock().unwrap_or_else(PoisonError::into_inner);
        let attempt = attempts.entry(key.to_owned()).or_insert(0);
        let wait = delay(self.base, self.max, *attempt);
        *attempt = attempt.saturating_add(1);
        wait
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
        assert_eq!(backoff.next("a/x"), Duration::from_secs(1));
        assert_eq!(backoff.next("a/x"), Duration::from_secs(2));
        assert_eq!(backoff.next("a/y"), Duration::from_secs(1));
        backoff.reset("a/x");
        assert_eq!(backoff.next("a/x"), Duration::from_secs(1));
    }
}
