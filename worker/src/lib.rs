//! The Licenseware worker as a library: the consumer, the local tools (validate,
//! process, anonymize, decrypt) and the engine under them live here so that a custom
//! worker image can reuse them; the binary only parses its command line.

pub mod anonymize;
pub mod archive;
pub mod cli;
pub mod consume;
pub mod manifest;
pub mod metrics;
pub mod processing;
pub mod read;
pub mod sandbox;
pub mod serve;
pub mod validation;
