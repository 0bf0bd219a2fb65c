//! `licenseware-worker consume` with the sample app's RVTools Uploader: its declarative
//! pipeline (validation, readers, `processing.tables`) on the real stack, through the
//! same runtime the custom worker tests exercise.

use std::{collections::BTreeSet, path::PathBuf, time::Duration};

use licenseware_e2e::consumer::{ConsumerSetup, WorkerProcess, stack_shared};
use mongodb::bson::{Document, doc};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(180);

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn fixture(name: &str) -> Vec<u8> {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../worker/tests/fixtures").join(name);
    std::fs::read(path).expect("fixture")
}

/// The sample app's Uploader spec (manifests/examples/rv-tools.uploader.yaml).
fn rv_tools_spec() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../manifests/examples/rv-tools.uploader.yaml");
    let manifest: Value =
        serde_yaml::from_str(&std::fs::read_to_string(path).expect("manifest")).expect("yaml");
    manifest["spec"].clone()
}

fn keys(documents: &[Document]) -> BTreeSet<String> {
    documents.iter().filter_map(|d| d.get_str("_key").ok().map(str::to_owned)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rv_tools_uploads_become_documents_superseded_by_the_next_upload() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::with_spec("consume-rv", 1, 2, rv_tools_spec()).await;
    let tenant = uuid();
    let mut worker = WorkerProcess::start_default(&setup, "rv");

    // First upload: every VM (tabvInfo) and host (tabvHost) becomes a document.
    let first = uuid();
    let file = setup.write_file(&tenant, &first, "RVTools.xlsx", &fixture("RVTools.xlsx"));
    setup.publish(&setup.event(&tenant, &first, &[file], false)).await;
    setup.wait_all_committed(1, WAIT).await;
    let stored = setup.find("Data", doc! {"event_id": &first}).await;
    let hosts = stored.iter().filter(|d| d.get_str("document_type") == Ok("host")).count();
    assert_eq!(hosts, 43, "tabvHost rows; log:\n{}", worker.log());
    assert_eq!(stored.len(), keys(&stored).len(), "one document per key");
    assert!(stored.len() > 300, "tabvInfo rows: {}", stored.len());
    let vm =
        stored.iter().find(|d| d.get_str("document_type") == Ok("virtual_machine")).expect("a VM");
    assert!(vm.get_i64("cpus").is_ok() || vm.get_i32("cpus").is_ok(), "integer mapping: {vm}");
    assert_eq!(vm.get_str("source_file").unwrap(), "RVTools.xlsx");
    assert_eq!(vm.get_str("app_id").unwrap(), setup.app_id);
    let history = setup.history(&tenant, &first).await.expect("history");
    assert_eq!(history.get_str("processing_status").unwrap(), "success", "{history}");
    // The probes: the worker is ready, live, and its metrics count the event.
    assert_eq!(worker.metric("licenseware_worker_events_done_total").await, Some(1.0));
    assert_eq!(worker.metric("licenseware_worker_events_failed_total").await, Some(0.0));
    let written = worker.metric("licenseware_worker_documents_written_total").await;
    assert!(written.is_some_and(|n| n >= stored.len() as f64), "documents written: {written:?}");
    assert_eq!(worker.metric("licenseware_worker_processing_seconds_count").await, Some(1.0));
    let (status, readyz) = worker.probe("/readyz").await;
    assert_eq!(status, 200, "{readyz}");
    for check in ["kafka", "mongodb", "redis"] {
        assert!(readyz.contains(&format!("\"name\":\"{check}\",\"ready\":true")), "{readyz}");
    }
    assert_eq!(worker.probe("/healthz").await.0, 200);

    // The same export again: the new event's documents replace the old ones (same keys).
    let second = uuid();
    let file = setup.write_file(&tenant, &second, "rvtools-again.xlsx", &fixture("RVTools.xlsx"));
    setup.publish(&setup.event(&tenant, &second, &[file], false)).await;
    setup.wait_all_committed(2, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &first}).await, 0, "superseded");
    assert_eq!(setup.count("Data", doc! {"event_id": &second}).await, stored.len() as u64);

    // A CSV is not an RVTools export: rejected, and clear_data then deletes nothing.
    let third = uuid();
    let file = setup.write_file(&tenant, &third, "rvtools.csv", &fixture("lms_detail.csv"));
    setup.publish(&setup.event(&tenant, &third, &[file], true)).await;
    setup.wait_all_committed(3, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &third}).await, 0);
    assert_eq!(
        setup.count("Data", doc! {"tenant_id": &tenant}).await,
        stored.len() as u64,
        "clear_data only once a file is valid"
    );
    let history = setup.history(&tenant, &third).await.expect("history");
    assert!(history.to_string().contains("File is not of required input type"), "{history}");

    // An archive holding the export, with clear_data: its documents replace the tenant's.
    let fourth = uuid();
    let file = setup.write_file(&tenant, &fourth, "rvtools.tar.xz", &fixture("zip.tar.xz"));
    setup.publish(&setup.event(&tenant, &fourth, &[file], true)).await;
    setup.wait_all_committed(4, WAIT).await;
    let from_archive = setup.find("Data", doc! {"event_id": &fourth}).await;
    assert_eq!(from_archive.len(), stored.len(), "log:\n{}", worker.log());
    assert!(
        from_archive.iter().all(|d| d.get_str("source_file") == Ok("rvtools.tar.xz/RVTools.xlsx"))
    );
    assert_eq!(setup.count("Data", doc! {"tenant_id": &tenant}).await, stored.len() as u64);

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}
