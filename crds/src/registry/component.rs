//! The report component: SDK `NewReportComponent.get_metadata`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{ComponentAttributes, EntryKind, FilterEntry, RegistryMetadata};
use crate::ComponentType;
use crate::report_component::ComponentData;

/// SDK `NewReportComponent.get_metadata` (`ReportComponentMetadataModel`), in its key
/// order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawComponentEntry")]
pub struct ComponentEntry {
    pub app_id: String,
    pub component_id: String,
    /// As written in the spec, `""` included.
    pub description: String,
    /// `/report-components/{dash(component_id)}`.
    pub url: String,
    /// `/public-report-components/{dash(component_id)}`.
    pub public_url: String,
    /// `/snapshot-report-components/{dash(component_id)}`.
    pub snapshot_url: String,
    /// `spec.order`, else the 1-based position in the report that attaches it; `null`
    /// when neither.
    pub order: Option<i32>,
    pub style_attributes: Map<String, Value>,
    /// In the shape of `type`.
    pub attributes: ComponentAttributes,
    pub title: String,
    #[serde(rename = "type")]
    pub component_type: ComponentType,
    pub filters: Option<Vec<FilterEntry>>,
    /// `spec.data` (collection, pipeline, cacheTtlSeconds): what the apps' API runs to
    /// serve the component's rows. Only in the component's own document (as `worker`
    /// is in an uploader's); absent from the copies embedded in reports, which keep
    /// the SDK's shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<ComponentData>,
}

impl RegistryMetadata for ComponentEntry {
    fn entry_kind(&self) -> EntryKind {
        EntryKind::Component
    }
}

/// What a component entry is read as before its attributes are read by its type.
#[derive(Deserialize)]
struct RawComponentEntry {
    app_id: String,
    component_id: String,
    description: String,
    url: String,
    public_url: String,
    snapshot_url: String,
    order: Option<i32>,
    style_attributes: Map<String, Value>,
    attributes: Value,
    title: String,
    #[serde(rename = "type")]
    component_type: ComponentType,
    filters: Option<Vec<FilterEntry>>,
    #[serde(default)]
    data: Option<ComponentData>,
}

impl TryFrom<RawComponentEntry> for ComponentEntry {
    type Error = String;

    fn try_from(raw: RawComponentEntry) -> Result<Self, Self::Error> {
        let attributes = ComponentAttributes::from_value(raw.component_type, raw.attributes)
            .map_err(|error| {
                format!("attributes of a {:?} component: {error}", raw.component_type)
            })?;
        Ok(Self {
            app_id: raw.app_id,
            component_id: raw.component_id,
            description: raw.description,
            url: raw.url,
            public_url: raw.public_url,
            snapshot_url: raw.snapshot_url,
            order: raw.order,
            style_attributes: raw.style_attributes,
            attributes,
            title: raw.title,
            component_type: raw.component_type,
            filters: raw.filters,
            data: raw.data,
        })
    }
}
