//! The SDK's name forms (`get_altered_strings`): an id such as `rv_tools` or
//! `details.quantity` is split on `-`, `_` and `.`, then joined again in several styles.
//! Registry entries, URLs and default display names use them.

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.trim().split(['-', '_', '.']).filter(|w| !w.is_empty())
}

// Python's `str.capitalize`: first character upper case, the rest lower case, so
// `vCPU` becomes `Vcpu`. Kept as the SDK does it, since display names are compared.
fn capitalize(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
        None => String::new(),
    }
}

/// Capitalized words joined by spaces: `total_number_of_cores` → `Total Number Of Cores`.
pub fn title(s: &str) -> String {
    words(s).map(capitalize).collect::<Vec<_>>().join(" ")
}

/// Lower-case words joined by `-`: `rv_tools` → `rv-tools` (the form in URLs).
pub fn dash(s: &str) -> String {
    words(s).map(str::to_lowercase).collect::<Vec<_>>().join("-")
}

/// Lower-case words joined by `_`: `rv-tools` → `rv_tools`.
pub fn underscore(s: &str) -> String {
    words(s).map(str::to_lowercase).collect::<Vec<_>>().join("_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_examples() {
        assert_eq!(title("columns_name"), "Columns Name");
        assert_eq!(dash("columns_name"), "columns-name");
        assert_eq!(underscore("columns-name"), "columns_name");
        assert_eq!(title("details.quantity"), "Details Quantity");
        assert_eq!(title("vCPU"), "Vcpu");
        assert_eq!(title("total_number_of_cores"), "Total Number Of Cores");
        assert_eq!(dash(" rv_tools "), "rv-tools");
        assert_eq!(title(""), "");
    }
}
