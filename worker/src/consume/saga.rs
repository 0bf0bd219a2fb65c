//! One event, as a saga. FerretDB v1 has no transactions, so:
//! - every document carries the event's {tenant_id, event_id}: compensation deletes
//!   them, and runs first too (a crashed earlier delivery may have left some);
//! - what the event replaces (documents of the same `_key`) or clears (clear_data) is
//!   deleted only once all of the event's own documents are in, so a failed event
//!   loses nothing and readers never see a window with no data;
//! - a failed attempt is compensated, then retried after a backoff, up to maxAttempts;
//!   an unreachable MongoDB is waited for without using up attempts.

use std::collections::BTreeMap;

use mongodb::bson::Bson;

use super::{
    context::{AttemptError, Context, event_ids},
    delivery::{self, Decision},
    envelope::ProcessingEvent,
    files::{self, FileFailure},
    history::{self, EventIds, StepOutcome, StepSubject, StepTimer},
    paths,
    processor::FileJob,
    status::Status,
    store::{self, StoreError},
};

/// The dead letter's reason for an event whose every attempt killed the worker.
pub const MAX_DELIVERIES_EXCEEDED: &str = "MaxDeliveriesExceeded";

/// How an event ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventOutcome {
    /// Its documents and history are stored: commit.
    Done { attempts: u32 },
    /// Failed for good: dead-letter it, then commit.
    DeadLetter { error: String, reason: String, attempts: u32 },
    /// Shutdown came while waiting: do not commit, the event is redelivered.
    Interrupted,
}

/// Processes one event, delivered from `source` (see [`delivery::source`]), to its
/// outcome: status `running`, attempts, history, status `idle` (whatever the outcome).
pub async fn run_event(ctx: &Context, event: &ProcessingEvent, source: &str) -> EventOutcome {
    let ids = event_ids(event);
    ctx.set_status(event, Status::Running).await;
    let timer = StepTimer::start();
    let start = history::start_update(&ids, &timer.started_at());
    let started = ctx.ensure("history", || store::history_start(&ctx.db, &ids, start.clone()));
    let outcome = match started.await {
        Err(None) => EventOutcome::Interrupted,
        // Refused (it should not happen): whether an earlier run left documents is
        // unknown, so compensate as if one did.
        Err(Some(error)) => {
            tracing::error!(%error, "history start refused");
            attempts(ctx, event, &ids, true, source).await
        }
        Ok(start) => {
            match delivery::decide(start.delivery.as_ref(), source, ctx.settings.max_attempts) {
                Decision::Exhausted { attempts } => exhausted(ctx, &ids, attempts).await,
                Decision::Process => attempts(ctx, event, &ids, start.earlier_run, source).await,
            }
        }
    };
    let (label, attempts) = match &outcome {
        EventOutcome::Done { attempts } => ("success", *attempts),
        EventOutcome::DeadLetter { attempts, .. } => ("failed", *attempts),
        EventOutcome::Interrupted => ("interrupted", 0),
    };
    let end = history::end_update(&ids, &timer, label, attempts);
    let outcome = match (
        outcome,
        ctx.ensure("history", || store::history_upsert(&ctx.db, &ids, end.clone())).await,
    ) {
        // The outcome is stored only with its history: without it, redo the event.
        (_, Err(None)) => EventOutcome::Interrupted,
        (outcome, Err(Some(error))) => {
            tracing::error!(%error, "history end refused");
            outcome
        }
        (outcome, Ok(())) => outcome,
    };
    // Whatever the outcome, the tenant's data may have changed (documents written,
    // replaced, cleared or compensated): cached component data of it goes stale
    // before the UI hears `idle` and asks again.
    ctx.status.bump_data_generation(&event.tenant_id, &event.app_id).await;
    ctx.set_status(event, Status::Idle).await;
    outcome
}

/// maxAttempts attempts of the message started and none ended: each delivery killed
/// the worker (an abort, an out-of-memory kill). What the last one left is deleted and
/// the event dead-lettered without another attempt.
async fn exhausted(ctx: &Context, ids: &EventIds, attempts: u32) -> EventOutcome {
    let timer = StepTimer::start();
    if let Err(outcome) = compensate(ctx, ids, attempts, "compensate_leftovers").await {
        return outcome;
    }
    let error = format!(
        "{attempts} attempts of this event started and none ended (maxAttempts is {}): the \
         worker stopped during each, e.g. killed for memory or aborted; not processed again",
        ctx.settings.max_attempts
    );
    let outcome = StepOutcome::Failed {
        error: error.clone(),
        traceback: error.clone(),
        reason: MAX_DELIVERIES_EXCEEDED.to_owned(),
    };
    if let Err(AttemptError::Interrupted) = ctx
        .record(ids, timer.finish(ctx.subject("check_deliveries", None, attempts), outcome))
        .await
    {
        return EventOutcome::Interrupted;
    }
    EventOutcome::DeadLetter { error, reason: MAX_DELIVERIES_EXCEEDED.to_owned(), attempts }
}

/// Counts the next attempt in the history before it starts. A count MongoDB refuses
/// (it should not happen) is logged and the attempt numbered in memory: the poison
/// limit is lost for this delivery, not the event.
async fn begin_attempt(
    ctx: &Context,
    ids: &EventIds,
    source: &str,
    previous: u32,
) -> Result<u32, EventOutcome> {
    ctx.metrics.progressed();
    match ctx.ensure("delivery count", || store::begin_attempt(&ctx.db, ids, source)).await {
        Ok(attempt) => Ok(attempt.max(previous + 1)),
        Err(None) => Err(EventOutcome::Interrupted),
        Err(Some(error)) => {
            tracing::error!(%error, "delivery count refused; counting in memory");
            Ok(previous + 1)
        }
    }
}

async fn attempts(
    ctx: &Context,
    event: &ProcessingEvent,
    ids: &EventIds,
    earlier_run: bool,
    source: &str,
) -> EventOutcome {
    // A run that crashed (or whose commit was lost) may have left documents. Skipped on
    // a first delivery: documents are only written after the run's start is recorded.
    if earlier_run && let Err(outcome) = compensate(ctx, ids, 1, "compensate_leftovers").await {
        return outcome;
    }
    let mut attempt = match begin_attempt(ctx, ids, source, 0).await {
        Ok(attempt) => attempt,
        Err(outcome) => return outcome,
    };
    let mut outages = 0;
    loop {
        let (error, reason, permanent) = match attempt_once(ctx, event, ids, attempt).await {
            Ok(()) => return EventOutcome::Done { attempts: attempt },
            Err(AttemptError::Interrupted) => {
                // Stopped on purpose (SIGTERM): this attempt does not count.
                if let Err(error) = store::refund_attempt(&ctx.db, ids, source).await {
                    tracing::warn!(%error, "cannot uncount the interrupted attempt");
                }
                return EventOutcome::Interrupted;
            }
            Err(AttemptError::Unavailable(error)) => {
                outages += 1;
                tracing::warn!(event_id = ids.event_id, error, outages, "MongoDB unavailable");
                if let Err(outcome) = compensate(ctx, ids, attempt, "compensate").await {
                    return outcome;
                }
                if !ctx.shutdown.sleep(ctx.settings.backoff.delay(outages)).await {
                    return EventOutcome::Interrupted;
                }
                continue;
            }
            Err(AttemptError::Failed { error, reason, permanent }) => (error, reason, permanent),
        };
        tracing::warn!(event_id = ids.event_id, attempt, error, reason, "attempt failed");
        if let Err(outcome) = compensate(ctx, ids, attempt, "compensate").await {
            return outcome;
        }
        if permanent || attempt >= ctx.settings.max_attempts {
            return EventOutcome::DeadLetter { error, reason, attempts: attempt };
        }
        if !ctx.shutdown.sleep(ctx.settings.backoff.delay(attempt)).await {
            return EventOutcome::Interrupted;
        }
        ctx.metrics.retried();
        attempt = match begin_attempt(ctx, ids, source, attempt).await {
            Ok(attempt) => attempt,
            Err(outcome) => return outcome,
        };
    }
}

/// Deletes the event's documents; `Err` carries the event's outcome when that is
/// impossible.
async fn compensate(
    ctx: &Context,
    ids: &EventIds,
    attempt: u32,
    step: &str,
) -> Result<(), EventOutcome> {
    let timer = StepTimer::start();
    let deleted = ctx
        .ensure("compensation", || store::delete_event_documents(&ctx.db, &ctx.collections, ids))
        .await;
    let outcome = match deleted {
        Ok(0) if step == "compensate_leftovers" => return Ok(()),
        Ok(count) => StepOutcome::success(format!("deleted {count} documents of this event")),
        Err(None) => return Err(EventOutcome::Interrupted),
        Err(Some(error)) => {
            let record = timer.finish(
                ctx.subject(step, None, attempt),
                StepOutcome::failed(&error, error.reason()),
            );
            let _ = ctx.record(ids, record).await;
            // Documents of the event may remain: say so in the dead letter.
            return Err(EventOutcome::DeadLetter {
                error: format!("compensation failed, documents of this event may remain: {error}"),
                reason: "CompensationFailed".to_owned(),
                attempts: attempt,
            });
        }
    };
    ctx.record(ids, timer.finish(ctx.subject(step, None, attempt), outcome))
        .await
        .map_err(|_| EventOutcome::Interrupted)
}

async fn attempt_once(
    ctx: &Context,
    event: &ProcessingEvent,
    ids: &EventIds,
    attempt: u32,
) -> Result<(), AttemptError> {
    let mut accepted = 0;
    let mut keys: BTreeMap<String, Vec<Bson>> = BTreeMap::new();
    for (file_index, filepath) in event.filepaths.iter().enumerate() {
        let timer = StepTimer::start();
        let root = &ctx.settings.upload_root;
        let path = match paths::check(root, &ids.tenant_id, &ids.event_id, filepath) {
            Ok(path) => path,
            Err(error) => {
                // A refused path is the file's fault, not the event's: the other files
                // go on and no retry can fix it.
                let subject = ctx.subject("check_filepath", Some(filepath), attempt);
                ctx.record(ids, timer.finish(subject, StepOutcome::failed(&error, error.reason())))
                    .await?;
                continue;
            }
        };
        let job = FileJob {
            tenant_id: ids.tenant_id.clone(),
            app_id: ids.app_id.clone(),
            uploader_id: ids.uploader_id.clone(),
            event_id: ids.event_id.clone(),
            path,
            filepath: filepath.clone(),
            filename: paths::filename(filepath),
            file_index,
            spec: ctx.settings.manifest.spec.clone(),
        };
        let subject = StepSubject {
            source: ctx.processor.source(),
            ..ctx.subject(ctx.processor.step(), Some(filepath), attempt)
        };
        match files::process(&ctx.db, &ctx.processor, job, ids).await {
            Ok((report, written)) => {
                ctx.metrics.documents_written(written.total());
                let outcome = match &report.rejected {
                    Some(reason) => StepOutcome::Failed {
                        error: reason.clone(),
                        traceback: reason.clone(),
                        reason: "FileRejected".to_owned(),
                    },
                    None => {
                        accepted += 1;
                        for (collection, mut more) in written.keys.clone() {
                            keys.entry(collection).or_default().append(&mut more);
                        }
                        let message = report
                            .message
                            .clone()
                            .unwrap_or_else(|| format!("{} documents", written.total()));
                        StepOutcome::Success { message, warnings: report.warnings.clone() }
                    }
                };
                ctx.record(ids, timer.finish(subject, outcome)).await?;
            }
            Err(failure) => {
                let (outcome, error) = match failure {
                    FileFailure::Unavailable { error, traceback } => {
                        let reason = "MongoUnavailable".to_owned();
                        let outcome =
                            StepOutcome::Failed { error: error.clone(), traceback, reason };
                        (outcome, AttemptError::Unavailable(error))
                    }
                    FileFailure::Failed { error, traceback, reason, permanent } => {
                        let outcome = StepOutcome::Failed {
                            error: error.clone(),
                            traceback,
                            reason: reason.clone(),
                        };
                        (outcome, AttemptError::Failed { error, reason, permanent })
                    }
                };
                ctx.record(ids, timer.finish(subject, outcome)).await?;
                return Err(error);
            }
        }
    }
    finish(ctx, event, ids, attempt, accepted, &keys).await
}

/// Once every document of the event is in: delete what it supersedes and, with
/// clear_data and at least one accepted file, the tenant's older data. A MongoDB outage
/// is waited out in place rather than failing the attempt, whose compensation would
/// delete the new data after part of the old is gone.
async fn finish(
    ctx: &Context,
    event: &ProcessingEvent,
    ids: &EventIds,
    attempt: u32,
    accepted: usize,
    keys: &BTreeMap<String, Vec<Bson>>,
) -> Result<(), AttemptError> {
    let refused = |error: StoreError| AttemptError::Failed {
        error: error.to_string(),
        reason: error.reason().to_owned(),
        permanent: false,
    };
    if !keys.is_empty() {
        let timer = StepTimer::start();
        let keys: Vec<(String, Vec<Bson>)> = keys.clone().into_iter().collect();
        let deleted = ctx
            .ensure("supersede", || store::delete_superseded(&ctx.db, &keys, ids))
            .await
            .map_err(|error| error.map_or(AttemptError::Interrupted, refused))?;
        let message = format!("deleted {deleted} documents replaced by this event's keys");
        ctx.record(
            ids,
            timer.finish(ctx.subject("supersede", None, attempt), StepOutcome::success(message)),
        )
        .await?;
    }
    if event.clear_data && accepted > 0 {
        let timer = StepTimer::start();
        let collections = &ctx.settings.manifest.spec.used_collections;
        let deleted = ctx
            .ensure("clear_data", || store::clear_other_events(&ctx.db, collections, ids))
            .await
            .map_err(|error| error.map_or(AttemptError::Interrupted, refused))?;
        let message = format!("deleted {deleted} documents of earlier uploads");
        ctx.record(
            ids,
            timer.finish(ctx.subject("clear_data", None, attempt), StepOutcome::success(message)),
        )
        .await?;
    }
    Ok(())
}
