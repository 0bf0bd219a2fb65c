//! CSV delimiter sniffing on the header line, as the SDK did it with Python's
//! `csv.Sniffer` restricted to the delimiters it accepted: first the delimiters that sit
//! next to quoted fields (the sniffer's quote patterns, tried in order), then, when no
//! quoted field tells, the delimiters present in the line, the preferred one first.
//! Whatever else gives `,`.
//!
//! Python's quote patterns use back-references, which the `regex` crate has not, so
//! they are matched by hand here, with `findall`'s leftmost, non-overlapping scan. Each
//! closing quote is found through an index of the quotes by the character after them,
//! not by scanning ahead from every delimiter: a header of `-"x` repeated would
//! otherwise take time quadratic in its length (99 s for 120 KB).

use std::collections::HashMap;

/// The delimiters the SDK accepted.
const CANDIDATES: [char; 5] = [',', ';', '\t', ' ', '|'];
/// `csv.Sniffer.preferred`, restricted to the candidates; `|` is not in Python's list.
const PREFERRED: [char; 4] = [',', '\t', ';', ' '];
const QUOTES: [char; 2] = ['"', '\''];

/// The delimiter of a CSV file whose header line is `line` (without its line end).
pub fn sniff_delimiter(line: &str) -> u8 {
    let chars: Vec<char> = line.trim_end_matches(['\r', '\n']).chars().collect();
    let found = quoted_delimiter(&chars).or_else(|| frequent_delimiter(&chars)).unwrap_or(',');
    // Every candidate is ASCII, so the cast keeps the character.
    found as u8
}

/// The sniffer's `[^\w\n"']`: what its patterns accept as a delimiter.
fn delimiter_like(c: char) -> bool {
    !(c.is_alphanumeric() || c == '_' || c == '\n' || QUOTES.contains(&c))
}

/// One of the sniffer's quote patterns: the delimiter of each match (`None` for the
/// pattern that has no delimiter group).
type QuotePattern = fn(&[char]) -> Vec<Option<char>>;

/// `_guess_quote_and_delimiter`: the first pattern with any match decides; its most
/// frequent candidate delimiter wins (the first seen on a tie, as Python's `max`).
fn quoted_delimiter(chars: &[char]) -> Option<char> {
    let patterns: [QuotePattern; 4] =
        [between_quoted, after_leading_quoted, before_trailing_quoted, whole_line_quoted];
    let matches = patterns.iter().map(|pattern| pattern(chars)).find(|found| !found.is_empty())?;
    let mut counts: Vec<(char, usize)> = Vec::new();
    for delimiter in matches.into_iter().flatten().filter(|c| CANDIDATES.contains(c)) {
        match counts.iter_mut().find(|(seen, _)| *seen == delimiter) {
            Some((_, count)) => *count += 1,
            None => counts.push((delimiter, 1)),
        }
    }
    let best = counts.iter().map(|(_, count)| *count).max()?;
    counts.into_iter().find(|(_, count)| *count == best).map(|(delimiter, _)| delimiter)
}

/// From `start` (just after an opening quote), the end of the shortest quoted run
/// `.*?q` followed by a character accepted by `next`: the index of that next character.
fn close_quote(
    chars: &[char],
    start: usize,
    quote: char,
    next: impl Fn(usize) -> bool,
) -> Option<usize> {
    (start..chars.len()).find(|&k| chars[k] == quote && next(k + 1)).map(|k| k + 1)
}

/// Where a quote opens after a delimiter at `at`: `(?P<space> ?)(?P<quote>["'])`.
fn opening_quote(chars: &[char], at: usize) -> Option<(usize, char)> {
    let mut j = at + 1;
    if chars.get(j) == Some(&' ') && chars.get(j + 1).is_some_and(|c| QUOTES.contains(c)) {
        j += 1;
    }
    chars.get(j).filter(|c| QUOTES.contains(c)).map(|&quote| (j, quote))
}

/// The positions of the quotes followed by each character, in order.
fn quotes_by_next(chars: &[char]) -> HashMap<(char, char), Vec<usize>> {
    let mut index: HashMap<(char, char), Vec<usize>> = HashMap::new();
    for (k, pair) in chars.windows(2).enumerate() {
        if QUOTES.contains(&pair[0]) {
            index.entry((pair[0], pair[1])).or_default().push(k);
        }
    }
    index
}

/// `(?P<delim>[^\w\n"'])(?P<space> ?)(?P<quote>["']).*?(?P=quote)(?P=delim)`
fn between_quoted(chars: &[char]) -> Vec<Option<char>> {
    let index = quotes_by_next(chars);
    // The first `quote` at or after `start` followed by `delimiter`: the index of that
    // delimiter.
    let closing = |start: usize, quote: char, delimiter: char| {
        let positions = index.get(&(quote, delimiter))?;
        let first = positions.partition_point(|&k| k < start);
        positions.get(first).map(|&k| k + 1)
    };
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let delimiter = chars[i];
        let matched = delimiter_like(delimiter)
            .then(|| opening_quote(chars, i))
            .flatten()
            .and_then(|(j, quote)| closing(j + 1, quote, delimiter));
        match matched {
            Some(end) => {
                found.push(Some(delimiter));
                i = end + 1;
            }
            None => i += 1,
        }
    }
    found
}

/// `(?:^|\n)(?P<quote>["']).*?(?P=quote)(?P<delim>[^\w\n"'])(?P<space> ?)`
fn after_leading_quoted(chars: &[char]) -> Vec<Option<char>> {
    let Some(&quote) = chars.first().filter(|c| QUOTES.contains(c)) else {
        return Vec::new();
    };
    close_quote(chars, 1, quote, |k| chars.get(k).is_some_and(|&c| delimiter_like(c)))
        .map(|k| vec![Some(chars[k])])
        .unwrap_or_default()
}

/// `(?P<delim>[^\w\n"'])(?P<space> ?)(?P<quote>["']).*?(?P=quote)(?:$|\n)`: the
/// quoted run must close the line, so the first delimiter that opens one decides.
fn before_trailing_quoted(chars: &[char]) -> Vec<Option<char>> {
    // The shortest run closes at the first quote after the opening one; only a quote
    // ending the line can close it, so the run ends at the last character or not at all.
    let Some(&last) = chars.last() else {
        return Vec::new();
    };
    (0..chars.len())
        .filter(|&i| delimiter_like(chars[i]))
        .find_map(|i| {
            let (j, quote) = opening_quote(chars, i)?;
            (quote == last && chars.len() - 1 > j).then(|| vec![Some(chars[i])])
        })
        .unwrap_or_default()
}

/// `(?:^|\n)(?P<quote>["']).*?(?P=quote)(?:$|\n)`: a single quoted column; it names
/// no delimiter, which sends the sniffer to the frequency test.
fn whole_line_quoted(chars: &[char]) -> Vec<Option<char>> {
    let Some(&quote) = chars.first().filter(|c| QUOTES.contains(c)) else {
        return Vec::new();
    };
    close_quote(chars, 1, quote, |k| k == chars.len()).map(|_| vec![None]).unwrap_or_default()
}

/// `_guess_delimiter` on one line: every candidate present is equally consistent, so
/// one alone wins, and several go to the preferred order.
fn frequent_delimiter(chars: &[char]) -> Option<char> {
    let present: Vec<char> = CANDIDATES.into_iter().filter(|c| chars.contains(c)).collect();
    match present.as_slice() {
        [] => None,
        [only] => Some(*only),
        _ => PREFERRED.into_iter().find(|c| present.contains(c)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdk_fixture_headers_give_the_sdk_delimiters() {
        let comma = r#""LINE_START"|"MACHINE_ID","DB_NAME","TIMESTAMP","HOST_NAME""#;
        assert_eq!(sniff_delimiter(comma), b',', "quote-adjacent commas beat the one pipe");
        let pipe = r#""LINE_START"|"MACHINE_ID"|"DB_NAME"|"TIMESTAMP""#;
        assert_eq!(sniff_delimiter(pipe), b'|');
        let semicolon = "WorkspaceID;DatabaseRefID;InstanceName;HostName;DatabaseName\r\n";
        assert_eq!(sniff_delimiter(semicolon), b';');
        assert_eq!(sniff_delimiter("RL_SCRIPT_VERSION,TIMESTAMP,MACHINE_ID"), b',');
    }

    #[test]
    fn unquoted_headers_use_the_preferred_order_when_several_candidates_appear() {
        assert_eq!(sniff_delimiter("Host Name;OS Version;CPU count"), b';', "; before space");
        assert_eq!(sniff_delimiter("a\tb c\td"), b'\t');
        assert_eq!(sniff_delimiter("a|b|c"), b'|', "a lone candidate wins");
        assert_eq!(sniff_delimiter("a|b|c,d"), b',', "| is not in Python's preferred list");
    }

    #[test]
    fn quoted_fields_name_their_delimiter() {
        assert_eq!(sniff_delimiter(r#"a;b;"x, y""#), b';', "delimiter before a closing field");
        assert_eq!(sniff_delimiter(r#"'a'	'b'	'c'"#), b'\t');
        assert_eq!(sniff_delimiter(r#""a"; "b"; "c""#), b';', "a space after the delimiter");
    }

    #[test]
    fn anything_else_falls_back_to_a_comma() {
        assert_eq!(sniff_delimiter(""), b',');
        assert_eq!(sniff_delimiter("single_column"), b',');
        assert_eq!(sniff_delimiter(r#""only_one_quoted_column""#), b',');
        assert_eq!(sniff_delimiter(r#""one quoted column""#), b' ', "Python finds the spaces");
        assert_eq!(sniff_delimiter(r#""a":"b":"c""#), b',', ": is not accepted");
        assert_eq!(sniff_delimiter("\"unclosed|quote"), b'|');
    }

    #[test]
    fn sniffing_is_linear_in_the_line() {
        let line = "-\"x".repeat(200_000);
        let started = std::time::Instant::now();
        assert_eq!(sniff_delimiter(&line), b',');
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{:?}", started.elapsed());
    }
}
