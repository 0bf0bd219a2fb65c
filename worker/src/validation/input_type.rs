//! `requiredInputType` and `filenameEndswith`: case-sensitive suffix tests on file
//! names. The SDK iterated a string value character by character (`"csv"` accepted
//! `.xls`); here a named type maps to its extensions and anything else is a suffix
//! (SDK divergence 1).

/// The suffixes a `requiredInputType` value accepts.
pub fn required_suffixes(required_input_type: &str) -> Vec<&str> {
    match required_input_type {
        "excel" => vec![".xls", ".xlsx", ".xlsm", ".xlsb", ".ods"],
        "csv" => vec![".csv"],
        "xml" => vec![".xml"],
        "text" | "txt" => vec![".txt"],
        extension => vec![extension],
    }
}

/// Whether `filename` ends with one of `suffixes` (case-sensitive, as the SDK).
pub fn ends_with_any<S: AsRef<str>>(filename: &str, suffixes: &[S]) -> bool {
    suffixes.iter().any(|suffix| filename.ends_with(suffix.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_types_map_to_their_extensions() {
        let excel = required_suffixes("excel");
        for name in ["a.xls", "a.xlsx", "a.xlsm", "a.xlsb", "a.ods"] {
            assert!(ends_with_any(name, &excel), "{name}");
        }
        assert!(!ends_with_any("a.xml", &excel), "the SDK's character bug accepted .xml");
        assert!(ends_with_any("lms.csv", &required_suffixes("csv")));
        assert!(!ends_with_any("a.xls", &required_suffixes("csv")));
        assert!(ends_with_any("a.txt", &required_suffixes("txt")));
        assert!(ends_with_any("a.txt", &required_suffixes("text")));
        assert!(!ends_with_any("a.xlsx", &required_suffixes("txt")));
        assert!(ends_with_any("a.xml", &required_suffixes("xml")));
    }

    #[test]
    fn other_values_are_suffixes_tested_case_sensitively() {
        assert!(ends_with_any("a.csv", &required_suffixes(".csv")));
        assert!(!ends_with_any("a.tsv", &required_suffixes(".csv")));
        assert!(!ends_with_any("RVTools.XLSX", &[".xls", ".xlsx"]));
        assert!(!ends_with_any::<&str>("a.csv", &[]), "an empty list accepts nothing");
    }
}
