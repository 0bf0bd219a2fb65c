//! Deterministic document ids. A Kafka event can be delivered twice (at-least-once);
//! processing it again must give the same `_id`s so that the second write replaces the
//! first instead of duplicating every row.
//!
//! Ids are the first 128 bits of a SHA-256, in hex (32 characters): collisions stay
//! negligible for any number of rows a tenant can upload, and the `_id` index is half
//! the size of full digests. Each part is length-prefixed before hashing so that
//! `("ab", "c")` and `("a", "bc")` never hash alike.

use mongodb::bson::Bson;
use sha2::{Digest, Sha256};

use super::context::FileContext;
use super::json::bson_to_json;

const ID_BYTES: usize = 16;

/// `_id` of a row of a table without `key`: one document per row of each event, so
/// the row's place in the upload identifies it.
pub fn document_id(context: &FileContext, table_index: usize, row_number: u64) -> String {
    let table_index = (table_index as u64).to_le_bytes();
    let row_number = row_number.to_le_bytes();
    digest(&[
        b"row",
        context.tenant_id.as_bytes(),
        context.uploader_id.as_bytes(),
        context.event_id.as_bytes(),
        context.source_file.as_bytes(),
        &table_index,
        &row_number,
    ])
}

/// `_key` of a row of a table with `key`: what the row is about (its key fields'
/// converted values, in `key` order) within the tenant, uploader, collection and
/// document type; the same across events. A key field the row lacks counts as null.
pub fn row_key(
    context: &FileContext,
    collection: &str,
    document_type: Option<&str>,
    key_values: &[(&str, &Bson)],
) -> String {
    // A missing document type must not hash like an empty one.
    let document_type = document_type.map_or_else(|| "0".to_owned(), |kind| format!("1{kind}"));
    let mut encoded_values = Vec::with_capacity(key_values.len() * 2);
    for (field, value) in key_values {
        encoded_values.push(field.as_bytes().to_vec());
        // Relaxed extended JSON is a stable text for any BSON value, dates included.
        encoded_values.push(bson_to_json(value).to_string().into_bytes());
    }
    let mut parts: Vec<&[u8]> = vec![
        b"key",
        context.tenant_id.as_bytes(),
        context.uploader_id.as_bytes(),
        collection.as_bytes(),
        document_type.as_bytes(),
    ];
    parts.extend(encoded_values.iter().map(Vec::as_slice));
    digest(&parts)
}

/// `_id` of a keyed row: its `_key` within this event. Redelivering the event gives the
/// same ids, and a later event gives new ones, so the consumer can write the new
/// documents first and then delete the older ones with the same `_key` and another
/// `event_id` (the newer upload supersedes, and a failure in between loses nothing).
/// Two rows of one event with the same key get one `_id`: the last row wins.
pub fn keyed_document_id(context: &FileContext, key: &str) -> String {
    digest(&[b"keyed", context.event_id.as_bytes(), key.as_bytes()])
}

fn digest(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    let hash = hasher.finalize();
    hash.iter().take(ID_BYTES).fold(String::with_capacity(ID_BYTES * 2), |mut hex, byte| {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
        hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        hex
    })
}

#[cfg(test)]
mod tests {
    use mongodb::bson::DateTime;

    use super::*;

    fn context(event_id: &str) -> FileContext {
        FileContext {
            tenant_id: "tenant".into(),
            app_id: "app".into(),
            uploader_id: "rv_tools".into(),
            event_id: event_id.into(),
            source_file: "RVTools.xlsx".into(),
            updated_at: DateTime::from_millis(0),
        }
    }

    #[test]
    fn row_ids_are_stable_and_differ_by_row_table_and_event() {
        let first = document_id(&context("e1"), 0, 7);
        assert_eq!(first, document_id(&context("e1"), 0, 7), "redelivery gives the same id");
        assert_eq!(first.len(), 32);
        assert!(first.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(first, document_id(&context("e1"), 0, 8));
        assert_ne!(first, document_id(&context("e1"), 1, 7));
        assert_ne!(first, document_id(&context("e2"), 0, 7));
    }

    #[test]
    fn keys_ignore_the_event_and_ids_of_keyed_rows_do_not() {
        let name = Bson::String("vm-01".into());
        let key_e1 = row_key(&context("e1"), "vms", Some("vm"), &[("name", &name)]);
        let key_e2 = row_key(&context("e2"), "vms", Some("vm"), &[("name", &name)]);
        assert_eq!(key_e1, key_e2);
        assert_ne!(
            keyed_document_id(&context("e1"), &key_e1),
            keyed_document_id(&context("e2"), &key_e2)
        );
        assert_ne!(key_e1, row_key(&context("e1"), "vms", None, &[("name", &name)]));
        assert_ne!(key_e1, row_key(&context("e1"), "vms", Some(""), &[("name", &name)]));
        assert_ne!(key_e1, row_key(&context("e1"), "hosts", Some("vm"), &[("name", &name)]));
        let other = Bson::String("vm-02".into());
        assert_ne!(key_e1, row_key(&context("e1"), "vms", Some("vm"), &[("name", &other)]));
    }

    #[test]
    fn parts_are_length_prefixed() {
        assert_ne!(digest(&[b"ab", b"c"]), digest(&[b"a", b"bc"]));
    }
}
