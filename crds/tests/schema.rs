//! The generated CRDs are what an apiserver accepts (structural schemas) and what a user
//! expects: descriptions everywhere, names, printer columns, validation rules.

use licenseware_crds::{CATEGORY, GROUP, VERSION, generate::crds};
use serde_json::Value;

/// Every kind's `openAPIV3Schema`, by kind.
fn schemas() -> Vec<(String, Value)> {
    crds()
        .into_iter()
        .map(|crd| {
            let schema =
                serde_json::to_value(&crd.spec.versions[0].schema).expect("schema to JSON");
            (crd.spec.names.kind, schema["openAPIV3Schema"].clone())
        })
        .collect()
}

/// Calls `f(path, node)` for every schema node below `node`.
fn walk(path: &str, node: &Value, f: &mut dyn FnMut(&str, &Value)) {
    f(path, node);
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        for (name, child) in props {
            walk(&format!("{path}.{name}"), child, f);
        }
    }
    if let Some(items) = node.get("items") {
        walk(&format!("{path}[]"), items, f);
    }
    if let Some(values) = node.get("additionalProperties").filter(|v| v.is_object()) {
        walk(&format!("{path}{{}}"), values, f);
    }
}

#[test]
fn schemas_are_structural() {
    for (kind, schema) in schemas() {
        walk(&kind, &schema, &mut |path, node| {
            for keyword in ["$ref", "definitions", "$defs", "allOf", "oneOf", "not"] {
                assert!(node.get(keyword).is_none(), "{path}: `{keyword}` is not structural");
            }
            let int_or_string = node.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true));
            let free_form =
                node.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
            // anyOf only in the int-or-string form, whose branches carry no extra keywords.
            if let Some(any_of) = node.get("anyOf") {
                assert!(int_or_string, "{path}: anyOf without x-kubernetes-int-or-string");
                for branch in any_of.as_array().unwrap() {
                    assert!(branch.as_object().unwrap().keys().all(|k| k == "type"), "{path}");
                }
            }
            if !int_or_string {
                let ty = node.get("type").and_then(Value::as_str);
                assert!(ty.is_some(), "{path}: every node needs a single `type`");
                if ty == Some("object") {
                    let has_shape = node.get("properties").is_some()
                        || node.get("additionalProperties").is_some_and(Value::is_object);
                    assert!(
                        has_shape || free_form,
                        "{path}: an object needs properties, additionalProperties, or \
                         x-kubernetes-preserve-unknown-fields"
                    );
                }
                if ty == Some("array") {
                    assert!(node.get("items").is_some(), "{path}: an array needs items");
                }
            }
            if let Some(values) = node.get("enum") {
                assert!(
                    values.as_array().unwrap().iter().all(|v| !v.is_null()),
                    "{path}: null in enum"
                );
            }
            assert!(
                node.get("additionalProperties") != Some(&Value::Bool(true)),
                "{path}: use x-kubernetes-preserve-unknown-fields, not additionalProperties: true"
            );
        });
    }
}

#[test]
fn every_field_has_a_description() {
    for (kind, schema) in schemas() {
        walk(&kind, &schema, &mut |path, node| {
            // Array items and map values are described by their field.
            if path.ends_with("[]") || path.ends_with('}') {
                return;
            }
            let description = node.get("description").and_then(Value::as_str).unwrap_or("");
            assert!(!description.trim().is_empty(), "{path} has no description");
            assert!(!description.contains("Auto-generated"), "{path}: {description}");
            // Reflowed: no hard line breaks inside a paragraph.
            for paragraph in description.split("\n\n") {
                assert!(!paragraph.contains('\n'), "{path}: ragged description");
            }
        });
    }
}

#[test]
fn free_form_fields_keep_unknown_fields() {
    let free_form = [
        ("ReportComponent", "/properties/spec/properties/attributes"),
        ("ReportComponent", "/properties/spec/properties/style"),
        ("ReportComponent", "/properties/spec/properties/data/properties/pipeline/items"),
        ("Topic", "/properties/spec/properties/schema/properties/jsonSchema"),
        ("App", "/properties/spec/properties/appMeta"),
        ("App", "/properties/spec/properties/features/items"),
        ("App", "/properties/spec/properties/integrationDetails/items"),
    ];
    let schemas = schemas();
    for (kind, pointer) in free_form {
        let schema = &schemas.iter().find(|(k, _)| k == kind).unwrap().1;
        let node = schema.pointer(pointer).unwrap_or_else(|| panic!("{kind} {pointer}"));
        assert_eq!(node["type"], "object", "{kind} {pointer}");
        assert_eq!(node["x-kubernetes-preserve-unknown-fields"], true, "{kind} {pointer}");
    }
    // Nowhere else: everything else is pruned by the apiserver, so typos are dropped.
    let count: usize = schemas
        .iter()
        .map(|(kind, schema)| {
            let mut n = 0;
            walk(kind, schema, &mut |_, node| {
                n += usize::from(node.get("x-kubernetes-preserve-unknown-fields").is_some());
            });
            n
        })
        .sum();
    assert_eq!(count, free_form.len());
}

#[test]
fn names_columns_and_subresources() {
    let expected = [
        ("Uploader", "uploaders", vec!["lwup"]),
        ("Report", "reports", vec!["lwrep"]),
        ("ReportComponent", "reportcomponents", vec!["lwrc"]),
        ("DataTable", "datatables", vec!["lwdt"]),
        ("Topic", "topics", vec!["lwt", "lwtopic"]),
        ("App", "apps", vec!["lwapp"]),
    ];
    let crds = crds();
    assert_eq!(crds.len(), expected.len());
    for (crd, (kind, plural, short)) in crds.iter().zip(expected) {
        assert_eq!(crd.spec.names.kind, kind);
        assert_eq!(crd.spec.names.plural, plural);
        assert_eq!(crd.metadata.name.as_deref(), Some(format!("{plural}.{GROUP}").as_str()));
        assert_eq!(crd.spec.group, GROUP);
        assert_eq!(crd.spec.scope, "Namespaced");
        assert_eq!(
            crd.spec.names.short_names.as_deref(),
            Some(&short.iter().map(|s| s.to_string()).collect::<Vec<_>>()[..])
        );
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&[CATEGORY.to_owned()][..]));
        // Strimzi's KafkaTopic uses `kt`; ours must not clash.
        assert!(!short.contains(&"kt"));

        assert_eq!(crd.spec.versions.len(), 1);
        let version = &crd.spec.versions[0];
        assert_eq!(version.name, VERSION);
        assert!(version.served && version.storage);
        assert!(version.subresources.as_ref().and_then(|s| s.status.as_ref()).is_some(), "{kind}");

        let columns = version.additional_printer_columns.as_ref().unwrap();
        let by_name = |name: &str| columns.iter().find(|c| c.name == name);
        let ready = by_name("Ready").unwrap_or_else(|| panic!("{kind} Ready column"));
        assert_eq!(ready.json_path, r#".status.conditions[?(@.type=="Ready")].status"#);
        let age = columns.last().unwrap();
        assert_eq!((age.name.as_str(), age.type_.as_str()), ("Age", "date"), "{kind}");
        assert_eq!(age.json_path, ".metadata.creationTimestamp");
        match kind {
            "Uploader" => {
                for name in ["Replicas", "Desired", "Lag"] {
                    assert!(by_name(name).is_some(), "Uploader {name} column");
                }
            }
            "Topic" => {
                assert_eq!(by_name("Topic").unwrap().json_path, ".status.topicName");
                assert_eq!(by_name("Partitions").unwrap().json_path, ".spec.partitions");
            }
            _ => {}
        }
    }
}

/// The CEL rules at a JSON pointer of a kind's schema.
fn rules(kind: &str, pointer: &str) -> Vec<String> {
    let schemas = schemas();
    let schema = &schemas.iter().find(|(k, _)| k == kind).expect("known kind").1;
    schema
        .pointer(pointer)
        .and_then(|n| n.get("x-kubernetes-validations"))
        .and_then(Value::as_array)
        .map(|rules| {
            rules.iter().map(|r| r["rule"].as_str().expect("rule is a string").to_owned()).collect()
        })
        .unwrap_or_default()
}

#[test]
fn cel_rules_are_where_they_belong() {
    let topic_root = rules("Topic", "");
    assert_eq!(topic_root.len(), 1);
    assert!(topic_root[0].contains("oldSelf.metadata.name"), "{topic_root:?}");
    assert_eq!(rules("Topic", "/properties/spec/properties/partitions"), ["self >= oldSelf"]);
    assert!(rules("Topic", "/properties/spec")[0].contains("'retention.ms' in self.config"));
    assert_eq!(
        rules("Uploader", "/properties/spec/properties/worker"),
        ["self.minReplicas <= self.maxReplicas"]
    );
    for field in ["requiredSheets", "requiredColumns"] {
        assert_eq!(
            rules(
                "Uploader",
                &format!("/properties/spec/properties/validation/properties/{field}")
            ),
            ["self.all(alternative, size(alternative) > 0)"]
        );
    }
    // Every rule has a message for the user.
    for (kind, schema) in schemas() {
        walk(&kind, &schema, &mut |path, node| {
            for rule in
                node.get("x-kubernetes-validations").and_then(Value::as_array).into_iter().flatten()
            {
                assert!(rule["message"].as_str().is_some_and(|m| !m.is_empty()), "{path}");
            }
        });
    }
}

#[test]
fn patterns_compile_and_accept_the_examples() {
    let mut patterns = Vec::new();
    for (kind, schema) in schemas() {
        walk(&kind, &schema, &mut |path, node| {
            if let Some(p) = node.get("pattern").and_then(Value::as_str) {
                patterns.push((path.to_owned(), p.to_owned()));
            }
        });
    }
    assert!(!patterns.is_empty());
    for (path, pattern) in &patterns {
        regex::Regex::new(pattern).unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    let pattern_at = |suffix: &str| {
        let (_, p) = patterns.iter().find(|(path, _)| path.ends_with(suffix)).unwrap();
        regex::Regex::new(p).unwrap()
    };

    let id = pattern_at("Uploader.spec.appId");
    for ok in ["ifmp-service", "rv_tools", "a", "odb2"] {
        assert!(id.is_match(ok), "{ok}");
    }
    for bad in ["", "-a", "a-", "RV_Tools", "a.b", "a b", "_x"] {
        assert!(!id.is_match(bad), "{bad}");
    }

    let retention = pattern_at("Topic.spec.retention");
    for ok in ["7d", "12h", "30m", "45s", "500ms", "2w"] {
        assert!(retention.is_match(ok), "{ok}");
        assert!(licenseware_crds::duration::parse_duration_ms(ok).is_ok(), "{ok}");
    }
    for bad in ["", "7", "d", "-1d", "1h30m", "7 d", "1y", "7D"] {
        assert!(!retention.is_match(bad), "{bad}");
        assert!(licenseware_crds::duration::parse_duration_ms(bad).is_err(), "{bad}");
    }

    let topic = pattern_at("Topic.spec.topicName");
    assert!(topic.is_match("ifmp-service.rv_tools.events") && topic.is_match("AppEvents"));
    assert!(!topic.is_match("a/b") && !topic.is_match("a b"));

    let input = pattern_at("validation.requiredInputType");
    for ok in ["excel", "csv", "xml", "text", "txt", ".csv", ".tar.gz"] {
        assert!(input.is_match(ok), "{ok}");
    }
    for bad in ["Excel", "xlsx", "csv,txt", "."] {
        assert!(!input.is_match(bad), "{bad}");
    }
}

#[test]
fn defaults_only_where_the_apiserver_can_apply_them() {
    // A default under a required field, or on a nullable field, is a common source of
    // CRD rejections; also a default must be valid for its own schema type.
    for (kind, schema) in schemas() {
        walk(&kind, &schema, &mut |path, node| {
            let Some(default) = node.get("default") else { return };
            assert!(node.get("nullable").is_none(), "{path}: default on a nullable field");
            let ok = match node["type"].as_str() {
                Some("string") => default.is_string(),
                Some("integer") => default.is_i64(),
                Some("boolean") => default.is_boolean(),
                Some("array") => default.is_array(),
                Some("object") => default.is_object(),
                _ => false,
            };
            assert!(ok, "{path}: default {default} does not match the type");
        });
    }
}
