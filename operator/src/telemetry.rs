//! Logging set-up: JSON lines for collectors, text for terminals.

use tracing_subscriber::{EnvFilter, fmt, fmt::format::FmtSpan};

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` overrides the default `info` level.
/// `LW_LOG_SPAN_TIMES=1` also logs each enabled span as it closes, with its busy and
/// idle time: where a slow reconcile spends it (the steps are `debug` spans).
///
/// Fails when a subscriber is already installed, which only a second call in
/// the same process can cause.
pub fn init(format: LogFormat) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let span_times = std::env::var("LW_LOG_SPAN_TIMES").is_ok_and(|value| value == "1");
    let span_events = if span_times { FmtSpan::CLOSE } else { FmtSpan::NONE };
    let builder =
        fmt().with_env_filter(filter).with_writer(std::io::stderr).with_span_events(span_events);
    match format {
        LogFormat::Json => {
            builder.json().flatten_event(true).with_current_span(span_times).try_init()
        }
        LogFormat::Text => builder.try_init(),
    }
}
