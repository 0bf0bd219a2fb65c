//! Types shared by the operator and the worker: the custom resources of the
//! `licenseware.io` API group and the contracts they exchange on the wire.

/// API group of every Licenseware custom resource.
pub const GROUP: &str = "licenseware.io";
/// The one served and stored version.
pub const VERSION: &str = "v1alpha1";
/// `kubectl get licenseware` lists every kind of the project.
pub const CATEGORY: &str = "licenseware";
/// Server-side apply field manager of the operator; one manager so that apply
/// ownership never fights with itself across controllers.
pub const FIELD_MANAGER: &str = "licenseware-operator";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_version_is_group_slash_version() {
        assert_eq!(format!("{GROUP}/{VERSION}"), "licenseware.io/v1alpha1");
    }
}
