//! The consumer runtime (`licenseware-worker consume`) and its library surface.
//!
//! The runtime reads one uploader's processing events from Kafka and, per event, runs a
//! saga: status `running`, compensation of leftovers, each file through a
//! [`FileProcessor`], supersede and clear_data once the new data is in, history records,
//! retries with backoff, dead letters, status `idle`, and the offset commit last.
//!
//! A custom worker image is a binary that implements [`FileProcessor`] and calls
//! [`run`] (see `worker/examples/custom_worker.rs`):
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use clap::Parser;
//! # use licenseware_worker::consume::{self, *};
//! # struct Mine;
//! # impl FileProcessor for Mine {
//! #     fn process_file(&self, _: &FileJob, _: &mut dyn DocumentSink)
//! #         -> Result<FileReport, ProcessError> { Ok(FileReport::processed("")) }
//! # }
//! # async fn main_() -> Result<(), ConsumeError> {
//! let config = ConsumeConfig::parse();
//! let _ = consume::logging::init(config.log_format);
//! let settings = Settings::load(&config)?;
//! consume::run(settings, Arc::new(Mine), consume::shutdown::signal()).await?;
//! # Ok(()) }
//! ```

mod backoff;
pub mod clock;
mod config;
mod consumer_errors;
mod context;
pub mod delivery;
pub mod dlq;
pub mod envelope;
mod files;
pub mod history;
pub mod logging;
mod notify;
pub mod paths;
pub mod probes;
mod processor;
mod runtime;
mod saga;
pub mod scratch;
pub mod shutdown;
pub mod status;
mod status_store;
mod store;
pub(crate) mod writer;

pub use backoff::Backoff;
pub use config::{
    ConfigError, ConsumeConfig, DEFAULT_DATABASE, LogFormat, Settings, database_in_url,
};
pub use envelope::{EnvelopeError, ProcessingEvent};
/// The BSON types documents are made of.
pub use mongodb::bson;
pub use probes::ProbeConfig;
pub use processor::{
    DocumentSink, FileJob, FileProcessor, FileReport, ProcessError, SinkClosed, error_chain,
};
pub use runtime::{ConsumeError, RunSummary, run};
pub use writer::{BATCH_SIZE, STAMPED_FIELDS, stamp};
