//! The operator binary as a child process, as the tests that restart it or run two
//! replicas use it: built once (`cargo build -p licenseware-operator`, a no-op when it
//! is fresh; `LW_OPERATOR_BIN` names another binary), run on a free probe port with
//! JSON logs in a file, and SIGKILLed when dropped.

use std::{
    ffi::OsStr,
    fs,
    io::Read,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, ExitStatus, Stdio},
    sync::OnceLock,
    time::Duration,
};

use serde_json::json;

use crate::eventually;

/// The operator binary, built once per test process.
pub fn operator_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            if let Some(path) = std::env::var_os("LW_OPERATOR_BIN") {
                return PathBuf::from(path);
            }
            // Without the variables cargo sets for this test, so the build is the one
            // `cargo build` gives from a shell and reuses its artifacts.
            let status = Command::new(env!("CARGO"))
                .args(["build", "-p", "licenseware-operator", "--bin", "licenseware-operator"])
                .envs_remove_cargo_test_vars()
                .status()
                .expect("run cargo build");
            assert!(status.success(), "cargo build -p licenseware-operator failed: {status}");
            let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
                || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"),
                PathBuf::from,
            );
            target.join("debug/licenseware-operator")
        })
        .clone()
}

trait RemoveCargoTestVars {
    fn envs_remove_cargo_test_vars(&mut self) -> &mut Self;
}

impl RemoveCargoTestVars for Command {
    fn envs_remove_cargo_test_vars(&mut self) -> &mut Self {
        for (name, _) in std::env::vars_os() {
            let keep = ["CARGO_HOME", "CARGO_TARGET_DIR"].iter().any(|kept| name == *kept);
            if name.to_string_lossy().starts_with("CARGO_") && !keep {
                self.env_remove(name);
            }
        }
        self
    }
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("addr").port()
}

/// What every operator process of one test shares.
#[derive(Debug, Clone)]
pub struct Setup {
    pub namespace: String,
    pub prefix: String,
    pub database: String,
    pub lease: String,
}

/// One operator process; SIGKILLed when dropped, so a failing test leaves none behind.
#[derive(Debug)]
pub struct OperatorProcess {
    child: Child,
    pub probe: String,
    log: PathBuf,
    http: reqwest::Client,
}

impl OperatorProcess {
    pub fn start(setup: &Setup, label: &str) -> Self {
        Self::start_with(setup, label, &[], &[])
    }

    /// [`Self::start`] with more arguments after the usual ones (later ones win) and
    /// more environment variables.
    pub fn start_with(
        setup: &Setup,
        label: &str,
        extra_args: &[&str],
        envs: &[(&str, &OsStr)],
    ) -> Self {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("{}-{label}.log", setup.namespace));
        let file = fs::File::create(&log).expect("create the operator log");
        let child = Command::new(operator_binary())
            .arg("run")
            .args(["--namespaces", &setup.namespace])
            .args(["--topic-prefix", &setup.prefix])
            .args(["--registry-database", &setup.database])
            .args(["--probe-addr", &format!("127.0.0.1:{port}")])
            .args(["--readiness-interval-secs", "1"])
            .args(["--poll-interval-secs", "1"])
            .args(["--leader-elect", "true"])
            .args(["--lease-name", &setup.lease])
            .args(["--lease-namespace", &setup.namespace])
            .args(["--log-format", "json"])
            .args(extra_args)
            .env("RUST_LOG", "info,kube_runtime=warn,rdkafka=warn")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("start the operator binary");
        Self { child, probe: format!("http://127.0.0.1:{port}"), log, http: reqwest::Client::new() }
    }

    pub fn log(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// The `/readyz` JSON, whatever its status code.
    pub async fn readyz(&self) -> Option<serde_json::Value> {
        let response = self.http.get(format!("{}/readyz", self.probe)).send().await.ok()?;
        response.json().await.ok()
    }

    pub async fn metrics(&self) -> Option<String> {
        let response = self.http.get(format!("{}/metrics", self.probe)).send().await.ok()?;
        response.text().await.ok()
    }

    /// Waits for `/readyz` to say `leader: leading`.
    pub async fn wait_leader(&self, leading: bool, timeout: Duration) {
        eventually(
            timeout,
            &format!("/readyz of {} to say leader {leading}", self.probe),
            || async move { (self.readyz().await?["leader"] == json!(leading)).then_some(()) },
        )
        .await;
    }

    /// One sample of `name` (a full series name, labels included) in `/metrics`.
    pub async fn sample(&self, series: &str) -> Option<f64> {
        let metrics = self.metrics().await?;
        metrics.lines().find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn terminate(&self) {
        crate::consumer::terminate_child(&self.child);
    }

    /// The exit status if the process has exited.
    pub fn try_exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().expect("wait for the operator")
    }

    /// Waits for the process to exit by itself.
    pub async fn exited(&mut self, timeout: Duration) -> ExitStatus {
        let status = crate::consumer::wait_exit(&mut self.child, timeout).await;
        status.unwrap_or_else(|| {
            panic!("the operator did not exit within {timeout:?}; its log:\n{}", self.log())
        })
    }
}

impl Drop for OperatorProcess {
    #[allow(clippy::print_stderr)] // the test's output is where a failure is read
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- log of the operator at {} ---\n{}", self.probe, self.log());
        }
        self.kill();
    }
}
