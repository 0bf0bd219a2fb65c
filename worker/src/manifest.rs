//! Loading an Uploader manifest (the same YAML users `kubectl apply`) for the local
//! tools, and the worker's config file written by the operator.

use std::path::{Path, PathBuf};

use licenseware_crds::{Uploader, UploaderSpec, WorkerConfigFile};
use serde::Deserialize;

/// Why a manifest cannot be used. Each variant has a stable reason for logs and exit
/// messages.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{path} is not a valid Uploader manifest: {source}")]
    Parse { path: PathBuf, source: serde_yaml::Error },
    #[error("{path} has kind {kind:?}; an Uploader manifest (kind: Uploader) is needed")]
    WrongKind { path: PathBuf, kind: String },
    #[error("{path} has no Uploader document")]
    NoUploader { path: PathBuf },
}

impl ManifestError {
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Read { .. } => "ManifestUnreadable",
            Self::Parse { .. } => "ManifestInvalid",
            Self::WrongKind { .. } => "ManifestWrongKind",
            Self::NoUploader { .. } => "ManifestEmpty",
        }
    }
}

/// An Uploader as the worker needs it: the spec with `uploaderId` filled in.
#[derive(Debug, Clone, PartialEq)]
pub struct UploaderManifest {
    pub uploader_id: String,
    pub spec: UploaderSpec,
}

impl UploaderManifest {
    pub fn from_uploader(uploader: &Uploader) -> Self {
        let uploader_id = uploader.uploader_id();
        let mut spec = uploader.spec.clone();
        spec.uploader_id = Some(uploader_id.clone());
        Self { uploader_id, spec }
    }

    pub fn from_config(config: &WorkerConfigFile) -> Self {
        let mut spec = config.spec.clone();
        spec.uploader_id = Some(config.uploader_id.clone());
        Self { uploader_id: config.uploader_id.clone(), spec }
    }
}

/// Reads an Uploader manifest. A multi-document file is accepted when exactly one of
/// its documents is an Uploader (the sample app keeps several kinds in one file); the
/// first Uploader is used when there are several.
pub fn load_uploader(path: &Path) -> Result<UploaderManifest, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
    parse_uploader(&text, path)
}

pub fn parse_uploader(text: &str, path: &Path) -> Result<UploaderManifest, ManifestError> {
    let mut other_kind = None;
    for document in serde_yaml::Deserializer::from_str(text) {
        let value = serde_yaml::Value::deserialize(document)
            .map_err(|source| ManifestError::Parse { path: path.to_owned(), source })?;
        if value.is_null() {
            continue;
        }
        let kind = value.get("kind").and_then(|k| k.as_str()).unwrap_or_default().to_owned();
        if kind != "Uploader" {
            other_kind.get_or_insert(kind);
            continue;
        }
        let uploader: Uploader = serde_yaml::from_value(value)
            .map_err(|source| ManifestError::Parse { path: path.to_owned(), source })?;
        return Ok(UploaderManifest::from_uploader(&uploader));
    }
    Err(match other_kind {
        Some(kind) => ManifestError::WrongKind { path: path.to_owned(), kind },
        None => ManifestError::NoUploader { path: path.to_owned() },
    })
}

/// Reads the `worker.yaml` the operator mounts from the Uploader's ConfigMap.
pub fn load_worker_config(path: &Path) -> Result<WorkerConfigFile, ManifestError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ManifestError::Read { path: path.to_owned(), source })?;
    serde_yaml::from_str(&text)
        .map_err(|source| ManifestError::Parse { path: path.to_owned(), source })
}

#[cfg(test)]
mod tests {
    use super::*;

    const RV_TOOLS: &str = "
apiVersion: licenseware.io/v1alpha1
kind: Uploader
metadata: {name: rv-tools, namespace: demo}
spec:
  appId: ifmp-service
  name: RVTools
  acceptedFileTypes: [.xlsx]
  validation:
    filenameContains: [rv, tools]
";

    #[test]
    fn an_uploader_gets_its_id_from_the_name() {
        let manifest = parse_uploader(RV_TOOLS, Path::new("u.yaml")).unwrap();
        assert_eq!(manifest.uploader_id, "rv_tools");
        assert_eq!(manifest.spec.uploader_id.as_deref(), Some("rv_tools"));
        assert_eq!(manifest.spec.validation.buffer, 15000, "SDK default applied");
    }

    #[test]
    fn the_uploader_of_a_multi_document_file_is_found() {
        let text = format!("kind: Report\nspec: {{}}\n---\n{RV_TOOLS}");
        assert!(parse_uploader(&text, Path::new("app.yaml")).is_ok());
    }

    #[test]
    fn other_kinds_and_bad_yaml_are_refused_with_a_reason() {
        let wrong = parse_uploader("kind: Topic\n", Path::new("t.yaml")).unwrap_err();
        assert_eq!(wrong.reason(), "ManifestWrongKind");
        let bad = parse_uploader("kind: Uploader\nspec: [", Path::new("b.yaml")).unwrap_err();
        assert_eq!(bad.reason(), "ManifestInvalid");
        let missing = parse_uploader(
            "apiVersion: licenseware.io/v1alpha1\nkind: Uploader\nmetadata: {name: x}\nspec: {}\n",
            Path::new("m.yaml"),
        )
        .unwrap_err();
        assert_eq!(missing.reason(), "ManifestInvalid", "appId is required");
    }
}
