//! The registry entries: what the operator writes for each registered resource (MongoDB
//! collection `Registry`, and the compacted Kafka topic `{prefix}licenseware.registry`
//! with key `{kind}/{appId}/{id}`, a tombstone on delete) and what the apps' API reads
//! back.
//!
//! Each kind's metadata is a struct in the SDK's exact shape: its key names (snake_case,
//! `parrent_app` misspelt as the SDK does) in the SDK's key order:
//!
//! | kind | struct | SDK |
//! |---|---|---|
//! | `uploader` | [`UploaderEntry`] | `NewUploader.get_metadata`, plus `worker` |
//! | `report` | [`ReportEntry`] | `NewReport.get_metadata` |
//! | `component` | [`ComponentEntry`] | `NewReportComponent.get_metadata` |
//! | `datatable` | [`DataTableEntry`] | `DataTable.metadata` |
//! | `app` | [`AppEntry`] | `NewApp.get_metadata`, plus the ids of its members |
//!
//! A stored or published document is a [`RegistryDocument`]: the metadata plus `_id`,
//! `kind`, `app_id`, `namespace`, `resource_name` and `updated_at`. Parse any document of
//! the topic with [`AnyRegistryDocument`] (or a whole record with [`RegistryRecord`]):
//!
//! ```
//! use licenseware_crds::registry::{EntryMetadata, RegistryRecord};
//! # let payload = None::<&[u8]>;
//! match RegistryRecord::parse("uploader/ifmp-service/rv_tools", payload) {
//!     Ok(RegistryRecord::Tombstone(key)) => println!("{key} is gone"),
//!     Ok(RegistryRecord::Document(document)) => match &document.entry {
//!         EntryMetadata::Uploader(u) => println!("events on {}", u.worker.events_topic),
//!         _ => {}
//!     },
//!     Err(error) => eprintln!("skipped: {error}"),
//! }
//! ```

mod app;
mod attributes;
mod component;
mod datatable;
mod report;
mod uploader;

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de, ser::SerializeMap};
use serde_json::{Map, Value};

pub use app::{APP_STATUS_AVAILABLE, AppEntry, AppMetadata};
pub use attributes::{
    AxisItem, BarHorizontalAttributes, CategoryItem, ComponentAttributes, DataNarrativeAttributes,
    DataNarrativeSeries, DetailColumn, DetailedSummaryAttributes, DetailedSummaryV2Attributes,
    DetailedValue, LabelItem, LabelOrValue, PieAttributes, RelationshipGraphAttributes,
    StackedAttributes, StackedSeries, SummaryAttributes, SummaryValue, TableAttributes,
    TableColumn, ValueItem, XAxisItem,
};
pub use component::ComponentEntry;
pub use datatable::{ColumnEntry, DATATABLE_TYPE, DataTableEntry, entities_url, urlencode};
pub use report::{FilterEntry, ReportEntry};
pub use uploader::{EncryptionParametersEntry, UploaderEntry, ValidationParametersEntry};

/// The kinds of registry document; the first segment of every key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EntryKind {
    Uploader,
    Report,
    Component,
    DataTable,
    App,
}

impl EntryKind {
    /// Every kind, in key order.
    pub const ALL: [Self; 5] =
        [Self::Uploader, Self::Report, Self::Component, Self::DataTable, Self::App];

    /// The name used in keys and in the documents' `kind` field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Uploader => "uploader",
            Self::Report => "report",
            Self::Component => "component",
            Self::DataTable => "datatable",
            Self::App => "app",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for EntryKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for EntryKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EntryKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| de::Error::custom(format!("unknown registry kind {s:?}")))
    }
}

/// `{kind}/{appId}/{id}`: the MongoDB `_id` and the Kafka record key of an entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RegistryKey {
    pub kind: EntryKind,
    pub app_id: String,
    pub id: String,
}

impl RegistryKey {
    pub fn new(kind: EntryKind, app_id: impl Into<String>, id: impl Into<String>) -> Self {
        Self { kind, app_id: app_id.into(), id: id.into() }
    }

    /// Parses `{kind}/{appId}/{id}`.
    pub fn parse(key: &str) -> Option<Self> {
        let mut parts = key.splitn(3, '/');
        let kind = EntryKind::parse(parts.next()?)?;
        let app_id = parts.next()?;
        let id = parts.next()?;
        Some(Self::new(kind, app_id, id))
    }
}

impl fmt::Display for RegistryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.kind, self.app_id, self.id)
    }
}

impl Serialize for RegistryKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for RegistryKey {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Self::parse(&s).ok_or_else(|| {
            de::Error::custom(format!("registry key {s:?} is not {{kind}}/{{appId}}/{{id}}"))
        })
    }
}

/// The metadata of one kind of entry.
pub trait RegistryMetadata: Serialize + for<'de> Deserialize<'de> {
    /// The kind of entry this metadata is.
    fn entry_kind(&self) -> EntryKind;

    /// Sets the times the SDK writes into the metadata (`updated_at`, and that of the
    /// embedded app metadata) to `updated_at`, the document's.
    fn stamp(&mut self, updated_at: &str) {
        let _ = updated_at;
    }
}

/// The metadata of any kind of entry. Serializes as the inner struct; deserializes by
/// the map's `kind` key (which every [`RegistryDocument`] has).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
// Registry documents are few and rarely moved; boxing the variants would only make
// matching on them clumsier.
#[allow(clippy::large_enum_variant)]
pub enum EntryMetadata {
    Uploader(UploaderEntry),
    Report(ReportEntry),
    Component(ComponentEntry),
    DataTable(DataTableEntry),
    App(AppEntry),
}

impl RegistryMetadata for EntryMetadata {
    fn entry_kind(&self) -> EntryKind {
        match self {
            Self::Uploader(_) => EntryKind::Uploader,
            Self::Report(_) => EntryKind::Report,
            Self::Component(_) => EntryKind::Component,
            Self::DataTable(_) => EntryKind::DataTable,
            Self::App(_) => EntryKind::App,
        }
    }

    fn stamp(&mut self, updated_at: &str) {
        match self {
            Self::Uploader(e) => e.stamp(updated_at),
            Self::Report(e) => e.stamp(updated_at),
            Self::Component(e) => e.stamp(updated_at),
            Self::DataTable(e) => e.stamp(updated_at),
            Self::App(e) => e.stamp(updated_at),
        }
    }
}

impl<'de> Deserialize<'de> for EntryMetadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let kind = map
            .get("kind")
            .and_then(Value::as_str)
            .ok_or_else(|| de::Error::custom("the registry document has no kind"))?;
        let kind = EntryKind::parse(kind)
            .ok_or_else(|| de::Error::custom(format!("unknown registry kind {kind:?}")))?;
        let value = Value::Object(map);
        let parsed = match kind {
            EntryKind::Uploader => serde_json::from_value(value).map(Self::Uploader),
            EntryKind::Report => serde_json::from_value(value).map(Self::Report),
            EntryKind::Component => serde_json::from_value(value).map(Self::Component),
            EntryKind::DataTable => serde_json::from_value(value).map(Self::DataTable),
            EntryKind::App => serde_json::from_value(value).map(Self::App),
        };
        parsed.map_err(|error| de::Error::custom(format!("{kind} entry: {error}")))
    }
}

impl EntryMetadata {
    pub fn as_uploader(&self) -> Option<&UploaderEntry> {
        if let Self::Uploader(e) = self { Some(e) } else { None }
    }
    pub fn as_report(&self) -> Option<&ReportEntry> {
        if let Self::Report(e) = self { Some(e) } else { None }
    }
    pub fn as_component(&self) -> Option<&ComponentEntry> {
        if let Self::Component(e) = self { Some(e) } else { None }
    }
    pub fn as_datatable(&self) -> Option<&DataTableEntry> {
        if let Self::DataTable(e) = self { Some(e) } else { None }
    }
    pub fn as_app(&self) -> Option<&AppEntry> {
        if let Self::App(e) = self { Some(e) } else { None }
    }
}

macro_rules! metadata_kind {
    ($($ty:ty => $kind:ident),* $(,)?) => {$(
        impl From<$ty> for EntryMetadata {
            fn from(entry: $ty) -> Self {
                Self::$kind(entry)
            }
        }
    )*};
}
metadata_kind!(
    UploaderEntry => Uploader,
    ReportEntry => Report,
    ComponentEntry => Component,
    DataTableEntry => DataTable,
    AppEntry => App,
);

/// One document of the registry, as stored in MongoDB and published on the registry
/// topic: the SDK metadata (`entry`, its keys at the top level) plus `_id` (the key),
/// `kind`, `app_id` (data tables have none in the SDK's metadata; every document has it
/// here), `namespace` and `resource_name` (the resource that wrote it; empty for app
/// documents) and `updated_at` (when the content last changed, UTC ISO format without a
/// zone, as the SDK writes it). Where the metadata has `app_id` or `updated_at`
/// itself, the document's value is written in its place.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryDocument<T> {
    /// `_id`; its kind and app id are the document's `kind` and `app_id`.
    pub key: RegistryKey,
    pub namespace: String,
    pub resource_name: String,
    pub updated_at: String,
    pub entry: T,
}

/// A registry document of any kind.
pub type AnyRegistryDocument = RegistryDocument<EntryMetadata>;

/// The keys a document adds to its metadata.
const DOCUMENT_KEYS: [&str; 6] =
    ["_id", "kind", "app_id", "namespace", "resource_name", "updated_at"];

impl<T: RegistryMetadata> RegistryDocument<T> {
    /// The document of `entry`, stamped with `updated_at` (see [`RegistryMetadata::stamp`]).
    pub fn new(
        key: RegistryKey,
        namespace: impl Into<String>,
        resource_name: impl Into<String>,
        updated_at: impl Into<String>,
        mut entry: T,
    ) -> Self {
        let updated_at = updated_at.into();
        entry.stamp(&updated_at);
        Self {
            key,
            namespace: namespace.into(),
            resource_name: resource_name.into(),
            updated_at,
            entry,
        }
    }

    /// The document as a JSON object.
    pub fn to_json(&self) -> Result<Map<String, Value>, serde_json::Error> {
        match serde_json::to_value(self)? {
            Value::Object(map) => Ok(map),
            _ => Err(serde::ser::Error::custom("a registry document is an object")),
        }
    }

    /// Parses a document from its JSON (a registry topic record's value).
    pub fn from_slice(json: &[u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(json)
    }

    fn document_value(&self, key: &str) -> Value {
        match key {
            "_id" => Value::String(self.key.to_string()),
            "kind" => Value::String(self.key.kind.as_str().to_owned()),
            "app_id" => Value::String(self.key.app_id.clone()),
            "namespace" => Value::String(self.namespace.clone()),
            "resource_name" => Value::String(self.resource_name.clone()),
            _ => Value::String(self.updated_at.clone()),
        }
    }
}

impl<T: RegistryMetadata> Serialize for RegistryDocument<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let metadata = match serde_json::to_value(&self.entry).map_err(serde::ser::Error::custom)? {
            Value::Object(map) => map,
            _ => return Err(serde::ser::Error::custom("registry metadata must be an object")),
        };
        let mut map = serializer.serialize_map(None)?;
        map.serialize_entry("_id", &self.document_value("_id"))?;
        for (key, value) in &metadata {
            if DOCUMENT_KEYS.contains(&key.as_str()) {
                map.serialize_entry(key, &self.document_value(key))?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        for key in &DOCUMENT_KEYS[1..] {
            if !metadata.contains_key(*key) {
                map.serialize_entry(key, &self.document_value(key))?;
            }
        }
        map.end()
    }
}

impl<'de, T: RegistryMetadata> Deserialize<'de> for RegistryDocument<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = Map::<String, Value>::deserialize(deserializer)?;
        let text = |name: &str| -> Result<String, D::Error> {
            match map.get(name) {
                Some(Value::String(s)) => Ok(s.clone()),
                Some(Value::Null) | None if name != "_id" && name != "kind" => Ok(String::new()),
                _ => Err(de::Error::custom(format!("registry document: {name} must be a string"))),
            }
        };
        let id = text("_id")?;
        let key = RegistryKey::parse(&id).ok_or_else(|| {
            de::Error::custom(format!(
                "registry document: _id {id:?} is not {{kind}}/{{appId}}/{{id}}"
            ))
        })?;
        let kind = text("kind")?;
        if kind != key.kind.as_str() {
            return Err(de::Error::custom(format!("registry document {id}: kind is {kind:?}")));
        }
        let app_id = text("app_id")?;
        if app_id != key.app_id {
            return Err(de::Error::custom(format!("registry document {id}: app_id is {app_id:?}")));
        }
        let (namespace, resource_name, updated_at) =
            (text("namespace")?, text("resource_name")?, text("updated_at")?);
        let entry = T::deserialize(Value::Object(map))
            .map_err(|error| de::Error::custom(format!("registry document {id}: {error}")))?;
        if entry.entry_kind() != key.kind {
            return Err(de::Error::custom(format!(
                "registry document {id}: expected a {} entry",
                entry.entry_kind()
            )));
        }
        Ok(Self { key, namespace, resource_name, updated_at, entry })
    }
}

/// One record of the registry topic.
#[derive(Debug, Clone, PartialEq)]
pub enum RegistryRecord {
    /// The entry of this key was written (created or changed).
    Document(Box<AnyRegistryDocument>),
    /// The entry of this key was removed.
    Tombstone(RegistryKey),
}

/// Why a registry topic record could not be read.
#[derive(Debug)]
pub enum RecordError {
    /// The record key is not `{kind}/{appId}/{id}`.
    Key(String),
    /// The value is not a registry document of its key's kind.
    Document { key: String, error: serde_json::Error },
    /// The value's `_id` differs from the record key.
    KeyMismatch { key: String, id: String },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Key(key) => {
                write!(f, "registry record key {key:?} is not {{kind}}/{{appId}}/{{id}}")
            }
            Self::Document { key, error } => write!(f, "registry record {key}: {error}"),
            Self::KeyMismatch { key, id } => {
                write!(f, "registry record {key} holds the document {id}")
            }
        }
    }
}

impl std::error::Error for RecordError {}

impl RegistryRecord {
    /// Reads a record of the registry topic: its key and value (`None`: a tombstone).
    pub fn parse(key: &str, value: Option<&[u8]>) -> Result<Self, RecordError> {
        let parsed = RegistryKey::parse(key).ok_or_else(|| RecordError::Key(key.to_owned()))?;
        let Some(value) = value else {
            return Ok(Self::Tombstone(parsed));
        };
        let document = AnyRegistryDocument::from_slice(value)
            .map_err(|error| RecordError::Document { key: key.to_owned(), error })?;
        if document.key != parsed {
            return Err(RecordError::KeyMismatch {
                key: key.to_owned(),
                id: document.key.to_string(),
            });
        }
        Ok(Self::Document(Box::new(document)))
    }

    /// The key of the record.
    pub fn key(&self) -> &RegistryKey {
        match self {
            Self::Document(document) => &document.key,
            Self::Tombstone(key) => key,
        }
    }
}

#[cfg(test)]
mod tests;
