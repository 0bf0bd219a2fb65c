//! Containment in `licenseware-worker consume`: a file that exhausts its reader's limit,
//! uploaded among good ones, costs only its own event; the worker process never dies.

use std::time::Duration;

use licenseware_e2e::consumer::{
    ConsumerSetup, WorkerProcess, header, stack_shared, worker_binary,
};
use mongodb::bson::doc;
use rdkafka::message::Message;
use serde_json::json;

const WAIT: Duration = Duration::from_secs(180);

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn devices(rows: usize, tag: &str) -> Vec<u8> {
    let mut text = String::from("device,os\n");
    for row in 0..rows {
        text.push_str(&format!("{tag}-{row}-{},linux\n", "x".repeat(60)));
    }
    text.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_file_among_good_ones_is_contained_and_dead_lettered() {
    let _stack = stack_shared().await;
    let spec = json!({
        "name": "Devices",
        "acceptedFileTypes": [".csv"],
        "validation": {"filenameEndswith": [".csv"], "requiredColumns": [["device", "os"]]},
        "processing": {"tables": [{"collection": "Data", "columns": [
            {"from": "device", "to": "device"}, {"from": "os", "to": "os"}]}]},
    });
    let setup = ConsumerSetup::with_spec("contained", 1, 3, spec).await;
    let tenant = uuid();
    // 1 MiB of documents per file: the poison file's 30,000 rows are past it, the good
    // files' 20 rows far below.
    let args = ["consume", "--file-output-mib", "1"];
    let mut worker =
        WorkerProcess::start_command(&setup, "contained", worker_binary(), &args, "info");

    let mut events = Vec::new();
    for (index, rows) in [20, 30_000, 20, 20].into_iter().enumerate() {
        let event = uuid();
        let name = format!("devices-{index}.csv");
        let file = setup.write_file(&tenant, &event, &name, &devices(rows, &format!("e{index}")));
        setup.publish(&setup.event(&tenant, &event, &[file], false)).await;
        events.push(event);
    }
    setup.wait_all_committed(4, WAIT).await;

    for good in [0, 2, 3] {
        let stored = setup.count("Data", doc! {"event_id": &events[good]}).await;
        assert_eq!(stored, 20, "event {good}; log:\n{}", worker.log());
    }
    // The poison event's documents written before its reader was stopped are gone.
    assert_eq!(setup.count("Data", doc! {"event_id": &events[1]}).await, 0);
    let letters = setup.messages(&setup.dlq_topic, 1, WAIT).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.key(), Some(events[1].as_bytes()));
    let error = header(letter, "lw-error").unwrap_or_default();
    assert!(error.contains("File produces more than 1 MiB of output"), "{:?}", letter.headers());
    let history = setup.history(&tenant, &events[1]).await.expect("history");
    assert_eq!(history.get_str("processing_status").unwrap(), "failed", "{history}");
    assert!(history.to_string().contains("FileOutputLimit"), "{history}");

    // The same worker process throughout: it drains and exits 0 on SIGTERM.
    worker.terminate();
    assert!(worker.exited(WAIT).await.success(), "log:\n{}", worker.log());
    setup.cleanup().await;
}
