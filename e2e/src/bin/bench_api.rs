//! `make bench-api` (issue 11 §7): the API against the SDK, in one run, side by side, on
//! loopback, wrk on the same cores as the servers.
//!
//! 1. Requests/s and p50/p99 of `/validation` doing all its work (token, rules, quota,
//!    ticket, history) against the SDK's own `validate_filenames_flow` behind FastAPI +
//!    uvicorn with 2 workers on the same MongoDB (e2e/bench/sdk_api.py, the SDK's code
//!    from its repository; see e2e/bench/README.md for what is stubbed); the bare check
//!    (token, rules, no I/O) against the hello world of its server and the API's
//!    `/healthz`. Rounds interleaved, medians, per-round ratios, servers' peak RSS.
//! 2. Uploads of 10 MB, 100 MB, 1 GB with the API's peak RSS, against `cp` of the same
//!    file to the same disk, with content validation's share apart.
//! 3. Component data (issue 12 §6): a cache hit against a bare `redis-benchmark GET` of
//!    a value of the same size, a cache miss against the same aggregation straight
//!    through the Rust MongoDB driver, same connections and threads, rounds interleaved.
//! 4. A 1,000,000-cell xlsx download with the API's peak RSS, against the SDK's way
//!    (its `create_file`: pandas + XlsxWriter) writing the same rows.
//!
//! Needs the stack (`set -a; . e2e/.stack/env; set +a`), wrk, curl and redis-benchmark. Figures are
//! printed; targets are reported, never asserted.

use std::{path::PathBuf, time::Duration};

use clap::{Parser, Subcommand};
use licenseware_e2e::{
    Stack,
    bench_api::{
        self, API_HEALTHZ, API_VALIDATION, BARE_CHECK, BARE_HELLO, HISTORY_FLOOR, Options,
        SDK_VALIDATION,
        component::{self, API_HIT, API_MISS, ComponentOutcome, DRIVER, REDIS_GET},
        load::Load,
        report,
        servers::SdkEnv,
        xlsx::{self, XlsxOutcome},
    },
};
use mimalloc::MiMalloc;

// The API's allocator, so that the bare-check server is the API's kind of server.
#[global_allocator]
static ALLOCATOR: MiMalloc = MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    #[command(subcommand)]
    command: Option<Internal>,
    /// The API binary (a release build).
    #[arg(long, default_value = "target/release/licenseware-worker")]
    worker_bin: PathBuf,
    /// The SDK baseline's Python and source, as e2e/bench/sdk-env prints them; without
    /// them the SDK's targets are left out.
    #[arg(long, requires = "sdk_src")]
    sdk_python: Option<PathBuf>,
    #[arg(long)]
    sdk_src: Option<PathBuf>,
    /// The Uploader whose rules `/validation` applies, on both sides.
    #[arg(long, default_value = "manifests/examples/rv-tools.uploader.yaml")]
    uploader: PathBuf,
    /// wrk connections and threads.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// Seconds of each wrk run.
    #[arg(long, default_value_t = 8)]
    seconds: u64,
    /// Rounds of every target, interleaved.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// File sizes to upload, in MB (10^6 bytes), comma separated; empty: no uploads.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    upload_mb: Vec<u64>,
    /// Uploads of each size (and of cp), and of sizes from 1 GB up.
    #[arg(long, default_value_t = 3)]
    upload_repeat: usize,
    #[arg(long, default_value_t = 1)]
    upload_repeat_large: usize,
    /// Leave out a part: the throughput of `/validation`, the uploads, the component
    /// data (cache hit and miss), the xlsx download.
    #[arg(long)]
    skip_throughput: bool,
    #[arg(long)]
    skip_uploads: bool,
    #[arg(long)]
    skip_components: bool,
    #[arg(long)]
    skip_xlsx: bool,
    /// Documents of the tenant the component data part aggregates (a miss costs the
    /// stack's FerretDB a scan of them: beyond a few thousand, a run counts few misses).
    #[arg(long, default_value_t = 1_000)]
    component_docs: usize,
    /// Rows of the xlsx download, of 10 columns each.
    #[arg(long, default_value_t = 100_000)]
    xlsx_rows: usize,
}

#[derive(Debug, Subcommand)]
enum Internal {
    /// The bare-check server (started by the benchmark itself).
    #[command(hide = true)]
    BareServer {
        #[arg(long)]
        secret_file: PathBuf,
        /// The Uploader's `validation`, JSON.
        #[arg(long)]
        rules: String,
    },
}

const FILENAMES: [&str; 3] = ["RVTools_export.xlsx", "readme.txt", "devices.csv"];

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
fn print_throughput(outcome: &bench_api::Throughput, options: &Options) {
    let rounds = &outcome.rounds;
    println!(
        "\n/validation and the bare check: wrk -t{} -c{} -d{}s, {} interleaved rounds; medians \
         (RSS: the peak of the server's processes during its runs; CPU: the server's, per request)",
        options.load.threads,
        options.load.connections,
        options.load.duration.as_secs(),
        options.rounds
    );
    print!("{}", rounds.table());
    for note in &outcome.notes {
        println!("  note: {note}");
    }
    println!("  API VmHWM after its rounds: {:.1} MiB", report::mib(outcome.api_hwm_kib));
    let rps = |t: &str| rounds.median_rps(t).unwrap_or(0.0);
    println!("\nratios (medians of the per-round ratios):");
    let vs_sdk = rounds.ratio(API_VALIDATION, SDK_VALIDATION);
    if let Some(ratio) = vs_sdk {
        println!("  API /validation / SDK route          {ratio:>6.2}x");
    }
    let bare_vs_hello = rounds.ratio(BARE_CHECK, BARE_HELLO);
    if let Some(ratio) = bare_vs_hello {
        println!("  bare check / its server's hello      {ratio:>6.2}");
    }
    if let Some(ratio) = rounds.ratio(BARE_HELLO, API_HEALTHZ) {
        println!("  bare server hello / API /healthz     {ratio:>6.2}");
    }
    if let Some(ratio) = rounds.ratio(API_VALIDATION, HISTORY_FLOOR) {
        println!("  API /validation / store floor        {ratio:>6.2}");
    }
    if let Some(ratio) = rounds.ratio(API_VALIDATION, API_HEALTHZ) {
        println!("  API /validation / API /healthz       {ratio:>6.2}");
    }
    let api_rss = rounds.peak_rss_kib(API_VALIDATION).unwrap_or(0);
    println!("\ntargets (issue 11 §7), reported, not asserted:");
    println!(
        "  /validation >= 30,000 req/s: {:.0}, {}",
        rps(API_VALIDATION),
        verdict(rps(API_VALIDATION) >= 30_000.0)
    );
    if let Some(ratio) = vs_sdk {
        println!("  /validation >= 8x the SDK's route: {ratio:.2}x, {}", verdict(ratio >= 8.0));
    }
    println!(
        "  bare check >= 40,000 req/s: {:.0}, {}",
        rps(BARE_CHECK),
        verdict(rps(BARE_CHECK) >= 40_000.0)
    );
    if let Some(ratio) = bare_vs_hello {
        println!("  bare check within 10% of hello world: {ratio:.2}, {}", verdict(ratio >= 0.9));
    }
    println!(
        "  API RSS < 30 MB under load: {:.1} MiB peak, {}",
        report::mib(api_rss),
        verdict(api_rss * 1024 < 30_000_000)
    );
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
fn print_uploads(rows: &[report::UploadRow], notes: &[String]) {
    println!(
        "\nuploads: from disk to /files (after /validation), wall time of the request, medians; \
         sent by a client that hands the file to the kernel (sendfile), and by curl -F ('curl', \
         names only); cp of the same file into the same upload root; 'upload' validates \
         contents (columns + a row, in the sandbox), 'names' only the name rules; RSS of the \
         API process (the sandbox child apart)"
    );
    print!("{}", report::upload_table(rows));
    for note in notes {
        println!("  note: {note}");
    }
    println!("\ntargets (issue 11 §7), reported, not asserted:");
    if let (Some(first), Some(last)) = (rows.first(), rows.last()) {
        let growth = report::mib(last.hwm_kib) - report::mib(first.hwm_kib);
        println!(
            "  upload RSS flat ({} MB -> {} MB, VmHWM within 16 MB): {growth:+.1} MiB, {}",
            first.megabytes,
            last.megabytes,
            verdict(growth <= 16.0 * 1e6 / 1_048_576.0)
        );
    }
    for row in rows {
        let ratio = row.names_s() / row.cp_s();
        println!(
            "  {} MB transfer < 2x cp: {ratio:.2}x without content checks ({:.2}x with them, \
             {:.2}x sent by curl), {}",
            row.megabytes,
            row.checked_s() / row.cp_s(),
            row.names_curl_s() / row.cp_s(),
            verdict(ratio < 2.0)
        );
    }
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
fn print_components(outcome: &ComponentOutcome, options: &Options) {
    let rounds = &outcome.rounds;
    println!(
        "\ncomponent data: {} rows of {} documents, a body of {} bytes; wrk -t{} -c{} -d{}s \
         against redis-benchmark GET of a {}-byte value (-c{} --threads {} -P 1) and the \
         driver with {} aggregations in flight; {} interleaved rounds, medians (RSS and CPU: \
         the API's, Redis's; none for the driver, which runs in this process)",
        outcome.rows,
        outcome.documents,
        outcome.body_bytes,
        options.load.threads,
        options.load.connections,
        options.load.duration.as_secs(),
        outcome.body_bytes,
        options.load.connections,
        options.load.threads,
        options.load.connections,
        options.rounds
    );
    print!("{}", rounds.table());
    for note in &outcome.notes {
        println!("  note: {note}");
    }
    println!("  API VmHWM after its rounds: {:.1} MiB", report::mib(outcome.api_hwm_kib));
    println!("\ntargets (issue 12 §6), reported, not asserted:");
    match rounds.ratio(API_HIT, REDIS_GET) {
        Some(ratio) => println!(
            "  cache hit >= 0.75 of the bare Redis GET: {ratio:.2} ({:.0} / {:.0} req/s), {}",
            rounds.median_rps(API_HIT).unwrap_or(0.0),
            rounds.median_rps(REDIS_GET).unwrap_or(0.0),
            verdict(ratio >= 0.75)
        ),
        None => println!("  cache hit: no rounds"),
    }
    match rounds.ratio(API_MISS, DRIVER) {
        Some(ratio) => println!(
            "  cache miss >= 0.70 of the bare driver: {ratio:.2} ({:.0} / {:.0} req/s), {}",
            rounds.median_rps(API_MISS).unwrap_or(0.0),
            rounds.median_rps(DRIVER).unwrap_or(0.0),
            verdict(ratio >= 0.70)
        ),
        None => println!("  cache miss: no rounds"),
    }
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
fn print_xlsx(outcome: &XlsxOutcome) {
    println!(
        "\nxlsx download: {} rows x {} columns, {} rounds, medians; API: request to last byte \
         on disk; SDK: e2e/bench/sdk_xlsx.py, the SDK's execute_query + create_file (pandas \
         {}), timed inside the script (read + write; the interpreter and imports apart)",
        outcome.rows,
        xlsx::COLUMNS,
        outcome.api_s.len(),
        if outcome.sdk_engine.is_empty() { "-" } else { &outcome.sdk_engine }
    );
    println!(
        "  API: {:.2} s, {:.1} MB, {} cells read back; RSS idle {:.1} MiB, peak {:.1} MiB \
         sampled, VmHWM {:.1} MiB",
        outcome.api_median_s(),
        outcome.api_bytes as f64 / 1e6,
        outcome.api_cells,
        report::mib(outcome.api_idle_rss_kib),
        report::mib(outcome.api_peak_rss_kib),
        report::mib(outcome.api_hwm_kib)
    );
    if !outcome.sdk_s.is_empty() {
        println!(
            "  SDK: {:.2} s (read {:.2} s, write {:.2} s; {:.2} s with the interpreter), {:.1} \
             MB, {} cells read back; peak RSS {:.1} MiB",
            outcome.sdk_median_s(),
            report::median(&outcome.sdk_read_s),
            report::median(&outcome.sdk_write_s),
            report::median(&outcome.sdk_wall_s),
            outcome.sdk_bytes as f64 / 1e6,
            outcome.sdk_cells,
            report::mib(outcome.sdk_peak_rss_kib)
        );
    }
    for note in &outcome.notes {
        println!("  note: {note}");
    }
    if !outcome.sdk_read_s.is_empty() {
        println!(
            "  note: the SDK's read alone (the rows out of FerretDB, the same server the API \
             reads) took {:.2} s: the floor of both sides",
            report::median(&outcome.sdk_read_s)
        );
    }
    println!("\ntargets (issue 12 §6), reported, not asserted:");
    if let Some(speedup) = outcome.speedup() {
        println!(
            "  xlsx >= 3.5x the SDK's way: {speedup:.2}x (median of the per-round ratios), {}",
            verdict(speedup >= 3.5)
        );
    }
    let peak = outcome.api_peak_rss_kib.max(outcome.api_hwm_kib);
    println!(
        "  xlsx under 50 MB RSS: {:.1} MB peak (VmHWM), {}",
        peak as f64 * 1024.0 / 1e6,
        verdict(peak * 1024 < 50_000_000)
    );
}

#[allow(clippy::print_stdout)] // a benchmark: its figures are its output
async fn bench(args: Args) -> anyhow::Result<()> {
    let stack = Stack::from_env();
    let sdk = match (args.sdk_python, args.sdk_src) {
        (Some(python), Some(src)) => {
            let app_dir = std::fs::canonicalize("e2e/bench").or_else(|_| {
                std::fs::canonicalize(concat!(env!("CARGO_MANIFEST_DIR"), "/bench"))
            })?;
            Some(SdkEnv { python, src, app_dir })
        }
        _ => None,
    };
    let options = Options {
        worker_bin: std::fs::canonicalize(&args.worker_bin)?,
        load: Load {
            threads: args.threads,
            connections: args.connections,
            duration: Duration::from_secs(args.seconds),
        },
        rounds: args.rounds,
        warmup: Duration::from_secs(2),
        sdk,
        uploader_yaml: args.uploader,
        filenames: FILENAMES.iter().map(|s| (*s).to_owned()).collect(),
    };
    let scratch = tempfile::Builder::new().prefix("bench-api-").tempdir()?;
    println!(
        "bench-api: {} CPUs, load average {}",
        std::thread::available_parallelism().map_or(0, usize::from),
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    if !args.skip_throughput {
        println!("\n/validation body: {}", serde_json::to_string(&options.filenames)?);
        let outcome = bench_api::throughput(&options, &stack, scratch.path()).await?;
        print_throughput(&outcome, &options);
    }
    if !args.skip_uploads && !args.upload_mb.is_empty() {
        println!("\nuploads of {:?} MB", args.upload_mb);
        let (rows, notes) = bench_api::uploads(
            &options,
            scratch.path(),
            &args.upload_mb,
            args.upload_repeat,
            args.upload_repeat_large,
        )
        .await?;
        print_uploads(&rows, &notes);
    }
    if !args.skip_components {
        println!("\ncomponent data: {} documents", args.component_docs);
        let outcome =
            component::component_data(&options, scratch.path(), args.component_docs).await?;
        print_components(&outcome, &options);
    }
    if !args.skip_xlsx {
        println!("\nxlsx download: {} rows", args.xlsx_rows);
        let outcome = xlsx::xlsx(&options, &stack, scratch.path(), args.xlsx_rows).await?;
        print_xlsx(&outcome);
    }
    println!(
        "\nload average at the end: {}",
        std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if let Some(Internal::BareServer { secret_file, rules }) = args.command {
        return bench_api::bare::serve(secret_file, &rules).await;
    }
    bench(args).await
}
