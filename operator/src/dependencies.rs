//! Clients of the services the operator depends on, and the checks behind `/readyz`.

use std::{sync::Arc, time::Duration};

use mongodb::bson::doc;
use serde::Serialize;

use crate::{
    Error,
    config::Config,
    kafka::{KafkaClient, WireSecurity},
};

/// How long one readiness check may wait for its server.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// One client per service, built once and shared by every controller.
pub struct Dependencies {
    pub kube: kube::Client,
    /// Its own connection, so that a check never waits behind a long admin request.
    pub kafka: Arc<KafkaClient>,
    pub mongo: mongodb::Client,
    pub redis: redis::Client,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The clients hold credentials; their Debug output is not ours to print.
        f.debug_struct("Dependencies").finish_non_exhaustive()
    }
}

/// The outcome of checking one service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub ready: bool,
    /// What the server said: its version or broker count when ready, the error otherwise.
    pub detail: String,
}

/// The latest outcome of every check; ready only when all are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Readiness {
    pub ready: bool,
    pub checks: Vec<Check>,
}

impl Readiness {
    /// Before the first round of checks nothing is known, so nothing is ready.
    pub fn starting() -> Self {
        Self { ready: false, checks: Vec::new() }
    }

    fn from_checks(checks: Vec<Check>) -> Self {
        let ready = checks.iter().all(|check| check.ready);
        Self { ready, checks }
    }
}

impl Dependencies {
    /// Builds every client. Only the Kubernetes client reads anything (its
    /// kubeconfig); the others connect lazily, so a server that is down here
    /// shows in `/readyz` instead of stopping the process.
    pub async fn connect(config: &Config, kafka_security: WireSecurity) -> Result<Self, Error> {
        let kube = kube::Client::try_default().await.map_err(Error::KubeConfig)?;
        let kafka = KafkaClient::new(
            &config.kafka_brokers,
            "licenseware-operator",
            CHECK_TIMEOUT,
            kafka_security,
        );
        let mut mongo_options = mongodb::options::ClientOptions::parse(&config.mongo_url)
            .await
            .map_err(Error::MongoConfig)?;
        mongo_options.app_name.get_or_insert_with(|| "licenseware-operator".to_owned());
        mongo_options.server_selection_timeout.get_or_insert(CHECK_TIMEOUT);
        let mongo = mongodb::Client::with_options(mongo_options).map_err(Error::MongoConfig)?;
        let redis = redis::Client::open(config.redis_url.as_str()).map_err(Error::RedisConfig)?;
        Ok(Self { kube, kafka: Arc::new(kafka), mongo, redis })
    }

    /// Asks every server for a sign of life, all at once.
    pub async fn check(&self) -> Readiness {
        let (kube, crds, kafka, mongo, redis) = tokio::join!(
            self.check_kube(),
            self.check_crds(),
            self.check_kafka(),
            self.check_mongo(),
            self.check_redis()
        );
        Readiness::from_checks(vec![
            outcome("kubernetes", kube),
            outcome("crds", crds),
            outcome("kafka", kafka),
            outcome("mongodb", mongo),
            outcome("redis", redis),
        ])
    }

    async fn check_crds(&self) -> Result<String, String> {
        let missing = tokio::time::timeout(CHECK_TIMEOUT, missing_crds(&self.kube))
            .await
            .map_err(|_| timed_out())?
            .map_err(|error| error.to_string())?;
        if missing.is_empty() {
            Ok(format!("{} established", crd_names().len()))
        } else {
            Err(format!(
                "not established: {} (install them: kubectl apply --server-side -f crds/)",
                missing.join(", ")
            ))
        }
    }

    async fn check_kube(&self) -> Result<String, String> {
        let info = tokio::time::timeout(CHECK_TIMEOUT, self.kube.apiserver_version())
            .await
            .map_err(|_| timed_out())?
            .map_err(|error| error.to_string())?;
        Ok(format!("apiserver {}", info.git_version))
    }

    async fn check_kafka(&self) -> Result<String, String> {
        let metadata = self.kafka.metadata(Some(&[])).await.map_err(|error| error.to_string())?;
        Ok(format!("{} broker(s)", metadata.brokers.len()))
    }

    async fn check_mongo(&self) -> Result<String, String> {
        let reply = tokio::time::timeout(
            CHECK_TIMEOUT,
            self.mongo.database("admin").run_command(doc! { "buildInfo": 1 }),
        )
        .await
        .map_err(|_| timed_out())?
        .map_err(|error| error.to_string())?;
        let version = reply.get_str("version").unwrap_or("unknown version");
        Ok(format!("server {version}"))
    }

    async fn check_redis(&self) -> Result<String, String> {
        let ping = async {
            let mut connection = self.redis.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut connection).await
        };
        let pong = tokio::time::timeout(CHECK_TIMEOUT, ping)
            .await
            .map_err(|_| timed_out())?
            .map_err(|error| error.to_string())?;
        Ok(pong)
    }
}

/// The CRD of every kind the operator reconciles.
pub fn crd_names() -> [String; 6] {
    use kube::CustomResourceExt;
    use licenseware_crds::{App, DataTable, Report, ReportComponent, Topic, Uploader};
    // Every kind a controller watches: App too (optional to create, not to install).
    [
        App::crd_name().to_owned(),
        Uploader::crd_name().to_owned(),
        Report::crd_name().to_owned(),
        ReportComponent::crd_name().to_owned(),
        DataTable::crd_name().to_owned(),
        Topic::crd_name().to_owned(),
    ]
}

/// The CRDs of [`crd_names`] that the apiserver does not serve yet. The controllers wait
/// for none to be missing: a watch on a kind the apiserver does not know only fails.
pub async fn missing_crds(kube: &kube::Client) -> Result<Vec<String>, kube::Error> {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let api: kube::Api<CustomResourceDefinition> = kube::Api::all(kube.clone());
    let mut missing = Vec::new();
    for name in crd_names() {
        let established =
            api.get_opt(&name).await?.and_then(|crd| crd.status).is_some_and(|status| {
                status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .any(|condition| condition.type_ == "Established" && condition.status == "True")
            });
        if !established {
            missing.push(name);
        }
    }
    Ok(missing)
}

fn outcome(name: &'static str, result: Result<String, String>) -> Check {
    match result {
        Ok(detail) => Check { name, ready: true, detail },
        Err(detail) => Check { name, ready: false, detail },
    }
}

fn timed_out() -> String {
    format!("no answer within {} s", CHECK_TIMEOUT.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &'static str, ready: bool) -> Check {
        Check { name, ready, detail: String::new() }
    }

    #[test]
    fn ready_only_when_every_check_is() {
        assert!(Readiness::from_checks(vec![check("a", true), check("b", true)]).ready);
        assert!(!Readiness::from_checks(vec![check("a", true), check("b", false)]).ready);
        assert!(!Readiness::starting().ready);
    }
}
