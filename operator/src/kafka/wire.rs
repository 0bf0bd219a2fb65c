//! A small Kafka client on the `kafka-protocol` crate's message types: one TCP
//! connection per broker, the API version of each request negotiated with that
//! broker (ApiVersions), one request in flight per connection.
//!
//! Why not librdkafka's admin API: it drops the broker's error messages, has no topic
//! ids, cannot fetch the offsets of many consumer groups in one request, and every
//! client costs several threads. The operator's requests are few and batched, so a
//! connection that serves one request at a time is enough.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicI32, Ordering},
    },
    time::{Duration, Instant},
};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::{
    messages::{
        ApiVersionsRequest, ApiVersionsResponse, MetadataRequest, MetadataResponse, RequestHeader,
        ResponseHeader, TopicName, metadata_request::MetadataRequestTopic,
    },
    protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes},
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::secure::{KafkaStream, WireSecurity};

/// The largest response accepted: a guard against a corrupt length prefix.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;
/// The most brokers one `send_any` tries: its time stays within a few timeouts
/// however many brokers the cluster has and however many are down.
const SEND_ANY_BROKERS: usize = 3;

/// Why a request got no answer. Cloneable so that one failed batch request can fail
/// every topic or group it carried.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WireError {
    #[error("cannot connect to Kafka at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("Kafka broker {address} did not answer {api} within {timeout:?}")]
    Timeout { address: String, api: &'static str, timeout: Duration },
    #[error("connection to Kafka broker {address} failed during {api}: {message}")]
    Io { address: String, api: &'static str, message: String },
    #[error(
        "Kafka broker {address} supports no version of {api} that this operator speaks (Kafka 3.0 or later is needed)"
    )]
    UnsupportedApi { address: String, api: &'static str },
    #[error("cannot encode or decode {api}: {message}")]
    Codec { api: &'static str, message: String },
    #[error("no Kafka broker with id {0} in the cluster metadata")]
    UnknownBroker(i32),
    #[error("no Kafka bootstrap address given")]
    NoBootstrap,
    #[error("the Kafka cluster metadata names no controller")]
    NoController,
    #[error("TLS with Kafka broker {address} failed: {message}")]
    Tls { address: String, message: String },
    #[error("Kafka broker {address} refused SASL {mechanism} authentication: {message}")]
    Authentication { address: String, mechanism: &'static str, message: String },
}

/// A connection to one broker, with the versions it speaks.
pub(super) struct Connection {
    pub(super) address: String,
    stream: tokio::sync::Mutex<Box<dyn KafkaStream>>,
    /// API key → highest version both sides speak.
    versions: HashMap<i16, i16>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("address", &self.address).finish_non_exhaustive()
    }
}

/// Kafka requests to the cluster behind `bootstrap`. Cheap to share (`Arc`).
#[derive(Debug)]
pub struct KafkaClient {
    bootstrap: Vec<String>,
    client_id: StrBytes,
    timeout: Duration,
    security: WireSecurity,
    correlation: AtomicI32,
    /// Connections by address, each opened once. The map's lock is held only to find
    /// or add a slot, never across a connect: a broker that stalls its handshake holds
    /// up the requests for that broker alone.
    connections: Mutex<HashMap<String, Arc<Slot>>>,
    /// Broker id → address, from the last metadata answer.
    brokers: Mutex<HashMap<i32, String>>,
    /// The controller id of the last metadata answer (KRaft: a broker that forwards
    /// admin requests to the controller quorum).
    controller: Mutex<Option<i32>>,
    /// Addresses whose last connect or request failed, and when: `send_any` tries them
    /// last, so one dead broker does not cost every request a timeout.
    failures: Mutex<HashMap<String, Instant>>,
}

/// The connection to one address: opened by the first request that needs it, while
/// the others for that address wait on it.
#[derive(Debug, Default)]
struct Slot {
    connection: tokio::sync::OnceCell<Arc<Connection>>,
    /// The last failed connect and when it ended: the requests that waited on it fail
    /// with it too, instead of each waiting out a stalled broker in turn.
    failed: Mutex<Option<(Instant, WireError)>>,
}

fn locked<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl KafkaClient {
    /// `brokers`: comma-separated `host:port` bootstrap list, as librdkafka takes it.
    pub fn new(
        brokers: &str,
        client_id: &'static str,
        timeout: Duration,
        security: WireSecurity,
    ) -> Self {
        Self {
            bootstrap: brokers
                .split(',')
                .map(str::trim)
                .filter(|address| !address.is_empty())
                .map(str::to_owned)
                .collect(),
            client_id: StrBytes::from_static_str(client_id),
            timeout,
            security,
            correlation: AtomicI32::new(1),
            connections: Mutex::default(),
            brokers: Mutex::default(),
            controller: Mutex::default(),
            failures: Mutex::default(),
        }
    }

    /// Sends `request` to any broker: those already connected first, then the
    /// bootstrap list and the brokers of the last metadata, the ones that failed
    /// lately last, [`SEND_ANY_BROKERS`] at most. A broker that cannot be reached or
    /// does not answer is skipped for the next, so this is for requests that may be
    /// sent twice (reads): a write must go to one broker with [`KafkaClient::send_to`].
    pub async fn send_any<R: Request>(&self, request: &R) -> Result<R::Response, WireError> {
        let mut last = WireError::NoBootstrap;
        for address in self.candidates().into_iter().take(SEND_ANY_BROKERS) {
            let connection = match self.connection(&address).await {
                Ok(connection) => connection,
                Err(error) => {
                    last = error;
                    continue;
                }
            };
            match self.exchange(&connection, request).await {
                Err(error @ (WireError::Io { .. } | WireError::Timeout { .. })) => last = error,
                answer => return answer,
            }
        }
        Err(last)
    }

    /// Every address `send_any` may try, in the order it tries them.
    fn candidates(&self) -> Vec<String> {
        let connected: Vec<String> = locked(&self.connections)
            .iter()
            .filter(|(_, slot)| slot.connection.initialized())
            .map(|(address, _)| address.clone())
            .collect();
        let mut known: Vec<String> = locked(&self.brokers).values().cloned().collect();
        known.sort();
        let mut candidates: Vec<String> = Vec::new();
        for address in connected.into_iter().chain(self.bootstrap.iter().cloned()).chain(known) {
            if !candidates.contains(&address) {
                candidates.push(address);
            }
        }
        let failures = locked(&self.failures);
        // Stable: healthy ones keep their order, failed ones go last, oldest failure
        // first (the one most likely back).
        candidates.sort_by_key(|address| failures.get(address).copied());
        candidates
    }

    /// Sends `request` to the broker with id `broker` (a partition leader, a group
    /// coordinator), refreshing the broker list when the id is unknown.
    pub async fn send_to<R: Request>(
        &self,
        broker: i32,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let address = match self.broker_address(broker) {
            Some(address) => address,
            None => {
                self.metadata(Some(&[])).await?;
                self.broker_address(broker).ok_or(WireError::UnknownBroker(broker))?
            }
        };
        let connection = self.connection(&address).await?;
        self.exchange(&connection, request).await
    }

    /// Cluster metadata for `topics` (`None`: every topic). It also refreshes the
    /// broker addresses that [`KafkaClient::send_to`] uses.
    pub async fn metadata(&self, topics: Option<&[String]>) -> Result<MetadataResponse, WireError> {
        let response = self.send_any(&metadata_request(topics)).await?;
        let brokers = response
            .brokers
            .iter()
            .map(|broker| (broker.node_id.0, format!("{}:{}", broker.host.as_str(), broker.port)))
            .collect();
        *locked(&self.brokers) = brokers;
        *locked(&self.controller) =
            (response.controller_id.0 >= 0).then_some(response.controller_id.0);
        Ok(response)
    }

    /// The controller id of the last metadata answer. Admin requests go there: a
    /// broker that is not the controller may refuse them with NOT_CONTROLLER.
    pub fn controller(&self) -> Option<i32> {
        *locked(&self.controller)
    }

    /// Forgets the controller, so that the next admin request reads the metadata
    /// again: after NOT_CONTROLLER, or when the controller did not answer.
    pub fn forget_controller(&self) {
        *locked(&self.controller) = None;
    }

    fn broker_address(&self, broker: i32) -> Option<String> {
        locked(&self.brokers).get(&broker).cloned()
    }

    /// Drops `connection` (when it is still the one open to its address) and notes
    /// the failure.
    fn forget(&self, connection: &Arc<Connection>) {
        let address = &connection.address;
        let mut connections = locked(&self.connections);
        let current = connections.get(address).and_then(|slot| slot.connection.get());
        if current.is_some_and(|current| Arc::ptr_eq(current, connection)) {
            connections.remove(address);
        }
        drop(connections);
        locked(&self.failures).insert(address.clone(), Instant::now());
    }

    /// The open connection to `address`, or a new one. Requests for one address wait
    /// for one connect; requests for others do not wait at all.
    async fn connection(&self, address: &str) -> Result<Arc<Connection>, WireError> {
        let asked = Instant::now();
        let slot = Arc::clone(locked(&self.connections).entry(address.to_owned()).or_default());
        let opened = slot
            .connection
            .get_or_try_init(|| async {
                let waited_on = locked(&slot.failed)
                    .as_ref()
                    .filter(|(ended, _)| *ended >= asked)
                    .map(|(_, error)| error.clone());
                if let Some(error) = waited_on {
                    return Err(error);
                }
                let opened = self.open(address).await;
                if let Err(error) = &opened {
                    *locked(&slot.failed) = Some((Instant::now(), error.clone()));
                }
                opened
            })
            .await;
        match opened {
            Ok(connection) => {
                locked(&self.failures).remove(address);
                Ok(Arc::clone(connection))
            }
            Err(error) => {
                // The slot stays empty: the next request tries again.
                locked(&self.failures).insert(address.to_owned(), Instant::now());
                Err(error)
            }
        }
    }

    /// A new connection to `address`: TCP, TLS when on, ApiVersions, then SASL when
    /// on, each step within the client's timeout.
    async fn open(&self, address: &str) -> Result<Arc<Connection>, WireError> {
        let connect_error =
            |message: String| WireError::Connect { address: address.to_owned(), message };
        let stream = self.security.open(address, self.timeout).await?;
        let mut connection = Connection {
            address: address.to_owned(),
            stream: tokio::sync::Mutex::new(stream),
            versions: HashMap::new(),
        };
        // ApiVersions v3 is what every broker since 2.4 answers; the response header
        // of ApiVersions is v0 whatever the request version, which the crate knows.
        connection.versions.insert(ApiVersionsRequest::KEY, 3);
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("licenseware-operator"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let response: ApiVersionsResponse = self.round_trip(&connection, &request).await?;
        if response.error_code != 0 {
            return Err(connect_error(format!(
                "ApiVersions refused with error code {}",
                response.error_code
            )));
        }
        connection.versions =
            response.api_keys.iter().map(|key| (key.api_key, key.max_version)).collect();
        if let Some(sasl) = &self.security.sasl {
            self.authenticate(&connection, sasl).await?;
        }
        Ok(Arc::new(connection))
    }

    /// One request and its response on `connection`. A failed exchange closes the
    /// connection, since the stream may hold half a frame.
    async fn exchange<R: Request>(
        &self,
        connection: &Arc<Connection>,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let answer = self.round_trip(connection, request).await;
        if matches!(answer, Err(WireError::Io { .. } | WireError::Timeout { .. })) {
            self.forget(connection);
        }
        answer
    }

    pub(super) async fn round_trip<R: Request>(
        &self,
        connection: &Connection,
        request: &R,
    ) -> Result<R::Response, WireError> {
        let api = api_name(R::KEY);
        let version = negotiate::<R>(connection).ok_or_else(|| WireError::UnsupportedApi {
            address: connection.address.clone(),
            api,
        })?;
        let correlation_id = self.correlation.fetch_add(1, Ordering::Relaxed);
        let frame = encode_frame(request, version, correlation_id, &self.client_id)?;
        let io =
            |message: String| WireError::Io { address: connection.address.clone(), api, message };
        // The wait for the connection's turn counts in the timeout: requests queued
        // behind one a broker does not answer fail with it, not one timeout after another.
        let exchange = async {
            let mut stream = connection.stream.lock().await;
            stream.write_all(&frame).await.map_err(|error| io(error.to_string()))?;
            let length = stream.read_u32().await.map_err(|error| io(error.to_string()))?;
            let length = usize::try_from(length).unwrap_or(usize::MAX);
            if length > MAX_RESPONSE_BYTES {
                return Err(io(format!("response of {length} bytes is over the limit")));
            }
            let mut body = vec![0; length];
            stream.read_exact(&mut body).await.map_err(|error| io(error.to_string()))?;
            Ok(Bytes::from(body))
        };
        let body = tokio::time::timeout(self.timeout, exchange).await.map_err(|_| {
            WireError::Timeout { address: connection.address.clone(), api, timeout: self.timeout }
        })??;
        let (answered, response) = decode_response::<R>(body, version)?;
        if answered != correlation_id {
            return Err(io(format!(
                "response correlation id {answered} does not match request {correlation_id}"
            )));
        }
        Ok(response)
    }
}

/// A Metadata request that never creates a topic: the protocol's default asks the
/// broker to create every unknown topic named (when `auto.create.topics.enable`, the
/// broker default), which would turn "does it exist?" into "create it with defaults".
fn metadata_request(topics: Option<&[String]>) -> MetadataRequest {
    MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(topics.map(
        |names| {
            names
                .iter()
                .map(|name| {
                    MetadataRequestTopic::default()
                        .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                })
                .collect()
        },
    ))
}

/// The highest version of `R` that both this crate and the broker speak, within
/// [`version_bounds`].
fn negotiate<R: Request>(connection: &Connection) -> Option<i16> {
    let broker_max = *connection.versions.get(&R::KEY)?;
    let (floor, ceiling) = version_bounds(R::KEY);
    let version = broker_max.min(R::VERSIONS.max).min(ceiling);
    (version >= R::VERSIONS.min.max(floor)).then_some(version)
}

/// The versions the operator's requests are written for. Floors: the first version
/// with what a request relies on (topic ids in Metadata 10, names in DeleteTopics'
/// `topics` from 6, many keys per FindCoordinator from 4, many groups per
/// OffsetFetch from 8), all in Kafka 3.0 and later. Ceiling: OffsetFetch 10 names
/// topics by id only.
fn version_bounds(key: i16) -> (i16, i16) {
    use kafka_protocol::messages::ApiKey;
    match ApiKey::try_from(key) {
        Ok(ApiKey::Metadata) => (10, i16::MAX),
        Ok(ApiKey::DeleteTopics) => (6, i16::MAX),
        Ok(ApiKey::FindCoordinator) => (4, i16::MAX),
        Ok(ApiKey::OffsetFetch) => (8, 9),
        // v0 hands the SASL bytes over raw, outside Kafka's framing.
        Ok(ApiKey::SaslHandshake) => (1, i16::MAX),
        _ => (0, i16::MAX),
    }
}

fn codec(api: &'static str) -> impl Fn(anyhow::Error) -> WireError {
    move |error| WireError::Codec { api, message: format!("{error:#}") }
}

/// Size-prefixed request frame: length, header, body.
fn encode_frame<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: &StrBytes,
) -> Result<Bytes, WireError> {
    let api = api_name(R::KEY);
    let header = RequestHeader::default()
        .with_request_api_key(R::KEY)
        .with_request_api_version(version)
        .with_correlation_id(correlation_id)
        .with_client_id(Some(client_id.clone()));
    let mut frame = BytesMut::new();
    frame.put_u32(0);
    header.encode(&mut frame, R::header_version(version)).map_err(codec(api))?;
    request.encode(&mut frame, version).map_err(codec(api))?;
    let length = u32::try_from(frame.len() - 4)
        .map_err(|_| WireError::Codec { api, message: "request too large".into() })?;
    frame[..4].copy_from_slice(&length.to_be_bytes());
    Ok(frame.freeze())
}

/// The correlation id and the decoded response of one frame body.
fn decode_response<R: Request>(
    mut body: Bytes,
    version: i16,
) -> Result<(i32, R::Response), WireError> {
    let api = api_name(R::KEY);
    let header_version = <R::Response as HeaderVersion>::header_version(version);
    let header = ResponseHeader::decode(&mut body, header_version).map_err(codec(api))?;
    let response = R::Response::decode(&mut body, version).map_err(codec(api))?;
    if body.has_remaining() {
        tracing::debug!(
            api,
            left = body.remaining(),
            "response has bytes this client does not read"
        );
    }
    Ok((header.correlation_id, response))
}

/// The protocol name of an API key, for errors and logs.
pub fn api_name(key: i16) -> &'static str {
    use kafka_protocol::messages::ApiKey;
    match ApiKey::try_from(key) {
        Ok(ApiKey::Metadata) => "Metadata",
        Ok(ApiKey::ApiVersions) => "ApiVersions",
        Ok(ApiKey::CreateTopics) => "CreateTopics",
        Ok(ApiKey::CreatePartitions) => "CreatePartitions",
        Ok(ApiKey::DeleteTopics) => "DeleteTopics",
        Ok(ApiKey::DescribeConfigs) => "DescribeConfigs",
        Ok(ApiKey::IncrementalAlterConfigs) => "IncrementalAlterConfigs",
        Ok(ApiKey::FindCoordinator) => "FindCoordinator",
        Ok(ApiKey::OffsetFetch) => "OffsetFetch",
        Ok(ApiKey::ListOffsets) => "ListOffsets",
        Ok(ApiKey::SaslHandshake) => "SaslHandshake",
        Ok(ApiKey::SaslAuthenticate) => "SaslAuthenticate",
        _ => "request",
    }
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::{ApiKey, BrokerId};

    use super::*;

    #[test]
    fn frames_carry_their_length_and_header() {
        let request = MetadataRequest::default().with_topics(Some(Vec::new()));
        let frame = encode_frame(&request, 12, 7, &StrBytes::from_static_str("t")).unwrap();
        let length = u32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(length, frame.len() - 4);
        assert_eq!(i16::from_be_bytes([frame[4], frame[5]]), ApiKey::Metadata as i16);
        assert_eq!(i16::from_be_bytes([frame[6], frame[7]]), 12);
        assert_eq!(i32::from_be_bytes(frame[8..12].try_into().unwrap()), 7);
    }

    #[test]
    fn responses_decode_with_their_correlation_id() {
        let version = 12;
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(41)
            .encode(&mut body, MetadataResponse::header_version(version))
            .unwrap();
        MetadataResponse::default()
            .with_controller_id(BrokerId(3))
            .encode(&mut body, version)
            .unwrap();
        let (id, response) = decode_response::<MetadataRequest>(body.freeze(), version).unwrap();
        assert_eq!(id, 41);
        assert_eq!(response.controller_id, BrokerId(3));
    }

    #[test]
    fn metadata_requests_never_create_topics() {
        let request = metadata_request(Some(&["t".to_owned()]));
        assert!(!request.allow_auto_topic_creation);
        assert_eq!(request.topics.unwrap().len(), 1);
        assert!(metadata_request(None).topics.is_none(), "None asks for every topic");
    }

    #[test]
    fn a_truncated_response_is_a_codec_error_not_a_panic() {
        let error =
            decode_response::<MetadataRequest>(Bytes::from_static(&[0, 0]), 12).unwrap_err();
        assert!(matches!(error, WireError::Codec { api: "Metadata", .. }), "{error}");
    }
}
