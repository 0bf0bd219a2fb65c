//! Small archives built in memory for the tests, hostile ones included.

use std::fs::File;
use std::io::Write;
use std::path::Path;

pub fn zip_file(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(File::create(path).expect("build the test archive"));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, content) in entries {
        zip.start_file(*name, options).expect("build the test archive");
        zip.write_all(content).expect("build the test archive");
    }
    zip.finish().expect("build the test archive");
}

pub fn tar_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o644);
        builder.append_data(&mut header, name, *content).expect("build the test archive");
    }
    builder.into_inner().expect("build the test archive")
}

/// A tar whose one entry has a raw name the tar builder itself would refuse.
pub fn tar_with_raw_name(name: &str, kind: tar::EntryType, link: Option<&str>) -> Vec<u8> {
    let mut header = tar::Header::new_gnu();
    let raw = &mut header.as_gnu_mut().expect("build the test archive").name;
    raw[..name.len()].copy_from_slice(name.as_bytes());
    header.set_entry_type(kind);
    header.set_mode(0o644);
    let content: &[u8] = if link.is_some() { b"" } else { b"escaped" };
    header.set_size(content.len() as u64);
    if let Some(target) = link {
        header.set_link_name(target).expect("build the test archive");
    }
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, content).expect("build the test archive");
    builder.into_inner().expect("build the test archive")
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("build the test archive");
    encoder.finish().expect("build the test archive")
}

pub fn bzip2(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
    encoder.write_all(bytes).expect("build the test archive");
    encoder.finish().expect("build the test archive")
}

pub fn xz(bytes: &[u8]) -> Vec<u8> {
    let options = lzma_rust2::XzOptions::with_preset(6);
    let mut encoder =
        lzma_rust2::XzWriter::new(Vec::new(), options).expect("build the test archive");
    encoder.write_all(bytes).expect("build the test archive");
    encoder.finish().expect("build the test archive")
}

pub fn zip_with_symlink(path: &Path, link: &str, target: &str) {
    let mut zip = zip::ZipWriter::new(File::create(path).expect("build the test archive"));
    zip.add_symlink(link, target, zip::write::SimpleFileOptions::default())
        .expect("build the test archive");
    zip.finish().expect("build the test archive");
}

/// A zip holding `name`, itself holding the previous level, `levels` deep.
pub fn nested_zips(dir: &Path, levels: usize) -> std::path::PathBuf {
    let mut content = b"a,b\n1,2\n".to_vec();
    let mut inner_name = "data.csv".to_owned();
    for level in 1..=levels {
        let name = format!("level{level}.zip");
        let path = dir.join(&name);
        zip_file(&path, &[(inner_name.as_str(), &content)]);
        content = std::fs::read(&path).expect("build the test archive");
        if level < levels {
            std::fs::remove_file(&path).expect("build the test archive");
        }
        inner_name = name;
    }
    dir.join(inner_name)
}
