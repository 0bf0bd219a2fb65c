//! The pure steps of an App: which App describes an appId, the metadata the registry
//! entries of that app carry, and the status an App gets.

use licenseware_crds::{App, reason, registry::AppMetadata};

use crate::controllers::registry_kinds::plan::Outcome;

/// The App that describes `app_id` among `apps` (those of one namespace): the oldest
/// one not being deleted (then by name), so adding a second App never takes the
/// description away from the first.
pub fn describing<'a>(app_id: &str, apps: &'a [App]) -> Option<&'a App> {
    apps.iter()
        .filter(|app| app.spec.app_id == app_id && app.metadata.deletion_timestamp.is_none())
        .min_by(|a, b| {
            let age = |app: &App| app.metadata.creation_timestamp.as_ref().map(|t| t.0);
            age(a).cmp(&age(b)).then_with(|| a.metadata.name.cmp(&b.metadata.name))
        })
}

/// What the registry entries of `app_id` carry as `parrent_app`/`apps`: the describing
/// App's metadata, else the SDK's defaults for a bare id.
pub fn app_metadata(app_id: &str, apps: &[App]) -> AppMetadata {
    describing(app_id, apps).map_or_else(|| AppMetadata::for_app(app_id), |app| app.spec.metadata())
}

/// The outcome for `app`: Ready when it describes its appId, else a conflict naming the
/// App that does.
pub fn outcome(app: &App, apps: &[App]) -> Outcome {
    let app_id = &app.spec.app_id;
    match describing(app_id, apps) {
        Some(winner) if winner.metadata.name != app.metadata.name => Outcome::Invalid {
            reason: reason::RESOURCE_CONFLICT,
            message: format!(
                "App {} already describes appId {app_id} (the oldest App of an appId wins)",
                winner.metadata.name.as_deref().unwrap_or_default()
            ),
        },
        _ => Outcome::Registered { key: format!("app/{app_id}/{app_id}") },
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::Timestamp;
    use licenseware_crds::AppSpec;
    use serde_json::json;

    use super::*;

    fn app(name: &str, app_id: &str, created: i64, description: &str) -> App {
        let spec: AppSpec =
            serde_json::from_value(json!({"appId": app_id, "description": description})).unwrap();
        let mut app = App::new(name, spec);
        app.metadata.creation_timestamp = Some(Time(Timestamp::from_second(created).unwrap()));
        app
    }

    #[test]
    fn the_oldest_app_of_an_id_describes_it_and_a_second_is_a_conflict() {
        let apps = [app("b", "ifmp", 20, "second"), app("a", "ifmp", 10, "first")];
        assert_eq!(app_metadata("ifmp", &apps).description.as_deref(), Some("first"));
        assert!(matches!(outcome(&apps[1], &apps), Outcome::Registered { .. }));
        let Outcome::Invalid { reason, message } = outcome(&apps[0], &apps) else {
            panic!("a conflict")
        };
        assert_eq!(reason, "ResourceConflict");
        assert!(message.contains("App a already describes appId ifmp"), "{message}");
    }

    #[test]
    fn without_an_app_the_defaults_hold_and_deleting_falls_back() {
        assert_eq!(app_metadata("ifmp-service", &[]), AppMetadata::for_app("ifmp-service"));
        let mut apps = [app("a", "ifmp", 10, "first"), app("b", "ifmp", 20, "second")];
        apps[0].metadata.deletion_timestamp = Some(Time(Timestamp::from_second(30).unwrap()));
        assert_eq!(app_metadata("ifmp", &apps).description.as_deref(), Some("second"));
        assert_eq!(app_metadata("other", &apps), AppMetadata::for_app("other"));
    }
}
