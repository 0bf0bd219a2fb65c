//! `Report`: SDK `NewReport`, an ordered set of report components with shared filters.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::conditions::RegistrationStatus;
use crate::filter::ReportFilter;
use crate::schema::{ID_MAX_LENGTH, ID_PATTERN};
use crate::uploader::Flag;

/// Status of a Report.
pub type ReportStatus = RegistrationStatus;

/// A report: report components shown together, with filters that apply to all of them.
// clippy's duplicated_attributes misreads the repeated `type_ = "string"` of the
// printcolumn(...) entries as duplicates.
#[allow(clippy::duplicated_attributes)]
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "licenseware.io",
    version = "v1alpha1",
    kind = "Report",
    namespaced,
    status = "ReportStatus",
    derive = "PartialEq",
    shortname = "lwrep",
    category = "licenseware",
    doc = "A report: report components shown together, with filters that apply to all of them.",
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
pub struct ReportSpec {
    /// Id of the report, e.g. `cpuq_report`; its URLs use the dash form. Default:
    /// metadata.name with '-' replaced by '_'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub report_id: Option<String>,
    /// Id of the app the report belongs to.
    #[schemars(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))]
    pub app_id: String,
    /// Name shown to users.
    #[schemars(length(min = 1))]
    pub name: String,
    /// What the report shows.
    #[serde(default)]
    pub description: String,
    /// Apps whose data the report uses. The report's own app is always included, first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        extend("x-kubernetes-list-type" = "set"),
        inner(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))
    )]
    pub connected_apps: Vec<String>,
    /// componentIds of the ReportComponents of this report, in display order. Empty: every
    /// component of the app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(
        extend("x-kubernetes-list-type" = "set"),
        inner(pattern(ID_PATTERN), length(min = 1, max = ID_MAX_LENGTH))
    )]
    pub components: Vec<String>,
    /// Columns users can filter the report on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<ReportFilter>,
    /// Labels shown in the UI: beta, soon, partner_app.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("x-kubernetes-list-type" = "set"))]
    pub flags: Vec<Flag>,
    /// Whether the report is published in the registry.
    #[serde(default = "crate::defaults::yes")]
    pub registrable: bool,
}

impl Report {
    /// `spec.reportId`, or metadata.name with '-' replaced by '_'.
    pub fn report_id(&self) -> String {
        match &self.spec.report_id {
            Some(id) => id.clone(),
            None => self.metadata.name.as_deref().unwrap_or_default().replace('-', "_"),
        }
    }

    /// The connected apps as the SDK publishes them: the report's app first, then the
    /// others in order, without duplicates.
    pub fn connected_apps(&self) -> Vec<String> {
        let mut apps = vec![self.spec.app_id.clone()];
        for app in &self.spec.connected_apps {
            if !apps.contains(app) {
                apps.push(app.clone());
            }
        }
        apps
    }
}
