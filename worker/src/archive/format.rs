use std::path::Path;

/// The archive formats the worker unpacks: the SDK's list of suffixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveFormat {
    Zip,
    Tar,
    TarGz,
    TarBz2,
    TarXz,
}

/// Longest suffixes first, so that `.tar.gz` is not taken for something else.
const SUFFIXES: [(&str, ArchiveFormat); 6] = [
    (".tar.bz2", ArchiveFormat::TarBz2),
    (".tar.gz", ArchiveFormat::TarGz),
    (".tar.xz", ArchiveFormat::TarXz),
    (".tgz", ArchiveFormat::TarGz),
    (".tar", ArchiveFormat::Tar),
    (".zip", ArchiveFormat::Zip),
];

/// The format of an archive by its file name's suffix (case-insensitive: `X.ZIP` is a
/// zip); `None` for anything else. The content is not sniffed: an `.xlsx` is a zip
/// inside, and must stay a workbook.
pub fn archive_format(path: &Path) -> Option<ArchiveFormat> {
    let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
    SUFFIXES
        .iter()
        .find(|(suffix, _)| name.len() > suffix.len() && name.ends_with(suffix))
        .map(|(_, format)| *format)
}

pub fn is_archive(path: &Path) -> bool {
    archive_format(path).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_decide_case_insensitively() {
        let cases = [
            ("a.zip", Some(ArchiveFormat::Zip)),
            ("A.ZIP", Some(ArchiveFormat::Zip)),
            ("a.tar", Some(ArchiveFormat::Tar)),
            ("a.tar.gz", Some(ArchiveFormat::TarGz)),
            ("a.TGZ", Some(ArchiveFormat::TarGz)),
            ("a.tar.bz2", Some(ArchiveFormat::TarBz2)),
            ("dir/a.Tar.Xz", Some(ArchiveFormat::TarXz)),
            ("a.xlsx", None),
            ("a.gz", None),
            ("a.xz", None),
            ("zip", None),
            (".zip", None),
        ];
        for (name, expected) in cases {
            assert_eq!(archive_format(Path::new(name)), expected, "{name}");
        }
    }
}
