//! Keyword searches: file names (filenameContains) and the start of file contents
//! (textContainsAll, textContainsAny). As in the SDK, each term is a case-insensitive
//! regular expression searched anywhere, escaped first when `regexEscape` is true.
//! Unescaped terms use the `regex` crate's syntax, close to Python's for the common
//! constructs (no look-around or back-references).

use regex::Regex;

/// Compiled search terms, with the terms as written (the messages list them).
#[derive(Debug, Clone)]
pub struct Keywords {
    terms: Vec<String>,
    patterns: Vec<Regex>,
}

/// A term that is not a valid regular expression (only when `regexEscape` is false).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("Keyword {term:?} is not a valid regular expression: {detail}")]
pub struct InvalidKeyword {
    pub term: String,
    pub detail: String,
}

impl InvalidKeyword {
    pub fn reason(&self) -> &'static str {
        "KeywordInvalid"
    }
}

impl Keywords {
    pub fn new(terms: &[String], regex_escape: bool) -> Result<Self, InvalidKeyword> {
        let patterns = terms
            .iter()
            .map(|term| {
                let pattern = if regex_escape { regex::escape(term) } else { term.clone() };
                regex::RegexBuilder::new(&pattern).case_insensitive(true).build().map_err(|error| {
                    InvalidKeyword { term: term.clone(), detail: error.to_string() }
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { terms: terms.to_vec(), patterns })
    }

    /// Whether any term occurs in `text`. With no terms, nothing is asked: true.
    pub fn any_in(&self, text: &str) -> bool {
        self.patterns.is_empty() || self.patterns.iter().any(|pattern| pattern.is_match(text))
    }

    /// Whether every term occurs in `text`.
    pub fn all_in(&self, text: &str) -> bool {
        self.patterns.iter().all(|pattern| pattern.is_match(text))
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The terms as the SDK listed them in messages: joined by ", ".
    pub fn listed(&self) -> String {
        self.terms.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(terms: &[&str], regex_escape: bool) -> Result<Keywords, InvalidKeyword> {
        let terms: Vec<String> = terms.iter().map(|term| (*term).to_owned()).collect();
        Keywords::new(&terms, regex_escape)
    }

    #[test]
    fn search_is_anywhere_and_case_insensitive() {
        let rv = keywords(&["rv", "tools"], true).unwrap();
        assert!(rv.any_in("RVTools.xlsx"));
        assert!(rv.any_in("my_TOOLS.csv"));
        assert!(!rv.any_in("cpuq.xlsx"));
        assert_eq!(rv.listed(), "rv, tools");
    }

    #[test]
    fn escaping_decides_whether_terms_are_patterns() {
        assert!(keywords(&["rv(1)"], true).unwrap().any_in("rv(1).xlsx"));
        assert!(!keywords(&["rv(1)"], false).unwrap().any_in("rv(1).xlsx"), "(1) is a group");
        assert!(keywords(&["^rv.*xlsx$"], false).unwrap().any_in("rv_tools.xlsx"));
        let error = keywords(&["rv("], false).unwrap_err();
        assert_eq!(error.term, "rv(");
        assert_eq!(error.reason(), "KeywordInvalid");
    }

    #[test]
    fn sdk_text_helpers() {
        assert!(keywords(&["valid", "string"], true).unwrap().all_in("valid string"));
        assert!(!keywords(&["some", "text"], true).unwrap().all_in("invalid string"));
        assert!(keywords(&[], true).unwrap().any_in("anything"), "no terms ask nothing");
    }
}
