//! Leader election on a `coordination.k8s.io/v1` Lease, as client-go's leaderelection
//! does it: the holder renews the Lease every [`Timing::renew_every`]; a candidate takes
//! it over when it is free, or when it has not changed for its `leaseDurationSeconds`
//! as measured on the candidate's own clock (so clock skew between nodes does not
//! matter). Every write is a replace carrying the resourceVersion that was read, so two
//! candidates never both win: the slower one gets a conflict.
//!
//! A leader that cannot renew within [`Timing::renew_deadline`], or that sees another
//! holder, has lost. Each request on the Lease is bounded by what is left of that
//! deadline (the kube client has no read timeout of its own: a stalled apiserver
//! would hold a request forever), and the deadline is shorter than the Lease's
//! duration, so a leader stops before anyone else may take over. Then [`Leadership::lost`] completes and the operator exits, so its pod
//! restarts and campaigns again. On shutdown the leader releases the Lease (empty
//! holder) so a successor takes over at once instead of waiting for it to expire.

use std::time::{Duration, Instant};

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{Api, Client, ResourceExt, api::PostParams};
use tokio::{
    sync::{oneshot, watch},
    task::JoinHandle,
};

use crate::config::LeaderConfig;

/// How long a release may take on shutdown.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(5);

/// client-go's defaults: a Lease lasts 15 s, the leader renews it every 5 s here
/// (well within client-go's 10 s renew deadline) and candidates retry every 2 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    pub lease_duration: Duration,
    pub renew_every: Duration,
    pub renew_deadline: Duration,
    pub retry_every: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            renew_deadline: Duration::from_secs(10),
            retry_every: Duration::from_secs(2),
        }
    }
}

impl Timing {
    /// The timing of `--lease-*-secs`, checked: `0 < renew_every < renew_deadline <
    /// lease_duration`. A leader stops once its renew deadline passes, which must come
    /// strictly before the Lease expires for the other candidates, or two would lead.
    pub fn from_config(config: &LeaderConfig) -> Result<Self, String> {
        let timing = Self {
            lease_duration: Duration::from_secs(config.lease_duration_secs),
            renew_every: Duration::from_secs(config.renew_every_secs),
            renew_deadline: Duration::from_secs(config.renew_deadline_secs),
            retry_every: Duration::from_secs(config.retry_every_secs),
        };
        timing.validate()?;
        Ok(timing)
    }

    fn validate(&self) -> Result<(), String> {
        if self.renew_every.is_zero() || self.retry_every.is_zero() {
            return Err("--lease-renew-every-secs and --lease-retry-every-secs must be at least 1"
                .to_owned());
        }
        if self.renew_every >= self.renew_deadline {
            return Err(format!(
                "--lease-renew-every-secs ({}) must be shorter than \
                 --lease-renew-deadline-secs ({})",
                self.renew_every.as_secs(),
                self.renew_deadline.as_secs()
            ));
        }
        if self.renew_deadline >= self.lease_duration {
            return Err(format!(
                "--lease-renew-deadline-secs ({}) must be shorter than --lease-duration-secs \
                 ({}): a leader must stop before others may take the Lease",
                self.renew_deadline.as_secs(),
                self.lease_duration.as_secs()
            ));
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return Err("--lease-duration-secs does not fit the Lease".to_owned());
        }
        Ok(())
    }
}

/// What is left of the renew deadline at `now` for a leader whose last successful
/// write to the Lease started at `held_since`; `None` once it has passed. Measured
/// from the start of the write, not its end: the apiserver may have stored it any
/// time after the request left, and others count the Lease's life from then.
pub fn renew_time_left(
    held_since: Instant,
    now: Instant,
    renew_deadline: Duration,
) -> Option<Duration> {
    let left = (held_since + renew_deadline).saturating_duration_since(now);
    (!left.is_zero()).then_some(left)
}

/// What a candidate knows of the Lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observed<'a> {
    /// `spec.holderIdentity`; `None` or empty when released.
    pub holder: Option<&'a str>,
    /// `spec.leaseDurationSeconds`.
    pub lease_duration: Duration,
    /// How long the Lease has been unchanged, on this candidate's clock.
    pub unchanged_for: Duration,
}

/// What to do with the Lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// There is no Lease: create it, held by us.
    Create,
    /// We hold it: renew it.
    Renew,
    /// It is free or expired: take it over.
    TakeOver,
    /// Someone else holds it and renews it: wait.
    Wait { holder: String },
}

/// The pure election rule.
pub fn decide(lease: Option<Observed<'_>>, identity: &str) -> Decision {
    let Some(lease) = lease else { return Decision::Create };
    match lease.holder.filter(|holder| !holder.is_empty()) {
        None => Decision::TakeOver,
        Some(holder) if holder == identity => Decision::Renew,
        Some(_) if lease.unchanged_for >= lease.lease_duration => Decision::TakeOver,
        Some(holder) => Decision::Wait { holder: holder.to_owned() },
    }
}

/// This process's side of the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Campaigning: someone else leads, or nobody yet.
    Candidate,
    /// Holding the Lease: the controllers may run.
    Leader,
    /// Was the leader and is no more: the controllers must stop.
    Lost,
}

/// The identity of this process: the pod name (or host name) and a random suffix, so
/// a restarted process is a new candidate, as with client-go.
pub fn identity() -> String {
    let host = std::env::var("POD_NAME")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "licenseware-operator".to_owned());
    let suffix = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}_{}", &suffix[..8])
}

/// A running election, or none (every process leads).
#[derive(Debug)]
pub struct Leadership {
    role: watch::Receiver<Role>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Leadership {
    /// Without election: the leader from the start, never lost.
    pub fn disabled() -> Self {
        let (_, role) = watch::channel(Role::Leader);
        Self { role, stop: None, task: None }
    }

    /// Starts campaigning for the Lease of `config`.
    pub fn campaign(client: Client, config: &LeaderConfig, timing: Timing) -> Self {
        let namespace = config.lease_namespace();
        let elector = Elector {
            api: Api::namespaced(client, &namespace),
            name: config.lease_name.clone(),
            identity: identity(),
            timing,
            observed: None,
        };
        tracing::info!(
            lease = %elector.name,
            namespace = %namespace,
            identity = %elector.identity,
            "campaigning for leadership"
        );
        let (role_tx, role) = watch::channel(Role::Candidate);
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(elector.run(role_tx, stopped));
        Self { role, stop: Some(stop), task: Some(task) }
    }

    /// The current role, for the probes and metrics.
    pub fn role(&self) -> watch::Receiver<Role> {
        self.role.clone()
    }

    /// Completes once this process leads.
    pub async fn acquired(&self) {
        let mut role = self.role.clone();
        // An error means the elector is gone, which only `release` causes.
        let _ = role.wait_for(|role| *role == Role::Leader).await;
    }

    /// Completes once leadership is lost; never without election.
    pub async fn lost(&self) {
        let mut role = self.role.clone();
        if role.wait_for(|role| *role == Role::Lost).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stops campaigning and, when leading, gives the Lease up.
    pub async fn release(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take()
            && tokio::time::timeout(RELEASE_TIMEOUT, task).await.is_err()
        {
            tracing::warn!("the Lease was not released in time");
        }
    }
}

/// The outcome of one attempt on the Lease.
#[derive(Debug)]
enum Attempt {
    Held,
    HeldBy(String),
    /// Someone wrote the Lease between our read and our write.
    Conflict,
}

struct Elector {
    api: Api<Lease>,
    name: String,
    identity: String,
    timing: Timing,
    /// The resourceVersion last read and when it was first seen.
    observed: Option<(String, Instant)>,
}

impl Elector {
    async fn run(mut self, role: watch::Sender<Role>, mut stop: oneshot::Receiver<()>) {
        // Campaign. An attempt that hangs (a stalled apiserver) is given up after the
        // renew deadline: one that succeeded later would leave us holding the Lease
        // with less time left than a leader should have.
        let mut wait = Duration::ZERO;
        let mut held_since = loop {
            tokio::select! {
                _ = &mut stop => return,
                () = tokio::time::sleep(wait) => {}
            }
            let started = Instant::now();
            match tokio::time::timeout(self.timing.renew_deadline, self.attempt()).await {
                Ok(Ok(Attempt::Held)) => break started,
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    tracing::debug!(%holder, "another process leads")
                }
                Ok(Ok(Attempt::Conflict)) => tracing::debug!("lost a race for the Lease"),
                Ok(Err(error)) => tracing::warn!(%error, "cannot read or write the Lease"),
                Err(_) => tracing::warn!(
                    timeout_secs = self.timing.renew_deadline.as_secs(),
                    "the apiserver did not answer about the Lease in time"
                ),
            }
            wait = self.timing.retry_every;
        };
        tracing::info!(lease = %self.name, identity = %self.identity, "became the leader");
        role.send_replace(Role::Leader);
        // Lead: renew until stopped, or until the renew deadline passes. Every attempt
        // is bounded by what is left of the deadline, so a request that hangs cannot
        // keep us leading after the Lease may have expired for the others.
        let mut wait = self.timing.renew_every;
        loop {
            let deadline = held_since + self.timing.renew_deadline;
            let next = (Instant::now() + wait).min(deadline);
            tokio::select! {
                _ = &mut stop => {
                    self.release().await;
                    return;
                }
                () = tokio::time::sleep_until(next.into()) => {}
            }
            let started = Instant::now();
            let Some(left) = renew_time_left(held_since, started, self.timing.renew_deadline)
            else {
                self.deadline_passed();
                break;
            };
            match tokio::time::timeout(left, self.attempt()).await {
                Ok(Ok(Attempt::Held)) => {
                    held_since = started;
                    wait = self.timing.renew_every;
                    continue;
                }
                Ok(Ok(Attempt::HeldBy(holder))) => {
                    tracing::error!(%holder, "the Lease was taken over: leadership lost");
                    break;
                }
                Ok(Ok(Attempt::Conflict)) => tracing::warn!("conflict while renewing the Lease"),
                Ok(Err(error)) => tracing::warn!(%error, "cannot renew the Lease"),
                Err(_) => {
                    self.deadline_passed();
                    break;
                }
            }
            wait = self.timing.retry_every;
        }
        role.send_replace(Role::Lost);
    }

    fn deadline_passed(&self) {
        tracing::error!(
            deadline_secs = self.timing.renew_deadline.as_secs(),
            lease_duration_secs = self.timing.lease_duration.as_secs(),
            "the Lease was not renewed within the renew deadline: leadership lost"
        );
    }

    /// Reads the Lease and creates, renews or takes it over when [`decide`] says so.
    async fn attempt(&mut self) -> Result<Attempt, kube::Error> {
        let now = Instant::now();
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            return self.create().await;
        };
        let version = lease.resource_version().unwrap_or_default();
        let since = match &self.observed {
            Some((seen, since)) if *seen == version => *since,
            _ => now,
        };
        self.observed = Some((version, since));
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let observed = Observed {
            holder: spec.holder_identity.as_deref(),
            lease_duration: spec
                .lease_duration_seconds
                .and_then(|secs| u64::try_from(secs).ok())
                .map_or(self.timing.lease_duration, Duration::from_secs),
            unchanged_for: now.saturating_duration_since(since),
        };
        let stamp = Some(MicroTime(Timestamp::now()));
        match decide(Some(observed), &self.identity) {
            Decision::Wait { holder } => return Ok(Attempt::HeldBy(holder)),
            Decision::Renew => spec.renew_time = stamp,
            Decision::TakeOver | Decision::Create => {
                spec.holder_identity = Some(self.identity.clone());
                spec.lease_duration_seconds = Some(self.duration_secs());
                spec.acquire_time = stamp.clone();
                spec.renew_time = stamp;
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
        }
        match self.api.replace(&self.name, &PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    async fn create(&self) -> Result<Attempt, kube::Error> {
        let stamp = Some(MicroTime(Timestamp::now()));
        let lease = Lease {
            metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.duration_secs()),
                acquire_time: stamp.clone(),
                renew_time: stamp,
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        match self.api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(Attempt::Held),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(Attempt::Conflict),
            Err(error) => Err(error),
        }
    }

    /// Gives the Lease up if we still hold it, as client-go's `ReleaseOnCancel`: no
    /// holder and a one-second duration.
    async fn release(&self) {
        let released = async {
            let Some(mut lease) = self.api.get_opt(&self.name).await? else { return Ok(false) };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
                return Ok(false);
            }
            spec.holder_identity = None;
            spec.lease_duration_seconds = Some(1);
            spec.renew_time = Some(MicroTime(Timestamp::now()));
            self.api.replace(&self.name, &PostParams::default(), &lease).await.map(|_| true)
        };
        match released.await {
            Ok(true) => tracing::info!(lease = %self.name, "released the Lease"),
            Ok(false) => {}
            Err(error) => tracing::warn!(%error, "cannot release the Lease"),
        }
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.timing.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ME: &str = "pod-a_1234";

    fn held_by(holder: &str, unchanged_secs: u64) -> Observed<'_> {
        Observed {
            holder: Some(holder),
            lease_duration: Duration::from_secs(15),
            unchanged_for: Duration::from_secs(unchanged_secs),
        }
    }

    #[test]
    fn a_missing_lease_is_created() {
        assert_eq!(decide(None, ME), Decision::Create);
    }

    #[test]
    fn ours_is_renewed_even_when_it_looks_expired() {
        assert_eq!(decide(Some(held_by(ME, 0)), ME), Decision::Renew);
        assert_eq!(decide(Some(held_by(ME, 60)), ME), Decision::Renew);
    }

    #[test]
    fn a_released_lease_is_taken_at_once() {
        let released = Observed { holder: None, ..held_by("", 0) };
        assert_eq!(decide(Some(released), ME), Decision::TakeOver);
        assert_eq!(decide(Some(held_by("", 0)), ME), Decision::TakeOver);
    }

    #[test]
    fn another_holder_is_waited_for_until_the_lease_expires() {
        assert_eq!(
            decide(Some(held_by("pod-b_5678", 14)), ME),
            Decision::Wait { holder: "pod-b_5678".to_owned() }
        );
        assert_eq!(decide(Some(held_by("pod-b_5678", 15)), ME), Decision::TakeOver);
        let short = Observed { lease_duration: Duration::from_secs(1), ..held_by("pod-b", 2) };
        assert_eq!(decide(Some(short), ME), Decision::TakeOver);
    }

    #[test]
    fn renew_time_left_counts_from_the_start_of_the_last_write() {
        let held_since = Instant::now();
        let deadline = Duration::from_secs(10);
        let at = |secs: u64| held_since + Duration::from_secs(secs);
        assert_eq!(renew_time_left(held_since, held_since, deadline), Some(deadline));
        assert_eq!(renew_time_left(held_since, at(7), deadline), Some(Duration::from_secs(3)));
        assert_eq!(renew_time_left(held_since, at(10), deadline), None);
        assert_eq!(renew_time_left(held_since, at(60), deadline), None);
    }

    #[test]
    fn the_renew_deadline_comes_before_the_lease_expires() {
        let config = |duration, deadline, every| LeaderConfig {
            lease_duration_secs: duration,
            renew_deadline_secs: deadline,
            renew_every_secs: every,
            ..LeaderConfig::default()
        };
        assert_eq!(Timing::from_config(&LeaderConfig::default()), Ok(Timing::default()));
        assert!(Timing::from_config(&config(4, 3, 1)).is_ok());
        let equal = Timing::from_config(&config(10, 10, 5)).expect_err("deadline = duration");
        assert!(equal.contains("--lease-renew-deadline-secs (10)"), "{equal}");
        assert!(Timing::from_config(&config(10, 12, 5)).is_err());
        assert!(Timing::from_config(&config(15, 10, 10)).is_err(), "renews at the deadline");
        assert!(Timing::from_config(&config(15, 10, 0)).is_err());
        let retry = LeaderConfig { retry_every_secs: 0, ..LeaderConfig::default() };
        assert!(Timing::from_config(&retry).is_err());
        assert!(Timing::from_config(&config(u64::MAX, 10, 5)).is_err());
    }

    #[test]
    fn identities_differ_per_process() {
        assert_ne!(identity(), identity());
    }
}
