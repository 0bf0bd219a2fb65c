//! The admin requests of one batch, each sent once for every topic that needs it.
//! Per-topic refusals keep the broker's own error message.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    time::Duration,
};

use kafka_protocol::{
    ResponseError,
    messages::{
        CreatePartitionsRequest, CreateTopicsRequest, DeleteTopicsRequest, DescribeConfigsRequest,
        IncrementalAlterConfigsRequest, TopicName,
        create_partitions_request::CreatePartitionsTopic,
        create_topics_request::{CreatableTopic, CreatableTopicConfig},
        delete_topics_request::DeleteTopicState,
        describe_configs_request::DescribeConfigsResource,
        incremental_alter_configs_request::{AlterConfigsResource, AlterableConfig},
    },
    protocol::{Request, StrBytes},
};

use super::{
    AdminCall, AdminError, AdminMetrics, ConfigChange, DesiredTopic, ObservedTopic,
    wire::{KafkaClient, WireError},
};

/// How long the broker may take over one admin operation.
const OPERATION_TIMEOUT_MS: i32 = 30_000;
/// `ConfigResource.Type.TOPIC` in the protocol.
const RESOURCE_TOPIC: i8 = 2;
/// `ConfigSource.DYNAMIC_TOPIC_CONFIG`: a config set on the topic itself.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const OPERATION_SET: i8 = 0;
const OPERATION_DELETE: i8 = 1;
/// How many times one admin request is sent at most, when the controller moved
/// (NOT_CONTROLLER), could not be reached, or gave another retriable error.
pub const ATTEMPTS: u32 = 4;
/// The wait before the first resend, doubled before each one after.
const FIRST_BACKOFF: Duration = Duration::from_millis(250);

/// Per-topic outcome of a request that carried many topics.
pub type TopicErrors = HashMap<String, AdminError>;

/// What Kafka has for the topics of a batch.
#[derive(Debug, Default)]
pub struct Observed {
    pub brokers: i32,
    pub topics: HashMap<String, ObservedTopic>,
    /// Topic ids of the existing topics.
    pub ids: HashMap<String, String>,
}

fn name(value: &str) -> TopicName {
    TopicName(text(value))
}

fn text(value: &str) -> StrBytes {
    StrBytes::from_string(value.to_owned())
}

/// The refusal of `call` for `topic`, or `None` for error code 0.
fn refusal(
    call: AdminCall,
    topic: &str,
    code: i16,
    message: Option<&StrBytes>,
) -> Option<AdminError> {
    let error = ResponseError::try_from_code(code)?;
    Some(AdminError::Topic {
        call,
        topic: topic.to_owned(),
        error,
        message: message.map(|m| m.as_str().to_owned()).filter(|m| !m.is_empty()),
    })
}

/// A topic id as Kafka prints it (`kafka-topics --describe`, Strimzi's status):
/// URL-safe base64 without padding. The nil UUID is Kafka's "no id".
pub fn topic_id(id: uuid::Uuid) -> Option<String> {
    use base64::Engine;
    (!id.is_nil()).then(|| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
}

/// Sends an admin request to the controller of the last metadata answer, reading the
/// metadata first (a counted Metadata request) when none is known. A request that got
/// no answer forgets the controller: the next one looks it up again.
async fn send_admin<R: Request>(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    call: AdminCall,
    request: &R,
) -> Result<R::Response, WireError> {
    let controller = match client.controller() {
        Some(controller) => controller,
        None => {
            metrics.count(AdminCall::Metadata);
            client.metadata(Some(&[])).await?;
            client.controller().ok_or(WireError::NoController)?
        }
    };
    metrics.count(call);
    let answer = client.send_to(controller, request).await;
    if answer.is_err() {
        client.forget_controller();
    }
    answer
}

/// The sends of one admin request: whether a failure may be sent again, and the
/// backoff before it.
struct Attempts {
    call: AdminCall,
    sent: u32,
}

impl Attempts {
    fn new(call: AdminCall) -> Self {
        Self { call, sent: 1 }
    }

    fn left(&self) -> bool {
        self.sent < ATTEMPTS
    }

    /// Whether a topic refused with `error` is sent again.
    fn retries_refusal(&self, error: &AdminError) -> bool {
        let AdminError::Topic { error, .. } = error else { return false };
        self.left()
            && match error {
                // The answer "it does not exist": asking again changes nothing.
                ResponseError::UnknownTopicOrPartition | ResponseError::UnknownTopicId => false,
                // The controller goes on with a create after it answers this: the
                // outcome is open, and the batcher's uncertain creates handle it.
                ResponseError::RequestTimedOut => !creates(self.call),
                other => other.is_retriable(),
            }
    }

    /// Whether a request that failed as a whole is sent again.
    fn retries_failure(&self, source: &WireError) -> bool {
        self.left()
            && match source {
                // Never reached a broker that could act on it.
                WireError::Connect { .. }
                | WireError::Tls { .. }
                | WireError::UnknownBroker(_)
                | WireError::NoController => true,
                // Sent, perhaps acted on: creates are not sent twice.
                WireError::Io { .. } | WireError::Timeout { .. } => !creates(self.call),
                WireError::UnsupportedApi { .. }
                | WireError::Codec { .. }
                | WireError::NoBootstrap
                | WireError::Authentication { .. } => false,
            }
    }

    /// Records the outcome of one send for `pending` topics: refusals and failures
    /// that are final go to `errors`; the topics to send again are returned.
    fn settle<'a>(
        &self,
        outcome: Result<Vec<(String, AdminError)>, WireError>,
        pending: impl Iterator<Item = &'a str>,
        errors: &mut TopicErrors,
    ) -> HashSet<String> {
        let mut again = HashSet::new();
        match outcome {
            Err(source) if self.retries_failure(&source) => {
                again.extend(pending.map(str::to_owned));
            }
            Err(source) => fail_all(self.call, source, pending, errors),
            Ok(refused) => {
                for (topic, error) in refused {
                    if self.retries_refusal(&error) {
                        again.insert(topic);
                    } else {
                        errors.insert(topic, error);
                    }
                }
            }
        }
        again
    }

    /// Waits before the next send, and forgets the controller so that it is looked
    /// up again (it may have moved).
    async fn pause(&mut self, client: &KafkaClient) {
        client.forget_controller();
        tokio::time::sleep(FIRST_BACKOFF * 2u32.saturating_pow(self.sent - 1)).await;
        self.sent += 1;
    }
}

/// Requests that make something that a second send would find made.
fn creates(call: AdminCall) -> bool {
    matches!(call, AdminCall::CreateTopics | AdminCall::CreatePartitions)
}

/// Metadata for the batch's topics, then their dynamic configs.
pub async fn observe(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    names: &[String],
) -> Result<Observed, AdminError> {
    metrics.count(AdminCall::Metadata);
    let call = AdminCall::Metadata;
    let metadata = client
        .metadata(Some(names))
        .await
        .map_err(|source| AdminError::Request { call, source })?;
    let mut observed = Observed {
        brokers: i32::try_from(metadata.brokers.len()).unwrap_or(i32::MAX),
        ..Observed::default()
    };
    let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
    for topic in &metadata.topics {
        let Some(topic_name) = topic.name.as_ref().map(|n| n.0.as_str()) else { continue };
        // UNKNOWN_TOPIC_OR_PARTITION is "does not exist"; any other error leaves the
        // topic unobserved too, and its create then reports the broker's reason.
        if !wanted.contains(topic_name) || topic.error_code != 0 {
            continue;
        }
        let replication_factor = topic
            .partitions
            .iter()
            .map(|p| i32::try_from(p.replica_nodes.len()).unwrap_or(i32::MAX))
            .max()
            .unwrap_or(0);
        observed.topics.insert(
            topic_name.to_owned(),
            ObservedTopic {
                partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
                replication_factor,
                config: BTreeMap::new(),
            },
        );
        if let Some(id) = topic_id(topic.topic_id) {
            observed.ids.insert(topic_name.to_owned(), id);
        }
    }
    if observed.topics.is_empty() {
        return Ok(observed);
    }
    metrics.count(AdminCall::DescribeConfigs);
    let call = AdminCall::DescribeConfigs;
    let request = DescribeConfigsRequest::default().with_resources(
        observed
            .topics
            .keys()
            .map(|topic| {
                DescribeConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(text(topic))
                    .with_configuration_keys(None)
            })
            .collect(),
    );
    let response =
        client.send_any(&request).await.map_err(|source| AdminError::Request { call, source })?;
    for result in response.results {
        let topic = result.resource_name.as_str();
        if let Some(error) = refusal(call, topic, result.error_code, result.error_message.as_ref())
        {
            // Deleted between the two requests: planned as missing, so re-created.
            if matches!(&error, AdminError::Topic { error, .. } if *error == ResponseError::UnknownTopicOrPartition)
            {
                observed.topics.remove(topic);
                continue;
            }
            return Err(error);
        }
        if let Some(found) = observed.topics.get_mut(topic) {
            found.config = result
                .configs
                .iter()
                .filter(|entry| entry.config_source == SOURCE_DYNAMIC_TOPIC)
                .filter_map(|entry| {
                    Some((
                        entry.name.as_str().to_owned(),
                        entry.value.as_ref()?.as_str().to_owned(),
                    ))
                })
                .collect();
        }
    }
    Ok(observed)
}

/// What a CreateTopics request did besides its errors.
#[derive(Debug, Default)]
pub struct Created {
    /// The ids Kafka gave the topics it created.
    pub ids: HashMap<String, String>,
    /// Topics that someone else created since the metadata request.
    pub already_exists: HashSet<String>,
}

/// Creates the topics (name, replication factor).
pub async fn create(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    topics: &[(&DesiredTopic, i32)],
    errors: &mut TopicErrors,
) -> Created {
    let mut created = Created::default();
    let mut pending: Vec<&(&DesiredTopic, i32)> = topics.iter().collect();
    let mut attempts = Attempts::new(AdminCall::CreateTopics);
    loop {
        let outcome = send_create(client, metrics, &pending, &mut created).await;
        let again = attempts.settle(outcome, pending.iter().map(|(d, _)| d.name.as_str()), errors);
        pending.retain(|(d, _)| again.contains(&d.name));
        if pending.is_empty() {
            return created;
        }
        attempts.pause(client).await;
    }
}

/// One CreateTopics request: what it made goes to `created`, refusals are returned.
async fn send_create(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    pending: &[&(&DesiredTopic, i32)],
    created: &mut Created,
) -> Result<Vec<(String, AdminError)>, WireError> {
    let call = AdminCall::CreateTopics;
    let response = send_admin(client, metrics, call, &create_request(pending)).await?;
    let mut refused = Vec::new();
    for result in response.topics {
        let topic = result.name.0.as_str();
        match refusal(call, topic, result.error_code, result.error_message.as_ref()) {
            // Created by someone else since our metadata request.
            Some(AdminError::Topic { error: ResponseError::TopicAlreadyExists, .. }) => {
                created.already_exists.insert(topic.to_owned());
            }
            Some(error) => refused.push((topic.to_owned(), error)),
            None => {
                if let Some(id) = topic_id(result.topic_id) {
                    created.ids.insert(topic.to_owned(), id);
                }
            }
        }
    }
    Ok(refused)
}

fn create_request(topics: &[&(&DesiredTopic, i32)]) -> CreateTopicsRequest {
    CreateTopicsRequest::default().with_timeout_ms(OPERATION_TIMEOUT_MS).with_topics(
        topics
            .iter()
            .map(|(desired, replication_factor)| {
                CreatableTopic::default()
                    .with_name(name(&desired.name))
                    .with_num_partitions(desired.partitions)
                    .with_replication_factor(i16::try_from(*replication_factor).unwrap_or(i16::MAX))
                    .with_configs(
                        desired
                            .config
                            .iter()
                            .map(|(key, value)| {
                                CreatableTopicConfig::default()
                                    .with_name(text(key))
                                    .with_value(Some(text(value)))
                            })
                            .collect(),
                    )
            })
            .collect(),
    )
}

/// Raises partition counts to the given totals.
pub async fn add_partitions(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    totals: &[(&str, i32)],
    errors: &mut TopicErrors,
) {
    let call = AdminCall::CreatePartitions;
    let mut pending: Vec<&(&str, i32)> = totals.iter().collect();
    let mut attempts = Attempts::new(call);
    loop {
        let outcome = send_partitions(client, metrics, &pending).await;
        let again = attempts.settle(outcome, pending.iter().map(|(topic, _)| *topic), errors);
        pending.retain(|(topic, _)| again.contains(*topic));
        if pending.is_empty() {
            return;
        }
        attempts.pause(client).await;
    }
}

async fn send_partitions(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    pending: &[&(&str, i32)],
) -> Result<Vec<(String, AdminError)>, WireError> {
    let call = AdminCall::CreatePartitions;
    let request =
        CreatePartitionsRequest::default().with_timeout_ms(OPERATION_TIMEOUT_MS).with_topics(
            pending
                .iter()
                .map(|(topic, count)| {
                    CreatePartitionsTopic::default()
                        .with_name(name(topic))
                        .with_count(*count)
                        .with_assignments(None)
                })
                .collect(),
        );
    let response = send_admin(client, metrics, call, &request).await?;
    Ok(response
        .results
        .iter()
        .filter_map(|result| {
            let topic = result.name.0.as_str();
            let error = refusal(call, topic, result.error_code, result.error_message.as_ref())?;
            Some((topic.to_owned(), error))
        })
        .collect())
}

/// Sets and deletes dynamic configs, topic by topic in one request.
pub async fn alter_configs(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    changes: &[(&str, &[ConfigChange])],
    errors: &mut TopicErrors,
) {
    let call = AdminCall::AlterConfigs;
    let mut pending: Vec<&(&str, &[ConfigChange])> = changes.iter().collect();
    let mut attempts = Attempts::new(call);
    loop {
        let outcome = send_alter_configs(client, metrics, &pending).await;
        let again = attempts.settle(outcome, pending.iter().map(|(topic, _)| *topic), errors);
        pending.retain(|(topic, _)| again.contains(*topic));
        if pending.is_empty() {
            return;
        }
        attempts.pause(client).await;
    }
}

async fn send_alter_configs(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    pending: &[&(&str, &[ConfigChange])],
) -> Result<Vec<(String, AdminError)>, WireError> {
    let call = AdminCall::AlterConfigs;
    let request = IncrementalAlterConfigsRequest::default().with_resources(
        pending
            .iter()
            .map(|(topic, changes)| {
                AlterConfigsResource::default()
                    .with_resource_type(RESOURCE_TOPIC)
                    .with_resource_name(text(topic))
                    .with_configs(changes.iter().map(alterable).collect())
            })
            .collect(),
    );
    let response = send_admin(client, metrics, call, &request).await?;
    Ok(response
        .responses
        .iter()
        .filter_map(|result| {
            let topic = result.resource_name.as_str();
            let error = refusal(call, topic, result.error_code, result.error_message.as_ref())?;
            Some((topic.to_owned(), error))
        })
        .collect())
}

fn alterable(change: &ConfigChange) -> AlterableConfig {
    match change {
        ConfigChange::Set { key, value } => AlterableConfig::default()
            .with_name(text(key))
            .with_config_operation(OPERATION_SET)
            .with_value(Some(text(value))),
        ConfigChange::Delete { key } => AlterableConfig::default()
            .with_name(text(key))
            .with_config_operation(OPERATION_DELETE)
            .with_value(None),
    }
}

/// The topic id as Kafka takes it back, from its printed form.
fn parse_topic_id(id: &str) -> Option<uuid::Uuid> {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(id).ok()?;
    uuid::Uuid::from_slice(&bytes).ok().filter(|id| !id.is_nil())
}

/// Deletes the topics (name, and the id it must still have); one that does not exist
/// counts as deleted.
pub async fn delete(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    topics: &[(&str, Option<&str>)],
    errors: &mut TopicErrors,
) {
    let call = AdminCall::DeleteTopics;
    let mut pending: Vec<&(&str, Option<&str>)> = topics.iter().collect();
    let mut attempts = Attempts::new(call);
    loop {
        let outcome = send_delete(client, metrics, &pending).await;
        let again = attempts.settle(outcome, pending.iter().map(|(topic, _)| *topic), errors);
        pending.retain(|(topic, _)| again.contains(*topic));
        if pending.is_empty() {
            return;
        }
        attempts.pause(client).await;
    }
}

async fn send_delete(
    client: &KafkaClient,
    metrics: &AdminMetrics,
    pending: &[&(&str, Option<&str>)],
) -> Result<Vec<(String, AdminError)>, WireError> {
    let call = AdminCall::DeleteTopics;
    // Version 6 or later (the client's floor): a topic goes by name or by id. By
    // id, the broker deletes only that incarnation of the name.
    let by_id: HashMap<uuid::Uuid, &str> =
        pending.iter().filter_map(|(topic, id)| Some((parse_topic_id((*id)?)?, *topic))).collect();
    let request = DeleteTopicsRequest::default().with_timeout_ms(OPERATION_TIMEOUT_MS).with_topics(
        pending
            .iter()
            .map(|(topic, id)| match id.and_then(parse_topic_id) {
                Some(id) => DeleteTopicState::default().with_name(None).with_topic_id(id),
                None => DeleteTopicState::default().with_name(Some(name(topic))),
            })
            .collect(),
    );
    let response = send_admin(client, metrics, call, &request).await?;
    Ok(response
        .responses
        .iter()
        .filter_map(|result| {
            let topic = result
                .name
                .as_ref()
                .map(|n| n.0.as_str())
                .or_else(|| by_id.get(&result.topic_id).copied())?;
            match refusal(call, topic, result.error_code, result.error_message.as_ref())? {
                // Gone, or replaced by another topic of that name, which is not ours.
                AdminError::Topic {
                    error: ResponseError::UnknownTopicOrPartition | ResponseError::UnknownTopicId,
                    ..
                } => None,
                error => Some((topic.to_owned(), error)),
            }
        })
        .collect())
}

fn fail_all<'a>(
    call: AdminCall,
    source: WireError,
    topics: impl Iterator<Item = &'a str>,
    errors: &mut TopicErrors,
) {
    for topic in topics {
        errors.insert(topic.to_owned(), AdminError::Request { call, source: source.clone() });
    }
}
