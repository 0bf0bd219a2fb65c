//! `licenseware-worker validate`: an Uploader's validation rules applied to local files,
//! the SDK's `FileValidationResponse` printed as one JSON line. The outcome of the files
//! is in the JSON, not in the exit code: 0 whenever validation ran.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::manifest::load_uploader;
use crate::sandbox::{Sandbox, SandboxArgs};
use crate::validation::{
    CONTENTS_ANALYSED, FileToValidate, FileValidationResponse, Status, Validator,
};

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The Uploader manifest (YAML, as applied to the cluster) whose rules apply.
    #[arg(long, value_name = "MANIFEST")]
    pub uploader: PathBuf,
    /// Check the file names only, as the upload-validation endpoint does; the files
    /// need not exist.
    #[arg(long)]
    pub filenames_only: bool,
    /// The event id to report (a UUID); a new one when absent.
    #[arg(long, value_name = "UUID")]
    pub event_id: Option<String>,
    #[command(flatten)]
    pub limits: SandboxArgs,
    /// The files; each is reported under its base name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

pub fn run(args: ValidateArgs) -> Result<(), CliError> {
    let response = validate(&args)?;
    let json = serde_json::to_string(&response)
        .map_err(|error| CliError::Failed(format!("cannot write the response: {error}")))?;
    // writeln, not println: a closed stdout is an error to report, not a panic.
    writeln!(std::io::stdout().lock(), "{json}")
        .map_err(|error| CliError::Failed(format!("cannot write the response: {error}")))
}

/// The response `run` prints.
pub fn validate(args: &ValidateArgs) -> Result<FileValidationResponse, CliError> {
    let sandbox =
        Sandbox::new(args.limits.into()).map_err(|error| CliError::Failed(error.to_string()))?;
    validate_with(args, &sandbox)
}

/// The response, with the files read by `sandbox`'s children.
pub fn validate_with(
    args: &ValidateArgs,
    sandbox: &Sandbox,
) -> Result<FileValidationResponse, CliError> {
    if let Some(event_id) = &args.event_id {
        uuid::Uuid::parse_str(event_id).map_err(|error| {
            CliError::Usage(format!("--event-id {event_id:?} is not a UUID: {error}"))
        })?;
    }
    let manifest = load_uploader(&args.uploader)?;
    let validator = Validator::new(&manifest.spec.validation);
    let files: Vec<FileToValidate> = args.files.iter().map(FileToValidate::from_path).collect();
    let event_id = args.event_id.as_deref();
    if args.filenames_only {
        let names: Vec<&str> = files.iter().map(|file| file.filename.as_str()).collect();
        return Ok(validator.check_filenames(&names, event_id));
    }
    let entries = files
        .iter()
        .map(|file| sandbox.check_file(&manifest.spec.validation, file))
        .collect::<Vec<_>>();
    // Skipped entries first, as the SDK ordered them.
    let (mut ordered, others): (Vec<_>, Vec<_>) =
        entries.into_iter().partition(|entry| entry.status == Status::Skipped);
    ordered.extend(others);
    Ok(FileValidationResponse::new(CONTENTS_ANALYSED, ordered, event_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(validation: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".yaml").tempfile().unwrap();
        write!(
            file,
            "apiVersion: licenseware.io/v1alpha1\nkind: Uploader\nmetadata: {{name: lms}}\n\
             spec:\n  appId: app\n  name: LMS\n  acceptedFileTypes: [.csv]\n  validation: {validation}\n"
        )
        .unwrap();
        file
    }

    fn args(uploader: &tempfile::NamedTempFile, files: &[&str]) -> ValidateArgs {
        ValidateArgs {
            uploader: uploader.path().to_owned(),
            filenames_only: false,
            event_id: None,
            limits: SandboxArgs {
                file_memory_mib: 1024,
                file_cpu_seconds: 60,
                file_wall_seconds: 60,
                file_output_mib: 64,
            },
            files: files.iter().map(PathBuf::from).collect(),
        }
    }

    #[test]
    fn files_are_reported_under_their_base_names() {
        let uploader = manifest("{filenameEndswith: [.csv], minRowsNumber: 1}");
        // No reader can start here: the file whose name passes gets that as its entry;
        // tests/sandbox.rs runs the real children.
        let sandbox = Sandbox::with_program("/nonexistent/reader", Default::default());
        let arguments = args(&uploader, &["/nowhere/lms.csv", "dir/a.txt"]);
        let response = validate_with(&arguments, &sandbox).unwrap();
        assert_eq!(response.validation[0].filename, "lms.csv");
        assert_eq!(response.validation[0].status, Status::Failed);
        assert!(response.validation[0].message.contains("cannot start the file reader"));
        assert_eq!(response.validation[1].filename, "a.txt");
        assert_eq!(response.validation[1].message, "File is not of required input type: ['.csv']");
    }

    #[test]
    fn filenames_only_does_not_open_the_files() {
        let uploader = manifest("{filenameEndswith: [.csv]}");
        let mut arguments = args(&uploader, &["/nowhere/lms.csv"]);
        arguments.filenames_only = true;
        arguments.event_id = Some("6f68900f-3ac1-4837-a9b5-ebcd9c1686f2".into());
        let response = validate(&arguments).unwrap();
        assert_eq!(response.message, "File names were analysed");
        assert_eq!(response.validation[0].status, Status::Success);
        assert_eq!(response.event_id, "6f68900f-3ac1-4837-a9b5-ebcd9c1686f2");
    }

    #[test]
    fn bad_manifests_and_event_ids_are_usage_errors() {
        let uploader = manifest("{filenameEndswith: [.csv]}");
        let mut arguments = args(&uploader, &["a.csv"]);
        arguments.event_id = Some("not-a-uuid".into());
        assert!(matches!(validate(&arguments), Err(CliError::Usage(_))));
        let broken = manifest("[unclosed");
        assert!(matches!(validate(&args(&broken, &["a.csv"])), Err(CliError::Usage(_))));
    }
}
