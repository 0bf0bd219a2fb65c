//! An uploaded file's bytes to disk: copied once into one of two fixed buffers, each
//! written on the blocking pool while the other fills. Memory is two buffers whatever
//! the client sends (keeping the received chunks themselves would keep alive the
//! receive buffers they share, an amount the client's packet sizes decide); a
//! `BufWriter` over tokio's `File` copied every byte twice.

use std::{fs::File, io::Write, path::Path, sync::Arc};

use tokio::task::JoinHandle;

/// Bytes per write: a 1 GB upload is about four thousand writes.
const GATHER: usize = 256 << 10;

#[derive(Debug)]
pub struct FileSink {
    file: Arc<File>,
    filling: Vec<u8>,
    /// The other buffer's write, which gives the buffer back.
    writing: Option<JoinHandle<std::io::Result<Vec<u8>>>>,
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
        Ok(Self { file: Arc::new(file), filling: Vec::with_capacity(GATHER), writing: None })
    }

    /// Takes `chunk`; writes a buffer each time one is full.
    pub async fn write(&mut self, mut chunk: &[u8]) -> std::io::Result<()> {
        while !chunk.is_empty() {
            let take = (GATHER - self.filling.len()).min(chunk.len());
            self.filling.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
            if self.filling.len() == GATHER {
                self.send().await?;
            }
        }
        Ok(())
    }

    /// Writes everything taken so far and waits until it is written.
    pub async fn finish(mut self) -> std::io::Result<()> {
        self.send().await?;
        self.wait().await.map(drop)
    }

    /// The buffer of the write in flight once it is written, or a new one.
    async fn wait(&mut self) -> std::io::Result<Vec<u8>> {
        match self.writing.take() {
            Some(writing) => writing.await.map_err(std::io::Error::other)?,
            None => Ok(Vec::with_capacity(GATHER)),
        }
    }

    /// One write in flight at a time: the previous one must be done (and its error
    /// seen) before the next starts.
    async fn send(&mut self) -> std::io::Result<()> {
        if self.filling.is_empty() {
            return Ok(());
        }
        let next = self.wait().await?;
        let mut full = std::mem::replace(&mut self.filling, next);
        let file = Arc::clone(&self.file);
        self.writing = Some(tokio::task::spawn_blocking(move || {
            (&*file).write_all(&full)?;
            full.clear();
            Ok(full)
        }));
        Ok(())
    }
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
        // Sizes that cross the buffer's, one larger than a buffer, and empty ones.
        sink.write(&[]).await.unwrap();
        let large: Vec<u8> = (0..GATHER * 2 + 7).map(|i| (i % 251) as u8).collect();
        expected.extend_from_slice(&large);
        sink.write(&large).await.unwrap();
        for n in 0..3_000_usize {
            let chunk: Vec<u8> = (0..(n % 977)).map(|i| (i + n) as u8).collect();
            expected.extend_from_slice(&chunk);
            sink.write(&chunk).await.unwrap();
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
            sink.write(&[]).await.unwrap();
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
