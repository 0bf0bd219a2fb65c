//! Draining on SIGTERM/SIGINT: the runtime stops fetching, finishes the event in hand,
//! commits it, and returns. Only waits (backoff between attempts, waiting for MongoDB
//! to come back) are cut short: the event then stays uncommitted and is redelivered.

use std::{future::Future, time::Duration};

use tokio::sync::watch;

/// A shutdown flag many tasks can wait on.
#[derive(Debug, Clone)]
pub struct Shutdown {
    rx: watch::Receiver<bool>,
}

impl Shutdown {
    /// A flag raised when `signal` completes.
    pub fn on(signal: impl Future<Output = ()> + Send + 'static) -> Self {
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            signal.await;
            let _ = tx.send(true);
            // Keep the sender: dropping it would look like a signal to `requested`.
            std::future::pending::<()>().await;
        });
        Self { rx }
    }

    pub fn is_requested(&self) -> bool {
        *self.rx.borrow()
    }

    /// Completes once shutdown is requested.
    pub async fn requested(&self) {
        let mut rx = self.rx.clone();
        // An error means the sender is gone, which `on` never lets happen; treat it as
        // a request so nothing waits forever.
        let _ = rx.wait_for(|requested| *requested).await;
    }

    /// Sleeps for `duration`; false when shutdown cut the sleep short.
    pub async fn sleep(&self, duration: Duration) -> bool {
        tokio::select! {
            () = tokio::time::sleep(duration) => !self.is_requested(),
            () = self.requested() => false,
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C); on SIGINT only where SIGTERM does not exist.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_cuts_sleeps_short() {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let shutdown = Shutdown::on(async move {
            let _ = rx.await;
        });
        assert!(!shutdown.is_requested());
        assert!(shutdown.sleep(Duration::from_millis(1)).await, "a sleep that ran out");
        tx.send(()).unwrap();
        shutdown.requested().await;
        assert!(shutdown.is_requested());
        assert!(!shutdown.sleep(Duration::from_secs(3600)).await);
    }
}
