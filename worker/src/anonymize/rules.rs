//! The `filepaths` and `filecontent` rules: regular expressions, compiled once,
//! case-sensitive as written (`(?i)` makes one case-insensitive).
//!
//! - Without a capture group the whole match is replaced by its token; with one, only
//!   group 1 is (the rest of the match stays); a match where group 1 took no part is
//!   left alone. Caution: a lazy group at the very end of a pattern, as in
//!   `Device-(.+?)`, captures a single character, as regexes do; write `Device-(\w+)`.
//! - Every match is replaced (the SDK v2 crashed on two distinct matches of a pattern).
//! - Only the matched text is replaced, where it matched (the SDK then replaced the
//!   value everywhere in the text, matched or not).
//! - All patterns are matched against the original text; where matches of two patterns
//!   overlap, the earlier pattern wins, so no pattern ever matches inside a token.
//! - Empty matches (a pattern such as `x*`) are left alone: they have nothing to hide.
//!
//! Matching is on bytes: text that is not valid UTF-8 is kept byte for byte, and the
//! patterns match its valid UTF-8 parts.

use std::borrow::Cow;
use std::collections::BTreeMap;

use regex::bytes::Regex;

use super::error::{RuleError, TokenError};
use super::token::Tokenizer;

#[derive(Debug, Clone, Default)]
pub struct Rules {
    patterns: Vec<Regex>,
}

impl Rules {
    /// Compiles the patterns of one list; `target` names the list in errors.
    pub fn compile(target: &'static str, patterns: &[String]) -> Result<Self, RuleError> {
        let patterns = patterns
            .iter()
            .map(|pattern| {
                Regex::new(pattern).map_err(|source| RuleError {
                    target,
                    pattern: pattern.clone(),
                    source: Box::new(source),
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { patterns })
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// The text with every match replaced by its token; borrowed when nothing matched.
    pub fn apply<'t>(
        &self,
        text: &'t [u8],
        tokenizer: &mut Tokenizer,
    ) -> Result<Cow<'t, [u8]>, TokenError> {
        let spans = self.spans(text);
        if spans.is_empty() {
            return Ok(Cow::Borrowed(text));
        }
        let mut output = Vec::with_capacity(text.len() + spans.len() * 48);
        let mut copied = 0;
        for (start, end) in spans {
            output.extend_from_slice(&text[copied..start]);
            output.extend_from_slice(tokenizer.token(&text[start..end])?.as_bytes());
            copied = end;
        }
        output.extend_from_slice(&text[copied..]);
        Ok(Cow::Owned(output))
    }

    /// The byte ranges to replace, sorted and disjoint (start → end).
    fn spans(&self, text: &[u8]) -> BTreeMap<usize, usize> {
        let mut accepted = BTreeMap::new();
        for pattern in &self.patterns {
            let has_group = pattern.captures_len() > 1;
            for captures in pattern.captures_iter(text) {
                let span = if has_group { captures.get(1) } else { captures.get(0) };
                let Some(span) = span.filter(|span| !span.is_empty()) else { continue };
                // Accepted spans are disjoint, so only the last one starting before this
                // span's end can overlap it.
                let overlaps = accepted
                    .range(..span.end())
                    .next_back()
                    .is_some_and(|(_, &end)| end > span.start());
                if !overlaps {
                    accepted.insert(span.start(), span.end());
                }
            }
        }
        accepted
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::anonymize::key::Keys;

    fn tokenizer() -> Tokenizer {
        Tokenizer::new(&Keys::from_passphrase(b"rules").unwrap()).unwrap()
    }

    fn apply(patterns: &[&str], text: &str) -> String {
        let patterns: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        let rules = Rules::compile("filecontent", &patterns).unwrap();
        String::from_utf8(rules.apply(text.as_bytes(), &mut tokenizer()).unwrap().into_owned())
            .unwrap()
    }

    fn token(value: &str) -> String {
        tokenizer().token(value.as_bytes()).unwrap()
    }

    #[test]
    fn without_a_group_the_whole_match_is_replaced() {
        assert_eq!(
            apply(&["DeviceX"], "/path/to/DeviceX"),
            format!("/path/to/{}", token("DeviceX"))
        );
    }

    #[test]
    fn with_a_group_only_the_group_is_replaced() {
        let text = "report-Device-alpha7.csv";
        assert_eq!(
            apply(&[r"Device-(\w+)"], text),
            format!("report-Device-{}.csv", token("alpha7"))
        );
    }

    #[test]
    fn a_trailing_lazy_group_captures_one_character() {
        assert_eq!(apply(&["Device-(.+?)"], "Device-alpha"), format!("Device-{}lpha", token("a")));
    }

    #[test]
    fn every_match_is_replaced_including_distinct_ones() {
        let text = "SECRET one, SECRET two, host=db1 host=db2 host=db1";
        let expected = format!(
            "{s} one, {s} two, host={a} host={b} host={a}",
            s = token("SECRET"),
            a = token("db1"),
            b = token("db2"),
        );
        assert_eq!(apply(&["SECRET", r"host=(\w+)"], text), expected);
    }

    #[test]
    fn the_earlier_pattern_wins_and_tokens_are_not_rematched() {
        // "ec" would match inside "#ec#" if patterns ran one after another.
        let text = "deviceName secret";
        let expected = format!("{} s{}ret", token("deviceName"), token("ec"));
        assert_eq!(apply(&["deviceName", "ec", "Name"], text), expected);
    }

    #[test]
    fn patterns_are_case_sensitive_as_written() {
        assert_eq!(apply(&["secret"], "SECRET"), "SECRET");
        assert_eq!(apply(&["(?i)secret"], "SECRET"), token("SECRET"));
    }

    #[test]
    fn empty_matches_and_non_participating_groups_are_left_alone() {
        assert_eq!(apply(&["x*"], "abc"), "abc");
        assert_eq!(apply(&["a(z)?"], "abc"), "abc");
    }

    #[test]
    fn invalid_utf8_is_kept_byte_for_byte() {
        let rules = Rules::compile("filecontent", &["SECRET".to_owned()]).unwrap();
        let text = b"\xff\xfe SECRET \xc3";
        let output = rules.apply(text, &mut tokenizer()).unwrap();
        assert_eq!(
            output.as_ref(),
            [&b"\xff\xfe "[..], token("SECRET").as_bytes(), b" \xc3"].concat()
        );
    }

    #[test]
    fn an_invalid_pattern_is_named() {
        let error = Rules::compile("filepaths", &["ok".into(), "(unclosed".into()]).unwrap_err();
        assert!(
            error.to_string().contains("encryption.filepaths pattern \"(unclosed\""),
            "{error}"
        );
        assert_eq!(error.reason(), "InvalidPattern");
    }
}
