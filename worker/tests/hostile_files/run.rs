//! Runs the real binary on a crafted file under a memory cap, with a time bound and its
//! peak memory watched: a hang, an abort, a kill or a peak over the bound fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a run may take at most. Generous: a loaded 2-core machine, a debug build.
const TIME_BOUND: Duration = Duration::from_secs(120);
/// Peak resident memory of the worker and its children: a crafted file of a few
/// kilobytes must not cost more.
pub const MEMORY_BOUND_KIB: u64 = 1 << 20;
/// Address space: above the resident bound (allocators and thread stacks reserve more
/// than they touch), far below what the findings allocated (3 GiB, 24 PB).
const ADDRESS_SPACE_KIB: u64 = 3 << 20;

#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub peak_kib: u64,
    pub elapsed: Duration,
}

/// Peak resident memory of `pid` so far (VmHWM), 0 once it has exited.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// `pid` and its descendants: a worker may read a file in a child process.
fn process_tree(pid: u32) -> Vec<u32> {
    let mut tree = vec![pid];
    let mut next = 0;
    while let Some(&parent) = tree.get(next) {
        next += 1;
        let tasks = std::fs::read_dir(format!("/proc/{parent}/task")).into_iter().flatten();
        for task in tasks.flatten() {
            let children =
                std::fs::read_to_string(task.path().join("children")).unwrap_or_default();
            tree.extend(children.split_whitespace().filter_map(|child| child.parse::<u32>().ok()));
        }
    }
    tree
}

/// The peaks of the tree's processes added up: a bound on what they held together.
fn tree_peak_kib(pid: u32) -> u64 {
    process_tree(pid).into_iter().map(peak_kib).sum()
}

/// The binary under test; `HOSTILE_WORKER_BIN` names another (an older build, to show
/// a finding before its fix).
fn worker_binary() -> std::ffi::OsString {
    std::env::var_os("HOSTILE_WORKER_BIN")
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_licenseware-worker").into())
}

/// `licenseware-worker {args}` in `dir` (its output goes to files there). Each run's
/// time and peak are printed: `cargo test --test hostile_files -- --nocapture` gives
/// the figures.
#[allow(clippy::print_stderr)]
pub fn worker(dir: &Path, args: &[&str]) -> Run {
    let out = dir.join("stdout");
    let err = dir.join("stderr");
    // `ulimit -v` caps the address space, then the shell becomes the worker (same pid).
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(r#"ulimit -v "$0" && exec "$@""#)
        .arg(ADDRESS_SPACE_KIB.to_string())
        .arg(worker_binary())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).expect("running the worker"))
        .stderr(std::fs::File::create(&err).expect("running the worker"))
        .spawn()
        .expect("run the worker");
    let started = Instant::now();
    let mut peak = 0;
    let status = loop {
        peak = peak.max(tree_peak_kib(child.id()));
        if let Some(status) = child.try_wait().expect("running the worker") {
            break status;
        }
        if started.elapsed() > TIME_BOUND {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the worker ran longer than {TIME_BOUND:?} on {args:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let run = Run {
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
        peak_kib: peak,
        elapsed: started.elapsed(),
    };
    eprintln!("{args:?}: {:?}, peak {} MiB, exit {:?}", run.elapsed, run.peak_kib >> 10, run.code);
    assert!(run.code.is_some(), "the worker was killed by a signal: {run:?}");
    assert!(run.peak_kib < MEMORY_BOUND_KIB, "the worker peaked at {} KiB: {run:?}", run.peak_kib);
    run
}

/// A directory of its own per test, with the manifests, removed at the end.
pub struct Scratch(tempfile::TempDir);

const EXCEL: &str = r#"apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata:
  name: hostile
spec:
  appId: hostile-app
  uploaderId: hostile
  name: Hostile
  description: Crafted files.
  acceptedFileTypes: [".xlsx", ".ods"]
  usedCollections: [Data]
  validation:
    requiredInputType: excel
    requiredSheets: [[S]]
    requiredColumns: [[h]]
    minRowsNumber: 2
    headerStartsAt: 0
  processing:
    tables:
      - sheets: [S]
        headerStartsAt: 0
        collection: Data
        columns:
          - {from: h, to: h}
"#;

impl Scratch {
    pub fn new() -> Self {
        let dir =
            tempfile::Builder::new().prefix("lw-hostile-").tempdir().expect("running the worker");
        std::fs::write(dir.path().join("excel.yaml"), EXCEL).expect("running the worker");
        let csv = EXCEL
            .replace("requiredInputType: excel", "requiredInputType: csv")
            .replace("    requiredSheets: [[S]]\n", "")
            .replace("      - sheets: [S]\n        headerStartsAt: 0", "      - headerStartsAt: 0")
            .replace(r#"[".xlsx", ".ods"]"#, r#"[".csv"]"#);
        std::fs::write(dir.path().join("csv.yaml"), csv).expect("running the worker");
        let anonymized =
            EXCEL.replace("  validation:", "  encryption: {columns: [h]}\n  validation:");
        std::fs::write(dir.path().join("anonymize.yaml"), anonymized).expect("running the worker");
        std::fs::write(dir.path().join("key.txt"), "a long random passphrase")
            .expect("running the worker");
        Self(dir)
    }

    /// Writes `bytes` as file `name`.
    pub fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, bytes).expect("running the worker");
        path
    }

    fn manifest(&self, file: &Path) -> PathBuf {
        let name = file.to_string_lossy().to_lowercase();
        self.0.path().join(if name.ends_with(".csv") { "csv.yaml" } else { "excel.yaml" })
    }

    /// `validate` on `file`: it exits 0 with one entry; returns the entry's status and
    /// message, and how long the run took.
    pub fn validate_timed(&self, file: &Path) -> (String, String, Duration) {
        let manifest = self.manifest(file);
        let run = worker(
            self.0.path(),
            &["validate", "--uploader", &manifest.to_string_lossy(), &file.to_string_lossy()],
        );
        assert_eq!(run.code, Some(0), "{run:?}");
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
        let entry = &json["validation"][0];
        let text = |value: &serde_json::Value| value.as_str().unwrap_or_default().to_owned();
        (text(&entry["status"]), text(&entry["message"]), run.elapsed)
    }

    pub fn validate(&self, file: &Path) -> (String, String) {
        let (status, message, _) = self.validate_timed(file);
        (status, message)
    }

    /// `validate` on `file` gives a failed entry; its message.
    pub fn validation_fails(&self, file: &Path) -> String {
        let (status, message) = self.validate(file);
        assert_eq!(status, "failed", "{message}");
        message
    }

    /// `process --tenant t` on `file` with its manifest.
    fn process(&self, file: &Path) -> Run {
        let manifest = self.manifest(file);
        worker(
            self.0.path(),
            &[
                "process",
                "--uploader",
                &manifest.to_string_lossy(),
                "--tenant",
                "t",
                &file.to_string_lossy(),
            ],
        )
    }

    /// `process` on `file` fails cleanly: the file not processed (exit 0) or failed
    /// (exit 1, an archive that cannot be unpacked), with its reason; its stderr.
    pub fn processing_fails(&self, file: &Path) -> String {
        let run = self.process(file);
        let name = file.file_name().expect("running the worker").to_string_lossy();
        let clean = match run.code {
            Some(0) => run.stderr.contains(&format!("{name}: not processed: ")),
            Some(1) => run.stderr.contains(&format!("{name}: failed: ")),
            _ => false,
        };
        assert!(clean, "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        run.stderr
    }

    /// `process` on `file` succeeds; its stdout (one document per line).
    pub fn processes(&self, file: &Path) -> String {
        let run = self.process(file);
        assert_eq!(run.code, Some(0), "{run:?}");
        run.stdout
    }

    /// `anonymize` on `file` fails cleanly (exit 1, the file named with its reason, no
    /// output written); its stderr.
    pub fn anonymization_fails(&self, file: &Path) -> String {
        let dir = self.0.path();
        let out = dir.join("anonymized");
        let run = worker(
            dir,
            &[
                "anonymize",
                "--uploader",
                &dir.join("anonymize.yaml").to_string_lossy(),
                "--key-file",
                &dir.join("key.txt").to_string_lossy(),
                "--out",
                &out.to_string_lossy(),
                &file.to_string_lossy(),
            ],
        );
        assert_eq!(run.code, Some(1), "{run:?}");
        assert!(!run.stderr.contains("panicked"), "{run:?}");
        let written = std::fs::read_dir(&out).map(Iterator::count).unwrap_or(0);
        assert_eq!(written, 0, "nothing written, not even a partial file: {run:?}");
        run.stderr
    }
}
