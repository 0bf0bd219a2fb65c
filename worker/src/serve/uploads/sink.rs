//! An uploaded file's bytes to disk, each chunk written as it arrives, on the task that
//! received it, while its bytes are still in this core's cache. A write into the page
//! cache takes tens of microseconds (nginx writes request bodies to its temporary files
//! the same way, on its event loop); handing every chunk to the blocking pool made a
//! 1 GB upload take twice as long, most of it spent moving the bytes between cores.
//! A write that does block (the disk is slow, the kernel throttles dirty pages) must not
//! hold a runtime worker over and over: once one took [`SLOW_WRITE`], every write goes to
//! the blocking pool for [`SLOW_FOR`], in every upload.
//!
//! Memory is one chunk at a time and a small buffer that gathers tiny chunks (a client
//! that sends its file a few bytes at a time costs a write per [`GATHER`] bytes, not per
//! chunk).

use std::{
    fs::File,
    io::Write,
    path::Path,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;

/// Chunks under this size are gathered; larger ones are written as they are.
const DIRECT: usize = 32 << 10;
/// The gathering buffer.
const GATHER: usize = 128 << 10;
/// A write taking this long means the disk blocks writers...
pub const SLOW_WRITE: Duration = Duration::from_millis(20);
/// ...and writes leave the runtime's workers for this long after.
const SLOW_FOR: Duration = Duration::from_secs(30);

/// When a write was last slow, in milliseconds since the epoch (0: never).
static LAST_SLOW_WRITE_MS: AtomicU64 = AtomicU64::new(0);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX))
}

fn disk_recently_slow() -> bool {
    let last = LAST_SLOW_WRITE_MS.load(Ordering::Relaxed);
    last != 0 && now_ms().saturating_sub(last) < SLOW_FOR.as_millis() as u64
}

#[derive(Debug)]
pub struct FileSink {
    file: Arc<File>,
    gathered: Vec<u8>,
    /// How long a write on the runtime may take before writes leave it.
    slow_write: Duration,
}

impl FileSink {
    /// A new file at `path` (never an existing one).
    pub async fn create(path: &Path) -> std::io::Result<Self> {
        Self::create_with(path, SLOW_WRITE).await
    }

    /// As [`Self::create`], with its own threshold of a slow write (tests use zero to
    /// take the blocking pool's path).
    pub async fn create_with(path: &Path, slow_write: Duration) -> std::io::Result<Self> {
        let path = path.to_owned();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().write(true).create_new(true).open(path)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Self { file: Arc::new(file), gathered: Vec::new(), slow_write })
    }

    /// Takes `chunk`: written now if large, gathered if small.
    pub async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        if chunk.len() < DIRECT {
            if self.gathered.len() + chunk.len() > GATHER {
                self.flush_gathered().await?;
            }
            if self.gathered.capacity() == 0 {
                self.gathered.reserve_exact(GATHER);
            }
            self.gathered.extend_from_slice(&chunk);
            return Ok(());
        }
        self.flush_gathered().await?;
        self.write_out(chunk).await
    }

    /// Writes what is gathered; every byte taken is then in the file.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.flush_gathered().await
    }

    async fn flush_gathered(&mut self) -> std::io::Result<()> {
        if self.gathered.is_empty() {
            return Ok(());
        }
        let gathered = Bytes::from(std::mem::take(&mut self.gathered));
        self.write_out(gathered).await
    }

    async fn write_out(&mut self, bytes: Bytes) -> std::io::Result<()> {
        if disk_recently_slow() || self.slow_write.is_zero() {
            let file = Arc::clone(&self.file);
            return tokio::task::spawn_blocking(move || (&*file).write_all(&bytes))
                .await
                .map_err(std::io::Error::other)?;
        }
        let started = Instant::now();
        let written = (&*self.file).write_all(&bytes);
        if started.elapsed() >= self.slow_write {
            LAST_SLOW_WRITE_MS.store(now_ms().max(1), Ordering::Relaxed);
            tracing::info!(
                took_ms = started.elapsed().as_millis() as u64,
                "a write of an upload was slow: uploads write on the blocking pool for a while"
            );
        }
        written
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes that cross the gathering buffer's, large and small in turn, and empty ones.
    async fn write_mixed_chunks(slow_write: Duration) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut sink = FileSink::create_with(&path, slow_write).await.unwrap();
        let mut expected = Vec::new();
        sink.write(Bytes::new()).await.unwrap();
        let large: Vec<u8> = (0..GATHER * 2 + 7).map(|i| (i % 251) as u8).collect();
        expected.extend_from_slice(&large);
        sink.write(Bytes::from(large)).await.unwrap();
        for n in 0..600_usize {
            let size = if n % 50 == 0 { DIRECT + n } else { n % 977 };
            let chunk: Vec<u8> = (0..size).map(|i| (i + n) as u8).collect();
            expected.extend_from_slice(&chunk);
            sink.write(Bytes::from(chunk)).await.unwrap();
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
    }

    #[tokio::test]
    async fn chunks_land_in_order_whole_and_once() {
        write_mixed_chunks(SLOW_WRITE).await;
    }

    #[tokio::test]
    async fn chunks_land_in_order_through_the_blocking_pool_too() {
        write_mixed_chunks(Duration::ZERO).await;
    }

    #[tokio::test]
    async fn a_file_of_empty_chunks_is_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut sink = FileSink::create(&path).await.unwrap();
        for _ in 0..3 {
            sink.write(Bytes::new()).await.unwrap();
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[tokio::test]
    async fn an_existing_file_is_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"kept").unwrap();
        assert!(FileSink::create(&path).await.is_err());
        assert_eq!(std::fs::read(&path).unwrap(), b"kept");
    }

    #[test]
    fn a_slow_write_is_remembered_for_a_while() {
        LAST_SLOW_WRITE_MS.store(now_ms() - SLOW_FOR.as_millis() as u64 - 1, Ordering::Relaxed);
        assert!(!disk_recently_slow());
        LAST_SLOW_WRITE_MS.store(now_ms(), Ordering::Relaxed);
        assert!(disk_recently_slow());
        LAST_SLOW_WRITE_MS.store(0, Ordering::Relaxed);
    }
}
