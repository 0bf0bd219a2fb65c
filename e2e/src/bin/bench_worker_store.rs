//! Worker benchmark (c) on the real stack: processing events become documents in
//! MongoDB, against a bare `insert_many` of the same documents.
//!
//! Worker: N events, each with one CSV file of M rows, go to a fresh events topic, and a
//! running `licenseware-worker consume` (the default worker: `processing.tables` of the
//! bench's CSV Uploader) turns them into documents. Timed from the first publish until
//! the group has committed the last event, so it includes what the worker does per event
//! (status, history, notifications, reading and mapping the file, the inserts, the
//! commit) but not its start-up: a warm-up event, committed before the clock starts,
//! covers the process start, the group join, the index creation and the first
//! connections.
//!
//! Baseline: the same N*M documents, made by the worker's own pipeline
//! (`processing::process_file` and the runtime's `stamp`, so shape and size are the
//! same), inserted into a fresh collection of the same server with the Rust driver's
//! `insert_many`, ordered, in batches of the worker's size. Only the inserts are timed.
//!
//! The two alternate, R times; medians are reported (the machine is noisy).
//!
//! Run through `make bench-worker-store` (it builds the release worker and loads the
//! stack's environment). Not a test: it prints figures, it asserts nothing timed.

// Progress lines go to stderr so that stdout holds only the figures.
#![allow(clippy::print_stderr)]

use std::{
    fmt::Write as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use clap::Parser;
use licenseware_e2e::{
    Stack,
    consumer::{ConsumerSetup, WorkerProcess, mongo_url_with_database},
    procfs::{cpu_secs, peak_rss_kib},
    unique_name,
};
use licenseware_operator::crds::UploaderSpec;
use licenseware_worker::{
    consume::{BATCH_SIZE, history::EventIds, stamp},
    processing::{FileContext, RowDocument, process_file},
};
use mongodb::bson::{DateTime, Document, doc};
use rdkafka::{
    ClientConfig, Offset, TopicPartitionList,
    consumer::{BaseConsumer, Consumer},
};
use serde_json::{Value, json};

/// The collection of the bench Uploader's table.
const COLLECTION: &str = "Data";
/// The uploaded file's name, as documents show it in `source_file`.
const FILE_NAME: &str = "vms.csv";

#[derive(Debug, Parser)]
#[command(about = "Worker benchmark (c): events to MongoDB documents vs a bare insert_many")]
struct Args {
    /// Path of the worker binary (build it in release mode first).
    #[arg(long)]
    worker_bin: PathBuf,
    /// Events per run, each with one CSV file.
    #[arg(long, default_value_t = 20)]
    events: usize,
    /// Rows of each event's CSV file (one document each).
    #[arg(long, default_value_t = 5000)]
    rows: usize,
    /// Runs of each side, alternating; medians are reported.
    #[arg(long, default_value_t = 3)]
    repeat: usize,
    /// Documents per insert_many of the baseline (the worker's batch by default).
    #[arg(long, default_value_t = BATCH_SIZE)]
    batch_size: usize,
    /// The Uploader whose spec both sides use.
    #[arg(long, default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../worker/bench/manifests/csv.uploader.yaml"))]
    manifest: PathBuf,
    /// Give the baseline's collection the worker's {tenant_id, event_id} index too.
    #[arg(long)]
    baseline_event_index: bool,
    /// The worker's RUST_LOG (`licenseware_worker=debug` logs how long each store took).
    #[arg(long, default_value = "info")]
    worker_rust_log: String,
    /// Keep each run's worker log (JSON lines, timestamped) in this directory.
    #[arg(long)]
    worker_log_dir: Option<PathBuf>,
    /// Give up on a run after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
}

struct WorkerRun {
    elapsed: Duration,
    peak_rss_kib: u64,
    /// CPU time of the worker process, start-up included.
    cpu_secs: f64,
    /// CPU time of FerretDB while the clock ran, when the stack says which process it is.
    server_cpu_secs: Option<f64>,
}

struct BaselineRun {
    elapsed: Duration,
    server_cpu_secs: Option<f64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.events == 0 || args.rows == 0 || args.repeat == 0 || args.batch_size == 0 {
        bail!("--events, --rows, --repeat and --batch-size must be at least 1");
    }
    let stack = Stack::from_env();
    let manifest: Value = serde_yaml::from_str(
        &std::fs::read_to_string(&args.manifest)
            .with_context(|| format!("read {}", args.manifest.display()))?,
    )
    .context("parse the Uploader manifest")?;
    let spec = manifest.get("spec").cloned().context("the manifest has no spec")?;
    let file = csv(args.rows)?;
    let warm_up = csv(1)?;
    let documents = args.events * args.rows;

    println!(
        "# worker store benchmark: {} events x {} rows = {documents} documents ({:.1} MB of CSV), \
         {} runs each, baseline batches of {} (ordered){}",
        args.events,
        args.rows,
        (file.len() * args.events) as f64 / 1e6,
        args.repeat,
        args.batch_size,
        if args.baseline_event_index { " with the event index" } else { "" }
    );

    let mut worker_runs = Vec::new();
    let mut baseline_runs = Vec::new();
    for run in 0..args.repeat {
        // Alternating which side goes first spreads the machine's drift over both.
        for side in if run % 2 == 0 { [0, 1] } else { [1, 0] } {
            if side == 0 {
                eprintln!("run {}: worker", run + 1);
                let measured = run_worker(&args, run, &spec, &file, &warm_up).await?;
                println!(
                    "run {}: worker   {:>7.2} s {:>8.0} documents/s  peak RSS {:.1} MiB  \
                     CPU: worker {:.2} s, FerretDB {}",
                    run + 1,
                    measured.elapsed.as_secs_f64(),
                    documents as f64 / measured.elapsed.as_secs_f64(),
                    measured.peak_rss_kib as f64 / 1024.0,
                    measured.cpu_secs,
                    seconds(measured.server_cpu_secs),
                );
                worker_runs.push(measured);
            } else {
                eprintln!("run {}: baseline", run + 1);
                let measured = run_baseline(&args, &stack, &spec, &file).await?;
                println!(
                    "run {}: baseline {:>7.2} s {:>8.0} documents/s                   \
                     CPU: FerretDB {}",
                    run + 1,
                    measured.elapsed.as_secs_f64(),
                    documents as f64 / measured.elapsed.as_secs_f64(),
                    seconds(measured.server_cpu_secs),
                );
                baseline_runs.push(measured.elapsed);
            }
        }
    }

    let worker_rate =
        median(worker_runs.iter().map(|r| documents as f64 / r.elapsed.as_secs_f64()).collect());
    let baseline_rate =
        median(baseline_runs.iter().map(|e| documents as f64 / e.as_secs_f64()).collect());
    let peak_rss = worker_runs.iter().map(|r| r.peak_rss_kib).max().unwrap_or(0);
    println!("worker   (median): {worker_rate:>8.0} documents/s");
    println!("baseline (median): {baseline_rate:>8.0} documents/s");
    println!("ratio worker/baseline: {:.2} (target >= 0.80)", worker_rate / baseline_rate);
    println!("worker peak RSS (max of runs): {:.1} MiB", peak_rss as f64 / 1024.0);
    Ok(())
}

/// A CSV with the ten columns of the bench's generator (worker/bench/datagen.py):
/// strings, integers, floats and a date-time, derived from the row number.
fn csv(rows: usize) -> anyhow::Result<Vec<u8>> {
    const HOSTS: usize = 500;
    const CLUSTERS: usize = 20;
    const OSES: [&str; 6] = [
        "Microsoft Windows Server 2019 (64-bit)",
        "Microsoft Windows Server 2016 (64-bit)",
        "Red Hat Enterprise Linux 8 (64-bit)",
        "Ubuntu Linux (64-bit)",
        "SUSE Linux Enterprise 15 (64-bit)",
        "Oracle Linux 7 (64-bit)",
    ];
    let mut text = String::with_capacity(rows * 140);
    text.push_str("VM,Powerstate,CPUs,Memory,Provisioned MB,Host,Cluster,OS,Created,Cost\n");
    for i in 0..rows {
        let power = match i % 10 {
            0..=7 => "poweredOn",
            8 => "poweredOff",
            _ => "suspended",
        };
        let provisioned = (i % 100_000) as f64 * 1.25 + 0.5;
        let cents = (i % 9973) * 37;
        let minutes = (i % 10_007) * 7919 % (3 * 365 * 1440);
        let (day, minute) = (minutes / 1440, minutes % 1440);
        let (year, day_of_year) = (2023 + day / 365, day % 365);
        writeln!(
            text,
            "vm-{i:07},{power},{},{},{provisioned:?},esx-{:03}.example.com,cluster-{:02},{},\
             {year}-{:02}-{:02} {:02}:{:02}:00,{}.{:02}",
            1 << (i % 5),
            1024 * (1 + i % 64),
            i % HOSTS,
            i % CLUSTERS,
            OSES[i % OSES.len()],
            1 + day_of_year / 31,
            1 + day_of_year % 28,
            minute / 60,
            minute % 60,
            cents / 100,
            cents % 100,
        )?;
    }
    Ok(text.into_bytes())
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn run_worker(
    args: &Args,
    run: usize,
    spec: &Value,
    file: &[u8],
    warm_up: &[u8],
) -> anyhow::Result<WorkerRun> {
    let setup = ConsumerSetup::with_spec("bench-store", 1, 2, spec.clone()).await;
    let measured = measure_worker(args, &setup, file, warm_up).await;
    if let Some(dir) = &args.worker_log_dir {
        std::fs::create_dir_all(dir)?;
        let log = setup.root.with_file_name("worker-bench.log");
        std::fs::copy(&log, dir.join(format!("worker-run{}.log", run + 1)))
            .with_context(|| format!("keep {}", log.display()))?;
    }
    setup.cleanup().await;
    measured
}

async fn measure_worker(
    args: &Args,
    setup: &ConsumerSetup,
    file: &[u8],
    warm_up: &[u8],
) -> anyhow::Result<WorkerRun> {
    let timeout = Duration::from_secs(args.timeout_secs);
    let tenant = uuid();
    let events: Vec<Value> = (0..args.events)
        .map(|_| {
            let event = uuid();
            let path = setup.write_file(&tenant, &event, FILE_NAME, file);
            setup.event(&tenant, &event, &[path], false)
        })
        .collect();
    let (warm_tenant, warm_event) = (uuid(), uuid());
    let warm_path = setup.write_file(&warm_tenant, &warm_event, FILE_NAME, warm_up);

    let mut worker = WorkerProcess::start_command(
        setup,
        "bench",
        args.worker_bin.clone(),
        &["consume"],
        &args.worker_rust_log,
    );
    setup.publish(&setup.event(&warm_tenant, &warm_event, &[warm_path], false)).await;
    wait_committed(setup, 1, timeout)
        .await
        .with_context(|| format!("the warm-up event; worker log:\n{}", worker.log()))?;

    let server_cpu = server_cpu_secs();
    let started = Instant::now();
    for event in &events {
        setup.publish(event).await;
    }
    let total = i64::try_from(events.len())? + 1;
    wait_committed(setup, total, timeout)
        .await
        .with_context(|| format!("the events; worker log:\n{}", worker.log()))?;
    let elapsed = started.elapsed();
    let server_cpu_secs = server_cpu.zip(server_cpu_secs()).map(|(before, after)| after - before);
    let peak_rss_kib = peak_rss_kib(worker.pid())?;
    let cpu_secs = cpu_secs(worker.pid())?;

    let stored = setup.count(COLLECTION, doc! {"tenant_id": &tenant}).await;
    let expected = (args.events * args.rows) as u64;
    if stored != expected {
        bail!("the worker stored {stored} documents, not {expected}; log:\n{}", worker.log());
    }
    let succeeded = setup
        .count("ProcessingHistory", doc! {"tenant_id": &tenant, "processing_status": "success"})
        .await;
    if succeeded != args.events as u64 {
        bail!("{succeeded} of {} events succeeded; log:\n{}", args.events, worker.log());
    }
    worker.terminate();
    let status = worker.exited(Duration::from_secs(30)).await;
    if !status.success() {
        bail!("the worker exited with {status}; log:\n{}", worker.log());
    }
    Ok(WorkerRun { elapsed, peak_rss_kib, cpu_secs, server_cpu_secs })
}

/// Polls the group's committed offset on the events topic (one partition) with one
/// client, often enough that the poll adds little to the measured time.
async fn wait_committed(
    setup: &ConsumerSetup,
    target: i64,
    timeout: Duration,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &setup.stack.kafka_brokers)
        .set("group.id", &setup.group)
        .set("enable.auto.commit", "false")
        .create()?;
    let topic = setup.events_topic.clone();
    tokio::task::spawn_blocking(move || {
        let mut partitions = TopicPartitionList::new();
        partitions.add_partition(&topic, 0);
        let deadline = Instant::now() + timeout;
        loop {
            let committed = consumer
                .committed_offsets(partitions.clone(), Duration::from_secs(10))
                .ok()
                .and_then(|list| list.elements().first().map(|e| e.offset()));
            if let Some(Offset::Offset(offset)) = committed
                && offset >= target
            {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{target} events not committed after {timeout:?} (at {committed:?})");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
    .await?
}

async fn run_baseline(
    args: &Args,
    stack: &Stack,
    spec: &Value,
    file: &[u8],
) -> anyhow::Result<BaselineRun> {
    let scratch = std::env::temp_dir().join(unique_name("lw-bench-store"));
    std::fs::create_dir_all(&scratch)?;
    let database = unique_name("bench_store_base").replace('-', "_");
    let client =
        mongodb::Client::with_uri_str(mongo_url_with_database(&stack.mongo_url, &database)).await?;
    let db = client.database(&database);
    let measured = async {
        let documents = baseline_documents(args, spec, file, &scratch)?;
        db.run_command(doc! {"ping": 1}).await?;
        db.create_collection(COLLECTION).await?;
        let collection = db.collection::<Document>(COLLECTION);
        if args.baseline_event_index {
            let index =
                mongodb::IndexModel::builder().keys(doc! {"tenant_id": 1, "event_id": 1}).build();
            collection.create_index(index).await?;
        }
        // The worker's warm-up stored a document before its clock started: so does this.
        collection.insert_one(doc! {"_id": "warm-up"}).await?;

        let server_cpu = server_cpu_secs();
        let started = Instant::now();
        for batch in documents.chunks(args.batch_size) {
            collection.insert_many(batch).ordered(true).await?;
        }
        let elapsed = started.elapsed();
        let server_cpu_secs =
            server_cpu.zip(server_cpu_secs()).map(|(before, after)| after - before);

        let stored = collection.count_documents(doc! {}).await?;
        if stored != documents.len() as u64 + 1 {
            bail!("the baseline stored {stored} documents, not {}", documents.len() + 1);
        }
        anyhow::Ok(BaselineRun { elapsed, server_cpu_secs })
    }
    .await;
    let _ = std::fs::remove_dir_all(&scratch);
    db.drop().await?;
    // Ends the client's sessions now: a client dropped instead ends them in a task of
    // its own, which panics in the driver when the runtime stops under it (the last
    // baseline run ends right before the process does).
    client.shutdown().await;
    measured
}

/// The documents the worker stores for the benchmark's events: the same pipeline, the
/// same stamp, the same kind of ids.
fn baseline_documents(
    args: &Args,
    spec: &Value,
    file: &[u8],
    scratch: &std::path::Path,
) -> anyhow::Result<Vec<Document>> {
    let uploader_id = unique_name("bench-store").replace('-', "_");
    let app_id = "consume-app".to_owned();
    let mut spec = spec.clone();
    spec["appId"] = json!(app_id);
    spec["uploaderId"] = json!(uploader_id);
    let spec: UploaderSpec = serde_json::from_value(spec).context("the Uploader spec")?;
    let path = scratch.join(FILE_NAME);
    std::fs::write(&path, file)?;
    let tenant_id = uuid();
    let mut documents = Vec::with_capacity(args.events * args.rows);
    for _ in 0..args.events {
        let ids = EventIds {
            tenant_id: tenant_id.clone(),
            event_id: uuid(),
            app_id: app_id.clone(),
            uploader_id: uploader_id.clone(),
        };
        let context = FileContext {
            tenant_id: ids.tenant_id.clone(),
            app_id: ids.app_id.clone(),
            uploader_id: ids.uploader_id.clone(),
            event_id: ids.event_id.clone(),
            source_file: FILE_NAME.to_owned(),
            updated_at: DateTime::now(),
        };
        let updated_at = context.updated_at;
        let mut emitted = 0_usize;
        let mut emit = |row: RowDocument<'_>| {
            let collection = row.collection();
            let document = row.into_document();
            if collection != COLLECTION {
                return Err(format!("a document for {collection}, not {COLLECTION}"));
            }
            let fallback = || format!("{}:0:{emitted}", ids.event_id);
            documents.push(stamp(document, &ids, FILE_NAME, fallback, updated_at));
            emitted += 1;
            Ok(())
        };
        let reports = process_file(&spec, &context, &path, scratch, &mut emit)?;
        if !reports.iter().all(|report| report.valid()) {
            bail!("the benchmark's CSV is not valid for the Uploader: {reports:?}");
        }
    }
    if documents.len() != args.events * args.rows {
        bail!("{} documents made, not {}", documents.len(), args.events * args.rows);
    }
    Ok(documents)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "?".to_owned(), |secs| format!("{secs:.2} s"))
}

/// FerretDB's CPU time so far, when it is the stack's own (its pid is in
/// `$LW_STACK_DIR/pids/ferretdb.pid`).
fn server_cpu_secs() -> Option<f64> {
    let dir = std::env::var_os("LW_STACK_DIR")?;
    let record = std::fs::read_to_string(PathBuf::from(dir).join("pids/ferretdb.pid")).ok()?;
    let pid = record.split_whitespace().next()?.parse().ok()?;
    cpu_secs(pid).ok()
}
