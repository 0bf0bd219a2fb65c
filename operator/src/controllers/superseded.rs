//! The resourceVersions of reconciled objects that the operator's own writes (a
//! finalizer, a status) have moved past, so a reconcile handed one of them by a cache
//! that has not seen the write yet can wait for it instead of acting on it.
//!
//! Under load the watch that fills the cache lags the apiserver by seconds, and a
//! reconcile that a child's change starts in that window sees the object as it was
//! before the last write: it set the finalizer again (a 409 on the resourceVersion
//! precondition, then a retry with backoff) or wrote the same status again. Versions are
//! compared for equality only (they are opaque), and a version is held for [`HOLD`] at
//! most: a cache that never delivers the write costs a few requeues, not a reconcile.

use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

/// How long a superseded version is remembered after the write that superseded it.
const HOLD: Duration = Duration::from_secs(10);
/// Versions kept per object: a reconcile writes the finalizer and the status at most.
const KEPT: usize = 4;

#[derive(Debug, Default)]
pub struct Superseded {
    entries: Mutex<HashMap<String, Entry>>,
}

#[derive(Debug)]
struct Entry {
    /// Versions the operator's writes have replaced.
    old: Vec<String>,
    /// The version its last write gave back.
    latest: String,
    at: Instant,
}

impl Superseded {
    /// A write to the object `uid` changed its version `from` into `to`. `from` is the
    /// version the reconcile was given; a version between them that an earlier write
    /// of the same reconcile made is superseded too.
    pub fn record(&self, uid: &str, from: Option<&str>, to: Option<&str>) {
        let (Some(from), Some(to)) = (from, to) else { return };
        if from == to {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.entry(uid.to_owned()).or_insert_with(|| Entry {
            old: Vec::new(),
            latest: from.to_owned(),
            at: Instant::now(),
        });
        if entry.at.elapsed() >= HOLD {
            entry.old.clear();
        }
        for version in [from, entry.latest.as_str()] {
            if version != to && !entry.old.iter().any(|old| old == version) {
                entry.old.push(version.to_owned());
            }
        }
        if entry.old.len() > KEPT {
            entry.old.drain(..entry.old.len() - KEPT);
        }
        entry.latest = to.to_owned();
        entry.at = Instant::now();
    }

    /// Whether `version` of the object `uid` is one the operator's writes replaced less
    /// than [`HOLD`] ago. Any other version means the cache has caught up (or someone
    /// else wrote): the object's memory is dropped.
    pub fn is_stale(&self, uid: &str, version: Option<&str>) -> bool {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entry) = entries.get(uid) else { return false };
        let stale = entry.at.elapsed() < HOLD
            && version.is_some_and(|version| entry.old.iter().any(|old| old == version));
        if !stale {
            entries.remove(uid);
        }
        stale
    }

    /// Forgets a deleted object.
    pub fn forget(&self, uid: &str) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).remove(uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_before_the_last_write_are_stale_until_the_cache_catches_up() {
        let memory = Superseded::default();
        assert!(!memory.is_stale("u", Some("1")), "nothing written");
        // One reconcile given version 1: the finalizer makes 2, then the status makes 3.
        memory.record("u", Some("1"), Some("2"));
        memory.record("u", Some("1"), Some("3"));
        assert!(memory.is_stale("u", Some("1")));
        assert!(memory.is_stale("u", Some("2")), "the finalizer's version, seen before");
        assert!(!memory.is_stale("u", Some("3")), "the cache has the last write");
        assert!(!memory.is_stale("u", Some("1")), "forgotten once caught up");
    }

    #[test]
    fn a_write_that_changed_nothing_or_another_writer_marks_nothing() {
        let memory = Superseded::default();
        memory.record("u", Some("5"), Some("5"));
        assert!(!memory.is_stale("u", Some("5")), "a no-op apply keeps the version");
        memory.record("u", Some("5"), Some("6"));
        assert!(!memory.is_stale("u", Some("9")), "someone else's newer version");
        assert!(!memory.is_stale("u", Some("5")), "dropped with it");
        memory.record("u", None, Some("7"));
        assert!(!memory.is_stale("u", None));
    }

    #[test]
    fn objects_are_apart_and_forgotten() {
        let memory = Superseded::default();
        memory.record("a", Some("1"), Some("2"));
        assert!(!memory.is_stale("b", Some("1")));
        assert!(memory.is_stale("a", Some("1")));
        memory.forget("a");
        assert!(!memory.is_stale("a", Some("1")));
    }
}
