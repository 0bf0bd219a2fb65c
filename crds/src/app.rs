//! `App`: SDK `NewApp`, what the registry says about an app beyond its id. Optional:
//! without one, an app's registry metadata is its id in title form and nulls.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::Flag;
use crate::conditions::RegistrationStatus;
use crate::names::title;
use crate::registry::AppMetadata;
use crate::schema::{ID_MAX_LENGTH, ID_PATTERN, free_form_object, free_form_object_list};

/// Status of an App: `Ready` (and `Registered`): False with `ResourceConflict` when an
/// older App already describes the same appId.
pub type AppStatus = RegistrationStatus;

/// The registry metadata of an app: its name, description, icon, flags and the
/// free-form app_meta, features and integration_details. The app's entry and every
/// uploader and report of the appId carry it (`parrent_app`, `apps`). One App per
/// appId: a second one is Ready=False (ResourceConflict).
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "App",
    namespaced,
    status = "AppStatus",
    derive = "PartialEq",
    shortname = "lwapp",
    category = "licenseware",
    doc = "The registry metadata of a Licenseware app.",
    printcolumn(name = "App", type_ = "string", json_path = ".spec.appId"),
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
pub struct AppSpec {
    /// Id of the app, e.g. `ifmp-service`: the appId of its Uploaders, Reports,
    /// ReportComponents and DataTables.
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub app_id: String,
    /// Display name. Default: the appId in title form (`ifmp-service` → "Ifmp Service").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200))]
    pub name: Option<String>,
    /// What the app does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 4096))]
    pub description: Option<String>,
    /// Icon name or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub icon: Option<String>,
    /// UI flags: beta, soon, partner_app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub flags: Vec<Flag>,
    /// Free-form app metadata, e.g. {"partner_meta": {"partner_app": true}}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "free_form_object")]
    pub app_meta: Option<Map<String, Value>>,
    /// Free-form feature descriptions, one object each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_object_list")]
    pub features: Vec<Map<String, Value>>,
    /// Free-form integration descriptions, one object each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "free_form_object_list")]
    pub integration_details: Vec<Map<String, Value>>,
}

impl AppSpec {
    /// The SDK's app metadata with this spec's values: unset name is the title form of
    /// the id, unset or empty lists are null (the SDK's defaults).
    pub fn metadata(&self) -> AppMetadata {
        let list = |items: &Vec<Map<String, Value>>| (!items.is_empty()).then(|| items.clone());
        AppMetadata {
            name: self.name.clone().unwrap_or_else(|| title(&self.app_id)),
            description: self.description.clone(),
            icon: self.icon.clone(),
            flags: (!self.flags.is_empty()).then(|| self.flags.clone()),
            app_meta: self.app_meta.clone(),
            features: list(&self.features),
            integration_details: list(&self.integration_details),
            ..AppMetadata::for_app(&self.app_id)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metadata_takes_the_spec_and_the_sdk_defaults() {
        let spec: AppSpec = serde_json::from_value(json!({
            "appId": "ifmp-service", "description": "Infrastructure mapping",
            "flags": ["beta"], "appMeta": {"partner_meta": {"partner_app": true}},
            "features": [{"name": "maps"}]
        }))
        .unwrap();
        let m = spec.metadata();
        assert_eq!(m.name, "Ifmp Service");
        assert_eq!(m.description.as_deref(), Some("Infrastructure mapping"));
        assert_eq!(m.flags, Some(vec![Flag::Beta]));
        assert_eq!(m.app_meta.unwrap()["partner_meta"]["partner_app"], true);
        assert_eq!(m.features.unwrap()[0]["name"], "maps");
        assert_eq!(m.integration_details, None);
        assert_eq!(m.icon, None);
        assert_eq!(m.status, "available");
        assert_eq!(m.datatables_url, "/datatables");
    }
}
