//! A reader between a decompressor and an XML parser that stops a part at
//! [`MAX_PART_BYTES`](super::limits) decompressed bytes and any one XML token at
//! [`MAX_XML_TOKEN`](super::limits) bytes. An XML parser buffers a token whole (quick-xml
//! grows its buffer until the `<` that ends a text or the `>` that ends a tag), so a
//! 3 GiB cell value deflated 1000:1 would otherwise be held whole; calamine reads the
//! same bytes with the same parser, so a part that passes here is bounded there too.
//!
//! The token boundaries are found with a small lexer (text, tag with quoted values,
//! comment, CDATA, processing instruction): resetting on every `>` would let a comment
//! full of `>` through. A DOCTYPE is refused: OOXML and ODF forbid it, and its internal
//! subset nests markup.

use std::io::{self, Read};

use super::limits::{LIMIT_MARK, MAX_PART_BYTES, MAX_XML_TOKEN};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`.
    Open,
    Tag,
    Quoted(u8),
    /// After `<!`: how many bytes of `--` or `[CDATA[` matched so far.
    Bang(usize),
    /// In a comment: trailing dashes seen.
    Comment(u8),
    /// In CDATA: trailing `]` seen.
    CData(u8),
    /// In a processing instruction: whether the last byte was `?`.
    Pi(bool),
}

const CDATA: &[u8] = b"[CDATA[";

pub(crate) struct BoundedXml<R> {
    inner: R,
    part: String,
    read: u64,
    max_bytes: u64,
    token: usize,
    state: State,
}

impl<R: Read> BoundedXml<R> {
    /// `part` names the part in errors; `max_bytes` bounds its decompressed size.
    pub(crate) fn new(inner: R, part: &str, max_bytes: u64) -> Self {
        Self {
            inner,
            part: part.to_owned(),
            read: 0,
            max_bytes: max_bytes.min(MAX_PART_BYTES),
            token: 0,
            state: State::Text,
        }
    }

    fn over(&self, what: String) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, format!("{}: {what}, {LIMIT_MARK}", self.part))
    }

    fn scan(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // Text runs are skipped whole up to their `<`: most bytes of a part.
            if self.state == State::Text {
                let run = bytes.iter().position(|&byte| byte == b'<').unwrap_or(bytes.len());
                self.token += run;
                if self.token > MAX_XML_TOKEN {
                    return Err(
                        self.over(format!("an XML token is longer than {MAX_XML_TOKEN} bytes"))
                    );
                }
                bytes = &bytes[run..];
            }
            let Some((&byte, rest)) = bytes.split_first() else { break };
            bytes = rest;
            self.token += 1;
            let (next, ends) = match (self.state, byte) {
                (State::Text, b'<') => (State::Open, true),
                (State::Text, _) => (State::Text, false),
                (State::Open, b'!') => (State::Bang(0), false),
                (State::Open, b'?') => (State::Pi(false), false),
                (State::Open | State::Tag, b'>') => (State::Text, true),
                (State::Open | State::Tag, quote @ (b'"' | b'\'')) => (State::Quoted(quote), false),
                (State::Open | State::Tag, _) => (State::Tag, false),
                (State::Quoted(quote), _) if byte == quote => (State::Tag, false),
                (State::Quoted(quote), _) => (State::Quoted(quote), false),
                (State::Bang(0), b'-') => (State::Bang(1), false),
                (State::Bang(1), b'-') => (State::Comment(0), false),
                (State::Bang(matched), _) if matched < CDATA.len() && CDATA[matched] == byte => {
                    if matched + 1 == CDATA.len() {
                        (State::CData(0), false)
                    } else {
                        (State::Bang(matched + 1), false)
                    }
                }
                (State::Bang(_), _) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: a DOCTYPE or other declaration is not allowed", self.part),
                    ));
                }
                (State::Comment(dashes), b'>') if dashes >= 2 => (State::Text, true),
                (State::Comment(dashes), b'-') => (State::Comment(dashes.saturating_add(1)), false),
                (State::Comment(_), _) => (State::Comment(0), false),
                (State::CData(brackets), b'>') if brackets >= 2 => (State::Text, true),
                (State::CData(brackets), b']') => (State::CData(brackets.saturating_add(1)), false),
                (State::CData(_), _) => (State::CData(0), false),
                (State::Pi(true), b'>') => (State::Text, true),
                (State::Pi(_), _) => (State::Pi(byte == b'?'), false),
            };
            if self.token > MAX_XML_TOKEN {
                return Err(self.over(format!("an XML token is longer than {MAX_XML_TOKEN} bytes")));
            }
            self.state = next;
            if ends {
                // The `<` that ends a text run starts the next token.
                self.token = usize::from(next == State::Open);
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for BoundedXml<R> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.inner.read(buffer)?;
        self.read += read as u64;
        if self.read > self.max_bytes {
            let max = self.max_bytes;
            return Err(self.over(format!("it decompresses to more than {max} bytes")));
        }
        self.scan(&buffer[..read])?;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(xml: &[u8], max_bytes: u64) -> io::Result<usize> {
        let mut sink = Vec::new();
        BoundedXml::new(xml, "p.xml", max_bytes).read_to_end(&mut sink)
    }

    #[test]
    fn ordinary_xml_passes() {
        let xml = br#"<?xml version="1.0"?><!-- a > b --><a x="1>2"><b><![CDATA[<>]]></b>t</a>"#;
        assert_eq!(read_all(xml, 1 << 20).unwrap(), xml.len());
    }

    #[test]
    fn long_tokens_and_large_parts_are_refused() {
        let long_text = [b"<v>".as_slice(), &vec![b'1'; MAX_XML_TOKEN + 1], b"</v>"].concat();
        let error = read_all(&long_text, u64::MAX).unwrap_err();
        assert!(error.to_string().contains(LIMIT_MARK), "{error}");
        let comment = [b"<!--".as_slice(), &vec![b'>'; MAX_XML_TOKEN + 1], b"-->"].concat();
        assert!(read_all(&comment, u64::MAX).is_err(), "a comment full of >");
        let attribute = [b"<a b=\"".as_slice(), &vec![b'>'; MAX_XML_TOKEN + 1], b"\"/>"].concat();
        assert!(read_all(&attribute, u64::MAX).is_err(), "an attribute full of >");
        let many_small = b"<a>1</a>".repeat(1000);
        assert!(read_all(&many_small, 4000).is_err(), "the part's size");
        assert!(read_all(b"<!DOCTYPE x []><x/>", 1000).is_err());
    }
}
