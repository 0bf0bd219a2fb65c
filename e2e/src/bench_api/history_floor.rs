//! The store's own rate for `/validation`'s history records: the same documents
//! inserted straight with the MongoDB driver, in the API's batches (its own `BATCH` and
//! `IN_FLIGHT`), for as long as a wrk run. Every `/validation` writes one record, so on this stack
//! the store's insert rate bounds the route whatever the API does.

use std::time::{Duration, Instant};

use mongodb::{
    Database,
    bson::{Document, doc, oid::ObjectId},
};

use licenseware_worker::serve::history::{BATCH, IN_FLIGHT};

use super::load::Sample;

fn record(tenant: &str, app: &str, uploader: &str, filenames: &[String]) -> Document {
    let entries: Vec<Document> = filenames
        .iter()
        .map(|name| doc! {"status": "success", "filename": name, "message": "Filename is valid"})
        .collect();
    doc! {
        "_id": ObjectId::new(),
        "tenant_id": tenant,
        "event_id": uuid::Uuid::new_v4().to_string(),
        "app_id": app,
        "uploader_id": uploader,
        "filename_validation": entries,
        "filename_validation_updated_at": "2026-12-05T00:00:00.000000",
    }
}

/// Inserts records into `database`'s `ProcessingHistory` for `duration`, where the API
/// writes its own (they stay: the run drops the database at its end); the rate as a
/// [`Sample`] (records per second in `rps`).
pub async fn run(
    database: &Database,
    app: &str,
    uploader: &str,
    filenames: &[String],
    duration: Duration,
) -> anyhow::Result<Sample> {
    let collection = database.collection::<Document>("ProcessingHistory");
    let tenant = format!("floor-{}", uuid::Uuid::new_v4().simple());
    let started = Instant::now();
    let deadline = started + duration;
    let writers = (0..IN_FLIGHT).map(|_| {
        let (collection, tenant) = (collection.clone(), tenant.clone());
        async move {
            let mut written = 0_u64;
            while Instant::now() < deadline {
                let batch: Vec<Document> =
                    (0..BATCH).map(|_| record(&tenant, app, uploader, filenames)).collect();
                collection.insert_many(batch).await?;
                written += BATCH as u64;
            }
            anyhow::Ok(written)
        }
    });
    let written: u64 = futures::future::try_join_all(writers).await?.into_iter().sum();
    let seconds = started.elapsed().as_secs_f64();
    Ok(Sample {
        requests: written,
        rps: written as f64 / seconds,
        p50_ms: 0.0,
        p99_ms: 0.0,
        errors: 0,
        failed: 0,
        rss_kib: 0,
        cpu_us_per_request: 0.0,
    })
}
