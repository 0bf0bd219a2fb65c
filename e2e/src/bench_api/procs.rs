//! What `make bench-api` reads of its servers in /proc (Linux): the resident memory and
//! CPU time of a process and of the processes it started (uvicorn's workers, the API's
//! sandbox children).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

/// Current resident set size (VmRSS) of `pid`, in KiB; 0 once it is gone.
pub fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:").unwrap_or(0)
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it do not.
    let rest = stat.rsplit_once(") ")?.1;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// `root` and every live process descending from it.
pub fn tree(root: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return vec![root] };
    let pairs: Vec<(u32, u32)> = entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, parent_of(pid)?)))
        .collect();
    let mut found = vec![root];
    let mut index = 0;
    while index < found.len() {
        let parent = found[index];
        found.extend(pairs.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        index += 1;
    }
    found
}

/// Resident memory of `root` and its descendants, in KiB.
pub fn tree_rss_kib(root: u32) -> u64 {
    tree(root).into_iter().map(rss_kib).sum()
}

/// CPU time (user + system) of `root` and its live descendants, in seconds.
pub fn tree_cpu_secs(root: u32) -> f64 {
    tree(root).into_iter().filter_map(|pid| crate::procfs::cpu_secs(pid).ok()).sum()
}

/// Samples the resident memory of a process tree every 50 ms until stopped; keeps the
/// highest sum seen.
#[derive(Debug)]
pub struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<u64>,
}

impl RssSampler {
    /// `root` and its descendants.
    pub fn start(root: u32) -> Self {
        Self::with(move || tree_rss_kib(root))
    }

    /// `pid` alone.
    pub fn process(pid: u32) -> Self {
        Self::with(move || rss_kib(pid))
    }

    fn with(read: impl Fn() -> u64 + Send + 'static) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = 0;
            while !flag.load(Ordering::Acquire) {
                peak = peak.max(read());
                std::thread::sleep(Duration::from_millis(50));
            }
            peak.max(read())
        });
        Self { stop, handle }
    }

    /// The peak, in KiB.
    pub fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Release);
        self.handle.join().unwrap_or(0)
    }
}
