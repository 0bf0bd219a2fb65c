//! The parent's side: spawn the child, hand it the job, take its frames while watching
//! the clock and the byte count, and name what stopped it when it did not finish.

use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use super::request::{Job, Request};
use super::{CHILD_ARG, SandboxError, SandboxLimits, frame};

/// Takes a frame (its tag and payload) from the child; an error stops the child.
pub(crate) type OnFrame<'a> = dyn FnMut(u8, &[u8]) -> Result<(), String> + 'a;

/// The last bytes of the child's stderr kept for the error message.
const STDERR_TAIL_BYTES: usize = 4096;

/// Runs jobs in child processes of `program` (this executable by default).
#[derive(Debug, Clone)]
pub struct Sandbox {
    program: PathBuf,
    limits: SandboxLimits,
}

impl Sandbox {
    /// Children of this very executable, which must call
    /// [`run_child_if_requested`](super::run_child_if_requested) first thing in `main`.
    pub fn new(limits: SandboxLimits) -> Result<Self, SandboxError> {
        let program = std::env::current_exe().map_err(SandboxError::Spawn)?;
        Ok(Self { program, limits })
    }

    /// Children of another executable (a test's, or a custom worker's helper binary).
    pub fn with_program(program: impl Into<PathBuf>, limits: SandboxLimits) -> Self {
        Self { program: program.into(), limits }
    }

    pub fn limits(&self) -> &SandboxLimits {
        &self.limits
    }

    /// Runs `job`; every frame but the outcome goes to `on_frame` as it comes (an error
    /// there stops the child). Returns the outcome's payload.
    pub(crate) fn run(
        &self,
        job: Job,
        on_frame: &mut OnFrame<'_>,
    ) -> Result<Vec<u8>, SandboxError> {
        let request = serde_json::to_vec(&Request { job })
            .map_err(|error| SandboxError::Protocol(format!("cannot encode the job: {error}")))?;
        let mut child = self.spawn()?;
        let outcome = self.supervise(&mut child, &request, on_frame);
        if outcome.is_err() {
            // Killing an exited, not yet reaped child is harmless; an error here means
            // it is already gone.
            let _ = child.kill();
            let _ = child.wait();
        }
        outcome
    }

    fn spawn(&self) -> Result<Child, SandboxError> {
        let mut command = Command::new(&self.program);
        command.arg(CHILD_ARG).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        // The child gets none of the parent's secrets (database URLs, keys).
        command.env_clear();
        for kept in ["TMPDIR", "LANG", "LC_ALL"] {
            if let Some(value) = std::env::var_os(kept) {
                command.env(kept, value);
            }
        }
        // mimalloc reserves 1 GiB of address space at its first allocation, before the
        // child sets its limit: that reservation would count against the limit and leave
        // the stack no room to grow. Small arenas keep the limit about real memory.
        command.env("MIMALLOC_ARENA_RESERVE", "32MiB");
        let mut child = command.spawn().map_err(SandboxError::Spawn)?;
        // Set before the job is sent: the child reads no file until it has the job.
        if let Err(error) = limit(child.id(), &self.limits) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(SandboxError::Spawn(error));
        }
        Ok(child)
    }

    fn supervise(
        &self,
        child: &mut Child,
        request: &[u8],
        on_frame: &mut OnFrame<'_>,
    ) -> Result<Vec<u8>, SandboxError> {
        let started = Instant::now();
        let (Some(mut stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Protocol("the child's pipes are missing".into()));
        };
        let stderr_tail = std::thread::spawn(move || tail(stderr));
        let clock = Arc::new(Mutex::new(Clock::default()));
        let (stop_watch, stopped) = mpsc::channel::<()>();
        let watchdog = {
            let clock = Arc::clone(&clock);
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            let wall = self.limits.wall();
            std::thread::spawn(move || watch(pid, started, wall, &clock, &stopped))
        };
        // The child reads the whole request before it writes: no deadlock.
        let sent = stdin.write_all(request).and_then(|()| stdin.flush());
        drop(stdin);
        let read = match sent {
            Ok(()) => self.read_frames(stdout, &clock, on_frame),
            Err(error) => Err(Stop::Pipe(error)),
        };
        if read.is_err() {
            let _ = child.kill();
        }
        // The watchdog is stopped before the child is reaped: its pid must not be
        // another process's when the watchdog kills. `wait` keeps the time from here.
        let _ = stop_watch.send(());
        let _ = watchdog.join();
        let status = self.wait(child, started, &clock);
        let stderr = stderr_tail.join().unwrap_or_default();
        let timed_out = clock.lock().map(|clock| clock.timed_out).unwrap_or(false);
        self.outcome(read, status, timed_out, &stderr)
    }

    fn read_frames(
        &self,
        stdout: impl Read,
        clock: &Mutex<Clock>,
        on_frame: &mut OnFrame<'_>,
    ) -> Result<Option<Vec<u8>>, Stop> {
        let mut stdout = BufReader::with_capacity(1 << 16, stdout);
        let mut payload = Vec::new();
        let mut taken: u64 = 0;
        let limit = self.limits.output_bytes();
        let mut outcome = None;
        while let Some(tag) = frame::read(&mut stdout, &mut payload).map_err(Stop::Pipe)? {
            taken = taken.saturating_add(payload.len() as u64 + 5);
            if taken > limit {
                return Err(Stop::Output);
            }
            if tag == frame::OUTCOME {
                outcome = Some(std::mem::take(&mut payload));
                continue;
            }
            if let Ok(mut clock) = clock.lock() {
                clock.handing_over_since = Some(Instant::now());
            }
            let handed = on_frame(tag, &payload);
            if let Ok(mut clock) = clock.lock()
                && let Some(since) = clock.handing_over_since.take()
            {
                clock.handing_over += since.elapsed();
            }
            handed.map_err(Stop::Caller)?;
        }
        Ok(outcome)
    }

    /// Waits for the child to exit; one that closed its output but lingers past its
    /// time is killed.
    fn wait(&self, child: &mut Child, started: Instant, clock: &Mutex<Clock>) -> ExitStatus {
        let mut pause = Duration::from_millis(1);
        loop {
            match child.try_wait() {
                Ok(Some(status)) => return status,
                Ok(None) => {}
                Err(_) => break,
            }
            let charged = clock.lock().map(|c| c.charged(started)).unwrap_or_default();
            if charged >= self.limits.wall() {
                if let Ok(mut clock) = clock.lock() {
                    clock.timed_out = true;
                }
                break;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(50));
        }
        let _ = child.kill();
        // After kill, wait returns promptly; its error would mean the child is gone.
        child.wait().unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(9))
    }

    fn outcome(
        &self,
        read: Result<Option<Vec<u8>>, Stop>,
        status: ExitStatus,
        timed_out: bool,
        stderr: &str,
    ) -> Result<Vec<u8>, SandboxError> {
        let limits = &self.limits;
        match read {
            Err(Stop::Output) => return Err(SandboxError::OutputLimit { mib: limits.output_mib }),
            Err(Stop::Caller(message)) => return Err(SandboxError::Caller(message)),
            Ok(Some(outcome)) if status.success() => return Ok(outcome),
            Ok(None) if status.success() => {
                return Err(SandboxError::Protocol("the child ended without an outcome".into()));
            }
            Err(Stop::Pipe(error)) if status.success() => {
                return Err(SandboxError::Protocol(format!("the child's output: {error}")));
            }
            _ => {}
        }
        if timed_out {
            return Err(SandboxError::WallLimit { seconds: limits.wall_seconds });
        }
        use std::os::unix::process::ExitStatusExt;
        let signal = status.signal().and_then(|number| Signal::try_from(number).ok());
        Err(match signal {
            Some(Signal::SIGXCPU) => SandboxError::CpuLimit { seconds: limits.cpu_seconds },
            Some(Signal::SIGXFSZ) => SandboxError::OutputLimit { mib: limits.output_mib },
            _ if out_of_memory(stderr) => SandboxError::MemoryLimit { mib: limits.memory_mib },
            Some(Signal::SIGKILL) => SandboxError::Killed { cpu_seconds: limits.cpu_seconds },
            _ => SandboxError::Crashed { status: describe(status), stderr: stderr.to_owned() },
        })
    }
}

/// The kernel's limits on the child: address space, CPU time (SIGXCPU at the soft
/// limit, SIGKILL a second later), the size of any file it writes, and no core files
/// (they would hold the file's data).
fn limit(pid: u32, limits: &SandboxLimits) -> std::io::Result<()> {
    use rlimit::Resource;
    let pid = i32::try_from(pid).map_err(std::io::Error::other)?;
    let memory = limits.memory_bytes();
    let cpu = limits.cpu_seconds;
    let output = limits.output_bytes();
    rlimit::prlimit(pid, Resource::AS, Some((memory, memory)), None)?;
    rlimit::prlimit(pid, Resource::CPU, Some((cpu, cpu.saturating_add(1))), None)?;
    rlimit::prlimit(pid, Resource::FSIZE, Some((output, output)), None)?;
    rlimit::prlimit(pid, Resource::CORE, Some((0, 0)), None)
}

/// Why reading the child's output stopped early.
#[derive(Debug)]
enum Stop {
    Pipe(std::io::Error),
    Output,
    Caller(String),
}

/// Time spent handing frames to the caller is not the child's.
#[derive(Debug, Default)]
struct Clock {
    handing_over: Duration,
    handing_over_since: Option<Instant>,
    timed_out: bool,
}

impl Clock {
    fn charged(&self, started: Instant) -> Duration {
        let current = self.handing_over_since.map(|since| since.elapsed()).unwrap_or_default();
        started.elapsed().saturating_sub(self.handing_over + current)
    }
}

/// Kills the child once its charged time passes `wall`, unless stopped first.
fn watch(
    pid: nix::unistd::Pid,
    started: Instant,
    wall: Duration,
    clock: &Mutex<Clock>,
    stopped: &mpsc::Receiver<()>,
) {
    loop {
        let charged = clock.lock().map(|c| c.charged(started)).unwrap_or_default();
        // `supervise` joins this thread before it reaps the child, so the pid cannot
        // belong to another process yet.
        if charged >= wall {
            if let Ok(mut clock) = clock.lock() {
                clock.timed_out = true;
                let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
            }
            return;
        }
        match stopped.recv_timeout(wall - charged) {
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// The last [`STDERR_TAIL_BYTES`] of a stream, read to its end.
fn tail(mut stream: impl Read) -> String {
    let mut kept = Vec::with_capacity(STDERR_TAIL_BYTES * 2);
    let mut buffer = [0_u8; 4096];
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..read]);
        if kept.len() > STDERR_TAIL_BYTES * 2 {
            kept.drain(..kept.len() - STDERR_TAIL_BYTES);
        }
    }
    let start = kept.len().saturating_sub(STDERR_TAIL_BYTES);
    String::from_utf8_lossy(&kept[start..]).trim().to_owned()
}

/// Rust's allocation failure message, and the kernel's refusal of a mapping.
fn out_of_memory(stderr: &str) -> bool {
    stderr.contains("memory allocation of")
        || stderr.contains("Cannot allocate memory")
        || stderr.contains("out of memory")
        || stderr.contains("capacity overflow")
        // pthread_create's EAGAIN: no room for the new thread's stack.
        || stderr.contains("failed to spawn thread")
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(number)) => match Signal::try_from(number) {
            Ok(signal) => format!("signal {}", signal.as_str()),
            Err(_) => format!("signal {number}"),
        },
        _ => status.to_string(),
    }
}

/// A per-run scratch directory under `root`, removed when dropped, also when the child
/// was killed before it could clean up after itself.
pub(crate) fn scratch_dir(root: &Path) -> Result<tempfile::TempDir, SandboxError> {
    tempfile::Builder::new().prefix("sandbox-").tempdir_in(root).map_err(SandboxError::Scratch)
}
