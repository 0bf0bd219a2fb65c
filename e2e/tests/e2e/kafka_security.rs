//! Kafka through the stack's SASL_SSL listener (TLS with the stack's Kafka CA, SCRAM
//! users): the operator's own client and librdkafka producer, `licenseware-worker
//! consume` and `licenseware-worker serve`; and the refusals (a wrong password, an
//! untrusted CA) reported fast and clearly instead of a hang.

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use kube::Api;
use licenseware_e2e::{
    OperatorUnderTest, Options,
    api::ApiProcess,
    consumer::{
        ConsumerSetup, WorkerProcess, mongo_url_with_database, stack_shared, worker_binary,
    },
    eventually,
    kube::create_custom,
};
use licenseware_operator::crds::{
    Uploader,
    kafka_security::{KafkaSecurityArgs, SaslMechanism, SecurityProtocol},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(90);
/// A refusal must be reported within this: no client may wait out long timeouts.
const FAST: Duration = Duration::from_secs(30);

/// The SASL_SSL listener's address and files, as `e2e/stack/up` writes them.
struct Secured {
    brokers: String,
    ca: PathBuf,
    user: String,
    password_file: PathBuf,
}

fn secured() -> Secured {
    let var = |name: &str| {
        std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
            panic!("{name} is not set: run e2e/stack/up and load e2e/.stack/env")
        })
    };
    Secured {
        brokers: var("LW_KAFKA_SASL_SSL_BROKERS"),
        ca: var("LW_STACK_KAFKA_CA").into(),
        user: var("LW_STACK_KAFKA_USER"),
        password_file: var("LW_STACK_KAFKA_PASSWORD_FILE").into(),
    }
}

impl Secured {
    fn args(&self, mechanism: SaslMechanism) -> KafkaSecurityArgs {
        KafkaSecurityArgs {
            protocol: SecurityProtocol::SaslSsl,
            sasl_mechanism: Some(mechanism),
            sasl_username: Some(self.user.clone()),
            sasl_password_file: Some(self.password_file.clone()),
            ca_file: Some(self.ca.clone()),
            ..KafkaSecurityArgs::default()
        }
    }

    /// The same settings as flags of a worker command.
    fn flags(&self, password_file: &std::path::Path, ca: &std::path::Path) -> Vec<String> {
        vec![
            format!("--kafka-brokers={}", self.brokers),
            "--kafka-security-protocol=SASL_SSL".into(),
            "--kafka-sasl-mechanism=SCRAM-SHA-512".into(),
            format!("--kafka-sasl-username={}", self.user),
            format!("--kafka-sasl-password-file={}", password_file.display()),
            format!("--kafka-ca-file={}", ca.display()),
        ]
    }
}

/// A password file with a wrong password.
fn wrong_password_file() -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(file.path(), "not-the-password\n").expect("write");
    file
}

/// A CA that did not sign the broker: the stack's Kubernetes CA.
fn untrusted_ca() -> PathBuf {
    let dir = std::env::var("LW_STACK_DIR").expect("LW_STACK_DIR");
    PathBuf::from(dir).join("pki/ca.crt")
}

fn uploader_manifest(name: &str) -> Value {
    json!({
        "metadata": {"name": name},
        "spec": {
            "appId": "secure-app",
            "uploaderId": name.replace('-', "_"),
            "name": "Lines",
            "acceptedFileTypes": [".txt", ".csv"],
        }
    })
}

fn condition(uploader: &Uploader, type_: &str) -> Option<(String, String)> {
    let status = uploader.status.as_ref()?;
    let found = status.conditions.iter().find(|c| c.type_ == type_)?;
    Some((found.status.clone(), found.message.clone()))
}

async fn readyz(url: &str) -> (u16, String) {
    match reqwest::get(format!("{url}/readyz")).await {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(error) => (0, error.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reconciles_an_uploader_through_sasl_ssl() {
    let kafka = secured();
    for mechanism in [SaslMechanism::ScramSha512, SaslMechanism::ScramSha256, SaslMechanism::Plain]
    {
        let h = OperatorUnderTest::start(
            Options::new("kafka-sasl").own_registry().kafka(&kafka.brokers, kafka.args(mechanism)),
        )
        .await;
        let (status, body) = eventually(WAIT, "the operator's /readyz to be 200", || async {
            let (status, body) = readyz(&h.probe).await;
            (status == 200).then_some((status, body))
        })
        .await;
        assert!(body.contains("broker(s)"), "{status} {body}");

        create_custom(&h.api::<Uploader>(), "Uploader", uploader_manifest("secure-lines")).await;
        let api: Api<Uploader> = h.api();
        eventually(WAIT, &format!("the Uploader Ready through {mechanism:?}"), || async {
            let uploader = api.get("secure-lines").await.ok()?;
            (condition(&uploader, "Ready")?.0 == "True").then_some(())
        })
        .await;
        // The events topic exists: made by the operator's client on the secured listener,
        // seen here through the PLAINTEXT one.
        let topics = h.kafka.topics_with_prefix(&h.prefix).await;
        assert!(topics.keys().any(|name| name.ends_with(".events")), "{topics:?}");
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_reports_a_wrong_password_and_an_untrusted_ca_within_seconds() {
    let kafka = secured();
    let wrong = wrong_password_file();
    let cases = [
        (
            KafkaSecurityArgs {
                sasl_password_file: Some(wrong.path().to_path_buf()),
                ..kafka.args(SaslMechanism::ScramSha512)
            },
            "refused SASL SCRAM-SHA-512 authentication",
        ),
        (
            KafkaSecurityArgs {
                ca_file: Some(untrusted_ca()),
                ..kafka.args(SaslMechanism::ScramSha512)
            },
            "TLS with Kafka broker",
        ),
    ];
    for (args, expected) in cases {
        let h = OperatorUnderTest::start(Options::new("kafka-refused").kafka(&kafka.brokers, args))
            .await;
        let started = Instant::now();
        let body = eventually(FAST, &format!("/readyz to say {expected:?}"), || async {
            let (status, body) = readyz(&h.probe).await;
            (status == 503 && body.contains(expected)).then_some(body)
        })
        .await;
        println!("{expected}: /readyz after {:?}: {body}", started.elapsed());

        create_custom(&h.api::<Uploader>(), "Uploader", uploader_manifest("refused-lines")).await;
        let api: Api<Uploader> = h.api();
        let started = Instant::now();
        let message =
            eventually(FAST, "the Uploader's TopicReady to carry the refusal", || async {
                let uploader = api.get("refused-lines").await.ok()?;
                let (status, message) = condition(&uploader, "TopicReady")?;
                (status == "False" && message.contains(expected)).then_some(message)
            })
            .await;
        println!("{expected}: TopicReady after {:?}: {message}", started.elapsed());
        h.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_processes_an_event_through_sasl_ssl() {
    let _stack = stack_shared().await;
    let kafka = secured();
    let setup = ConsumerSetup::new("consume-sasl", 1, 2).await;
    let flags = kafka.flags(&kafka.password_file, &kafka.ca);
    let mut args = vec!["consume"];
    args.extend(flags.iter().map(String::as_str));
    let mut worker = WorkerProcess::start_command(&setup, "sasl", worker_binary(), &args, "info");
    let tenant = uuid::Uuid::new_v4().to_string();
    let event = uuid::Uuid::new_v4().to_string();
    let file = setup.write_file(&tenant, &event, "lines.txt", b"a\nb\n");
    setup.publish(&setup.event(&tenant, &event, &[file], false)).await;
    setup.wait_all_committed(1, WAIT).await;
    let history = setup.history(&tenant, &event).await;
    assert!(history.is_some(), "a history record; log:\n{}", worker.log());
    assert!(worker.exit_status().is_none(), "still running; log:\n{}", worker.log());
    worker.kill();
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_logs_the_authentication_failure_fast_on_a_wrong_password() {
    let _stack = stack_shared().await;
    let kafka = secured();
    let setup = ConsumerSetup::new("consume-sasl-refused", 1, 2).await;
    let wrong = wrong_password_file();
    let flags = kafka.flags(wrong.path(), &kafka.ca);
    let mut args = vec!["consume"];
    args.extend(flags.iter().map(String::as_str));
    let mut worker =
        WorkerProcess::start_command(&setup, "refused", worker_binary(), &args, "info");
    let started = Instant::now();
    let log = eventually(FAST, "the worker to log the authentication failure", || async {
        let log = worker.log();
        log.contains("Authentication failed").then_some(log)
    })
    .await;
    println!("consume: refusal logged after {:?}", started.elapsed());
    assert!(log.contains("SASL"), "{log}");
    worker.kill();
    setup.cleanup().await;
}

/// `licenseware-worker serve` on the SASL_SSL listener, not waited for: its address.
fn start_serve(setup: &ConsumerSetup, flags: &[String]) -> (Child, String) {
    let prefix = format!("{}.", setup.events_topic.trim_end_matches(".events"));
    let secret = setup.root.with_file_name("jwt-secret-refused");
    std::fs::write(&secret, "a-secret-of-some-length\n").expect("secret");
    let mut child = Command::new(worker_binary())
        .arg("serve")
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .arg("--jwt-secret-file")
        .arg(&secret)
        .args(["--topic-prefix", &prefix])
        .arg("--upload-root")
        .arg(&setup.root)
        .args(flags)
        .env("LW_MONGO_URL", mongo_url_with_database(&setup.stack.mongo_url, &setup.database))
        .env("LW_REDIS_URL", &setup.stack.redis_url)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("address line");
    let url = line.trim().strip_prefix("listening on ").expect("listening on").to_owned();
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_is_ready_through_sasl_ssl_and_not_ready_with_a_wrong_password() {
    let _stack = stack_shared().await;
    let kafka = secured();
    let setup = ConsumerSetup::new("serve-sasl", 1, 2).await;
    // Ready: the registry is read (the uploader served) and Kafka answers, all
    // through the secured listener.
    let flags = kafka.flags(&kafka.password_file, &kafka.ca);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let api = ApiProcess::start(&setup, "sasl", &flags).await;
    let (status, body) = eventually(WAIT, "serve's /readyz to be 200", || async {
        let (status, body) = readyz(&api.url).await;
        (status == 200).then_some((status, body))
    })
    .await;
    assert!(body.contains("\"kafka\":\"ok\""), "{status} {body}");
    drop(api);

    // A wrong password: /readyz fails, quickly, and names Kafka.
    let wrong = wrong_password_file();
    let (mut child, url) = start_serve(&setup, &kafka.flags(wrong.path(), &kafka.ca));
    let started = Instant::now();
    let body = eventually(FAST, "serve's /readyz to name the authentication failure", || async {
        let (status, body) = readyz(&url).await;
        let checks: Value = serde_json::from_str(&body).ok()?;
        let kafka = checks["checks"]["kafka"].as_str().unwrap_or_default().to_owned();
        (status == 503 && kafka.contains("Authentication failed")).then_some(body)
    })
    .await;
    println!("serve: /readyz 503 after {:?}: {body}", started.elapsed());
    let _ = child.kill();
    let _ = child.wait();
    setup.cleanup().await;
}
