//! Operator benchmark on the real stack: N Topics and N Uploaders created at once, the
//! time until all are Ready, the operator's peak RSS, and the Kafka admin calls of one
//! no-op resync. The same run measures a floor to compare with: the same Kafka topics
//! created by one direct admin call and the same number of objects written to the
//! apiserver with no operator at all.
//!
//! Run through `make bench-operator` (it builds the release operator and loads the
//! stack's environment). Not a test: it prints figures, it asserts nothing timed.

// Progress lines go to stderr so that stdout holds only the figures.
#![allow(clippy::print_stderr)]

use std::{
    collections::BTreeMap,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use futures::{FutureExt, StreamExt, TryStreamExt, stream};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, ObjectMeta, PostParams},
};
use licenseware_e2e::{
    Stack,
    kube::{create_namespace, install_crds},
    procfs::peak_rss_kib,
    unique_name,
};
use licenseware_operator::crds::{Topic, Uploader};
use rdkafka::{
    ClientConfig,
    admin::{AdminClient, AdminOptions, NewTopic, TopicReplication},
    client::DefaultClientContext,
};

#[derive(Debug, Parser)]
#[command(
    about = "Operator benchmark: N Topics + N Uploaders until Ready, peak RSS, no-op resync cost"
)]
struct Args {
    /// Path of the operator binary (build it in release mode first).
    #[arg(long)]
    operator_bin: PathBuf,
    /// Topics to create.
    #[arg(long, default_value_t = 1000)]
    topics: usize,
    /// Uploaders to create.
    #[arg(long, default_value_t = 1000)]
    uploaders: usize,
    /// Objects written to the apiserver at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Give up waiting for Ready after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// The operator's resync interval; the no-op measurement waits one of these.
    // The operator's default, like Strimzi's: a shorter one multiplies the load while
    // thousands of objects are being created.
    #[arg(long, default_value_t = 120)]
    resync_secs: u64,
}

/// Kills the operator if the benchmark stops early.
struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let stack = Stack::from_env();
    let client = Client::try_default().await.context("kube client from KUBECONFIG")?;
    install_crds(&client).await;

    let run = unique_name("bench");
    let prefix = format!("{run}.");
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", &stack.kafka_brokers).create()?;

    println!("# operator benchmark: {} Topics + {} Uploaders", args.topics, args.uploaders);
    let floor = measure_floor(&client, &admin, &run, args.topics + args.uploaders, &args).await?;
    println!(
        "floor (no operator): {} Kafka topics in one admin call {:.2} s; {} apiserver objects {:.2} s",
        args.topics + 2 * args.uploaders,
        floor.kafka.as_secs_f64(),
        args.topics + args.uploaders,
        floor.apiserver.as_secs_f64()
    );

    let namespace = format!("{run}-op");
    create_namespace(&client, &namespace).await;
    let probe_port = free_port()?;
    let operator = Operator(
        Command::new(&args.operator_bin)
            .arg("run")
            .args(["--namespaces", &namespace, "--topic-prefix", &prefix])
            .args(["--registry-database", &run.replace('-', "_")])
            .args(["--probe-addr", &format!("127.0.0.1:{probe_port}")])
            .args(["--resync-interval-secs", &args.resync_secs.to_string()])
            .env("LW_LEADER_ELECT", "false")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the operator")?,
    );
    let pid = operator.0.id();
    let metrics_url = format!("http://127.0.0.1:{probe_port}/metrics");
    wait_for_http(&metrics_url).await?;

    let started = Instant::now();
    create_objects(&client, &namespace, &args).await?;
    let created = started.elapsed();
    let ready = wait_all_ready(&client, &namespace, &args, started).await?;
    let peak_rss_mb = peak_rss_kib(pid)? as f64 / 1024.0;
    println!(
        "operator: {} objects created in {:.2} s; all Ready after {:.2} s; peak RSS {:.1} MiB",
        args.topics + args.uploaders,
        created.as_secs_f64(),
        ready.as_secs_f64(),
        peak_rss_mb
    );

    // Let the last status writes and their echo reconciles finish, then count the admin
    // calls of one full resync interval in which nothing changes.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = admin_calls(&metrics_url).await?;
    tokio::time::sleep(Duration::from_secs(args.resync_secs + 5)).await;
    let after = admin_calls(&metrics_url).await?;
    let delta: BTreeMap<&String, u64> = after
        .iter()
        .map(|(call, count)| (call, count - before.get(call).copied().unwrap_or(0)))
        .filter(|(_, count)| *count > 0)
        .collect();
    let total: u64 = delta.values().sum();
    println!(
        "no-op resync of {} Topics (+{} owned by Uploaders): {total} admin calls {delta:?}",
        args.topics,
        2 * args.uploaders
    );
    println!(
        "ratio: operator all-Ready time / floor (kafka + apiserver) = {:.2}",
        ready.as_secs_f64() / (floor.kafka + floor.apiserver).as_secs_f64()
    );

    cleanup(&client, &namespace).await?;
    drop(operator);
    delete_kafka_topics(&admin, &prefix).await?;
    Ok(())
}

struct Floor {
    kafka: Duration,
    apiserver: Duration,
}

/// The work the operator cannot avoid, done directly: the Kafka topics in one admin
/// call, and as many objects written to the apiserver as the operator is given.
async fn measure_floor(
    client: &Client,
    admin: &AdminClient<DefaultClientContext>,
    run: &str,
    objects: usize,
    args: &Args,
) -> anyhow::Result<Floor> {
    let prefix = format!("{run}-floor.");
    let names: Vec<String> =
        (0..args.topics + 2 * args.uploaders).map(|i| format!("{prefix}t{i:05}")).collect();
    let topics: Vec<NewTopic<'_>> =
        names.iter().map(|name| NewTopic::new(name, 1, TopicReplication::Fixed(1))).collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
    let started = Instant::now();
    for chunk in topics.chunks(1000) {
        for result in admin.create_topics(chunk, &options).await? {
            if let Err((topic, code)) = result {
                bail!("floor: creating {topic} failed: {code}");
            }
        }
    }
    let kafka = started.elapsed();

    let namespace = format!("{run}-floor");
    create_namespace(client, &namespace).await;
    let config_maps: Api<ConfigMap> = Api::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    stream::iter(0..objects)
        .map(|i| {
            let config_maps = config_maps.clone();
            async move {
                let config_map = ConfigMap {
                    metadata: ObjectMeta { name: Some(format!("cm-{i:05}")), ..Default::default() },
                    ..Default::default()
                };
                config_maps.create(&PostParams::default(), &config_map).await
            }
        })
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    let apiserver = started.elapsed();

    Api::<Namespace>::all(client.clone()).delete(&namespace, &DeleteParams::default()).await?;
    delete_kafka_topics(admin, &prefix).await?;
    Ok(Floor { kafka, apiserver })
}

async fn create_objects(client: &Client, namespace: &str, args: &Args) -> anyhow::Result<()> {
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), namespace);
    let topic_writes = (0..args.topics).map(|i| {
        let topics = topics.clone();
        async move {
            let topic: Topic = serde_json::from_value(serde_json::json!({
                "apiVersion": "licenseware.io/v1alpha1", "kind": "Topic",
                "metadata": {"name": format!("t-{i:05}")},
                "spec": {"partitions": 1, "config": {"cleanup.policy": "delete"}}
            }))?;
            topics.create(&PostParams::default(), &topic).await?;
            anyhow::Ok(())
        }
        .boxed()
    });
    let uploader_writes = (0..args.uploaders).map(|i| {
        let uploaders = uploaders.clone();
        async move {
            let uploader: Uploader = serde_json::from_value(serde_json::json!({
                "apiVersion": "licenseware.io/v1alpha1", "kind": "Uploader",
                "metadata": {"name": format!("up-{i:05}")},
                "spec": {
                    "appId": "bench", "name": format!("Bench {i}"),
                    "acceptedFileTypes": [".csv"],
                    "worker": {"maxReplicas": 2}
                }
            }))?;
            uploaders.create(&PostParams::default(), &uploader).await?;
            anyhow::Ok(())
        }
        .boxed()
    });
    stream::iter(topic_writes.chain(uploader_writes))
        .buffer_unordered(args.concurrency)
        .try_collect::<Vec<_>>()
        .await?;
    Ok(())
}

async fn wait_all_ready(
    client: &Client,
    namespace: &str,
    args: &Args,
    started: Instant,
) -> anyhow::Result<Duration> {
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), namespace);
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut last_report = Instant::now();
    loop {
        let topics_ready = topics
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|topic| is_ready(topic.status.as_ref().map(|s| &s.conditions)))
            .count();
        let uploaders_ready = uploaders
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|uploader| is_ready(uploader.status.as_ref().map(|s| &s.conditions)))
            .count();
        // The owned events and dead-letter Topics count among the Topics listed.
        if topics_ready >= args.topics + 2 * args.uploaders && uploaders_ready >= args.uploaders {
            return Ok(started.elapsed());
        }
        if Instant::now() > deadline {
            bail!(
                "not all Ready after {} s: {topics_ready} Topics, {uploaders_ready} Uploaders",
                args.timeout_secs
            );
        }
        if last_report.elapsed() > Duration::from_secs(10) {
            eprintln!(
                "  {:>5.1} s: {topics_ready} Topics and {uploaders_ready} Uploaders Ready",
                started.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn is_ready(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> bool {
    conditions.is_some_and(|conditions| {
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// `licenseware_kafka_admin_calls_total{call="..."}` from the operator's /metrics.
async fn admin_calls(url: &str) -> anyhow::Result<BTreeMap<String, u64>> {
    let body = reqwest::get(url).await?.text().await?;
    let mut calls = BTreeMap::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("licenseware_kafka_admin_calls_total{call=\"")
            && let Some((call, count)) = rest.split_once("\"} ")
        {
            calls.insert(call.to_owned(), count.trim().parse()?);
        }
    }
    if calls.is_empty() {
        bail!("no licenseware_kafka_admin_calls_total series at {url}");
    }
    Ok(calls)
}

/// Deletes the benchmark's objects while the operator still runs (it owns finalizers),
/// then the namespace.
async fn cleanup(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), namespace);
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    uploaders.delete_collection(&DeleteParams::default(), &ListParams::default()).await?;
    topics.delete_collection(&DeleteParams::default(), &ListParams::default()).await?;
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let left = uploaders.list(&ListParams::default()).await?.items.len()
            + topics.list(&ListParams::default()).await?.items.len();
        if left == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Api::<Namespace>::all(client.clone()).delete(namespace, &DeleteParams::default()).await?;
    Ok(())
}

async fn delete_kafka_topics(
    admin: &AdminClient<DefaultClientContext>,
    prefix: &str,
) -> anyhow::Result<()> {
    let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(30))?;
    let names: Vec<String> = metadata
        .topics()
        .iter()
        .map(|topic| topic.name().to_owned())
        .filter(|name| name.starts_with(prefix))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
    for chunk in names.chunks(500) {
        let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
        admin.delete_topics(&chunk, &options).await?;
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn wait_for_http(url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if reqwest::get(url).await.is_ok_and(|response| response.status().is_success()) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("the operator did not serve {url} within 30 s")
}
