//! `anonymize` and `decrypt` as a user runs them: the built binary on the SDK fixtures,
//! outputs read back with calamine and csv.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use calamine::{Data, Reader, open_workbook_auto};

const BIN: &str = env!("CARGO_BIN_EXE_licenseware-worker");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A temp dir holding a manifest with the given `encryption` block and a key file.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new(encryption: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let manifest = format!(
            "apiVersion: licenseware.io/v1alpha1\nkind: Uploader\nmetadata: {{name: rv-tools}}\n\
             spec:\n  appId: ifmp-service\n  name: RVTools\n  acceptedFileTypes: [.xlsx, .csv]\n  encryption:\n{encryption}"
        );
        std::fs::write(dir.path().join("uploader.yaml"), manifest).expect("write the manifest");
        std::fs::write(dir.path().join("key"), "a long random passphrase for tests\n")
            .expect("write the key file");
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn anonymize(&self, out: &str, inputs: &[PathBuf]) -> Output {
        Command::new(BIN)
            .arg("anonymize")
            .arg("--uploader")
            .arg(self.path("uploader.yaml"))
            .arg("--key-file")
            .arg(self.path("key"))
            .arg("--out")
            .arg(self.path(out))
            .args(inputs)
            .output()
            .expect("run anonymize")
    }

    fn decrypt(&self, tokens: &[String]) -> Output {
        Command::new(BIN)
            .args(["decrypt", "--key-file"])
            .arg(self.path("key"))
            .args(tokens)
            .output()
            .expect("run decrypt")
    }

    /// The plain value of each token, through the CLI.
    fn reveal(&self, tokens: &[String]) -> Vec<String> {
        let output = self.decrypt(tokens);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let stdout = String::from_utf8(output.stdout).expect("decrypt prints UTF-8");
        stdout.lines().map(str::to_owned).collect()
    }
}

const COLUMNS: &str = "    columns: [MACHINE_ID, DB_NAME, HostName, VM, Host]\n";

fn is_token(value: &str) -> bool {
    value.starts_with("#sc#") && value.ends_with("#ec#") && value.len() > 8
}

fn read_csv(path: &Path, delimiter: u8) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_path(path)
        .expect("open the CSV output");
    reader.records().map(|r| r.expect("a CSV record").iter().map(str::to_owned).collect()).collect()
}

fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Float(value) => value.to_string(),
        Data::Bool(value) => if *value { "True" } else { "False" }.to_owned(),
        other => other.to_string(),
    }
}

fn sheets(path: &Path) -> Vec<(String, calamine::Range<Data>)> {
    let mut workbook = open_workbook_auto(path).expect("open the workbook");
    let names = workbook.sheet_names();
    names
        .into_iter()
        .map(|name| (name.clone(), workbook.worksheet_range(&name).expect("read a sheet")))
        .collect()
}

/// Checks the named columns of a CSV output; returns value → token.
fn check_csv(
    input: &Path,
    output: &Path,
    delimiter: u8,
    named: &[&str],
) -> BTreeMap<String, String> {
    let (input, output) = (read_csv(input, delimiter), read_csv(output, delimiter));
    assert_eq!(input.len(), output.len());
    assert_eq!(input[0], output[0], "headers kept");
    let named: Vec<bool> = input[0].iter().map(|h| named.contains(&h.as_str())).collect();
    assert!(named.contains(&true));
    let mut tokens = BTreeMap::new();
    for (row_in, row_out) in input.iter().zip(&output).skip(1) {
        assert_eq!(row_in.len(), row_out.len());
        for ((value, anonymized), &is_named) in row_in.iter().zip(row_out).zip(&named) {
            if is_named && !value.is_empty() {
                assert!(is_token(anonymized), "{anonymized}");
                let previous = tokens.insert(value.clone(), anonymized.clone());
                assert!(previous.is_none_or(|p| &p == anonymized), "one token per value");
            } else {
                assert_eq!(value, anonymized);
            }
        }
    }
    tokens
}

#[test]
fn csv_columns_become_tokens_that_decrypt_and_join_across_files() {
    let setup = Setup::new(COLUMNS);
    let names = ["lms_detail.csv", "pipe.csv", "comma.csv", "semicolon.csv"];
    let inputs: Vec<PathBuf> = names.iter().map(|name| fixture(name)).collect();
    let before: Vec<Vec<u8>> = inputs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    let output = setup.anonymize("out", &inputs);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stdout = String::from_utf8(output.stdout).unwrap();
    let out = setup.path("out");
    let expected: Vec<String> = names
        .iter()
        .zip(&inputs)
        .map(|(name, input)| format!("{} -> {}", input.display(), out.join(name).display()))
        .collect();
    assert_eq!(stdout.lines().collect::<Vec<_>>(), expected);
    let after: Vec<Vec<u8>> = inputs.iter().map(|p| std::fs::read(p).unwrap()).collect();
    assert_eq!(before, after, "inputs untouched");

    let lms = check_csv(&inputs[0], &out.join(names[0]), b',', &["MACHINE_ID", "DB_NAME"]);
    assert_eq!(lms.len(), 2, "someid234 and somedb234: {lms:?}");
    let pipe = check_csv(&inputs[1], &out.join(names[1]), b'|', &["MACHINE_ID", "DB_NAME"]);
    let comma = check_csv(&inputs[2], &out.join(names[2]), b',', &["DB_NAME"]);
    let semicolon = check_csv(&inputs[3], &out.join(names[3]), b';', &["HostName"]);
    assert!(std::fs::read(out.join(names[3])).unwrap().ends_with(b"\r\n"), "CRLF kept");
    let shared: Vec<_> = pipe.keys().filter(|value| comma.contains_key(*value)).collect();
    assert!(!shared.is_empty(), "the fixtures share machine names");
    for value in shared {
        assert_eq!(pipe[value], comma[value], "the same value, the same token in both files");
    }

    let all = lms.into_iter().chain(pipe).chain(comma).chain(semicolon);
    let (values, tokens): (Vec<String>, Vec<String>) = all.unzip();
    assert_eq!(setup.reveal(&tokens), values);
}

#[test]
fn workbook_columns_become_tokens_and_every_other_cell_is_kept() {
    let setup = Setup::new(COLUMNS);
    let input = fixture("RVTools.xlsx");
    let output = setup.anonymize("out", std::slice::from_ref(&input));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let (before, after) = (sheets(&input), sheets(&setup.path("out/RVTools.xlsx")));
    let names: Vec<&String> = before.iter().map(|(name, _)| name).collect();
    assert_eq!(names, after.iter().map(|(name, _)| name).collect::<Vec<_>>());
    assert!(names.iter().any(|n| *n == "tabvInfo") && names.iter().any(|n| *n == "tabvHost"));

    let mut tokens: BTreeMap<String, String> = BTreeMap::new();
    let mut sheets_with_columns = BTreeSet::new();
    for ((name, range_in), (_, range_out)) in before.iter().zip(&after) {
        assert_eq!(range_in.start(), range_out.start(), "{name}");
        assert_eq!(range_in.get_size(), range_out.get_size(), "{name}");
        let header: Vec<String> = range_in.rows().next().unwrap().iter().map(cell_text).collect();
        let named: Vec<bool> = header.iter().map(|h| h == "VM" || h == "Host").collect();
        if named.contains(&true) {
            sheets_with_columns.insert(name.clone());
        }
        for (row, (cells_in, cells_out)) in range_in.rows().zip(range_out.rows()).enumerate() {
            for ((cell_in, cell_out), &is_named) in cells_in.iter().zip(cells_out).zip(&named) {
                if row > 0 && is_named && *cell_in != Data::Empty {
                    let Data::String(token) = cell_out else { panic!("{name}: {cell_out:?}") };
                    assert!(is_token(token), "{token}");
                    let previous = tokens.insert(cell_text(cell_in), token.clone());
                    assert!(previous.is_none_or(|p| &p == token), "one token per value");
                } else {
                    assert_eq!(cell_in, cell_out, "{name} row {row}: type and value kept");
                }
            }
        }
    }
    let expected: BTreeSet<String> =
        ["tabvInfo", "tabvCPU", "tabvHost"].into_iter().map(str::to_owned).collect();
    assert!(sheets_with_columns.is_superset(&expected), "{sheets_with_columns:?}");

    let (host, host_token) = tokens.iter().next().map(|(v, t)| (v.clone(), t.clone())).unwrap();
    let (values, tokens): (Vec<String>, Vec<String>) = tokens.into_iter().unzip();
    assert!(values.len() > 40, "VMs and hosts: {}", values.len());
    assert_eq!(setup.reveal(&tokens), values);

    // A CSV of the same uploader, anonymized in another run: the same value, the same
    // token, so the two files still join.
    std::fs::write(setup.path("hosts.csv"), format!("Host,note\n{host},x\n")).unwrap();
    let output = setup.anonymize("out2", &[setup.path("hosts.csv")]);
    assert!(output.status.success());
    let rows = read_csv(&setup.path("out2/hosts.csv"), b',');
    assert_eq!(rows[1], [host_token, "x".to_owned()]);
}

#[test]
fn paths_and_text_content_are_anonymized_in_a_walked_directory() {
    let setup = Setup::new(
        "    filepaths: ['DeviceX', 'LMS_OPTIONS_(.*?).csv']\n    filecontent: ['SECRET\\w*', 'host=(\\w+)']\n",
    );
    let data = setup.path("data");
    std::fs::create_dir_all(data.join("DeviceX")).unwrap();
    std::fs::write(data.join("DeviceX/notes.txt"), "SECRET1 host=db1 and SECRET2 host=db2\n")
        .unwrap();
    std::fs::write(data.join("LMS_OPTIONS_server42.csv"), "a,b\nSECRET9,1\n").unwrap();
    std::fs::write(data.join("archive.zip"), b"PK\x03\x04").unwrap();
    let output = setup.anonymize("out", std::slice::from_ref(&data));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("archive.zip"), "a note for the copied file: {stderr}");

    let mut written: Vec<PathBuf> = Vec::new();
    for line in String::from_utf8(output.stdout).unwrap().lines() {
        written.push(line.split(" -> ").nth(1).unwrap().into());
    }
    assert_eq!(written.len(), 3);
    let relative: Vec<String> = written
        .iter()
        .map(|p| p.strip_prefix(setup.path("out")).unwrap().to_string_lossy().into_owned())
        .collect();
    // Walked in name order: DeviceX/, LMS_OPTIONS_..., archive.zip.
    assert_eq!(relative[0], format!("{}/notes.txt", token_in(&relative[0])));
    assert_eq!(
        relative[1],
        "LMS_OPTIONS_server42.csv".replace("server42", &token_in(&relative[1]))
    );
    assert_eq!(relative[2], "archive.zip");
    assert_eq!(
        setup.reveal(&[token_in(&relative[0]), token_in(&relative[1])]),
        ["DeviceX", "server42"]
    );

    let notes = std::fs::read_to_string(&written[0]).unwrap();
    let tokens: Vec<String> = notes
        .split(' ')
        .filter(|w| w.contains("#sc#"))
        .map(|w| w.trim_start_matches("host=").trim_end().to_owned())
        .collect();
    assert_eq!(tokens.len(), 4, "{notes}");
    assert_eq!(setup.reveal(&tokens), ["SECRET1", "db1", "SECRET2", "db2"]);
    assert!(notes.starts_with(&format!("{} host=", tokens[0])));
    // A CSV without a named column is text: the content rules apply.
    let csv = std::fs::read_to_string(&written[1]).unwrap();
    assert!(csv.starts_with("a,b\n#sc#") && !csv.contains("SECRET9"), "{csv}");
}

fn token_in(text: &str) -> String {
    let start = text.find("#sc#").expect("a start tag");
    let end = text.find("#ec#").expect("an end tag") + 4;
    text[start..end].to_owned()
}

#[test]
fn bad_usage_exits_2_and_unreadable_files_exit_1() {
    let setup = Setup::new("    filecontent: ['(unclosed']\n");
    let output = setup.anonymize("out", &[fixture("lms_detail.csv")]);
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("(unclosed"));

    let setup = Setup::new("    columns: []\n");
    let output = setup.anonymize("out", &[fixture("lms_detail.csv")]);
    assert_eq!(output.status.code(), Some(2), "no rules: nothing to anonymize");

    let setup = Setup::new(COLUMNS);
    std::fs::write(setup.path("key"), "\n").unwrap();
    let output = setup.anonymize("out", &[fixture("lms_detail.csv")]);
    assert_eq!(output.status.code(), Some(2), "empty key file");
    assert_eq!(setup.decrypt(&["#sc#AAAA#ec#".into()]).status.code(), Some(2));

    let setup = Setup::new(COLUMNS);
    let missing = setup.path("absent.csv");
    let output = setup.anonymize("out", &[missing.clone(), fixture("lms_detail.csv")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains(&*missing.to_string_lossy()));
    assert!(setup.path("out/lms_detail.csv").exists(), "the other file is written");
}

#[test]
fn decrypt_names_a_bad_token_and_keeps_the_others_in_place() {
    let setup = Setup::new(COLUMNS);
    std::fs::write(setup.path("v.csv"), "VM\nfirst\nsecond\n").unwrap();
    assert!(setup.anonymize("out", &[setup.path("v.csv")]).status.success());
    let rows = read_csv(&setup.path("out/v.csv"), b',');
    let tokens = [rows[1][0].clone(), "#sc#bm90IGEgdG9rZW4=#ec#".to_owned(), rows[2][0].clone()];
    let output = setup.decrypt(&tokens);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(String::from_utf8(output.stdout).unwrap(), "first\n\nsecond\n");
    assert!(String::from_utf8_lossy(&output.stderr).contains("#sc#bm90IGEgdG9rZW4=#ec#"));
}
