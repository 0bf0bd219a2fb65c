//! Small xlsx workbooks for tests, written by hand: the parts calamine reads, with text
//! in a shared-string table as Excel writes it.

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;

/// One sheet: its name and rows of cell texts. `""` leaves the cell out (sparse rows;
/// a row of `""` only is a blank row); a text that parses as a number is written as a
/// number.
pub(crate) type SheetRows<'a> = (&'a str, &'a [&'a [&'a str]]);

pub(crate) fn write_xlsx(path: &Path, sheets: &[SheetRows<'_>]) {
    write_xlsx_declaring(path, sheets, None);
}

/// `write_xlsx` whose shared-string table declares `unique_count` strings (a lie when
/// set) instead of the number it holds.
pub(crate) fn write_xlsx_declaring(
    path: &Path,
    sheets: &[SheetRows<'_>],
    unique_count: Option<u64>,
) {
    let file = std::fs::File::create(path).unwrap();
    let mut zip = zip::ZipWriter::new(file);
    let options = SimpleFileOptions::default();
    let mut part = |name: &str, body: &str| {
        zip.start_file(name, options).unwrap();
        zip.write_all(body.as_bytes()).unwrap();
    };
    part(
        "_rels/.rels",
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>"#,
    );
    let mut workbook = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets>"#,
    );
    let mut rels = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">"#,
    );
    let mut strings: Vec<String> = Vec::new();
    for (index, (name, rows)) in sheets.iter().enumerate() {
        let id = index + 1;
        workbook.push_str(&format!(r#"<sheet name="{name}" sheetId="{id}" r:id="rId{id}"/>"#));
        rels.push_str(&format!(
            r#"<Relationship Id="rId{id}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{id}.xml"/>"#
        ));
        part(&format!("xl/worksheets/sheet{id}.xml"), &sheet_xml(rows, &mut strings));
    }
    workbook.push_str("</sheets></workbook>");
    rels.push_str("</Relationships>");
    part("xl/workbook.xml", &workbook);
    part("xl/_rels/workbook.xml.rels", &rels);
    let items: String = strings.iter().map(|text| format!("<si><t>{text}</t></si>")).collect();
    part(
        "xl/sharedStrings.xml",
        &format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" uniqueCount="{}">{items}</sst>"#,
            unique_count.unwrap_or(strings.len() as u64)
        ),
    );
    zip.finish().unwrap();
}

fn sheet_xml(rows: &[&[&str]], strings: &mut Vec<String>) -> String {
    let mut xml = String::from(
        r#"<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>"#,
    );
    for (row_index, row) in rows.iter().enumerate() {
        if row.iter().all(|text| text.is_empty()) {
            continue;
        }
        let r = row_index + 1;
        xml.push_str(&format!(r#"<row r="{r}">"#));
        for (column, text) in row.iter().enumerate().filter(|(_, text)| !text.is_empty()) {
            let reference = format!("{}{r}", column_name(column));
            if text.parse::<f64>().is_ok() {
                xml.push_str(&format!(r#"<c r="{reference}"><v>{text}</v></c>"#));
            } else {
                strings.push((*text).to_owned());
                let shared = strings.len() - 1;
                xml.push_str(&format!(r#"<c r="{reference}" t="s"><v>{shared}</v></c>"#));
            }
        }
        xml.push_str("</row>");
    }
    xml.push_str("</sheetData></worksheet>");
    xml
}

fn column_name(mut column: usize) -> String {
    let mut name = Vec::new();
    loop {
        name.push(b'A' + (column % 26) as u8);
        if column < 26 {
            break;
        }
        column = column / 26 - 1;
    }
    name.reverse();
    String::from_utf8(name).unwrap()
}
