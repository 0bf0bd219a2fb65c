//! What the `Registry` collection holds, kept in memory: for every entry its owner
//! resource, its app and, for Uploaders and Reports, the app metadata it carries.
//!
//! Read with one scan when first needed and then kept up to date by the writer's own
//! writes (the operator is the registry's only writer: leader election), so that
//! finding a resource's stale entries and the members of an app reads nothing. Both
//! were a query per reconcile, a full collection scan on FerretDB: with 1000 Uploaders
//! of one app, minutes of scans.

use std::collections::{BTreeSet, HashMap};

use licenseware_crds::registry::AppMetadata;
use serde_json::{Map, Value};

use super::{EntryKind, RegistryKey};

/// The fields of a document the index keeps (the projection of the scan).
pub const FIELDS: [&str; 6] =
    ["_id", "kind", "namespace", "resource_name", "updated_at", "parrent_app"];

/// One stored entry.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: RegistryKey,
    pub namespace: String,
    pub resource_name: String,
    pub updated_at: String,
    /// The app metadata an Uploader or a Report carries (`parrent_app`).
    pub app: Option<AppMetadata>,
}

impl Member {
    /// The member a stored document describes; `None` for a document without a
    /// parseable key (not ours to manage: no query of the writer ever matched it).
    pub fn from_document(document: &Map<String, Value>) -> Option<Self> {
        let text = |name: &str| document.get(name).and_then(Value::as_str).unwrap_or_default();
        let key = RegistryKey::parse(text("_id"))?;
        if text("kind") != key.kind.as_str() {
            return None;
        }
        Some(Self {
            namespace: text("namespace").to_owned(),
            resource_name: text("resource_name").to_owned(),
            updated_at: text("updated_at").to_owned(),
            app: document
                .get("parrent_app")
                .and_then(|app| serde_json::from_value(app.clone()).ok()),
            key,
        })
    }

    fn owned_by(&self, kind: EntryKind, namespace: &str, resource_name: &str) -> bool {
        self.key.kind == kind && self.namespace == namespace && self.resource_name == resource_name
    }
}

/// The entries of the collection by key.
#[derive(Debug, Default)]
pub struct Index {
    members: HashMap<String, Member>,
}

impl Index {
    pub fn new(members: impl IntoIterator<Item = Member>) -> Self {
        Self { members: members.into_iter().map(|m| (m.key.to_string(), m)).collect() }
    }

    pub fn insert(&mut self, member: Member) {
        self.members.insert(member.key.to_string(), member);
    }

    /// Inserts `member`, when there is one.
    pub fn extend(&mut self, member: Option<Member>) {
        if let Some(member) = member {
            self.insert(member);
        }
    }

    pub fn remove(&mut self, key: &str) {
        self.members.remove(key);
    }

    pub fn contains(&self, key: &str) -> bool {
        self.members.contains_key(key)
    }

    /// The keys the resource `namespace/resource_name` of `kind` wrote, except `keep`:
    /// sorted, so removals happen in the same order every time.
    pub fn keys_of(
        &self,
        kind: EntryKind,
        namespace: &str,
        resource_name: &str,
        keep: Option<&str>,
    ) -> Vec<String> {
        let keys: BTreeSet<&String> = self
            .members
            .iter()
            .filter(|(key, member)| {
                member.owned_by(kind, namespace, resource_name) && Some(key.as_str()) != keep
            })
            .map(|(key, _)| key)
            .collect();
        keys.into_iter().cloned().collect()
    }

    /// The entries of `app_id` other than its app entry, by key.
    pub fn app_members(&self, app_id: &str) -> Vec<&Member> {
        let mut members: Vec<&Member> = self
            .members
            .values()
            .filter(|m| m.key.app_id == app_id && m.key.kind != EntryKind::App)
            .collect();
        members.sort_by_key(|m| m.key.to_string());
        members
    }
}

/// The app's metadata as its members carry it (`parrent_app` of its Uploaders and
/// Reports, built from the App of their namespace, if any): that of the most recently
/// written member, so an edited App reaches the app's entry with the first member it
/// reaches. Without members that carry one: the defaults.
pub fn app_metadata_of(app_id: &str, members: &[&Member]) -> AppMetadata {
    members
        .iter()
        .filter_map(|member| {
            let app = member.app.as_ref()?;
            (app.app_id == app_id).then_some((member.updated_at.as_str(), app))
        })
        .max_by(|a, b| a.0.cmp(b.0))
        .map_or_else(
            || AppMetadata::for_app(app_id),
            |(_, app)| AppMetadata { updated_at: None, ..app.clone() },
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(key: &str, namespace: &str, name: &str) -> Member {
        Member {
            key: RegistryKey::parse(key).unwrap(),
            namespace: namespace.into(),
            resource_name: name.into(),
            updated_at: String::new(),
            app: None,
        }
    }

    #[test]
    fn a_resource_finds_its_other_keys_and_no_one_elses() {
        let index = Index::new([
            member("uploader/a/old_id", "n", "up"),
            member("uploader/a/new_id", "n", "up"),
            member("uploader/b/x", "n", "up"),
            member("uploader/a/other", "n", "up-2"),
            member("uploader/a/same", "m", "up"),
            member("report/a/up", "n", "up"),
        ]);
        assert_eq!(
            index.keys_of(EntryKind::Uploader, "n", "up", Some("uploader/a/new_id")),
            ["uploader/a/old_id", "uploader/b/x"]
        );
        assert_eq!(index.keys_of(EntryKind::Report, "n", "up", None), ["report/a/up"]);
        assert!(index.keys_of(EntryKind::Uploader, "o", "up", None).is_empty());
    }

    #[test]
    fn an_apps_members_leave_out_its_own_entry_and_other_apps() {
        let mut index = Index::new([
            member("app/a/a", "n", "app"),
            member("uploader/a/u", "n", "u"),
            member("report/a/r", "n", "r"),
            member("uploader/b/u", "n", "u-b"),
        ]);
        let keys = |index: &Index| {
            index.app_members("a").iter().map(|m| m.key.to_string()).collect::<Vec<_>>()
        };
        assert_eq!(keys(&index), ["report/a/r", "uploader/a/u"]);
        index.remove("report/a/r");
        index.insert(member("datatable/a/t", "n", "t"));
        assert_eq!(keys(&index), ["datatable/a/t", "uploader/a/u"]);
        assert!(index.contains("app/a/a"));
    }

    #[test]
    fn a_stored_document_becomes_a_member_only_with_a_consistent_key() {
        let app = serde_json::to_value(AppMetadata::for_app("a")).unwrap();
        let document = serde_json::json!({
            "_id": "uploader/a/u", "kind": "uploader", "namespace": "n",
            "resource_name": "u", "updated_at": "2026", "parrent_app": app,
        });
        let parsed = Member::from_document(document.as_object().unwrap()).unwrap();
        assert_eq!(parsed.key, RegistryKey::parse("uploader/a/u").unwrap());
        assert_eq!(parsed.app, Some(AppMetadata::for_app("a")));
        let mut wrong = document.as_object().unwrap().clone();
        wrong.insert("kind".into(), "report".into());
        assert_eq!(Member::from_document(&wrong), None);
        wrong.insert("_id".into(), "not a key".into());
        assert_eq!(Member::from_document(&wrong), None);
    }

    #[test]
    fn the_app_entry_takes_the_metadata_of_its_latest_member() {
        let with_app = |updated_at: &str, description: Option<&str>| {
            let mut app = AppMetadata::for_app("ifmp");
            app.description = description.map(str::to_owned);
            app.updated_at = Some(updated_at.to_owned());
            Member {
                updated_at: updated_at.into(),
                app: Some(app),
                ..member("uploader/ifmp/u", "n", "u")
            }
        };
        let datatable =
            Member { updated_at: "2027".into(), ..member("datatable/ifmp/t", "n", "t") };
        let (new, old) = (with_app("2026-01-02", Some("new")), with_app("2026-01-01", Some("old")));
        let members = [&new, &old, &datatable];
        let app = app_metadata_of("ifmp", &members);
        assert_eq!(app.description.as_deref(), Some("new"));
        assert_eq!(app.updated_at, None, "stamped when the app entry is written");
        assert_eq!(app_metadata_of("ifmp", &members[2..]), AppMetadata::for_app("ifmp"));
        assert_eq!(app_metadata_of("other", &members), AppMetadata::for_app("other"));
    }
}
