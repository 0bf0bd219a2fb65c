//! The Kafka admin layer: every topic reconcile goes through one batching task, so
//! reconciles that arrive within a short window share one request of each kind
//! (metadata, DescribeConfigs, CreateTopics, CreatePartitions, AlterConfigs,
//! DeleteTopics) instead of sending one each.

pub mod claims;
#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
pub(crate) mod fake_broker;
pub mod plan;
mod requests;
mod sasl;
mod scram;
pub mod secure;
mod uncertain;
pub mod wire;

use std::{
    collections::{BTreeMap, HashMap, HashSet, VecDeque},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use kafka_protocol::ResponseError;
use tokio::sync::{mpsc, oneshot};

pub use claims::{ClaimError, ClaimStore, MemoryClaims, MongoClaims, TopicClaim};
pub use plan::{Claim, ConfigChange, DesiredTopic, ObservedTopic, Plan, Refusal, Verdict};
pub use secure::{TlsSetupError, WireSecurity};
use uncertain::{UncertainCreates, create_outcome_unknown};
pub use wire::{KafkaClient, WireError};

/// How long the batcher waits for another request before it sends a batch that is not
/// full. While requests keep coming (a resync of thousands of Topics reaches it as a
/// stream, not at once) it keeps waiting, up to [`MAX_LINGER_FACTOR`] times as long:
/// full batches, not one per pause of the stream.
pub const DEFAULT_LINGER: Duration = Duration::from_millis(50);
/// The longest a batch waits for more, in lingers since its first request.
pub const MAX_LINGER_FACTOR: u32 = 10;
/// The most topics one batch carries.
pub const DEFAULT_MAX_BATCH: usize = 200;
/// How long one admin request may take: the broker's own operation timeout (30 s)
/// plus the way there and back.
pub const ADMIN_REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

/// Why Kafka did not do what a topic needed. Cloneable because one failed batch
/// request fails every topic in it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum AdminError {
    /// The whole request failed (broker unreachable, timeout).
    #[error("Kafka {call} request failed: {source}")]
    Request {
        call: AdminCall,
        #[source]
        source: WireError,
    },
    /// The broker refused the request for this topic, with its own words when it gave
    /// any.
    #[error("Kafka refused {call} for topic {topic}: {error:?}: {}", message.as_deref().map_or_else(|| error.to_string(), str::to_owned))]
    Topic { call: AdminCall, topic: String, error: ResponseError, message: Option<String> },
    /// The admin task is gone: the operator is shutting down.
    #[error("the Kafka admin task has stopped")]
    Stopped,
    /// The intent to create could not be recorded (or read back): nothing was created.
    #[error(transparent)]
    Claims(#[from] ClaimError),
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
}

impl prometheus_client::collector::Collector for AdminMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> std::fmt::Result {
        use crate::metrics::{counter, counters};
        counters(
            &mut encoder,
            "licenseware_kafka_admin_calls",
            "Kafka admin requests sent, by kind.",
            self.calls().into_iter().map(|(call, count)| ([("call", call.as_str())], count)),
        )?;
        let (batches, topics) = self.batches();
        counter(
            &mut encoder,
            "licenseware_kafka_admin_batches",
            "Batches of topic requests processed.",
            batches,
        )?;
        counter(
            &mut encoder,
            "licenseware_kafka_admin_batched_topics",
            "Topic requests carried by batches.",
            topics,
        )
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
    /// Kafka's id of the topic (None from a broker that does not give ids).
    pub topic_id: Option<String>,
}

/// What [`KafkaAdmin::apply`] found or did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Created or updated.
    Topic(AppliedTopic),
    /// The topic exists and the claim does not cover it: nothing was changed.
    NotOwned { topic_id: Option<String> },
}

enum Job {
    Apply(DesiredTopic, oneshot::Sender<Result<Applied, AdminError>>),
    /// The name, and the topic id that must still be the topic's (None: by name only).
    Delete(String, Option<String>, oneshot::Sender<Result<(), AdminError>>),
}

impl Job {
    fn topic(&self) -> &str {
        match self {
            Self::Apply(desired, _) => &desired.name,
            Self::Delete(name, _, _) => name,
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
    /// dropped. `claims` records the intent to create each topic before its create.
    pub fn start(
        client: Arc<KafkaClient>,
        claims: Arc<dyn ClaimStore>,
        linger: Duration,
        max_batch: usize,
    ) -> Self {
        let (jobs, receiver) = mpsc::channel(max_batch.max(1) * 4);
        let metrics = Arc::new(AdminMetrics::default());
        let batcher = Batcher {
            client,
            claims,
            metrics: Arc::clone(&metrics),
            linger,
            max_batch: max_batch.max(1),
            uncertain_creates: UncertainCreates::default(),
        };
        tokio::spawn(batcher.run(receiver));
        Self { jobs, metrics }
    }

    pub fn metrics(&self) -> &Arc<AdminMetrics> {
        &self.metrics
    }

    /// Creates the topic, or takes over an existing one when `desired.claim` covers
    /// it, and brings it in line with `desired`, as far as Kafka allows.
    #[tracing::instrument(name = "kafka_apply", level = "debug", skip_all)]
    pub async fn apply(&self, desired: DesiredTopic) -> Result<Applied, AdminError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Apply(desired, reply)).await.map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }

    /// Deletes the topic; a topic that does not exist counts as deleted. With `topic_id`
    /// the broker deletes the topic only if it still has that id (DeleteTopics by id),
    /// so a topic created again by someone else under the same name is left alone.
    pub async fn delete(&self, name: String, topic_id: Option<String>) -> Result<(), AdminError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Delete(name, topic_id, reply))
            .await
            .map_err(|_| AdminError::Stopped)?;
        answer.await.map_err(|_| AdminError::Stopped)?
    }
}

struct Batcher {
    client: Arc<KafkaClient>,
    claims: Arc<dyn ClaimStore>,
    metrics: Arc<AdminMetrics>,
    linger: Duration,
    max_batch: usize,
    uncertain_creates: UncertainCreates,
}

impl Batcher {
    async fn run(mut self, mut receiver: mpsc::Receiver<Job>) {
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
            let latest = tokio::time::Instant::now() + self.linger * MAX_LINGER_FACTOR;
            let mut deadline = (tokio::time::Instant::now() + self.linger).min(latest);
            while batch.len() < self.max_batch {
                match tokio::time::timeout_at(deadline, receiver.recv()).await {
                    Ok(Some(job)) => {
                        deadline = (tokio::time::Instant::now() + self.linger).min(latest);
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

    async fn process(&mut self, batch: Vec<Job>) {
        let mut applies = Vec::new();
        let mut deletes = Vec::new();
        for job in batch {
            match job {
                Job::Apply(desired, reply) => applies.push((desired, reply)),
                Job::Delete(name, id, reply) => deletes.push((name, id, reply)),
            }
        }
        if !deletes.is_empty() {
            let names: Vec<(&str, Option<&str>)> =
                deletes.iter().map(|(name, id, _)| (name.as_str(), id.as_deref())).collect();
            let mut errors = HashMap::new();
            requests::delete(&self.client, &self.metrics, &names, &mut errors).await;
            for (name, _, reply) in deletes {
                // Whatever takes this name next is not a create of ours.
                self.uncertain_creates.forget(&name);
                let _ = reply.send(errors.remove(&name).map_or(Ok(()), Err));
            }
        }
        if !applies.is_empty() {
            let desired: Vec<DesiredTopic> = applies.iter().map(|(d, _)| d.clone()).collect();
            let mut results = self.apply_all(&desired).await;
            for (desired, reply) in applies {
                let result = results.remove(&desired.name).unwrap_or(Err(AdminError::Stopped));
                let _ = reply.send(result);
            }
        }
    }

    /// An existing topic without a claim in its resource's status is still that
    /// resource's when the claim store holds its intent: it created the topic, and
    /// stopped (or its status write was lost) before recording the id.
    async fn check_recorded_claims<'a>(
        &self,
        existing: Vec<(&'a DesiredTopic, Option<String>)>,
        proceed: &mut Vec<&'a DesiredTopic>,
        results: &mut HashMap<String, Result<Applied, AdminError>>,
    ) {
        if existing.is_empty() {
            return;
        }
        let names: Vec<String> = existing.iter().map(|(d, _)| d.name.clone()).collect();
        match self.claims.claimants(&names).await {
            Ok(claimants) => {
                for (d, topic_id) in existing {
                    if claimants.get(&d.name) == Some(&d.claimant) {
                        proceed.push(d);
                    } else {
                        results.insert(d.name.clone(), Ok(Applied::NotOwned { topic_id }));
                    }
                }
            }
            Err(error) => {
                for (d, _) in existing {
                    results.insert(d.name.clone(), Err(error.clone().into()));
                }
            }
        }
    }

    /// Records the intent to create every missing topic of the batch, in one call, before
    /// any create: the topics whose intent could not be recorded are not created.
    async fn record_claims<'a>(
        &self,
        missing: Vec<&'a DesiredTopic>,
        proceed: &mut Vec<&'a DesiredTopic>,
        results: &mut HashMap<String, Result<Applied, AdminError>>,
    ) {
        if missing.is_empty() {
            return;
        }
        let claims: Vec<TopicClaim> = missing
            .iter()
            .map(|d| TopicClaim { kafka_name: d.name.clone(), claimant: d.claimant.clone() })
            .collect();
        match self.claims.record(&claims).await {
            Ok(()) => proceed.extend(missing),
            Err(error) => {
                for d in missing {
                    results.insert(d.name.clone(), Err(error.clone().into()));
                }
            }
        }
    }

    /// Forgets the claims of topics made again by someone else: the resource's status
    /// is about to lose the id it recorded, and its claim must not vouch for the new
    /// topic then. Forgotten before the answer, so before that status write.
    async fn forget_claims(
        &self,
        replaced: Vec<(&DesiredTopic, Option<String>)>,
        results: &mut HashMap<String, Result<Applied, AdminError>>,
    ) {
        if replaced.is_empty() {
            return;
        }
        let names: Vec<String> = replaced.iter().map(|(d, _)| d.name.clone()).collect();
        let forgotten = self.claims.forget(&names).await;
        for (d, topic_id) in replaced {
            let answer = match &forgotten {
                Ok(()) => Ok(Applied::NotOwned { topic_id }),
                Err(error) => Err(error.clone().into()),
            };
            results.insert(d.name.clone(), answer);
        }
    }

    /// One Metadata and one DescribeConfigs request for every topic of the batch, then
    /// at most one CreateTopics, one CreatePartitions and one IncrementalAlterConfigs.
    async fn apply_all(
        &mut self,
        desired: &[DesiredTopic],
    ) -> HashMap<String, Result<Applied, AdminError>> {
        let names: Vec<String> = desired.iter().map(|d| d.name.clone()).collect();
        let mut observed = match requests::observe(&self.client, &self.metrics, &names).await {
            Ok(observed) => observed,
            Err(error) => {
                return desired.iter().map(|d| (d.name.clone(), Err(error.clone()))).collect();
            }
        };
        // Topics the claim does not cover are answered now and get no request.
        let mut results = HashMap::new();
        let mut proceed = Vec::new();
        let mut to_claim = Vec::new();
        let mut existing_unclaimed = Vec::new();
        let mut replaced = Vec::new();
        for d in desired {
            let id = observed
                .topics
                .contains_key(&d.name)
                .then(|| observed.ids.get(&d.name).map(String::as_str));
            match plan::verdict(&d.claim, id) {
                Verdict::Proceed => proceed.push(d),
                Verdict::Unclaimed => to_claim.push(d),
                Verdict::NotOwned { topic_id } if d.claim == Claim::Unclaimed => {
                    existing_unclaimed.push((d, topic_id));
                }
                Verdict::NotOwned { topic_id } if matches!(d.claim, Claim::Owned(_)) => {
                    replaced.push((d, topic_id));
                }
                Verdict::NotOwned { topic_id } => {
                    results.insert(d.name.clone(), Ok(Applied::NotOwned { topic_id }));
                }
            }
        }
        self.check_recorded_claims(existing_unclaimed, &mut proceed, &mut results).await;
        self.forget_claims(replaced, &mut results).await;
        self.record_claims(to_claim, &mut proceed, &mut results).await;
        let desired = proceed;
        let plans: Vec<(&DesiredTopic, Plan)> = desired
            .iter()
            .map(|d| (*d, plan::plan(d, observed.topics.get(&d.name), observed.brokers)))
            .collect();
        let mut errors = requests::TopicErrors::new();

        let creates: Vec<(&DesiredTopic, i32)> =
            plans.iter().filter_map(|(d, p)| Some((*d, p.create?))).collect();
        let mut raced = HashSet::new();
        // Every name a create found already there, ours included: none was created now.
        let mut existed = HashSet::new();
        if !creates.is_empty() {
            let created =
                requests::create(&self.client, &self.metrics, &creates, &mut errors).await;
            observed.ids.extend(created.ids);
            raced = created.already_exists;
            existed.clone_from(&raced);
            let now = Instant::now();
            for (d, _) in &creates {
                match errors.get(&d.name) {
                    Some(error) if create_outcome_unknown(error) => {
                        self.uncertain_creates.record(&d.name, now);
                    }
                    // Created: metadata may not show it for a while, and a create again
                    // meanwhile would hear "already exists" of our own topic.
                    _ if !raced.contains(&d.name) => self.uncertain_creates.record(&d.name, now),
                    _ => {}
                }
            }
            // A create of ours that timed out may have gone through: the topic it made
            // is ours, not someone else's, and its id is read now.
            let ours: Vec<String> = raced
                .iter()
                .filter(|name| self.uncertain_creates.take(name, now))
                .cloned()
                .collect();
            if !ours.is_empty() {
                match requests::observe(&self.client, &self.metrics, &ours).await {
                    Ok(again) => observed.ids.extend(again.ids),
                    Err(error) => {
                        for name in &ours {
                            errors.insert(name.clone(), error.clone());
                        }
                    }
                }
                raced.retain(|name| !ours.contains(name));
            }
        }
        let increases: Vec<(&str, i32)> =
            plans.iter().filter_map(|(d, p)| Some((d.name.as_str(), p.add_partitions?))).collect();
        if !increases.is_empty() {
            requests::add_partitions(&self.client, &self.metrics, &increases, &mut errors).await;
        }
        let alters: Vec<(&str, &[ConfigChange])> = plans
            .iter()
            .filter(|(_, p)| !p.config_changes.is_empty())
            .map(|(d, p)| (d.name.as_str(), p.config_changes.as_slice()))
            .collect();
        if !alters.is_empty() {
            requests::alter_configs(&self.client, &self.metrics, &alters, &mut errors).await;
        }

        for (d, p) in plans {
            let result = match errors.remove(&d.name) {
                Some(error) => Err(error),
                // Created by someone else between our metadata and create requests:
                // not ours, unless the claim adopts anything.
                None if raced.contains(&d.name) && d.claim != Claim::Adopt => {
                    Ok(Applied::NotOwned { topic_id: None })
                }
                None => Ok(Applied::Topic(AppliedTopic {
                    created: p.create.is_some() && !existed.contains(&d.name),
                    partitions: p.partitions,
                    replication_factor: p.replication_factor,
                    refusals: p.refusals,
                    topic_id: observed.ids.get(&d.name).cloned(),
                })),
            };
            results.insert(d.name.clone(), result);
        }
        results
    }
}
