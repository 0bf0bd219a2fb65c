//! A scripted Kafka cluster for unit tests: each broker a TCP listener on 127.0.0.1:0
//! that decodes request frames with `kafka-protocol` and answers what the test's
//! script says. ApiVersions and Metadata have default answers (every API at the
//! crate's versions; the cluster's brokers, controller and topics), so a script only
//! deals with the requests its test is about, and may stall or close a connection
//! instead of answering.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicI32, Ordering},
    },
};

use bytes::{Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiKey, ApiVersionsResponse, BrokerId, MetadataRequest, MetadataResponse, RequestHeader,
        ResponseHeader, TopicName,
        api_versions_response::ApiVersion,
        metadata_response::{
            MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
        },
    },
    protocol::{Decodable, Encodable, HeaderVersion, StrBytes},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Notify,
};

/// One request as a broker got it.
#[derive(Debug, Clone)]
pub struct Call {
    pub node: i32,
    pub api: ApiKey,
    pub version: i16,
    pub correlation_id: i32,
    body: Bytes,
}

impl Call {
    /// The request's body, decoded as `R`.
    pub fn decode<R: Decodable>(&self) -> R {
        R::decode(&mut self.body.clone(), self.version).expect("a request the client encoded")
    }

    /// `response` as the answer to this call.
    pub fn answer<T: Encodable + HeaderVersion>(&self, response: &T) -> Reply {
        let mut frame = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(self.correlation_id)
            .encode(&mut frame, self.api.response_header_version(self.version))
            .expect("response header");
        response.encode(&mut frame, self.version).expect("response body");
        Reply::Answer(frame.freeze())
    }
}

/// What a broker does with a request.
pub enum Reply {
    Answer(Bytes),
    /// Keeps the connection open and never answers.
    Stall,
    /// Closes the connection without answering.
    Close,
    /// The fake's own answer (ApiVersions, Metadata); any other request is closed on.
    Default,
}

type Script = dyn Fn(&Call) -> Reply + Send + Sync;

/// A partition of a topic of the cluster: its leader and replicas.
#[derive(Debug, Clone)]
pub struct FakePartition {
    pub leader: i32,
    pub replicas: Vec<i32>,
}

/// Brokers with ids 1..=n, one listener each.
pub struct FakeCluster {
    pub addresses: BTreeMap<i32, String>,
    /// Topic → partitions, in partition order.
    pub topics: Arc<Mutex<BTreeMap<String, Vec<FakePartition>>>>,
    calls: Arc<Mutex<Vec<(i32, ApiKey)>>>,
    /// Notified on every request received.
    pub received: Arc<Notify>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for FakeCluster {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl FakeCluster {
    /// Brokers 1..=`brokers`, broker 1 the controller.
    pub async fn start(
        brokers: i32,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Self {
        Self::start_with(brokers, Arc::new(AtomicI32::new(1)), script).await
    }

    /// With the controller id given, which the script may move.
    pub async fn start_with(
        brokers: i32,
        controller: Arc<AtomicI32>,
        script: impl Fn(&Call) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let script: Arc<Script> = Arc::new(script);
        let mut listeners = Vec::new();
        let mut addresses = BTreeMap::new();
        for node in 1..=brokers {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            addresses.insert(node, listener.local_addr().expect("address").to_string());
            listeners.push((node, listener));
        }
        let shared = Arc::new(Shared {
            addresses: addresses.clone(),
            controller,
            topics: Arc::default(),
            calls: Arc::default(),
            received: Arc::new(Notify::new()),
            script,
        });
        let tasks = listeners
            .into_iter()
            .map(|(node, listener)| tokio::spawn(Arc::clone(&shared).serve(node, listener)))
            .collect();
        Self {
            addresses,
            topics: Arc::clone(&shared.topics),
            calls: Arc::clone(&shared.calls),
            received: Arc::clone(&shared.received),
            tasks,
        }
    }

    /// The bootstrap list of every broker.
    pub fn bootstrap(&self) -> String {
        self.addresses.values().cloned().collect::<Vec<_>>().join(",")
    }

    pub fn add_topic(&self, name: &str, partitions: Vec<FakePartition>) {
        self.topics.lock().unwrap().insert(name.to_owned(), partitions);
    }

    /// Every request received so far: broker id and API, in order.
    pub fn calls(&self) -> Vec<(i32, ApiKey)> {
        self.calls.lock().unwrap().clone()
    }

    /// The brokers that got `api`, in order.
    pub fn nodes_for(&self, api: ApiKey) -> Vec<i32> {
        self.calls().into_iter().filter(|(_, a)| *a == api).map(|(node, _)| node).collect()
    }

    /// Waits (within a generous bound) until some broker got a request that `seen`
    /// accepts.
    pub async fn wait_for(&self, seen: impl Fn(&[(i32, ApiKey)]) -> bool) {
        let wait = async {
            loop {
                let notified = self.received.notified();
                if seen(&self.calls()) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(30), wait)
            .await
            .expect("the awaited request never came");
    }
}

struct Shared {
    addresses: BTreeMap<i32, String>,
    /// The controller id the Metadata answers give; a script may move it.
    controller: Arc<AtomicI32>,
    topics: Arc<Mutex<BTreeMap<String, Vec<FakePartition>>>>,
    calls: Arc<Mutex<Vec<(i32, ApiKey)>>>,
    received: Arc<Notify>,
    script: Arc<Script>,
}

impl Shared {
    async fn serve(self: Arc<Self>, node: i32, listener: TcpListener) {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(Arc::clone(&self).connection(node, stream));
        }
    }

    async fn connection(self: Arc<Self>, node: i32, mut stream: TcpStream) {
        loop {
            let Ok(length) = stream.read_u32().await else { return };
            let mut frame = vec![0; length as usize];
            if stream.read_exact(&mut frame).await.is_err() {
                return;
            }
            let call = decode_call(node, Bytes::from(frame));
            self.calls.lock().unwrap().push((node, call.api));
            self.received.notify_waiters();
            let reply = match (self.script)(&call) {
                Reply::Default => self.default_reply(&call),
                reply => reply,
            };
            match reply {
                Reply::Answer(body) => {
                    let length = u32::try_from(body.len()).expect("small answer");
                    if stream.write_u32(length).await.is_err()
                        || stream.write_all(&body).await.is_err()
                    {
                        return;
                    }
                }
                Reply::Stall => {
                    // Hold the connection open, unanswered, until the client drops it.
                    let mut rest = Vec::new();
                    let _ = stream.read_to_end(&mut rest).await;
                    return;
                }
                Reply::Close | Reply::Default => return,
            }
        }
    }

    fn default_reply(&self, call: &Call) -> Reply {
        match call.api {
            ApiKey::ApiVersions => call.answer(
                &ApiVersionsResponse::default().with_api_keys(
                    ApiKey::iter()
                        .map(|key| {
                            let versions = key.valid_versions();
                            ApiVersion::default()
                                .with_api_key(key as i16)
                                .with_min_version(versions.min)
                                .with_max_version(versions.max)
                        })
                        .collect(),
                ),
            ),
            ApiKey::Metadata => call.answer(&self.metadata(&call.decode::<MetadataRequest>())),
            _ => Reply::Close,
        }
    }

    fn metadata(&self, request: &MetadataRequest) -> MetadataResponse {
        let brokers = self
            .addresses
            .iter()
            .map(|(node, address)| {
                let (host, port) = address.rsplit_once(':').expect("host:port");
                MetadataResponseBroker::default()
                    .with_node_id(BrokerId(*node))
                    .with_host(StrBytes::from_string(host.to_owned()))
                    .with_port(port.parse().expect("port"))
            })
            .collect();
        let topics = self.topics.lock().unwrap();
        let names: Vec<String> = match &request.topics {
            None => topics.keys().cloned().collect(),
            Some(asked) => {
                asked.iter().filter_map(|t| Some(t.name.as_ref()?.0.as_str().to_owned())).collect()
            }
        };
        let topics = names
            .into_iter()
            .map(|name| {
                let topic = MetadataResponseTopic::default()
                    .with_name(Some(TopicName(StrBytes::from_string(name.clone()))));
                match topics.get(&name) {
                    None => topic.with_error_code(
                        kafka_protocol::ResponseError::UnknownTopicOrPartition.code(),
                    ),
                    Some(partitions) => topic
                        .with_topic_id(uuid::Uuid::from_u128(name.len() as u128 + 1))
                        .with_partitions(
                            partitions
                                .iter()
                                .enumerate()
                                .map(|(index, partition)| {
                                    let replicas: Vec<BrokerId> =
                                        partition.replicas.iter().copied().map(BrokerId).collect();
                                    MetadataResponsePartition::default()
                                        .with_partition_index(index as i32)
                                        .with_leader_id(BrokerId(partition.leader))
                                        .with_replica_nodes(replicas.clone())
                                        .with_isr_nodes(replicas)
                                })
                                .collect(),
                        ),
                }
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(brokers)
            .with_controller_id(BrokerId(self.controller.load(Ordering::SeqCst)))
            .with_topics(topics)
    }
}

fn decode_call(node: i32, mut frame: Bytes) -> Call {
    let api = ApiKey::try_from(i16::from_be_bytes([frame[0], frame[1]])).expect("known API key");
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let header = RequestHeader::decode(&mut frame, api.request_header_version(version))
        .expect("request header");
    Call { node, api, version, correlation_id: header.correlation_id, body: frame }
}
