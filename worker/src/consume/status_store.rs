//! The status key in Redis. Best effort like the notifications: the status is what the
//! UI shows, the data does not depend on it, and its TTL heals a missed `idle`.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::OnceCell;

use super::status::{self, Status, StatusSubject};

/// How long one status write may take before it is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// A step's publication is only for live viewers: it never holds processing up long.
const STEP_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct StatusStore {
    client: redis::Client,
    /// Opened on first use; the driver's manager reconnects by itself after an error,
    /// so a restarted Redis is found again.
    connection: OnceCell<ConnectionManager>,
    failures: AtomicU64,
}

impl StatusStore {
    pub fn new(client: redis::Client) -> Self {
        Self { client, connection: OnceCell::new(), failures: AtomicU64::new(0) }
    }

    /// Status writes that failed since the start.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    pub async fn set(&self, subject: &StatusSubject<'_>, status: Status, updated_at: &str) {
        let key = status::redis_key(subject.uploader_id, subject.tenant_id);
        let value = status::redis_value(subject, status, updated_at);
        let write = self.write(&key, &value);
        let error = match tokio::time::timeout(WRITE_TIMEOUT, write).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        let count = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(key, error, failed_status_writes = count, "status not written to Redis");
    }

    /// Tells the API that `tenant`'s data of `app` changed: its cached component data
    /// is stale from now on (the generation is part of every cache key). Called once
    /// an event's outcome is stored; best effort and bounded like the status: a missed
    /// bump leaves old answers until their TTL, never wrong data in MongoDB.
    pub async fn bump_data_generation(&self, tenant: &str, app: &str) {
        let key = crate::serve::reports::cache::generation_key(tenant, app);
        let bump = async {
            let mut connection = self.connection().await?;
            crate::serve::reports::cache::bump_generation(&mut connection, &key).await.map(|_| ())
        };
        let error = match tokio::time::timeout(WRITE_TIMEOUT, bump).await {
            Ok(Ok(())) => return,
            Ok(Err(error)) => error.to_string(),
            Err(_) => "timed out".to_owned(),
        };
        let count = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        tracing::warn!(key, error, failed_status_writes = count, "cache generation not bumped");
    }

    /// A step of an event, for the API's status streams only (nothing is stored).
    pub async fn publish_step(&self, uploader_id: &str, tenant_id: &str, value: &str) {
        let channel = status::redis_key(uploader_id, tenant_id);
        let publish = async {
            let mut connection = self.connection().await?;
            redis::cmd("PUBLISH").arg(&channel).arg(value).query_async::<()>(&mut connection).await
        };
        if let Ok(Err(error)) | Err(error) =
            tokio::time::timeout(STEP_TIMEOUT, publish).await.map_err(|_| timed_out())
        {
            tracing::debug!(%error, channel, "step not published");
        }
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        self.connection
            .get_or_try_init(|| {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(WRITE_TIMEOUT))
                    .set_response_timeout(Some(WRITE_TIMEOUT));
                ConnectionManager::new_with_config(self.client.clone(), config)
            })
            .await
            .cloned()
    }

    /// The value, and the same on the channel of the key's name: the API's status
    /// streams (`Accept: text/event-stream`) follow it.
    async fn write(&self, key: &str, value: &str) -> redis::RedisResult<()> {
        let mut connection = self.connection().await?;
        redis::pipe()
            .cmd("SET")
            .arg(key)
            .arg(value)
            .arg("EX")
            .arg(status::STATUS_TTL_SECONDS)
            .ignore()
            .cmd("PUBLISH")
            .arg(key)
            .arg(value)
            .ignore()
            .query_async::<()>(&mut connection)
            .await
    }
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "timed out"))
}
