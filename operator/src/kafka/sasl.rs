//! SASL authentication of a new connection: SaslHandshake names the mechanism, then
//! SaslAuthenticate carries PLAIN's one message or SCRAM's two.

use bytes::Bytes;
use kafka_protocol::{
    messages::{SaslAuthenticateRequest, SaslHandshakeRequest},
    protocol::StrBytes,
};
use licenseware_crds::kafka_security::{Sasl, SaslMechanism};

use super::{
    scram::{ScramClient, ScramHash},
    wire::{Connection, KafkaClient, WireError},
};

/// The longest error message of a broker kept in an error.
const MAX_MESSAGE_CHARS: usize = 500;

impl KafkaClient {
    /// Authenticates `connection` with `sasl`; a refusal is a
    /// [`WireError::Authentication`] with the broker's message.
    pub(super) async fn authenticate(
        &self,
        connection: &Connection,
        sasl: &Sasl,
    ) -> Result<(), WireError> {
        let refused = |message: String| WireError::Authentication {
            address: connection.address.clone(),
            mechanism: sasl.mechanism.as_str(),
            message: message.chars().take(MAX_MESSAGE_CHARS).collect(),
        };
        let handshake = SaslHandshakeRequest::default()
            .with_mechanism(StrBytes::from_static_str(sasl.mechanism.as_str()));
        let response = self.round_trip(connection, &handshake).await?;
        if response.error_code != 0 {
            let offered: Vec<&str> = response.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(refused(format!(
                "the broker does not accept this mechanism (error code {}); it offers {}",
                response.error_code,
                offered.join(", ")
            )));
        }
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let message =
                    format!("\0{}\0{}", sasl.username, sasl.password.expose()).into_bytes();
                self.sasl_step(connection, message, &refused).await?;
            }
            SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
                let hash = if sasl.mechanism == SaslMechanism::ScramSha256 {
                    ScramHash::Sha256
                } else {
                    ScramHash::Sha512
                };
                let scram = ScramClient::new(hash, &sasl.username, sasl.password.expose());
                let first = scram.client_first().into_bytes();
                let server_first = self.sasl_step(connection, first, &refused).await?;
                let server_first = String::from_utf8_lossy(&server_first);
                let (client_final, expected) =
                    scram.client_final(&server_first).map_err(|e| refused(e.to_string()))?;
                let server_final =
                    self.sasl_step(connection, client_final.into_bytes(), &refused).await?;
                expected
                    .verify(&String::from_utf8_lossy(&server_final))
                    .map_err(|error| refused(error.to_string()))?;
            }
        }
        Ok(())
    }

    /// One SaslAuthenticate round: the client's bytes out, the server's back.
    async fn sasl_step(
        &self,
        connection: &Connection,
        auth_bytes: Vec<u8>,
        refused: &impl Fn(String) -> WireError,
    ) -> Result<Bytes, WireError> {
        let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(auth_bytes));
        let response = self.round_trip(connection, &request).await?;
        if response.error_code != 0 {
            let message = response
                .error_message
                .as_ref()
                .map(|message| message.as_str().to_owned())
                .unwrap_or_else(|| format!("error code {}", response.error_code));
            return Err(refused(message));
        }
        Ok(response.auth_bytes)
    }
}
