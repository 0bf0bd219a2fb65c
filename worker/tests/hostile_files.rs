//! Crafted files from the hostile-input review (issue 10), each run through the real
//! binary (`validate` and `process`) under a memory cap and a time bound: each must end
//! in a clean failed entry or a clean failure, never an abort, a kill or a hang. Each
//! test names its finding; the bombs are built small (see `hostile_files/build.rs`).

#[path = "hostile_files/build.rs"]
mod build;
#[path = "hostile_files/run.rs"]
mod run;

use std::time::Duration;

use build::{
    GIB, HEADER_ROW, MAIN, MIB, ODS_HEAD, ODS_HEADER_ROW, ODS_TAIL, Part, bzip2_repeated,
    gzip_repeated, ods, package_parts, shared_strings, sheet, tar_header, xlsx, zip_of,
};
use run::Scratch;

/// A data row after the header, so that an honest file of these is valid.
const DATA_ROWS: &str =
    r#"<row r="2"><c r="A2"><v>1</v></c></row><row r="3"><c r="A3"><v>2</v></c></row>"#;

fn honest_sheet() -> Part {
    Part::new("xl/worksheets/sheet1.xml", &sheet(&format!("{HEADER_ROW}{DATA_ROWS}")))
}

/// An xlsx fails validation and processing, the message of validation containing
/// `expected`.
fn refused_both_ways(scratch: &Scratch, name: &str, bytes: &[u8], expected: &str) {
    let file = scratch.file(name, bytes);
    let message = scratch.validation_fails(&file);
    assert!(message.contains(expected), "{message}");
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains(expected), "{stderr}");
}

const HUGE_COUNT: &str = "1000000000000000";

#[test]
fn an_honest_xlsx_still_validates_and_processes() {
    let scratch = Scratch::new();
    let file = scratch.file("honest.xlsx", &xlsx(honest_sheet(), Vec::new()));
    assert_eq!(scratch.validate(&file), ("success".into(), "File is valid".into()));
    assert_eq!(scratch.processes(&file).lines().count(), 2);
}

#[test]
fn xlsx_shared_string_count_behind_a_decoy_docprops_part_is_refused() {
    let scratch = Scratch::new();
    let decoy = Part::new(
        "docProps/sharedStrings.xml",
        format!(r#"<sst xmlns="{MAIN}" uniqueCount="1"><si><t>x</t></si></sst>"#).as_bytes(),
    );
    let mut parts = vec![decoy];
    parts.extend(package_parts(&[("S", "worksheets/sheet1.xml")]));
    parts.push(honest_sheet());
    parts.push(shared_strings(
        &format!(r#"<sst xmlns="{MAIN}" uniqueCount="{HUGE_COUNT}">"#),
        "<si><t>x</t></si>",
    ));
    refused_both_ways(&scratch, "decoy.xlsx", &zip_of(&parts), "declares");
}

#[test]
fn xlsx_unique_count_written_inside_another_attribute_is_not_taken_for_it() {
    let scratch = Scratch::new();
    let table = shared_strings(
        &format!(r#"<sst xmlns="{MAIN}" note='uniqueCount="1"' uniqueCount="{HUGE_COUNT}">"#),
        "<si><t>x</t></si>",
    );
    refused_both_ways(&scratch, "attr.xlsx", &xlsx(honest_sheet(), vec![table]), "declares");
}

#[test]
fn xlsx_sst_tag_after_the_first_64_kib_is_still_read() {
    let scratch = Scratch::new();
    let filler = "x".repeat(70 * 1024);
    let table = shared_strings(
        &format!(
            r#"<?xml version="1.0"?><!--{filler}--><sst xmlns="{MAIN}" uniqueCount="{HUGE_COUNT}">"#
        ),
        "<si><t>x</t></si>",
    );
    refused_both_ways(&scratch, "late.xlsx", &xlsx(honest_sheet(), vec![table]), "declares");
}

#[test]
fn xlsx_with_one_3_gib_cell_value_is_refused() {
    let scratch = Scratch::new();
    let prefix = format!(
        r#"<worksheet xmlns="{MAIN}"><sheetData>{HEADER_ROW}<row r="2"><c r="A2" t="inlineStr"><is><t>"#
    );
    let part = Part::repeated(
        "xl/worksheets/sheet1.xml",
        prefix.as_bytes(),
        &vec![b'x'; MIB],
        3 * GIB / MIB as u64,
        b"</t></is></c></row></sheetData></worksheet>",
    );
    let bytes = xlsx(part, Vec::new());
    assert!(bytes.len() < 8 * MIB, "{} bytes", bytes.len());
    refused_both_ways(&scratch, "cell.xlsx", &bytes, "XML token is longer");
    // The anonymizer loads whole sheets with calamine: the same guards come first.
    let stderr = scratch.anonymization_fails(&scratch.file("anon.xlsx", &bytes));
    assert!(stderr.contains("XML token is longer"), "{stderr}");
}

#[test]
fn xlsx_shared_string_of_a_gigabyte_of_rich_text_runs_is_refused() {
    let scratch = Scratch::new();
    let run = format!("<r><t>{}</t></r>", "x".repeat(1000));
    let chunk = run.repeat(1000);
    let table = Part::repeated(
        "xl/sharedStrings.xml",
        format!(r#"<sst xmlns="{MAIN}" uniqueCount="2"><si><t>h</t></si><si>"#).as_bytes(),
        chunk.as_bytes(),
        1000,
        b"</si></sst>",
    );
    let rows = r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2"><c r="A2" t="s"><v>1</v></c></row><row r="3"><c r="A3" t="s"><v>1</v></c></row>"#;
    let sheet_part = Part::new("xl/worksheets/sheet1.xml", &sheet(rows));
    refused_both_ways(&scratch, "rich.xlsx", &xlsx(sheet_part, vec![table]), "longer than");
}

#[test]
fn xlsx_row_repeating_one_cell_reference_120_million_times_is_refused() {
    let scratch = Scratch::new();
    let prefix = format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{HEADER_ROW}<row r="2">"#);
    let chunk = r#"<c r="A2"/>"#.repeat(100_000);
    let part = Part::repeated(
        "xl/worksheets/sheet1.xml",
        prefix.as_bytes(),
        chunk.as_bytes(),
        1200,
        b"</row></sheetData></worksheet>",
    );
    let bytes = xlsx(part, Vec::new());
    assert!(bytes.len() < 4 * MIB, "{} bytes", bytes.len());
    refused_both_ways(&scratch, "row.xlsx", &bytes, "more than 16384 cells");
}

#[test]
fn xlsx_comment_full_of_closing_brackets_is_one_bounded_token() {
    let scratch = Scratch::new();
    let prefix = format!(r#"<worksheet xmlns="{MAIN}"><sheetData>{HEADER_ROW}<!--"#);
    let part = Part::repeated(
        "xl/worksheets/sheet1.xml",
        prefix.as_bytes(),
        &vec![b'>'; MIB],
        1024,
        format!("-->{DATA_ROWS}</sheetData></worksheet>").as_bytes(),
    );
    refused_both_ways(&scratch, "comment.xlsx", &xlsx(part, Vec::new()), "XML token is longer");
}

#[test]
fn xlsx_styles_part_with_a_huge_token_is_refused_before_calamine_opens_it() {
    let scratch = Scratch::new();
    let styles = Part::repeated(
        "xl/styles.xml",
        b"<styleSheet><numFmts><numFmt numFmtId=\"164\" formatCode=\"",
        &vec![b'0'; MIB],
        1024,
        b"\"/></numFmts></styleSheet>",
    );
    let file = scratch.file("styles.xlsx", &xlsx(honest_sheet(), vec![styles]));
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("XML token is longer"), "{stderr}");
}

#[test]
fn xlsx_of_empty_shared_strings_is_read_in_one_pass() {
    let scratch = Scratch::new();
    let cells = 16_000;
    let items = format!("<si><t>h</t></si>{}", "<si/>".repeat(cells));
    let table =
        shared_strings(&format!(r#"<sst xmlns="{MAIN}" uniqueCount="{}">"#, cells + 1), &items);
    let empty_refs: String =
        (1..=cells).map(|index| format!(r#"<c t="s"><v>{index}</v></c>"#)).collect();
    let rows = format!(
        r#"<row r="1"><c r="A1" t="s"><v>0</v></c></row><row r="2">{empty_refs}</row><row r="3">{empty_refs}</row><row r="4"><c r="A4"><v>1</v></c></row><row r="5"><c r="A5"><v>2</v></c></row>"#
    );
    let bytes = xlsx(Part::new("xl/worksheets/sheet1.xml", &sheet(&rows)), vec![table]);
    let file = scratch.file("empty.xlsx", &bytes);
    let (status, message, elapsed) = scratch.validate_timed(&file);
    assert_eq!((status.as_str(), message.as_str()), ("success", "File is valid"));
    assert!(elapsed < Duration::from_secs(60), "{elapsed:?}");
}

#[test]
fn xlsx_sheets_pointing_at_one_part_are_refused() {
    let scratch = Scratch::new();
    let names: Vec<String> =
        std::iter::once("S".to_owned()).chain((1..2000).map(|i| format!("S{i}"))).collect();
    let sheets: Vec<(&str, &str)> =
        names.iter().map(|name| (name.as_str(), "worksheets/sheet1.xml")).collect();
    let mut parts = package_parts(&sheets);
    parts.push(honest_sheet());
    refused_both_ways(&scratch, "sheets.xlsx", &zip_of(&parts), "are the same part");
}

#[test]
fn xlsx_with_more_entries_than_a_package_has_is_refused() {
    let scratch = Scratch::new();
    let mut parts = package_parts(&[("S", "worksheets/sheet1.xml")]);
    parts.push(honest_sheet());
    parts.extend((0..10_000).map(|i| Part::stored(&format!("x/{i}"), b"")));
    refused_both_ways(&scratch, "entries.xlsx", &zip_of(&parts), "more than the 10000 allowed");
}

#[test]
fn xlsx_with_duplicate_part_names_is_refused() {
    let scratch = Scratch::new();
    for (name, twin) in
        [("exact.xlsx", "xl/worksheets/sheet1.xml"), ("case.xlsx", "XL/Worksheets/Sheet1.xml")]
    {
        let mut parts = package_parts(&[("S", "worksheets/sheet1.xml")]);
        parts.push(honest_sheet());
        parts.push(Part::new(twin, &sheet("")));
        refused_both_ways(&scratch, name, &zip_of(&parts), "two entries named");
    }
}

fn ods_with(rows: &str) -> Vec<u8> {
    ods(Part::new("content.xml", format!("{ODS_HEAD}{ODS_HEADER_ROW}{rows}{ODS_TAIL}").as_bytes()))
}

#[test]
fn ods_cell_with_spaces_repeated_2147483647_times_is_refused() {
    let scratch = Scratch::new();
    let spaces = r#"<text:s text:c="2147483647"/>"#.repeat(3);
    let row = format!(
        r#"<table:table-row><table:table-cell office:value-type="string"><text:p>a{spaces}</text:p></table:table-cell></table:table-row>"#
    );
    let bytes = ods_with(&row);
    assert!(bytes.len() < 2048, "{} bytes", bytes.len());
    refused_both_ways(&scratch, "spaces.ods", &bytes, "expands to more than");
}

#[test]
fn ods_long_text_repeated_across_columns_is_refused() {
    let scratch = Scratch::new();
    let text = "x".repeat(MIB);
    let row = format!(
        r#"<table:table-row><table:table-cell office:value-type="string" table:number-columns-repeated="16384"><text:p>{text}</text:p></table:table-cell></table:table-row>"#
    );
    refused_both_ways(&scratch, "repeated.ods", &ods_with(&row), "bytes of text");
}

#[test]
fn ods_long_string_value_attribute_repeated_across_columns_is_refused() {
    let scratch = Scratch::new();
    let text = "x".repeat(4 * MIB);
    let row = format!(
        r#"<table:table-row><table:table-cell office:value-type="string" office:string-value="{text}" table:number-columns-repeated="16384"/></table:table-row>"#
    );
    refused_both_ways(&scratch, "attribute.ods", &ods_with(&row), "bytes of text");
}

#[test]
fn csv_header_of_64_mb_of_commas_is_refused() {
    let scratch = Scratch::new();
    let mut bytes = vec![b','; 64 * MIB];
    bytes.extend_from_slice(b"\nx\n");
    refused_both_ways(&scratch, "commas.csv", &bytes, "a record is longer than");
}

#[test]
fn csv_quoted_field_spanning_millions_of_short_lines_is_refused() {
    let scratch = Scratch::new();
    let mut bytes = b"h\n\"".to_vec();
    bytes.extend_from_slice(&b"x\n".repeat(5 * MIB));
    bytes.extend_from_slice(b"\"\n1\n");
    refused_both_ways(&scratch, "multiline.csv", &bytes, "a record is longer than");
}

#[test]
fn csv_row_of_millions_of_fields_is_refused() {
    let scratch = Scratch::new();
    let mut bytes = b"h\n".to_vec();
    bytes.extend_from_slice(&b"a,".repeat(3 * MIB));
    bytes.extend_from_slice(b"\n1\n");
    let file = scratch.file("fields.csv", &bytes);
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("more than 16384 cells"), "{stderr}");
}

#[test]
fn csv_header_of_quote_runs_is_sniffed_in_linear_time() {
    let scratch = Scratch::new();
    let mut bytes = "-\"x".repeat(40_000).into_bytes();
    bytes.extend_from_slice(b"\n1\n2\n");
    let file = scratch.file("quotes.csv", &bytes);
    let (status, _, elapsed) = scratch.validate_timed(&file);
    assert_eq!(status, "failed", "no column h");
    assert!(elapsed < Duration::from_secs(30), "{elapsed:?}");
}

#[test]
fn tar_gz_with_a_3_gib_gnu_long_name_is_refused() {
    let scratch = Scratch::new();
    let head = tar_header("././@LongLink", b'L', 3 * GIB);
    let bytes = gzip_repeated(&head, &vec![b'a'; MIB], 3 * GIB / MIB as u64, &[0; 1024]);
    assert!(bytes.len() < 8 * MIB, "{} bytes", bytes.len());
    let file = scratch.file("longname.tar.gz", &bytes);
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("GNULongName"), "{stderr}");
}

#[test]
fn tar_bz2_with_8_gib_of_skipped_content_is_refused() {
    let scratch = Scratch::new();
    let head = tar_header("dir/", b'5', 8 * GIB);
    let bytes = bzip2_repeated(&head, &vec![0; MIB], 8 * GIB / MIB as u64, &[0; 1024]);
    assert!(bytes.len() < 2 * MIB, "{} bytes", bytes.len());
    let file = scratch.file("skipped.tar.bz2", &bytes);
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("compression ratio"), "{stderr}");
}

#[test]
fn zip_archive_with_duplicate_entry_names_is_refused() {
    let scratch = Scratch::new();
    let bytes = zip_of(&[Part::new("a.csv", b"h\n1\n"), Part::new("a.csv", b"h\n2\n")]);
    let file = scratch.file("twins.zip", &bytes);
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("appears more than once"), "{stderr}");
}

#[test]
fn zip_archive_declaring_more_entries_than_allowed_is_refused_at_open() {
    let scratch = Scratch::new();
    let parts: Vec<Part> = (0..10_001).map(|i| Part::stored(&format!("{i}.csv"), b"")).collect();
    let file = scratch.file("many.zip", &zip_of(&parts));
    let stderr = scratch.processing_fails(&file);
    assert!(stderr.contains("10000 entries in total"), "{stderr}");
}

#[test]
fn xlsx_workbook_part_of_millions_of_defined_names_is_refused() {
    let scratch = Scratch::new();
    let mut parts = package_parts(&[("S", "worksheets/sheet1.xml")]);
    let head = format!(
        r#"<workbook xmlns="{MAIN}" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="S" sheetId="1" r:id="rId1"/></sheets><definedNames>"#
    );
    parts[1] = Part::repeated(
        "xl/workbook.xml",
        head.as_bytes(),
        // Long texts: bytes cheap to read in a debug build, the size is what counts.
        format!(r#"<definedName name="n">{}</definedName>"#, "A".repeat(MIB - 40)).as_bytes(),
        100,
        b"</definedNames></workbook>",
    );
    parts.push(honest_sheet());
    refused_both_ways(&scratch, "names.xlsx", &zip_of(&parts), "decompresses to more than");
}
