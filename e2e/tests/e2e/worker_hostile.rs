//! Hostile input against the consumer (issue 10), on the real stack: a poison event
//! that kills the worker on every delivery, dead letters of messages near the size
//! limit or refused by the broker, clear_data and supersede in a collection another app
//! shares, file paths into another tenant's upload, credentials in `--help`, and a
//! killed worker's scratch leftovers.

use std::{
    fs,
    path::Path,
    process::Command,
    time::{Duration, Instant, SystemTime},
};

use licenseware_e2e::{
    consumer::{
        ConsumerSetup, WorkerProcess, abort_worker_binary, custom_worker_binary, header,
        stack_shared, worker_binary,
    },
    eventually,
};
use mongodb::bson::{Document, doc};
use rdkafka::{
    Message,
    message::{Header, Headers, OwnedHeaders},
};
use serde_json::{Value, json};

const WAIT: Duration = Duration::from_secs(180);

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn lines(count: usize, label: &str) -> Vec<u8> {
    (1..=count).map(|n| format!("{label} line {n}\n")).collect::<String>().into_bytes()
}

fn details(history: &Document) -> Vec<Document> {
    history
        .get_array("processing_details")
        .expect("processing_details")
        .iter()
        .filter_map(|record| record.as_document().cloned())
        .collect()
}

fn steps<'a>(history: &'a [Document], step: &str) -> Vec<&'a Document> {
    history.iter().filter(|r| r.get_str("step") == Ok(step)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_event_that_kills_the_worker_is_dead_lettered_after_max_attempts() {
    const MAX_ATTEMPTS: u32 = 3;
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-poison", 1, MAX_ATTEMPTS).await;
    let tenant = uuid();
    let (before, poison, after) = (uuid(), uuid(), uuid());
    let file = setup.write_file(&tenant, &before, "before.txt", &lines(3, "b"));
    setup.publish(&setup.event(&tenant, &before, &[file], false)).await;
    let file = setup.write_file(&tenant, &poison, "poison.txt", b"p line 1\np line 2\n#abort\n");
    setup.publish(&setup.event(&tenant, &poison, &[file], false)).await;
    // What a dying attempt may leave (whether its writer got to MongoDB before the abort
    // is a race): documents of the event, which must not outlive it.
    let leftovers: Vec<Document> = (0..3)
        .map(|n| {
            doc! {"_id": format!("{poison}/left/{n}"), "tenant_id": &tenant,
            "app_id": &setup.app_id, "uploader_id": &setup.uploader_id,
            "event_id": &poison, "text": "left by a dead attempt"}
        })
        .collect();
    let data = setup.mongo.collection::<Document>("Data");
    data.insert_many(leftovers).await.expect("insert the leftovers");
    let file = setup.write_file(&tenant, &after, "after.txt", &lines(2, "a"));
    setup.publish(&setup.event(&tenant, &after, &[file], false)).await;

    // Kubernetes' part: a worker that died is started again, a bounded number of times.
    let start = |restarts: u32| {
        let label = format!("poison-{restarts}");
        WorkerProcess::start_command(&setup, &label, abort_worker_binary(), &[], "info")
    };
    let mut restarts = 0;
    let mut worker = start(restarts);
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (committed, end) = setup.offsets().await;
        if end == 3 && committed == 3 {
            break;
        }
        if let Some(status) = worker.exit_status() {
            assert!(!status.success(), "the worker exited by itself: {status}");
            restarts += 1;
            assert!(
                restarts <= MAX_ATTEMPTS + 1,
                "a crash loop: {restarts} restarts; last log:\n{}",
                worker.log()
            );
            worker = start(restarts);
        }
        assert!(Instant::now() < deadline, "the partition did not move on; log:\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(restarts, MAX_ATTEMPTS, "one death per delivery, then the dead letter");

    // The good events around it are stored; nothing of the poison one stays.
    assert_eq!(setup.count("Data", doc! {"event_id": &before}).await, 3);
    assert_eq!(setup.count("Data", doc! {"event_id": &after}).await, 2);
    assert_eq!(setup.count("Data", doc! {"event_id": &poison}).await, 0);

    let letters = setup.messages(&setup.dlq_topic, 1, WAIT).await;
    assert_eq!(letters.len(), 1);
    let letter = &letters[0];
    assert_eq!(letter.key(), Some(poison.as_bytes()));
    assert_eq!(header(letter, "lw-error-reason").as_deref(), Some("MaxDeliveriesExceeded"));
    assert_eq!(header(letter, "lw-attempts").as_deref(), Some("3"));
    assert!(header(letter, "lw-error").unwrap_or_default().contains("none ended"));
    let payload: Value = serde_json::from_slice(letter.payload().unwrap_or_default()).unwrap();
    assert_eq!(payload["data"]["event_id"], poison.as_str());
    assert!(payload["data"].get("authorization").is_none(), "the JWT stays out: {payload}");
    assert_eq!(header(letter, "lw-redacted").as_deref(), Some("payload"));

    let history = setup.history(&tenant, &poison).await.expect("history");
    assert_eq!(history.get_str("processing_status").unwrap(), "failed");
    let records = details(&history);
    let check = steps(&records, "check_deliveries");
    assert_eq!(check.len(), 1, "{history}");
    assert_eq!(check[0].get_str("reason").unwrap(), "MaxDeliveriesExceeded");
    assert!(steps(&records, "store_lines").is_empty(), "no attempt ever ended: {history}");
    let compensated = steps(&records, "compensate_leftovers");
    assert!(!compensated.is_empty(), "{history}");
    assert!(compensated[0].get_str("success").unwrap().starts_with("deleted 3 documents"));
    let delivery = history.get_document("delivery").expect("the delivery count stays");
    assert_eq!(delivery.get_i64("attempts").ok(), Some(3), "{history}");

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stuck_processor_fails_healthz_once_the_progress_timeout_passes() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-stuck", 1, 2).await;
    let tenant = uuid();
    let (good, stuck) = (uuid(), uuid());
    let mut worker = WorkerProcess::start_command(
        &setup,
        "stuck",
        abort_worker_binary(),
        &["--progress-timeout-secs", "2"],
        "info",
    );
    // Idle with nothing to consume, for longer than the timeout: live.
    let file = setup.write_file(&tenant, &good, "good.txt", &lines(2, "g"));
    setup.publish(&setup.event(&tenant, &good, &[file], false)).await;
    setup.wait_all_committed(1, WAIT).await;
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_secs(3) {
        assert_eq!(worker.probe("/healthz").await.0, 200, "idle is live; log:\n{}", worker.log());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(worker.metric("licenseware_worker_events_done_total").await, Some(1.0));

    // An event whose processor never returns: live until the timeout, then not.
    let file = setup.write_file(&tenant, &stuck, "stuck.txt", b"s line 1\n#hang\n");
    setup.publish(&setup.event(&tenant, &stuck, &[file], false)).await;
    let published = Instant::now();
    eventually(WAIT, "/healthz to fail", || async {
        (worker.probe("/healthz").await.0 == 503).then_some(())
    })
    .await;
    assert!(published.elapsed() >= Duration::from_secs(2), "failed before the timeout");
    println!("/healthz failed {:?} after the stuck event was published", published.elapsed());
    assert_eq!(worker.probe("/readyz").await.0, 200, "stuck, but its servers answer");
    assert_eq!(worker.metric("licenseware_worker_events_done_total").await, Some(1.0));
    worker.kill();
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_of_a_huge_message_is_bounded_and_committed() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-huge", 1, 2).await;
    // A bogus tenant_id of 600 KB: the error quotes it, so the letter would be the
    // payload, the header and the error, 1.5 MB, past every size limit.
    let bogus = "x".repeat(600_000);
    let huge = setup.event(&bogus, &uuid(), &[], false);
    let payload = json!({"schema": "ProcessingEvent:1", "data": huge}).to_string();
    let big_header = "y".repeat(300_000);
    let headers = OwnedHeaders::new()
        .insert(Header { key: "tenant_id", value: Some(big_header.as_str()) })
        .insert(Header { key: "authorization", value: Some("Bearer e2e-secret-token") });
    setup.publish_raw("huge", payload.as_bytes(), Some(headers)).await;
    let tenant = uuid();
    let good = uuid();
    let file = setup.write_file(&tenant, &good, "good.txt", &lines(2, "g"));
    setup.publish(&setup.event(&tenant, &good, &[file], false)).await;

    let mut worker = WorkerProcess::start(&setup, "huge");
    setup.wait_all_committed(2, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &good}).await, 2, "the partition went on");

    let letters = setup.messages(&setup.dlq_topic, 1, WAIT).await;
    let letter = &letters[0];
    assert_eq!(letter.key(), Some(&b"huge"[..]));
    assert_eq!(header(letter, "lw-error-reason").as_deref(), Some("InvalidId"));
    let size = letter.payload().map_or(0, <[u8]>::len)
        + letter
            .headers()
            .map_or(0, |h| h.iter().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum());
    assert!(size < 64 * 1024, "the letter has {size} bytes");
    let stub: Value = serde_json::from_slice(letter.payload().unwrap_or_default()).unwrap();
    assert_eq!(stub["lw_dead_letter_stub"]["size"], payload.len());
    assert_eq!(stub["lw_dead_letter_stub"]["sha256"].as_str().map(str::len), Some(64));
    let tenant_header = header(letter, "tenant_id").expect("tenant_id kept, cut");
    assert!(
        tenant_header.ends_with("...[truncated from 300000 bytes]"),
        "{}",
        &tenant_header[1000..]
    );
    let error = header(letter, "lw-error").expect("lw-error");
    assert!(error.starts_with("tenant_id is \"xxx") && error.len() < 1200, "{} bytes", error.len());
    assert_eq!(header(letter, "lw-truncated").as_deref(), Some("tenant_id,lw-error"));
    assert_eq!(header(letter, "authorization"), None, "credentials stay out");
    assert_eq!(header(letter, "lw-redacted").as_deref(), Some("authorization"));

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_the_broker_refuses_is_sent_minimal_or_committed_without_it() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-refused", 1, 2).await;
    // A DLQ topic that takes small messages only: the bounded letter of a message with
    // ten 1 KB headers is refused, its minimal form (no original headers) is not.
    setup.limit_dlq_message_bytes(4096).await;
    let value = "z".repeat(1000);
    let names: Vec<String> = (0..10).map(|n| format!("h{n}")).collect();
    let headers = names.iter().fold(OwnedHeaders::new(), |headers, name| {
        headers.insert(Header { key: name.as_str(), value: Some(value.as_str()) })
    });
    setup.publish_raw("many-headers", b"{not json", Some(headers)).await;
    let mut worker = WorkerProcess::start(&setup, "refused");
    setup.wait_all_committed(1, WAIT).await;
    let letters = setup.messages(&setup.dlq_topic, 1, WAIT).await;
    let letter = &letters[0];
    assert_eq!(letter.key(), Some(&b"many-headers"[..]));
    assert_eq!(header(letter, "lw-error-reason").as_deref(), Some("NotJson"));
    assert_eq!(header(letter, "h0"), None, "the minimal letter: {:?}", letter.headers());

    // Smaller still: not even the minimal letter fits. Logged, committed, and the
    // partition goes on.
    setup.limit_dlq_message_bytes(128).await;
    setup.publish_raw("refused", b"{not json either", None).await;
    let tenant = uuid();
    let good = uuid();
    let file = setup.write_file(&tenant, &good, "good.txt", &lines(2, "g"));
    setup.publish(&setup.event(&tenant, &good, &[file], false)).await;
    setup.wait_all_committed(3, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &good}).await, 2);
    assert!(worker.log().contains("dead letter refused for good"), "{}", worker.log());

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clear_data_leaves_other_apps_and_uploaders_documents_in_a_shared_collection() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-clear", 1, 2).await;
    let tenant = uuid();
    let earlier = uuid();
    let file = setup.write_file(&tenant, &earlier, "earlier.txt", &lines(2, "e"));
    setup.publish(&setup.event(&tenant, &earlier, &[file], false)).await;
    // Another app's and another uploader's documents of the same tenant, in `Data`.
    let data = setup.mongo.collection::<Document>("Data");
    let theirs = [
        doc! {"_id": "other-app", "tenant_id": &tenant, "app_id": "other-app",
        "uploader_id": &setup.uploader_id, "event_id": uuid(), "text": "theirs"},
        doc! {"_id": "other-uploader", "tenant_id": &tenant, "app_id": &setup.app_id,
        "uploader_id": "other_uploader", "event_id": uuid(), "text": "theirs"},
    ];
    data.insert_many(theirs).await.expect("insert the other apps' documents");
    let clearing = uuid();
    let file = setup.write_file(&tenant, &clearing, "new.txt", &lines(1, "n"));
    setup.publish(&setup.event(&tenant, &clearing, &[file], true)).await;

    let mut worker = WorkerProcess::start(&setup, "clear");
    setup.wait_all_committed(2, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &earlier}).await, 0, "its own are cleared");
    assert_eq!(setup.count("Data", doc! {"event_id": &clearing}).await, 1);
    assert_eq!(setup.count("Data", doc! {"_id": "other-app"}).await, 1, "another app's stay");
    assert_eq!(setup.count("Data", doc! {"_id": "other-uploader"}).await, 1);

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

/// The sample app's RVTools Uploader spec, whose tables have a `key`.
fn rv_tools_spec() -> Value {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../manifests/examples/rv-tools.uploader.yaml");
    let manifest: Value =
        serde_yaml::from_str(&fs::read_to_string(path).expect("manifest")).expect("yaml");
    manifest["spec"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supersede_leaves_another_apps_documents_with_the_same_key() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::with_spec("hostile-supersede", 1, 2, rv_tools_spec()).await;
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../worker/tests/fixtures/RVTools.xlsx");
    let export = fs::read(fixture).expect("fixture");
    let tenant = uuid();
    let mut worker = WorkerProcess::start_default(&setup, "supersede");
    let first = uuid();
    let file = setup.write_file(&tenant, &first, "RVTools.xlsx", &export);
    setup.publish(&setup.event(&tenant, &first, &[file], false)).await;
    setup.wait_all_committed(1, WAIT).await;
    // Another app of the same tenant stored a document with one of these keys (and the
    // same uploader id: ids are chosen by each app) in the shared `Data`.
    let mut theirs = setup
        .find("Data", doc! {"event_id": &first})
        .await
        .into_iter()
        .find(|d| d.contains_key("_key"))
        .unwrap_or_else(|| panic!("a keyed document; log:\n{}", worker.log()));
    theirs.insert("_id", "other-app-document");
    theirs.insert("app_id", "other-app");
    theirs.insert("event_id", uuid());
    setup.mongo.collection::<Document>("Data").insert_one(theirs).await.expect("insert theirs");

    let second = uuid();
    let file = setup.write_file(&tenant, &second, "RVTools.xlsx", &export);
    setup.publish(&setup.event(&tenant, &second, &[file], false)).await;
    setup.wait_all_committed(2, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &first}).await, 0, "its own superseded");
    assert_eq!(setup.count("Data", doc! {"_id": "other-app-document"}).await, 1, "theirs stays");

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paths_outside_the_events_own_directory_are_refused() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-paths", 1, 2).await;
    let (tenant, victim) = (uuid(), uuid());
    let victims_event = uuid();
    let theirs = setup.write_file(&victim, &victims_event, "theirs.txt", b"victim secret\n");
    let (event, own_earlier) = (uuid(), uuid());
    let earlier = setup.write_file(&tenant, &own_earlier, "earlier.txt", b"earlier upload\n");
    let mine = setup.write_file(&tenant, &event, "mine.txt", &lines(1, "m"));
    let event_dir = setup.root.join(&tenant).join(&event);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&theirs, event_dir.join("link.txt")).expect("a link");
    let paths = [
        mine,
        theirs.clone(),
        format!("{tenant}/{event}/../../{victim}/{victims_event}/theirs.txt"),
        earlier,
        event_dir.join("link.txt").to_string_lossy().into_owned(),
    ];
    setup.publish(&setup.event(&tenant, &event, &paths, false)).await;

    let mut worker = WorkerProcess::start(&setup, "paths");
    setup.wait_all_committed(1, WAIT).await;
    assert_eq!(setup.count("Data", doc! {"event_id": &event}).await, 1, "only its own file");
    assert_eq!(setup.count("Data", doc! {"text": "victim secret"}).await, 0);
    assert_eq!(setup.count("Data", doc! {"text": "earlier upload"}).await, 0);
    let history = setup.history(&tenant, &event).await.expect("history");
    assert_eq!(history.get_str("processing_status").unwrap(), "success");
    let records = details(&history);
    let refused = steps(&records, "check_filepath");
    assert_eq!(refused.len(), 4, "{history}");
    for record in refused {
        assert_eq!(record.get_str("reason").unwrap(), "OutsideEventDirectory", "{record}");
        assert!(record.get_str("error").unwrap().contains("outside the event's upload directory"));
    }

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}

#[test]
fn help_does_not_print_credentials_from_the_environment() {
    let secret = "s3cret-from-the-environment";
    for (binary, args) in
        [(worker_binary(), &["consume", "--help"][..]), (custom_worker_binary(), &["--help"][..])]
    {
        let output = Command::new(&binary)
            .args(args)
            .env("LW_MONGO_URL", format!("mongodb://lw:{secret}@127.0.0.1:1/db"))
            .env("LW_REDIS_URL", format!("redis://:{secret}@127.0.0.1:1/"))
            .env("LW_KAFKA_BROKERS", format!("{secret}:9092"))
            .output()
            .expect("run --help");
        let help = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        assert!(help.contains("LW_MONGO_URL"), "{help}");
        assert!(!help.contains(secret), "{}: {help}", binary.display());
    }
}

/// Sets the modification time of `path` to an hour ago.
fn an_hour_old(path: &Path) {
    let then = SystemTime::now() - Duration::from_secs(3600);
    fs::File::open(path).and_then(|file| file.set_modified(then)).expect("age a path");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_scratch_directories_are_removed_at_start() {
    let _stack = stack_shared().await;
    let setup = ConsumerSetup::new("hostile-scratch", 1, 2).await;
    // The worker's own temporary directory: the other tests' workers share /tmp.
    let tmp = setup.root.with_file_name("tmp");
    let crashed = tmp.join("unpack-crashed");
    fs::create_dir_all(crashed.join("files")).expect("scratch");
    fs::write(crashed.join("files/a.csv"), "a\n").expect("scratch file");
    for part in ["files/a.csv", "files", ""] {
        an_hour_old(&crashed.join(part));
    }
    let live = tmp.join("unpack-live");
    fs::create_dir_all(live.join("files")).expect("scratch");

    let mut worker = WorkerProcess::start_with_env(
        &setup,
        "scratch",
        worker_binary(),
        &["consume"],
        "info",
        &[("TMPDIR", &tmp)],
    );
    eventually(WAIT, "the scratch check at start", || async {
        worker.log().contains("scratch directories checked").then_some(())
    })
    .await;
    assert!(!crashed.exists(), "the leftover is removed");
    assert!(live.exists(), "a recent one may be a live worker's");

    worker.terminate();
    assert!(worker.exited(WAIT).await.success());
    setup.cleanup().await;
}
