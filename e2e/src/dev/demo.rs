//! What `dev` does once its processes run: the path of a real client through the API.
//! It mints a dev token (`licenseware-worker token`), waits for the API to be ready and
//! to serve the sample uploader, uploads the sample file the SDK's way (`/validation`
//! for an upload ticket, then `/files`), waits until the worker has processed it, and
//! returns what [`summary`] prints: the address, the tenant, the token and curl lines.

use std::{
    future::Future,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use reqwest::{Client, RequestBuilder, StatusCode, multipart};
use serde_json::{Value, json};

/// How long one HTTP request may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Between two polls of a condition.
const POLL: Duration = Duration::from_millis(500);
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The uploader the demo uploads to, read from its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SampleUploader {
    pub app_id: String,
    pub uploader_id: String,
}

impl SampleUploader {
    /// `spec.appId`, and `spec.uploaderId` (default: `metadata.name` with `-` as `_`).
    pub fn from_manifest(yaml: &str) -> anyhow::Result<Self> {
        let manifest: Value = serde_yaml::from_str(yaml).context("the Uploader manifest")?;
        let text = |value: &Value| value.as_str().filter(|s| !s.is_empty()).map(str::to_owned);
        let app_id = text(&manifest["spec"]["appId"]).context("the manifest has no spec.appId")?;
        let uploader_id = text(&manifest["spec"]["uploaderId"])
            .or_else(|| text(&manifest["metadata"]["name"]).map(|name| name.replace('-', "_")))
            .context("the manifest has neither spec.uploaderId nor metadata.name")?;
        Ok(Self { app_id, uploader_id })
    }

    /// The uploader's part of the upload URLs (the dash form, as in the registry).
    pub fn url_id(&self) -> String {
        self.uploader_id.replace('_', "-")
    }
}

/// What the demo needs.
#[derive(Debug, Clone)]
pub struct DemoSettings {
    /// `http://host:port` of the API.
    pub api: String,
    pub worker_bin: PathBuf,
    /// The HS256 secret the API verifies tokens with.
    pub secret_file: PathBuf,
    pub tenant: String,
    pub uploader: SampleUploader,
    /// The file to upload.
    pub file: PathBuf,
    /// The bound of each wait (the API ready, the uploader served, the processing).
    pub timeout: Duration,
}

/// What the demo did, for [`summary`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOutcome {
    pub api: String,
    pub tenant: String,
    pub token: String,
    pub uploader: SampleUploader,
    pub file_name: String,
    pub event_id: String,
    /// The command that mints another token.
    pub token_command: String,
}

/// The token arguments of `licenseware-worker`: a 24-hour development token of user
/// `dev` for `tenant`, with the unlimited plan (no upload quota).
pub fn token_args(secret_file: &Path, tenant: &str) -> Vec<String> {
    ["token", "--secret-file", &secret_file.to_string_lossy(), "--tenant", tenant]
        .into_iter()
        .chain(["--sub", "dev", "--plan", "unlimited", "--ttl", "24h"])
        .map(str::to_owned)
        .collect()
}

/// Mints the token with `licenseware-worker token`.
pub fn mint_token(worker_bin: &Path, secret_file: &Path, tenant: &str) -> anyhow::Result<String> {
    let output = Command::new(worker_bin)
        .args(token_args(secret_file, tenant))
        .output()
        .with_context(|| format!("cannot run {}", worker_bin.display()))?;
    let token = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || token.is_empty() {
        bail!(
            "`{} token` failed ({}): {}",
            worker_bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(token)
}

/// A condition polled by [`wait`].
enum Step<T> {
    Done(T),
    /// Not yet; what was seen.
    Wait(String),
    /// Never will be.
    Fail(anyhow::Error),
}

/// Polls `probe` until it is done, fails, or `timeout` passes (then the error says what
/// was seen last).
async fn wait<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Step<T>>,
{
    println!("[dev] demo: waiting for {what}");
    let deadline = Instant::now() + timeout;
    loop {
        let seen = match probe().await {
            Step::Done(value) => return Ok(value),
            Step::Fail(error) => return Err(error.context(format!("while waiting for {what}"))),
            Step::Wait(seen) => seen,
        };
        if Instant::now() >= deadline {
            bail!("timed out after {timeout:?} waiting for {what}; last seen: {seen}");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A response's status and body, or why there is none.
async fn answer(request: RequestBuilder) -> Result<(StatusCode, String), String> {
    let response = request.send().await.map_err(|error| error.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|error| error.to_string())?;
    Ok((status, body))
}

struct Session {
    http: Client,
    settings: DemoSettings,
    token: String,
}

impl Session {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.settings.api)
    }

    fn uploader_url(&self, what: &str) -> String {
        let uploader = &self.settings.uploader;
        self.url(&format!("/{}/uploads/{}/{what}", uploader.app_id, uploader.url_id()))
    }

    fn authorized(&self, request: RequestBuilder) -> RequestBuilder {
        request
            .header("TenantId", &self.settings.tenant)
            .header("Authorization", format!("Bearer {}", self.token))
    }

    async fn get_json(&self, url: &str) -> Result<Value, String> {
        match answer(self.authorized(self.http.get(url))).await? {
            (StatusCode::OK, body) => serde_json::from_str(&body).map_err(|e| e.to_string()),
            (status, body) => Err(format!("{status}: {body}")),
        }
    }

    async fn ready(&self) -> Step<()> {
        match answer(self.http.get(self.url("/readyz"))).await {
            Ok((StatusCode::OK, _)) => Step::Done(()),
            Ok((status, body)) => Step::Wait(format!("{status}: {body}")),
            Err(error) => Step::Wait(error),
        }
    }

    async fn uploader_served(&self) -> Step<()> {
        match answer(self.authorized(self.http.get(self.uploader_url("status")))).await {
            Ok((StatusCode::OK, _)) => Step::Done(()),
            // The token is refused: waiting will not change that.
            Ok((status @ (StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), body)) => {
                Step::Fail(anyhow::anyhow!("the API refuses the token: {status}: {body}"))
            }
            Ok((status, body)) => Step::Wait(format!("{status}: {body}")),
            Err(error) => Step::Wait(error),
        }
    }

    /// `/validation` with the file's name: the event id that is the upload ticket.
    async fn ticket(&self, file_name: &str) -> anyhow::Result<String> {
        let request = self
            .authorized(self.http.post(self.uploader_url("validation")))
            .json(&json!({"filenames": [file_name]}));
        let (status, body) = answer(request).await.map_err(anyhow::Error::msg)?;
        if status != StatusCode::OK {
            bail!("POST {} answered {status}: {body}", self.uploader_url("validation"));
        }
        let response: Value = serde_json::from_str(&body).context("the validation response")?;
        if response["status"] != "success" {
            bail!("the API refused the file name {file_name}: {body}");
        }
        response["event_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no event_id in the validation response: {body}"))
    }

    /// `/files?event_id=`, multipart field `files`.
    async fn upload(&self, event_id: &str, file_name: &str, bytes: Vec<u8>) -> anyhow::Result<()> {
        let part = multipart::Part::bytes(bytes).file_name(file_name.to_owned()).mime_str(XLSX)?;
        let form = multipart::Form::new().part("files", part);
        // The event id is a UUID: nothing in it needs escaping.
        let url = format!("{}?event_id={event_id}", self.uploader_url("files"));
        let request = self.authorized(self.http.post(&url)).multipart(form);
        let (status, body) = answer(request).await.map_err(anyhow::Error::msg)?;
        if status != StatusCode::OK {
            bail!("POST {url} answered {status}: {body}");
        }
        let response: Value = serde_json::from_str(&body).context("the upload response")?;
        if response["status"] != "success" {
            bail!("the API refused the file {file_name}: {body}");
        }
        Ok(())
    }

    /// Done when the event's history says `success` and the uploader is idle again.
    async fn processed(&self, event_id: &str) -> Step<()> {
        let history_url =
            self.url(&format!("/{}/history/{event_id}", self.settings.uploader.app_id));
        let history = match self.get_json(&history_url).await {
            Ok(history) => history,
            Err(error) => return Step::Wait(format!("history: {error}")),
        };
        match history["processing_status"].as_str() {
            Some("success") => {}
            Some("failed") => {
                return Step::Fail(anyhow::anyhow!("the worker failed to process it: {history}"));
            }
            other => return Step::Wait(format!("processing_status {other:?}")),
        }
        match self.get_json(&self.uploader_url("status")).await {
            Ok(status) if status["status"] == "idle" => Step::Done(()),
            Ok(status) => Step::Wait(format!("status {status}")),
            Err(error) => Step::Wait(format!("status: {error}")),
        }
    }
}

/// Runs the demo against the running API and worker.
pub async fn run(settings: DemoSettings) -> anyhow::Result<DemoOutcome> {
    let timeout = settings.timeout;
    let file_name = settings
        .file
        .file_name()
        .and_then(|name| name.to_str())
        .context("the sample file has no UTF-8 name")?
        .to_owned();
    let bytes = std::fs::read(&settings.file)
        .with_context(|| format!("cannot read the sample file {}", settings.file.display()))?;
    let token = mint_token(&settings.worker_bin, &settings.secret_file, &settings.tenant)?;
    let http = Client::builder().timeout(REQUEST_TIMEOUT).build()?;
    let session = Session { http, settings, token };
    wait(timeout, "the API's /readyz", || session.ready()).await?;
    let uploader = &session.settings.uploader;
    let what = format!("the API to serve uploader {}/{}", uploader.app_id, uploader.url_id());
    wait(timeout, &what, || session.uploader_served()).await?;
    let event_id = session.ticket(&file_name).await?;
    println!("[dev] demo: uploading {} as event {event_id}", session.settings.file.display());
    session.upload(&event_id, &file_name, bytes).await?;
    wait(timeout, &format!("the worker to process event {event_id}"), || {
        session.processed(&event_id)
    })
    .await?;
    let Session { settings, token, .. } = session;
    let token_command = std::iter::once(settings.worker_bin.display().to_string())
        .chain(token_args(&settings.secret_file, &settings.tenant))
        .collect::<Vec<_>>()
        .join(" ");
    Ok(DemoOutcome {
        api: settings.api,
        tenant: settings.tenant,
        token,
        uploader: settings.uploader,
        file_name,
        event_id,
        token_command,
    })
}

/// The curl line of a GET with the demo's credentials.
fn curl(outcome: &DemoOutcome, path: &str) -> String {
    format!(
        "curl -sS -H 'TenantId: {}' -H 'Authorization: Bearer {}' '{}{path}'",
        outcome.tenant, outcome.token, outcome.api
    )
}

/// The block printed at the end of the demo.
pub fn summary(outcome: &DemoOutcome) -> String {
    let app = &outcome.uploader.app_id;
    let uploader = outcome.uploader.url_id();
    let lines = [
        ("the uploader's status", format!("/{app}/uploads/{uploader}/status")),
        ("the upload's processing history", format!("/{app}/history/{}", outcome.event_id)),
        ("the registry's uploaders", "/registry/uploaders".to_owned()),
        ("the app's metadata", format!("/{app}/metadata")),
    ];
    let mut text = format!(
        "\n==== make dev: ready ====\n\
         {file} was uploaded through the API and processed by the worker (event {event}).\n\n\
         API     {api}\n\
         tenant  {tenant}\n\
         token   {token}\n\
         \x20       (user dev, plan unlimited, valid 24h; another one: {command})\n",
        file = outcome.file_name,
        event = outcome.event_id,
        api = outcome.api,
        tenant = outcome.tenant,
        token = outcome.token,
        command = outcome.token_command,
    );
    for (what, path) in lines {
        text.push_str(&format!("\n# {what}\n{}\n", curl(outcome, &path)));
    }
    text.push_str("\nCtrl-C stops everything `make dev` started.\n");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sample_uploader_is_read_from_its_manifest() {
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../manifests/examples/rv-tools.uploader.yaml"),
        )
        .unwrap();
        let uploader = SampleUploader::from_manifest(&manifest).unwrap();
        assert_eq!(uploader.app_id, "ifmp-service");
        assert_eq!(uploader.uploader_id, "rv_tools");
        assert_eq!(uploader.url_id(), "rv-tools");
        let named = "metadata: {name: my-files}\nspec: {appId: app}\n";
        assert_eq!(SampleUploader::from_manifest(named).unwrap().uploader_id, "my_files");
        assert!(SampleUploader::from_manifest("spec: {}\n").is_err());
    }

    #[test]
    fn the_summary_has_ready_to_paste_curl_lines() {
        let outcome = DemoOutcome {
            api: "http://127.0.0.1:8080".into(),
            tenant: "t1".into(),
            token: "a.b.c".into(),
            uploader: SampleUploader {
                app_id: "ifmp-service".into(),
                uploader_id: "rv_tools".into(),
            },
            file_name: "RVTools.xlsx".into(),
            event_id: "e1".into(),
            token_command: "licenseware-worker token ...".into(),
        };
        let text = summary(&outcome);
        assert!(text.contains("API     http://127.0.0.1:8080\n"), "{text}");
        assert!(text.contains("tenant  t1\n"), "{text}");
        assert!(text.contains("token   a.b.c\n"), "{text}");
        let auth = "-H 'TenantId: t1' -H 'Authorization: Bearer a.b.c'";
        for path in [
            "/ifmp-service/uploads/rv-tools/status",
            "/ifmp-service/history/e1",
            "/registry/uploaders",
            "/ifmp-service/metadata",
        ] {
            let line = format!("curl -sS {auth} 'http://127.0.0.1:8080{path}'\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
    }

    #[test]
    fn the_token_is_a_day_long_unlimited_dev_token() {
        let args = token_args(Path::new("/s/jwt-secret"), "t1");
        assert_eq!(
            args.join(" "),
            "token --secret-file /s/jwt-secret --tenant t1 --sub dev --plan unlimited --ttl 24h"
        );
    }
}
