//! The report: SDK `NewReport.get_metadata`, and the filters of reports and components.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{AppMetadata, ComponentEntry, EntryKind, RegistryMetadata};
use crate::{ColumnType, FilterType, Flag, ReportFilter};

/// SDK `NewReport.get_metadata` (`ReportMetadataModel`), in its key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportEntry {
    pub app_id: String,
    pub report_id: String,
    pub name: String,
    pub description: String,
    /// `/reports/{dash(report_id)}`.
    pub url: String,
    /// The report's app first, then the others.
    pub connected_apps: Vec<String>,
    /// The attached components in order; `null` for one that is not registrable.
    pub report_components: Vec<Option<ComponentEntry>>,
    pub flags: Option<Vec<Flag>>,
    pub filters: Option<Vec<FilterEntry>>,
    /// The document's `updated_at`.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `/public-reports/{dash(report_id)}`.
    pub public_url: String,
    /// `/snapshot-reports/{dash(report_id)}`.
    pub snapshot_url: String,
    /// The app's metadata (sic, the SDK's key).
    pub parrent_app: AppMetadata,
    /// Metadata of the connected apps. The registry holds the report's own app; the
    /// others are in their own app documents (`app/{appId}/{appId}`).
    pub apps: Vec<AppMetadata>,
    /// Per-tenant report states, derived from the uploaders' live states: always `[]`
    /// in the registry; the API reports the live values.
    pub status: Vec<Value>,
    pub registrable: bool,
}

impl RegistryMetadata for ReportEntry {
    fn entry_kind(&self) -> EntryKind {
        EntryKind::Report
    }

    fn stamp(&mut self, updated_at: &str) {
        self.updated_at = Some(updated_at.to_owned());
        self.parrent_app.updated_at = Some(updated_at.to_owned());
        for app in &mut self.apps {
            if app.app_id == self.app_id {
                app.updated_at = Some(updated_at.to_owned());
            }
        }
    }
}

/// A filter in the SDK's shape (`ReportFilter.add`): `{column, allowed_filters,
/// column_type, allowed_values, visible_name}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilterEntry {
    pub column: String,
    pub allowed_filters: Vec<FilterType>,
    pub column_type: ColumnType,
    pub allowed_values: Option<Vec<String>>,
    pub visible_name: String,
}

impl FilterEntry {
    /// The filter with the SDK's inference and defaults.
    pub fn from_spec(filter: &ReportFilter) -> Self {
        Self {
            column: filter.column.clone(),
            allowed_filters: filter.effective_allowed_filters(),
            column_type: filter.effective_column_type(),
            allowed_values: filter.allowed_values.clone(),
            visible_name: filter.effective_visible_name(),
        }
    }

    /// A list of filters as the SDK publishes it: `None` (null) when empty.
    pub fn list(filters: &[ReportFilter]) -> Option<Vec<Self>> {
        (!filters.is_empty()).then(|| filters.iter().map(Self::from_spec).collect())
    }
}
