//! The lag scaler's loop: every poll interval, one tick scales every Uploader's worker.
//!
//! The Uploader reconcile runs on change and resync only; scaling is this loop's job.
//! A tick reads the Uploaders from the controller's reflector stores and their Topics
//! and Deployments from the children's watch caches (no apiserver reads), reads the lag
//! of every consumer group in one batch ([`LagReader::read`]: the requests depend on
//! the brokers, not on the number of Uploaders), decides the replicas of each one
//! ([`scaler::decide`], pure) and writes only what changed: `spec.replicas` of the
//! Deployment and the scale figures of the status (`replicas`, `desiredReplicas`,
//! `lag`, `lastScaleTime`), both by server-side apply under the scaler's field manager
//! [`scaler::FIELD_MANAGER`]. The reconcile's status apply leaves those four fields
//! out, so the two writers never remove or revert each other's fields.
//!
//! The scaler's memory (activity and recommendations, [`ScalerState`]) lives in the
//! loop, keyed by Uploader: an Uploader gone from the store is forgotten at the next
//! tick, with its metric series.

use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use futures::{StreamExt, stream};
use k8s_openapi::{
    api::apps::v1::Deployment, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp,
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        events::{Event, EventType, Recorder},
        reflector::Store,
    },
};
use licenseware_crds::{Uploader, UploaderStatus, WorkerSpec};
use serde::Serialize;
use serde_json::json;

use super::{
    build::{self, WorkerSettings},
    children::{AppliedMemo, ChildStores, memo_key, not_owned},
    status::topic_readiness,
};
use crate::{
    controllers::{events, status as status_writer},
    scaler::{
        self, Decision, Reading, ScalerState,
        lag::{Key, LagError, LagReader},
        metrics::{ScalerMetrics, UploaderFigures},
    },
};

/// Writes of one tick in flight at once.
const WRITES_IN_FLIGHT: usize = 16;

/// The scale figures of an Uploader's status: the fields the scaler owns.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScaleStatus {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub desired_replicas: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lag: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_scale_time: Option<Time>,
}

impl ScaleStatus {
    pub fn of(status: Option<&UploaderStatus>) -> Self {
        status.map_or_else(Self::default, |s| Self {
            replicas: s.replicas,
            desired_replicas: s.desired_replicas,
            lag: s.lag,
            last_scale_time: s.last_scale_time.clone(),
        })
    }
}

/// `status` without the scaler's fields: what the reconcile applies under its own
/// field manager.
pub fn without_scale_figures(status: &UploaderStatus) -> UploaderStatus {
    UploaderStatus {
        replicas: None,
        desired_replicas: None,
        lag: None,
        last_scale_time: None,
        ..status.clone()
    }
}

/// What a tick needs of one Uploader, read from the caches.
#[derive(Debug, Clone)]
pub struct Target {
    pub uploader: Arc<Uploader>,
    /// `namespace/name`: the key of the scaler's memory.
    pub id: String,
    pub deployment: String,
    pub lag_key: Key,
    /// `spec.replicas` of the Deployment (the apiserver's default of 1 when unset).
    pub current: i32,
    /// Whether the scaler's field manager owns `spec.replicas` already.
    pub owned: bool,
    /// The cached Deployment's generation.
    pub generation: Option<i64>,
    /// Both Topics Ready: only then is the lag read.
    pub topics_ready: bool,
}

impl Target {
    fn spec(&self) -> &WorkerSpec {
        &self.uploader.spec.worker
    }
}

/// The Uploader as a scaling target, or `None` when there is nothing to scale: it is
/// being deleted, its spec is invalid or refused (the reconcile says why in its
/// status), or its worker Deployment is not (yet) in the cache or is not its own.
pub fn target(
    uploader: Arc<Uploader>,
    children: &ChildStores,
    applied: &AppliedMemo,
    settings: &WorkerSettings,
) -> Option<Target> {
    if uploader.meta().deletion_timestamp.is_some()
        || build::validate(&uploader, settings).is_err()
        || build::check_image(&uploader, settings).is_err()
    {
        return None;
    }
    let namespace = uploader.namespace().unwrap_or_default();
    let name = uploader.name_any();
    let deployment = children.deployment(&namespace, &build::worker_name(&name))?;
    if not_owned(&deployment, &uploader.uid().unwrap_or_default()).is_some() {
        return None;
    }
    let topics_ready =
        [build::events_topic_resource(&name), build::dlq_topic_resource(&name)].iter().all(
            |topic| children.topic(&namespace, topic).is_some_and(|t| topic_readiness(&t).is_ok()),
        );
    let current = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let owned = scaler_owns_replicas(&deployment, applied);
    let prefix = &settings.topic_prefix;
    Some(Target {
        id: format!("{namespace}/{name}"),
        deployment: deployment.name_any(),
        lag_key: Key {
            group: build::consumer_group(&uploader, prefix),
            topic: format!("{prefix}{}", uploader.events_topic_name()),
        },
        current,
        owned,
        generation: deployment.metadata.generation,
        topics_ready,
        uploader,
    })
}

/// What one tick does for one Uploader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The replicas to run.
    pub target: i32,
    /// `spec.replicas` to apply, when it changes. The reconcile creates the worker at
    /// `minReplicas` and keeps it there until this first changes it.
    pub apply_replicas: Option<i32>,
    /// The scale figures to write, when they differ from the status.
    pub status: Option<ScaleStatus>,
    /// This tick's decision; `None` when the lag was not read.
    pub decision: Option<Decision>,
    /// The scaler's new memory; `None` leaves it as it was.
    pub state: Option<ScalerState>,
}

/// Whether the scaler has taken `spec.replicas` of the worker `deployment`: its field
/// manager is on the object (the scaler's applies carry that field alone), or it set
/// the field since this process started and the watch cache has not shown it yet.
pub fn scaler_owns_replicas(deployment: &Deployment, applied: &AppliedMemo) -> bool {
    deployment
        .managed_fields()
        .iter()
        .any(|entry| entry.manager.as_deref() == Some(scaler::FIELD_MANAGER))
        || applied.replicas_taken(&memo_key(deployment))
}

/// Decides one Uploader's step from its lag `reading` (`None` when its Topics are not
/// Ready, so it was not read) and the scaler's memory. Pure.
///
/// Without a reading the replicas stay as the scaler set them, or a worker the scaler
/// has never scaled starts at `minReplicas`; the figures it cannot know keep their last
/// values. A reading with unknown partitions never scales in ([`scaler::decide`]); the
/// lag it reports is that of the partitions read.
pub fn plan(
    target: &Target,
    reading: Option<Result<&Reading, &LagError>>,
    previous: Option<&ScalerState>,
    stabilization: Duration,
    now: Timestamp,
) -> Step {
    let (current, owned) = (target.current, target.owned);
    // Until the scaler owns the field, the reconcile holds it at minReplicas.
    let mut replicas = if owned { current } else { target.spec().min_replicas };
    let mut decision = None;
    let mut state = None;
    if let Some(Ok(offsets)) = reading {
        let previous = previous.cloned().unwrap_or_else(|| {
            // After a restart, what the scaler set counts as a recent recommendation.
            if owned { ScalerState::seeded(current, now) } else { ScalerState::default() }
        });
        let (found, next) =
            scaler::decide(offsets, target.spec(), current, &previous, stabilization, now);
        replicas = found.desired;
        decision = Some(found);
        state = Some(next);
    }
    let old = ScaleStatus::of(target.uploader.status.as_ref());
    let scaled = replicas != current;
    let figures = ScaleStatus {
        replicas: Some(replicas),
        desired_replicas: decision.map(|d| d.desired).or(old.desired_replicas),
        lag: decision.map(|d| d.lag).or(old.lag),
        last_scale_time: if scaled { Some(Time(now)) } else { old.last_scale_time.clone() },
    };
    // Nothing to tell yet: no lag read, nothing scaled, no figures written before (a new
    // Uploader whose Topics are being created); the first reading writes them.
    let nothing_known = decision.is_none() && !scaled && old == ScaleStatus::default();
    Step {
        target: replicas,
        apply_replicas: scaled.then_some(replicas),
        status: (figures != old && !nothing_known).then_some(figures),
        decision,
        state,
    }
}

/// The scaler loop's settings and handles.
pub struct Scaler {
    pub client: Client,
    pub recorder: Recorder,
    pub lag: LagReader,
    pub metrics: Arc<ScalerMetrics>,
    pub settings: WorkerSettings,
    pub poll: Duration,
    pub stabilization: Duration,
    pub uploaders: Vec<Store<Uploader>>,
    pub children: ChildStores,
    /// The reconcile's memo of applied children: a scale is the operator's own change.
    pub applied: Arc<AppliedMemo>,
}

impl std::fmt::Debug for Scaler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scaler")
            .field("poll", &self.poll)
            .field("stabilization", &self.stabilization)
            .finish_non_exhaustive()
    }
}

/// What one tick did, for its log line.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TickReport {
    pub uploaders: usize,
    pub read: usize,
    /// Read, but with some partitions unknown.
    pub partial: usize,
    pub unreadable: usize,
    pub scaled: usize,
    pub status_writes: usize,
    pub failed_writes: usize,
}

impl Scaler {
    /// Ticks every poll interval until `shutdown`.
    pub async fn run(self, shutdown: impl std::future::Future<Output = ()>) {
        // No wait for the stores to be filled: a tick over a store still filling
        // scales fewer Uploaders, and a state forgotten that way is seeded again from
        // the replicas the scaler owns.
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(poll_secs = self.poll.as_secs(), "scaler loop started");
        let mut states: HashMap<String, ScalerState> = HashMap::new();
        let mut ticks = tokio::time::interval(self.poll);
        // A slow tick delays the next one rather than causing a burst.
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            let started = Instant::now();
            let report = self.tick(&mut states).await;
            let took = started.elapsed();
            self.metrics.observe_tick(took, report.uploaders);
            // A tick that takes a good part of the interval is worth seeing at info.
            if took > self.poll / 2 {
                tracing::info!(took_ms = took.as_millis() as u64, ?report, "slow scaler tick");
            } else {
                tracing::debug!(took_ms = took.as_millis() as u64, ?report, "scaler tick");
            }
        }
    }

    /// One tick: every Uploader of the stores, one batched lag read, the writes that
    /// change something.
    pub async fn tick(&self, states: &mut HashMap<String, ScalerState>) -> TickReport {
        let targets: Vec<Target> = self
            .uploaders
            .iter()
            .flat_map(Store::state)
            .filter_map(|uploader| target(uploader, &self.children, &self.applied, &self.settings))
            .collect();
        // Deleted (or no longer scalable) Uploaders: their memory and series go.
        let live: HashSet<&str> = targets.iter().map(|t| t.id.as_str()).collect();
        states.retain(|id, _| live.contains(id.as_str()));
        self.metrics
            .retain(|namespace, name| live.contains(format!("{namespace}/{name}").as_str()));

        let readings = self
            .lag
            .read(targets.iter().filter(|t| t.topics_ready).map(|t| t.lag_key.clone()))
            .await;
        let now = Timestamp::now();
        let mut report = TickReport { uploaders: targets.len(), ..TickReport::default() };
        let mut first_error = None;
        let mut first_unknown = None;
        let mut steps = Vec::with_capacity(targets.len());
        for target in targets {
            let reading = target.topics_ready.then(|| match readings.get(&target.lag_key) {
                Some(Ok(reading)) => Ok(reading),
                Some(Err(error)) => Err(error),
                None => Err(&LagError::Stopped),
            });
            match reading {
                Some(Ok(reading)) => {
                    report.read += 1;
                    if let Some((partition, why)) = reading.unknown.iter().next() {
                        report.partial += 1;
                        first_unknown.get_or_insert_with(|| {
                            format!("{}: partition {partition}: {why}", target.lag_key.topic)
                        });
                    }
                }
                Some(Err(error)) => {
                    report.unreadable += 1;
                    first_error.get_or_insert_with(|| error.to_string());
                }
                None => {}
            }
            let step = plan(&target, reading, states.get(&target.id), self.stabilization, now);
            if let Some(state) = step.state.clone() {
                states.insert(target.id.clone(), state);
            }
            steps.push((target, step));
        }
        if let Some(error) = first_error {
            // One line per tick, not one per Uploader: one broker down fails many reads.
            tracing::warn!(
                unreadable = report.unreadable,
                first = %error,
                "cannot read the lag of some uploaders; their replicas stay as they are"
            );
        }
        if let Some(unknown) = first_unknown {
            tracing::warn!(
                partial = report.partial,
                first = %unknown,
                "some partitions' lag is unknown; those uploaders are not scaled in"
            );
        }
        let outcomes: Vec<Written> = stream::iter(steps)
            .map(|(target, step)| self.write(target, step))
            .buffer_unordered(WRITES_IN_FLIGHT)
            .collect()
            .await;
        for written in outcomes {
            report.scaled += usize::from(written.scaled);
            report.status_writes += usize::from(written.status);
            report.failed_writes += usize::from(written.failed);
        }
        report
    }

    /// Applies one step: the replicas, then (once they are set) the status figures.
    async fn write(&self, target: Target, step: Step) -> Written {
        let uploader = &target.uploader;
        let namespace = uploader.namespace().unwrap_or_default();
        let mut written = Written::default();
        if let Some(replicas) = step.apply_replicas {
            let deployments: Api<Deployment> = Api::namespaced(self.client.clone(), &namespace);
            let body = replicas_apply(&target.deployment, replicas);
            let params = PatchParams::apply(scaler::FIELD_MANAGER).force();
            match deployments.patch(&target.deployment, &params, &Patch::Apply(&body)).await {
                Ok(applied) => {
                    let key = memo_key(&applied);
                    self.applied.take_replicas(&key);
                    self.applied.follow_generation(
                        &key,
                        target.generation,
                        applied.metadata.generation,
                    );
                }
                Err(error) => {
                    tracing::warn!(uploader = %target.id, %error, "cannot set the worker's replicas");
                    written.failed = true;
                    return written;
                }
            }
        }
        if step.target != target.current {
            written.scaled = true;
            let lag = step.decision.map_or_else(|| "unknown".to_owned(), |d| d.lag.to_string());
            tracing::info!(uploader = %target.id, from = target.current, to = step.target, %lag, "scaled the worker");
            let event = Event {
                type_: EventType::Normal,
                reason: "Scaled".to_owned(),
                note: Some(format!(
                    "Scaled Deployment {} from {} to {} replicas (lag {lag})",
                    target.deployment, target.current, step.target
                )),
                action: "Scale".to_owned(),
                secondary: Some(
                    Deployment {
                        metadata: kube::api::ObjectMeta {
                            name: Some(target.deployment.clone()),
                            namespace: Some(namespace.clone()),
                            ..Default::default()
                        },
                        ..Default::default()
                    }
                    .object_ref(&()),
                ),
            };
            events::publish(&self.recorder, &event, uploader.as_ref()).await;
        }
        if let Some(status) = &step.status {
            match status_writer::apply_as(
                &self.client,
                uploader.as_ref(),
                status,
                scaler::FIELD_MANAGER,
            )
            .await
            {
                Ok(_) => written.status = true,
                Err(error) => {
                    tracing::warn!(uploader = %target.id, %error, "cannot write the scale status");
                    written.failed = true;
                }
            }
        }
        let known = ScaleStatus::of(uploader.status.as_ref());
        self.metrics.set(
            &namespace,
            &uploader.name_any(),
            UploaderFigures {
                lag: step.decision.map_or(known.lag.unwrap_or(0), |d| d.lag),
                desired_replicas: step.decision.map_or(step.target, |d| d.desired),
                replicas: step.target,
            },
        );
        written
    }
}

/// The apply body that sets `spec.replicas` of the Deployment `name` and nothing else.
pub fn replicas_apply(name: &str, replicas: i32) -> serde_json::Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": replicas},
    })
}

/// What [`Scaler::write`] did.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    scaled: bool,
    status: bool,
    failed: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn uploader(worker: serde_json::Value, status: Option<UploaderStatus>) -> Arc<Uploader> {
        let mut uploader: Uploader = serde_json::from_value(json!({
            "apiVersion": "licenseware.io/v1alpha1", "kind": "Uploader",
            "metadata": {"name": "u", "namespace": "n", "uid": "uid-1"},
            "spec": {"appId": "a", "name": "U", "acceptedFileTypes": [".csv"], "worker": worker}
        }))
        .unwrap();
        uploader.status = status;
        Arc::new(uploader)
    }

    fn target_of(uploader: Arc<Uploader>, current: i32, owned: bool) -> Target {
        Target {
            uploader,
            id: "n/u".into(),
            deployment: "u-worker".into(),
            lag_key: Key { group: "p.a.u.worker".into(), topic: "p.a.u.events".into() },
            current,
            owned,
            generation: Some(1),
            topics_ready: true,
        }
    }

    fn lags(lags: &[i64]) -> Reading {
        lags.iter()
            .enumerate()
            .map(|(i, lag)| scaler::PartitionOffsets {
                partition: i as i32,
                low: 0,
                high: 100 + lag,
                committed: Some(100),
            })
            .collect::<Vec<_>>()
            .into()
    }

    fn scaled(replicas: i32, desired: i32, lag: i64) -> UploaderStatus {
        UploaderStatus {
            replicas: Some(replicas),
            desired_replicas: Some(desired),
            lag: Some(lag),
            ..UploaderStatus::default()
        }
    }

    #[test]
    fn a_steady_uploader_writes_nothing() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2});
        let target = target_of(uploader(worker, Some(scaled(0, 0, 0))), 0, true);
        let offsets = lags(&[0, 0, 0]);
        let step = plan(&target, Some(Ok(&offsets)), None, WINDOW, at(0));
        assert_eq!((step.target, step.apply_replicas, step.status), (0, None, None));
    }

    #[test]
    fn lag_sets_the_replicas_and_the_figures() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2});
        let target = target_of(uploader(worker, Some(scaled(0, 0, 0))), 0, true);
        let offsets = lags(&[4, 4, 3]);
        let step = plan(&target, Some(Ok(&offsets)), None, WINDOW, at(5));
        assert_eq!((step.target, step.apply_replicas), (3, Some(3)));
        let status = step.status.expect("figures changed");
        assert_eq!(
            (status.replicas, status.desired_replicas, status.lag),
            (Some(3), Some(3), Some(11))
        );
        assert_eq!(status.last_scale_time, Some(Time(at(5))));
        assert!(step.state.expect("memory").last_active.is_some());
    }

    #[test]
    fn only_the_lag_changed_writes_the_status_alone() {
        let worker = json!({"minReplicas": 1, "maxReplicas": 3, "lagPerReplica": 10});
        let target = target_of(uploader(worker, Some(scaled(1, 1, 0))), 1, true);
        let offsets = lags(&[3]);
        let step = plan(&target, Some(Ok(&offsets)), None, WINDOW, at(0));
        assert_eq!(step.apply_replicas, None);
        assert_eq!(step.status.and_then(|s| s.lag), Some(3));
    }

    #[test]
    fn a_worker_never_scaled_starts_at_min_replicas_without_a_reading() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3});
        let mut target = target_of(uploader(worker, None), 1, false);
        target.topics_ready = false;
        let step = plan(&target, None, None, WINDOW, at(0));
        assert_eq!((step.target, step.apply_replicas), (0, Some(0)));
        let status = step.status.expect("first figures");
        assert_eq!((status.replicas, status.desired_replicas, status.lag), (Some(0), None, None));
        // A count that is already right is left to the reconcile, which holds it.
        let target = target_of(uploader(json!({"minReplicas": 1}), None), 1, false);
        assert_eq!(plan(&target, None, None, WINDOW, at(0)).apply_replicas, None);
    }

    #[test]
    fn the_first_scale_of_a_worker_the_reconcile_created_takes_the_replicas() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2});
        let target = target_of(uploader(worker, None), 0, false);
        let idle = plan(&target, Some(Ok(&lags(&[0, 0, 0]))), None, WINDOW, at(0));
        assert_eq!((idle.target, idle.apply_replicas), (0, None), "at minReplicas: no write");
        let busy = plan(&target, Some(Ok(&lags(&[2, 2, 0]))), None, WINDOW, at(0));
        assert_eq!((busy.target, busy.apply_replicas), (2, Some(2)));
    }

    #[test]
    fn a_worker_handed_over_at_min_replicas_waits_for_a_reading_to_write_figures() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2});
        let mut target = target_of(uploader(worker, None), 0, true);
        target.topics_ready = false;
        let step = plan(&target, None, None, WINDOW, at(0));
        assert_eq!((step.target, step.apply_replicas, step.status), (0, None, None));
        let step = plan(&target, Some(Ok(&lags(&[0, 0, 0]))), None, WINDOW, at(0));
        let status = step.status.expect("the first reading's figures");
        assert_eq!(
            (status.replicas, status.desired_replicas, status.lag),
            (Some(0), Some(0), Some(0))
        );
    }

    #[test]
    fn a_reading_with_unknown_partitions_keeps_a_running_worker() {
        let worker =
            json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2, "cooldownSeconds": 0});
        let target = target_of(uploader(worker, Some(scaled(2, 2, 0))), 2, true);
        let mut reading = lags(&[0, 0]);
        reading.unknown.insert(2, "its leader (broker 3) did not answer".into());
        let step = plan(&target, Some(Ok(&reading)), None, WINDOW, at(0));
        assert_eq!((step.target, step.apply_replicas), (2, None));
        assert_eq!(step.decision.map(|d| d.unknown_partitions), Some(1));
        // The same lag with every partition read: the idle worker goes to zero.
        let step = plan(&target, Some(Ok(&lags(&[0, 0, 0]))), None, WINDOW, at(0));
        assert_eq!((step.target, step.apply_replicas), (0, Some(0)));
    }

    #[test]
    fn an_unreadable_lag_keeps_the_replicas_and_the_last_figures() {
        let worker = json!({"minReplicas": 0, "maxReplicas": 3, "lagPerReplica": 2});
        let target = target_of(uploader(worker, Some(scaled(2, 2, 9))), 2, true);
        let error = LagError::NoPartitions("p.a.u.events".into());
        let step = plan(&target, Some(Err(&error)), None, WINDOW, at(0));
        assert_eq!(
            (step.target, step.apply_replicas, step.status, step.state),
            (2, None, None, None)
        );
    }

    #[test]
    fn the_memory_of_the_previous_tick_holds_a_scale_down() {
        let worker = json!({"minReplicas": 1, "maxReplicas": 3, "lagPerReplica": 1});
        let target = target_of(uploader(worker, Some(scaled(3, 3, 3))), 3, true);
        let high = lags(&[1, 1, 1]);
        let first = plan(&target, Some(Ok(&high)), None, WINDOW, at(0));
        let low = lags(&[0, 0, 0]);
        let held = plan(&target, Some(Ok(&low)), first.state.as_ref(), WINDOW, at(10));
        assert_eq!((held.target, held.apply_replicas), (3, None), "stabilization window");
    }

    #[test]
    fn the_reconcile_leaves_the_scalers_fields_out() {
        let status = UploaderStatus { topic_name: Some("t".into()), ..scaled(2, 2, 9) };
        let body = serde_json::to_value(without_scale_figures(&status)).unwrap();
        assert_eq!(body, json!({"topicName": "t"}));
        let figures = serde_json::to_value(ScaleStatus::of(Some(&status))).unwrap();
        assert_eq!(figures, json!({"replicas": 2, "desiredReplicas": 2, "lag": 9}));
    }
}
