//! The transport of the operator's own Kafka client: TCP, optionally TLS (rustls on
//! ring, the provider kube already uses), then SASL on top (see `sasl`).

use std::{sync::Arc, time::Duration};

use licenseware_crds::kafka_security::{KafkaSecurity, Sasl};
use rustls::{RootCertStore, pki_types::ServerName};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
};
use tokio_rustls::TlsConnector;

use super::wire::WireError;

/// Why the TLS settings cannot make a client configuration.
#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("the Kafka CA bundle has no certificate rustls accepts: {0}")]
    Roots(String),
    #[error("the Kafka client certificate or key is unusable: {0}")]
    Identity(String),
    #[error("no TLS protocol version is available: {0}")]
    Versions(String),
}

/// How the operator's Kafka connections are opened and authenticated. Built once from
/// the checked settings; cheap to clone.
#[derive(Clone, Default)]
pub struct WireSecurity {
    tls: Option<TlsConnector>,
    pub(super) sasl: Option<Sasl>,
}

impl std::fmt::Debug for WireSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WireSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl.as_ref().map(|sasl| sasl.mechanism))
            .finish()
    }
}

/// A connection to a broker, plain or TLS.
pub(super) trait KafkaStream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> KafkaStream for T {}

impl WireSecurity {
    /// Plaintext, no authentication.
    pub fn plaintext() -> Self {
        Self::default()
    }

    pub fn new(security: &KafkaSecurity) -> Result<Self, TlsSetupError> {
        let tls = match &security.tls {
            None => None,
            Some(tls) => {
                let mut roots = RootCertStore::empty();
                match &tls.ca {
                    Some((_, certificates)) => {
                        let (added, _) =
                            roots.add_parsable_certificates(certificates.iter().cloned());
                        if added == 0 {
                            return Err(TlsSetupError::Roots("none of them parses".into()));
                        }
                    }
                    None => {
                        let native = rustls_native_certs::load_native_certs();
                        roots.add_parsable_certificates(native.certs);
                        if roots.is_empty() {
                            return Err(TlsSetupError::Roots(
                                "no --kafka-ca-file and no system roots found".into(),
                            ));
                        }
                    }
                }
                let provider = Arc::new(rustls::crypto::ring::default_provider());
                let builder = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|error| TlsSetupError::Versions(error.to_string()))?
                    .with_root_certificates(roots);
                let config = match &tls.identity {
                    None => builder.with_no_client_auth(),
                    Some(identity) => {
                        let key = identity.key().ok_or_else(|| {
                            TlsSetupError::Identity("the key is not PKCS#1, PKCS#8 or SEC1".into())
                        })?;
                        builder
                            .with_client_auth_cert(identity.chain.clone(), key)
                            .map_err(|error| TlsSetupError::Identity(error.to_string()))?
                    }
                };
                Some(TlsConnector::from(Arc::new(config)))
            }
        };
        Ok(Self { tls, sasl: security.sasl.clone() })
    }

    /// TCP to `address`, then the TLS handshake when TLS is on, each within `timeout`.
    pub(super) async fn open(
        &self,
        address: &str,
        timeout: Duration,
    ) -> Result<Box<dyn KafkaStream>, WireError> {
        let connect_error =
            |message: String| WireError::Connect { address: address.to_owned(), message };
        let stream = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| connect_error(format!("no connection within {timeout:?}")))?
            .map_err(|error| connect_error(error.to_string()))?;
        let _ = stream.set_nodelay(true);
        let Some(connector) = &self.tls else {
            return Ok(Box::new(stream));
        };
        let tls_error = |message: String| WireError::Tls { address: address.to_owned(), message };
        let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned())
            .map_err(|_| tls_error(format!("{host:?} is not a valid TLS server name")))?;
        let stream = tokio::time::timeout(timeout, connector.connect(name, stream))
            .await
            .map_err(|_| tls_error(format!("no TLS handshake within {timeout:?}")))?
            .map_err(|error| tls_error(error.to_string()))?;
        Ok(Box::new(stream))
    }
}
