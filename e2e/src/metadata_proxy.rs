//! A TCP proxy in front of a Kafka broker's plaintext listener that rewrites the broker
//! list of Metadata responses. Told to, it lists no brokers at all, which is what a broker
//! sends while it shuts down (it has fenced itself): librdkafka 2.10+ then decommissions
//! every broker it knew (confluentinc/librdkafka#5301) and may never reconnect. The
//! brokers it does list point at the proxy, and so do FindCoordinator responses
//! (librdkafka updates the broker's address from them), so clients keep coming through
//! it and stay observable.
//!
//! There is one upstream: every listed broker is routed to it, which is only right for a
//! single-broker cluster. TLS and SASL_SSL listeners are out of reach: the frames must be read.

use std::{
    collections::HashMap,
    io,
    net::SocketAddr,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::{JoinHandle, JoinSet},
};

const METADATA: i16 = 3;
const FIND_COORDINATOR: i16 = 10;
/// Metadata v9 switched to the flexible encoding (compact strings, tagged fields).
const FIRST_FLEXIBLE_METADATA: i16 = 9;
/// Kafka 4.x's newest; a later version may lay the brokers out differently.
const LAST_KNOWN_METADATA: i16 = 13;
const FIRST_FLEXIBLE_FIND_COORDINATOR: i16 = 3;
/// v4 turned the one coordinator into an array (KIP-699).
const FIRST_BATCHED_FIND_COORDINATOR: i16 = 4;
const LAST_KNOWN_FIND_COORDINATOR: i16 = 6;
/// A response to rewrite above this is forwarded unread rather than held in memory.
const MAX_REWRITTEN_FRAME: usize = 64 << 20;
/// Room for a whole ordinary frame, so that most frames take one read and one write.
const BUFFER: usize = 64 * 1024;

/// A running proxy; stops accepting and drops its connections when dropped.
#[derive(Debug)]
pub struct MetadataProxy {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    generation: watch::Sender<u64>,
    task: JoinHandle<()>,
}

/// What the proxy's handle and its connections share.
#[derive(Debug, Default)]
struct Shared {
    hide: AtomicBool,
    hidden: AtomicU64,
    unparsed: AtomicU64,
}

impl MetadataProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let shared = Arc::new(Shared::default());
        let (generation, current) = watch::channel(0u64);
        let task = tokio::spawn({
            let shared = Arc::clone(&shared);
            async move {
                let mut connections = JoinSet::new();
                while let Ok((client, _)) = listener.accept().await {
                    // Only a `disconnect_all` after this accept closes the connection.
                    let mut closed = current.clone();
                    closed.mark_unchanged();
                    while connections.try_join_next().is_some() {}
                    connections.spawn(relay(client, upstream, addr, Arc::clone(&shared), closed));
                }
            }
        });
        Self { addr, shared, generation, task }
    }

    /// From now on, every Metadata response lists no brokers (as a broker that is
    /// shutting down sends). FindCoordinator responses still name the coordinator.
    pub fn hide_brokers(&self) {
        self.shared.hide.store(true, Ordering::SeqCst);
    }

    /// Metadata responses list the brokers again (pointing at the proxy).
    pub fn show_brokers(&self) {
        self.shared.hide.store(false, Ordering::SeqCst);
    }

    /// Closes every open connection (clients see a disconnect, as when the broker
    /// stops); new connections are accepted.
    pub fn disconnect_all(&self) {
        self.generation.send_modify(|generation| *generation += 1);
    }

    /// How many Metadata responses were sent with no brokers so far.
    pub fn hidden_responses(&self) -> u64 {
        self.shared.hidden.load(Ordering::SeqCst)
    }

    /// How many Metadata (or FindCoordinator) responses could not be read and went
    /// through unchanged: a test that relies on the proxy should assert this stays 0.
    pub fn unparsed_responses(&self) -> u64 {
        self.shared.unparsed.load(Ordering::SeqCst)
    }
}

impl Drop for MetadataProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to `upstream`, then relays both ways until either side closes or
/// `disconnect_all` is called; both sockets close with it.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    advertise: SocketAddr,
    shared: Arc<Shared>,
    mut closed: watch::Receiver<u64>,
) {
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    // Frames are flushed whole; Nagle would only add delayed-ACK stalls to the test.
    for socket in [&client, &server] {
        socket.set_nodelay(true).ok();
    }
    // Correlation id → api key and version of the requests to rewrite the response of,
    // while it is awaited. Only those: a Produce with acks=0 gets no response to remove it.
    let pending = Mutex::new(HashMap::new());
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        _ = forward_requests(
            BufReader::with_capacity(BUFFER, client_read),
            BufWriter::with_capacity(BUFFER, server_write),
            &pending,
        ) => {}
        _ = forward_responses(
            BufReader::with_capacity(BUFFER, server_read),
            BufWriter::with_capacity(BUFFER, client_write),
            &pending,
            advertise,
            &shared,
        ) => {}
        _ = closed.changed() => {}
    }
}

/// Forwards the client's requests unchanged, noting those whose response is rewritten.
async fn forward_requests(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    pending: &Mutex<HashMap<i32, (i16, i16)>>,
) -> io::Result<()> {
    loop {
        let length = read_length(&mut from).await?;
        // Every request header starts with api_key, api_version and correlation_id.
        let mut header = [0u8; 8];
        let read = length.min(header.len());
        from.read_exact(&mut header[..read]).await?;
        let api_key = i16::from_be_bytes([header[0], header[1]]);
        if read == header.len() && (api_key == METADATA || api_key == FIND_COORDINATOR) {
            let version = i16::from_be_bytes([header[2], header[3]]);
            let correlation_id = i32::from_be_bytes([header[4], header[5], header[6], header[7]]);
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(correlation_id, (api_key, version));
        }
        write_length(&mut to, length).await?;
        to.write_all(&header[..read]).await?;
        copy_exactly(&mut from, &mut to, length - read).await?;
        to.flush().await?;
    }
}

/// Forwards the broker's responses, rewriting the brokers of Metadata and
/// FindCoordinator responses.
async fn forward_responses(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    pending: &Mutex<HashMap<i32, (i16, i16)>>,
    advertise: SocketAddr,
    shared: &Shared,
) -> io::Result<()> {
    loop {
        let length = read_length(&mut from).await?;
        let mut correlation_id = [0u8; 4];
        let read = length.min(correlation_id.len());
        from.read_exact(&mut correlation_id[..read]).await?;
        let request = if read == correlation_id.len() {
            pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&i32::from_be_bytes(correlation_id))
        } else {
            None
        };
        let mut hidden = false;
        match request {
            Some((api_key, version)) if length <= MAX_REWRITTEN_FRAME => {
                let mut frame = vec![0u8; length];
                frame[..read].copy_from_slice(&correlation_id[..read]);
                from.read_exact(&mut frame[read..]).await?;
                // Read now, so that responses sent after `hide_brokers` list no brokers.
                let hide = api_key == METADATA && shared.hide.load(Ordering::SeqCst);
                let rewritten = if api_key == METADATA {
                    rewrite_metadata_response(&frame, version, Some(advertise), hide)
                } else {
                    rewrite_find_coordinator_response(&frame, version, advertise)
                };
                match rewritten {
                    Some(rewritten) => {
                        write_length(&mut to, rewritten.len()).await?;
                        to.write_all(&rewritten).await?;
                        hidden = hide;
                    }
                    None => {
                        shared.unparsed.fetch_add(1, Ordering::SeqCst);
                        write_length(&mut to, length).await?;
                        to.write_all(&frame).await?;
                    }
                }
            }
            _ => {
                if request.is_some() {
                    shared.unparsed.fetch_add(1, Ordering::SeqCst);
                }
                write_length(&mut to, length).await?;
                to.write_all(&correlation_id[..read]).await?;
                copy_exactly(&mut from, &mut to, length - read).await?;
            }
        }
        to.flush().await?;
        if hidden {
            shared.hidden.fetch_add(1, Ordering::SeqCst);
        }
    }
}

async fn read_length(from: &mut (impl AsyncRead + Unpin)) -> io::Result<usize> {
    let length = from.read_i32().await?;
    usize::try_from(length)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "negative frame length"))
}

async fn write_length(to: &mut (impl AsyncWrite + Unpin), length: usize) -> io::Result<()> {
    let length = i32::try_from(length)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too long for Kafka"))?;
    to.write_i32(length).await
}

/// Streams the rest of a frame without holding it: Fetch responses can be large.
async fn copy_exactly(
    from: &mut (impl AsyncRead + Unpin),
    to: &mut (impl AsyncWrite + Unpin),
    length: usize,
) -> io::Result<()> {
    let expected = length as u64;
    let copied = tokio::io::copy(&mut from.take(expected), to).await?;
    if copied == expected { Ok(()) } else { Err(io::ErrorKind::UnexpectedEof.into()) }
}

/// Rewrites a Metadata response frame (what follows its length: the response header,
/// then the body) of version `api_version`: with `hide`, the broker array becomes
/// empty; otherwise every broker gets `advertise`'s host and port, if given. All that
/// follows the brokers is copied unchanged. `None` if the frame cannot be read as such.
fn rewrite_metadata_response(
    response: &[u8],
    api_version: i16,
    advertise: Option<SocketAddr>,
    hide: bool,
) -> Option<Vec<u8>> {
    if !(0..=LAST_KNOWN_METADATA).contains(&api_version) {
        return None;
    }
    let flexible = api_version >= FIRST_FLEXIBLE_METADATA;
    let mut reader = Reader { bytes: response, at: 0 };
    reader.take(4)?; // correlation_id
    if flexible {
        // Response header v1; ApiVersions alone keeps v0, and it is never rewritten.
        reader.skip_tagged_fields()?;
    }
    if api_version >= 3 {
        reader.take(4)?; // throttle_time_ms
    }
    let mut rewritten = response[..reader.at].to_vec();
    let count = if flexible {
        // A null array (0) is not valid here.
        reader.uvarint()?.checked_sub(1)?
    } else {
        u32::try_from(reader.i32()?).ok()?
    };
    let listed = if hide { 0 } else { count };
    if flexible {
        put_uvarint(&mut rewritten, listed + 1);
    } else {
        rewritten.extend_from_slice(&i32::try_from(listed).ok()?.to_be_bytes());
    }
    let advertised_host = advertise.map(|addr| addr.ip().to_string());
    for _ in 0..count {
        let node_id = reader.take(4)?;
        let host_start = reader.at;
        reader.string(flexible)?;
        let host = &response[host_start..reader.at];
        let port = reader.take(4)?;
        let rest_start = reader.at;
        if api_version >= 1 {
            reader.skip_nullable_string(flexible)?; // rack
        }
        if flexible {
            reader.skip_tagged_fields()?;
        }
        let rest = &response[rest_start..reader.at];
        if hide {
            continue;
        }
        rewritten.extend_from_slice(node_id);
        match (advertise, &advertised_host) {
            (Some(addr), Some(advertised_host)) => {
                put_string(&mut rewritten, advertised_host, flexible)?;
                rewritten.extend_from_slice(&i32::from(addr.port()).to_be_bytes());
            }
            _ => {
                rewritten.extend_from_slice(host);
                rewritten.extend_from_slice(port);
            }
        }
        rewritten.extend_from_slice(rest);
    }
    rewritten.extend_from_slice(&response[reader.at..]);
    Some(rewritten)
}

/// Rewrites a FindCoordinator response frame (header and body) of version
/// `api_version`: every coordinator found gets `advertise`'s host and port. `None` if the
/// frame cannot be read as such.
fn rewrite_find_coordinator_response(
    response: &[u8],
    api_version: i16,
    advertise: SocketAddr,
) -> Option<Vec<u8>> {
    if !(0..=LAST_KNOWN_FIND_COORDINATOR).contains(&api_version) {
        return None;
    }
    let flexible = api_version >= FIRST_FLEXIBLE_FIND_COORDINATOR;
    let advertised_host = advertise.ip().to_string();
    let mut reader = Reader { bytes: response, at: 0 };
    let mut rewritten = Vec::with_capacity(response.len());
    // Up to where `response` is in `rewritten` already.
    let mut copied = 0;
    let mut coordinator = |reader: &mut Reader<'_>, rewritten: &mut Vec<u8>| -> Option<()> {
        let node_id = reader.i32()?;
        let host_start = reader.at;
        reader.string(flexible)?;
        reader.take(4)?; // port
        // An error leaves node -1, no host and port -1: nothing to point anywhere.
        if node_id >= 0 {
            rewritten.extend_from_slice(&response[copied..host_start]);
            put_string(rewritten, &advertised_host, flexible)?;
            rewritten.extend_from_slice(&i32::from(advertise.port()).to_be_bytes());
            copied = reader.at;
        }
        Some(())
    };
    reader.take(4)?; // correlation_id
    if flexible {
        reader.skip_tagged_fields()?;
    }
    if api_version >= 1 {
        reader.take(4)?; // throttle_time_ms
    }
    if api_version < FIRST_BATCHED_FIND_COORDINATOR {
        reader.take(2)?; // error_code
        if api_version >= 1 {
            reader.skip_nullable_string(flexible)?; // error_message
        }
        coordinator(&mut reader, &mut rewritten)?;
    } else {
        for _ in 0..reader.uvarint()?.checked_sub(1)? {
            reader.string(flexible)?; // key
            coordinator(&mut reader, &mut rewritten)?;
            reader.take(2)?; // error_code
            reader.skip_nullable_string(flexible)?; // error_message
            reader.skip_tagged_fields()?;
        }
    }
    if flexible {
        reader.skip_tagged_fields()?;
    }
    // All of it was read: anything left means the layout was not what it seemed.
    if reader.at != response.len() {
        return None;
    }
    rewritten.extend_from_slice(&response[copied..]);
    Some(rewritten)
}

/// Reads Kafka's primitive types off a byte slice; every read is `None` past the end.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, length: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(length)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }

    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }

    fn uvarint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let byte = *self.take(1)?.first()?;
            // The fifth byte holds the top 4 bits; more would not fit.
            if shift == 28 && byte & 0x70 != 0 {
                return None;
            }
            value |= u32::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn string(&mut self, flexible: bool) -> Option<&'a [u8]> {
        let length = if flexible {
            usize::try_from(self.uvarint()?.checked_sub(1)?).ok()?
        } else {
            usize::try_from(self.i16()?).ok()?
        };
        self.take(length)
    }

    fn skip_nullable_string(&mut self, flexible: bool) -> Option<()> {
        let length = if flexible {
            match self.uvarint()? {
                0 => return Some(()),
                length => length - 1,
            }
        } else {
            match self.i16()? {
                -1 => return Some(()),
                length => u32::try_from(length).ok()?,
            }
        };
        self.take(usize::try_from(length).ok()?)?;
        Some(())
    }

    fn skip_tagged_fields(&mut self) -> Option<()> {
        for _ in 0..self.uvarint()? {
            self.uvarint()?; // tag
            let size = self.uvarint()?;
            self.take(usize::try_from(size).ok()?)?;
        }
        Some(())
    }
}

fn put_uvarint(out: &mut Vec<u8>, mut value: u32) {
    while value >= 0x80 {
        out.push((value & 0x7f) as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_string(out: &mut Vec<u8>, value: &str, flexible: bool) -> Option<()> {
    if flexible {
        put_uvarint(out, u32::try_from(value.len()).ok()?.checked_add(1)?);
    } else {
        out.extend_from_slice(&i16::try_from(value.len()).ok()?.to_be_bytes());
    }
    out.extend_from_slice(value.as_bytes());
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Broker {
        node_id: i32,
        host: &'static str,
        port: i32,
        rack: Option<&'static str>,
        /// Raw tagged fields of the broker (flexible versions only).
        tags: &'static [u8],
    }

    /// What follows the brokers, unread by the proxy: cluster_id, controller_id, a topic.
    const TAIL_FLEXIBLE: &[u8] = &[
        4, b'a', b'b', b'c', // cluster_id "abc"
        0, 0, 0, 1, // controller_id
        2, // one topic
        0, 0, // error_code
        3, b't', b'1', // name "t1"
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // topic_id (start)
        0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, // topic_id (end)
        0,    // is_internal
        1,    // no partitions
        0, 0, 0, 0, // topic_authorized_operations
        0, // topic tagged fields
        0, // body tagged fields
    ];
    const TAIL_V1: &[u8] = &[
        0, 0, 0, 1, // controller_id
        0, 0, 0, 1, // one topic
        0, 0, // error_code
        0, 2, b't', b'1', // name "t1"
        0,    // is_internal
        0, 0, 0, 0, // no partitions
    ];

    fn response(version: i16, header_tags: &[u8], brokers: &[Broker]) -> Vec<u8> {
        let flexible = version >= FIRST_FLEXIBLE_METADATA;
        let mut out = 0x0102_0304i32.to_be_bytes().to_vec();
        if flexible {
            out.extend_from_slice(header_tags);
        }
        if version >= 3 {
            out.extend_from_slice(&7i32.to_be_bytes());
        }
        if flexible {
            put_uvarint(&mut out, brokers.len() as u32 + 1);
        } else {
            out.extend_from_slice(&(brokers.len() as i32).to_be_bytes());
        }
        for broker in brokers {
            out.extend_from_slice(&broker.node_id.to_be_bytes());
            put_string(&mut out, broker.host, flexible).unwrap();
            out.extend_from_slice(&broker.port.to_be_bytes());
            match (broker.rack, flexible) {
                (Some(rack), _) => put_string(&mut out, rack, flexible).unwrap(),
                (None, true) => out.push(0),
                (None, false) => out.extend_from_slice(&(-1i16).to_be_bytes()),
            }
            if flexible {
                out.extend_from_slice(broker.tags);
            }
        }
        out.extend_from_slice(if flexible { TAIL_FLEXIBLE } else { TAIL_V1 });
        out
    }

    fn brokers(host: &'static str, port: i32) -> [Broker; 2] {
        [
            Broker { node_id: 1, host, port, rack: None, tags: &[0] },
            // One tagged field (tag 5, 2 bytes), which must survive the rewrite.
            Broker { node_id: 2, host, port, rack: Some("rack-b"), tags: &[1, 5, 2, 0xaa, 0xbb] },
        ]
    }

    const PROXY: &str = "127.0.0.1:40123";
    /// A header with one tagged field, which must be skipped, not taken for the body.
    const HEADER_TAGS: &[u8] = &[1, 0, 3, 9, 9, 9];

    #[test]
    fn v12_ports_and_hosts_point_at_the_proxy() {
        let original = response(12, HEADER_TAGS, &brokers("kafka.internal", 9092));
        let rewritten =
            rewrite_metadata_response(&original, 12, Some(PROXY.parse().unwrap()), false);
        assert_eq!(rewritten, Some(response(12, HEADER_TAGS, &brokers("127.0.0.1", 40123))));
    }

    #[test]
    fn v12_hidden_brokers_leave_an_empty_array_and_the_rest_intact() {
        let original = response(12, HEADER_TAGS, &brokers("127.0.0.1", 9092));
        let rewritten =
            rewrite_metadata_response(&original, 12, Some(PROXY.parse().unwrap()), true)
                .expect("a valid response");
        assert_eq!(rewritten, response(12, HEADER_TAGS, &[]));
        assert!(rewritten.ends_with(TAIL_FLEXIBLE));
    }

    #[test]
    fn every_flexible_and_older_version_is_rewritten() {
        for version in 0..=LAST_KNOWN_METADATA {
            // v0 has no rack: its brokers here have none either.
            let original_brokers =
                [Broker { node_id: 3, host: "h", port: 1, rack: None, tags: &[0] }];
            let expected_brokers =
                [Broker { node_id: 3, host: "127.0.0.1", port: 40123, rack: None, tags: &[0] }];
            let original = if version == 0 {
                let mut v0 = response(1, &[], &original_brokers);
                v0.truncate(v0.len() - TAIL_V1.len() - 2); // drop the null rack
                v0.extend_from_slice(TAIL_V1);
                v0
            } else {
                response(version, &[0], &original_brokers)
            };
            let expected = if version == 0 {
                let mut v0 = response(1, &[], &expected_brokers);
                v0.truncate(v0.len() - TAIL_V1.len() - 2);
                v0.extend_from_slice(TAIL_V1);
                v0
            } else {
                response(version, &[0], &expected_brokers)
            };
            assert_eq!(
                rewrite_metadata_response(&original, version, Some(PROXY.parse().unwrap()), false),
                Some(expected),
                "version {version}"
            );
        }
    }

    #[test]
    fn v1_ports_rewritten_and_brokers_hidden() {
        let original = response(1, &[], &brokers("127.0.0.1", 9092));
        assert_eq!(
            rewrite_metadata_response(&original, 1, Some(PROXY.parse().unwrap()), false),
            Some(response(1, &[], &brokers("127.0.0.1", 40123)))
        );
        let hidden = rewrite_metadata_response(&original, 1, Some(PROXY.parse().unwrap()), true)
            .expect("a valid response");
        assert_eq!(hidden, response(1, &[], &[]));
        assert!(hidden.ends_with(TAIL_V1));
    }

    #[test]
    fn without_an_address_only_hiding_changes_anything() {
        let original = response(13, HEADER_TAGS, &brokers("127.0.0.1", 9092));
        assert_eq!(rewrite_metadata_response(&original, 13, None, false), Some(original.clone()));
        assert_eq!(
            rewrite_metadata_response(&original, 13, None, true),
            Some(response(13, HEADER_TAGS, &[]))
        );
    }

    #[test]
    fn malformed_responses_are_not_rewritten() {
        let proxy = Some(PROXY.parse().unwrap());
        for (version, tail) in [(12, TAIL_FLEXIBLE), (1, TAIL_V1)] {
            let original = response(version, HEADER_TAGS, &brokers("127.0.0.1", 9092));
            // Cut anywhere before the end of the brokers: what follows them is not read.
            for cut in 0..original.len() - tail.len() {
                assert_eq!(
                    rewrite_metadata_response(&original[..cut], version, proxy, false),
                    None,
                    "v{version} cut at {cut}"
                );
                assert_eq!(rewrite_metadata_response(&original[..cut], version, proxy, true), None);
            }
        }
        // Flexible: a null broker array; a host length past the end; an endless varint.
        let mut header = 1i32.to_be_bytes().to_vec();
        header.extend_from_slice(&[0, 0, 0, 0, 0]);
        for bad_brokers in
            [&[0][..], &[2, 0, 0, 0, 1, 100, b'h'], &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]]
        {
            let bad = [&header[..], bad_brokers].concat();
            assert_eq!(rewrite_metadata_response(&bad, 12, proxy, false), None, "{bad_brokers:?}");
        }
        // Non-flexible: a negative broker count and a negative host length.
        let bad_count = [&1i32.to_be_bytes()[..], &(-1i32).to_be_bytes()].concat();
        assert_eq!(rewrite_metadata_response(&bad_count, 1, proxy, false), None);
        let bad_host =
            [&1i32.to_be_bytes()[..], &1i32.to_be_bytes(), &0i32.to_be_bytes(), &[0xff, 0xfe]]
                .concat();
        assert_eq!(rewrite_metadata_response(&bad_host, 1, proxy, false), None);
        // Versions whose layout is unknown.
        let valid = response(12, &[0], &brokers("127.0.0.1", 9092));
        assert_eq!(rewrite_metadata_response(&valid, LAST_KNOWN_METADATA + 1, proxy, false), None);
        assert_eq!(rewrite_metadata_response(&valid, -1, proxy, false), None);
    }

    /// A FindCoordinator response of `version` naming `(node_id, host, port)` coordinators;
    /// before v4 there is exactly one.
    fn find_coordinator(version: i16, coordinators: &[(i32, &str, i32)]) -> Vec<u8> {
        let flexible = version >= FIRST_FLEXIBLE_FIND_COORDINATOR;
        let mut out = 0x0a0b_0c0di32.to_be_bytes().to_vec();
        if flexible {
            out.push(0);
        }
        if version >= 1 {
            out.extend_from_slice(&5i32.to_be_bytes());
        }
        let batched = version >= FIRST_BATCHED_FIND_COORDINATOR;
        if batched {
            put_uvarint(&mut out, coordinators.len() as u32 + 1);
        }
        for &(node_id, host, port) in coordinators {
            let error: i16 = if node_id < 0 { 15 } else { 0 };
            let message = if node_id < 0 { "not available" } else { "ok" };
            if batched {
                put_string(&mut out, "group-a", true).unwrap();
            } else {
                out.extend_from_slice(&error.to_be_bytes());
                if version >= 1 {
                    put_string(&mut out, message, flexible).unwrap();
                }
            }
            out.extend_from_slice(&node_id.to_be_bytes());
            put_string(&mut out, host, flexible).unwrap();
            out.extend_from_slice(&port.to_be_bytes());
            if batched {
                out.extend_from_slice(&error.to_be_bytes());
                put_string(&mut out, message, true).unwrap();
                out.push(0);
            }
        }
        if flexible {
            out.push(0);
        }
        out
    }

    #[test]
    fn found_coordinators_point_at_the_proxy() {
        let proxy = PROXY.parse().unwrap();
        for version in 0..FIRST_BATCHED_FIND_COORDINATOR {
            let original = find_coordinator(version, &[(1, "kafka.internal", 9092)]);
            assert_eq!(
                rewrite_find_coordinator_response(&original, version, proxy),
                Some(find_coordinator(version, &[(1, "127.0.0.1", 40123)])),
                "version {version}"
            );
            // Not found: nothing to point anywhere.
            let missing = find_coordinator(version, &[(-1, "", -1)]);
            assert_eq!(rewrite_find_coordinator_response(&missing, version, proxy), Some(missing));
        }
        for version in FIRST_BATCHED_FIND_COORDINATOR..=LAST_KNOWN_FIND_COORDINATOR {
            let original =
                find_coordinator(version, &[(1, "a", 9092), (-1, "", -1), (2, "b", 9093)]);
            assert_eq!(
                rewrite_find_coordinator_response(&original, version, proxy),
                Some(find_coordinator(
                    version,
                    &[(1, "127.0.0.1", 40123), (-1, "", -1), (2, "127.0.0.1", 40123)]
                )),
                "version {version}"
            );
        }
    }

    #[test]
    fn malformed_find_coordinator_responses_are_not_rewritten() {
        let proxy = PROXY.parse().unwrap();
        for version in [2, 3, 6] {
            let original = find_coordinator(version, &[(1, "a", 9092)]);
            for cut in 0..original.len() {
                assert_eq!(
                    rewrite_find_coordinator_response(&original[..cut], version, proxy),
                    None,
                    "v{version} cut at {cut}"
                );
            }
            let longer = [&original[..], &[0]].concat();
            assert_eq!(rewrite_find_coordinator_response(&longer, version, proxy), None);
        }
        let valid = find_coordinator(6, &[(1, "a", 9092)]);
        assert_eq!(rewrite_find_coordinator_response(&valid, 7, proxy), None);
    }
}
