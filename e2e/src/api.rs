//! `licenseware-worker serve` as the tests drive it: the API as a child process on a
//! consumer world of its own ([`ConsumerSetup`]: topics, database, upload root), its
//! registry topic filled with that world's uploader the way the operator publishes it,
//! tokens minted with `licenseware-worker token`, and a client.

use std::{
    fs,
    io::{BufRead, BufReader, Read},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use rdkafka::{
    ClientConfig,
    producer::{FutureProducer, FutureRecord},
};
use serde_json::Value;

use crate::{
    KAFKA_TIMEOUT,
    consumer::{ConsumerSetup, mongo_url_with_database, worker_binary},
};

/// The API of one test, SIGKILLed when dropped.
pub struct ApiProcess {
    child: Child,
    log: PathBuf,
    pub url: String,
    pub secret_file: PathBuf,
    pub registry_topic: String,
    producer: FutureProducer,
    pub http: reqwest::Client,
}

impl std::fmt::Debug for ApiProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiProcess").field("url", &self.url).finish()
    }
}

impl ApiProcess {
    /// Starts the API for `setup`'s world (`extra` flags appended) and publishes the
    /// setup's uploader on its registry topic; returns once the uploader is served.
    pub async fn start(setup: &ConsumerSetup, label: &str, extra: &[&str]) -> Self {
        let api = Self::spawn(setup, label, extra, &[], None).await;
        api.wait_for_uploader(setup, "the uploader to be served", |status| status == 200).await;
        api
    }

    /// Another replica of this API: the same stores, registry topic and token secret
    /// (a token of one is good at the other); returns once the uploader is served.
    pub async fn start_replica(&self, setup: &ConsumerSetup, label: &str) -> Self {
        let api = Self::spawn(setup, label, &[], &[], Some(self)).await;
        api.wait_for_uploader(setup, "the uploader to be served", |status| status == 200).await;
        api
    }

    /// Waits until the uploader's status route answers with a status `ready` accepts.
    async fn wait_for_uploader(
        &self,
        setup: &ConsumerSetup,
        what: &str,
        ready: impl Fn(reqwest::StatusCode) -> bool,
    ) {
        let tenant = uuid::Uuid::new_v4().to_string();
        let token = self.token(&tenant, "probe", &[]);
        let status_url = self.uploader_url(setup, "status");
        crate::eventually(Duration::from_secs(60), what, || async {
            let response = self.get(&status_url, &tenant, &token).await;
            ready(response.status()).then_some(())
        })
        .await;
    }

    /// Like [`Self::start`] with `env` set over the stack's (e.g. `LW_REDIS_URL` of a
    /// store that is away); returns once the uploader is known (its routes answer
    /// anything but 404), whether or not its stores answer.
    pub async fn start_with_env(
        setup: &ConsumerSetup,
        label: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Self {
        let api = Self::spawn(setup, label, extra, env, None).await;
        api.wait_for_uploader(setup, "the uploader to be known", |status| status != 404).await;
        api
    }

    async fn spawn(
        setup: &ConsumerSetup,
        label: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        replica_of: Option<&Self>,
    ) -> Self {
        let prefix = format!("{}.", setup.events_topic.trim_end_matches(".events"));
        let registry_topic = format!("{prefix}licenseware.registry");
        // A replica follows the topic its first made.
        if replica_of.is_none() {
            setup
                .kafka
                .create_topic(&registry_topic, 1, &[("cleanup.policy", "compact")], KAFKA_TIMEOUT)
                .await;
        }
        let secret_file = match replica_of {
            Some(first) => first.secret_file.clone(),
            None => {
                let file = setup.root.with_file_name("jwt-secret");
                fs::write(&file, format!("{}\n", uuid::Uuid::new_v4())).expect("write the secret");
                file
            }
        };
        let log = setup.root.with_file_name(format!("api-{label}.log"));
        let mut child = Command::new(worker_binary())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
            .arg("--jwt-secret-file")
            .arg(&secret_file)
            .args(["--topic-prefix", &prefix])
            .arg("--upload-root")
            .arg(&setup.root)
            .args(extra)
            .env("LW_KAFKA_BROKERS", &setup.stack.kafka_brokers)
            .env("LW_MONGO_URL", mongo_url_with_database(&setup.stack.mongo_url, &setup.database))
            .env("LW_REDIS_URL", &setup.stack.redis_url)
            // LW_E2E_API_RUST_LOG: the API's log level, to debug a test.
            .env("RUST_LOG", std::env::var("LW_E2E_API_RUST_LOG").unwrap_or_else(|_| "info".into()))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(fs::File::create(&log).expect("create the API log"))
            .spawn()
            .expect("start the API");
        let stdout = child.stdout.take().expect("stdout");
        let url = tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            BufReader::new(stdout).read_line(&mut line).expect("read the API's address");
            line.trim().strip_prefix("listening on ").map(str::to_owned)
        })
        .await
        .expect("reader");
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &setup.stack.kafka_brokers)
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer");
        let mut api = Self {
            child,
            log,
            url: String::new(),
            secret_file,
            registry_topic,
            producer,
            http: reqwest::Client::new(),
        };
        api.url = url.unwrap_or_else(|| panic!("the API did not start; log:\n{}", api.log()));
        api.publish_uploader(setup).await;
        api
    }

    /// The setup's uploader and its app, built by the operator's own registry builders
    /// from the setup's worker.yaml, as the operator publishes them.
    pub async fn publish_uploader(&self, setup: &ConsumerSetup) {
        use licenseware_crds::{AppMetadata, Uploader, WorkerConfigFile};
        use licenseware_operator::registry::{app_entry, now_iso, uploader_entry};
        let worker: WorkerConfigFile = serde_yaml::from_str(
            &fs::read_to_string(&setup.config_path).expect("read worker.yaml"),
        )
        .expect("worker.yaml");
        let mut uploader = Uploader::new(&setup.uploader_id.replace('_', "-"), worker.spec.clone());
        uploader.metadata.namespace = Some("e2e".to_owned());
        let app = AppMetadata::for_app(&setup.app_id);
        let entry = uploader_entry(&uploader, &worker, &app);
        let app_entry = app_entry(app, std::slice::from_ref(&entry.key));
        for entry in [entry, app_entry] {
            let document = entry.document_json(&now_iso()).expect("a registry document");
            self.publish(&entry.key.to_string(), Some(&Value::Object(document))).await;
        }
    }

    /// Reports and report components, as the operator publishes them: each built by
    /// its registry builder (a component's order from the reports that attach it, a
    /// report's components embedded in order), then the app document listing them
    /// with the setup's uploader. Returns once every report is served.
    pub async fn publish_reports(
        &self,
        setup: &ConsumerSetup,
        reports: &[licenseware_crds::Report],
        components: &[licenseware_crds::ReportComponent],
    ) {
        use licenseware_crds::{AppMetadata, registry::EntryKind, registry::RegistryKey};
        use licenseware_operator::registry::{app_entry, component_entry, now_iso, report_entry};
        let app = AppMetadata::for_app(&setup.app_id);
        let mut entries: Vec<_> =
            components.iter().map(|c| component_entry(c, reports, components)).collect();
        entries.extend(reports.iter().map(|r| report_entry(r, components, &app)));
        let mut members: Vec<RegistryKey> = entries.iter().map(|e| e.key.clone()).collect();
        members.push(RegistryKey::new(EntryKind::Uploader, &setup.app_id, &setup.uploader_id));
        entries.push(app_entry(app, &members));
        for entry in entries {
            let document = entry.document_json(&now_iso()).expect("a registry document");
            self.publish(&entry.key.to_string(), Some(&Value::Object(document))).await;
        }
        let tenant = uuid::Uuid::new_v4().to_string();
        let token = self.token(&tenant, "probe", &[]);
        for report in reports {
            let url = format!(
                "{}/{}/reports/{}",
                self.url,
                setup.app_id,
                licenseware_crds::names::dash(&report.report_id())
            );
            crate::eventually(Duration::from_secs(60), "the report to be served", || async {
                let response = self.get(&url, &tenant, &token).await;
                (response.status() == 200).then_some(())
            })
            .await;
        }
    }

    /// Data tables, as the operator publishes them (each built by its registry builder,
    /// its order among `tables`). Returns once every table is served.
    pub async fn publish_datatables(
        &self,
        setup: &ConsumerSetup,
        tables: &[licenseware_crds::DataTable],
    ) {
        use licenseware_operator::registry::{datatable_entry, datatable_order, now_iso};
        for table in tables {
            let entry = datatable_entry(table, datatable_order(table, tables));
            let document = entry.document_json(&now_iso()).expect("a registry document");
            self.publish(&entry.key.to_string(), Some(&Value::Object(document))).await;
        }
        let tenant = uuid::Uuid::new_v4().to_string();
        let token = self.token(&tenant, "probe", &[]);
        for table in tables {
            let url = format!(
                "{}/{}/datatables/{}",
                self.url,
                setup.app_id,
                licenseware_crds::names::dash(&table.component_id())
            );
            crate::eventually(Duration::from_secs(60), "the data table to be served", || async {
                let response = self.get(&url, &tenant, &token).await;
                (response.status() == 200).then_some(())
            })
            .await;
        }
    }

    /// A registry record: a document, or a tombstone.
    pub async fn publish(&self, key: &str, document: Option<&Value>) {
        let payload = document.map(Value::to_string);
        let mut record = FutureRecord::<str, str>::to(&self.registry_topic).key(key);
        if let Some(payload) = &payload {
            record = record.payload(payload);
        }
        self.producer.send(record, Duration::from_secs(30)).await.expect("publish to the registry");
    }

    /// A token for `tenant` signed with the API's secret, by `licenseware-worker token`.
    pub fn token(&self, tenant: &str, subject: &str, extra: &[&str]) -> String {
        let output = Command::new(worker_binary())
            .arg("token")
            .arg("--secret-file")
            .arg(&self.secret_file)
            .args(["--tenant", tenant, "--sub", subject])
            .args(extra)
            .output()
            .expect("run licenseware-worker token");
        assert!(output.status.success(), "token: {}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8(output.stdout).expect("utf-8").trim().to_owned()
    }

    pub fn uploader_url(&self, setup: &ConsumerSetup, route: &str) -> String {
        format!(
            "{}/{}/uploads/{}/{route}",
            self.url,
            setup.app_id,
            setup.uploader_id.replace('_', "-")
        )
    }

    pub async fn get(&self, url: &str, tenant: &str, token: &str) -> reqwest::Response {
        self.http.get(url).header("TenantId", tenant).bearer_auth(token).send().await.expect("GET")
    }

    pub async fn post_json(
        &self,
        url: &str,
        tenant: &str,
        token: &str,
        body: &Value,
    ) -> reqwest::Response {
        self.http
            .post(url)
            .header("TenantId", tenant)
            .bearer_auth(token)
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    /// `POST .../files` with `files` as (name, bytes) parts under the `files` field.
    pub async fn upload(
        &self,
        url: &str,
        tenant: &str,
        token: &str,
        files: &[(&str, Vec<u8>)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, bytes) in files {
            form = form.part(
                "files",
                reqwest::multipart::Part::bytes(bytes.clone()).file_name(name.to_string()),
            );
        }
        self.http
            .post(url)
            .header("TenantId", tenant)
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload")
    }

    /// The API process's id (its peak RSS is in `/proc/{pid}/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, then waits (bounded) for the API to exit by itself; its exit status.
    pub async fn stop_gracefully(&mut self, timeout: Duration) -> std::process::ExitStatus {
        crate::consumer::terminate_child(&self.child);
        let status = crate::consumer::wait_exit(&mut self.child, timeout).await;
        status.unwrap_or_else(|| {
            panic!("the API did not exit within {timeout:?} of SIGTERM; log:\n{}", self.log())
        })
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }
}

/// Deletes what a test left in the shared Redis for `tenants`: their data generations
/// of the setup's app and their cached component results.
pub async fn forget_tenants(setup: &ConsumerSetup, tenants: &[&str]) {
    let Ok(mut redis) = setup.redis.get_multiplexed_async_connection().await else { return };
    for tenant in tenants {
        let _: redis::RedisResult<()> = redis::cmd("DEL")
            .arg(format!("component_cache_gen:{tenant}:{}", setup.app_id))
            .query_async(&mut redis)
            .await;
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("component_cache:{tenant}:*"))
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        if !keys.is_empty() {
            let _: redis::RedisResult<()> =
                redis::cmd("DEL").arg(keys).query_async(&mut redis).await;
        }
    }
}

impl Drop for ApiProcess {
    #[allow(clippy::print_stderr)] // the test's output is where a failure is read
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of the API ---\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
