//! Exponential backoff between attempts of an event (in process: the partition waits,
//! so later events of the partition keep their order behind a failing one).

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// The wait after failed attempt number `attempt` (1-based): base, 2·base, 4·base...
    /// capped at `max`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1 << doublings).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_cap() {
        let backoff = Backoff { base: Duration::from_millis(500), max: Duration::from_secs(3) };
        let delays: Vec<u128> = (0..=6).map(|n| backoff.delay(n).as_millis()).collect();
        assert_eq!(delays, [500, 500, 1000, 2000, 3000, 3000, 3000]);
        assert_eq!(backoff.delay(u32::MAX), Duration::from_secs(3), "no overflow");
    }
}
