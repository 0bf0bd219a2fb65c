//! A controller's finalizer on the objects it reconciles, added and removed with a
//! merge patch.

use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
};
use serde_json::json;

use crate::controllers::scope::Namespaced;

/// Whether `object` carries `finalizer`.
pub fn has<K: Resource>(object: &K, finalizer: &str) -> bool {
    object.finalizers().iter().any(|f| f == finalizer)
}

/// Adds (`present`) or removes `finalizer`, keeping the others. The patch carries the
/// resourceVersion, so it fails (and is retried) instead of overwriting a list another
/// controller changed in between. Removing it from an object that is gone already
/// succeeds: nothing is left to finalize. Returns the object's new resourceVersion
/// (`None` when it was gone).
#[tracing::instrument(name = "set_finalizer", level = "debug", skip_all)]
pub async fn set<K>(
    client: &Client,
    object: &K,
    finalizer: &str,
    present: bool,
) -> Result<Option<String>, kube::Error>
where
    K: Namespaced,
{
    let mut finalizers: Vec<String> =
        object.finalizers().iter().filter(|f| *f != finalizer).cloned().collect();
    if present {
        finalizers.push(finalizer.to_owned());
    }
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.resource_version(),
        }
    });
    match api.patch(&object.name_any(), &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(patched) => Ok(patched.resource_version()),
        Err(kube::Error::Api(status)) if status.code == 404 && !present => Ok(None),
        Err(error) => Err(error),
    }
}
