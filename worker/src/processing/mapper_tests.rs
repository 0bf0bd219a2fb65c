use mongodb::bson::{DateTime, doc};
use serde_json::json;

use super::*;
use crate::processing::TableOutcome;

fn context() -> FileContext {
    FileContext {
        tenant_id: "tenant-1".into(),
        app_id: "ifmp-service".into(),
        uploader_id: "rv_tools".into(),
        event_id: "event-1".into(),
        source_file: "RVTools.xlsx".into(),
        updated_at: DateTime::from_millis(1_700_000_000_000),
    }
}

fn table(mapping: serde_json::Value) -> TableMapping {
    serde_json::from_value(mapping).unwrap()
}

fn vm_table() -> TableMapping {
    table(json!({
        "collection": "vms",
        "documentType": "virtual_machine",
        "columns": [
            {"from": "VM", "to": "name"},
            {"from": "CPUs", "to": "cpus", "type": "integer"},
            {"from": "Powered On", "to": "powered_on", "type": "bool"},
        ],
    }))
}

fn header(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| (*name).to_owned()).collect()
}

fn text(value: &str) -> Cell {
    Cell::Text(value.to_owned())
}

fn document(row: MappedRow) -> MappedDocument {
    match row {
        MappedRow::Document(mapped) => mapped,
        MappedRow::Empty => panic!("row was empty"),
    }
}

#[test]
fn a_row_becomes_a_document_with_the_context_fields_first() {
    let mapper =
        TableMapper::new(0, &vm_table(), &header(&["CPUs", " VM ", "Powered On"])).unwrap();
    assert!(mapper.missing_columns().is_empty());
    let row = [Cell::Float(4.0), text(" vm-01 "), text("yes")];
    let mapped = document(mapper.map_row(&context(), 0, &row));
    assert!(mapped.failures.is_empty());
    let fields: Vec<&str> = mapped.document.keys().map(String::as_str).collect();
    assert_eq!(
        fields,
        [
            "_id",
            "tenant_id",
            "app_id",
            "uploader_id",
            "event_id",
            "source_file",
            "updated_at",
            "document_type",
            "name",
            "cpus",
            "powered_on",
        ]
    );
    let mut expected = doc! {
        "tenant_id": "tenant-1",
        "app_id": "ifmp-service",
        "uploader_id": "rv_tools",
        "event_id": "event-1",
        "source_file": "RVTools.xlsx",
        "updated_at": DateTime::from_millis(1_700_000_000_000),
        "document_type": "virtual_machine",
        "name": "vm-01",
        "cpus": 4_i64,
        "powered_on": true,
    };
    let mut actual = mapped.document.clone();
    let id = actual.remove("_id").unwrap();
    assert_eq!(id, Bson::String(document_id(&context(), 0, 0)));
    expected.remove("_id");
    assert_eq!(actual, expected);
}

#[test]
fn headers_match_exactly_and_missing_columns_are_reported() {
    let mapper = TableMapper::new(0, &vm_table(), &header(&["vm", "CPUs"])).unwrap();
    assert_eq!(mapper.missing_columns(), ["VM", "Powered On"]);
    let mapped = document(mapper.map_row(&context(), 3, &[text("vm-01"), Cell::Int(2)]));
    assert!(!mapped.document.contains_key("name"), "VM does not match vm");
    assert!(!mapped.document.contains_key("powered_on"));
    assert_eq!(mapped.document.get("cpus"), Some(&Bson::Int64(2)));
}

#[test]
fn empty_rows_are_skipped_and_short_rows_are_padded_with_nulls() {
    let mapper = TableMapper::new(0, &vm_table(), &header(&["VM", "CPUs", "Powered On"])).unwrap();
    assert_eq!(mapper.map_row(&context(), 0, &[Cell::Empty, text("  ")]), MappedRow::Empty);
    assert_eq!(mapper.map_row(&context(), 0, &[]), MappedRow::Empty);
    let mapped = document(mapper.map_row(&context(), 1, &[text("vm-02")]));
    assert_eq!(mapped.document.get("cpus"), Some(&Bson::Null));
    assert_eq!(mapped.document.get("powered_on"), Some(&Bson::Null));
}

#[test]
fn values_that_do_not_convert_are_kept_raw_and_listed() {
    let mapper = TableMapper::new(0, &vm_table(), &header(&["VM", "CPUs", "Powered On"])).unwrap();
    let row = [text("vm-03"), Cell::Float(2.5), text("perhaps")];
    let mapped = document(mapper.map_row(&context(), 0, &row));
    assert_eq!(mapped.document.get("cpus"), Some(&Bson::Double(2.5)));
    assert_eq!(mapped.document.get("powered_on"), Some(&Bson::String("perhaps".into())));
    assert_eq!(
        mapped.failures,
        [
            ConversionFailure {
                field: "cpus".into(),
                raw: "2.5".into(),
                target: MappingType::Integer
            },
            ConversionFailure {
                field: "powered_on".into(),
                raw: "perhaps".into(),
                target: MappingType::Bool,
            },
        ]
    );
}

#[test]
fn keyed_rows_share_a_key_across_events_and_not_an_id() {
    let mut mapping = vm_table();
    mapping.key = vec!["name".into()];
    let mapper = TableMapper::new(0, &mapping, &header(&["VM", "CPUs", "Powered On"])).unwrap();
    let first = document(mapper.map_row(&context(), 0, &[text("vm-01"), Cell::Int(1)])).document;
    let second_event = FileContext { event_id: "event-2".into(), ..context() };
    let again = document(mapper.map_row(&second_event, 9, &[text("vm-01"), Cell::Int(2)])).document;
    assert_eq!(first.get("_key"), again.get("_key"));
    assert_ne!(first.get("_id"), again.get("_id"));
    let key_position = first.keys().position(|field| field == "_key").unwrap();
    assert_eq!(key_position, 8, "after document_type, before the mapped fields");
    let other = document(mapper.map_row(&context(), 0, &[text("vm-02"), Cell::Int(1)])).document;
    assert_ne!(first.get("_key"), other.get("_key"));
}

#[test]
fn mappings_that_would_corrupt_documents_are_refused() {
    let reserved = table(json!({"columns": [{"from": "Tenant", "to": "tenant_id"}]}));
    let error = TableMapper::new(0, &reserved, &[]).unwrap_err();
    assert_eq!(error.reason(), "MappingReservedField");
    let duplicate = table(json!({"columns": [{"from": "A", "to": "x"}, {"from": "B", "to": "x"}]}));
    assert_eq!(check_table_mapping(&duplicate).unwrap_err().reason(), "MappingDuplicateField");
    let dollar = table(json!({"columns": [{"from": "A", "to": "$set"}]}));
    assert_eq!(check_table_mapping(&dollar).unwrap_err().reason(), "MappingInvalidFieldName");
    let key = table(json!({"key": ["VM"], "columns": [{"from": "VM", "to": "name"}]}));
    assert_eq!(check_table_mapping(&key).unwrap_err().reason(), "MappingUnknownKeyField");
}

#[test]
fn the_outcome_counts_rows_documents_and_failures() {
    let mapper = TableMapper::new(2, &vm_table(), &header(&["VM", "CPUs"])).unwrap();
    let mut outcome = TableOutcome::new(&mapper);
    let rows = [
        vec![text("a"), text("x")],
        vec![],
        vec![text("b"), text("1")],
        vec![text("c"), text("y")],
    ];
    for (number, row) in rows.iter().enumerate() {
        outcome.record(&mapper.map_row(&context(), number as u64, row));
    }
    assert_eq!(outcome.table_index, 2);
    assert_eq!(outcome.collection, "vms");
    assert_eq!((outcome.rows_read, outcome.documents, outcome.skipped_empty_rows), (4, 3, 1));
    assert_eq!(outcome.conversion_failures.get("cpus"), Some(&2));
    assert_eq!(outcome.total_conversion_failures(), 2);
    assert_eq!(outcome.failure_samples.len(), 2);
    assert_eq!(outcome.missing_columns, ["Powered On"]);
}

#[test]
fn a_row_prints_as_the_json_of_the_document_it_becomes() {
    let mut mapping = table(json!({
        "collection": "vms",
        "documentType": "virtual_machine",
        "key": ["name"],
        "columns": [
            {"from": "VM", "to": "name"},
            {"from": "CPUs", "to": "cpus", "type": "integer"},
            {"from": "Created", "to": "created", "type": "date"},
            {"from": "Cost", "to": "cost", "type": "number"},
            {"from": "Note", "to": "note"},
        ],
    }));
    let header = header(&["VM", "CPUs", "Created", "Cost", "Note"]);
    let rows = [
        vec![
            text("vm-\"1\""),
            Cell::Int(2),
            text("2023-01-06 11:59:00"),
            Cell::Float(0.1),
            text(" x "),
        ],
        vec![text("vm-2"), text("two"), Cell::Empty, text("NaN?"), Cell::Bool(true)],
    ];
    for keyed in [true, false] {
        if !keyed {
            mapping.key.clear();
            mapping.document_type = None;
        }
        let mapper = TableMapper::new(0, &mapping, &header).unwrap();
        for (number, row) in rows.iter().enumerate() {
            let context = context();
            let MappedRow::Document(mapped) =
                mapper.map_cells(&context, number as u64, row.clone())
            else {
                panic!("row {number} was empty");
            };
            let printed = serde_json::to_string(&mapped.document).unwrap();
            let via_map = mapper.map_row(&context, number as u64, row);
            let document = mapped.document.into_document();
            assert_eq!(
                via_map,
                MappedRow::Document(MappedDocument {
                    document: document.clone(),
                    failures: mapped.failures
                })
            );
            let stored =
                serde_json::to_string(&crate::processing::PlainJsonDocument(&document)).unwrap();
            assert_eq!(printed, stored, "keyed: {keyed}, row {number}");
        }
    }
}

#[test]
fn owned_cells_convert_as_borrowed_ones_do() {
    use crate::processing::{Converted, OwnedConversion, convert_cell, convert_owned_cell};
    let cells = [text(" padded "), text(""), text("  "), text("plain"), Cell::Int(3), text("x")];
    for cell in cells {
        for target in [MappingType::String, MappingType::Integer, MappingType::Bool] {
            let expected = match convert_cell(&cell, target) {
                Converted::Value(value) => OwnedConversion::Value(value),
                Converted::Raw(value) => OwnedConversion::Raw { value, text: cell.to_text() },
            };
            assert_eq!(
                convert_owned_cell(cell.clone(), target),
                expected,
                "{cell:?} as {target:?}"
            );
        }
    }
}
