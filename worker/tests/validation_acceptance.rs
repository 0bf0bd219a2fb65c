//! The SDK's acceptance cases for validation (reference §11, cases 1-12) on the SDK's
//! fixtures, and `licenseware-worker validate` run as a user runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use licenseware_crds::ValidationParameters;
use licenseware_worker::read::csv_delimiter;
use licenseware_worker::validation::{
    FileToValidate, Keywords, Status, ValidationResponse, Validator, missing_items,
    validate_filenames,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

fn groups(alternatives: &[&[&str]]) -> Vec<Vec<String>> {
    alternatives.iter().map(|group| strings(group)).collect()
}

fn check(params: &ValidationParameters, file: &str) -> ValidationResponse {
    Validator::new(params).check_file(&FileToValidate::from_path(fixture(file)))
}

fn rv_names() -> ValidationParameters {
    ValidationParameters {
        filename_contains: Some(strings(&["rv", "tools"])),
        filename_endswith: Some(strings(&[".xls", ".xlsx"])),
        ..ValidationParameters::default()
    }
}

const CONTAINS_RV: &str = "File must contain at least one of the following keywords: rv, tools";
const NOT_EXCEL: &str = "File is not of required input type: ['.xls', '.xlsx']";

#[test]
fn case_1_filename_handler() {
    let names = ["cpuq.xlsx", "rv_tools.xlsx", "notok.csv", "RVTools.XLSX"];
    let response = validate_filenames(&names, &rv_names(), None);
    let entry = |i: usize| (response.validation[i].status, response.validation[i].message.clone());
    assert_eq!(entry(0), (Status::Failed, CONTAINS_RV.to_owned()));
    assert_eq!(entry(1), (Status::Success, "File is valid".to_owned()));
    assert_eq!(entry(2), (Status::Failed, format!("{CONTAINS_RV} {NOT_EXCEL}")));
    assert_eq!(entry(3), (Status::Failed, NOT_EXCEL.to_owned()));
    assert_eq!(response.status, Status::Success);
    assert!(uuid::Uuid::parse_str(&response.event_id).is_ok());
}

#[test]
fn case_2_regex_escape() {
    let params = |regex_escape| ValidationParameters {
        filename_contains: Some(strings(&["rv(1)"])),
        regex_escape,
        ..ValidationParameters::default()
    };
    let status = |escape| Validator::new(&params(escape)).check_filename("rv(1).xlsx").status;
    assert_eq!(status(true), Status::Success);
    assert_eq!(status(false), Status::Failed);
}

#[test]
fn case_3_absent_suffixes_pass_and_ignored_files_are_skipped() {
    let params = ValidationParameters {
        filename_endswith: None,
        ignore_filenames: Some(strings(&["ignored.csv"])),
        ..ValidationParameters::default()
    };
    let response = validate_filenames(&["a.tsv", "ignored.csv"], &params, None);
    assert_eq!(response.validation[0].status, Status::Skipped);
    assert_eq!(response.validation[0].message, "File is ignored");
    assert_eq!(response.validation[1].status, Status::Success);
}

#[test]
fn case_4_required_sheets() {
    let sheets = |alternatives: &[&[&str]]| ValidationParameters {
        required_sheets: Some(groups(alternatives)),
        ..ValidationParameters::default()
    };
    assert_eq!(
        check(&sheets(&[&["vInfo"], &["tabvInfo"]]), "RVTools.xlsx").status,
        Status::Success
    );
    assert_eq!(
        check(&sheets(&[&["Not a sheet"]]), "RVTools.xlsx").message,
        "File doesn't contain the following needed sheets: ['Not a sheet']"
    );
    assert_eq!(check(&sheets(&[&["tabvInfo"]]), "RVTools.xlsx").status, Status::Success);
}

#[test]
fn case_5_required_columns_of_a_required_sheet() {
    let params = ValidationParameters {
        required_columns: Some(groups(&[&["VM"]])),
        required_sheets: Some(groups(&[&["tabvInfo"]])),
        ..ValidationParameters::default()
    };
    assert_eq!(check(&params, "RVTools.xlsx").status, Status::Success);
}

#[test]
fn case_6_minimum_rows_per_sheet() {
    let params = |sheet: &str| ValidationParameters {
        min_rows_number: 10,
        required_sheets: Some(vec![vec![sheet.to_owned()]]),
        ..ValidationParameters::default()
    };
    assert_eq!(check(&params("tabvInfo"), "RVTools.xlsx").status, Status::Success);
    assert_eq!(
        check(&params("tabvCluster"), "RVTools.xlsx").message,
        "Sheet tabvCluster doesn't have the minimum number of rows: 10"
    );
}

#[test]
fn case_7_the_full_rvtools_rule() {
    let params = ValidationParameters {
        required_input_type: Some("excel".into()),
        min_rows_number: 1,
        required_sheets: Some(groups(&[
            &["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"],
            &["vInfo", "vCPU", "vHost", "vCluster"],
        ])),
        required_columns: Some(groups(&[&[
            "VM",
            "Host",
            "OS",
            "Sockets",
            "CPUs",
            "Model",
            "CPU Model",
            "Cluster",
            "# CPU",
            "# Cores",
            "ESX Version",
            "HT Active",
            "Name",
            "NumCpuThreads",
            "NumCpuCores",
        ]])),
        filename_endswith: Some(strings(&[".xlsx"])),
        ..rv_names()
    };
    let entry = check(&params, "RVTools.xlsx");
    assert_eq!((entry.status, entry.message.as_str()), (Status::Success, "File is valid"));
}

#[test]
fn case_8_lms_detail_csv() {
    let base = ValidationParameters::default();
    let with_type = |value: &str| ValidationParameters {
        required_input_type: Some(value.into()),
        ..base.clone()
    };
    assert_eq!(check(&with_type("csv"), "lms_detail.csv").status, Status::Success);
    assert_eq!(check(&with_type("excel"), "lms_detail.csv").status, Status::Failed);
    let all = |terms: &[&str]| ValidationParameters {
        text_contains_all: Some(strings(terms)),
        ..base.clone()
    };
    let headers = ["RL_SCRIPT_VERSION", "TIMESTAMP", "MACHINE_ID", "VMACHINE_ID"];
    assert_eq!(check(&all(&headers), "lms_detail.csv").status, Status::Success);
    assert_eq!(check(&all(&["NOT", "IN", "FILE"]), "lms_detail.csv").status, Status::Failed);
    let any = ValidationParameters {
        text_contains_any: Some(strings(&["NOT IN THIS FILE"])),
        ..base.clone()
    };
    assert_eq!(
        check(&any, "lms_detail.csv").message,
        "File must contain at least one of the following keywords: NOT IN THIS FILE"
    );
    let columns =
        ValidationParameters { required_columns: Some(groups(&[&["NOT A COLUMN"]])), ..base };
    assert_eq!(
        check(&columns, "lms_detail.csv").message,
        "File doesn't contain the following needed columns: ['NOT A COLUMN']"
    );
}

#[test]
fn case_9_delimiter_sniffing() {
    let delimiter = |name: &str| csv_delimiter(&fixture(name), 0).unwrap();
    assert_eq!(delimiter("comma.csv"), b',');
    assert_eq!(delimiter("pipe.csv"), b'|');
    assert_eq!(delimiter("semicolon.csv"), b';');
    assert_eq!(delimiter("lms_detail.csv"), b',');
}

#[test]
fn case_10_required_items() {
    let tabs = strings(&["tabvInfo", "tabvCPU", "tabvHost", "tabvCluster"]);
    let mut present = tabs.clone();
    present.push("someExtraTab".into());
    assert_eq!(missing_items(&present, std::slice::from_ref(&tabs), "sheets"), None);
    let flat = missing_items(&present, &groups(&[&["unrelatedTab"]]), "sheets").unwrap();
    assert!(flat.contains("unrelatedTab"), "{flat}");
    let rule = groups(&[&["unrelatedTab"], &["vInfo", "vCPU", "vHost", "vCluster"]]);
    assert_eq!(
        missing_items(&present, &rule, "sheets").unwrap(),
        "File doesn't contain the following needed sheets: [['unrelatedTab'], ['vInfo', 'vCPU', 'vHost', 'vCluster']]"
    );
}

#[test]
fn case_11_minimum_rows() {
    let dir = tempfile::tempdir().unwrap();
    let ten = dir.path().join("ten.csv");
    let rows: String = (0..10).map(|i| format!("{i}\n")).collect();
    std::fs::write(&ten, format!("n\n{rows}")).unwrap();
    let params = ValidationParameters { min_rows_number: 1, ..ValidationParameters::default() };
    let validator = Validator::new(&params);
    assert_eq!(validator.check_file(&FileToValidate::from_path(&ten)).status, Status::Success);
    let empty = validator.check_file(&FileToValidate::from_path(fixture("lms_detail_empty.csv")));
    assert_eq!(empty.message, "File doesn't have the minimum number of rows: 1");
}

#[test]
fn case_12_text_helpers() {
    assert!(Keywords::new(&strings(&["valid", "string"]), true).unwrap().all_in("valid string"));
    assert!(!Keywords::new(&strings(&["some", "text"]), true).unwrap().all_in("invalid string"));
}

// `licenseware-worker validate`, the binary.

const RV_MANIFEST: &str = "manifests/examples/rv-tools.uploader.yaml";

fn sample_manifest() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(RV_MANIFEST)
}

fn run(args: &[&str]) -> (i32, serde_json::Value, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_licenseware-worker"))
        .arg("validate")
        .args(args)
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    let code = output.status.code().expect("the binary exits");
    (code, json, String::from_utf8_lossy(&output.stderr).into_owned())
}

fn path(path: &Path) -> &str {
    path.to_str().expect("fixture paths are UTF-8")
}

#[test]
fn cli_the_sample_manifest_accepts_the_rvtools_fixture() {
    let manifest = sample_manifest();
    let rvtools = fixture("RVTools.xlsx");
    let lms = fixture("lms_detail.csv");
    let event_id = "6f68900f-3ac1-4837-a9b5-ebcd9c1686f2";
    let (code, json, _) =
        run(&["--uploader", path(&manifest), "--event-id", event_id, path(&rvtools), path(&lms)]);
    assert_eq!(code, 0);
    assert_eq!(
        json,
        serde_json::json!({
            "status": "success",
            "message": "File names and contents were analysed",
            "validation": [
                {"status": "success", "filename": "RVTools.xlsx", "message": "File is valid"},
                {"status": "failed", "filename": "lms_detail.csv",
                 "message": format!("{CONTAINS_RV} {NOT_EXCEL}")},
            ],
            "event_id": event_id,
        })
    );
}

#[test]
fn cli_filenames_only_and_failures_still_exit_0() {
    let manifest = sample_manifest();
    let (code, json, _) = run(&["--uploader", path(&manifest), "--filenames-only", "/x/rv.xlsx"]);
    assert_eq!(code, 0);
    assert_eq!(json["message"], "File names were analysed");
    assert_eq!(json["validation"][0]["status"], "success");
    let (code, json, _) = run(&["--uploader", path(&manifest), "/nowhere/rv.xlsx"]);
    assert_eq!(code, 0, "an unreadable file is a failed entry");
    assert_eq!(json["validation"][0]["status"], "failed");
}

#[test]
fn cli_bad_usage_and_bad_manifests_exit_2() {
    let manifest = sample_manifest();
    let (code, _, stderr) = run(&["--uploader", path(&manifest)]);
    assert_eq!(code, 2, "no FILE: {stderr}");
    let (code, _, stderr) = run(&["--uploader", "/nowhere.yaml", "a.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("cannot read /nowhere.yaml"), "{stderr}");
    let not_uploader = fixture("lms_detail.csv");
    let (code, _, _) = run(&["--uploader", path(&not_uploader), "a.csv"]);
    assert_eq!(code, 2);
    let (code, _, stderr) = run(&["--uploader", path(&manifest), "--event-id", "x", "a.csv"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("not a UUID"), "{stderr}");
}
