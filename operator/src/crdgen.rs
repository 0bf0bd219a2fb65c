//! `licenseware-operator crdgen`: the CRD YAML, from the same types the operator reconciles.

use std::{io::Write, path::Path};

use licenseware_crds::generate::render;

/// Writes every CRD as one multi-document YAML stream.
pub fn print(out: &mut impl Write) -> std::io::Result<()> {
    for (index, (_, yaml)) in render().iter().enumerate() {
        if index > 0 {
            out.write_all(b"---\n")?;
        }
        out.write_all(yaml.as_bytes())?;
    }
    Ok(())
}

/// Writes one file per CRD into `dir`, the committed form under `crds/`.
pub fn write_files(dir: &Path) -> std::io::Result<Vec<String>> {
    let mut written = Vec::new();
    for (file_name, yaml) in render() {
        std::fs::write(dir.join(&file_name), yaml)?;
        written.push(file_name);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[test]
    fn prints_every_kind_as_one_stream() {
        let mut out = Vec::new();
        print(&mut out).expect("print to memory");
        let text = String::from_utf8(out).expect("utf-8");
        let documents: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|document| serde_yaml::Value::deserialize(document).expect("valid YAML"))
            .collect();
        let kinds: Vec<&str> = documents
            .iter()
            .filter_map(|document| document["spec"]["names"]["kind"].as_str())
            .collect();
        assert_eq!(kinds, ["Uploader", "Report", "ReportComponent", "DataTable", "Topic", "App"]);
    }
}
