//! The Kafka admin layer: every topic reconcile goes through one batching task, so
//! reconciles that arrive within a short window share one request of each kind
//! (metadata, DescribeConfigs, CreateTopics, CreatePartitions, AlterConfigs,
//! DeleteTopics) instead of sending one each.

pub mod plan;

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use rdkafka::{
    admin::{
        AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic,
        OwnedResourceSpecifier, ResourceSpecifier, TopicReplication,
    },
    client::DefaultClientContext,
    error::KafkaError,
    types::RDKafkaErrorCode,
};
use tokio::sync::{mpsc, oneshot};

pub use plan::{DesiredTopic, ObservedTopic, Plan, Refusal};

/// How long the batcher waits for more requests after the first one of a batch.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(50);
/// The most topics one batch carries.
pub const DEFAULT_MAX_BATCH: usize = 200;
/// How long one admin request may take on the broker side.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why Kafka did not do what a topic needed. Cloneable because one failed batch
/// request fails every topic in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// The whole request failed (broker unreachable, timeout).
    #[error("Kafka {call} request failed: {source}")]
    Request {
        call: AdminCall,
        #[source]
        source: KafkaError,
    },
    /// The broker refused the request for this topic.
    #[error("Kafka refused {call} for topic {topic}: {code}")]
    Topic { call: AdminCall, topic: String, code: RDKafkaErrorCode },
    /// The admin task is gone: the operator is shutting down.
    #[error("the Kafka admin task has stopped")]
    Stopped,
}

/// The kinds of admin request, the label of the call counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AdminCall {
    Metadata,
    DescribeConfigs,
    CreateTopics,
    CreatePartitions,
    AlterConfigs,
    DeleteTopics,
}

impl AdminCall {
    pub const ALL: [Self; 6] = [
        Self::Metadata,
        Self::DescribeConfigs,
        Self::CreateTopics,
        Self::CreatePartitions,
        Self::AlterConfigs,
        Self::DeleteTopics,
    ];

    /// Stable lower-case name, the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Metadata => "metadata",
            Self::DescribeConfigs => "describe_configs",
            Self::CreateTopics => "create_topics",
            Self::CreatePartitions => "create_partitions",
            Self::AlterConfigs => "alter_configs",
            Self::DeleteTopics => "delete_topics",
        }
    }
}

impl std::fmt::Display for AdminCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Counters of the admin requests sent and of the batches that carried them.
#[derive(Debug, Default)]
pub struct AdminMetrics {
    calls: [AtomicU64; 6],
    batches: AtomicU64,
    batched_topics: AtomicU64,
}

impl AdminMetrics {
    fn count(&self, call: AdminCall) {
        self.calls[call as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent so far, by kind.
    pub fn calls(&self) -> BTreeMap<AdminCall, u64> {
        AdminCall::ALL
            .into_iter()
            .map(|call| (call, self.calls[call as usize].load(Ordering::Relaxed)))
            .collect()
    }

    /// Batches processed, and the topic requests they carried.
    pub fn batches(&self) -> (u64, u64) {
        (self.batches.load(Ordering::Relaxed), self.batched_topics.load(Ordering::Relaxed))
    }

    /// Prometheus text exposition of the counters.
    pub fn render(&self, out: &mut String) {
        use std::fmt::Write;
        out.push_str(
            "# HELP licenseware_kafka_admin_calls_total Kafka admin requests sent, by kind.\n\
             # TYPE licenseware_kafka_admin_calls_total counter\n",
        );
        for (call, count) in self.calls() {
            let _ = writeln!(out, "licenseware_kafka_admin_calls_total{{call=\"{call}\"}} {count}");
        }
        let (batches, topics) = self.batches();
        let _ = write!(
            out,
            "# HELP licenseware_kafka_admin_batches_total Batches of topic requests processed.\n\
             # TYPE licenseware_kafka_admin_batches_total counter\n\
             licenseware_kafka_admin_batches_total {batches}\n\
             # HELP licenseware_kafka_admin_batched_topics_total Topic requests carried by batches.\n\
             # TYPE licenseware_kafka_admin_batched_topics_total counter\n\
             licenseware_kafka_admin_batched_topics_total {topics}\n"
        );
    }
}

/// What applying a [`DesiredTopic`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedTopic {
    /// The topic did not exist and was created.
    pub created: bool,
    /// Partitions in Kafka now.
    pub partitions: i32,
    /// Replication factor in Kafka now.
    pub replication_factor: i32,
    /// Differences left in place, reported as NotSupported.
    pub refusals: Vec<Refusal>,
}

enum Job {
    Apply(DesiredTopic, oneshot::Sender<Result<AppliedTopic, AdminError>>),
    Delete(String, oneshot::Sender<Result<(), AdminError>>),
}

impl Job {
    fn topic(&self) -> &str {
        match self {
            Self::Apply(desired, _) => &desired.name,
            Self::Delete(name, _) => name,
        }
    }
}

/// Handle to the batching admin task. Cheap to clone.
#[derive(Debug, Clone)]
pub struct KafkaAdmin {
    jobs: mpsc::Sender<Job>,
    metrics: Arc<AdminMetrics>,
}

impl KafkaAdmin {
    /// Starts the batching task on the current runtime. It stops when every handle is
    /// dropped.
    pub fn start(
        client: Arc<AdminClient<DefaultClientContext>>,
        linger: Duration,
        max_batch: usize,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel(max_batch.max(1) * 4);
        let metrics = Arc::new(AdminMetrics::default());
        let batcher =
            Batcher { client, metrics: Arc::clone(&metrics), linger, max_batch: max_batch.max(1) };
        tokio::spawn(batcher.run(receiver));
        Self { jobs, metrics }
    }

    pub fn metrics(&self) -> &Arc<AdminMetrics> {
        &self.metrics
    }

    /// Creates or adopts the topic and brings it in line with `desired`, as far as Kafka
    /// allows.
    pub async fn apply(&self, desired: DesiredTopic) -> Result<AppliedTopic, AdminError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Apply(desired, reply)).await.map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }

    /// Deletes the topic; a topic that does not exist counts as deleted.
    pub async fn delete(&self, name: String) -> Result<(), AdminError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Delete(name, reply)).await.map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }
}

struct Batcher {
    client: Arc<AdminClient<DefaultClientContext>>,
    metrics: Arc<AdminMetrics>,
    linger: Duration,
    max_batch: usize,
}

impl Batcher {
    async fn run(self, mut receiver: mpsc::Receiver<Job>) {
        // Jobs for a topic already in the current batch wait for the next one, so a
        // batch never holds two requests for one topic.
        let mut deferred: VecDeque<Job> = VecDeque::new();
        loop {
            let mut batch: Vec<Job> = Vec::new();
            let mut names: HashSet<String> = HashSet::new();
            let mut later = VecDeque::new();
            while let Some(job) = deferred.pop_front() {
                if batch.len() < self.max_batch && names.insert(job.topic().to_owned()) {
                    batch.push(job);
                } else {
                    later.push_back(job);
                }
            }
            deferred = later;
            if batch.is_empty() {
                match receiver.recv().await {
                    Some(job) => {
                        names.insert(job.topic().to_owned());
                        batch.push(job);
                    }
                    None => return,
                }
            }
            let deadline = tokio::time::Instant::now() + self.linger;
            while batch.len() < self.max_batch {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(job)) => {
                        if names.insert(job.topic().to_owned()) {
                            batch.push(job);
                        } else {
                            deferred.push_back(job);
                        }
                    }
                    Ok(None) | Err(_) => break,
                }
            }
            self.metrics.batches.fetch_add(1, Ordering::Relaxed);
            self.metrics.batched_topics.fetch_add(batch.len() as u64, Ordering::Relaxed);
            self.process(batch).await;
        }
    }

    fn options() -> AdminOptions {
        AdminOptions::new()
            .request_timeout(Some(REQUEST_TIMEOUT))
            .operation_timeout(Some(REQUEST_TIMEOUT))
    }

    async fn process(&self, batch: Vec<Job>) {
        let mut applies = Vec::new();
        let mut deletes = Vec::new();
        for job in batch {
            match job {
                Job::Apply(desired, reply) => applies.push((desired, reply)),
                Job::Delete(name, reply) => deletes.push((name, reply)),
            }
        }
        if !deletes.is_empty() {
            let names: Vec<&str> = deletes.iter().map(|(name, _)| name.as_str()).collect();
            let results = self.delete_topics(&names).await;
            for (name, reply) in deletes {
                let _ = reply.send(results.get(&name).cloned().unwrap_or(Ok(())));
            }
        }
        if !applies.is_empty() {
            let desired: Vec<DesiredTopic> = applies.iter().map(|(d, _)| d.clone()).collect();
            let mut results = self.apply_all(&desired).await;
            for (desired, reply) in applies {
                let result = results.remove(&desired.name).unwrap_or_else(|| {
                    Err(AdminError::Request {
                        call: AdminCall::Metadata,
                        source: KafkaError::Canceled,
                    })
                });
                let _ = reply.send(result);
            }
        }
    }

    async fn delete_topics(&self, names: &[&str]) -> HashMap<String, Result<(), AdminError>> {
        self.metrics.count(AdminCall::DeleteTopics);
        let call = AdminCall::DeleteTopics;
        match self.client.delete_topics(names, &Self::options()).await {
            Err(source) => names
                .iter()
                .map(|name| {
                    ((*name).to_owned(), Err(AdminError::Request { call, source: source.clone() }))
                })
                .collect(),
            Ok(results) => results
                .into_iter()
                .map(|result| match result {
                    Ok(name) | Err((name, RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                        (name, Ok(()))
                    }
                    Err((topic, code)) => {
                        (topic.clone(), Err(AdminError::Topic { call, topic, code }))
                    }
                })
                .collect(),
        }
    }

    /// One metadata request and one DescribeConfigs for every topic of the batch, then
    /// at most one CreateTopics, one CreatePartitions and one AlterConfigs.
    async fn apply_all(
        &self,
        desired: &[DesiredTopic],
    ) -> HashMap<String, Result<AppliedTopic, AdminError>> {
        let fail_all = |error: AdminError| {
            desired.iter().map(|d| (d.name.clone(), Err(error.clone()))).collect()
        };
        let (brokers, mut observed) = match self.observe(desired).await {
            Ok(found) => found,
            Err(error) => return fail_all(error),
        };
        let plans: Vec<(&DesiredTopic, Plan)> =
            desired.iter().map(|d| (d, plan::plan(d, observed.get(&d.name), brokers))).collect();
        let mut errors: HashMap<String, AdminError> = HashMap::new();

        let creates: Vec<NewTopic<'_>> = plans
            .iter()
            .filter_map(|(d, p)| {
                let replication_factor = p.create?;
                let mut topic = NewTopic::new(
                    &d.name,
                    d.partitions,
                    TopicReplication::Fixed(replication_factor),
                );
                for (key, value) in &d.config {
                    topic = topic.set(key, value);
                }
                Some(topic)
            })
            .collect();
        if !creates.is_empty() {
            self.metrics.count(AdminCall::CreateTopics);
            let results = self.client.create_topics(&creates, &Self::options()).await;
            collect_errors(
                AdminCall::CreateTopics,
                &creates_names(&creates),
                results,
                &mut errors,
                |code| {
                    // Someone created it between our metadata request and now: adopt it at
                    // the next reconcile.
                    code == RDKafkaErrorCode::TopicAlreadyExists
                },
            );
        }

        let increases: Vec<NewPartitions<'_>> = plans
            .iter()
            .filter_map(|(d, p)| {
                Some(NewPartitions::new(&d.name, usize::try_from(p.add_partitions?).ok()?))
            })
            .collect();
        if !increases.is_empty() {
            self.metrics.count(AdminCall::CreatePartitions);
            let names: Vec<String> = increases.iter().map(|p| p.topic_name.to_owned()).collect();
            let results = self.client.create_partitions(&increases, &Self::options()).await;
            collect_errors(AdminCall::CreatePartitions, &names, results, &mut errors, |_| false);
        }

        let alters: Vec<AlterConfig<'_>> = plans
            .iter()
            .filter(|(_, p)| p.alter_config)
            .map(|(d, _)| {
                let mut alter = AlterConfig::new(ResourceSpecifier::Topic(&d.name));
                for (key, value) in &d.config {
                    alter = alter.set(key, value);
                }
                alter
            })
            .collect();
        if !alters.is_empty() {
            self.metrics.count(AdminCall::AlterConfigs);
            let call = AdminCall::AlterConfigs;
            match self.client.alter_configs(&alters, &Self::options()).await {
                Err(source) => {
                    for alter in &alters {
                        if let ResourceSpecifier::Topic(name) = alter.specifier {
                            errors.insert(
                                name.to_owned(),
                                AdminError::Request { call, source: source.clone() },
                            );
                        }
                    }
                }
                Ok(results) => {
                    for result in results {
                        if let Err((OwnedResourceSpecifier::Topic(topic), code)) = result {
                            errors.insert(topic.clone(), AdminError::Topic { call, topic, code });
                        }
                    }
                }
            }
        }

        plans
            .into_iter()
            .map(|(d, p)| {
                observed.remove(&d.name);
                let result = match errors.remove(&d.name) {
                    Some(error) => Err(error),
                    None => Ok(AppliedTopic {
                        created: p.create.is_some(),
                        partitions: p.partitions,
                        replication_factor: p.replication_factor,
                        refusals: p.refusals,
                    }),
                };
                (d.name.clone(), result)
            })
            .collect()
    }

    /// The broker count and the observed state of those desired topics that exist.
    async fn observe(
        &self,
        desired: &[DesiredTopic],
    ) -> Result<(i32, HashMap<String, ObservedTopic>), AdminError> {
        self.metrics.count(AdminCall::Metadata);
        // The metadata request blocks its thread until the broker answers.
        let client = Arc::clone(&self.client);
        let metadata = tokio::task::spawn_blocking(move || {
            client.inner().fetch_metadata(None, REQUEST_TIMEOUT)
        })
        .await
        .map_err(|_| AdminError::Stopped)?
        .map_err(|source| AdminError::Request { call: AdminCall::Metadata, source })?;
        let brokers = i32::try_from(metadata.brokers().len()).unwrap_or(i32::MAX);
        let wanted: HashSet<&str> = desired.iter().map(|d| d.name.as_str()).collect();
        let mut observed: HashMap<String, ObservedTopic> = metadata
            .topics()
            .iter()
            .filter(|topic| wanted.contains(topic.name()) && topic.error().is_none())
            .map(|topic| {
                let partitions = topic.partitions();
                let replication_factor = partitions
                    .iter()
                    .map(|p| i32::try_from(p.replicas().len()).unwrap_or(i32::MAX))
                    .max()
                    .unwrap_or(0);
                (
                    topic.name().to_owned(),
                    ObservedTopic {
                        partitions: i32::try_from(partitions.len()).unwrap_or(i32::MAX),
                        replication_factor,
                        config: BTreeMap::new(),
                    },
                )
            })
            .collect();
        if observed.is_empty() {
            return Ok((brokers, observed));
        }
        self.metrics.count(AdminCall::DescribeConfigs);
        let call = AdminCall::DescribeConfigs;
        let names: Vec<String> = observed.keys().cloned().collect();
        let specifiers: Vec<ResourceSpecifier<'_>> =
            names.iter().map(|name| ResourceSpecifier::Topic(name)).collect();
        let results = self
            .client
            .describe_configs(&specifiers, &Self::options())
            .await
            .map_err(|source| AdminError::Request { call, source })?;
        for result in results {
            let resource = match result {
                Ok(resource) => resource,
                Err(code) => {
                    return Err(AdminError::Topic { call, topic: String::new(), code });
                }
            };
            let OwnedResourceSpecifier::Topic(name) = &resource.specifier else { continue };
            if let Some(topic) = observed.get_mut(name) {
                topic.config = resource
                    .entries
                    .iter()
                    .filter(|entry| entry.source == ConfigSource::DynamicTopic)
                    .filter_map(|entry| Some((entry.name.clone(), entry.value.clone()?)))
                    .collect();
            }
        }
        Ok((brokers, observed))
    }
}

fn creates_names(creates: &[NewTopic<'_>]) -> Vec<String> {
    creates.iter().map(|topic| topic.name.to_owned()).collect()
}

/// Records the per-topic failures of a CreateTopics or CreatePartitions request;
/// `benign` codes count as success.
fn collect_errors(
    call: AdminCall,
    names: &[String],
    results: Result<Vec<rdkafka::admin::TopicResult>, KafkaError>,
    errors: &mut HashMap<String, AdminError>,
    benign: impl Fn(RDKafkaErrorCode) -> bool,
) {
    match results {
        Err(source) => {
            for name in names {
                errors.insert(name.clone(), AdminError::Request { call, source: source.clone() });
            }
        }
        Ok(results) => {
            for result in results {
                if let Err((topic, code)) = result
                    && !benign(code)
                {
                    errors.insert(topic.clone(), AdminError::Topic { call, topic, code });
                }
            }
        }
    }
}
