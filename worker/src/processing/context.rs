use mongodb::bson::DateTime;

/// The values every document of one file carries, whatever its table: who uploaded it,
/// in which event, from which file, and when it was processed.
#[derive(Debug, Clone, PartialEq)]
pub struct FileContext {
    pub tenant_id: String,
    pub app_id: String,
    pub uploader_id: String,
    pub event_id: String,
    /// The file's name as the documents show it (the uploaded name, not the worker's
    /// storage path, so that documents do not depend on where the worker keeps files).
    pub source_file: String,
    /// One instant per file, so that all its documents agree (and a test can fix it).
    pub updated_at: DateTime,
}
