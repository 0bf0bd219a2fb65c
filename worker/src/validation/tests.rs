//! Tests of the engine as a whole: every rule and message on small files.

use std::path::{Path, PathBuf};

use licenseware_crds::ValidationParameters;

use super::*;
use crate::read::test_xlsx::write_xlsx;

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn rv_names() -> ValidationParameters {
    ValidationParameters {
        filename_contains: Some(strings(&["rv", "tools"])),
        filename_endswith: Some(strings(&[".xls", ".xlsx"])),
        ..ValidationParameters::default()
    }
}

fn check(params: &ValidationParameters, path: &Path) -> ValidationResponse {
    Validator::new(params).check_file(&FileToValidate::from_path(path))
}

#[test]
fn filename_messages_are_the_sdks() {
    let names = ["cpuq.xlsx", "rv_tools.xlsx", "notok.csv", "RVTools.XLSX"];
    let response = validate_filenames(&names, &rv_names(), None);
    assert_eq!(response.status, Status::Success);
    assert_eq!(response.message, "File names were analysed");
    let messages: Vec<(Status, &str)> =
        response.validation.iter().map(|entry| (entry.status, entry.message.as_str())).collect();
    assert_eq!(
        messages,
        [
            (Status::Failed, "File must contain at least one of the following keywords: rv, tools"),
            (Status::Success, "File is valid"),
            (
                Status::Failed,
                "File must contain at least one of the following keywords: rv, tools File is not of required input type: ['.xls', '.xlsx']"
            ),
            (Status::Failed, "File is not of required input type: ['.xls', '.xlsx']"),
        ]
    );
}

#[test]
fn absent_rules_pass_and_an_empty_suffix_list_fails_everything() {
    let open = ValidationParameters::default();
    assert_eq!(Validator::new(&open).check_filename("anything.bin").status, Status::Success);
    let none = ValidationParameters { filename_endswith: Some(Vec::new()), ..open };
    let entry = Validator::new(&none).check_filename("a.csv");
    assert_eq!(entry.message, "File is not of required input type: []");
}

#[test]
fn ignored_files_are_skipped_first_with_the_ignored_message() {
    let params = ValidationParameters {
        ignore_filenames: Some(strings(&["skip.csv"])),
        filename_ignored_message: "Not needed".into(),
        ..rv_names()
    };
    let response = validate_filenames(&["rv.xlsx", "skip.csv", "Skip.csv"], &params, Some("e"));
    let order: Vec<(&str, Status)> =
        response.validation.iter().map(|e| (e.filename.as_str(), e.status)).collect();
    assert_eq!(
        order,
        [("skip.csv", Status::Skipped), ("rv.xlsx", Status::Success), ("Skip.csv", Status::Failed)]
    );
    assert_eq!(response.validation[0].message, "Not needed");
    assert_eq!(response.event_id, "e");
}

#[test]
fn invalid_unescaped_keywords_fail_the_file_with_a_reason() {
    let params = ValidationParameters {
        filename_contains: Some(strings(&["rv("])),
        regex_escape: false,
        ..ValidationParameters::default()
    };
    let entry = Validator::new(&params).check_filename("rv(.xlsx");
    assert_eq!(entry.status, Status::Failed);
    assert!(entry.message.starts_with("Keyword \"rv(\" is not a valid regular expression"));
}

#[test]
fn a_bad_name_is_reported_without_opening_the_file() {
    let entry = check(&rv_names(), Path::new("/nowhere/notok.csv"));
    assert!(entry.message.starts_with("File must contain"), "{}", entry.message);
    let entry = check(&rv_names(), Path::new("/nowhere/rv.xlsx"));
    assert_eq!(entry.status, Status::Failed);
    assert!(entry.message.starts_with("File cannot be read: "), "{}", entry.message);
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("rv.xlsx");
    std::fs::create_dir(&folder).unwrap();
    let entry = check(&rv_names(), &folder);
    assert_eq!(entry.message, "File cannot be read: it is not a regular file");
}

#[test]
fn required_input_types_use_aliases_and_print_the_value() {
    let csv = fixture("lms_detail.csv");
    let with = |value: &str| ValidationParameters {
        required_input_type: Some(value.into()),
        ..ValidationParameters::default()
    };
    assert_eq!(check(&with("csv"), &csv).status, Status::Success);
    assert_eq!(check(&with(".csv"), &csv).status, Status::Success);
    let entry = check(&with("excel"), &csv);
    assert_eq!(entry.message, "File is not of required input type: excel");
}

#[test]
fn text_checks_read_the_buffer_case_insensitively() {
    let csv = fixture("lms_detail.csv");
    let all = |terms: &[&str], buffer: i64| ValidationParameters {
        text_contains_all: Some(strings(terms)),
        buffer,
        ..ValidationParameters::default()
    };
    assert_eq!(
        check(&all(&["rl_script_version", "timestamp"], 15000), &csv).status,
        Status::Success
    );
    let entry = check(&all(&["NOT", "IN", "FILE"], 15000), &csv);
    assert_eq!(entry.message, "File must contain the all following keywords: NOT, IN, FILE");
    let entry = check(&all(&["TIMESTAMP"], 10), &csv);
    assert_eq!(entry.status, Status::Failed, "TIMESTAMP starts after the first 10 bytes");
    let any = ValidationParameters {
        text_contains_any: Some(strings(&["NOT IN THIS FILE", "NOPE"])),
        ..all(&["NOT"], 15000)
    };
    assert_eq!(
        check(&any, &csv).message,
        "File must contain the all following keywords: NOT, File must contain at least one of the following keywords: NOT IN THIS FILE, NOPE"
    );
}

#[test]
fn csv_columns_and_rows_after_skipped_lines() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("hosts.csv");
    std::fs::write(&path, "exported today\nHost;OS\nh1;linux\nh2;windows\n").unwrap();
    let params = |columns: &[&str], min_rows: i64| ValidationParameters {
        required_columns: Some(vec![strings(columns)]),
        min_rows_number: min_rows,
        header_starts_at: 1,
        ..ValidationParameters::default()
    };
    assert_eq!(check(&params(&["Host", "OS"], 2), &path).status, Status::Success);
    assert_eq!(
        check(&params(&["Host", "CPU"], 3), &path).message,
        "File doesn't contain the following needed columns: ['CPU'], File doesn't have the minimum number of rows: 3"
    );
    let empty = ValidationParameters { min_rows_number: 1, ..ValidationParameters::default() };
    assert_eq!(
        check(&empty, &fixture("lms_detail_empty.csv")).message,
        "File doesn't have the minimum number of rows: 1"
    );
}

#[test]
fn workbook_rules_check_the_selected_sheets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rv.xlsx");
    let info: &[&[&str]] = &[&["VM", "Host"], &["vm1", "h1"], &["vm2", "h1"]];
    let host: &[&[&str]] = &[&["Host", "# CPU"], &["h1", "2"]];
    write_xlsx(&path, &[("vInfo", info), ("vHost", host), ("Notes", &[&["text"]])]);
    let params = |min_rows: i64| ValidationParameters {
        required_sheets: Some(vec![strings(&["tabvInfo"]), strings(&["vInfo", "vHost"])]),
        required_columns: Some(vec![strings(&["VM", "# CPU"])]),
        min_rows_number: min_rows,
        ..ValidationParameters::default()
    };
    assert_eq!(check(&params(1), &path).status, Status::Success, "columns of both sheets count");
    assert_eq!(
        check(&params(2), &path).message,
        "Sheet vHost doesn't have the minimum number of rows: 2"
    );
    let missing = ValidationParameters {
        required_sheets: Some(vec![strings(&["vInfo", "vCPU"])]),
        required_columns: Some(vec![strings(&["text"])]),
        ..params(0)
    };
    assert_eq!(
        check(&missing, &path).message,
        "File doesn't contain the following needed columns: ['text'], File doesn't contain the following needed sheets: ['vCPU']"
    );
}

#[test]
fn sheet_selection_follows_the_sdk() {
    let names = strings(&["tabvInfo", "tabvCPU", "vInfo"]);
    let alternatives = vec![strings(&["vInfo", "vCPU"]), strings(&["tabvInfo", "tabvCPU"])];
    assert_eq!(select_sheets(&names, Some(&alternatives)), ["tabvInfo", "tabvCPU"]);
    assert_eq!(select_sheets(&names, None), names);
    let none_present = vec![strings(&["vInfo", "vCPU", "vInfo"])];
    assert_eq!(select_sheets(&names, Some(&none_present)), ["vInfo"], "the ones that exist");
    let only = strings(&["Sheet1"]);
    assert_eq!(select_sheets(&only, Some(&alternatives)), ["Sheet1"], "a lone sheet is it");
}

#[test]
fn files_without_rows_fail_row_rules_unless_they_are_archives() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "hello").unwrap();
    let rows = ValidationParameters { min_rows_number: 1, ..ValidationParameters::default() };
    assert_eq!(check(&rows, &text).message, NOT_TABULAR);
    assert_eq!(check(&ValidationParameters::default(), &text).status, Status::Success);
    let archive =
        ValidationParameters { text_contains_any: Some(strings(&["lms"])), ..rows.clone() };
    let entry = check(&archive, &fixture("zip.tar.xz"));
    assert_eq!(entry.message, "File must contain at least one of the following keywords: lms");
    let as_csv = ValidationParameters { required_input_type: Some("csv".into()), ..rows };
    let data = dir.path().join("export.dat");
    std::fs::write(&data, "a,b\n1,2\n").unwrap();
    assert_eq!(
        check(&as_csv, &data).message,
        "File is not of required input type: csv",
        "read as csv: its one row passes"
    );
}

#[test]
fn unreadable_workbooks_give_a_failed_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rv.xlsx");
    std::fs::write(&path, "VM,Host\n").unwrap();
    let params = ValidationParameters { min_rows_number: 1, ..ValidationParameters::default() };
    let entry = check(&params, &path);
    assert_eq!(entry.status, Status::Failed);
    assert!(entry.message.starts_with("File is not a valid xlsx workbook"), "{}", entry.message);
}

#[test]
fn batches_of_files_say_contents_were_analysed() {
    let files = [FileToValidate::new(fixture("RVTools.xlsx"), "RVTools.xlsx")];
    let response = validate_files(&files, &rv_names(), None);
    assert_eq!(response.message, "File names and contents were analysed");
    assert_eq!(response.validation[0].status, Status::Success);
    assert!(response.any_success());
}
