//! The multipart body of `/files` (`form`: read without copying), streamed to disk: each
//! file goes straight to a staging directory (`sink`: written as it arrives), its bytes
//! counted against the Uploader's limits as they arrive; a limit crossed is a 413 at
//! once, and the staging directory (with every byte written so far) is removed when the
//! request ends without success.

use std::path::{Path, PathBuf};

use axum::body::BodyDataStream;
use licenseware_crds::UploadLimits;

use super::form::{FormError, FormReader, PartHead};
use super::names::{UsedNames, sanitize};
use super::sink::FileSink;
use crate::serve::error::ApiError;

/// The request's form, read from its body.
pub type Form = FormReader<BodyDataStream>;

/// The form's text fields are a flag and an id.
const MAX_TEXT_FIELD: usize = 256;
pub const NO_FILES: &str = "Files list is empty or files are not on 'files' key";

/// A directory for one request's files, removed on drop unless kept.
#[derive(Debug)]
pub struct Staging {
    pub dir: PathBuf,
    keep: bool,
}

impl Staging {
    /// `{tenant_dir}/.incoming-{uuid}`: in the tenant's directory, so that the final
    /// move to the event's directory is a rename on the same file system.
    pub fn create(tenant_dir: &Path) -> Result<Self, ApiError> {
        std::fs::create_dir_all(tenant_dir)
            .map_err(|error| ApiError::internal("UploadRootUnusable", error))?;
        let dir = tenant_dir.join(format!(".incoming-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir(&dir)
            .map_err(|error| ApiError::internal("UploadRootUnusable", error))?;
        Ok(Self { dir, keep: false })
    }

    /// Moves the files to `target` (which must not exist) and keeps them.
    pub fn commit(mut self, target: &Path) -> std::io::Result<()> {
        std::fs::rename(&self.dir, target)?;
        self.keep = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep
            && let Err(error) = std::fs::remove_dir_all(&self.dir)
            && error.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(%error, dir = %self.dir.display(), "staged upload not removed");
        }
    }
}

/// One file as received.
#[derive(Debug, Clone)]
pub struct ReceivedFile {
    /// The name the client sent (for the ticket's names).
    pub client_name: String,
    /// The name it is stored and validated under.
    pub name: String,
    pub path: PathBuf,
    pub bytes: u64,
}

/// The whole form.
#[derive(Debug, Default)]
pub struct Received {
    pub files: Vec<ReceivedFile>,
    pub clear_data: Option<String>,
    pub event_id: Option<String>,
}

fn malformed(error: FormError) -> ApiError {
    ApiError::BadRequest(format!("The upload is not a valid multipart form: {error}"))
}

/// A refused body is read on (and dropped) up to this much, so that the client, still
/// sending, gets the answer rather than a reset connection.
const DRAIN_BYTES: u64 = 16 << 20;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

/// Reads and drops the rest of a refused body, within bounds.
pub async fn drain(form: &mut Form) {
    let _ = tokio::time::timeout(DRAIN_TIME, form.drain(DRAIN_BYTES)).await;
}

pub async fn receive(
    form: &mut Form,
    staging: &Staging,
    limits: &UploadLimits,
) -> Result<Received, ApiError> {
    let mut received = Received::default();
    let mut used = UsedNames::default();
    let mut total: u64 = 0;
    while let Some(PartHead { name, file_name }) = form.next_part().await.map_err(malformed)? {
        match name.as_deref().unwrap_or_default() {
            "files" | "files[]" => {
                if received.files.len() >= limits.max_files as usize {
                    return Err(ApiError::TooLarge(format!(
                        "At most {} files may be uploaded at once",
                        limits.max_files
                    )));
                }
                let client_name = file_name.unwrap_or_default();
                let name = used.claim(sanitize(&client_name));
                let path = staging.dir.join(&name);
                let bytes = write_file(form, &path, &client_name, limits, &mut total).await?;
                received.files.push(ReceivedFile { client_name, name, path, bytes });
            }
            "clear_data" => received.clear_data = Some(text(form).await?),
            "event_id" => received.event_id = Some(text(form).await?),
            other => {
                let shown: String = other.chars().take(64).collect();
                return Err(ApiError::BadRequest(format!("Unexpected form field {shown:?}")));
            }
        }
    }
    if received.files.is_empty() {
        return Err(ApiError::BadRequest(NO_FILES.to_owned()));
    }
    Ok(received)
}

async fn write_file(
    form: &mut Form,
    path: &Path,
    client_name: &str,
    limits: &UploadLimits,
    total: &mut u64,
) -> Result<u64, ApiError> {
    let mut out = FileSink::create(path)
        .await
        .map_err(|error| ApiError::internal("UploadWriteFailed", error))?;
    let mut bytes: u64 = 0;
    while let Some(chunk) = form.chunk().await.map_err(malformed)? {
        let size = chunk.len() as u64;
        bytes += size;
        *total += size;
        if bytes > limits.max_file_bytes {
            let shown: String = client_name.chars().take(100).collect();
            return Err(ApiError::TooLarge(format!(
                "File {shown:?} is larger than the uploader's limit of {} bytes",
                limits.max_file_bytes
            )));
        }
        if *total > limits.max_total_bytes {
            return Err(ApiError::TooLarge(format!(
                "The files are larger together than the uploader's limit of {} bytes",
                limits.max_total_bytes
            )));
        }
        out.write(chunk).await.map_err(|error| ApiError::internal("UploadWriteFailed", error))?;
    }
    out.finish().await.map_err(|error| ApiError::internal("UploadWriteFailed", error))?;
    Ok(bytes)
}

async fn text(form: &mut Form) -> Result<String, ApiError> {
    let mut value = Vec::new();
    while let Some(chunk) = form.chunk().await.map_err(malformed)? {
        value.extend_from_slice(&chunk);
        if value.len() > MAX_TEXT_FIELD {
            return Err(ApiError::BadRequest("A form field is too long".to_owned()));
        }
    }
    String::from_utf8(value).map_err(|_| ApiError::BadRequest("A form field is not UTF-8".into()))
}
