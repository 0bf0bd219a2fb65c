//! `ReportComponent`: SDK `NewReportComponent` plus the aggregation that feeds it.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::conditions::RegistrationStatus;
use crate::filter::ReportFilter;
use crate::schema::{ID_MAX_LENGTH, ID_PATTERN, free_form_object, free_form_object_list};

/// Status of a ReportComponent.
pub type ReportComponentStatus = RegistrationStatus;

/// Collections no component may read, whatever an Uploader declares: the operator's
/// registry and the workers' processing history. Names starting with `system.` are
/// MongoDB's own.
pub const RESERVED_COLLECTIONS: [&str; 2] = ["Registry", "ProcessingHistory"];

/// One chart, table or summary of a report, and the data that feeds it.
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "ReportComponent",
    namespaced,
    status = "ReportComponentStatus",
    derive = "PartialEq",
    shortname = "lwrc",
    category = "licenseware",
    doc = "One chart, table or summary of a report, and the aggregation that feeds it.",
    printcolumn(name = "App", type_ = "string", json_path = ".spec.appId"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Reason",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].reason",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct ReportComponentSpec {
    /// Id of the component, e.g. `virtual_overview`; reports list it in `components`.
    /// Default: metadata.name with '-' replaced by '_'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub component_id: Option<String>,
    /// Id of the app the component belongs to.
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub app_id: String,
    /// Title shown above the component.
    #[schemars(length(min = 1))]
    pub title: String,
    /// What the component shows.
    #[serde(default)]
    pub description: String,
    /// How the data is drawn: summary, pie, bar_horizontal, table, detailed_summary,
    /// detailed_summary_v2, stacked_bar_vertical, stacked_area, relationship_graph or
    /// data_narrative.
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    /// What the UI draws, in the SDK's attribute shape for the type, e.g. for a table
    /// {"columns": [{"name": "Device Name", "prop": "device_name", "type": "string"}]},
    /// for a pie {"series": [{"label_key": ..., "label_description": ...}, ...]}.
    #[schemars(schema_with = "free_form_object")]
    pub attributes: Map<String, Value>,
    /// Layout hints for the UI, e.g. {"width": "1/2"} (width is 1/3, 2/3, 1/2 or full).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    #[schemars(schema_with = "free_form_object")]
    pub style: Map<String, Value>,
    /// Position in a report. Default: the position in the report's components list,
    /// counting from 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0))]
    pub order: Option<i32>,
    /// Columns users can filter the component on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<ReportFilter>,
    /// Whether the component is published in the registry.
    #[serde(default = "crate::defaults::yes")]
    pub registrable: bool,
    /// The aggregation that produces the component's data.
    #[serde(default, skip_serializing_if = "crate::defaults::is_default")]
    pub data: ComponentData,
}

/// How a component is drawn: summary, pie, bar_horizontal, table, detailed_summary,
/// detailed_summary_v2, stacked_bar_vertical, stacked_area, relationship_graph or
/// data_narrative.
// No variant docs: they would turn the schema into `oneOf` branches.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ComponentType {
    Summary,
    Pie,
    BarHorizontal,
    Table,
    DetailedSummary,
    DetailedSummaryV2,
    StackedBarVertical,
    StackedArea,
    RelationshipGraph,
    DataNarrative,
}

/// The MongoDB aggregation that feeds a component.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentData {
    /// Collection the aggregation runs on: Data, or a collection that an Uploader of the
    /// same appId in this namespace declares (usedCollections or
    /// processing.tables[].collection). Registry, ProcessingHistory and system.* are
    /// never allowed. Otherwise Ready=False (CollectionNotAllowed).
    #[serde(default = "crate::defaults::collection")]
    #[schemars(length(min = 1))]
    pub collection: String,
    /// Aggregation stages, e.g. [{"$group": {"_id": "$os", "count": {"$sum": 1}}}]. The
    /// server always runs them after a $match on the caller's tenant, then applies the
    /// request's filters, skip and limit. Only these stages are allowed: $match $group
    /// $project $addFields $set $unset $sort $limit $skip $count $unwind $bucket
    /// $bucketAuto $facet $sortByCount $replaceRoot $replaceWith $sample; and only the
    /// usual query, expression and accumulator operators ($accumulator, $function and
    /// $where are not). Anything else makes the resource Ready=False
    /// (PipelineNotAllowed), with the offending key and its path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_object_list")]
    pub pipeline: Vec<Map<String, Value>>,
    /// Seconds a result stays cached per tenant and query. 0 disables the cache.
    #[serde(default = "default_cache_ttl_seconds")]
    #[schemars(range(min = 0))]
    pub cache_ttl_seconds: i64,
}

fn default_cache_ttl_seconds() -> i64 {
    300
}

impl Default for ComponentData {
    fn default() -> Self {
        Self {
            collection: crate::defaults::collection(),
            pipeline: Vec::new(),
            cache_ttl_seconds: default_cache_ttl_seconds(),
        }
    }
}

impl ComponentData {
    /// Checks the pipeline against the allowlist of stages and operators
    /// ([`crate::pipeline`]); the error names the first refused key and its path.
    pub fn check_pipeline(&self) -> Result<(), crate::pipeline::PipelineError> {
        crate::pipeline::check_pipeline(&self.pipeline, "data.pipeline")
    }

    /// Checks `collection` against the collections the component's app declares
    /// (`declared`), see [`check_app_collection`].
    pub fn check_collection<'a>(
        &self,
        declared: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), String> {
        check_app_collection(&self.collection, declared)
    }
}

/// Checks a collection a component or data table reads (`data.collection`,
/// `collection`) against the collections its app declares (`declared`: its Uploaders'
/// usedCollections and processing.tables[].collection). The SDK's default collection
/// `Data` is always allowed: every app writes its documents there with `app_id` and
/// `tenant_id`, and the API scopes every query to the caller's tenant. The registry,
/// the processing history and MongoDB's `system.*` never are.
pub fn check_app_collection<'a>(
    collection: &str,
    declared: impl IntoIterator<Item = &'a str>,
) -> Result<(), String> {
    if RESERVED_COLLECTIONS.contains(&collection) || collection.starts_with("system.") {
        return Err(format!("collection {collection} is reserved: it cannot be read here"));
    }
    if collection == crate::DEFAULT_COLLECTION {
        return Ok(());
    }
    let mut declared: Vec<&str> = declared.into_iter().collect();
    if declared.contains(&collection) {
        return Ok(());
    }
    declared.sort_unstable();
    declared.dedup();
    Err(format!(
        "collection {collection} is not a collection of this app: it must be {} or one \
         that an Uploader of the same appId in this namespace declares in usedCollections \
         or processing.tables[].collection (declared: {})",
        crate::DEFAULT_COLLECTION,
        if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
    ))
}

impl ReportComponent {
    /// `spec.componentId`, or metadata.name with '-' replaced by '_'.
    pub fn component_id(&self) -> String {
        match &self.spec.component_id {
            Some(id) => id.clone(),
            None => self.metadata.name.as_deref().unwrap_or_default().replace('-', "_"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(pipeline: Value) -> ComponentData {
        serde_json::from_value(serde_json::json!({ "pipeline": pipeline })).unwrap()
    }

    #[test]
    fn pipeline_is_checked_against_the_allowlist() {
        let ok = data(serde_json::json!([
            {"$match": {"os": {"$exists": true}}},
            {"$group": {"_id": "$os", "count": {"$sum": 1}}}
        ]));
        assert!(ok.check_pipeline().is_ok());
        let bad = data(serde_json::json!([
            {"$facet": {"a": [{"$lookup": {"from": "Quota"}}], "b": [{"$out": "x"}]}}
        ]));
        assert_eq!(bad.check_pipeline().unwrap_err().path, "data.pipeline[0].$facet.a[0].$lookup");
    }

    #[test]
    fn collection_must_be_data_or_declared_by_the_app() {
        let mut d = data(serde_json::json!([]));
        assert!(d.check_collection([]).is_ok(), "Data is always allowed");
        d.collection = "Devices".into();
        let error = d.check_collection(["Data", "Other"]).unwrap_err();
        assert!(error.contains("Devices") && error.contains("declared: Data, Other"), "{error}");
        assert!(d.check_collection(["Devices"]).is_ok());
        for reserved in ["Registry", "ProcessingHistory", "system.users"] {
            d.collection = reserved.into();
            assert!(d.check_collection([reserved]).unwrap_err().contains("reserved"), "{reserved}");
        }
    }

    #[test]
    fn component_types_use_the_sdk_names() {
        let names = serde_json::json!([
            "summary",
            "pie",
            "bar_horizontal",
            "table",
            "detailed_summary",
            "detailed_summary_v2",
            "stacked_bar_vertical",
            "stacked_area",
            "relationship_graph",
            "data_narrative"
        ]);
        let types: Vec<ComponentType> = serde_json::from_value(names.clone()).unwrap();
        assert_eq!(types.len(), 10);
        assert_eq!(serde_json::to_value(types).unwrap(), names);
    }
}
