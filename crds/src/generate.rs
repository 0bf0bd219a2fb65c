//! The CustomResourceDefinitions of every kind, and their YAML as committed at
//! `crds/*.yaml` (written by `licenseware-operator crdgen`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceDefinition, JSONSchemaProps, JSONSchemaPropsOrArray, JSONSchemaPropsOrBool,
};
use kube::CustomResourceExt;
use serde_json::{Map, Value};

use crate::{App, DataTable, Report, ReportComponent, Topic, Uploader};

/// The command that rewrites the committed CRD files.
pub const REGENERATE_COMMAND: &str = "cargo run -p licenseware-operator -- crdgen --out-dir crds";

/// First line of every generated file.
pub const HEADER: &str = "# Generated from the Rust types in crds/src by \
`cargo run -p licenseware-operator -- crdgen --out-dir crds`. Do not edit.\n";

/// The CRDs of every kind, in a fixed order, with descriptions reflowed (see [`reflow`])
/// and `null` left out of enums. Apply these rather than `Kind::crd()`, so that what the
/// operator applies and what `kubectl apply -f crds/` applies are identical.
pub fn crds() -> Vec<CustomResourceDefinition> {
    let mut crds = vec![
        Uploader::crd(),
        Report::crd(),
        ReportComponent::crd(),
        DataTable::crd(),
        Topic::crd(),
        App::crd(),
    ];
    for crd in &mut crds {
        for version in &mut crd.spec.versions {
            if let Some(schema) =
                version.schema.as_mut().and_then(|s| s.open_api_v3_schema.as_mut())
            {
                tidy(schema);
            }
        }
    }
    crds
}

/// Joins the lines of each paragraph of a description with spaces, keeping blank-line
/// paragraph breaks. Rustdoc comments are hard-wrapped at the source's line width;
/// `kubectl explain` wraps text itself, and the source's breaks would show up as ragged
/// lines.
pub fn reflow(description: &str) -> String {
    description
        .split("\n\n")
        .map(|paragraph| paragraph.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|paragraph| !paragraph.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

// schemars lists `null` among the values of an `Option<Enum>`; `nullable: true` already
// says that, and an apiserver need not accept a null enum value in a string schema.
fn tidy(schema: &mut JSONSchemaProps) {
    if let Some(description) = &mut schema.description {
        *description = reflow(description);
        // `kubectl explain` does not show schema defaults; say them in the text.
        if let Some(default) = &schema.default
            && !description.contains("Default:")
        {
            description.push_str(&format!(" Default: {}.", default.0));
        }
    }
    if let Some(values) = &mut schema.enum_ {
        values.retain(|v| !v.0.is_null());
    }
    for child in schema.properties.iter_mut().flat_map(|p| p.values_mut()) {
        tidy(child);
    }
    match &mut schema.items {
        Some(JSONSchemaPropsOrArray::Schema(item)) => tidy(item),
        Some(JSONSchemaPropsOrArray::Schemas(items)) => items.iter_mut().for_each(tidy),
        None => {}
    }
    if let Some(JSONSchemaPropsOrBool::Schema(values)) = &mut schema.additional_properties {
        tidy(values);
    }
}

/// One `(file name, YAML)` pair per kind: `<plural>.<group>.yaml`, one document each,
/// with the generated-file header. The output is byte-for-byte deterministic.
pub fn render() -> Vec<(String, String)> {
    crds()
        .into_iter()
        .map(|crd| {
            let file_name = format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or_default());
            // Serializing plain data (string keys only) to a JSON value and then to YAML
            // has no failure case; a panic here is a bug in a type, caught by the tests.
            let value = serde_json::to_value(&crd).expect("a CRD serializes to JSON");
            let yaml = serde_yaml::to_string(&sorted(value)).expect("JSON serializes to YAML");
            (file_name, format!("{HEADER}{yaml}"))
        })
        .collect()
}

// serde_json's `preserve_order` feature (which any crate in a build can switch on)
// would make map order follow insertion; rebuilding every map from sorted keys gives
// the same bytes either way.
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect::<Map<_, _>>())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflow_joins_lines_and_keeps_paragraphs() {
        assert_eq!(reflow("one\ntwo  three\n\nfour\n five"), "one two three\n\nfour five");
        assert_eq!(reflow("single"), "single");
        assert_eq!(reflow(""), "");
    }

    #[test]
    fn defaults_are_spelled_out_for_kubectl_explain() {
        let uploader = crds().remove(0);
        let schema = serde_json::to_value(&uploader.spec.versions[0].schema).unwrap();
        let buffer = &schema["openAPIV3Schema"]["properties"]["spec"]["properties"]["validation"]["properties"]
            ["buffer"]["description"];
        assert!(buffer.as_str().unwrap().ends_with(" Default: 15000."), "{buffer}");
    }
}
