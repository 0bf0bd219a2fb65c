use serde_json::{Value, json};

use super::*;
use crate::ComponentType;

fn attrs(component_type: ComponentType, spec: Value) -> Result<Value, String> {
    let map = spec.as_object().cloned().unwrap_or_default();
    ComponentAttributes::from_spec(component_type, &map).map(|a| {
        let value = serde_json::to_value(&a).unwrap();
        // What is written reads back as the same attributes.
        assert_eq!(ComponentAttributes::from_value(component_type, value.clone()).unwrap(), a);
        value
    })
}

#[test]
fn attributes_get_the_sdk_builders_defaults_and_drop_unknown_keys() {
    assert_eq!(
        attrs(
            ComponentType::Summary,
            json!({"series": [{"value_key": "number_of_devices", "extra": 1},
                              {"value_key": "cpus", "value_description": "vCPUs", "icon": "CpuIcon"}],
                   "unknown": true})
        )
        .unwrap(),
        json!({"series": [
            {"value_key": "number_of_devices", "value_description": "Number Of Devices", "icon": null},
            {"value_key": "cpus", "value_description": "vCPUs", "icon": "CpuIcon"},
        ]})
    );
    assert_eq!(
        attrs(
            ComponentType::Pie,
            json!({"series": [{"label_key": "os"}, {"value_key": "count", "icon": "x"}]})
        )
        .unwrap(),
        json!({"series": [
            {"label_key": "os", "label_description": "Os"},
            {"value_key": "count", "value_description": "Count"},
        ]})
    );
    assert_eq!(
        attrs(
            ComponentType::BarHorizontal,
            json!({"series": [{"xaxis_key": "product_name"}, {"yaxis_key": "n"}]})
        )
        .unwrap(),
        json!({"series": [
            {"xaxis_key": "product_name", "xaxis_description": "Product Name"},
            {"yaxis_key": "n", "yaxis_description": "N"},
        ]})
    );
    assert_eq!(
        attrs(ComponentType::Table, json!({"columns": [{"prop": "device_name"}, {"prop": "n", "name": "N!", "type": "number"}]}))
            .unwrap(),
        json!({"columns": [
            {"name": "Device Name", "prop": "device_name", "type": "string"},
            {"name": "N!", "prop": "n", "type": "number"},
        ]})
    );
    assert_eq!(
        attrs(
            ComponentType::DetailedSummary,
            json!({"header_columns": [{"label_key": "operating_system", "icon": "ServersIcon"}, {"value_key": "number_of_devices"}],
                   "detail_columns": [{"label_key": "devices_by_type.device_type"}, {"value_key": "x"}]})
        )
        .unwrap(),
        json!({
            "header_columns": [
                {"label_key": "operating_system", "label_description": "Operating System", "icon": "ServersIcon"},
                {"value_key": "number_of_devices", "value_description": "Number Of Devices"},
            ],
            "detail_columns": [
                {"label_key": "devices_by_type.device_type", "label_description": "Devices By Type Device Type", "icon": null},
                {"value_key": "x", "value_description": "X"},
            ],
        })
    );
    assert_eq!(
        attrs(ComponentType::DetailedSummaryV2, json!({"series": [{"value_key": "cost", "type": "currency", "currency": "USD"}, {"value_key": "n"}]}))
            .unwrap(),
        json!({"series": [
            {"value_key": "cost", "value_description": "Cost", "type": "currency", "currency": "USD"},
            {"value_key": "n", "value_description": "N", "type": null, "currency": null},
        ]})
    );
    for stacked in [ComponentType::StackedBarVertical, ComponentType::StackedArea] {
        assert_eq!(
            attrs(stacked, json!({"series": {"xaxis": [{"key": "_id", "description": "Product"}],
                                             "yaxis": [{"label_key": "details.license_metric"}, {"value_key": "details.quantity"}]}}))
                .unwrap(),
            json!({"series": {
                "xaxis": [{"key": "_id", "description": "Product"}],
                "yaxis": [
                    {"label_key": "details.license_metric", "label_description": "Details License Metric"},
                    {"value_key": "details.quantity", "value_description": "Details Quantity"},
                ],
            }})
        );
    }
    assert_eq!(
        attrs(ComponentType::RelationshipGraph, json!({"series": [{"label_key": "device_name"}], "categories": [{"category_key": "virtualization_type"}]}))
            .unwrap(),
        json!({
            "series": [{"label_key": "device_name", "label_description": "Device Name"}],
            "categories": [{"category_key": "virtualization_type", "category_label": "Virtualization Type"}],
        })
    );
    assert_eq!(
        attrs(ComponentType::DataNarrative, json!({"series": {"value_key": "data", "x": 1}}))
            .unwrap(),
        json!({"series": {"value_key": "data"}})
    );
}

#[test]
fn attributes_the_sdk_would_refuse_say_where() {
    let error = |t, v| attrs(t, v).unwrap_err();
    assert_eq!(
        error(ComponentType::Summary, json!({"series": [{"icon": "x"}]})),
        "attributes.series[0].value_key is required"
    );
    assert_eq!(
        error(ComponentType::Pie, json!({"series": [{"x": 1}]})),
        "attributes.series[0] needs label_key or value_key"
    );
    assert_eq!(
        error(ComponentType::Table, json!({"columns": [{"prop": "a", "type": "money"}]})),
        "attributes.columns[0].type must be string, number, date, bool, json, enum or entity"
    );
    assert_eq!(
        error(ComponentType::DetailedSummary, json!({"header_columns": [{"label_key": "a"}]})),
        "attributes.detail_columns needs at least one entry"
    );
    assert_eq!(
        error(ComponentType::StackedArea, json!({})),
        "attributes.series.xaxis needs at least one entry"
    );
    assert_eq!(
        error(ComponentType::RelationshipGraph, json!({"series": [{"label_key": "a"}]})),
        "attributes.categories needs at least one entry"
    );
    assert_eq!(
        error(ComponentType::DataNarrative, json!({})),
        "attributes.series must be an object"
    );
    assert_eq!(
        error(ComponentType::Summary, json!({"series": {}})),
        "attributes.series must be a list"
    );
    // An empty series is what an SDK builder without `attr` calls gives.
    assert_eq!(attrs(ComponentType::Pie, json!({})).unwrap(), json!({"series": []}));
}

#[test]
fn entities_urls_are_url_encoded_as_python_does() {
    assert_eq!(urlencode("{entity_id}"), "%7Bentity_id%7D");
    assert_eq!(urlencode("a b/c&d=é~._-"), "a+b%2Fc%26d%3D%C3%A9~._-");
    assert_eq!(
        entities_url("/datatables/devices", Some("host name"), Some("a&b")).as_deref(),
        Some("/datatables/devices?id=%7Bentity_id%7D&distinct_key=host+name&foreign_key=a%26b")
    );
    assert_eq!(
        entities_url("/datatables/d", None, Some("host")).as_deref(),
        Some("/datatables/d?id=%7Bentity_id%7D&foreign_key=host")
    );
    assert_eq!(entities_url("/datatables/d", None, None), None);
}

fn app_document() -> AnyRegistryDocument {
    RegistryDocument::new(
        RegistryKey::new(EntryKind::App, "ifmp-service", "ifmp-service"),
        "",
        "",
        "2026-01-02T03:04:05.000006",
        EntryMetadata::App(AppEntry {
            app: AppMetadata::for_app("ifmp-service"),
            uploaders: vec!["rv_tools".into()],
            reports: vec![],
            report_components: vec![],
            datatables: vec!["devices".into()],
        }),
    )
}

#[test]
fn documents_carry_the_key_fields_and_read_back_by_kind() {
    let document = app_document();
    let json = document.to_json().unwrap();
    assert_eq!(json["_id"], "app/ifmp-service/ifmp-service");
    assert_eq!(json["kind"], "app");
    assert_eq!(json["app_id"], "ifmp-service");
    assert_eq!(json["updated_at"], "2026-01-02T03:04:05.000006");
    assert_eq!(json["name"], "Ifmp Service");
    assert_eq!(json["status"], "available");
    assert_eq!(json["description"], Value::Null);
    assert_eq!(json["datatables"], json!(["devices"]));
    let keys: Vec<&str> = json.keys().map(String::as_str).collect();
    assert_eq!(keys.iter().filter(|k| **k == "updated_at").count(), 1);
    let bytes = serde_json::to_vec(&json).unwrap();
    assert_eq!(AnyRegistryDocument::from_slice(&bytes).unwrap(), document);
    let typed: RegistryDocument<AppEntry> = RegistryDocument::from_slice(&bytes).unwrap();
    assert_eq!(typed.entry.app.updated_at.as_deref(), Some("2026-01-02T03:04:05.000006"));
    // A document of another kind is refused by a typed reader.
    assert!(RegistryDocument::<DataTableEntry>::from_slice(&bytes).is_err());

    let record = RegistryRecord::parse("app/ifmp-service/ifmp-service", Some(&bytes)).unwrap();
    assert_eq!(record, RegistryRecord::Document(Box::new(document)));
    assert_eq!(
        RegistryRecord::parse("app/ifmp-service/ifmp-service", None).unwrap(),
        RegistryRecord::Tombstone(RegistryKey::new(EntryKind::App, "ifmp-service", "ifmp-service"))
    );
    assert!(matches!(
        RegistryRecord::parse("app/other/other", Some(&bytes)),
        Err(RecordError::KeyMismatch { .. })
    ));
    assert!(matches!(RegistryRecord::parse("nope", None), Err(RecordError::Key(_))));
    let mut wrong_kind = json.clone();
    wrong_kind.insert("kind".into(), json!("uploader"));
    assert!(AnyRegistryDocument::from_slice(&serde_json::to_vec(&wrong_kind).unwrap()).is_err());
}

#[test]
fn keys_and_kinds_parse_back() {
    assert_eq!(
        RegistryKey::parse("datatable/app/devices"),
        Some(RegistryKey::new(EntryKind::DataTable, "app", "devices"))
    );
    assert_eq!(RegistryKey::parse("nope/app/x"), None);
    assert_eq!(RegistryKey::parse("report/app"), None);
    for kind in EntryKind::ALL {
        assert_eq!(serde_json::from_value::<EntryKind>(json!(kind.as_str())).unwrap(), kind);
    }
}
