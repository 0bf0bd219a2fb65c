//! The app: SDK `NewApp.get_metadata`.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::{EntryKind, RegistryMetadata};
use crate::{Flag, names::title};

/// The `status` of every app entry (SDK `States.AVAILABLE`).
pub const APP_STATUS_AVAILABLE: &str = "available";

/// SDK `NewApp.get_metadata` (`AppMetadataModel`): `{app_id, status, name,
/// description, icon, history_report_url, updated_at, editable_tables_url,
/// datatables_url, flags, app_meta, features, integration_details}`. Every uploader and
/// report carries it as `parrent_app` (sic); a report also in `apps`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppMetadata {
    pub app_id: String,
    /// Always `available`.
    pub status: String,
    pub name: String,
    pub description: Option<String>,
    pub icon: Option<String>,
    /// `/reports/history-report`.
    pub history_report_url: String,
    /// When the document that carries this metadata was written.
    #[serde(default)]
    pub updated_at: Option<String>,
    /// `/datatables` (the SDK keeps this older name next to `datatables_url`).
    pub editable_tables_url: String,
    /// `/datatables`.
    pub datatables_url: String,
    pub flags: Option<Vec<Flag>>,
    /// Free-form app metadata, e.g. `{"partner_meta": {"partner_app": true, ...}}`.
    pub app_meta: Option<Map<String, Value>>,
    pub features: Option<Vec<Map<String, Value>>>,
    pub integration_details: Option<Vec<Map<String, Value>>>,
}

impl AppMetadata {
    /// The metadata of an app nothing describes beyond its id: its name is the title form
    /// of the id (`ifmp-service` → `Ifmp Service`), the rest is null.
    pub fn for_app(app_id: &str) -> Self {
        Self {
            app_id: app_id.to_owned(),
            status: APP_STATUS_AVAILABLE.to_owned(),
            name: title(app_id),
            description: None,
            icon: None,
            history_report_url: "/reports/history-report".to_owned(),
            updated_at: None,
            editable_tables_url: "/datatables".to_owned(),
            datatables_url: "/datatables".to_owned(),
            flags: None,
            app_meta: None,
            features: None,
            integration_details: None,
        }
    }
}

/// The app document: the SDK's app metadata ([`AppMetadata`], its keys at the top
/// level), then the ids of the app's registered uploaders, reports, components and data
/// tables, sorted (not in the SDK's metadata: its `get_full_metadata` embedded whole
/// entries; here each has its own document).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppEntry {
    #[serde(flatten)]
    pub app: AppMetadata,
    pub uploaders: Vec<String>,
    pub reports: Vec<String>,
    pub report_components: Vec<String>,
    pub datatables: Vec<String>,
}

impl RegistryMetadata for AppEntry {
    fn entry_kind(&self) -> EntryKind {
        EntryKind::App
    }

    fn stamp(&mut self, updated_at: &str) {
        self.app.updated_at = Some(updated_at.to_owned());
    }
}
