//! The packaging against the code and the real stack:
//!
//! - the chart's `crds/` are byte-for-byte the generated `crds/*.yaml`;
//! - the chart's RBAC rules (rendered with `helm template`, the stack's helm) are the
//!   ones of `manifests/base` (and of its dev and cluster-wide overlays), so the ways
//!   to install ship the same privileges; by default they are namespaced (a Role per
//!   watched namespace), cluster-wide only with `rbac.clusterWide`;
//! - the operator works under exactly those rules: the chart's ServiceAccount, Roles
//!   and CRD-reading ClusterRole are applied in a fresh namespace, and the operator
//!   runs in-process with a kubeconfig that impersonates that ServiceAccount. Without
//!   the operator's RoleBinding it gets `forbidden` and a Topic never becomes Ready;
//!   with it a Topic, an Uploader, a ReportComponent and a Report all become Ready,
//!   with no `forbidden` in its log, leader election takes the Lease under the chart's
//!   Role, and the ServiceAccount can write Deployments and ConfigMaps in no other
//!   namespace.
//!
//! The operator builds its client from `KUBECONFIG`, and the workspace forbids
//! `unsafe` (so no `std::env::set_var`): the test runs the operator in a child process
//! of this same test binary ([`operator_child`], ignored unless started that way),
//! with `KUBECONFIG` pointing at the impersonating copy.

use std::{
    collections::BTreeSet,
    fs,
    io::Read,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec},
    coordination::v1::Lease,
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use k8s_openapi::serde::{Serialize, de::DeserializeOwned};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DeleteParams, Patch, PatchParams},
};
use licenseware_e2e::{
    Stack, eventually,
    kube::{apply, create_custom, create_namespace, install_crds},
    operator, unique_name,
};
use licenseware_operator::{
    config::{Config, LeaderConfig, LogFormat},
    crds::{Report, ReportComponent, Topic, Uploader},
};
use serde_json::{Value, json};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(90);
/// How long the operator without its ClusterRoleBinding gets to (wrongly) make a
/// Topic Ready. Its watches fail at once; this only has to outlast a few retries.
const DENIED_FOR: Duration = Duration::from_secs(15);
const APP: &str = "rbac-service";

/// Environment of the child process: what [`operator_child`] runs against.
const CHILD_NAMESPACE: &str = "LW_RBAC_CHILD_NAMESPACE";
const CHILD_PREFIX: &str = "LW_RBAC_CHILD_PREFIX";
const CHILD_DATABASE: &str = "LW_RBAC_CHILD_DATABASE";
const CHILD_LEASE: &str = "LW_RBAC_CHILD_LEASE";

pub(crate) fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("e2e/ has a parent").to_path_buf()
}

pub(crate) fn chart_dir() -> PathBuf {
    repo_root().join("charts/licenseware-operator")
}

// ---------------------------------------------------------------------------------
// Drift checks (no cluster needed; the RBAC one needs helm on PATH)
// ---------------------------------------------------------------------------------

/// `*.yaml` files of a directory, by name.
fn yaml_files(dir: &Path) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .map(|path| {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            let text = fs::read_to_string(&path).expect("read yaml");
            (name, text)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn chart_crds_are_the_generated_crds() {
    let generated = yaml_files(&repo_root().join("crds"));
    let chart = yaml_files(&chart_dir().join("crds"));
    assert!(!generated.is_empty(), "no crds/*.yaml");
    let names = |files: &[(String, String)]| files.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    let fix = "cp crds/*.licenseware.io.yaml charts/licenseware-operator/crds/";
    assert_eq!(names(&chart), names(&generated), "chart CRD files differ from crds/; run: {fix}");
    for ((name, chart), (_, generated)) in chart.iter().zip(&generated) {
        assert!(chart == generated, "charts/licenseware-operator/crds/{name} drifted; run: {fix}");
    }
}

/// `helm template` of the chart, as YAML documents (JSON values), failing with a hint
/// when the stack's helm is not on PATH.
pub(crate) fn helm_template(release: &str, namespace: &str, extra: &[&str]) -> Vec<Value> {
    let output = Command::new("helm")
        .args(["template", release])
        .arg(chart_dir())
        .args(["--namespace", namespace])
        .args(extra)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run helm ({e}): start the stack with `e2e/stack/up` (it builds helm), \
                 then `set -a; . e2e/.stack/env; set +a`"
            )
        });
    assert!(output.status.success(), "helm template: {}", String::from_utf8_lossy(&output.stderr));
    parse_documents(&String::from_utf8(output.stdout).expect("utf-8"))
}

pub(crate) fn parse_documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|doc| {
            let value: serde_yaml::Value =
                k8s_openapi::serde::Deserialize::deserialize(doc).expect("YAML document");
            serde_json::to_value(value).expect("YAML as JSON")
        })
        .filter(|doc| !doc.is_null())
        .collect()
}

pub(crate) fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| d["kind"] == kind).collect()
}

pub(crate) fn only<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found = of_kind(docs, kind);
    assert_eq!(found.len(), 1, "expected one {kind}, found {}", found.len());
    found[0]
}

/// The one object of `kind` whose name ends with `suffix`.
pub(crate) fn named<'a>(docs: &'a [Value], kind: &str, suffix: &str) -> &'a Value {
    let found: Vec<&Value> = of_kind(docs, kind)
        .into_iter()
        .filter(|d| d["metadata"]["name"].as_str().is_some_and(|n| n.ends_with(suffix)))
        .collect();
    assert_eq!(found.len(), 1, "expected one {kind} named *{suffix}, found {}", found.len());
    found[0]
}

/// The chart's Role (or ClusterRole) with the operator's rules, by the release's name
/// (`lw` → `lw-licenseware-operator`).
pub(crate) const OPERATOR: &str = "-licenseware-operator";

/// Rules as a set of (apiGroups, resources, verbs, resourceNames), each sorted: two
/// rule lists grant the same when these sets are equal.
pub(crate) fn normalized(role: &Value) -> BTreeSet<Vec<Vec<String>>> {
    let sorted = |value: &Value| {
        let mut items: Vec<String> = value
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().expect("string").to_owned()).collect())
            .unwrap_or_default();
        items.sort();
        items
    };
    role["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .map(|rule| {
            ["apiGroups", "resources", "verbs", "resourceNames"]
                .iter()
                .map(|key| sorted(&rule[*key]))
                .collect()
        })
        .collect()
}

/// Every (group, resource, verb) a rule list grants.
pub(crate) fn grants(rules: &BTreeSet<Vec<Vec<String>>>) -> Vec<(String, String, String)> {
    rules
        .iter()
        .flat_map(|rule| {
            let [groups, resources, verbs, _] = rule.as_slice() else { unreachable!() };
            groups.iter().flat_map(move |g| {
                resources
                    .iter()
                    .flat_map(move |r| verbs.iter().map(move |v| (g.clone(), r.clone(), v.clone())))
            })
        })
        .collect()
}

#[test]
fn chart_rbac_is_the_base_rbac_and_namespaced_by_default() {
    let chart = helm_template("lw", "licenseware-system", &[]);
    let file = |path: &str| {
        parse_documents(
            &fs::read_to_string(repo_root().join("manifests").join(path)).expect("read manifest"),
        )
    };
    let base_role = normalized(only(&file("base/role.yaml"), "Role"));
    assert_eq!(
        normalized(named(&chart, "Role", OPERATOR)),
        base_role,
        "the chart's Role and manifests/base/role.yaml grant different rules"
    );
    assert_eq!(
        normalized(named(&chart, "Role", "-leader-election")),
        normalized(only(&file("base/leader-election-role.yaml"), "Role")),
        "the chart's leader-election Role and manifests/base/leader-election-role.yaml differ"
    );
    let chart_crds = normalized(only(&chart, "ClusterRole"));
    assert_eq!(
        chart_crds,
        normalized(only(&file("base/crd-reader.yaml"), "ClusterRole")),
        "the chart's CRD ClusterRole and manifests/base/crd-reader.yaml differ"
    );
    // The overlays' copies of the rules are the base's.
    assert_eq!(
        normalized(only(&file("overlays/dev/watched-namespace-role.yaml"), "Role")),
        base_role
    );
    let cluster_wide = file("overlays/cluster-wide/clusterrole.yaml");
    assert_eq!(normalized(only(&cluster_wide, "ClusterRole")), base_role);

    // Namespaced by default: the release namespace only, and the one cluster-scoped
    // grant reads the five CRDs.
    let bindings = of_kind(&chart, "RoleBinding");
    let operator_binding = named(&chart, "RoleBinding", OPERATOR);
    assert_eq!(operator_binding["metadata"]["namespace"], "licenseware-system");
    assert_eq!(operator_binding["roleRef"]["kind"], "Role");
    assert_eq!(bindings.len(), 2, "operator and leader election");
    assert_eq!(
        only(&chart, "ClusterRoleBinding")["roleRef"]["name"],
        json!("lw-licenseware-operator-crds")
    );
    for (group, resource, verb) in grants(&chart_crds) {
        assert_eq!(
            (group.as_str(), resource.as_str(), verb.as_str()),
            ("apiextensions.k8s.io", "customresourcedefinitions", "get")
        );
    }
    let deployment = named(&chart, "Deployment", OPERATOR);
    let env =
        deployment["spec"]["template"]["spec"]["containers"][0]["env"].as_array().expect("env");
    let watch =
        env.iter().find(|e| e["name"] == "LW_WATCH_NAMESPACES").expect("LW_WATCH_NAMESPACES");
    assert_eq!(watch["value"], "licenseware-system", "watches the release namespace only");
    for rule in normalized(only(&chart, "ClusterRole")) {
        let [_, resources, _, names] = rule.as_slice() else { unreachable!() };
        if resources.iter().any(|resource| resource == "customresourcedefinitions") {
            assert_eq!(names.len(), 6, "CRD access must name the six CRDs: {names:?}");
        }
    }
    // Least privilege, stated: nothing deletes, nothing touches Secrets.
    for (group, resource, verb) in grants(&base_role) {
        assert!(verb != "delete" && verb != "*", "{verb} on {group}/{resource}");
        assert!(resource != "secrets" && resource != "*", "{verb} on {group}/{resource}");
        assert!(resource != "customresourcedefinitions", "{verb} on CRDs in the Role");
    }

    // The API's ServiceAccount (chart and kustomize): no token, bound to nothing.
    let base = parse_documents(
        &std::process::Command::new("kubectl")
            .args(["kustomize"])
            .arg(repo_root().join("manifests/base"))
            .output()
            .map(|o| {
                assert!(
                    o.status.success(),
                    "kubectl kustomize: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
                String::from_utf8(o.stdout).expect("utf-8")
            })
            .expect("run kubectl kustomize (the stack's kubectl, on PATH)"),
    );
    for (install, docs, account) in
        [("chart", &chart, "lw-licenseware-operator-api"), ("kustomize", &base, "licenseware-api")]
    {
        let sa = of_kind(docs, "ServiceAccount")
            .into_iter()
            .find(|a| a["metadata"]["name"] == account)
            .unwrap_or_else(|| panic!("{install}: no ServiceAccount {account}"));
        assert_eq!(sa["automountServiceAccountToken"], json!(false), "{install}: {account}");
        let pod = &of_kind(docs, "Deployment")
            .into_iter()
            .find(|d| d["spec"]["template"]["spec"]["serviceAccountName"] == account)
            .unwrap_or_else(|| panic!("{install}: no Deployment runs as {account}"))["spec"]["template"]
            ["spec"];
        assert_eq!(pod["automountServiceAccountToken"], json!(false), "{install}: API pod");
        for binding in
            of_kind(docs, "RoleBinding").into_iter().chain(of_kind(docs, "ClusterRoleBinding"))
        {
            let subjects = binding["subjects"].as_array().expect("subjects");
            assert!(
                subjects.iter().all(|subject| subject["name"] != account),
                "{install}: {} binds the API's ServiceAccount",
                binding["metadata"]["name"]
            );
        }
    }

    // Confined to the listed namespaces: a Role and RoleBinding in each.
    let confined = helm_template("lw", "licenseware-system", &["--set", "watchNamespaces={a,b}"]);
    assert_eq!(of_kind(&confined, "ClusterRoleBinding").len(), 1, "only the CRD reader");
    let in_namespaces = |kind: &str| -> BTreeSet<String> {
        of_kind(&confined, kind)
            .iter()
            .filter(|o| o["metadata"]["name"] == "lw-licenseware-operator")
            .map(|o| o["metadata"]["namespace"].as_str().expect("namespace").to_owned())
            .collect()
    };
    assert_eq!(in_namespaces("Role"), BTreeSet::from(["a".to_owned(), "b".to_owned()]));
    assert_eq!(in_namespaces("RoleBinding"), in_namespaces("Role"));

    // Cluster-wide is a choice: one ClusterRole with the same rules, bound cluster-wide.
    let wide = helm_template("lw", "licenseware-system", &["--set", "rbac.clusterWide=true"]);
    assert_eq!(normalized(named(&wide, "ClusterRole", OPERATOR)), base_role);
    assert_eq!(named(&wide, "ClusterRoleBinding", OPERATOR)["roleRef"]["kind"], "ClusterRole");
    assert!(
        of_kind(&wide, "Role").iter().all(|r| r["metadata"]["name"] != "lw-licenseware-operator")
    );
}

// ---------------------------------------------------------------------------------
// The operator under the chart's RBAC
// ---------------------------------------------------------------------------------

/// The operator, run by this test binary in a child process with `KUBECONFIG` set.
/// Started only by [`operator_runs_under_the_chart_rbac`]; runs until its stdin
/// closes.
#[tokio::test]
#[ignore = "the operator half of operator_runs_under_the_chart_rbac, run in a child process"]
async fn operator_child() {
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
    let stack = Stack::from_env();
    licenseware_operator::telemetry::init(LogFormat::Text).expect("logging");
    let namespace = var(CHILD_NAMESPACE);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind probe port");
    let probe_addr = listener.local_addr().expect("addr");
    let config = Config {
        registry_database: Some(var(CHILD_DATABASE)),
        // Elected, on the Lease the chart's Role allows: in the test namespace.
        leader: LeaderConfig {
            elect: true,
            lease_name: var(CHILD_LEASE),
            lease_namespace: Some(namespace.clone()),
            ..LeaderConfig::default()
        },
        ..operator::config(stack, probe_addr, &namespace, &var(CHILD_PREFIX))
    };
    let outcome = licenseware_operator::serve(config, listener, async {
        // EOF on stdin: the parent closed it (or died).
        let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    })
    .await;
    assert!(outcome.is_ok(), "operator: {outcome:?}");
}

/// A running [`operator_child`]; killed if dropped without [`OperatorProcess::stop`].
struct OperatorProcess {
    child: Option<Child>,
    log: PathBuf,
}

impl OperatorProcess {
    fn start(kubeconfig: &Path, env: &[(&str, &str)], log: PathBuf) -> Self {
        let file = fs::File::create(&log).expect("create operator log");
        let child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "rbac::operator_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info,kube_runtime=warn,rdkafka=warn")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(file.try_clone().expect("log fd"))
            .stderr(file)
            .spawn()
            .expect("start the operator child process");
        Self { child: Some(child), log }
    }

    fn log(&self) -> String {
        let mut text = String::new();
        let _ = fs::File::open(&self.log).and_then(|mut f| f.read_to_string(&mut text));
        text
    }

    /// Closes stdin (the child's shutdown signal) and waits for a clean exit.
    async fn stop(mut self) -> String {
        let mut child = self.child.take().expect("running");
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(45);
        let status = loop {
            if let Some(status) = child.try_wait().expect("wait for the operator") {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("the operator did not stop within 45 s:\n{}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let log = self.log();
        assert!(status.success(), "the operator child failed ({status}):\n{log}");
        log
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A copy of the current kubeconfig whose users impersonate `user` (the `as` field).
fn impersonating_kubeconfig(user: &str, path: &Path) {
    let source = std::env::var("KUBECONFIG").expect("KUBECONFIG (from e2e/.stack/env)");
    let source = std::env::split_paths(&source).next().expect("a kubeconfig path");
    let mut config: serde_yaml::Value =
        serde_yaml::from_str(&fs::read_to_string(&source).expect("read kubeconfig"))
            .expect("kubeconfig YAML");
    for entry in config["users"].as_sequence_mut().expect("users").iter_mut() {
        entry["user"]["as"] = serde_yaml::Value::from(user);
    }
    // It holds the admin's client key: readable by us only.
    fs::write(path, serde_yaml::to_string(&config).expect("kubeconfig")).expect("write");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).expect("chmod");
    }
}

/// Everything one run creates, so that cleanup can find it after a panic too.
#[derive(Clone)]
struct Scenario {
    client: Client,
    namespace: String,
    release: String,
    docs: Vec<Value>,
    prefix: String,
    database: String,
    lease: String,
    dir: PathBuf,
}

impl Scenario {
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    fn operator(&self, run: &str) -> OperatorProcess {
        let service_account = self.service_account();
        let kubeconfig = self.dir.join("kubeconfig");
        impersonating_kubeconfig(
            &format!("system:serviceaccount:{}:{service_account}", self.namespace),
            &kubeconfig,
        );
        OperatorProcess::start(
            &kubeconfig,
            &[
                (CHILD_NAMESPACE, &self.namespace),
                (CHILD_PREFIX, &self.prefix),
                (CHILD_DATABASE, &self.database),
                (CHILD_LEASE, &self.lease),
            ],
            self.dir.join(format!("operator-{run}.log")),
        )
    }

    async fn create<K>(&self, kind: &str, manifest: Value) -> K
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
    {
        create_custom(&self.api::<K>(), kind, manifest).await
    }

    /// Whether the chart's ServiceAccount may `verb` `resource` in `namespace`, as the
    /// apiserver's authorizer answers.
    async fn can(&self, group: &str, resource: &str, verb: &str, namespace: &str) -> bool {
        self.account_can(&self.service_account(), group, resource, verb, namespace).await
    }

    /// The operator's ServiceAccount (the API's is `{release}-api`).
    fn service_account(&self) -> String {
        named(&self.docs, "ServiceAccount", &self.release)["metadata"]["name"]
            .as_str()
            .expect("ServiceAccount name")
            .to_owned()
    }

    /// Whether `service_account` (of the test namespace) may `verb` `resource`.
    async fn account_can(
        &self,
        service_account: &str,
        group: &str,
        resource: &str,
        verb: &str,
        namespace: &str,
    ) -> bool {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: Some(format!("system:serviceaccount:{}:{service_account}", self.namespace)),
                groups: Some(vec![
                    "system:serviceaccounts".to_owned(),
                    format!("system:serviceaccounts:{}", self.namespace),
                ]),
                resource_attributes: Some(ResourceAttributes {
                    group: Some(group.to_owned()),
                    resource: Some(resource.to_owned()),
                    verb: Some(verb.to_owned()),
                    namespace: Some(namespace.to_owned()),
                    ..ResourceAttributes::default()
                }),
                ..SubjectAccessReviewSpec::default()
            },
            ..SubjectAccessReview::default()
        };
        let api: Api<SubjectAccessReview> = Api::all(self.client.clone());
        let answer = api.create(&Default::default(), &review).await.expect("SubjectAccessReview");
        answer.status.is_some_and(|status| status.allowed)
    }

    /// The status conditions of `name` that are True, once its status is current.
    async fn true_conditions<K>(&self, name: &str) -> Option<BTreeSet<String>>
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
    {
        let object = self.api::<K>().get(name).await.ok()?;
        let value = serde_json::to_value(&object).ok()?;
        let status = &value["status"];
        (status["observedGeneration"] == value["metadata"]["generation"]).then_some(())?;
        Some(
            status["conditions"]
                .as_array()?
                .iter()
                .filter(|c| c["status"] == "True")
                .filter_map(|c| c["type"].as_str().map(str::to_owned))
                .collect(),
        )
    }

    async fn ready<K>(&self, name: &str, types: &[&str])
    where
        K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + Serialize
            + DeserializeOwned,
    {
        eventually(WAIT, &format!("{} {name} to be {types:?}", K::kind(&())), || async {
            let found = self.true_conditions::<K>(name).await?;
            types.iter().all(|t| found.contains(*t)).then_some(())
        })
        .await;
    }

    /// Deletes what the run created; the operator logs stay when it failed.
    async fn cleanup(&self, failed: bool) {
        let delete = DeleteParams::default();
        let roles: Api<ClusterRole> = Api::all(self.client.clone());
        let bindings: Api<ClusterRoleBinding> = Api::all(self.client.clone());
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let crds = format!("{}-crds", self.release);
        let _ = bindings.delete(&crds, &delete).await;
        let _ = roles.delete(&crds, &delete).await;
        // After a failure, finalizers may be left that only the (stopped) operator
        // would remove: clear them so that the namespace can go.
        for kind in ["uploaders", "reports", "reportcomponents", "datatables", "topics", "apps"] {
            let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
                self.client.clone(),
                &self.namespace,
                &kube::api::ApiResource {
                    group: "licenseware.io".into(),
                    version: "v1alpha1".into(),
                    api_version: "licenseware.io/v1alpha1".into(),
                    kind: String::new(),
                    plural: kind.into(),
                },
            );
            if let Ok(list) = api.list(&Default::default()).await {
                for object in list {
                    let _ = api
                        .patch(
                            &object.name_any(),
                            &PatchParams::default(),
                            &Patch::Merge(json!({"metadata": {"finalizers": null}})),
                        )
                        .await;
                }
            }
        }
        let _ = namespaces.delete(&self.namespace, &delete).await;
        if let Ok(mongo) = mongodb::Client::with_uri_str(&Stack::from_env().mongo_url).await {
            let _ = mongo.database(&self.database).drop().await;
        }
        if failed {
            #[allow(clippy::print_stderr)] // shown by libtest with the failure
            {
                eprintln!("operator logs kept in {}", self.dir.display());
            }
        } else {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs `licenseware-worker serve` with the chart's API container (args and env) and
/// waits until it serves the app's uploader that the operator registered.
async fn serve_as_the_chart_does(s: &Scenario) {
    use licenseware_e2e::consumer::{mongo_url_with_database, worker_binary};
    let stack = Stack::from_env();
    let container =
        &named(&s.docs, "Deployment", "-api")["spec"]["template"]["spec"]["containers"][0];
    let secret_file = s.dir.join("jwt-secret");
    fs::write(&secret_file, format!("{}\n", uuid::Uuid::new_v4())).expect("write the JWT secret");
    let uploads = s.dir.join("uploads");
    fs::create_dir_all(&uploads).expect("upload root");
    let mut command = Command::new(worker_binary());
    command
        .args(container["args"].as_array().expect("args").iter().map(|a| a.as_str().expect("arg")));
    command.env_remove("KUBECONFIG");
    for entry in container["env"].as_array().expect("env") {
        let name = entry["name"].as_str().expect("name");
        let value = match (name, entry["value"].as_str()) {
            ("LW_KAFKA_BROKERS", None) => stack.kafka_brokers.clone(),
            ("LW_MONGO_URL", None) => mongo_url_with_database(&stack.mongo_url, &s.database),
            ("LW_REDIS_URL", None) => stack.redis_url.clone(),
            // Pod-specific: an address, the mounted volumes, the release's prefix.
            ("LW_LISTEN", Some(_)) => "127.0.0.1:0".to_owned(),
            ("LW_UPLOAD_ROOT", Some(_)) => uploads.to_string_lossy().into_owned(),
            ("LW_JWT_SECRET_FILE", Some(_)) => secret_file.to_string_lossy().into_owned(),
            ("LW_TOPIC_PREFIX", Some(_)) => s.prefix.clone(),
            (_, Some(value)) => value.to_owned(),
            (_, None) => {
                panic!("the chart's API takes {name} from somewhere this test does not know")
            }
        };
        command.env(name, value);
    }
    let log = s.dir.join("api.log");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(fs::File::create(&log).expect("API log"))
        .spawn()
        .expect("start the API");
    let stdout = child.stdout.take().expect("stdout");
    let url = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(stdout), &mut line)
            .expect("address");
        line.trim().strip_prefix("listening on ").map(str::to_owned)
    })
    .await
    .expect("reader");
    // Killed at the end, and on a failed assertion too.
    let _child = KillOnDrop(child);
    let url = url.unwrap_or_else(|| {
        panic!("the API did not start:\n{}", fs::read_to_string(&log).unwrap_or_default())
    });
    let tenant = uuid::Uuid::new_v4().to_string();
    let token = Command::new(worker_binary())
        .arg("token")
        .arg("--secret-file")
        .arg(&secret_file)
        .args(["--tenant", &tenant])
        .output()
        .expect("licenseware-worker token");
    assert!(token.status.success(), "token: {}", String::from_utf8_lossy(&token.stderr));
    let token = String::from_utf8(token.stdout).expect("utf-8").trim().to_owned();
    let http = reqwest::Client::new();
    eventually(WAIT, "the chart's API to serve the app's uploader", || async {
        let ready = http.get(format!("{url}/readyz")).send().await.ok()?;
        if ready.status() != 200 {
            return None;
        }
        let metadata = http
            .get(format!("{url}/{APP}/metadata"))
            .header("TenantId", &tenant)
            .header("Authorization", format!("Bearer {token}"))
            .send()
            .await
            .ok()?;
        let body = metadata.text().await.ok()?;
        body.contains("rv_tools").then_some(())
    })
    .await;
}

/// A child process killed when dropped (a failed assertion included).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn operator_runs_under_the_chart_rbac() {
    let _ = Stack::from_env();
    let client = Client::try_default().await.expect("kubeconfig");
    install_crds(&client).await;
    let namespace = unique_name("rbac");
    let release = unique_name("lw-rbac");
    create_namespace(&client, &namespace).await;
    // The chart's objects, named after the release (the ClusterRole included, so runs
    // never share one), for a ServiceAccount in the test namespace.
    let docs =
        helm_template("rbac", &namespace, &["--set", &format!("fullnameOverride={release}")]);
    let dir = std::env::temp_dir().join(&release);
    fs::create_dir_all(&dir).expect("temp dir");
    let scenario = Scenario {
        client,
        namespace,
        docs,
        prefix: format!("{release}."),
        database: release.replace('-', "_"),
        lease: format!("{release}-lease"),
        release,
        dir,
    };
    let outcome = tokio::spawn(run(scenario.clone())).await;
    scenario.cleanup(outcome.is_err()).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

async fn run(s: Scenario) {
    let client = &s.client;
    apply(&s.api::<ServiceAccount>(), named(&s.docs, "ServiceAccount", &s.release)).await;
    // The API's account: bound to nothing, it may do nothing (the API never calls
    // the Kubernetes API and gets no token).
    let api_account = named(&s.docs, "ServiceAccount", "-api");
    assert_eq!(api_account["automountServiceAccountToken"], json!(false));
    apply(&s.api::<ServiceAccount>(), api_account).await;
    apply(&s.api::<Role>(), named(&s.docs, "Role", "-leader-election")).await;
    apply(&s.api::<RoleBinding>(), named(&s.docs, "RoleBinding", "-leader-election")).await;
    let operator_role = named(&s.docs, "Role", &s.release);
    assert_eq!(operator_role["metadata"]["namespace"], json!(s.namespace));
    apply(&s.api::<Role>(), operator_role).await;
    let cluster_role = only(&s.docs, "ClusterRole");
    assert_eq!(cluster_role["metadata"]["name"], json!(format!("{}-crds", s.release)));
    apply(&Api::<ClusterRole>::all(client.clone()), cluster_role).await;
    apply(&Api::<ClusterRoleBinding>::all(client.clone()), only(&s.docs, "ClusterRoleBinding"))
        .await;

    // 1. Without the operator's RoleBinding: the Lease is allowed (Role), the custom
    //    resources are not. The Topic stays without status and the log says why.
    s.create::<Topic>("Topic", json!({"metadata": {"name": "events"}, "spec": {"partitions": 1}}))
        .await;
    let denied = s.operator("denied");
    let leases: Api<Lease> = s.api();
    eventually(WAIT, "the operator to take the Lease under the chart's Role", || async {
        let lease = leases.get(&s.lease).await.ok()?;
        lease.spec?.holder_identity.filter(|h| !h.is_empty())
    })
    .await;
    let until = Instant::now() + DENIED_FOR;
    while Instant::now() < until {
        assert_eq!(
            s.true_conditions::<Topic>("events").await.unwrap_or_default(),
            BTreeSet::new(),
            "a Topic became Ready without the ClusterRoleBinding"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let log = denied.stop().await;
    assert!(
        log.contains("forbidden"),
        "no `forbidden` in the log of the operator without its RoleBinding:\n{log}"
    );

    // 2. With the chart's RoleBinding: everything works, nothing is forbidden.
    let binding = named(&s.docs, "RoleBinding", &s.release);
    assert_eq!(
        binding["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": s.release})
    );
    apply(&s.api::<RoleBinding>(), binding).await;
    // Write on Deployments and ConfigMaps in the watched namespace, and nowhere else.
    // (The authorizer sees a new binding within moments, not at once.)
    for (group, resource, verb) in [
        ("apps", "deployments", "create"),
        ("", "configmaps", "create"),
        ("", "configmaps", "patch"),
        ("", "configmaps", "watch"),
    ] {
        eventually(WAIT, &format!("{verb} {resource} allowed in its namespace"), || async {
            s.can(group, resource, verb, &s.namespace).await.then_some(())
        })
        .await;
        assert!(!s.can(group, resource, verb, "default").await, "{verb} {resource} in default");
    }
    // Every binding is in place: the API's account still may do nothing.
    let api_account = format!("{}-api", s.release);
    for (group, resource, verb) in [
        ("apps", "deployments", "create"),
        ("", "configmaps", "get"),
        ("", "secrets", "get"),
        ("licenseware.io", "uploaders", "list"),
        ("coordination.k8s.io", "leases", "get"),
    ] {
        assert!(
            !s.account_can(&api_account, group, resource, verb, &s.namespace).await,
            "the API's ServiceAccount may {verb} {group}/{resource}"
        );
    }
    let allowed = s.operator("allowed");
    s.create::<Uploader>(
        "Uploader",
        json!({
            "metadata": {"name": "rv-tools"},
            "spec": {
                "appId": APP,
                "uploaderId": "rv_tools",
                "name": "RVTools",
                "description": "XLSX export from RVTools.",
                "acceptedFileTypes": [".xlsx"],
                "worker": {"maxReplicas": 1}
            }
        }),
    )
    .await;
    s.create::<ReportComponent>(
        "ReportComponent",
        json!({
            "metadata": {"name": "devices-by-os"},
            "spec": {
                "appId": APP,
                "title": "Devices by operating system",
                "type": "pie",
                "attributes": {"series": [
                    {"label_key": "os", "label_description": "Operating System"},
                    {"value_key": "count", "value_description": "Count"}
                ]},
                "style": {"width": "1/2"},
                "data": {"pipeline": [{"$group": {"_id": "$os", "count": {"$sum": 1}}}]}
            }
        }),
    )
    .await;
    s.create::<Report>(
        "Report",
        json!({
            "metadata": {"name": "devices"},
            "spec": {
                "appId": APP,
                "name": "Devices",
                "description": "Your devices.",
                "components": ["devices_by_os"]
            }
        }),
    )
    .await;
    s.ready::<Topic>("events", &["Ready"]).await;
    s.ready::<Uploader>("rv-tools", &["Ready", "TopicReady", "WorkerReady"]).await;
    s.ready::<ReportComponent>("devices-by-os", &["Ready"]).await;
    s.ready::<Report>("devices", &["Ready"]).await;
    // The API as the chart runs it (its Deployment's command and environment, the
    // Secret references filled in with the stack's addresses), with no Kubernetes
    // credentials at all: it serves the app the operator registered.
    serve_as_the_chart_does(&s).await;

    // Deleting under the same RBAC: the finalizers (registry entries) are removed by
    // the operator, and everything goes.
    let delete = DeleteParams::default();
    let _ = s.api::<Report>().delete("devices", &delete).await.expect("delete Report");
    let _ = s.api::<ReportComponent>().delete("devices-by-os", &delete).await.expect("delete");
    let _ = s.api::<Uploader>().delete("rv-tools", &delete).await.expect("delete Uploader");
    let _ = s.api::<Topic>().delete("events", &delete).await.expect("delete Topic");
    eventually(WAIT, "the custom resources to be gone", || async {
        let lists = (
            s.api::<Report>().list(&Default::default()).await.ok()?,
            s.api::<ReportComponent>().list(&Default::default()).await.ok()?,
            s.api::<Uploader>().list(&Default::default()).await.ok()?,
            s.api::<Topic>().list(&Default::default()).await.ok()?,
        );
        (lists.0.items.is_empty()
            && lists.1.items.is_empty()
            && lists.2.items.is_empty()
            // The Uploader's own Topics go through the garbage collector.
            && lists.3.items.iter().all(|t| t.metadata.deletion_timestamp.is_some() || t.owner_references().iter().any(|o| o.kind == "Uploader")))
        .then_some(())
    })
    .await;
    let log = allowed.stop().await;
    assert!(
        !log.to_lowercase().contains("forbidden"),
        "the operator was refused something under the chart's RBAC:\n{log}"
    );
}
