//! Writing a reconciled object's status: server-side apply under [`FIELD_MANAGER`],
//! only when it changed, then a Warning Event when Ready turned to a new failure.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::{
    Api, Client, ResourceExt,
    api::{Patch, PatchParams},
    runtime::events::Recorder,
};
use licenseware_crds::{FIELD_MANAGER, RegistrationStatus, TopicStatus, UploaderStatus};
use serde::Serialize;
use serde_json::json;

use crate::controllers::{events, scope::Namespaced};

/// A status with conditions, `Ready` among them.
pub trait Conditioned: Serialize + PartialEq + Default {
    fn conditions(&self) -> &[Condition];
}

impl Conditioned for TopicStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Conditioned for UploaderStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

impl Conditioned for RegistrationStatus {
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

/// Writes `next` as the status of `object` when it differs from `old` (an empty first
/// status is not written), then publishes a Warning Event `action` when Ready turned
/// False with a new reason.
pub async fn write<K, S>(
    client: &Client,
    recorder: &Recorder,
    object: &K,
    old: Option<&S>,
    next: &S,
    action: &str,
) -> Result<Option<String>, kube::Error>
where
    K: Namespaced,
    S: Conditioned,
{
    write_as(client, recorder, object, old, next, next, action).await
}

/// [`write`], sending `body` rather than `next` when it changed: the fields of `next`
/// that another field manager owns are left out of `body`, so this apply neither
/// takes them over nor removes them.
#[tracing::instrument(name = "write_status", level = "debug", skip_all)]
pub async fn write_as<K, S>(
    client: &Client,
    recorder: &Recorder,
    object: &K,
    old: Option<&S>,
    next: &S,
    body: &impl Serialize,
    action: &str,
) -> Result<Option<String>, kube::Error>
where
    K: Namespaced,
    S: Conditioned,
{
    if old == Some(next) || (old.is_none() && *next == S::default()) {
        return Ok(None);
    }
    let version = apply(client, object, body).await?;
    let event =
        events::ready_turned_false(old.map(Conditioned::conditions), next.conditions(), action);
    if let Some(event) = event {
        events::publish(recorder, &event, object).await;
    }
    Ok(version)
}

/// Server-side applies `status` as the status of `object`, forcing ownership of its
/// fields to [`FIELD_MANAGER`]; the object's new resourceVersion.
pub async fn apply<K>(
    client: &Client,
    object: &K,
    status: &impl Serialize,
) -> Result<Option<String>, kube::Error>
where
    K: Namespaced,
{
    apply_as(client, object, status, FIELD_MANAGER).await
}

/// [`apply`] under the field manager `manager`.
pub async fn apply_as<K>(
    client: &Client,
    object: &K,
    status: &impl Serialize,
    manager: &str,
) -> Result<Option<String>, kube::Error>
where
    K: Namespaced,
{
    let api: Api<K> = Api::namespaced(client.clone(), &object.namespace().unwrap_or_default());
    let body = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": status,
    });
    let applied = api
        .patch_status(
            &object.name_any(),
            &PatchParams::apply(manager).force(),
            &Patch::Apply(&body),
        )
        .await?;
    Ok(applied.resource_version())
}
