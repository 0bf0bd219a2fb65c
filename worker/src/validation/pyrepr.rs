//! Python `repr` of strings and lists: the SDK formatted some messages with it
//! (`['.xls', '.xlsx']`) and clients may match on those texts.

/// `repr(text)`: single quotes, or double quotes when the text holds a single quote
/// and no double quote; backslashes, the chosen quote and control characters escaped.
/// (Python also escapes some non-ASCII non-printable characters; those are kept here.)
pub fn py_str(text: &str) -> String {
    let quote = if text.contains('\'') && !text.contains('"') { '"' } else { '\'' };
    let mut out = String::with_capacity(text.len() + 2);
    out.push(quote);
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || (0x7F..0xA0).contains(&(c as u32)) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// `repr(list_of_strings)`.
pub fn py_list<S: AsRef<str>>(items: &[S]) -> String {
    let items: Vec<String> = items.iter().map(|item| py_str(item.as_ref())).collect();
    format!("[{}]", items.join(", "))
}

/// `repr(list_of_lists_of_strings)`.
pub fn py_nested<S: AsRef<str>>(groups: &[Vec<S>]) -> String {
    let groups: Vec<String> = groups.iter().map(|group| py_list(group)).collect();
    format!("[{}]", groups.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_quoted_as_python_does() {
        assert_eq!(py_str(".xlsx"), "'.xlsx'");
        assert_eq!(py_str("it's"), "\"it's\"");
        assert_eq!(py_str("it's \"x\""), "'it\\'s \"x\"'");
        assert_eq!(py_str("a\\b\n\u{1}"), "'a\\\\b\\n\\x01'");
        assert_eq!(py_str("é"), "'é'");
    }

    #[test]
    fn lists_and_nested_lists() {
        assert_eq!(py_list(&[".xls", ".xlsx"]), "['.xls', '.xlsx']");
        assert_eq!(py_list::<&str>(&[]), "[]");
        let groups = vec![vec!["unrelatedTab"], vec!["vInfo", "vCPU"]];
        assert_eq!(py_nested(&groups), "[['unrelatedTab'], ['vInfo', 'vCPU']]");
    }
}
