//! Operator benchmark on the real stack: N Topics and N Uploaders created at once, the
//! time until all are Ready, the operator's peak RSS, and the Kafka admin calls of one
//! no-op resync. The same run measures a floor to compare with: the Kafka topics the
//! operator creates (same partitions and configs) created by direct admin calls, and the
//! same Topics and Uploaders written to the apiserver with no operator at all, three
//! times (`--floor-rounds`), the ratio taken to the median.
//!
//! Run through `make bench-operator` (it builds the release operator and loads the
//! stack's environment). Not a test: it prints figures, it asserts nothing timed.
//!
//! The scale run (`make bench-operator-scale`: 5,000 Uploaders, no Topics, no floor, no
//! resync wait) reports the operator's memory per Uploader and the scaler loop's tick
//! time, which the main run reports too.

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
    kube::{create_namespace, delete_namespace, install_crds},
    procfs::{cpu_secs, peak_rss_kib, rss_kib},
    unique_name,
};
use licenseware_operator::{
    controllers::topic::next_resync,
    crds::{Topic, Uploader},
};
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
    /// The operator's poll interval: the scaler loop's tick.
    #[arg(long, default_value_t = 10)]
    poll_secs: u64,
    /// Skip the floor measurement (the scale run).
    #[arg(long)]
    no_floor: bool,
    /// Floor measurements in the run; the ratio is to their median (a single one
    /// varied by 1.6x between runs on the same machine).
    #[arg(long, default_value_t = 3)]
    floor_rounds: usize,
    /// Skip the no-op resync measurement (the scale run).
    #[arg(long)]
    no_resync: bool,
    /// Scaler ticks to watch once all are Ready, for the tick time.
    #[arg(long, default_value_t = 3)]
    ticks: u64,
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
    let floor = if args.no_floor {
        None
    } else {
        let mut floors = Vec::new();
        for round in 1..=args.floor_rounds.max(1) {
            let floor = measure_floor(&client, &admin, &run, round, &args).await?;
            println!(
                "floor (no operator), round {round}: {} Kafka topics ({} partitions) {:.2} s; \
                 the {} Topics + Uploaders {:.2} s; {} ConfigMaps {:.2} s",
                args.topics + 2 * args.uploaders,
                args.topics * TOPIC_PARTITIONS as usize
                    + args.uploaders * (UPLOADER_MAX_REPLICAS as usize + 1),
                floor.kafka.as_secs_f64(),
                args.topics + args.uploaders,
                floor.apiserver.as_secs_f64(),
                args.topics + args.uploaders,
                floor.config_maps.as_secs_f64()
            );
            floors.push(floor);
        }
        let median = Floor::median(&floors);
        println!(
            "floor: median of {} rounds {:.2} s (Kafka {:.2} s + the same objects {:.2} s); \
             with ConfigMaps for the objects {:.2} s",
            floors.len(),
            median.total().as_secs_f64(),
            median.kafka.as_secs_f64(),
            median.apiserver.as_secs_f64(),
            median.with_config_maps().as_secs_f64(),
        );
        Some(median)
    };

    // The floor's clean-up (Kafka deleting thousands of logs, the namespace controller)
    // goes on after its calls return: the operator's run must not pay for it.
    wait_for_quiet_stack().await;
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
            .args(["--poll-interval-secs", &args.poll_secs.to_string()])
            .env("LW_LEADER_ELECT", "false")
            // LW_BENCH_OPERATOR_RUST_LOG: the operator's log level, to see where time goes.
            .env(
                "RUST_LOG",
                std::env::var("LW_BENCH_OPERATOR_RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("start the operator")?,
    );
    let pid = operator.0.id();
    let metrics_url = format!("http://127.0.0.1:{probe_port}/metrics");
    wait_for_http(&metrics_url).await?;
    // The operator with its caches filled but empty: the base of memory per Uploader.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_rss_kib = rss_kib(pid)?;

    let requests_before = apiserver_requests(&client).await?;
    let admin_before = admin_calls(&metrics_url).await.unwrap_or_default();
    let cpu_before = cpu_by_process(pid);
    let started = Instant::now();
    create_objects(&client, &namespace, &args).await?;
    let created = started.elapsed();
    let ready = match wait_all_ready(&client, &namespace, &args, started).await {
        Ok(ready) => ready,
        Err(error) => {
            // Thousands of objects left behind would load every later run and test.
            cleanup(&client, &namespace).await?;
            delete_kafka_topics(&admin, &prefix).await?;
            return Err(error);
        }
    };
    let peak_rss_mb = peak_rss_kib(pid)? as f64 / 1024.0;
    print_cpu(&cpu_before, &cpu_by_process(pid), ready);
    print_apiserver_requests(&requests_before, &apiserver_requests(&client).await?);
    let admin_after = admin_calls(&metrics_url).await?;
    let admin_delta = calls_since(&admin_before, &admin_after);
    println!(
        "Kafka admin calls until all Ready: {} {admin_delta:?}",
        admin_delta.values().sum::<u64>()
    );
    println!(
        "operator: {} objects created in {:.2} s; all Ready after {:.2} s; peak RSS {:.1} MiB",
        args.topics + args.uploaders,
        created.as_secs_f64(),
        ready.as_secs_f64(),
        peak_rss_mb
    );

    // The scaler loop with every Uploader in place: its tick time, and the memory.
    let ticks = scaler_ticks(&metrics_url, &args).await?;
    let rss_kib = rss_kib(pid)?;
    println!(
        "operator memory: RSS {:.1} MiB idle, {:.1} MiB with every object; {:.1} KiB per Uploader \
         (RSS growth / {} Uploaders, {} Topics alongside)",
        idle_rss_kib as f64 / 1024.0,
        rss_kib as f64 / 1024.0,
        rss_kib.saturating_sub(idle_rss_kib) as f64 / args.uploaders.max(1) as f64,
        args.uploaders,
        args.topics + 2 * args.uploaders
    );
    println!(
        "scaler loop: {} ticks over {} Uploaders, last {:.3} s, mean {:.3} s, max {:.3} s (every {} s)",
        ticks.count, ticks.uploaders, ticks.last, ticks.mean, ticks.max, args.poll_secs
    );
    if let Some(floor) = &floor {
        println!(
            "ratio: operator all-Ready time / floor (kafka + apiserver) = {:.2}",
            ready.as_secs_f64() / floor.total().as_secs_f64()
        );
        println!(
            "ratio to the floor with ConfigMaps for the objects (before session 21) = {:.2}",
            ready.as_secs_f64() / floor.with_config_maps().as_secs_f64()
        );
    }
    if args.no_resync {
        cleanup(&client, &namespace).await?;
        drop(operator);
        delete_kafka_topics(&admin, &prefix).await?;
        return Ok(());
    }

    // Let the last status writes and their echo reconciles finish, then count the admin
    // calls of one resync interval in which nothing changes. Every Topic resyncs at the
    // multiples of the interval on the wall clock: the count runs from half an interval
    // past one of them to half an interval past the next, so it holds exactly one resync
    // (a window of the interval plus a margin held two now and then).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let interval = Duration::from_secs(args.resync_secs.max(1));
    tokio::time::sleep(until_mid_interval(interval, std::time::SystemTime::now())).await;
    let before = admin_calls(&metrics_url).await?;
    tokio::time::sleep(interval).await;
    let after = admin_calls(&metrics_url).await?;
    let delta = calls_since(&before, &after);
    let total: u64 = delta.values().sum();
    println!(
        "no-op resync of {} Topics (+{} owned by Uploaders): {total} admin calls {delta:?}",
        args.topics,
        2 * args.uploaders
    );

    cleanup(&client, &namespace).await?;
    drop(operator);
    delete_kafka_topics(&admin, &prefix).await?;
    Ok(())
}

/// The wait from `now` until half an interval past the operator's last resync tick
/// ([`next_resync`]: every Topic resyncs then).
fn until_mid_interval(interval: Duration, now: std::time::SystemTime) -> Duration {
    let to_next_tick = next_resync(interval, now);
    let half = interval / 2;
    if to_next_tick >= half { to_next_tick - half } else { to_next_tick + half }
}

#[derive(Debug, Clone, Copy)]
struct Floor {
    kafka: Duration,
    /// The benchmark's own Topics and Uploaders written, as the operator is given them.
    apiserver: Duration,
    /// As many ConfigMaps written: the floor's objects before session 21, cheaper to
    /// write than the custom resources the operator writes (no schema to prune,
    /// default and validate), kept for comparison.
    config_maps: Duration,
}

impl Floor {
    fn total(&self) -> Duration {
        self.kafka + self.apiserver
    }

    fn with_config_maps(&self) -> Duration {
        self.kafka + self.config_maps
    }

    /// Each figure's median over the rounds.
    fn median(floors: &[Floor]) -> Floor {
        let median_of = |figure: fn(&Floor) -> Duration| {
            let mut figures: Vec<Duration> = floors.iter().map(figure).collect();
            figures.sort();
            figures[figures.len() / 2]
        };
        Floor {
            kafka: median_of(|f| f.kafka),
            apiserver: median_of(|f| f.apiserver),
            config_maps: median_of(|f| f.config_maps),
        }
    }
}

/// A Kafka topic as the operator creates it for the benchmark's objects.
struct KafkaTopic {
    name: String,
    partitions: i32,
    config: Vec<(&'static str, &'static str)>,
}

/// The Kafka topics the operator creates for [`create_objects`]' Topics and Uploaders:
/// each Topic's (its partitions and config), and each Uploader's events topic (one
/// partition per possible replica) and dead-letter topic (one partition).
fn operator_topics(prefix: &str, args: &Args) -> Vec<KafkaTopic> {
    let topics = (0..args.topics).map(|i| KafkaTopic {
        name: format!("{prefix}t{i:05}"),
        partitions: TOPIC_PARTITIONS,
        config: vec![TOPIC_CONFIG],
    });
    let uploaders = (0..args.uploaders).flat_map(|i| {
        [
            KafkaTopic {
                name: format!("{prefix}up{i:05}.events"),
                partitions: UPLOADER_MAX_REPLICAS,
                config: Vec::new(),
            },
            KafkaTopic { name: format!("{prefix}up{i:05}.dlq"), partitions: 1, config: Vec::new() },
        ]
    });
    topics.chain(uploaders).collect()
}

/// The work the operator cannot avoid, done directly: the Kafka topics it creates (the
/// same partitions and configs) by direct admin calls, and the objects it is given (the same
/// Topics and Uploaders) written to the apiserver with no operator watching them.
async fn measure_floor(
    client: &Client,
    admin: &AdminClient<DefaultClientContext>,
    run: &str,
    round: usize,
    args: &Args,
) -> anyhow::Result<Floor> {
    let prefix = format!("{run}-floor{round}.");
    let wanted = operator_topics(&prefix, args);
    let topics: Vec<NewTopic<'_>> = wanted
        .iter()
        .map(|topic| {
            let mut new = NewTopic::new(&topic.name, topic.partitions, TopicReplication::Fixed(1));
            for (key, value) in &topic.config {
                new = new.set(key, value);
            }
            new
        })
        .collect();
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

    let namespace = format!("{run}-floor{round}");
    create_namespace(client, &namespace).await;
    let started = Instant::now();
    create_objects(client, &namespace, args).await?;
    let apiserver = started.elapsed();
    let config_maps = Api::<ConfigMap>::namespaced(client.clone(), &namespace);
    let started = Instant::now();
    stream::iter(0..args.topics + args.uploaders)
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
    let config_maps = started.elapsed();

    let namespaces = Api::<Namespace>::all(client.clone());
    namespaces.delete(&namespace, &DeleteParams::default()).await?;
    delete_kafka_topics(admin, &prefix).await?;
    // The floor's cleanup (the namespace controller deleting its objects; Kafka's topics
    // are gone already) is not part of the operator's run: wait for it to be over.
    let deadline = Instant::now() + Duration::from_secs(180);
    while Instant::now() < deadline {
        if namespaces.get_opt(&namespace).await?.is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(Floor { kafka, apiserver, config_maps })
}

/// Each benchmark Topic's partitions and config.
const TOPIC_PARTITIONS: i32 = 1;
const TOPIC_CONFIG: (&str, &str) = ("cleanup.policy", "delete");
/// Each benchmark Uploader's `maxReplicas`: its events topic's partitions.
const UPLOADER_MAX_REPLICAS: i32 = 2;

/// The benchmark's objects: `--topics` Topics and `--uploaders` Uploaders.
async fn create_objects(client: &Client, namespace: &str, args: &Args) -> anyhow::Result<()> {
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), namespace);
    let topic_writes = (0..args.topics).map(|i| {
        let topics = topics.clone();
        async move {
            let topic: Topic = serde_json::from_value(serde_json::json!({
                "apiVersion": "licenseware.io/v1alpha1", "kind": "Topic",
                "metadata": {"name": format!("t-{i:05}")},
                "spec": {
                    "partitions": TOPIC_PARTITIONS,
                    "config": {TOPIC_CONFIG.0: TOPIC_CONFIG.1}
                }
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
                    "worker": {"maxReplicas": UPLOADER_MAX_REPLICAS}
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

/// Waits until every Topic and Uploader is Ready, seen through two watches: listing
/// 4,000 objects four times a second (as this did before) cost the apiserver, which
/// the operator shares, as much CPU as a good part of the operator's own writes.
async fn wait_all_ready(
    client: &Client,
    namespace: &str,
    args: &Args,
    started: Instant,
) -> anyhow::Result<Duration> {
    let topics = ready_watch::<Topic>(client, namespace, |topic| {
        is_ready(topic.status.as_ref().map(|s| &s.conditions))
    });
    let uploaders = ready_watch::<Uploader>(client, namespace, |uploader| {
        is_ready(uploader.status.as_ref().map(|s| &s.conditions))
    });
    let deadline = started + Duration::from_secs(args.timeout_secs);
    let mut last_report = Instant::now();
    loop {
        let (topics_ready, uploaders_ready) = (topics.ready(), uploaders.ready());
        // The owned events and dead-letter Topics count among the Topics watched.
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
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A watch of one kind in `namespace` that keeps the set of its Ready objects.
struct ReadyWatch {
    ready: std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadyWatch {
    fn ready(&self) -> usize {
        self.ready.lock().map_or(0, |ready| ready.len())
    }
}

impl Drop for ReadyWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ready_watch<K>(client: &Client, namespace: &str, is_ready: fn(&K) -> bool) -> ReadyWatch
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + 'static,
{
    use kube::{ResourceExt, runtime::watcher};
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    let ready = std::sync::Arc::new(std::sync::Mutex::new(std::collections::HashSet::new()));
    let shared = std::sync::Arc::clone(&ready);
    let task = tokio::spawn(async move {
        let mut events = std::pin::pin!(watcher(api, watcher::Config::default()));
        while let Some(event) = events.next().await {
            let Ok(mut ready) = shared.lock() else { return };
            match event {
                Ok(watcher::Event::Apply(object) | watcher::Event::InitApply(object)) => {
                    if is_ready(&object) {
                        ready.insert(object.name_any());
                    } else {
                        ready.remove(&object.name_any());
                    }
                }
                Ok(watcher::Event::Delete(object)) => {
                    ready.remove(&object.name_any());
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                // The watcher retries by itself; a relist sends every object again.
                Err(error) => eprintln!("  watch: {error}"),
            }
        }
    });
    ReadyWatch { ready, task }
}

fn is_ready(
    conditions: Option<&Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>>,
) -> bool {
    conditions.is_some_and(|conditions| {
        conditions.iter().any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// The scaler loop's tick figures.
struct Ticks {
    count: u64,
    uploaders: u64,
    last: f64,
    mean: f64,
    max: f64,
}

/// Waits for `args.ticks` scaler ticks over every Uploader, then reads their figures.
async fn scaler_ticks(url: &str, args: &Args) -> anyhow::Result<Ticks> {
    let figure = |body: &str, name: &str| -> anyhow::Result<f64> {
        body.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .with_context(|| format!("no {name} at {url}"))
    };
    let read = || async {
        let body = reqwest::get(url).await?.text().await?;
        anyhow::Ok((
            figure(&body, "licenseware_scaler_ticks_total")? as u64,
            figure(&body, "licenseware_scaler_tick_uploaders")? as u64,
            figure(&body, "licenseware_scaler_tick_seconds_total")?,
            figure(&body, "licenseware_scaler_last_tick_seconds")?,
            figure(&body, "licenseware_scaler_max_tick_seconds")?,
        ))
    };
    // Ticks over every Uploader only: the first ones saw the store half filled.
    let deadline = Instant::now() + Duration::from_secs(args.poll_secs * (args.ticks + 3) + 120);
    let mut start: Option<(u64, f64)> = None;
    loop {
        let (count, uploaders, total, last, max) = read().await?;
        if uploaders as usize >= args.uploaders {
            match start {
                None => start = Some((count, total)),
                Some((first, first_total)) if count >= first + args.ticks => {
                    let ticks = count - first;
                    return Ok(Ticks {
                        count: ticks,
                        uploaders,
                        last,
                        mean: (total - first_total) / ticks as f64,
                        max,
                    });
                }
                Some(_) => {}
            }
        }
        if Instant::now() > deadline {
            // Report what there is rather than lose the rest of the run.
            eprintln!("  the scaler did not tick {} times over every Uploader", args.ticks);
            let ticks = start.map_or(count, |(first, _)| count - first);
            return Ok(Ticks { count: ticks, uploaders, last, mean: last, max });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The calls made between two readings of [`admin_calls`], the kinds made at all.
fn calls_since<'a>(
    before: &BTreeMap<String, u64>,
    after: &'a BTreeMap<String, u64>,
) -> BTreeMap<&'a String, u64> {
    after
        .iter()
        .map(|(call, count)| (call, count.saturating_sub(before.get(call).copied().unwrap_or(0))))
        .filter(|(_, count)| *count > 0)
        .collect()
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

/// CPU seconds so far of the operator and of the stack's servers, by name.
fn cpu_by_process(operator_pid: u32) -> BTreeMap<String, f64> {
    // /proc/<pid>/comm is cut to 15 bytes: "kube-controller" is the controller-manager.
    const SERVERS: [&str; 6] =
        ["kube-apiserver", "etcd", "kube-controller", "java", "ferretdb", "redis-server"];
    let mut cpu = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return cpu };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else {
            continue;
        };
        let name = if pid == operator_pid {
            "operator".to_owned()
        } else {
            match std::fs::read_to_string(entry.path().join("comm")) {
                Ok(comm) if SERVERS.contains(&comm.trim()) => comm.trim().to_owned(),
                _ => continue,
            }
        };
        if let Ok(secs) = cpu_secs(pid) {
            *cpu.entry(name).or_default() += secs;
        }
    }
    cpu
}

/// Waits until the stack's servers together use less than a quarter of a core (about
/// their idle use) for three seconds in a row, three minutes at most, and says how long
/// that took.
async fn wait_for_quiet_stack() {
    const QUIET_CPU_PER_SEC: f64 = 0.25;
    const QUIET_SECONDS: usize = 3;
    const GIVE_UP: Duration = Duration::from_secs(180);
    let started = Instant::now();
    let mut quiet = 0;
    let mut last = cpu_by_process(0).values().sum::<f64>();
    while quiet < QUIET_SECONDS {
        if started.elapsed() > GIVE_UP {
            println!("stack still busy after {} s: starting anyway", GIVE_UP.as_secs());
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_by_process(0).values().sum::<f64>();
        quiet = if now - last < QUIET_CPU_PER_SEC { quiet + 1 } else { 0 };
        last = now;
    }
    println!(
        "stack quiet after {:.0} s (the floor's clean-up done)",
        started.elapsed().as_secs_f64()
    );
}

fn print_cpu(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, elapsed: Duration) {
    let parts: Vec<String> = after
        .iter()
        .map(|(name, secs)| {
            format!("{name} {:.1}", secs - before.get(name).copied().unwrap_or(0.0))
        })
        .collect();
    println!(
        "CPU seconds until all Ready ({:.1} s on {} cores): {}",
        elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, usize::from),
        parts.join(", ")
    );
}

/// `apiserver_request_total` from the apiserver's /metrics, summed by verb and
/// resource (`/subresource`), so a run can say where the apiserver's work went.
async fn apiserver_requests(client: &Client) -> anyhow::Result<BTreeMap<String, u64>> {
    let request = axum::http::Request::get("/metrics").body(Vec::new())?;
    let body = client.request_text(request).await.context("the apiserver's /metrics")?;
    let mut requests = BTreeMap::new();
    for line in body.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else { continue };
        let Some((labels, count)) = rest.split_once("} ") else { continue };
        let label = |name: &str| {
            labels.split("\",").find_map(|pair| {
                pair.strip_prefix(name)?.strip_prefix("=\"").map(|v| v.trim_end_matches('"'))
            })
        };
        let (Some(verb), Some(resource)) = (label("verb"), label("resource")) else { continue };
        let key = match label("subresource").filter(|s| !s.is_empty()) {
            Some(subresource) => format!("{verb} {resource}/{subresource}"),
            None => format!("{verb} {resource}"),
        };
        *requests.entry(key).or_default() += count.trim().parse::<f64>().unwrap_or(0.0) as u64;
    }
    Ok(requests)
}

/// The requests made between two readings of [`apiserver_requests`], writes first.
fn print_apiserver_requests(before: &BTreeMap<String, u64>, after: &BTreeMap<String, u64>) {
    const READS: [&str; 3] = ["GET ", "LIST ", "WATCH "];
    let delta: Vec<(&String, u64)> = after
        .iter()
        .map(|(key, count)| (key, count - before.get(key).copied().unwrap_or(0).min(*count)))
        .filter(|(_, count)| *count > 0)
        .collect();
    let is_read = |key: &str| READS.iter().any(|verb| key.starts_with(verb));
    let (reads, writes): (Vec<_>, Vec<_>) = delta.iter().partition(|(key, _)| is_read(key));
    let total = |part: &[&(&String, u64)]| part.iter().map(|(_, count)| count).sum::<u64>();
    let list = |part: &[&(&String, u64)]| {
        part.iter().map(|(key, count)| format!("{key} {count}")).collect::<Vec<_>>().join(", ")
    };
    println!("apiserver writes until all Ready: {} ({})", total(&writes), list(&writes));
    println!("apiserver reads until all Ready: {} ({})", total(&reads), list(&reads));
}

/// Deletes the benchmark's objects while the operator still runs (it owns finalizers),
/// then the namespace.
async fn cleanup(client: &Client, namespace: &str) -> anyhow::Result<()> {
    let uploaders: Api<Uploader> = Api::namespaced(client.clone(), namespace);
    let topics: Api<Topic> = Api::namespaced(client.clone(), namespace);
    // A request can fail while the apiserver is busy with thousands of deletions (one
    // run ended on a dropped connection and left 3,000 Kafka topics behind, which
    // slowed every later run): retried until the deadline, the namespace goes anyway.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut deleted = false;
    while Instant::now() < deadline {
        let left = async {
            // Once accepted, the deletions go on server-side: then only wait for them.
            if !deleted {
                let (params, every) = (DeleteParams::default(), ListParams::default());
                uploaders.delete_collection(&params, &every).await?;
                topics.delete_collection(&params, &every).await?;
                deleted = true;
            }
            anyhow::Ok(
                uploaders.list_metadata(&ListParams::default()).await?.items.len()
                    + topics.list_metadata(&ListParams::default()).await?.items.len(),
            )
        };
        match left.await {
            Ok(0) => break,
            Ok(_) => {}
            Err(error) => eprintln!("  cleanup: {error:#}; trying again"),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Whatever the operator did not finish in time is released, not left Terminating.
    delete_namespace(client, namespace).await;
    Ok(())
}

/// Deletes every Kafka topic whose name starts with `prefix`, until none is left:
/// metadata read right after a create may not list every new topic yet, and one pass
/// once left two thirds of the floor's topics behind, run after run.
async fn delete_kafka_topics(
    admin: &AdminClient<DefaultClientContext>,
    prefix: &str,
) -> anyhow::Result<()> {
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(120)));
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let pass = async {
            let metadata = admin.inner().fetch_metadata(None, Duration::from_secs(30))?;
            let names: Vec<String> = metadata
                .topics()
                .iter()
                .map(|topic| topic.name().to_owned())
                .filter(|name| name.starts_with(prefix))
                .collect();
            if !names.is_empty() && Instant::now() < deadline {
                for chunk in names.chunks(500) {
                    let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
                    admin.delete_topics(&chunk, &options).await?;
                }
            }
            anyhow::Ok(names.len())
        };
        match pass.await {
            Ok(0) => return Ok(()),
            Ok(left) if Instant::now() > deadline => {
                bail!("{left} Kafka topics named {prefix}* are still there")
            }
            Ok(_) => {}
            // A failed pass (a broker busy with thousands of deletions) is tried again.
            Err(error) if Instant::now() < deadline => {
                eprintln!("  deleting Kafka topics: {error:#}; trying again");
            }
            Err(error) => return Err(error),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::until_mid_interval;

    #[test]
    fn the_resync_count_starts_half_an_interval_past_a_tick() {
        let interval = Duration::from_secs(120);
        let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_200_000 + secs);
        assert_eq!(until_mid_interval(interval, at(10)), Duration::from_secs(50));
        assert_eq!(until_mid_interval(interval, at(60)), Duration::ZERO);
        assert_eq!(until_mid_interval(interval, at(70)), Duration::from_secs(110));
    }
}
