//! `licenseware-worker process` on the SDK fixtures with the sample app's Uploader.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

const EVENT: &str = "0b8f3c3e-5d5e-4c55-9a3f-2c1c6a7f0001";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn process(files: &[&str]) -> (Vec<Value>, String, Option<i32>) {
    let output = Command::new(env!("CARGO_BIN_EXE_licenseware-worker"))
        .arg("process")
        .arg("--uploader")
        .arg(repo().join("manifests/examples/rv-tools.uploader.yaml"))
        .args(["--tenant", "tenant-a", "--event-id", EVENT])
        .args(files.iter().map(|f| repo().join("worker/tests/fixtures").join(f)))
        .output()
        .expect("run the worker");
    let lines = String::from_utf8(output.stdout).expect("utf-8");
    let documents = lines.lines().map(|line| serde_json::from_str(line).expect("json")).collect();
    (documents, String::from_utf8_lossy(&output.stderr).into_owned(), output.status.code())
}

#[test]
fn rv_tools_becomes_one_document_per_vm_and_per_host() {
    let (documents, stderr, code) = process(&["RVTools.xlsx"]);
    assert_eq!(code, Some(0), "{stderr}");
    let of_type =
        |kind: &str| documents.iter().filter(|d| d["document"]["document_type"] == kind).count();
    assert_eq!(of_type("virtual_machine"), 387, "tabvInfo rows");
    assert_eq!(of_type("host"), 43, "tabvHost rows");
    assert_eq!(documents.len(), 430);
    let vm = &documents[0];
    assert_eq!(vm["collection"], "Data");
    let document = &vm["document"];
    for (field, value) in [
        ("tenant_id", "tenant-a"),
        ("app_id", "ifmp-service"),
        ("uploader_id", "rv_tools"),
        ("event_id", EVENT),
        ("source_file", "RVTools.xlsx"),
    ] {
        assert_eq!(document[field], value, "{field}");
    }
    assert!(document["cpus"].is_i64(), "integer mapping: {document}");
    assert!(document["provisioned_mb"].is_f64(), "number mapping: {document}");
    assert!(document["name"].is_string());
    assert!(stderr.contains("RVTools.xlsx: 430 documents, 0 values kept raw"), "{stderr}");
}

#[test]
fn the_same_event_gives_the_same_ids() {
    let ids = |documents: Vec<Value>| -> Vec<Value> {
        documents.into_iter().map(|d| d["document"]["_id"].clone()).collect()
    };
    let documents = process(&["RVTools.xlsx"]).0;
    let keys: std::collections::BTreeSet<String> =
        documents.iter().map(|d| d["document"]["_key"].to_string()).collect();
    let first = ids(documents);
    let again = ids(process(&["RVTools.xlsx"]).0);
    assert_eq!(first, again, "redelivery must not duplicate documents");
    // Keyed tables: rows with the same key in one event share an id (the last wins).
    let unique: std::collections::BTreeSet<String> =
        first.iter().map(|id| id.as_str().expect("string id").to_owned()).collect();
    assert_eq!(unique.len(), keys.len());
}

#[test]
fn an_archive_is_unpacked_and_only_its_valid_members_are_processed() {
    let (documents, stderr, code) = process(&["zip.tar.xz"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(documents.len(), 430, "the RVTools.xlsx inside; the CSVs are not excel");
    assert!(documents.iter().all(|d| d["document"]["source_file"] == "zip.tar.xz/RVTools.xlsx"));
    assert!(
        stderr.contains(
            "zip.tar.xz/lms_detail.csv: not processed: File is not of required input type: excel"
        ),
        "{stderr}"
    );
}

#[test]
fn a_csv_against_an_excel_uploader_is_not_processed_and_nothing_is_printed() {
    let (documents, stderr, code) = process(&["lms_detail.csv"]);
    assert_eq!(code, Some(0));
    assert!(documents.is_empty());
    assert!(stderr.contains("not processed"), "{stderr}");
}
