//! What every worker Deployment the operator writes must be, whatever its Uploader.

use k8s_openapi::api::{
    apps::v1::DeploymentSpec,
    core::v1::{Container, PodSpec},
};

/// Checks the hardening and the shape common to every worker pod template, and returns
/// the config hash, the pod and its container for the caller's own checks.
pub fn assert_hardened_worker(spec: &DeploymentSpec) -> (String, PodSpec, Container) {
    let template = spec.template.clone();
    let hash = template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .expect("annotations")["licenseware.io/config-hash"]
        .clone();
    assert_eq!(hash.len(), 64);
    let pod = template.spec.expect("pod");
    assert_eq!(pod.automount_service_account_token, Some(false));
    assert_eq!(pod.security_context.as_ref().and_then(|s| s.run_as_non_root), Some(true));
    let container = pod.containers[0].clone();
    assert_eq!(container.args.as_deref(), Some(&["consume".to_owned()][..]));
    assert!(
        container
            .image
            .as_deref()
            .expect("image")
            .starts_with("ghcr.io/licenseware/licenseware-worker:"),
        "image: '' means the operator's default"
    );
    let security = container.security_context.as_ref().expect("securityContext");
    assert_eq!(security.read_only_root_filesystem, Some(true));
    assert_eq!(security.allow_privilege_escalation, Some(false));
    (hash, pod, container)
}
