//! `licenseware-worker anonymize --uploader <manifest> --key-file <file> --out <dir>
//! <FILE|DIR>...`: applies the Uploader's `encryption` rules into `--out`, never
//! touching the inputs. Prints `input -> output` per written file on stdout; a file
//! that fails is named on stderr and the others go on (exit 1 at the end). Files no
//! rule matched, and files of other kinds (archives are not opened), are copied with
//! their paths anonymized and a note on stderr.
//! Exit 2 on a bad manifest, key file or pattern, or when the Uploader has no rules.

use std::io::Write;
use std::path::PathBuf;

use clap::Args;

use super::CliError;
use crate::anonymize::{Anonymizer, FileError, FileOutcome, Keys, Tokenizer, Treatment};
use crate::manifest::load_uploader;
use crate::sandbox::{Sandbox, SandboxArgs};

#[derive(Debug, Args)]
pub struct AnonymizeArgs {
    /// The Uploader manifest whose `spec.encryption` rules apply.
    #[arg(long, value_name = "MANIFEST")]
    pub uploader: PathBuf,
    /// A file holding the passphrase (a long random secret); keep it to decrypt.
    #[arg(long, value_name = "FILE")]
    pub key_file: PathBuf,
    /// The directory the anonymized files are written to (created when missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[command(flatten)]
    pub limits: SandboxArgs,
    /// Files, or directories whose files are anonymized with their relative paths.
    #[arg(required = true, value_name = "FILE|DIR")]
    pub inputs: Vec<PathBuf>,
}

pub fn run(args: AnonymizeArgs) -> Result<(), CliError> {
    let manifest = load_uploader(&args.uploader)?;
    let encryption = &manifest.spec.encryption;
    if encryption.filepaths.is_empty()
        && encryption.filecontent.is_empty()
        && encryption.columns.is_empty()
    {
        return Err(CliError::Usage(format!(
            "the Uploader {} in {} has no encryption rules (spec.encryption): nothing to anonymize",
            manifest.uploader_id,
            args.uploader.display()
        )));
    }
    let keys = Keys::load(&args.key_file).map_err(|e| CliError::Usage(e.to_string()))?;
    let tokenizer = Tokenizer::new(&keys).map_err(|e| CliError::Usage(e.to_string()))?;
    let mut anonymizer =
        Anonymizer::new(encryption, tokenizer).map_err(|e| CliError::Usage(e.to_string()))?;
    std::fs::create_dir_all(&args.out).map_err(|error| {
        CliError::Failed(format!("cannot create --out {}: {error}", args.out.display()))
    })?;
    let mut stdout = std::io::stdout().lock();
    let mut broken_stdout = None;
    let sandbox =
        Sandbox::new(args.limits.into()).map_err(|error| CliError::Failed(error.to_string()))?;
    // Paths are planned here; each file's content is read and written in a sandbox child.
    let mut contained = |_: &mut Anonymizer, file: &crate::anonymize::plan::PlannedFile| {
        sandbox.anonymize_file(encryption, &args.key_file, file).map_err(|failure| {
            // A killed child leaves its partial output behind.
            let _ = std::fs::remove_file(crate::anonymize::output::temporary_path(&file.output));
            FileError::Contained { path: file.input.clone(), message: failure.message }
        })
    };
    let mut on_outcome = |outcome: &FileOutcome| {
        if let Err(error) = report(&mut stdout, outcome) {
            broken_stdout.get_or_insert(error);
        }
    };
    let failed =
        anonymizer.anonymize_with(&args.inputs, &args.out, &mut on_outcome, &mut contained);
    if let Some(error) = broken_stdout {
        return Err(CliError::Failed(format!("cannot write to stdout: {error}")));
    }
    if failed > 0 {
        return Err(CliError::Failed(format!("{failed} file(s) could not be anonymized")));
    }
    Ok(())
}

#[allow(clippy::print_stderr)] // a CLI: per-file errors and notes are for the terminal
fn report(stdout: &mut impl Write, outcome: &FileOutcome) -> std::io::Result<()> {
    match outcome {
        FileOutcome::Written { input, output, treatment } => {
            match treatment {
                Treatment::Unchanged => eprintln!(
                    "note: no rule matched the content of {}: values unchanged",
                    input.display()
                ),
                Treatment::NotRead => eprintln!(
                    "note: {} copied as it is: only .txt, .xml, .csv and workbooks are read \
                     (unpack archives first)",
                    input.display()
                ),
                Treatment::Columns | Treatment::Text => {}
            }
            writeln!(stdout, "{} -> {}", input.display(), output.display())
        }
        FileOutcome::Failed(error) => {
            eprintln!("error: {error} ({})", error.reason());
            Ok(())
        }
    }
}
