//! The pure steps of a Report, ReportComponent or DataTable reconcile: validate the
//! spec, build the registry entry, and the status the outcome leads to.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use licenseware_crds::{
    DataTable, RegistrationStatus, ReportComponent, Uploader, condition_type,
    conditions::{new_condition, set_condition},
    reason,
    report::Report,
};

use licenseware_crds::registry::{AppMetadata, ComponentAttributes};

use crate::registry::{RegistryEntry, component_entry, datatable_entry, entries, report_entry};

/// Ready reason of a Report that lists a componentId no ReportComponent of its
/// namespace and app has.
pub const COMPONENT_NOT_FOUND: &str = "ComponentNotFound";
/// Ready reason of a Report that lists a ReportComponent whose spec is invalid.
pub const COMPONENT_INVALID: &str = "ComponentInvalid";

/// What the registry should hold for a resource.
#[derive(Debug, Clone, PartialEq)]
pub enum Desired {
    /// This entry (boxed: it is large, the other variants small).
    Register(Box<RegistryEntry>),
    /// Nothing: `registrable: false`.
    NotRegistrable,
    /// Nothing: the resource cannot be registered as it is; the reason and message
    /// say why.
    Invalid { reason: &'static str, message: String },
}

/// The collections an app declares: what its Uploaders (`uploaders`: those of the
/// component's namespace) write, in usedCollections and processing.tables[].collection.
pub fn declared_collections<'a>(app_id: &str, uploaders: &'a [Uploader]) -> Vec<&'a str> {
    uploaders
        .iter()
        .filter(|u| u.spec.app_id == app_id)
        .flat_map(|u| {
            let used = u.spec.used_collections.iter().map(String::as_str);
            let tables = u.spec.processing.tables.iter().map(|t| t.collection.as_str());
            used.chain(tables)
        })
        .collect()
}

/// Checks a ReportComponent's own spec: its attributes against the shape of its type
/// (what the SDK's attribute builders could have built), its pipeline against the
/// allowlist of stages and operators, its collection against the app's declared ones.
/// The error is the condition's reason and message.
pub fn validate_component(
    component: &ReportComponent,
    uploaders: &[Uploader],
) -> Result<(), (&'static str, String)> {
    ComponentAttributes::from_spec(component.spec.component_type, &component.spec.attributes)
        .map_err(|message| (reason::INVALID_SPEC, message))?;
    component
        .spec
        .data
        .check_pipeline()
        .map_err(|error| (reason::PIPELINE_NOT_ALLOWED, error.to_string()))?;
    component
        .spec
        .data
        .check_collection(declared_collections(&component.spec.app_id, uploaders))
        .map_err(|message| (reason::COLLECTION_NOT_ALLOWED, message))
}

/// `uploaders`, `reports` and `components`: the Uploaders, Reports and
/// ReportComponents of the component's namespace (the reports that attach it give it
/// its `order`).
pub fn desired_component(
    component: &ReportComponent,
    uploaders: &[Uploader],
    reports: &[Report],
    components: &[ReportComponent],
) -> Desired {
    if let Err((reason, message)) = validate_component(component, uploaders) {
        return Desired::Invalid { reason, message };
    }
    if !component.spec.registrable {
        return Desired::NotRegistrable;
    }
    Desired::Register(Box::new(component_entry(component, reports, components)))
}

/// `components`: the ReportComponents of the report's namespace that are not being
/// deleted.
/// `app_metadata`: the metadata of the report's app (its App's, or the defaults).
pub fn desired_report(
    report: &Report,
    components: &[ReportComponent],
    uploaders: &[Uploader],
    app_metadata: &AppMetadata,
) -> Desired {
    if !report.spec.registrable {
        return Desired::NotRegistrable;
    }
    let app = &report.spec.app_id;
    let of_app: Vec<&ReportComponent> =
        components.iter().filter(|c| &c.spec.app_id == app).collect();
    let missing: Vec<&str> = report
        .spec
        .components
        .iter()
        .filter(|id| !of_app.iter().any(|c| c.component_id() == **id))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        return Desired::Invalid {
            reason: COMPONENT_NOT_FOUND,
            message: format!(
                "no ReportComponent with appId {app} and componentId {} in this namespace",
                missing.join(", ")
            ),
        };
    }
    let invalid: Vec<String> = entries::report_components(report, components)
        .into_iter()
        .filter_map(|(c, _)| {
            validate_component(c, uploaders)
                .err()
                .map(|(_, why)| format!("{}: {why}", c.component_id()))
        })
        .collect();
    if !invalid.is_empty() {
        return Desired::Invalid {
            reason: COMPONENT_INVALID,
            message: format!("invalid ReportComponent {}", invalid.join("; ")),
        };
    }
    Desired::Register(Box::new(report_entry(report, components, app_metadata)))
}

/// `tables`: the DataTables of the table's namespace that are not being deleted (they
/// give the table its position among its app's tables).
/// `uploaders`: the Uploaders of the table's namespace, which declare the app's
/// collections (the API reads and writes the table's rows, so the same rule as for a
/// component's collection holds).
pub fn desired_datatable(
    table: &DataTable,
    tables: &[DataTable],
    uploaders: &[Uploader],
) -> Desired {
    let declared = declared_collections(&table.spec.app_id, uploaders);
    if let Err(message) =
        licenseware_crds::report_component::check_app_collection(&table.spec.collection, declared)
    {
        return Desired::Invalid { reason: reason::COLLECTION_NOT_ALLOWED, message };
    }
    if !table.spec.registrable {
        return Desired::NotRegistrable;
    }
    Desired::Register(Box::new(datatable_entry(table, entries::datatable_order(table, tables))))
}

/// What one reconcile did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The entry with this key is in the registry.
    Registered {
        key: String,
    },
    NotRegistrable,
    /// The spec, or the resources it refers to, keep it out of the registry.
    Invalid {
        reason: &'static str,
        message: String,
    },
    /// Writing the registry failed (RegistryError, ResourceConflict).
    Failed {
        reason: &'static str,
        message: String,
    },
}

/// The status after `outcome`, starting from `old`; identical input gives an identical
/// status, so nothing is written.
pub fn next_status(
    old: Option<&RegistrationStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Time,
) -> RegistrationStatus {
    let mut status = old.cloned().unwrap_or_default();
    status.observed_generation = generation;
    let (ready, registered) = match outcome {
        Outcome::Registered { key } => (
            (true, reason::RECONCILED, format!("Registered as {key}")),
            (true, reason::RECONCILED, format!("Registry entry {key} is written")),
        ),
        Outcome::NotRegistrable => (
            (true, reason::NOT_REGISTRABLE, "registrable is false: not published".to_owned()),
            (false, reason::NOT_REGISTRABLE, "registrable is false".to_owned()),
        ),
        Outcome::Invalid { reason, message } | Outcome::Failed { reason, message } => {
            ((false, *reason, message.clone()), (false, *reason, message.clone()))
        }
    };
    for (type_, (ok, reason, message)) in
        [(condition_type::READY, ready), (condition_type::REGISTERED, registered)]
    {
        set_condition(
            &mut status.conditions,
            new_condition(type_, ok, reason, message, generation, now.clone()),
        );
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::jiff::Timestamp;
    use licenseware_crds::conditions::{find_condition, is_true};

    fn yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
        serde_yaml::from_str(text).unwrap()
    }

    fn component(id: &str, pipeline: &str) -> ReportComponent {
        yaml(&format!(
            "{{apiVersion: licenseware.io/v1alpha1, kind: ReportComponent,
              metadata: {{name: {}, namespace: ns}},
              spec: {{appId: app, title: T, type: table, attributes: {{}},
                      data: {{pipeline: {pipeline}}}}}}}",
            id.replace('_', "-")
        ))
    }

    fn report(components: &str) -> Report {
        yaml(&format!(
            "{{apiVersion: licenseware.io/v1alpha1, kind: Report,
              metadata: {{name: devices, namespace: ns}},
              spec: {{appId: app, name: Devices, components: {components}}}}}"
        ))
    }

    fn uploader(app: &str, used: &str, table: &str) -> Uploader {
        yaml(&format!(
            "{{apiVersion: licenseware.io/v1alpha1, kind: Uploader,
              metadata: {{name: u, namespace: ns}},
              spec: {{appId: {app}, name: U, acceptedFileTypes: ['.csv'],
                      usedCollections: [{used}],
                      processing: {{tables: [{{collection: {table}, columns: [{{from: a, to: a}}]}}]}}}}}}"
        ))
    }

    #[test]
    fn pipelines_outside_the_allowlist_are_refused_with_the_path() {
        let ok = component("a", r#"[{$group: {_id: "$os"}}]"#);
        assert!(matches!(desired_component(&ok, &[], &[], &[]), Desired::Register(_)));
        let lookup = component("a", "[{$facet: {x: [{$lookup: {from: Quota}}]}}]");
        let Desired::Invalid { reason, message } = desired_component(&lookup, &[], &[], &[]) else {
            panic!("expected invalid")
        };
        assert_eq!(reason, "PipelineNotAllowed");
        assert!(
            message.starts_with("data.pipeline[0].$facet.x[0].$lookup: stage $lookup"),
            "{message}"
        );
        for stage in ["$out", "$merge", "$unionWith", "$graphLookup"] {
            let c = component("a", &format!("[{{$match: {{x: 1}}}}, {{\"{stage}\": {{}}}}]"));
            let (_, message) = validate_component(&c, &[]).unwrap_err();
            assert!(message.contains(stage), "{stage}");
        }
        let js = component("a", "[{$group: {_id: null, x: {$accumulator: {}}}}]");
        let (reason, message) = validate_component(&js, &[]).unwrap_err();
        assert_eq!(reason, "PipelineNotAllowed");
        assert!(message.starts_with("data.pipeline[0].$group.x.$accumulator"), "{message}");
        for operator in ["$function", "$where"] {
            let c = component("a", &format!("[{{$match: {{\"{operator}\": x}}}}]"));
            assert!(validate_component(&c, &[]).unwrap_err().1.contains(operator), "{operator}");
        }
    }

    #[test]
    fn attributes_must_have_the_shape_of_their_type() {
        let mut c = component("a", "[]");
        c.spec.attributes = yaml("{columns: [{name: No prop}]}");
        let Desired::Invalid { reason, message } = desired_component(&c, &[], &[], &[]) else {
            panic!("expected invalid")
        };
        assert_eq!(reason, "InvalidSpec");
        assert_eq!(message, "attributes.columns[0].prop is required");
        let Desired::Invalid { reason, .. } =
            desired_report(&report("[a]"), &[c], &[], &AppMetadata::for_app("a"))
        else {
            panic!("expected invalid")
        };
        assert_eq!(reason, COMPONENT_INVALID);
    }

    #[test]
    fn the_collection_must_be_one_the_app_declares() {
        let mut c = component("a", "[]");
        c.spec.data.collection = "Devices".into();
        let (reason, message) = validate_component(&c, &[]).unwrap_err();
        assert_eq!(reason, "CollectionNotAllowed");
        assert!(message.contains("Devices"), "{message}");
        // Another app's Uploader does not declare it for this app.
        let other = uploader("other", "Devices", "Devices");
        assert!(validate_component(&c, std::slice::from_ref(&other)).is_err());
        assert!(validate_component(&c, &[uploader("app", "Devices", "Data")]).is_ok());
        assert!(validate_component(&c, &[uploader("app", "Data", "Devices")]).is_ok());
        c.spec.data.collection = "Registry".into();
        assert!(validate_component(&c, &[uploader("app", "Registry", "Data")]).is_err());
        // A report with an invalid component says which and why.
        let r = report("[a]");
        let Desired::Invalid { reason, message } =
            desired_report(&r, &[c], &[], &AppMetadata::for_app("a"))
        else {
            panic!("expected invalid")
        };
        assert_eq!(reason, COMPONENT_INVALID);
        assert!(message.contains("reserved"), "{message}");
        // A data table's collection follows the same rule.
        let mut t: DataTable = yaml(
            "{apiVersion: licenseware.io/v1alpha1, kind: DataTable, metadata: {name: t, namespace: ns},
              spec: {appId: app, title: T, collection: Registry, columns: [{prop: x}]}}",
        );
        let Desired::Invalid { reason, .. } = desired_datatable(&t, &[], &[]) else {
            panic!("expected invalid")
        };
        assert_eq!(reason, "CollectionNotAllowed");
        t.spec.collection = "Devices".into();
        assert!(matches!(desired_datatable(&t, &[], &[]), Desired::Invalid { .. }));
        let declared = [uploader("app", "Devices", "Data")];
        assert!(matches!(desired_datatable(&t, &[], &declared), Desired::Register(_)));
    }

    #[test]
    fn not_registrable_wins_over_registration_but_not_over_invalid_spec() {
        let mut c = component("a", "[]");
        c.spec.registrable = false;
        assert_eq!(desired_component(&c, &[], &[], &[]), Desired::NotRegistrable);
        let mut bad = component("a", "[{$out: x}]");
        bad.spec.registrable = false;
        assert!(matches!(desired_component(&bad, &[], &[], &[]), Desired::Invalid { .. }));
        let mut r = report("[missing]");
        r.spec.registrable = false;
        assert_eq!(
            desired_report(&r, &[], &[], &AppMetadata::for_app("a")),
            Desired::NotRegistrable
        );
        let mut t: DataTable = yaml(
            "{apiVersion: licenseware.io/v1alpha1, kind: DataTable, metadata: {name: t, namespace: ns},
              spec: {appId: app, title: T, columns: [{prop: x}], registrable: false}}",
        );
        assert_eq!(desired_datatable(&t, &[], &[]), Desired::NotRegistrable);
        t.spec.registrable = true;
        let Desired::Register(entry) = desired_datatable(&t, std::slice::from_ref(&t), &[]) else {
            panic!("expected an entry")
        };
        assert_eq!(entry.metadata.as_datatable().unwrap().order, 0);
    }

    #[test]
    fn report_needs_its_components_in_its_app() {
        let a = component("a", "[]");
        let mut b_elsewhere = component("b", "[]");
        b_elsewhere.spec.app_id = "other".into();
        let r = report("[a, b]");
        let Desired::Invalid { reason, message } =
            desired_report(&r, &[a.clone(), b_elsewhere], &[], &AppMetadata::for_app("a"))
        else {
            panic!("expected invalid")
        };
        assert_eq!(reason, COMPONENT_NOT_FOUND);
        assert!(message.contains("componentId b"), "{message}");
        let b = component("b", "[]");
        let Desired::Register(entry) =
            desired_report(&r, &[b.clone(), a.clone()], &[], &AppMetadata::for_app("a"))
        else {
            panic!("expected an entry")
        };
        assert_eq!(entry.metadata.as_report().unwrap().report_components.len(), 2);
        let bad_b = component("b", "[{$lookup: {from: x}}]");
        let Desired::Invalid { reason, message } =
            desired_report(&r, &[a, bad_b], &[], &AppMetadata::for_app("a"))
        else {
            panic!("expected invalid")
        };
        assert_eq!(reason, COMPONENT_INVALID);
        assert!(message.contains("b: ") && message.contains("$lookup"), "{message}");
    }

    fn at(seconds: i64) -> Time {
        Time(Timestamp::from_second(seconds).unwrap())
    }

    #[test]
    fn status_follows_the_outcome_and_a_second_pass_changes_nothing() {
        let registered = Outcome::Registered { key: "report/app/devices".into() };
        let first = next_status(None, Some(1), &registered, at(10));
        assert_eq!(first.observed_generation, Some(1));
        assert!(is_true(&first.conditions, "Ready"));
        assert!(is_true(&first.conditions, "Registered"));
        assert_eq!(next_status(Some(&first), Some(1), &registered, at(20)), first);

        let invalid = Outcome::Invalid { reason: COMPONENT_NOT_FOUND, message: "gone".into() };
        let second = next_status(Some(&first), Some(2), &invalid, at(30));
        let ready = find_condition(&second.conditions, "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", COMPONENT_NOT_FOUND));
        assert_eq!(ready.last_transition_time, at(30));

        let off = next_status(Some(&second), Some(3), &Outcome::NotRegistrable, at(40));
        let ready = find_condition(&off.conditions, "Ready").unwrap();
        assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("True", "NotRegistrable"));
        let registered = find_condition(&off.conditions, "Registered").unwrap();
        assert_eq!(registered.status, "False");
    }
}
