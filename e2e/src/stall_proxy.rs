//! A TCP proxy that can be told to stop forwarding: connections stay open and bytes
//! are read, but nothing reaches the other side until it forwards again. This is how
//! a stalled apiserver (or a network partition that drops nothing) looks to a client.
//! TLS passes through unchanged, so the client still talks to the real server.

use std::net::SocketAddr;

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::JoinHandle,
};

/// A running proxy; stops accepting and drops its connections when dropped.
#[derive(Debug)]
pub struct StallProxy {
    pub addr: SocketAddr,
    forwarding: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl StallProxy {
    /// Listens on a free port of 127.0.0.1 and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let (forwarding, gate) = watch::channel(true);
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(relay(client, upstream, gate.clone()));
            }
        });
        Self { addr, forwarding, task }
    }

    /// Holds every connection, new ones too: nothing is forwarded either way.
    pub fn stall(&self) {
        self.forwarding.send_replace(false);
    }

    /// Forwards again, what was held first.
    pub fn resume(&self) {
        self.forwarding.send_replace(true);
    }
}

impl Drop for StallProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Connects to `upstream` once forwarding, then copies both ways.
async fn relay(client: TcpStream, upstream: SocketAddr, mut gate: watch::Receiver<bool>) {
    if gate.wait_for(|forwarding| *forwarding).await.is_err() {
        return;
    }
    let Ok(server) = TcpStream::connect(upstream).await else { return };
    let (client_read, client_write) = client.into_split();
    let (server_read, server_write) = server.into_split();
    tokio::select! {
        () = pump(client_read, server_write, gate.clone()) => {}
        () = pump(server_read, client_write, gate) => {}
    }
}

/// Copies `from` to `to`, holding each chunk while the proxy is stalled.
async fn pump(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    mut gate: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if gate.wait_for(|forwarding| *forwarding).await.is_err() {
            return;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}
