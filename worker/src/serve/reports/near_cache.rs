//! The near cache: component results kept in this process, in front of Redis.
//!
//! A hit in Redis costs a round trip per request (the lookup script); a hit here costs
//! none. It is exact, not a guess with a short TTL:
//! - A value is kept under its full Redis key (the tenant's data generation and the
//!   digest of what decides the rows), for no longer than Redis keeps it, and tagged
//!   with the token of the generation it was read or computed under: a generation is
//!   given a new token each time it is learned, so after any change of the counter
//!   (an increment, or a deletion that makes it count from 0 again and so reuse a
//!   number) no value kept before is served.
//! - A generation is kept only while Redis tells this process of every change to it:
//!   one RESP3 connection with `CLIENT TRACKING ON BCAST PREFIX component_cache_gen:
//!   NOLOOP`.
//!   Its `invalidate` pushes are applied by the connection's reader before it reads the
//!   next answer, and generations are read through that same connection; a read is
//!   kept only when no invalidation arrived while it was in flight. When the connection
//!   goes, every kept generation goes with it, and requests take the lookup script
//!   until tracking is back.
//! - Bounded in bytes (`--component-cache-near-mib`), by moka's weighted cache.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    time::{Duration, Instant},
};

use redis::{
    AsyncConnectionConfig, ProtocolVersion, PushInfo, PushKind, Value, aio::MultiplexedConnection,
};

use super::cache::{Entry, GENERATION_PREFIX, READ_GENERATION, random_base};

/// How long the tracking connection may take to connect and to answer.
const WAIT: Duration = Duration::from_secs(5);
/// How soon a lost tracking connection is made again, at most.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);
/// Generations kept at most; past it they are all dropped (and read again).
const MAX_GENERATIONS: usize = 100_000;
/// Reads of a generation before one is kept (see [`NearCache::generation`]).
const READS_TO_KEEP: usize = 3;
/// The tracking connection's name in `CLIENT LIST`, before the process id.
pub const CONNECTION_NAME: &str = "licenseware-api-near-cache-";

/// What the invalidations change: shared with the connection's push handler.
#[derive(Debug, Default)]
struct Tracking {
    /// The connection whose pushes count; those of an older one are ignored.
    connection: u64,
    live: bool,
    /// Counts invalidations and generations learned: a generation read is kept only if
    /// no invalidation came meanwhile, and each one kept gets the count as its token.
    epoch: u64,
    generations: HashMap<String, Generation>,
}

/// A tenant's data generation of one app, as this process knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub value: u64,
    /// Set when it is kept: the values kept under it carry it. `None`: read once, not
    /// kept (an invalidation raced the read); nothing is kept or served near under it.
    pub token: Option<u64>,
}

impl Tracking {
    fn apply(&mut self, connection: u64, push: &PushInfo) {
        if connection != self.connection {
            return;
        }
        match push.kind {
            PushKind::Invalidate => {
                self.epoch += 1;
                match push.data.first() {
                    Some(Value::Array(keys)) => {
                        for key in keys {
                            if let Value::BulkString(key) = key {
                                self.generations.remove(String::from_utf8_lossy(key).as_ref());
                            }
                        }
                    }
                    // A flush: every key changed.
                    _ => self.generations.clear(),
                }
            }
            PushKind::Disconnection => self.lose(),
            _ => {}
        }
    }

    fn lose(&mut self) {
        self.live = false;
        self.epoch += 1;
        self.generations.clear();
    }
}

/// The tracking connection, made on demand.
struct Connector {
    connection: Option<MultiplexedConnection>,
    serial: u64,
    retry_at: Option<Instant>,
}

/// See the module documentation. Cheap to share behind the app state.
pub struct NearCache {
    client: redis::Client,
    values: Option<moka::sync::Cache<String, Kept>>,
    tracking: Arc<Mutex<Tracking>>,
    connector: tokio::sync::Mutex<Connector>,
}

impl std::fmt::Debug for NearCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NearCache").field("enabled", &self.values.is_some()).finish()
    }
}

#[derive(Clone)]
struct Kept {
    entry: Arc<Entry>,
    ttl: Duration,
    /// The token of the generation it belongs to.
    token: u64,
}

struct KeptFor;

impl moka::Expiry<String, Kept> for KeptFor {
    fn expire_after_create(&self, _: &String, kept: &Kept, _: Instant) -> Option<Duration> {
        Some(kept.ttl)
    }
}

impl NearCache {
    /// A near cache of at most `max_bytes` of values, tracking through a RESP3
    /// connection to the server of `client`; `max_bytes` 0 disables it.
    pub fn new(client: &redis::Client, max_bytes: u64) -> Self {
        let info = client.get_connection_info().clone();
        let resp3 = info.redis_settings().clone().set_protocol(ProtocolVersion::RESP3);
        let client =
            redis::Client::open(info.set_redis_settings(resp3)).unwrap_or_else(|_| client.clone());
        let values = (max_bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(max_bytes)
                .weigher(|key: &String, kept: &Kept| {
                    let bytes = key.len() + kept.entry.rows.len() + kept.entry.etag.len() + 64;
                    u32::try_from(bytes).unwrap_or(u32::MAX)
                })
                .expire_after(KeptFor)
                .build()
        });
        Self {
            client,
            values,
            tracking: Arc::default(),
            connector: tokio::sync::Mutex::new(Connector {
                connection: None,
                serial: 0,
                retry_at: None,
            }),
        }
    }

    /// The current generation of `generation_key`: kept, or read through the tracking
    /// connection. `None` when the near cache is off or tracking is down: then the
    /// caller asks Redis as it would without one.
    pub async fn generation(&self, generation_key: &str) -> Option<Generation> {
        self.values.as_ref()?;
        if let Some(known) = self.known(generation_key) {
            return Some(known);
        }
        let mut connection = self.connection().await?;
        // A read that raced an invalidation is not kept; the first read of a missing
        // counter always does (it makes the counter, and Redis reports that write back
        // even with NOLOOP when a script makes it): read again, a few times at most.
        let mut raced = None;
        for _ in 0..READS_TO_KEEP {
            let epoch = self.lock().epoch;
            let value = self.read_generation(&mut connection, generation_key).await?;
            let mut tracking = self.lock();
            if !(tracking.live && tracking.epoch == epoch) {
                raced = Some(Generation { value, token: None });
                continue;
            }
            if tracking.generations.len() >= MAX_GENERATIONS {
                tracking.generations.clear();
            }
            tracking.epoch += 1;
            let generation = Generation { value, token: Some(tracking.epoch) };
            tracking.generations.insert(generation_key.to_owned(), generation);
            return Some(generation);
        }
        raced
    }

    async fn read_generation(
        &self,
        connection: &mut MultiplexedConnection,
        generation_key: &str,
    ) -> Option<u64> {
        let read = tokio::time::timeout(
            WAIT,
            READ_GENERATION
                .key(generation_key)
                .arg(random_base())
                .invoke_async::<Option<u64>>(connection),
        )
        .await;
        match read {
            Ok(Ok(value)) => Some(value.unwrap_or(0)),
            Ok(Err(error)) => {
                tracing::debug!(%error, "near cache: generation not read");
                None
            }
            Err(_) => {
                // An unanswered connection cannot be trusted to deliver invalidations.
                self.lock().lose();
                None
            }
        }
    }

    /// Drops a generation this process has just changed, without waiting for the
    /// invalidation to come back.
    pub fn forget_generation(&self, generation_key: &str) {
        let mut tracking = self.lock();
        tracking.epoch += 1;
        tracking.generations.remove(generation_key);
    }

    /// The value kept under the full key `key` for `generation`.
    pub fn value(&self, key: &str, generation: Generation) -> Option<Entry> {
        let token = generation.token?;
        let kept = self.values.as_ref()?.get(key)?;
        (kept.token == token).then(|| Entry::clone(&kept.entry))
    }

    /// Keeps `entry` under `key` for `ttl` (what is left of its life in Redis), for
    /// `generation`.
    pub fn keep(&self, key: String, entry: &Entry, ttl: Duration, generation: Generation) {
        if let Some(values) = &self.values
            && let Some(token) = generation.token
            && !ttl.is_zero()
        {
            values.insert(key, Kept { entry: Arc::new(entry.clone()), ttl, token });
        }
    }

    fn known(&self, generation_key: &str) -> Option<Generation> {
        let tracking = self.lock();
        if !tracking.live {
            return None;
        }
        tracking.generations.get(generation_key).copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tracking> {
        self.tracking.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The tracking connection, made when there is none or it was lost (at most once
    /// per [`RECONNECT_AFTER`]).
    async fn connection(&self) -> Option<MultiplexedConnection> {
        let mut connector = self.connector.lock().await;
        if self.lock().live
            && let Some(connection) = &connector.connection
        {
            return Some(connection.clone());
        }
        if connector.retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        connector.retry_at = Some(Instant::now() + RECONNECT_AFTER);
        connector.serial += 1;
        let serial = connector.serial;
        self.lock().connection = serial;
        match tokio::time::timeout(WAIT, self.track(serial)).await {
            Ok(Ok(connection)) => {
                let mut tracking = self.lock();
                if tracking.connection == serial {
                    tracking.live = true;
                    tracking.epoch += 1;
                    tracking.generations.clear();
                }
                connector.connection = Some(connection.clone());
                tracing::debug!("near cache: tracking");
                Some(connection)
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "near cache: no tracking connection; using Redis alone");
                None
            }
            Err(_) => {
                tracing::warn!("near cache: no tracking connection within 5 s; using Redis alone");
                None
            }
        }
    }

    async fn track(&self, serial: u64) -> redis::RedisResult<MultiplexedConnection> {
        let tracking = Arc::clone(&self.tracking);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(WAIT))
            .set_response_timeout(Some(WAIT))
            .set_push_sender(move |push: PushInfo| {
                tracking.lock().unwrap_or_else(PoisonError::into_inner).apply(serial, &push);
                Ok::<(), std::convert::Infallible>(())
            });
        let mut connection =
            self.client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(format!("{CONNECTION_NAME}{}", std::process::id()))
            .exec_async(&mut connection)
            .await?;
        redis::cmd("CLIENT")
            .arg("TRACKING")
            .arg("ON")
            .arg("BCAST")
            .arg("PREFIX")
            .arg(GENERATION_PREFIX)
            // The one write of this connection is a missing counter's creation, read
            // back by the same script: its own invalidation would only drop what it read.
            // (Redis 7.0 still reports a write made by a script; the reads allow for it.)
            .arg("NOLOOP")
            .exec_async(&mut connection)
            .await?;
        Ok(connection)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalidate(keys: &[&str]) -> PushInfo {
        PushInfo {
            kind: PushKind::Invalidate,
            data: vec![Value::Array(
                keys.iter().map(|k| Value::BulkString(k.as_bytes().to_vec())).collect(),
            )],
        }
    }

    fn live(generations: &[(&str, u64)]) -> Tracking {
        Tracking {
            connection: 3,
            live: true,
            epoch: 10,
            generations: generations
                .iter()
                .map(|(k, g)| ((*k).to_owned(), Generation { value: *g, token: Some(1) }))
                .collect(),
        }
    }

    #[test]
    fn an_invalidation_drops_its_keys_and_moves_the_epoch() {
        let mut tracking = live(&[("g:a", 1), ("g:b", 2)]);
        tracking.apply(3, &invalidate(&["g:a"]));
        assert_eq!(tracking.generations.get("g:a"), None);
        assert_eq!(tracking.generations.get("g:b").map(|g| g.value), Some(2));
        assert_eq!(tracking.epoch, 11);
        // A flush names no keys: everything goes.
        tracking.apply(3, &PushInfo { kind: PushKind::Invalidate, data: vec![Value::Nil] });
        assert!(tracking.generations.is_empty());
    }

    #[test]
    fn a_lost_connection_drops_everything_and_an_old_ones_pushes_count_for_nothing() {
        let mut tracking = live(&[("g:a", 1)]);
        tracking.apply(2, &invalidate(&["g:a"]));
        tracking.apply(2, &PushInfo { kind: PushKind::Disconnection, data: vec![] });
        assert!(tracking.live, "pushes of an older connection are ignored");
        assert_eq!(tracking.generations.get("g:a").map(|g| g.value), Some(1));
        tracking.apply(3, &PushInfo { kind: PushKind::Disconnection, data: vec![] });
        assert!(!tracking.live);
        assert!(tracking.generations.is_empty());
        assert_eq!(tracking.epoch, 11);
    }

    #[test]
    fn values_are_kept_by_key_for_one_learning_of_their_generation() {
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let near = NearCache::new(&client, 1 << 20);
        let entry = Entry::new("[1]".into(), false);
        let minute = Duration::from_secs(60);
        let first = Generation { value: 1, token: Some(7) };
        near.keep("k".into(), &entry, minute, first);
        assert_eq!(near.value("k", first), Some(entry.clone()));
        assert_eq!(near.value("other", first), None);
        // The same number learned again (the counter was deleted and counted up anew).
        assert_eq!(near.value("k", Generation { value: 1, token: Some(9) }), None);
        assert_eq!(near.value("k", Generation { value: 1, token: None }), None);
        near.keep("raced".into(), &entry, minute, Generation { value: 1, token: None });
        assert_eq!(near.value("raced", first), None, "nothing kept under an unkept generation");
        near.keep("zero".into(), &entry, Duration::ZERO, first);
        assert_eq!(near.value("zero", first), None, "a value Redis no longer holds is not kept");
        let off = NearCache::new(&client, 0);
        off.keep("k".into(), &entry, minute, first);
        assert_eq!(off.value("k", first), None);
    }

    #[tokio::test]
    async fn without_tracking_no_generation_is_given() {
        // Nothing listens on port 1: the caller must go to Redis itself.
        let client = redis::Client::open("redis://127.0.0.1:1/").unwrap();
        let near = NearCache::new(&client, 1 << 20);
        assert_eq!(near.generation("component_cache_gen:t:a").await, None);
        assert_eq!(NearCache::new(&client, 0).generation("g").await, None);
    }
}
