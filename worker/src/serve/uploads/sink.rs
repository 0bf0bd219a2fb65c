//! An uploaded file's bytes to disk without copying them in this process: the
//! multipart chunks (shared buffers) are gathered up to [`GATHER`] and written with one
//! vectored write on the blocking pool while the next ones arrive. A `BufWriter` over
//! tokio's `File` copied every byte twice (into each of their buffers) before the
//! kernel's own copy.

use std::{
    fs::File,
    io::{IoSlice, Write},
    path::Path,
    sync::Arc,
};

use bytes::Bytes;
use tokio::task::JoinHandle;

/// Bytes gathered per write: a 1 GB upload is about a thousand writes.
const GATHER: usize = 1 << 20;
/// At most this many chunks per `writev` (Linux's IOV_MAX is 1024).
const MAX_SLICES: usize = 512;

#[derive(Debug)]
pub struct FileSink {
    file: Arc<File>,
    gathered: Vec<Bytes>,
    gathered_bytes: usize,
    writing: Option<JoinHandle<std::io::Result<()>>>,
}

impl FileSink {
    /// A new file at `path` (never an existing one).
    pub async fn create(path: &Path) -> std::io::Result<Self> {
        let path = path.to_owned();
        let file = tokio::task::spawn_blocking(move || {
            std::fs::OpenOptions::new().write(true).create_new(true).open(path)
        })
        .await
        .map_err(std::io::Error::other)??;
        Ok(Self { file: Arc::new(file), gathered: Vec::new(), gathered_bytes: 0, writing: None })
    }

    /// Takes `chunk`; writes what is gathered once it is large enough.
    pub async fn write(&mut self, chunk: Bytes) -> std::io::Result<()> {
        // A writev of empty slices only writes 0 bytes, which is no progress.
        if chunk.is_empty() {
            return Ok(());
        }
        self.gathered_bytes += chunk.len();
        self.gathered.push(chunk);
        if self.gathered_bytes >= GATHER || self.gathered.len() >= MAX_SLICES {
            self.send().await?;
        }
        Ok(())
    }

    /// Writes everything taken so far and waits until it is written.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.send().await?;
        self.wait().await
    }

    async fn wait(&mut self) -> std::io::Result<()> {
        match self.writing.take() {
            Some(writing) => writing.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }

    /// One write in flight at a time: the previous one must be done (and its error
    /// seen) before the next starts.
    async fn send(&mut self) -> std::io::Result<()> {
        self.wait().await?;
        if self.gathered.is_empty() {
            return Ok(());
        }
        let chunks = std::mem::take(&mut self.gathered);
        self.gathered_bytes = 0;
        let file = Arc::clone(&self.file);
        self.writing = Some(tokio::task::spawn_blocking(move || write_all(&file, &chunks)));
        Ok(())
    }
}

fn write_all(mut file: &File, chunks: &[Bytes]) -> std::io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = chunks.iter().map(|chunk| IoSlice::new(chunk)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match file.write_vectored(slices) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(written) => IoSlice::advance_slices(&mut slices, written),
            Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn chunks_land_in_order_whole_and_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut sink = FileSink::create(&path).await.unwrap();
        let mut expected = Vec::new();
        // Sizes that cross the gather size and the slice limit, and empty chunks (a
        // writev of empty slices alone writes nothing: not an error).
        sink.write(Bytes::new()).await.unwrap();
        for n in 0..3_000_usize {
            let chunk: Vec<u8> = (0..(n % 977)).map(|i| (i + n) as u8).collect();
            expected.extend_from_slice(&chunk);
            sink.write(Bytes::from(chunk)).await.unwrap();
        }
        sink.finish().await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), expected);
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
}
