//! Component data cached in Redis.
//!
//! - Keys begin with the tenant: `component_cache:{tenant}:{app}:{component}:{gen}:{digest}`,
//!   where `digest` is the SHA-256 of what decides the rows (the component's version,
//!   its collection, the filters, the paging) and `gen` the tenant's data generation.
//! - Invalidation: `component_cache_gen:{tenant}:{app}` is incremented when that
//!   tenant's data of that app changes (the worker after each event, a data-table edit
//!   through [`invalidate`]). Every key holds the generation, so the next request after
//!   a change misses at once; the old entries expire with their TTL. Nothing is scanned
//!   or deleted.
//! - One computation per key at a time: a tokio mutex per key in this process, and a
//!   `SET NX PX` lock across replicas; whoever does not hold it waits for the value.
//! - A Redis that does not answer costs the cache, never the request: the rows are
//!   computed and served uncached.
//! - In front of Redis, the [`NearCache`] of this process answers hits without a round
//!   trip, exactly (see there).

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex, PoisonError, Weak},
    time::{Duration, Instant},
};

use bytes::Bytes;
use redis::aio::ConnectionManager;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    filters::FilterItem,
    near_cache::{Generation, NearCache},
    query::Paging,
};

/// How long a replica may hold a key's computation before another may take over (a
/// crashed replica's lock ends by itself).
const LOCK_TTL: Duration = Duration::from_secs(60);
/// How often a request waiting on another replica's computation looks for the value.
const POLL: Duration = Duration::from_millis(25);
/// Values above this are served but not cached: Redis is not a blob store.
pub const MAX_CACHED_BYTES: usize = 32 << 20;

/// What every generation key begins with (the near cache tracks this prefix).
pub const GENERATION_PREFIX: &str = "component_cache_gen:";

/// The generation counter of a tenant's data of one app.
pub fn generation_key(tenant: &str, app: &str) -> String {
    format!("{GENERATION_PREFIX}{tenant}:{app}")
}

/// Where a generation counter that does not exist starts: a random 48-bit number,
/// never 0, so that a counter deleted (a flush, an eviction, a cleanup) and made again
/// does not give back numbers that name results computed before.
pub fn random_base() -> u64 {
    uuid::Uuid::new_v4().as_u64_pair().0 >> 16
}

/// Increments a generation counter, made first from [`random_base`] when missing.
static BUMP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('EXISTS', KEYS[1]) == 0 then redis.call('SET', KEYS[1], ARGV[1]) end
         return redis.call('INCR', KEYS[1])",
    )
});

/// The generation at `key`, made from [`random_base`] when missing (a reader must not
/// compute under a number that a later counter may give again).
pub static READ_GENERATION: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local g = redis.call('GET', KEYS[1])
         if not g then redis.call('SET', KEYS[1], ARGV[1], 'NX') g = redis.call('GET', KEYS[1]) end
         return g",
    )
});

/// Increments the generation at `key` (what makes every cached result under it stale).
pub async fn bump_generation<C: redis::aio::ConnectionLike>(
    connection: &mut C,
    key: &str,
) -> redis::RedisResult<u64> {
    BUMP.key(key).arg(random_base()).invoke_async(connection).await
}

/// The key of one result. `tenant` first, so that a tenant's entries are one prefix.
pub fn cache_key(
    tenant: &str,
    app: &str,
    component: &str,
    generation: u64,
    digest: &str,
) -> String {
    format!("component_cache:{tenant}:{app}:{component}:{generation}:{digest}")
}

/// What decides a component's rows, besides the tenant and the generation.
#[derive(Debug, Serialize)]
pub struct KeyParts<'a> {
    /// The component document's `updated_at`: a changed pipeline is a new key.
    pub version: &'a str,
    pub collection: &'a str,
    pub filters: &'a [FilterItem],
    pub skip: u64,
    pub limit: u64,
}

impl KeyParts<'_> {
    pub fn new<'a>(
        version: &'a str,
        collection: &'a str,
        filters: &'a [FilterItem],
        paging: Paging,
    ) -> KeyParts<'a> {
        KeyParts { version, collection, filters, skip: paging.skip, limit: paging.limit }
    }

    /// SHA-256 of the parts' JSON, hex. The filters are the parsed structs, so their
    /// key order (and whitespace) in the request does not make a new key.
    pub fn digest(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        hex(&Sha256::digest(&json))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// A component's rows as served: the JSON array, its ETag, whether more rows follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 32 hex digits of the rows' SHA-256 (the header adds the quotes).
    pub etag: String,
    pub has_more: bool,
    /// The JSON array of rows, UTF-8 (made from a `String` or a `&str`); shared, so
    /// that a hit kept in this process costs no copy.
    pub rows: Bytes,
}

impl Entry {
    pub fn new(rows: String, has_more: bool) -> Self {
        let mut hash = Sha256::new();
        hash.update(rows.as_bytes());
        hash.update(if has_more { b"+" } else { b"." });
        let etag = hex(&hash.finalize()[..16]);
        Self { etag, has_more, rows: Bytes::from(rows) }
    }

    /// The `ETag` header value.
    pub fn etag_header(&self) -> String {
        format!("\"{}\"", self.etag)
    }

    /// The Redis value: JSON, written in a fixed layout so that reading it back is a
    /// few prefix checks, not a parse of the rows.
    pub fn encode(&self) -> String {
        format!(
            "{{\"etag\":\"{}\",\"has_more\":{},\"rows\":{}}}",
            self.etag,
            self.has_more,
            std::str::from_utf8(&self.rows).unwrap_or_default()
        )
    }

    /// The value [`Self::encode`] wrote; `None` for anything else (read as a miss).
    pub fn decode(value: &str) -> Option<Self> {
        let rest = value.strip_prefix("{\"etag\":\"")?;
        let (etag, rest) = rest.split_at_checked(32)?;
        if !etag.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let rest = rest.strip_prefix("\",\"has_more\":")?;
        let (has_more, rest) = if let Some(rest) = rest.strip_prefix("true") {
            (true, rest)
        } else {
            (false, rest.strip_prefix("false")?)
        };
        let rows = rest.strip_prefix(",\"rows\":")?.strip_suffix('}')?;
        if !rows.starts_with('[') || !rows.ends_with(']') {
            return None;
        }
        Some(Self {
            etag: etag.to_owned(),
            has_more,
            rows: Bytes::copy_from_slice(rows.as_bytes()),
        })
    }
}

/// Whether an `If-None-Match` header names `etag` (a list, weak forms or `*`).
pub fn matches_if_none_match(header: &str, etag: &str) -> bool {
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.trim_start_matches("W/").trim_matches('"') == etag
    })
}

/// Increments the tenant's data generation of `app`: every cached component result of
/// that tenant and app is stale from now on. What a data-table edit calls after it
/// commits, as the worker does after each event.
pub async fn invalidate(
    redis: &mut ConnectionManager,
    near: &NearCache,
    tenant: &str,
    app: &str,
) -> redis::RedisResult<u64> {
    let key = generation_key(tenant, app);
    let generation = bump_generation(redis, &key).await;
    // Whatever the answer: the next request of this process reads the generation anew.
    near.forget_generation(&key);
    generation
}

/// The generation (made from [`random_base`] when missing) and, if present, the value
/// at the key it makes: one round trip.
static LOOKUP: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "local g = redis.call('GET', KEYS[1])
         if not g then redis.call('SET', KEYS[1], ARGV[3], 'NX') g = redis.call('GET', KEYS[1]) end
         local v = redis.call('GET', ARGV[1] .. g .. ARGV[2])
         return {g, v}",
    )
});

/// Deletes a lock only if it is still ours.
static UNLOCK: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
         return 0",
    )
});

/// Where one component's results live for one tenant.
#[derive(Debug, Clone)]
pub struct Slot<'a> {
    pub tenant: &'a str,
    pub app: &'a str,
    pub component: &'a str,
    pub digest: String,
    pub ttl_seconds: u64,
}

impl Slot<'_> {
    fn key(&self, generation: u64) -> String {
        cache_key(self.tenant, self.app, self.component, generation, &self.digest)
    }

    /// `(generation, value)` in one round trip.
    async fn lookup(
        &self,
        redis: &mut ConnectionManager,
    ) -> redis::RedisResult<(u64, Option<Entry>)> {
        let prefix = format!("component_cache:{}:{}:{}:", self.tenant, self.app, self.component);
        let suffix = format!(":{}", self.digest);
        let (generation, value): (Option<String>, Option<String>) = LOOKUP
            .key(generation_key(self.tenant, self.app))
            .arg(prefix)
            .arg(suffix)
            .arg(random_base())
            .invoke_async(redis)
            .await?;
        let generation = generation.and_then(|g| g.parse().ok()).unwrap_or(0);
        Ok((generation, value.as_deref().and_then(Entry::decode)))
    }
}

/// Where an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Hit,
    Miss,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

/// The per-key locks of this process. Entries are weak: a key's lock lives while
/// someone holds or waits on it, and dead entries are swept as the map grows.
static FLIGHTS: LazyLock<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

fn flight(key: &str) -> Arc<tokio::sync::Mutex<()>> {
    let mut flights = FLIGHTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(lock) = flights.get(key).and_then(Weak::upgrade) {
        return lock;
    }
    if flights.len() >= 1024 {
        flights.retain(|_, lock| lock.strong_count() > 0);
    }
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    flights.insert(key.to_owned(), Arc::downgrade(&lock));
    lock
}

/// The slot's value, computed by `compute` on a miss, at most once at a time per key
/// across this process and, through the Redis lock, across replicas. `redis` is `None`
/// when Redis is away: then every request computes.
pub async fn get_or_compute<F, Fut, E>(
    redis: Option<ConnectionManager>,
    near: &NearCache,
    slot: &Slot<'_>,
    wait_at_most: Duration,
    compute: F,
) -> Result<(Entry, Source), E>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<Entry, E>>,
{
    let Some(mut redis) = redis.filter(|_| slot.ttl_seconds > 0) else {
        return compute().await.map(|entry| (entry, Source::Miss));
    };
    let ttl = Duration::from_secs(slot.ttl_seconds);
    let generation = match near.generation(&generation_key(slot.tenant, slot.app)).await {
        Some(generation) => {
            let key = slot.key(generation.value);
            if let Some(entry) = near.value(&key, generation) {
                return Ok((entry, Source::Hit));
            }
            if let Ok(Some((entry, left))) = get_with_ttl(&mut redis, &key).await {
                near.keep(key, &entry, left.min(ttl), generation);
                return Ok((entry, Source::Hit));
            }
            generation
        }
        None => match slot.lookup(&mut redis).await {
            Ok((_, Some(entry))) => return Ok((entry, Source::Hit)),
            Ok((value, None)) => Generation { value, token: None },
            Err(error) => {
                tracing::warn!(%error, "component cache unavailable; computing");
                return compute().await.map(|entry| (entry, Source::Miss));
            }
        },
    };
    let key = slot.key(generation.value);
    let local = flight(&key);
    let _local = local.lock().await;
    // Someone in this process may have computed it while we waited for the lock.
    if let Ok(Some(value)) = get(&mut redis, &key).await {
        return Ok((value, Source::Hit));
    }
    let lock_key = format!("{key}:lock");
    let token = uuid::Uuid::new_v4().to_string();
    let deadline = Instant::now() + wait_at_most;
    let mut locked = false;
    while Instant::now() < deadline {
        match try_lock(&mut redis, &lock_key, &token).await {
            Ok(true) => {
                locked = true;
                break;
            }
            Ok(false) => {}
            Err(error) => {
                tracing::warn!(%error, "component cache lock unavailable; computing");
                break;
            }
        }
        // Another replica computes: wait for its value (or for its lock to go).
        tokio::time::sleep(POLL).await;
        if let Ok(Some(value)) = get(&mut redis, &key).await {
            return Ok((value, Source::Hit));
        }
    }
    let computed = compute().await;
    if let Ok(entry) = &computed
        && entry.rows.len() <= MAX_CACHED_BYTES
    {
        let stored: redis::RedisResult<()> = redis::cmd("SET")
            .arg(&key)
            .arg(entry.encode())
            .arg("EX")
            .arg(slot.ttl_seconds)
            .query_async(&mut redis)
            .await;
        match stored {
            Ok(()) => near.keep(key.clone(), entry, ttl, generation),
            Err(error) => tracing::warn!(%error, "component data not cached"),
        }
    }
    if locked {
        let unlocked: redis::RedisResult<i64> =
            UNLOCK.key(&lock_key).arg(&token).invoke_async(&mut redis).await;
        if let Err(error) = unlocked {
            tracing::debug!(%error, "cache lock left to expire");
        }
    }
    computed.map(|entry| (entry, Source::Miss))
}

/// The value at `key` and how long Redis keeps it still: one round trip.
async fn get_with_ttl(
    redis: &mut ConnectionManager,
    key: &str,
) -> redis::RedisResult<Option<(Entry, Duration)>> {
    let (value, left_ms): (Option<String>, i64) =
        redis::pipe().cmd("GET").arg(key).cmd("PTTL").arg(key).query_async(redis).await?;
    let left = Duration::from_millis(u64::try_from(left_ms).unwrap_or(0));
    Ok(value.as_deref().and_then(Entry::decode).map(|entry| (entry, left)))
}

async fn get(redis: &mut ConnectionManager, key: &str) -> redis::RedisResult<Option<Entry>> {
    let value: Option<String> = redis::cmd("GET").arg(key).query_async(redis).await?;
    Ok(value.as_deref().and_then(Entry::decode))
}

async fn try_lock(
    redis: &mut ConnectionManager,
    key: &str,
    token: &str,
) -> redis::RedisResult<bool> {
    let set: Option<String> = redis::cmd("SET")
        .arg(key)
        .arg(token)
        .arg("NX")
        .arg("PX")
        .arg(u64::try_from(LOCK_TTL.as_millis()).unwrap_or(u64::MAX))
        .query_async(redis)
        .await?;
    Ok(set.is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn filters(value: serde_json::Value) -> Vec<FilterItem> {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn keys_begin_with_the_tenant_and_hold_the_generation() {
        assert_eq!(generation_key("t1", "app"), "component_cache_gen:t1:app");
        let key = cache_key("t1", "app", "devices", 7, "abc");
        assert_eq!(key, "component_cache:t1:app:devices:7:abc");
        assert!(key.starts_with("component_cache:t1:"));
    }

    #[test]
    fn hex_is_lowercase_sha256_as_everyone_writes_it() {
        assert_eq!(
            hex(&Sha256::digest(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hex(&[0x00, 0x0f, 0xf0, 0xff]), "000ff0ff");
    }

    #[test]
    fn the_digest_follows_what_decides_the_rows_and_nothing_else() {
        let paging = Paging { skip: 0, limit: 10 };
        let a = filters(json!([{"column": "os", "filter_type": "equals", "filter_value": "x"}]));
        // Another key order and spacing in the request: the same filters.
        let same: Vec<FilterItem> = serde_json::from_str(
            r#"[ {"filter_value": "x", "filter_type": "equals", "column": "os"} ]"#,
        )
        .unwrap();
        let digest =
            |f: &[FilterItem], paging, version| KeyParts::new(version, "Data", f, paging).digest();
        let base = digest(&a, paging, "v1");
        assert_eq!(base.len(), 64);
        assert_eq!(base, digest(&same, paging, "v1"));
        assert_ne!(base, digest(&[], paging, "v1"));
        assert_ne!(base, digest(&a, Paging { skip: 10, limit: 10 }, "v1"));
        assert_ne!(base, digest(&a, Paging { skip: 0, limit: 11 }, "v1"));
        assert_ne!(base, digest(&a, paging, "v2"), "a new pipeline is a new key");
        let other =
            filters(json!([{"column": "os", "filter_type": "equals", "filter_value": "y"}]));
        assert_ne!(base, digest(&other, paging, "v1"));
    }

    #[test]
    fn entries_round_trip_and_anything_else_is_a_miss() {
        let entry = Entry::new(r#"[{"a":"}"},{"b":[1]}]"#.to_owned(), true);
        assert_eq!(entry.etag.len(), 32);
        let encoded = entry.encode();
        let parsed: serde_json::Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(parsed["has_more"], true);
        assert_eq!(parsed["rows"][0]["a"], "}");
        assert_eq!(Entry::decode(&encoded), Some(entry.clone()));
        assert_eq!(Entry::decode(&Entry::new("[]".into(), false).encode()).unwrap().rows, "[]");
        for bad in ["", "[]", "{\"etag\":\"x\"}", &encoded[..encoded.len() - 1]] {
            assert_eq!(Entry::decode(bad), None, "{bad}");
        }
        let rows = std::str::from_utf8(&entry.rows).unwrap().to_owned();
        assert_ne!(entry.etag, Entry::new(rows, false).etag);
    }

    #[test]
    fn if_none_match_accepts_lists_weak_forms_and_star() {
        let etag = "0123456789abcdef0123456789abcdef";
        assert!(matches_if_none_match(&format!("\"{etag}\""), etag));
        assert!(matches_if_none_match(&format!("\"x\", W/\"{etag}\""), etag));
        assert!(matches_if_none_match("*", etag));
        assert!(!matches_if_none_match("\"other\"", etag));
    }

    #[tokio::test]
    async fn without_redis_every_request_computes() {
        let slot =
            Slot { tenant: "t", app: "a", component: "c", digest: "d".into(), ttl_seconds: 60 };
        let near = NearCache::new(&redis::Client::open("redis://127.0.0.1:1/").unwrap(), 0);
        let (entry, source) =
            get_or_compute::<_, _, ()>(None, &near, &slot, Duration::ZERO, || async {
                Ok(Entry::new("[]".into(), false))
            })
            .await
            .unwrap();
        assert_eq!((&entry.rows[..], source), (&b"[]"[..], Source::Miss));
    }
}
