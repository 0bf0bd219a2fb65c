//! The uploader quota (SDK §2.5, collection `Quota`): per user, app and uploader,
//! `freeQuotaUnits` files per 30 days from first use, unlimited plans and machine
//! tokens exempt. The SDK's bugs are fixed: the reset is computed per record (not from
//! the module's import time), the consumed count is read after a reset, and the quota
//! is actually consumed, atomically (a conditional `$inc`), so concurrent uploads can
//! never exceed it.

use std::{
    collections::HashMap,
    sync::PoisonError,
    time::{Duration, Instant},
};

use jiff::{Timestamp, ToSpan};
use mongodb::{
    Database,
    bson::{Document, doc},
    options::{FindOneAndUpdateOptions, ReturnDocument},
};
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::consume::clock;

pub const COLLECTION: &str = "Quota";
/// The SDK's window: 30 days, not a calendar month.
const WINDOW_DAYS: i64 = 30;
/// A conditional update that loses a race to a reset is tried again this many times.
const ATTEMPTS: usize = 4;

/// Whose quota: the SDK's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaKey<'a> {
    pub user_id: &'a str,
    pub app_id: &'a str,
    pub uploader_id: &'a str,
}

impl QuotaKey<'_> {
    fn filter(&self) -> Document {
        doc! { "user_id": self.user_id, "app_id": self.app_id, "uploader_id": self.uploader_id }
    }
}

/// A quota document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotaRecord {
    pub app_id: String,
    pub user_id: String,
    pub uploader_id: String,
    pub monthly_quota: i64,
    pub monthly_quota_consumed: i64,
    /// UTC ISO without zone, like every SDK date: compares as text.
    pub quota_reset_date: String,
}

/// The answer of a check or a consumption.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaOutcome {
    pub within: bool,
    pub record: QuotaRecord,
}

impl QuotaOutcome {
    /// The SDK's UploaderQuotaResponse.
    pub fn response(&self) -> Value {
        let message =
            if self.within { "Utilization within monthly quota" } else { "Monthly quota exceeded" };
        json!({
            "status": if self.within { "success" } else { "failed" },
            "message": message,
            "monthly_quota": self.record.monthly_quota,
            "monthly_quota_consumed": self.record.monthly_quota_consumed,
            "quota_reset_date": self.record.quota_reset_date,
            "app_id": self.record.app_id,
            "user_id": self.record.user_id,
            "uploader_id": self.record.uploader_id,
        })
    }
}

/// What a caller may use: the plan decides, the uploader's `freeQuotaUnits` otherwise
/// (read at each request, so a changed Uploader applies at once).
pub fn limit(unlimited: bool, free_quota_units: i64) -> i64 {
    if unlimited { i64::MAX } else { free_quota_units.max(0) }
}

/// `now + 30 days`, in the SDK's date format.
pub fn next_reset(now: Timestamp) -> String {
    clock::iso(now.checked_add(WINDOW_DAYS.hours() * 24).unwrap_or(now))
}

/// Whether a record's window is over at `now`.
pub fn window_over(record: &QuotaRecord, now: Timestamp) -> bool {
    clock::iso(now) >= record.quota_reset_date
}

/// Whether `units` more fit.
pub fn fits(record: &QuotaRecord, units: i64) -> bool {
    record
        .monthly_quota_consumed
        .checked_add(units)
        .is_some_and(|total| total <= record.monthly_quota)
}

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("quota store: {0}")]
    Store(#[from] mongodb::error::Error),
    #[error("quota lock: {0}")]
    Lock(#[from] redis::RedisError),
    #[error("the quota of this user and uploader stayed locked for {0:?}")]
    Busy(Duration),
}

/// How long a consumption may hold its key's lock: far longer than the few database
/// calls it makes, short enough that a crashed holder does not block for long.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How long a request waits for the lock before giving up (503).
const LOCK_WAIT: Duration = Duration::from_secs(15);

/// A per-key lock in Redis: `SET NX PX` with a token only its holder knows.
struct QuotaLock {
    key: String,
    token: String,
}

impl QuotaLock {
    async fn acquire(
        redis: &mut ConnectionManager,
        key: &QuotaKey<'_>,
    ) -> Result<Self, QuotaError> {
        let lock = Self {
            key: format!("quota_lock:{}:{}:{}", key.app_id, key.uploader_id, key.user_id),
            token: uuid::Uuid::new_v4().to_string(),
        };
        let started = std::time::Instant::now();
        let mut pause = Duration::from_millis(2);
        loop {
            let taken: Option<String> = redis::cmd("SET")
                .arg(&lock.key)
                .arg(&lock.token)
                .arg("NX")
                .arg("PX")
                .arg(LOCK_TTL.as_millis() as u64)
                .query_async(redis)
                .await?;
            if taken.is_some() {
                return Ok(lock);
            }
            if started.elapsed() > LOCK_WAIT {
                return Err(QuotaError::Busy(LOCK_WAIT));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Deletes the lock if it is still ours (it may have expired and been taken).
    async fn release(self, redis: &mut ConnectionManager) {
        let script = redis::Script::new(
            "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end",
        );
        let released: redis::RedisResult<i64> =
            script.key(&self.key).arg(&self.token).invoke_async(redis).await;
        if let Err(error) = released {
            tracing::warn!(%error, key = self.key, "quota lock not released; it expires by itself");
        }
    }
}

/// How long a record read for a check may be reused: `/validation` is advisory (the
/// consumption at `/files` is the atomic step), and its rate must not be MongoDB's.
const CHECK_CACHE_TTL: Duration = Duration::from_secs(2);
/// Records kept for checks; past this the cache starts over (bounded memory).
const CHECK_CACHE_ENTRIES: usize = 65_536;

/// The quota store of one database.
#[derive(Debug)]
pub struct Quotas {
    collection: mongodb::Collection<QuotaRecord>,
    recent: std::sync::Mutex<HashMap<CacheKey, (Instant, QuotaRecord)>>,
}

/// User, app and uploader.
type CacheKey = (String, String, String);

impl Quotas {
    pub fn new(database: &Database) -> Self {
        Self { collection: database.collection(COLLECTION), recent: Default::default() }
    }

    fn cache_key(key: &QuotaKey<'_>) -> CacheKey {
        (key.user_id.to_owned(), key.app_id.to_owned(), key.uploader_id.to_owned())
    }

    fn remember(&self, key: &QuotaKey<'_>, record: &QuotaRecord) {
        let mut recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        if recent.len() >= CHECK_CACHE_ENTRIES {
            recent.clear();
        }
        recent.insert(Self::cache_key(key), (Instant::now(), record.clone()));
    }

    fn recalled(&self, key: &QuotaKey<'_>) -> Option<QuotaRecord> {
        let recent = self.recent.lock().unwrap_or_else(PoisonError::into_inner);
        let (at, record) = recent.get(&Self::cache_key(key))?;
        (at.elapsed() < CHECK_CACHE_TTL).then(|| record.clone())
    }

    /// [`Self::check`] from a record at most 2 s old when there is one (this replica's
    /// consumptions refresh it at once).
    pub async fn check_recent(
        &self,
        key: &QuotaKey<'_>,
        limit: i64,
        units: i64,
    ) -> Result<QuotaOutcome, QuotaError> {
        if let Some(mut record) = self.recalled(key)
            && !window_over(&record, Timestamp::now())
        {
            record.monthly_quota = limit;
            return Ok(QuotaOutcome { within: fits(&record, units), record });
        }
        self.check(key, limit, units).await
    }

    /// One record per key: without the unique index, concurrent first uses would each
    /// insert one.
    pub async fn ensure_indexes(&self) -> Result<(), QuotaError> {
        let index = mongodb::IndexModel::builder()
            .keys(doc! {"user_id": 1, "app_id": 1, "uploader_id": 1})
            .options(mongodb::options::IndexOptions::builder().unique(true).build())
            .build();
        self.collection.create_index(index).await?;
        Ok(())
    }

    /// The record, made on first use ("Quota initialized"), its window renewed when
    /// over, and its quota set to the current `limit`.
    pub async fn current(&self, key: &QuotaKey<'_>, limit: i64) -> Result<QuotaRecord, QuotaError> {
        let now = Timestamp::now();
        let options = FindOneAndUpdateOptions::builder()
            .upsert(true)
            .return_document(ReturnDocument::After)
            .build();
        let update = doc! {
            "$set": { "monthly_quota": limit },
            "$setOnInsert": { "monthly_quota_consumed": 0_i64, "quota_reset_date": next_reset(now) },
        };
        let mut upserted = None;
        for _ in 0..ATTEMPTS {
            let attempt = self
                .collection
                .find_one_and_update(key.filter(), update.clone())
                .with_options(options.clone())
                .await;
            match attempt {
                // Two first uses at once: the unique index refuses the second insert,
                // which then finds the first one's record.
                Err(error) if is_duplicate_key(&error) => continue,
                other => {
                    upserted = other?;
                    break;
                }
            }
        }
        let mut record = upserted
            .ok_or_else(|| mongodb::error::Error::custom("the quota record was not made"))?;
        if window_over(&record, now) {
            // Only the request that sees this window's end renews it.
            let mut filter = key.filter();
            filter.insert("quota_reset_date", &record.quota_reset_date);
            let renew = doc! {"$set": {"monthly_quota_consumed": 0_i64, "quota_reset_date": next_reset(now)}};
            self.collection.update_one(filter, renew).await?;
            record = self
                .collection
                .find_one(key.filter())
                .await?
                .ok_or_else(|| mongodb::error::Error::custom("quota record vanished"))?;
        }
        Ok(record)
    }

    /// Whether `units` fit, without consuming them.
    pub async fn check(
        &self,
        key: &QuotaKey<'_>,
        limit: i64,
        units: i64,
    ) -> Result<QuotaOutcome, QuotaError> {
        let record = self.current(key, limit).await?;
        self.remember(key, &record);
        Ok(QuotaOutcome { within: fits(&record, units), record })
    }

    /// Consumes `units` if they fit. A conditional increment alone is atomic on MongoDB
    /// but not on every server that speaks its protocol (FerretDB let 6 of 20
    /// concurrent uploads through a quota of 5), so consumptions of one key are also
    /// serialized by a lock in Redis, across replicas.
    pub async fn consume(
        &self,
        redis: &mut ConnectionManager,
        key: &QuotaKey<'_>,
        limit: i64,
        units: i64,
    ) -> Result<QuotaOutcome, QuotaError> {
        let lock = QuotaLock::acquire(redis, key).await?;
        let consumed = self.consume_unlocked(key, limit, units).await;
        lock.release(redis).await;
        if let Ok(outcome) = &consumed {
            self.remember(key, &outcome.record);
        }
        consumed
    }

    async fn consume_unlocked(
        &self,
        key: &QuotaKey<'_>,
        limit: i64,
        units: i64,
    ) -> Result<QuotaOutcome, QuotaError> {
        // The record this replica read moments ago (`/validation`'s check) saves reading
        // it again: the increment's own conditions (the same window, room left) decide,
        // and a record that changed since only means reading it after all. A refusal is
        // never decided on it.
        let mut recent = self.recalled(key).filter(|r| !window_over(r, Timestamp::now()));
        for _ in 0..ATTEMPTS {
            let (mut record, fresh) = match recent.take() {
                Some(record) => (record, false),
                None => (self.current(key, limit).await?, true),
            };
            record.monthly_quota = limit;
            if !fits(&record, units) {
                if fresh {
                    return Ok(QuotaOutcome { within: false, record });
                }
                continue;
            }
            let mut filter = key.filter();
            filter.insert("quota_reset_date", &record.quota_reset_date);
            filter.insert("monthly_quota_consumed", doc! {"$lte": limit - units});
            let options =
                FindOneAndUpdateOptions::builder().return_document(ReturnDocument::After).build();
            let update = doc! {
                "$inc": {"monthly_quota_consumed": units},
                "$set": {"monthly_quota": limit},
            };
            let consumed =
                self.collection.find_one_and_update(filter, update).with_options(options).await?;
            if let Some(record) = consumed {
                return Ok(QuotaOutcome { within: true, record });
            }
            // Another request took the last units, or the window was renewed: read again.
        }
        let record = self.current(key, limit).await?;
        Ok(QuotaOutcome { within: fits(&record, units), record })
    }

    /// Gives `units` back (an upload whose event could not be sent).
    pub async fn refund(&self, key: &QuotaKey<'_>, units: i64) -> Result<(), QuotaError> {
        let update = doc! {"$inc": {"monthly_quota_consumed": -units}};
        self.collection.update_one(key.filter(), update).await?;
        Ok(())
    }
}

fn is_duplicate_key(error: &mongodb::error::Error) -> bool {
    use mongodb::error::{ErrorKind, WriteFailure};
    match error.kind.as_ref() {
        ErrorKind::Command(command) => command.code == 11000,
        ErrorKind::Write(WriteFailure::WriteError(write)) => write.code == 11000,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(quota: i64, consumed: i64, reset: &str) -> QuotaRecord {
        QuotaRecord {
            app_id: "a".into(),
            user_id: "u".into(),
            uploader_id: "up".into(),
            monthly_quota: quota,
            monthly_quota_consumed: consumed,
            quota_reset_date: reset.into(),
        }
    }

    #[test]
    fn units_fit_up_to_the_quota() {
        assert!(fits(&record(4, 2, ""), 2));
        assert!(!fits(&record(4, 2, ""), 3));
        assert!(fits(&record(i64::MAX, i64::MAX - 1, ""), 1));
        assert!(!fits(&record(i64::MAX, i64::MAX, ""), 1), "no overflow");
        assert!(!fits(&record(1, 5, ""), 0), "the SDK case: consumed above the quota");
    }

    #[test]
    fn the_window_ends_at_its_reset_date_and_lasts_30_days() {
        let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        assert!(window_over(&record(1, 1, "2021-09-24T11:50:23.132560"), now));
        assert!(!window_over(&record(1, 1, "2026-01-01T00:00:00.000001"), now));
        assert_eq!(next_reset(now), "2026-01-31T00:00:00.000000");
    }

    #[tokio::test]
    async fn checks_reuse_a_recent_record_without_the_store() {
        // No server listens there: a check that went to the store would fail.
        let client =
            mongodb::Client::with_uri_str("mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=300")
                .await
                .unwrap();
        let quotas = Quotas::new(&client.database("none"));
        let key = QuotaKey { user_id: "u", app_id: "a", uploader_id: "up" };
        assert!(quotas.check_recent(&key, 5, 1).await.is_err(), "nothing recent: the store");
        quotas.remember(&key, &record(5, 4, "9999-01-01T00:00:00.000000"));
        let outcome = quotas.check_recent(&key, 5, 1).await.unwrap();
        assert!(outcome.within);
        assert!(!quotas.check_recent(&key, 5, 2).await.unwrap().within);
        assert!(quotas.check_recent(&key, 6, 2).await.unwrap().within, "the current limit applies");
        let other = QuotaKey { user_id: "v", ..key.clone() };
        assert!(quotas.check_recent(&other, 5, 1).await.is_err(), "per user");
    }

    #[test]
    fn plans_set_the_limit() {
        assert_eq!(limit(true, 1), i64::MAX);
        assert_eq!(limit(false, 3), 3);
        assert_eq!(limit(false, -1), 0);
    }

    #[test]
    fn the_response_is_the_sdks() {
        let outcome = QuotaOutcome { within: false, record: record(1, 5, "r") };
        let response = outcome.response();
        assert_eq!(response["status"], "failed");
        assert_eq!(response["message"], "Monthly quota exceeded");
        assert_eq!(response["monthly_quota_consumed"], 5);
        let keys: Vec<&String> = response.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "status",
                "message",
                "monthly_quota",
                "monthly_quota_consumed",
                "quota_reset_date",
                "app_id",
                "user_id",
                "uploader_id"
            ]
        );
    }
}
