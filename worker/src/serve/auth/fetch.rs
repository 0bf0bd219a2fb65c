//! Fetching a JWKS document over HTTP(S), bounded in time and size: the issuer is
//! another service, and a slow or huge answer must not hold a request or memory.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{Request, Uri, header};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, LengthLimitError, Limited};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::error::AuthSetupError;

/// The whole exchange, connection to last byte.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// A JWKS of a few keys is a few KiB; certificate chains (`x5c`) make it tens.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;

/// Why a fetch failed. The keys held so far stay in use.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("the answer is larger than {MAX_JWKS_BYTES} bytes")]
    TooLarge,
    #[error("{0}")]
    Transport(String),
    #[error("{0}")]
    Unusable(String),
}

impl FetchError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Timeout(_) => "JwksTimeout",
            Self::Status(_) => "JwksHttpStatus",
            Self::TooLarge => "JwksTooLarge",
            Self::Transport(_) => "JwksUnreachable",
            Self::Unusable(_) => "InvalidJwks",
        }
    }
}

#[derive(Clone)]
pub(crate) struct JwksClient {
    url: Uri,
    client: Client<HttpsConnector<HttpConnector>, Empty<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for JwksClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksClient").field("url", &self.url).finish_non_exhaustive()
    }
}

impl JwksClient {
    pub fn new(url: &str) -> Result<Self, AuthSetupError> {
        let invalid = |detail: &str| AuthSetupError::InvalidJwksUrl {
            url: url.to_owned(),
            detail: detail.to_owned(),
        };
        let parsed: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
        let https = match parsed.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err(invalid("the scheme must be http or https")),
        };
        if parsed.host().is_none_or(str::is_empty) {
            return Err(invalid("no host"));
        }
        if !https {
            tracing::warn!(
                reason = "JwksOverPlainHttp",
                url,
                "the JWKS is fetched over plain http: anyone on the path could substitute keys"
            );
        }
        let connector = connector(https)
            .map_err(|detail| AuthSetupError::TlsRoots { url: url.to_owned(), detail })?;
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Ok(Self { url: parsed, client, timeout: FETCH_TIMEOUT })
    }

    pub fn url(&self) -> &Uri {
        &self.url
    }

    #[cfg(test)]
    fn with_timeout(self, timeout: Duration) -> Self {
        Self { timeout, ..self }
    }

    pub async fn fetch(&self) -> Result<Bytes, FetchError> {
        tokio::time::timeout(self.timeout, self.exchange())
            .await
            .unwrap_or(Err(FetchError::Timeout(self.timeout)))
    }

    async fn exchange(&self) -> Result<Bytes, FetchError> {
        let request = Request::get(self.url.clone())
            .header(header::ACCEPT, "application/json, application/jwk-set+json")
            .body(Empty::new())
            .map_err(|e| FetchError::Transport(e.to_string()))?;
        let response =
            self.client.request(request).await.map_err(|e| FetchError::Transport(e.to_string()))?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_JWKS_BYTES);
        match body.collect().await {
            Ok(collected) => Ok(collected.to_bytes()),
            Err(error) if error.is::<LengthLimitError>() => Err(FetchError::TooLarge),
            Err(error) => Err(FetchError::Transport(error.to_string())),
        }
    }
}

/// rustls on ring, the provider kube already builds, named rather than taken from the
/// process default, which panics once a second provider is compiled in.
fn connector(https: bool) -> Result<HttpsConnector<HttpConnector>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder =
        match HttpsConnectorBuilder::new().with_provider_and_native_roots(provider.clone()) {
            Ok(builder) => builder,
            Err(error) if https => return Err(error.to_string()),
            // A plain-http URL needs no roots; a container without CA certificates is fine.
            Err(_) => {
                let config = rustls::ClientConfig::builder_with_provider(provider)
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth();
                HttpsConnectorBuilder::new().with_tls_config(config)
            }
        };
    Ok(builder.https_or_http().enable_http1().build())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_urls_with_a_host() {
        for url in ["ftp://idp/jwks", "file:///etc/jwks", "not a url", "/jwks", "http://"] {
            let error = JwksClient::new(url).expect_err(url);
            assert_eq!(error.reason(), "InvalidJwksUrl", "{url}");
        }
    }

    /// Answers every connection with `response` (or holds it open, when `None`).
    async fn serve_raw(response: Option<Vec<u8>>) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/jwks", listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                let response = response.clone();
                tokio::spawn(async move {
                    let mut request = [0u8; 1024];
                    let _ = stream.read(&mut request).await;
                    match response {
                        Some(bytes) => {
                            let _ = stream.write_all(&bytes).await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                });
            }
        });
        url
    }

    fn http_response(status: &str, body: &[u8]) -> Vec<u8> {
        let head = format!("HTTP/1.1 {status}\r\ncontent-length: {}\r\n\r\n", body.len());
        [head.as_bytes(), body].concat()
    }

    #[test]
    fn an_https_client_builds_on_ring_without_panicking() {
        // Whether the machine has CA certificates decides which answer, not the build.
        match JwksClient::new("https://issuer.invalid/jwks") {
            Ok(_) => {}
            Err(error) => assert_eq!(error.reason(), "TlsRootsUnavailable"),
        }
    }

    #[tokio::test]
    async fn answers_within_the_bounds_are_returned() {
        let url = serve_raw(Some(http_response("200 OK", b"{\"keys\":[]}"))).await;
        let body = JwksClient::new(&url).expect("client").fetch().await.expect("fetched");
        assert_eq!(&body[..], b"{\"keys\":[]}");
    }

    #[tokio::test]
    async fn a_silent_issuer_times_out() {
        let url = serve_raw(None).await;
        let client =
            JwksClient::new(&url).expect("client").with_timeout(Duration::from_millis(200));
        assert_eq!(client.fetch().await.expect_err("silent").reason(), "JwksTimeout");
    }

    #[tokio::test]
    async fn a_huge_answer_is_cut_off() {
        let url = serve_raw(Some(http_response("200 OK", &vec![b' '; MAX_JWKS_BYTES + 1]))).await;
        let error = JwksClient::new(&url).expect("client").fetch().await.expect_err("huge");
        assert_eq!(error.reason(), "JwksTooLarge");
    }

    #[tokio::test]
    async fn an_error_status_is_an_error() {
        let url = serve_raw(Some(http_response("404 Not Found", b""))).await;
        let error = JwksClient::new(&url).expect("client").fetch().await.expect_err("404");
        assert!(matches!(error, FetchError::Status(404)), "{error}");
    }

    #[tokio::test]
    async fn an_unreachable_issuer_is_a_transport_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        drop(listener);
        let client = JwksClient::new(&format!("http://127.0.0.1:{port}/jwks")).expect("client");
        let error = client.fetch().await.expect_err("nothing listens");
        assert_eq!(error.reason(), "JwksUnreachable");
    }
}
