//! A mapped row on its way out: the row's own values plus references to what every
//! document of its table and file shares (the context fields, the document type, the
//! field names). The consumer turns it into a BSON [`Document`]; the `process` command
//! prints it as JSON straight from here, which spares building a map (hashing every
//! field name, allocating every shared value) per row.

use mongodb::bson::{Bson, Document};
use serde::{Serialize, Serializer, ser::SerializeMap};

use super::context::FileContext;
use super::json::PlainJsonValue;

#[derive(Debug, Clone, PartialEq)]
pub struct RowDocument<'a> {
    pub(super) collection: &'a str,
    pub(super) context: &'a FileContext,
    pub(super) document_type: Option<&'a str>,
    pub(super) id: String,
    pub(super) key: Option<String>,
    /// The mapped fields, in mapping order.
    pub(super) fields: Vec<(&'a str, Bson)>,
}

impl<'a> RowDocument<'a> {
    pub fn collection(&self) -> &'a str {
        self.collection
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// The document as stored: the context fields first (`_id`, `tenant_id`, `app_id`,
    /// `uploader_id`, `event_id`, `source_file`, `updated_at`), then `document_type`
    /// and `_key` when the table has them, then the mapped fields.
    pub fn into_document(self) -> Document {
        let mut document = Document::new();
        document.insert("_id", self.id);
        document.insert("tenant_id", self.context.tenant_id.as_str());
        document.insert("app_id", self.context.app_id.as_str());
        document.insert("uploader_id", self.context.uploader_id.as_str());
        document.insert("event_id", self.context.event_id.as_str());
        document.insert("source_file", self.context.source_file.as_str());
        document.insert("updated_at", self.context.updated_at);
        if let Some(document_type) = self.document_type {
            document.insert("document_type", document_type);
        }
        if let Some(key) = self.key {
            document.insert("_key", key);
        }
        for (field, value) in self.fields {
            document.insert(field, value);
        }
        document
    }
}

/// The same JSON as [`super::PlainJsonDocument`] of [`RowDocument::into_document`].
impl Serialize for RowDocument<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let context = self.context;
        let optional = usize::from(self.document_type.is_some()) + usize::from(self.key.is_some());
        let mut map = serializer.serialize_map(Some(7 + optional + self.fields.len()))?;
        map.serialize_entry("_id", &self.id)?;
        map.serialize_entry("tenant_id", &context.tenant_id)?;
        map.serialize_entry("app_id", &context.app_id)?;
        map.serialize_entry("uploader_id", &context.uploader_id)?;
        map.serialize_entry("event_id", &context.event_id)?;
        map.serialize_entry("source_file", &context.source_file)?;
        map.serialize_entry("updated_at", &PlainJsonValue(&Bson::DateTime(context.updated_at)))?;
        if let Some(document_type) = self.document_type {
            map.serialize_entry("document_type", document_type)?;
        }
        if let Some(key) = &self.key {
            map.serialize_entry("_key", key)?;
        }
        // A mapped field never repeats a context field (the mapping is checked for that),
        // so the map has no duplicate keys, as the Document it mirrors.
        for (field, value) in &self.fields {
            map.serialize_entry(field, &PlainJsonValue(value))?;
        }
        map.end()
    }
}
