//! The jobs a caller runs contained, typed: each builds its request, takes the child's
//! frames and decodes the outcome.

use std::path::Path;

use licenseware_crds::{EncryptionParameters, UploaderSpec, ValidationParameters};
use mongodb::bson::Document;

use super::request::{
    AnonymizeOutcome, Job, ProcessOutcome, ProcessOutput, ValidateOutcome, WireContext,
    WireFileKind, WireTreatment,
};
use super::{Sandbox, SandboxError, frame, parent::scratch_dir};
use crate::anonymize::{FileKind, Treatment, plan::PlannedFile};
use crate::processing::FileContext;
use crate::validation::{FileToValidate, Status, ValidationResponse, Validator};

/// Where a contained `process` run's output goes.
pub trait ProcessSink {
    /// One document of `collection` (the consumer's case).
    fn document(&mut self, collection: &str, document: Document) -> Result<(), String>;
    /// Printed output, as it is (the `process` command's JSON lines).
    fn output(&mut self, bytes: &[u8]) -> Result<(), String>;
}

impl Sandbox {
    /// The SDK's name and content checks of one file; the content checks that read the
    /// file run in a child, and a child that does not finish is the file's failed entry.
    pub fn check_file(
        &self,
        validation: &ValidationParameters,
        file: &FileToValidate,
    ) -> ValidationResponse {
        let validator = Validator::new(validation);
        if !validator.reads_contents() {
            // Nothing to contain: a child would cost milliseconds to read nothing.
            return validator.check_file(file);
        }
        let names = validator.check_filename(&file.filename);
        if names.status != Status::Success {
            return names;
        }
        self.validate(validation, file, false)
    }

    /// The content checks of an archive's member.
    pub fn check_member(
        &self,
        validation: &ValidationParameters,
        file: &FileToValidate,
    ) -> ValidationResponse {
        self.validate(validation, file, true)
    }

    fn validate(
        &self,
        validation: &ValidationParameters,
        file: &FileToValidate,
        member: bool,
    ) -> ValidationResponse {
        let job = Job::Validate {
            validation: validation.clone(),
            path: file.path.clone(),
            filename: file.filename.clone(),
            member,
        };
        let outcome = self
            .run(job, &mut |_, _| Err("validation has no output".to_owned()))
            .and_then(|payload| decode::<ValidateOutcome>(&payload));
        outcome
            .unwrap_or_else(|error| ValidationResponse::failed(&file.filename, error.to_string()))
    }

    /// The default processing of one uploaded file, contained. Archives unpack in a
    /// scratch directory under `scratch_root` that is removed afterwards, whatever
    /// became of the child.
    pub fn process_file(
        &self,
        spec: &UploaderSpec,
        context: &FileContext,
        path: &Path,
        scratch_root: &Path,
        output: ProcessOutput,
        sink: &mut dyn ProcessSink,
    ) -> Result<ProcessOutcome, SandboxError> {
        let scratch = scratch_dir(scratch_root)?;
        let job = Job::Process {
            spec: Box::new(spec.clone()),
            context: WireContext::from(context),
            path: path.to_owned(),
            scratch: scratch.path().to_owned(),
            output,
        };
        let payload = self.run(job, &mut |tag, payload| match tag {
            frame::DOCUMENT => {
                let (collection, mut bson) = frame::split_document(payload)
                    .ok_or_else(|| "a malformed document frame".to_owned())?;
                let document = Document::from_reader(&mut bson)
                    .map_err(|error| format!("a malformed document: {error}"))?;
                sink.document(collection, document)
            }
            frame::OUTPUT => sink.output(payload),
            other => Err(format!("an unknown frame {other:#x}")),
        })?;
        decode(&payload)
    }

    /// Starts a child that allocates `allocate_mib` MiB: `Ok` shows that children start
    /// (a worker checks it before it takes events); past the memory limit, the error
    /// shows the limit holds.
    pub fn self_test(&self, allocate_mib: u64) -> Result<(), SandboxError> {
        let job = Job::SelfTest { allocate_mib };
        let payload = self.run(job, &mut |_, _| Err("a self-test has no output".to_owned()))?;
        decode::<usize>(&payload).map(drop)
    }

    /// An Uploader's encryption rules applied to one planned file, contained.
    pub fn anonymize_file(
        &self,
        encryption: &EncryptionParameters,
        key_file: &Path,
        file: &PlannedFile,
    ) -> Result<Treatment, AnonymizeFailure> {
        let kind = match file.kind {
            FileKind::Text => WireFileKind::Text,
            FileKind::Csv => WireFileKind::Csv,
            FileKind::Workbook => WireFileKind::Workbook,
            FileKind::Other => WireFileKind::Other,
        };
        let job = Job::Anonymize {
            encryption: encryption.clone(),
            key_file: key_file.to_owned(),
            input: file.input.clone(),
            output: file.output.clone(),
            kind,
        };
        let outcome = self
            .run(job, &mut |_, _| Err("anonymization has no output".to_owned()))
            .and_then(|payload| decode::<AnonymizeOutcome>(&payload));
        match outcome {
            Ok(AnonymizeOutcome::Written(treatment)) => Ok(match treatment {
                WireTreatment::Columns => Treatment::Columns,
                WireTreatment::Text => Treatment::Text,
                WireTreatment::Unchanged => Treatment::Unchanged,
                WireTreatment::NotRead => Treatment::NotRead,
            }),
            Ok(AnonymizeOutcome::Failed { reason, message }) => {
                Err(AnonymizeFailure { reason, message })
            }
            Err(error) => Err(AnonymizeFailure {
                reason: error.reason().to_owned(),
                message: error.to_string(),
            }),
        }
    }
}

/// Why a contained anonymization of a file failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct AnonymizeFailure {
    pub reason: String,
    pub message: String,
}

fn decode<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, SandboxError> {
    serde_json::from_slice(payload)
        .map_err(|error| SandboxError::Protocol(format!("an undecodable outcome: {error}")))
}
