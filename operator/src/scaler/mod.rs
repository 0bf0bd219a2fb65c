//! The lag scaler: how many worker replicas an uploader needs, from the lag of its
//! consumer group on its events topic.
//!
//! [`decide`] is the whole policy as a pure function, modelled on KEDA's Kafka scaler
//! (`pkg/scalers/kafka_scaler.go`) plus the HPA it drives:
//!
//! - Lag of a partition = high watermark − committed offset. A partition without a
//!   committed offset counts its whole backlog (high − low), like KEDA with
//!   `offsetResetPolicy: earliest`, which is what the worker does (`auto.offset.reset`
//!   earliest). Unlike KEDA (kedacore/keda#7936), records already deleted by retention
//!   (below the low watermark) are not counted: a partition's lag is capped at its
//!   backlog, and it is never negative.
//! - Total lag = the sum over partitions. The replicas it asks for,
//!   `ceil(lag / lagPerReplica)`, are capped at the partition count (KEDA's default,
//!   without `allowIdleConsumers`): a consumer group never gives one partition to two
//!   members, so more replicas than partitions would idle.
//! - Activation: with `minReplicas: 0`, the worker goes from 0 to 1+ only when the lag
//!   is strictly greater than `activationLag`. With `minReplicas >= 1` activation is
//!   ignored, as in KEDA.
//! - Scale to zero: only after `cooldownSeconds` without activity (KEDA's
//!   `cooldownPeriod`). A fresh scaler (new uploader, or after an operator restart) has
//!   no record of activity, so an idle worker may go to zero at once (KEDA's
//!   `initialCooldownPeriod: 0`).
//! - Scale-down stabilization: between 1 and N, the replicas asked for are the highest
//!   recommendation of the last `stabilization` window (the HPA's
//!   `scaleDown.stabilizationWindowSeconds`, default 300 s). Scale-up is immediate. The
//!   cooldown alone governs the step to zero, as the KEDA operator (not the HPA) does it.
//! - Bounds: the result is always within `[minReplicas, maxReplicas]`; `minReplicas`
//!   wins over the partition cap, because the user asked for it explicitly.
//!
//! - Unknown partitions: a partition whose offsets could not be read (its leader down
//!   or refusing, an OffsetFetch error) may hide any lag, so a reading with one never
//!   scales in nor to zero: a running worker keeps at least its replicas, and they
//!   count as a recommendation of the stabilization window. The known lag is a lower
//!   bound of the real one, so it may still scale out (and activate a worker at zero).
//!
//! Not modelled: the HPA's 10 % tolerance and its scale-up rate policies, KEDA's
//! `excludePersistentLag`, `limitToPartitionsWithLag` and fallback. When the lag cannot
//! be read the caller keeps the current replicas (no fallback to zero, kedacore/keda#4098).

pub mod lag;
pub mod metrics;

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use k8s_openapi::jiff::Timestamp;
use licenseware_crds::WorkerSpec;

/// The field manager the scaler applies `spec.replicas` of worker Deployments with.
/// The controller's own manager sets replicas only when it creates the Deployment, and
/// hands the field to this manager in the same reconcile, so the two never fight, and
/// `kubectl get deploy -o yaml --show-managed-fields` shows who scales the worker.
pub const FIELD_MANAGER: &str = "licenseware-operator/scaler";

/// Offsets of one partition of the events topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionOffsets {
    pub partition: i32,
    /// Low watermark: the oldest record still in the log.
    pub low: i64,
    /// High watermark: the offset the next record will get.
    pub high: i64,
    /// The consumer group's committed offset; `None` when it never committed.
    pub committed: Option<i64>,
}

impl PartitionOffsets {
    /// Records of this partition the group has not consumed yet, between 0 and the
    /// partition's backlog (high − low).
    pub fn lag(&self) -> i64 {
        let backlog = (self.high - self.low).max(0);
        match self.committed {
            // KEDA offsetResetPolicy=earliest: everything still in the log.
            None => backlog,
            Some(committed) => (self.high - committed).clamp(0, backlog),
        }
    }
}

/// What one read found of a consumer group on a topic: the offsets of the partitions
/// read, and those that could not be read, with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reading {
    /// In partition order.
    pub offsets: Vec<PartitionOffsets>,
    /// Partition → why its offsets are unknown.
    pub unknown: BTreeMap<i32, String>,
}

impl From<Vec<PartitionOffsets>> for Reading {
    fn from(offsets: Vec<PartitionOffsets>) -> Self {
        Self { offsets, unknown: BTreeMap::new() }
    }
}

/// What the scaler remembers about one uploader between polls.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScalerState {
    /// When the lag was last above the activation threshold.
    pub last_active: Option<Timestamp>,
    /// Recent recommendations (time, replicas), oldest first, for the scale-down
    /// stabilization window.
    pub recommendations: VecDeque<(Timestamp, i32)>,
}

impl ScalerState {
    /// The state of a scaler that finds the worker at `replicas` without having scaled
    /// it itself (operator restart): the current count counts as a recent
    /// recommendation, so a restart never shrinks the worker before the window passes.
    pub fn seeded(replicas: i32, now: Timestamp) -> Self {
        let mut state = Self::default();
        if replicas > 0 {
            state.recommendations.push_back((now, replicas));
        }
        state
    }
}

/// What one poll concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Total lag over the partitions read.
    pub lag: i64,
    /// Partitions whose offsets could not be read: while any is, no scale-in.
    pub unknown_partitions: i32,
    /// Partitions with lag.
    pub partitions_with_lag: i32,
    /// Lag above the activation threshold.
    pub active: bool,
    /// Replicas the lag alone asks for, before cooldown and stabilization.
    pub recommended: i32,
    /// Replicas to run.
    pub desired: i32,
}

/// Decides the replicas of a worker now running `current` replicas, from the offsets of
/// every partition of its events topic. Pure: the clock and the memory of previous
/// polls are inputs, the new memory an output.
pub fn decide(
    reading: &Reading,
    spec: &WorkerSpec,
    current: i32,
    previous: &ScalerState,
    stabilization: Duration,
    now: Timestamp,
) -> (Decision, ScalerState) {
    let offsets = &reading.offsets;
    let lag: i64 = offsets.iter().map(PartitionOffsets::lag).sum();
    let partitions_with_lag =
        i32::try_from(offsets.iter().filter(|p| p.lag() > 0).count()).unwrap_or(i32::MAX);
    let unknown_partitions = i32::try_from(reading.unknown.len()).unwrap_or(i32::MAX);
    let partitions =
        i32::try_from(offsets.len()).unwrap_or(i32::MAX).saturating_add(unknown_partitions);
    // Unknown partitions may hide lag: a running worker is not shrunk on their account.
    let holding = unknown_partitions > 0 && current > 0;
    let min = spec.min_replicas.max(0);
    let max = spec.max_replicas.max(min);
    let per_replica = spec.lag_per_replica.max(1);
    // ceil(lag / lagPerReplica), capped at the partition count.
    let by_lag = lag.max(0).unsigned_abs().div_ceil(per_replica.unsigned_abs());
    let by_lag = i32::try_from(by_lag).unwrap_or(i32::MAX).min(partitions);
    let active = lag > spec.activation_lag;

    let mut state = previous.clone();
    if active {
        state.last_active = Some(now);
    }
    let cooled_down = state.last_active.is_none_or(|last| {
        now.as_second().saturating_sub(last.as_second()) >= spec.cooldown_seconds
    });
    let recommended = if min == 0 && !active && (current == 0 || cooled_down) && !holding {
        // Idle: stay at zero, or go there once the cooldown has passed.
        0
    } else {
        // Running (or activated): the HPA part, never below one replica.
        by_lag.clamp(min.max(1), max)
    };

    let desired = if recommended == 0 {
        // The step to zero is the cooldown's business; the window starts afresh.
        state.recommendations.clear();
        0
    } else {
        let horizon = now.as_second().saturating_sub(stabilization.as_secs() as i64);
        state.recommendations.retain(|(at, _)| at.as_second() > horizon);
        // Held replicas count as recommended, so that once every partition is read
        // again the window still stabilizes a scale-down from them.
        let kept = if holding { recommended.max(current) } else { recommended };
        state.recommendations.push_back((now, kept));
        let highest = state.recommendations.iter().map(|(_, r)| *r).max().unwrap_or(recommended);
        highest.clamp(min.max(1), max)
    };
    (Decision { lag, unknown_partitions, partitions_with_lag, active, recommended, desired }, state)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_secs(300);

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + seconds).unwrap()
    }

    fn spec(min: i32, max: i32, per_replica: i64, activation: i64, cooldown: i64) -> WorkerSpec {
        WorkerSpec {
            min_replicas: min,
            max_replicas: max,
            lag_per_replica: per_replica,
            activation_lag: activation,
            cooldown_seconds: cooldown,
            ..WorkerSpec::default()
        }
    }

    /// `partitions` partitions with these lags, committed offsets on every one.
    fn lags(lags: &[i64]) -> Reading {
        lags.iter()
            .enumerate()
            .map(|(i, lag)| PartitionOffsets {
                partition: i as i32,
                low: 0,
                high: 100 + lag,
                committed: Some(100),
            })
            .collect::<Vec<_>>()
            .into()
    }

    /// These lags, and `unknown` partitions after them that could not be read.
    fn partial(known: &[i64], unknown: i32) -> Reading {
        let mut reading = lags(known);
        let first = known.len() as i32;
        for partition in first..first + unknown {
            reading.unknown.insert(partition, "leader down".into());
        }
        reading
    }

    fn desired(offsets: &Reading, spec: &WorkerSpec, current: i32) -> i32 {
        decide(offsets, spec, current, &ScalerState::default(), WINDOW, at(0)).0.desired
    }

    #[test]
    fn partition_lag_follows_keda_earliest_and_never_counts_deleted_records() {
        let p = |low, high, committed| PartitionOffsets { partition: 0, low, high, committed };
        assert_eq!(p(0, 10, Some(4)).lag(), 6);
        // No committed offset: the whole backlog (KEDA offsetResetPolicy=earliest).
        assert_eq!(p(3, 10, None).lag(), 7);
        // Committed below the low watermark: only what retention kept counts.
        assert_eq!(p(8, 10, Some(2)).lag(), 2);
        // Committed ahead of the high watermark (a truncated log): no lag, not negative.
        assert_eq!(p(0, 10, Some(12)).lag(), 0);
        assert_eq!(p(0, 0, None).lag(), 0);
    }

    #[test]
    fn replicas_are_ceil_of_lag_per_replica_within_min_and_max() {
        let s = spec(1, 10, 5, 0, 300);
        assert_eq!(desired(&lags(&[11, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), &s, 1), 3);
        assert_eq!(desired(&lags(&[5, 0, 0, 0]), &s, 1), 1);
        assert_eq!(desired(&lags(&[0, 0, 0, 0]), &s, 1), 1, "minReplicas");
        let s = spec(0, 4, 1, 0, 300);
        assert_eq!(desired(&lags(&[100, 100, 100, 100, 100, 100]), &s, 0), 4, "maxReplicas");
    }

    #[test]
    fn replicas_are_capped_at_the_partition_count() {
        // KEDA's worked example: 12 partitions, lagThreshold 100, lag 5000 → 12, not 50.
        let mut offsets = lags(&[0; 12]);
        offsets.offsets[0].high += 5000;
        let s = spec(0, 100, 100, 0, 300);
        let (decision, _) = decide(&offsets, &s, 0, &ScalerState::default(), WINDOW, at(0));
        assert_eq!((decision.lag, decision.partitions_with_lag, decision.desired), (5000, 1, 12));
        // minReplicas still wins over the cap.
        assert_eq!(desired(&lags(&[50, 50]), &spec(3, 10, 1, 0, 300), 3), 3);
    }

    #[test]
    fn uncommitted_partitions_count_their_backlog() {
        let offsets = Reading::from(vec![
            PartitionOffsets { partition: 0, low: 0, high: 7, committed: None },
            PartitionOffsets { partition: 1, low: 0, high: 3, committed: None },
        ]);
        let (decision, _) =
            decide(&offsets, &spec(0, 10, 5, 0, 300), 0, &ScalerState::default(), WINDOW, at(0));
        assert_eq!((decision.lag, decision.desired), (10, 2));
    }

    #[test]
    fn activation_from_zero_needs_lag_strictly_above_the_threshold() {
        let s = spec(0, 10, 5, 3, 300);
        assert_eq!(desired(&lags(&[3]), &s, 0), 0, "3 is not > 3");
        assert_eq!(desired(&lags(&[4]), &s, 0), 1);
        // With minReplicas >= 1 activation plays no part.
        assert_eq!(desired(&lags(&[0]), &spec(1, 10, 5, 3, 300), 1), 1);
    }

    #[test]
    fn scales_to_zero_only_after_the_cooldown_without_activity() {
        let s = spec(0, 10, 5, 0, 60);
        let (first, state) =
            decide(&lags(&[12, 0, 0]), &s, 0, &ScalerState::default(), WINDOW, at(0));
        assert_eq!((first.active, first.desired), (true, 3));
        assert_eq!(state.last_active, Some(at(0)));
        // Lag drained at 10 s: one replica stays until the cooldown passes...
        let (idle, state) = decide(&lags(&[0]), &s, 3, &state, Duration::ZERO, at(10));
        assert_eq!((idle.active, idle.desired), (false, 1));
        let (still, state) = decide(&lags(&[0]), &s, 1, &state, Duration::ZERO, at(59));
        assert_eq!(still.desired, 1);
        // ...then it goes to zero, and stays there while idle.
        let (zero, state) = decide(&lags(&[0]), &s, 1, &state, Duration::ZERO, at(60));
        assert_eq!(zero.desired, 0);
        assert!(state.recommendations.is_empty());
        let (stays, _) = decide(&lags(&[0]), &s, 0, &state, WINDOW, at(61));
        assert_eq!(stays.desired, 0);
    }

    #[test]
    fn lag_below_activation_does_not_keep_a_worker_past_the_cooldown() {
        let s = spec(0, 10, 5, 10, 60);
        let state = ScalerState { last_active: Some(at(0)), ..ScalerState::default() };
        let (decision, _) = decide(&lags(&[4]), &s, 1, &state, Duration::ZERO, at(30));
        assert_eq!(decision.desired, 1, "in cooldown");
        let (decision, _) = decide(&lags(&[4]), &s, 1, &state, Duration::ZERO, at(60));
        assert_eq!((decision.lag, decision.desired), (4, 0));
    }

    #[test]
    fn fresh_scaler_lets_an_idle_worker_go_to_zero_at_once() {
        // A new Deployment gets the apiserver's default of one replica.
        assert_eq!(desired(&lags(&[0, 0]), &spec(0, 10, 5, 0, 300), 1), 0);
    }

    #[test]
    fn scale_down_keeps_the_highest_recommendation_of_the_window() {
        let s = spec(1, 10, 1, 0, 0);
        let window = Duration::from_secs(100);
        let (up, state) =
            decide(&lags(&[3, 3, 3, 3, 3, 3]), &s, 1, &ScalerState::default(), window, at(0));
        assert_eq!(up.desired, 6, "scale-up is immediate");
        let (held, state) = decide(&lags(&[1, 1, 0, 0, 0, 0]), &s, 6, &state, window, at(50));
        assert_eq!((held.recommended, held.desired), (2, 6));
        let (down, state) = decide(&lags(&[1, 1, 0, 0, 0, 0]), &s, 6, &state, window, at(100));
        assert_eq!((down.recommended, down.desired), (2, 2));
        // An up-step inside the window is taken at once.
        let (again, _) = decide(&lags(&[1, 1, 1, 1, 0, 0]), &s, 2, &state, window, at(101));
        assert_eq!(again.desired, 4);
    }

    #[test]
    fn seeded_state_holds_replicas_found_after_a_restart() {
        let s = spec(1, 10, 5, 0, 0);
        let state = ScalerState::seeded(4, at(0));
        let (decision, _) = decide(&lags(&[0]), &s, 4, &state, WINDOW, at(10));
        assert_eq!(decision.desired, 4);
        let (decision, _) = decide(&lags(&[0]), &s, 4, &state, WINDOW, at(301));
        assert_eq!(decision.desired, 1);
    }

    #[test]
    fn lower_max_replicas_applies_at_once() {
        let state = ScalerState::seeded(8, at(0));
        let (decision, _) =
            decide(&lags(&[50; 10]), &spec(0, 3, 5, 0, 60), 8, &state, WINDOW, at(1));
        assert_eq!(decision.desired, 3);
    }

    #[test]
    fn unknown_partitions_never_scale_in_nor_to_zero() {
        // Idle on the partitions read, cooled down, fresh memory: with every partition
        // read this goes to zero at once (see fresh_scaler_lets_an_idle_worker_go_to_zero_at_once).
        let s = spec(0, 10, 5, 0, 0);
        let (decision, state) =
            decide(&partial(&[0, 0], 1), &s, 3, &ScalerState::default(), WINDOW, at(0));
        assert_eq!((decision.unknown_partitions, decision.desired), (1, 3));
        // Held replicas count in the window: once every partition is read again, the
        // scale-down waits for the window.
        let (back, _) = decide(&lags(&[0, 0, 0]), &s, 3, &state, WINDOW, at(10));
        assert_eq!((back.recommended, back.desired), (0, 0), "the step to zero is the cooldown's");
        let s = spec(1, 10, 5, 0, 0);
        let (held, state) =
            decide(&partial(&[0, 0], 1), &s, 3, &ScalerState::default(), WINDOW, at(0));
        assert_eq!(held.desired, 3);
        let (back, _) = decide(&lags(&[0, 0, 0]), &s, 3, &state, WINDOW, at(10));
        assert_eq!((back.recommended, back.desired), (1, 3), "stabilized from the held 3");
    }

    #[test]
    fn the_known_lag_of_a_partial_reading_may_scale_out() {
        let s = spec(0, 10, 5, 0, 300);
        // The unknown partitions count in the partition cap.
        let (decision, _) =
            decide(&partial(&[30], 3), &s, 1, &ScalerState::default(), WINDOW, at(0));
        assert_eq!((decision.lag, decision.desired), (30, 4));
        // A worker at zero activates on the known lag, and stays at zero without it.
        assert_eq!(desired(&partial(&[7], 1), &s, 0), 2);
        assert_eq!(desired(&partial(&[0], 1), &s, 0), 0);
        // maxReplicas still bounds held replicas.
        assert_eq!(desired(&partial(&[0], 1), &spec(0, 2, 5, 0, 300), 5), 2);
    }
}
