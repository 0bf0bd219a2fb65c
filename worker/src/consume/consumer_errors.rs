//! The error events of the consumer queue. librdkafka reports each failed connection
//! and reconnects by itself; during a broker outage it queues hundreds of reports, in
//! the same queue as the group's rebalance events. The loop must drain them at once:
//! a pause of one second per report left the assignment of a rejoin behind minutes of
//! stale `AllBrokersDown` reports after a broker restart, and the worker consumed
//! nothing meanwhile. Logging is bounded instead: one line per interval, with the
//! count of the reports it stands for.

use std::time::{Duration, Instant};

/// At most one log line per this long.
const LOG_EVERY: Duration = Duration::from_secs(5);
/// More reports than this within one window is a flood, not a backlog: the loop then
/// pauses a little after each, so that it never spins.
const FLOOD_LIMIT: u32 = 10_000;
const FLOOD_WINDOW: Duration = Duration::from_secs(1);
const FLOOD_PAUSE: Duration = Duration::from_millis(10);

/// What the loop does with one error report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ErrorAction {
    /// Log it, saying how many reports since the last line were not logged.
    pub log: Option<u64>,
    /// Wait this long before the next poll.
    pub pause: Option<Duration>,
}

/// The rate of error reports, for [`ErrorAction`].
#[derive(Debug, Default)]
pub struct ConsumerErrors {
    last_logged: Option<Instant>,
    not_logged: u64,
    window_start: Option<Instant>,
    in_window: u32,
}

impl ConsumerErrors {
    /// One more report, received at `now`.
    pub fn on_error(&mut self, now: Instant) -> ErrorAction {
        let log = match self.last_logged {
            Some(at) if now.duration_since(at) < LOG_EVERY => {
                self.not_logged += 1;
                None
            }
            _ => {
                self.last_logged = Some(now);
                Some(std::mem::take(&mut self.not_logged))
            }
        };
        match self.window_start {
            Some(start) if now.duration_since(start) < FLOOD_WINDOW => self.in_window += 1,
            _ => {
                self.window_start = Some(now);
                self.in_window = 1;
            }
        }
        let pause = (self.in_window > FLOOD_LIMIT).then_some(FLOOD_PAUSE);
        ErrorAction { log, pause }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backlog_of_reports_is_drained_without_pauses_and_logged_once() {
        let mut errors = ConsumerErrors::default();
        let start = Instant::now();
        let actions: Vec<ErrorAction> =
            (0..600).map(|i| errors.on_error(start + Duration::from_micros(i))).collect();
        assert!(actions.iter().all(|action| action.pause.is_none()), "a backlog never waits");
        assert_eq!(actions[0].log, Some(0));
        assert!(actions[1..].iter().all(|action| action.log.is_none()));
        let later = errors.on_error(start + LOG_EVERY);
        assert_eq!(later.log, Some(599), "the next line counts the reports it stands for");
    }

    #[test]
    fn a_flood_pauses_and_the_next_window_does_not() {
        let mut errors = ConsumerErrors::default();
        let start = Instant::now();
        let mut paused = 0;
        for i in 0..=FLOOD_LIMIT {
            if errors.on_error(start + Duration::from_nanos(u64::from(i))).pause.is_some() {
                paused += 1;
            }
        }
        assert_eq!(paused, 1, "only reports past the limit wait");
        let next_window = errors.on_error(start + FLOOD_WINDOW);
        assert_eq!(next_window.pause, None);
    }
}
