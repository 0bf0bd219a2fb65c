//! Log set-up of the consumer: JSON lines for collectors, text for terminals.

use tracing_subscriber::{EnvFilter, fmt};

use super::config::LogFormat;

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level. Fails
/// only when a subscriber is installed already (a second call in one process).
pub fn init(format: LogFormat) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match format {
        // The current span carries the event's ids (`"span": {"event_id": ...}`).
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    }
}
