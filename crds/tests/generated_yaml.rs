//! The CRD YAML committed at `crds/*.yaml` must be exactly what the types generate.
//!
//! `LW_UPDATE_CRDS=1 cargo test -p licenseware-crds --test generated_yaml` rewrites the
//! files (and removes stale ones) instead of comparing; the operator's `crdgen` command
//! writes the same bytes.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use licenseware_crds::generate::{REGENERATE_COMMAND, render};

fn crd_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `.yaml` files at the top level of `crds/`, by file name.
fn committed(dir: &Path) -> BTreeMap<String, String> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("read crds/") {
        let path = entry.expect("list crds/").path();
        let is_yaml = path.extension().is_some_and(|e| e == "yaml" || e == "yml");
        if is_yaml && path.is_file() {
            let name = path.file_name().expect("file name").to_string_lossy().into_owned();
            files.insert(name, fs::read_to_string(&path).expect("read a CRD file"));
        }
    }
    files
}

#[test]
fn committed_crds_match_the_types() {
    let dir = crd_dir();
    let rendered: BTreeMap<String, String> = render().into_iter().collect();

    if std::env::var_os("LW_UPDATE_CRDS").is_some_and(|v| v == "1") {
        for name in committed(&dir).keys().filter(|n| !rendered.contains_key(*n)) {
            fs::remove_file(dir.join(name)).expect("remove a stale CRD file");
        }
        for (name, yaml) in &rendered {
            fs::write(dir.join(name), yaml).expect("write a CRD file");
        }
        return;
    }

    let on_disk = committed(&dir);
    let mut problems = Vec::new();
    for (name, yaml) in &rendered {
        match on_disk.get(name) {
            None => problems.push(format!("crds/{name} is missing")),
            Some(text) if text != yaml => problems.push(format!("crds/{name} is out of date")),
            Some(_) => {}
        }
    }
    for name in on_disk.keys().filter(|n| !rendered.contains_key(*n)) {
        problems.push(format!(
            "crds/{name} is not a generated CRD (only CRDs belong at the top of crds/)"
        ));
    }
    assert!(
        problems.is_empty(),
        "{}\nRegenerate the CRD files with `{REGENERATE_COMMAND}` \
         (or `LW_UPDATE_CRDS=1 cargo test -p licenseware-crds --test generated_yaml`) \
         and commit them.",
        problems.join("\n")
    );
}

#[test]
fn one_document_per_file_with_the_header() {
    for (name, yaml) in render() {
        assert!(yaml.starts_with("# Generated"), "{name}");
        assert_eq!(yaml.matches("\n---").count(), 0, "{name} must hold one document");
        let crd: serde_yaml::Value = serde_yaml::from_str(&yaml).expect("valid YAML");
        assert_eq!(crd["kind"], "CustomResourceDefinition", "{name}");
        assert_eq!(format!("{}.yaml", crd["metadata"]["name"].as_str().unwrap()), name);
    }
}

#[test]
fn render_is_deterministic() {
    assert_eq!(render(), render());
}
