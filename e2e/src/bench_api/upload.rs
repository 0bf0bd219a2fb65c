//! Uploads of `make bench-api`: a CSV of 10 MB, 100 MB, 1 GB streamed from disk by curl
//! to `/files` (after `/validation` gave its ticket), the API's memory sampled meanwhile,
//! against `cp` of the same file into the same upload root. The same upload goes to an
//! uploader with content checks (columns and a row, read from the file's head in the
//! sandbox) and to one with the name rules only, so content validation's share shows.

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use serde_json::{Value, json};

/// The Uploader spec of the upload bench; `content_checks` adds the columns and rows
/// rules. Limits above the largest file.
pub fn upload_spec(content_checks: bool) -> Value {
    let mut validation = json!({"filenameContains": ["devices"], "filenameEndswith": [".csv"]});
    if content_checks {
        validation["requiredColumns"] = json!([["device", "os"]]);
        validation["minRowsNumber"] = json!(1);
    }
    json!({
        "name": "Bench devices", "acceptedFileTypes": [".csv"], "freeQuotaUnits": 1,
        "validation": validation,
        "upload": {"maxFileBytes": 4_u64 << 30, "maxTotalBytes": 4_u64 << 30, "maxFiles": 1},
    })
}

/// A CSV of `device,os` rows, at least `bytes` long.
pub fn write_csv(path: &Path, bytes: u64) -> anyhow::Result<()> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    out.write_all(b"device,os\n")?;
    let mut written = 10;
    let mut row = 0u64;
    while written < bytes {
        let os = ["linux", "windows", "esxi"][(row % 3) as usize];
        let line = format!("host-{row:09},{os}\n");
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
        row += 1;
    }
    out.flush()?;
    Ok(())
}

/// Free bytes on the file system of `path` (df).
pub fn free_bytes(path: &Path) -> anyhow::Result<u64> {
    let output = Command::new("df").args(["-B1", "--output=avail"]).arg(path).output()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().nth(1).context("df output")?.trim().parse().context("df avail")
}

/// Writes dirty pages out, so that one measurement does not pay for the last one.
pub fn sync() {
    let _ = Command::new("sync").status();
}

/// `cp file dir/name`, timed; the copy is removed after.
pub fn time_cp(file: &Path, dir: &Path) -> anyhow::Result<Duration> {
    std::fs::create_dir_all(dir)?;
    let target = dir.join(file.file_name().context("a file name")?);
    sync();
    let started = Instant::now();
    let status = Command::new("cp").arg(file).arg(&target).status()?;
    let elapsed = started.elapsed();
    ensure!(status.success(), "cp failed: {status}");
    std::fs::remove_file(&target)?;
    sync();
    Ok(elapsed)
}

/// Who uploads, where.
#[derive(Debug, Clone)]
pub struct Uploading<'a> {
    pub http: &'a reqwest::Client,
    pub api_url: &'a str,
    pub app_id: &'a str,
    pub tenant: &'a str,
    pub token: &'a str,
    pub upload_root: &'a Path,
    pub scratch: &'a Path,
}

impl Uploading<'_> {
    fn url(&self, uploader_dash: &str, route: &str) -> String {
        format!("{}/{}/uploads/{uploader_dash}/{route}", self.api_url, self.app_id)
    }

    /// `/validation` for the file's name (its ticket), then `/files` by curl streaming
    /// the file from disk; the wall time of curl. The stored file is removed after.
    pub async fn upload(&self, uploader_dash: &str, file: &Path) -> anyhow::Result<Duration> {
        let name = file.file_name().and_then(|n| n.to_str()).context("a file name")?;
        let ticket: Value = self
            .http
            .post(self.url(uploader_dash, "validation"))
            .header("TenantId", self.tenant)
            .bearer_auth(self.token)
            .json(&json!([name]))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let event_id = ticket["event_id"].as_str().context("an event_id")?.to_owned();
        let answer = self.scratch.join("upload-answer.json");
        sync();
        let started = Instant::now();
        let output = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&answer)
            .args(["-w", "%{http_code}"])
            .args(["-H", &format!("TenantId: {}", self.tenant)])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-F", &format!("files=@{};filename={name}", file.display())])
            .arg(format!("{}?event_id={event_id}", self.url(uploader_dash, "files")))
            .output()
            .context("run curl")?;
        let elapsed = started.elapsed();
        let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        if code != "200" {
            bail!(
                "upload of {name} answered {code}: {}{}",
                std::fs::read_to_string(&answer).unwrap_or_default(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let stored: PathBuf = self.upload_root.join(self.tenant).join(&event_id);
        ensure!(stored.join(name).exists(), "{} not stored", stored.join(name).display());
        std::fs::remove_dir_all(&stored)?;
        sync();
        Ok(elapsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_csv_has_the_size_asked_and_the_columns_checked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.csv");
        write_csv(&path, 100_000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.len() >= 100_000 && text.len() < 100_100, "{}", text.len());
        assert!(text.starts_with("device,os\nhost-000000000,linux\n"));
    }

    #[test]
    fn only_the_checked_spec_reads_contents() {
        assert!(upload_spec(true)["validation"]["requiredColumns"].is_array());
        assert!(upload_spec(false)["validation"].get("requiredColumns").is_none());
    }
}
