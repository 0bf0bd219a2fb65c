//! Types shared by the operator and the worker: the custom resources of the
//! `licenseware.io` API group and the contracts they exchange on the wire.
//!
//! Six namespaced kinds, each with a status subresource: [`Uploader`], [`Report`],
//! [`ReportComponent`], [`DataTable`], [`Topic`] and [`App`]. [`generate::render`] turns them
//! into the CRD YAML committed at `crds/*.yaml`.
//!
//! Rustdoc on a spec or status field is what `kubectl explain` shows, so it is written
//! for users; notes for developers are plain `//` comments.

pub mod app;
pub mod conditions;
pub mod data_table;
mod defaults;
pub mod duration;
pub mod event_schema;
pub mod filter;
pub mod generate;
pub mod kafka_client;
pub mod kafka_security;
pub mod names;
pub mod pipeline;
pub mod registry;
pub mod report;
pub mod report_component;
mod schema;
pub mod topic;
pub mod uploader;
pub mod worker_config;

pub use app::{App, AppSpec, AppStatus};
pub use conditions::{RegistrationStatus, condition_type, reason};
pub use data_table::{DataTable, DataTableColumn, DataTableSpec, DataTableStatus};
pub use filter::{ColumnType, FilterType, ReportFilter};
pub use registry::{
    AnyRegistryDocument, AppEntry, AppMetadata, ComponentEntry, DataTableEntry, EntryKind,
    EntryMetadata, RegistryDocument, RegistryKey, RegistryRecord, ReportEntry, UploaderEntry,
};
pub use report::{Report, ReportSpec, ReportStatus};
pub use report_component::{
    ComponentData, ComponentType, ReportComponent, ReportComponentSpec, ReportComponentStatus,
};
pub use topic::{DeletionPolicy, Topic, TopicSchema, TopicSpec, TopicStatus};
pub use uploader::{
    EncryptionParameters, Flag, UploadLimits, Uploader, UploaderSpec, UploaderStatus,
    ValidationParameters, WorkerSpec,
    processing::{ColumnMapping, MappingType, ProcessingSpec, TableMapping},
};
pub use worker_config::WorkerConfigFile;

/// API group of every Licenseware custom resource.
pub const GROUP: &str = "licenseware.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get licenseware` lists every kind of the project.
pub const CATEGORY: &str = "licenseware";
/// Server-side apply field manager of the operator; one manager so that apply
/// ownership never fights with itself across controllers.
pub const FIELD_MANAGER: &str = "licenseware-operator";

/// The MongoDB collection the SDK writes to when nothing else is said.
pub const DEFAULT_COLLECTION: &str = "Data";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_is_group_slash_version() {
        assert_eq!(format!("{GROUP}/{VERSION}"), "licenseware.io/v1alpha1");
    }
}
