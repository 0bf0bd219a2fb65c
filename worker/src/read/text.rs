//! The start of a file as text, for keyword checks: the SDK read the first `buffer`
//! bytes; it searched their Python bytes repr, we decode them (SDK divergence 6).

use std::io::Read;
use std::path::Path;

use super::ReadError;

/// The first `buffer` bytes of the file decoded as text: UTF-16 when the file starts
/// with a UTF-16 byte order mark, else UTF-8 where invalid bytes become U+FFFD. A
/// character cut by the end of the buffer becomes U+FFFD too.
pub fn text_prefix(path: &Path, buffer: usize) -> Result<String, ReadError> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::with_capacity(buffer.min(1 << 20));
    file.take(buffer as u64).read_to_end(&mut bytes)?;
    Ok(decode_text(&bytes))
}

/// Bytes as text, by their byte order mark (UTF-8 without one).
pub fn decode_text(bytes: &[u8]) -> String {
    match bytes {
        [0xFF, 0xFE, rest @ ..] => decode_utf16(rest, u16::from_le_bytes),
        [0xFE, 0xFF, rest @ ..] => decode_utf16(rest, u16::from_be_bytes),
        [0xEF, 0xBB, 0xBF, rest @ ..] => String::from_utf8_lossy(rest).into_owned(),
        _ => String::from_utf8_lossy(bytes).into_owned(),
    }
}

fn decode_utf16(bytes: &[u8], unit: fn([u8; 2]) -> u16) -> String {
    let units = bytes.chunks(2).map(|pair| match pair {
        [a, b] => unit([*a, *b]),
        // An odd last byte is half a character: replaced like any broken sequence.
        _ => 0xFFFD,
    });
    char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    #[test]
    fn only_the_buffer_is_read_and_bad_bytes_do_not_fail() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(b"RL_SCRIPT\xFF_VERSION,TIMESTAMP").unwrap();
        assert_eq!(text_prefix(file.path(), 11).unwrap(), "RL_SCRIPT\u{FFFD}_");
        assert_eq!(text_prefix(file.path(), 1000).unwrap(), "RL_SCRIPT\u{FFFD}_VERSION,TIMESTAMP");
    }

    #[test]
    fn byte_order_marks_choose_the_encoding() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFabc"), "abc");
        assert_eq!(decode_text(b"\xFF\xFEa\0b\0"), "ab");
        assert_eq!(decode_text(b"\xFE\xFF\0a\0b"), "ab");
        assert_eq!(decode_text(b"\xFF\xFEa\0b"), "a\u{FFFD}", "an odd byte is replaced");
        assert_eq!(decode_text(b"plain"), "plain");
    }

    #[test]
    fn a_missing_file_is_an_io_error() {
        let error = text_prefix(Path::new("/nonexistent/file.txt"), 10).unwrap_err();
        assert_eq!(error.reason(), "FileUnreadable");
    }
}
