//! The delivery count: attempts of an event persisted in its history document before
//! each one starts, so that a worker killed while processing (an abort, an out-of-memory
//! kill, a node lost) does not start again at attempt 1 on the redelivery. Without it a
//! poison event crash-loops its partition for ever; with it, once maxAttempts attempts
//! have started without an outcome, the next delivery dead-letters the event before
//! processing it again.
//!
//! The count belongs to one delivery source, the message's `topic/partition/offset`:
//! an event replayed from the dead letters (a new offset) starts a new count, while
//! the redeliveries of one message share it.

use mongodb::bson::{Document, doc};

use super::history::EventIds;

/// The history document's field holding `{source, attempts}`.
pub const FIELD: &str = "delivery";

/// Where a message comes from: its count is kept per source.
pub fn source(topic: &str, partition: i32, offset: i64) -> String {
    format!("{topic}/{partition}/{offset}")
}

/// The count as stored: attempts started for the message `source`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub source: String,
    pub attempts: u32,
}

impl Stored {
    /// The count in a history document, if it has one.
    pub fn in_history(history: &Document) -> Option<Self> {
        let delivery = history.get_document(FIELD).ok()?;
        let source = delivery.get_str("source").ok()?.to_owned();
        let attempts = match delivery.get("attempts")? {
            mongodb::bson::Bson::Int32(n) => i64::from(*n),
            mongodb::bson::Bson::Int64(n) => *n,
            mongodb::bson::Bson::Double(n) => n.round() as i64,
            _ => return None,
        };
        Some(Self { source, attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX) })
    }
}

/// What to do with a delivered message, given its stored count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Process it; its attempts go on from the stored count.
    Process,
    /// maxAttempts attempts started and none reached an outcome: dead-letter it, do
    /// not process it again.
    Exhausted { attempts: u32 },
}

pub fn decide(stored: Option<&Stored>, source: &str, max_attempts: u32) -> Decision {
    match stored {
        Some(stored) if stored.source == source && stored.attempts >= max_attempts => {
            Decision::Exhausted { attempts: stored.attempts }
        }
        _ => Decision::Process,
    }
}

/// The filter of the event's history document when its count is for `source`.
pub fn filter_for(ids: &EventIds, source: &str) -> Document {
    let mut filter = ids.filter();
    filter.insert(format!("{FIELD}.source"), source);
    filter
}

/// One more attempt of the count of `source` (matched by [`filter_for`]).
pub fn increment() -> Document {
    doc! { "$inc": { format!("{FIELD}.attempts"): 1_i64 } }
}

/// A new count for `source` at its first attempt, replacing one of another source.
pub fn first_attempt(ids: &EventIds, source: &str) -> Document {
    doc! {
        "$setOnInsert": ids.filter(),
        "$set": { FIELD: { "source": source, "attempts": 1_i64 } },
    }
}

/// Gives back the attempt in progress when the worker stopped it on purpose (SIGTERM):
/// only attempts that ended without the worker's say-so count towards the poison limit.
pub fn refund() -> Document {
    doc! { "$inc": { format!("{FIELD}.attempts"): -1_i64 } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(source: &str, attempts: u32) -> Stored {
        Stored { source: source.to_owned(), attempts }
    }

    #[test]
    fn a_message_is_dead_lettered_once_max_attempts_started_for_it() {
        let here = source("app.up.events", 2, 17);
        assert_eq!(here, "app.up.events/2/17");
        assert_eq!(decide(None, &here, 3), Decision::Process, "a first delivery");
        assert_eq!(decide(Some(&stored(&here, 2)), &here, 3), Decision::Process);
        assert_eq!(decide(Some(&stored(&here, 3)), &here, 3), Decision::Exhausted { attempts: 3 });
        assert_eq!(decide(Some(&stored(&here, 9)), &here, 3), Decision::Exhausted { attempts: 9 });
        // A replay of the event (another offset) starts a new count.
        let replay = source("app.up.events", 0, 99);
        assert_eq!(decide(Some(&stored(&here, 3)), &replay, 3), Decision::Process);
    }

    #[test]
    fn the_count_is_read_from_the_history_document() {
        let history = doc! { "tenant_id": "t", FIELD: { "source": "s/0/1", "attempts": 2_i64 } };
        assert_eq!(Stored::in_history(&history), Some(stored("s/0/1", 2)));
        let int32 = doc! { FIELD: { "source": "s/0/1", "attempts": 4_i32 } };
        assert_eq!(Stored::in_history(&int32), Some(stored("s/0/1", 4)));
        assert_eq!(Stored::in_history(&doc! { "tenant_id": "t" }), None);
        let negative = doc! { FIELD: { "source": "s/0/1", "attempts": -1_i64 } };
        assert_eq!(Stored::in_history(&negative), Some(stored("s/0/1", 0)));
    }

    #[test]
    fn updates_address_the_count_of_one_source() {
        let ids = EventIds {
            tenant_id: "t".into(),
            event_id: "e".into(),
            app_id: "a".into(),
            uploader_id: "u".into(),
        };
        assert_eq!(
            filter_for(&ids, "s/0/1"),
            doc! { "tenant_id": "t", "event_id": "e", "delivery.source": "s/0/1" }
        );
        assert_eq!(increment(), doc! { "$inc": { "delivery.attempts": 1_i64 } });
        assert_eq!(
            first_attempt(&ids, "s/0/1").get_document("$set").unwrap(),
            &doc! { "delivery": { "source": "s/0/1", "attempts": 1_i64 } }
        );
    }
}
