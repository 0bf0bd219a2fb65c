//! Uploads of `make bench-api`: a CSV of 10 MB, 100 MB, 1 GB streamed from disk to
//! `/files` (after `/validation` gave its ticket), the API's memory sampled meanwhile,
//! against `cp` of the same file into the same upload root. The same upload goes to an
//! uploader with content checks (columns and a row, read from the file's head in the
//! sandbox) and to one with the name rules only, so content validation's share shows.
//!
//! Two clients: one that hands the file to the kernel (sendfile(2), as a proxy in
//! front of the API or a well-made uploader sends it), so that the time is the API's,
//! and curl, which reads and copies the file itself on the same cores (about 0.47 CPU-s
//! per GB here).

use std::{
    io::{BufWriter, Read, Write},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
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

/// What sends the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// The multipart head written, then the file copied to the socket by the kernel.
    ZeroCopy,
    /// `curl -F files=@...`.
    Curl,
}

/// A multipart `/files` request whose one part is `file`, sent by `std::io::copy` from
/// the file to the socket (sendfile(2) on Linux: no copy in this process); the status
/// and body of the answer.
pub fn post_file_zero_copy(
    url: &reqwest::Url,
    headers: &[(&str, &str)],
    file: &Path,
    name: &str,
) -> anyhow::Result<(u16, String)> {
    let host = url.host_str().context("the URL's host")?;
    let port = url.port_or_known_default().context("the URL's port")?;
    let target = match url.query() {
        Some(query) => format!("{}?{query}", url.path()),
        None => url.path().to_owned(),
    };
    let boundary = format!("bench-{}", uuid::Uuid::new_v4().simple());
    let part_head = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n\
         Content-Type: text/csv\r\n\r\n"
    );
    let closing = format!("\r\n--{boundary}--\r\n");
    let mut source = std::fs::File::open(file)?;
    let length = part_head.len() as u64 + source.metadata()?.len() + closing.len() as u64;
    let mut head = format!(
        "POST {target} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {length}\r\n"
    );
    for (header, value) in headers {
        head.push_str(&format!("{header}: {value}\r\n"));
    }
    head.push_str("\r\n");
    head.push_str(&part_head);
    let mut socket = TcpStream::connect((host, port))?;
    socket.write_all(head.as_bytes())?;
    std::io::copy(&mut source, &mut socket)?;
    socket.write_all(closing.as_bytes())?;
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer)?;
    let answer = String::from_utf8_lossy(&answer);
    let (status_line, rest) = answer.split_once("\r\n").context("an HTTP answer")?;
    let status = status_line.split(' ').nth(1).context("a status")?.parse()?;
    let body = rest.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    Ok((status, body.to_owned()))
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

    /// `/validation` for the file's name (its ticket), then `/files` by `client`
    /// streaming the file from disk; the wall time of the request. The stored file is
    /// removed after.
    pub async fn upload(
        &self,
        uploader_dash: &str,
        file: &Path,
        client: Client,
    ) -> anyhow::Result<Duration> {
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
        let url = format!("{}?event_id={event_id}", self.url(uploader_dash, "files"));
        sync();
        let started = Instant::now();
        let (status, body) = match client {
            Client::ZeroCopy => {
                let url = reqwest::Url::parse(&url)?;
                let bearer = format!("Bearer {}", self.token);
                let headers = [("TenantId", self.tenant), ("Authorization", bearer.as_str())];
                post_file_zero_copy(&url, &headers, file, name)?
            }
            Client::Curl => self.post_with_curl(&url, file, name)?,
        };
        let elapsed = started.elapsed();
        ensure!(status == 200, "upload of {name} answered {status}: {body}");
        let stored: PathBuf = self.upload_root.join(self.tenant).join(&event_id);
        ensure!(stored.join(name).exists(), "{} not stored", stored.join(name).display());
        std::fs::remove_dir_all(&stored)?;
        sync();
        Ok(elapsed)
    }

    fn post_with_curl(&self, url: &str, file: &Path, name: &str) -> anyhow::Result<(u16, String)> {
        let answer = self.scratch.join("upload-answer.json");
        let output = Command::new("curl")
            .args(["-sS", "-o"])
            .arg(&answer)
            .args(["-w", "%{http_code}"])
            .args(["-H", &format!("TenantId: {}", self.tenant)])
            .args(["-H", &format!("Authorization: Bearer {}", self.token)])
            .args(["-F", &format!("files=@{};filename={name}", file.display())])
            .arg(url)
            .output()
            .context("run curl")?;
        let code = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        let body = std::fs::read_to_string(&answer).unwrap_or_default();
        let status = code.parse().with_context(|| {
            format!("curl gave no status: {}", String::from_utf8_lossy(&output.stderr))
        })?;
        Ok((status, body))
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

    /// What a server receives from the zero-copy client: one multipart part holding the
    /// file, whole, behind the headers given; and the answer it gets back.
    #[test]
    fn the_zero_copy_client_sends_the_file_as_one_part_and_reads_the_answer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devices.csv");
        let contents: Vec<u8> = (0..300_000_u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &contents).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let (mut socket, _) = listener.accept().unwrap();
            let mut request = Vec::new();
            let mut buffer = [0_u8; 65536];
            let (head_end, length) = loop {
                let read = socket.read(&mut buffer).unwrap();
                assert!(read > 0, "the request ended early");
                request.extend_from_slice(&buffer[..read]);
                if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&request[..end]).to_lowercase();
                    let length: usize = head
                        .lines()
                        .find_map(|line| line.strip_prefix("content-length: "))
                        .unwrap()
                        .parse()
                        .unwrap();
                    break (end + 4, length);
                }
            };
            while request.len() < head_end + length {
                let read = socket.read(&mut buffer).unwrap();
                assert!(read > 0, "the body ended early");
                request.extend_from_slice(&buffer[..read]);
            }
            socket.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nthere").unwrap();
            request
        });
        let url =
            reqwest::Url::parse(&format!("http://127.0.0.1:{port}/a/files?event_id=e")).unwrap();
        let answer =
            post_file_zero_copy(&url, &[("TenantId", "t1")], &path, "devices.csv").unwrap();
        assert_eq!(answer, (200, "there".to_owned()));
        let request = server.join().unwrap();
        let text = String::from_utf8_lossy(&request);
        assert!(text.starts_with("POST /a/files?event_id=e HTTP/1.1\r\n"), "{}", &text[..80]);
        assert!(text.contains("\r\nTenantId: t1\r\n"));
        let boundary = text.split("boundary=").nth(1).unwrap().split("\r\n").next().unwrap();
        let body_start = text.find("\r\n\r\n").unwrap() + 4;
        let body = &request[body_start..];
        let part_head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; \
             filename=\"devices.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        );
        assert!(body.starts_with(part_head.as_bytes()));
        let closing = format!("\r\n--{boundary}--\r\n");
        assert!(body.ends_with(closing.as_bytes()));
        assert_eq!(&body[part_head.len()..body.len() - closing.len()], contents.as_slice());
    }

    #[test]
    fn only_the_checked_spec_reads_contents() {
        assert!(upload_spec(true)["validation"]["requiredColumns"].is_array());
        assert!(upload_spec(false)["validation"].get("requiredColumns").is_none());
    }
}
