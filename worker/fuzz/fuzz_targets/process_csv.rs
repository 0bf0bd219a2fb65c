#![no_main]
//! Any bytes as a .csv file through the default processing step: documents or a typed
//! error, never a panic.

use libfuzzer_sys::fuzz_target;
use licenseware_crds::UploaderSpec;
use licenseware_worker::processing::{FileContext, PlainJsonDocument, process_file};

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let (dir, path) = common::write_input(data, "csv");
    let spec: UploaderSpec = serde_yaml::from_str(
        "appId: fuzz\nname: Fuzz\nacceptedFileTypes: [.csv]\n\
         processing:\n  tables:\n  - collection: Data\n    key: [k]\n    columns:\n\
         \x20   - {from: a, to: k}\n    - {from: b, to: n, type: number}\n\
         \x20   - {from: c, to: d, type: date}\n    - {from: d, to: i, type: integer}\n\
         \x20   - {from: e, to: f, type: bool}\n",
    )
    .expect("static spec");
    let context = FileContext {
        tenant_id: "t".into(),
        app_id: "fuzz".into(),
        uploader_id: "fuzz".into(),
        event_id: "e".into(),
        source_file: "input.csv".into(),
        updated_at: mongodb::bson::DateTime::from_millis(0),
    };
    let mut emitted = 0_u64;
    let _ = process_file(&spec, &context, &path, dir.path(), &mut |row| {
        emitted += 1;
        // The JSON printed straight from a row must be the stored document's JSON.
        let direct = serde_json::to_string(&row).map_err(|e| e.to_string())?;
        let document = row.into_document();
        let stored = serde_json::to_string(&PlainJsonDocument(&document)).map_err(|e| e.to_string())?;
        assert_eq!(direct, stored);
        Ok(())
    });
});
